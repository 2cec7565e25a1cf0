"""Contract colour spaces: a log source goes into the model's working space and back with the
exact inverse (OpenColorIO's built-in studio config), names are checked, and a contract that
contradicts the file's own tags is refused."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import grpc
import numpy as np
import pytest

from bridge.api import pb
from bridge.client import ClientError
from server import color

from conftest import make_timeline, submit_request
from support.colour import log_frames

pytest.importorskip("PyOpenColorIO")


@pytest.mark.parametrize("space", ["ARRI LogC4", "ARRI LogC3 (EI800)", "S-Log3 S-Gamut3.Cine", "ACEScct"])
def test_a_log_source_round_trips_the_model_space_within_one_10bit_code(space):
    transform = color.resolve(space)
    rng = np.random.default_rng(1)
    display = rng.uniform(0.0, 1.0, (64, 64, 3)).astype(np.float32)
    codes = np.round(np.clip(transform.from_model(display), 0, 1) * 1023) / 1023   # a 10-bit log plate
    there = transform.to_model(codes.astype(np.float32))
    back = transform.from_model(there)
    assert np.abs(back * 1023 - codes * 1023).max() <= 1.0
    assert there.min() > -0.1 and there.max() < 1.1, "in-gamut material lands in the model's range"


def test_names_are_checked_and_aliases_resolve():
    assert color.resolve("") is None
    assert color.resolve("ARRI LogC4").input_space == "ARRI LogC4"
    with pytest.raises(color.ColorError) as err:
        color.resolve("Arri LogC 4")
    assert err.value.code == "unknown_color_space" and "ARRI LogC4" in str(err.value)
    with pytest.raises(color.ColorError, match="not a built-in"):
        color.resolve("ACEScct", "/etc/passwd")
    with pytest.raises(color.ColorError, match="tagged PQ"):
        color.resolve("ARRI LogC4", transfer=16)
    with pytest.raises(color.ColorError, match="linear light"):
        color.resolve("S-Log3 S-Gamut3", transfer=8)
    assert color.resolve("Rec.2100-PQ - Display", transfer=16) is not None


@pytest.fixture
def logc_plate(tmp_path):
    from server.media import write_movie
    return write_movie(log_frames("ARRI LogC4"), tmp_path / "logc.mov", codec="prores", rate=Fraction(24),
                       start_timecode="01:00:00:00").path


def test_an_unknown_or_contradicting_colour_space_is_refused_at_submit(server, logc_plate, tmp_path):
    client, _ = server
    timeline = make_timeline(logc_plate, rate=24, media_start=86400, media_frames=6, clip_in=0, clip_frames=6)
    request = submit_request(timeline, "A", "refine")
    request.contract.color.input_space = "LogC5"
    with pytest.raises(ClientError) as err:
        client.submit(request)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "'LogC5'" in str(err.value)
    # a PQ-tagged file said to be LogC4
    pq = tmp_path / "pq.mkv"
    with av.open(str(pq), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p10le"
        stream.codec_context.color_trc, stream.codec_context.color_primaries = 16, 9
        for i in range(6):
            frame = av.VideoFrame(64, 48, "yuv420p10le")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    timeline = make_timeline(pq, rate=24, media_start=0, media_frames=6, clip_in=0, clip_frames=6)
    request = submit_request(timeline, "A", "refine")
    request.contract.color.input_space = "ARRI LogC4"
    with pytest.raises(ClientError) as err:
        client.submit(request)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "PQ" in str(err.value)
    assert client.list_jobs() == []


def test_the_classic_backend_keeps_a_log_source_in_its_own_code_values(server, logc_plate):
    client, _ = server
    timeline = make_timeline(logc_plate, rate=24, media_start=86400, media_frames=6, clip_in=0, clip_frames=6)
    request = submit_request(timeline, "A", "refine", strength=0.0, codec=pb.FFV1)
    request.contract.color.input_space = "ARRI LogC4"
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    manifest = json.loads(Path(job.take.manifest_url).read_text())
    assert manifest["pixels"]["color_transform"] is None, "classic works on the code values"
    assert manifest["pixels"]["frames_untouched"] == [[0, 5]]
