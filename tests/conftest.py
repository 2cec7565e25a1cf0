"""Shared fixtures: media the tests make themselves, timelines around it, and a real server on
loopback (in-process, real gRPC) with its own store."""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bridge.client import GenerationClient  # noqa: E402
from bridge.timeline import export_selection  # noqa: E402
from bridge.request import JobOptions, build_request  # noqa: E402
from bridge.api import pb  # noqa: E402
from server.app import ServerConfig, build_server, shutdown  # noqa: E402
from server.media import write_movie  # noqa: E402


def rt(frames: int, rate) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(frames, float(Fraction(rate)))


def make_timeline(media: Path, *, rate, media_start: int, media_frames: int, clip_in: int, clip_frames: int,
                  name: str = "A", gap_after: int = 0, next_clip: int = 0) -> otio.schema.Timeline:
    """A one-track timeline: clip `name` using frames clip_in.. of `media` (timecode-absolute
    numbering from media_start), then an optional gap and an optional neighbour clip."""
    timeline = otio.schema.Timeline("story", global_start_time=rt(media_start, rate))
    track = otio.schema.Track("V1")
    ref = otio.schema.ExternalReference(str(media), otio.opentime.TimeRange(rt(media_start, rate),
                                                                             rt(media_frames, rate)))
    track.append(otio.schema.Clip(name, ref, otio.opentime.TimeRange(rt(media_start + clip_in, rate),
                                                                      rt(clip_frames, rate))))
    if gap_after:
        track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=rt(gap_after, rate))))
    if next_clip:
        ref2 = otio.schema.ExternalReference(str(media), otio.opentime.TimeRange(rt(media_start, rate),
                                                                                  rt(media_frames, rate)))
        track.append(otio.schema.Clip("B", ref2, otio.opentime.TimeRange(rt(media_start, rate), rt(next_clip, rate))))
    timeline.tracks.append(track)
    return timeline


def submit_request(timeline, clip: str, op: str, *, codec=pb.FFV1, seed: int = 7, **params) -> "pb.SubmitJobRequest":
    """The request an editor sends for `clip`, built by bridge.request.build_request as every editor
    builds it; the operation's own values (frames, mask, strength) are then set as given, unchecked,
    so the tests can send the server what a careless or hostile client would."""
    options = JobOptions(op=op, codec=pb.Codec.Name(codec), seed=seed, frames=1, mask="cas:placeholder")
    selection = export_selection(timeline, clip, handles=params.pop("handles", 0))
    request = build_request(selection, options, client="tests")
    if op == "extend":
        request.extend.side = pb.HEAD if params.get("side") == "head" else pb.TAIL
        request.extend.frames = params["frames"]
    elif op == "inpaint":
        request.inpaint.mask_url = str(params["mask"])
    else:
        request.refine.strength = params.get("strength", 0.5)
    return request


def write_mask(path: Path, mask: np.ndarray, rate=Fraction(24)) -> Path:
    """(n, h, w) bool masks as a lossless matte movie (white = replace)."""
    return write_movie(np.repeat(mask[..., None], 3, axis=3).astype(np.uint8) * 255, path, codec="ffv1",
                       rate=Fraction(rate)).path


def natives(path, start, count, rate=None):
    """The pictures of frames start.. of `path` in their own pixel format (Native planes)."""
    from server.media.decode import iter_pictures
    return [n for _, n in iter_pictures(path, start, count, depth=16, rate=rate)]


def encode_pictures(path: Path, encoder: str, pictures, *, rate, pix_fmt: str, size: tuple[int, int],
                    options: dict | None = None, timecode: str | None = None, tags: tuple | None = None) -> Path:
    """Encode av.VideoFrames (already in `pix_fmt`) with one of FFmpeg's own encoders, as a
    camera or another application would have written the file (frame i at pts i). `tags`:
    (matrix, range, primaries, transfer) for the stream."""
    import av

    with av.open(str(path), "w") as out:
        if timecode:
            out.metadata["timecode"] = timecode
        stream = out.add_stream(encoder, rate=Fraction(rate), options=options or {})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], pix_fmt
        if tags is not None:
            ctx = stream.codec_context
            ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc = tags
        for index, picture in enumerate(pictures):
            picture.pts, picture.time_base = index, 1 / Fraction(rate)
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def refused(client, request):
    """The ClientError a submit is refused with, after checking the server still answers."""
    from bridge.client import ClientError
    with pytest.raises(ClientError) as err:
        client.submit(request)
    assert client.capabilities().server_version, "the server must still answer"
    return err.value


@pytest.fixture
def write_media(tmp_path):
    def write(name: str, frames: np.ndarray, *, rate=Fraction(24), timecode="01:00:00:00", codec="ffv1"):
        suffix = {"ffv1": ".mkv", "prores": ".mov", "h264": ".mp4", "png": ""}[codec]
        return write_movie(frames, tmp_path / f"{name}{suffix}", codec=codec, rate=Fraction(rate),
                           start_timecode=timecode).path
    return write


@pytest.fixture
def server(tmp_path):
    """(client, runtime) of a real gRPC server on 127.0.0.1, port picked by the OS."""
    grpc_server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store"))
    client = GenerationClient(f"127.0.0.1:{port}")
    yield client, runtime
    client.close()
    shutdown(grpc_server, runtime, grace=0.5)


# tests/blender runs in the bpy virtual environments (make test-blender), not here
collect_ignore = ["blender"]
