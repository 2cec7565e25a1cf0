"""Writing takes to disk: RGB frames in, a ProRes/FFV1/H.264 movie or PNG sequence out.

Rates and start timecodes go into the file exactly; a destination is replaced whole or not at all.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from .decode import SCALE_FLAGS
from .errors import MediaError
from .probe import SEQUENCE_SIDECAR, MediaInfo, probe
from .timecode import is_drop_frame, timecode_to_frames

# libavutil's AVCOL_* value shared by BT.709 primaries, transfer and matrix.
_BT709 = 1

# First file number of a PNG sequence; frame N of the take is file N.
SEQUENCE_FIRST_NUMBER = 0
SEQUENCE_PADDING = 6


@dataclass(frozen=True)
class MovieCodec:
    """How one deliverable is encoded: FFmpeg encoder, container and its options."""

    encoder: str
    container: str
    suffixes: tuple[str, ...]
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)


MOVIE_CODECS = {
    # ProRes 422 HQ, 10-bit: the editorial mastering default every host can conform.
    "prores": MovieCodec("prores_ks", "mov", (".mov",), "yuv422p10le", {"profile": "hq"}),
    # Lossless RGB: decoding returns exactly the bytes written (FFV1 has no 8-bit gbrp, bgr0 is it).
    "ffv1": MovieCodec("ffv1", "matroska", (".mkv",), "bgr0", {"level": "3"}),
    # Light proxy for review; faststart so players can begin before the whole file arrives.
    "h264": MovieCodec(
        "libx264", "mp4", (".mp4",), "yuv420p", {"crf": "18", "preset": "medium"}, {"movflags": "+faststart"}
    ),
}
CODECS = (*MOVIE_CODECS, "png")

Progress = Callable[[int, "int | None"], None]


def write_movie(
    frames: np.ndarray | Iterable[np.ndarray],
    dest: str | Path,
    *,
    codec: str = "prores",
    rate: Fraction | int,
    start_timecode: str | None = None,
    drop_frame: bool | None = None,
    progress: Progress | None = None,
) -> MediaInfo:
    """Encode RGB frames ((N, H, W, 3) uint8, or an iterable of (H, W, 3)) to `dest`; probe it back.

    codec: "prores" (.mov), "ffv1" (.mkv), "h264" (.mp4) or "png" (`dest` is a folder of
    `<dest name>.NNNNNN.png` plus a sequence.json holding rate and timecode).
    drop_frame=None takes the counting from the timecode's separator (';' is drop-frame).
    progress(done, total) is called after every frame; total is None for a plain iterator.
    """
    dest = Path(dest)
    rate = _checked_rate(rate)
    start_timecode = _checked_timecode(start_timecode, rate, drop_frame)
    movie = _checked_codec(codec, dest)
    total = len(frames) if hasattr(frames, "__len__") else None
    size, checked = _checked_frames(frames, codec)

    def report(done: int) -> None:
        if progress is not None:
            progress(done, total)

    def write(temp: Path) -> None:
        try:
            if movie is None:
                _write_png_sequence(checked, temp, dest.name, rate, start_timecode, report)
            else:
                _write_movie_file(checked, temp, movie, size, rate, start_timecode, report)
        except (av.FFmpegError, OSError) as error:
            raise MediaError(
                "encode_failed", f"writing {dest} as {codec} failed ({error}); check free space and permissions"
            ) from error

    dest.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(dest, write)
    return probe(dest)


def _checked_rate(rate: Fraction | int) -> Fraction:
    if isinstance(rate, float):
        raise MediaError(
            "bad_rate",
            f"rate {rate!r} is a float; pass an exact rational such as Fraction(24000, 1001) for 23.976",
        )
    rate = Fraction(rate)
    if rate <= 0:
        raise MediaError("bad_rate", f"rate {rate} must be above 0 frames per second")
    return rate


def _checked_timecode(timecode: str | None, rate: Fraction, drop_frame: bool | None) -> str | None:
    if timecode is None:
        return None
    timecode_to_frames(timecode, rate)  # refuses labels that do not exist at this rate
    if drop_frame is not None and drop_frame != is_drop_frame(timecode):
        counting = "drop-frame" if is_drop_frame(timecode) else "non-drop-frame"
        raise MediaError(
            "bad_timecode",
            f"start timecode {timecode!r} is {counting} but drop_frame={drop_frame}; "
            "write drop-frame timecodes with ';' before the frames (00:59:59;28), others with ':'",
        )
    return timecode.strip()


def _checked_codec(codec: str, dest: Path) -> MovieCodec | None:
    """The movie codec for `codec`, or None for a PNG sequence, once `dest` suits it."""
    if codec not in CODECS:
        raise MediaError("unsupported_codec", f"codec {codec!r} is not one of {', '.join(CODECS)}")
    if codec == "png":
        if dest.is_file():
            raise MediaError("bad_destination", f"destination {dest} is a file; a PNG sequence needs a folder name")
        return None
    movie = MOVIE_CODECS[codec]
    if dest.suffix.lower() not in movie.suffixes:
        raise MediaError(
            "bad_destination",
            f"destination {dest} does not end in {' or '.join(movie.suffixes)}, which codec {codec!r} writes",
        )
    if dest.is_dir():
        raise MediaError("bad_destination", f"destination {dest} is a folder; name a {movie.suffixes[0]} file")
    return movie


def _checked_frames(
    frames: np.ndarray | Iterable[np.ndarray], codec: str
) -> tuple[tuple[int, int], Iterator[np.ndarray]]:
    """(width, height) of the first frame, and all frames one at a time, checked against it."""
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise MediaError("bad_frames", "no frames to write; a take needs at least one frame")
    first = np.asarray(first)
    if first.dtype != np.uint8 or first.ndim != 3 or first.shape[2] != 3:
        raise MediaError(
            "bad_frames",
            f"frame 0 is {first.shape} {first.dtype}; frames must be (height, width, 3) uint8 RGB",
        )
    height, width = first.shape[:2]
    if codec == "h264" and (width % 2 or height % 2):
        raise MediaError(
            "bad_frames",
            f"H.264 (yuv420p) needs even width and height, frames are {width}x{height}; crop or pad "
            f"to {width + width % 2}x{height + height % 2}, or write prores/ffv1/png",
        )
    return (width, height), _same_shape(first, iterator)


def _same_shape(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    for index, frame in enumerate(rest, start=1):
        frame = np.asarray(frame)
        if frame.shape != first.shape or frame.dtype != np.uint8:
            raise MediaError(
                "bad_frames",
                f"frame {index} is {frame.shape} {frame.dtype} but frame 0 is {first.shape} uint8; "
                "every frame of a take must have the same size",
            )
        yield frame


def _write_atomically(dest: Path, write: Callable[[Path], None]) -> None:
    """Run write(temp) on a hidden sibling of `dest`, then move it onto `dest` in one rename."""
    temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        write(temp)
        if dest.is_dir():
            # A folder cannot be renamed over a non-empty one; park the old take, then drop it.
            old = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(dest, old)
            os.replace(temp, dest)
            shutil.rmtree(old)
        else:
            os.replace(temp, dest)
    except BaseException:
        _remove(temp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _write_movie_file(
    frames: Iterator[np.ndarray],
    temp: Path,
    movie: MovieCodec,
    size: tuple[int, int],
    rate: Fraction,
    start_timecode: str | None,
    report: Callable[[int], None],
) -> None:
    with av.open(str(temp), "w", format=movie.container, options=movie.container_options) as container:
        if start_timecode is not None:
            # MOV/MP4 turn this into a tmcd track, Matroska into a TIMECODE tag; probe reads both.
            container.metadata["timecode"] = start_timecode
        stream = _add_video_stream(container, movie, size, rate)
        for index, array in enumerate(frames):
            picture = _to_picture(array, movie.pix_fmt)
            picture.pts = index
            for packet in stream.encode(picture):
                container.mux(packet)
            report(index + 1)
        for packet in stream.encode():
            container.mux(packet)


def _add_video_stream(
    container: av.container.OutputContainer, movie: MovieCodec, size: tuple[int, int], rate: Fraction
) -> av.VideoStream:
    # rate= sets the codec time base to exactly 1/rate (1001/24000), which MOV keeps as 1/24000.
    stream = container.add_stream(movie.encoder, rate=rate, options=dict(movie.options))
    stream.width, stream.height = size
    stream.pix_fmt = movie.pix_fmt
    stream.thread_type = "AUTO"
    if not av.VideoFormat(movie.pix_fmt).is_rgb:
        # Tag what _to_picture did, so every reader turns it back into the same RGB.
        context = stream.codec_context
        context.colorspace = context.color_primaries = context.color_trc = _BT709
        context.color_range = ColorRange.MPEG
    return stream


def _to_picture(array: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
    if av.VideoFormat(pix_fmt).is_rgb:
        return picture.reformat(format=pix_fmt)
    return picture.reformat(
        format=pix_fmt, dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG, interpolation=SCALE_FLAGS
    )


def _write_png_sequence(
    frames: Iterator[np.ndarray],
    temp: Path,
    name: str,
    rate: Fraction,
    start_timecode: str | None,
    report: Callable[[int], None],
) -> None:
    temp.mkdir()
    pattern = f"{name}.%0{SEQUENCE_PADDING}d.png"
    for index, array in enumerate(frames):
        image = temp / (pattern % (SEQUENCE_FIRST_NUMBER + index))
        if not cv2.imwrite(str(image), cv2.cvtColor(array, cv2.COLOR_RGB2BGR)):
            raise OSError(f"OpenCV could not write frame {index} as PNG")
        report(index + 1)
    sidecar = {
        "schema_version": 1,
        "pattern": pattern,
        "first_number": SEQUENCE_FIRST_NUMBER,
        "rate": f"{rate.numerator}/{rate.denominator}",
        "start_timecode": start_timecode,
        "drop_frame": start_timecode is not None and is_drop_frame(start_timecode),
    }
    (temp / SEQUENCE_SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
