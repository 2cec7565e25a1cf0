"""What a piece of source media is: size, exact rate, exact frame count, start timecode, codec.

Covers FFmpeg-readable movies, single still images and numbered image sequences.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from bridge import files
from bridge.timecode import snap_rate

from ..paths import PathError, check_listed, pinned, read_bytes
from .errors import MediaError
from .pixels import ColorTags

# Image sequences carry no rate or timecode of their own; write_movie leaves them in this file.
SEQUENCE_SIDECAR = "sequence.json"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".dpx", ".bmp", ".tga", ".webp"})
DEFAULT_IMAGE_RATE = Fraction(24)
_IMAGE_DEMUXERS = {".png": "png_pipe", ".jpg": "jpeg_pipe", ".jpeg": "jpeg_pipe", ".tif": "tiff_pipe",
                   ".tiff": "tiff_pipe", ".exr": "exr_pipe", ".dpx": "dpx_pipe", ".bmp": "bmp_pipe",
                   ".webp": "webp_pipe"}

# Containers whose frame count is the length of a sample table, hence exact without demuxing.
_SAMPLE_TABLE_FORMATS = ("mov", "mp4")

_PRINTF, _NUMBERED = files.PRINTF, files.NUMBERED     # the one parser of sequence names (bridge/files.py)


@dataclass(frozen=True)
class MediaInfo:
    """The facts about one piece of media that range math and conform need."""

    path: Path                  # a movie, a still image, or an image sequence's printf pattern
    width: int
    height: int
    rate: Fraction              # frames per second, exact (24000/1001, never 23.976)
    frame_count: int
    start_timecode: str | None  # "01:00:00:00", or "00:59:59;28" for drop-frame
    drop_frame: bool
    codec: str                  # FFmpeg decoder name: "prores", "h264", "ffv1", "png", ...
    pix_fmt: str                # FFmpeg pixel format: "yuv422p10le", "yuv420p", "rgb24", ...
    is_sequence: bool
    bit_depth: int              # bits per component of the stored pixels
    color: ColorTags = ColorTags()   # matrix, primaries, transfer, range as the file states them
    profile: str | None = None  # the codec's profile ("HQ", "4444", "4444 XQ" for ProRes)
    has_alpha: bool = False
    interlaced: bool = False    # the stream says its pictures are interlaced (field order)
    sample_aspect: Fraction = Fraction(1)   # pixel aspect ratio (1 = square pixels)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return (self.width, self.height)


@dataclass(frozen=True)
class ImageSequence:
    """A run of numbered image files, shot.1001.png .. shot.1048.png, in one directory."""

    directory: Path
    prefix: str
    padding: int
    suffix: str
    first: int
    last: int

    @property
    def pattern(self) -> Path:
        """The printf pattern naming every frame, e.g. /renders/shot.%04d.png."""
        return self.directory / f"{self.prefix}%0{self.padding}d{self.suffix}"

    @property
    def frame_count(self) -> int:
        return self.last - self.first + 1

    def frame_path(self, index: int) -> Path:
        """The file of frame `index`, counted from 0 at the first file of the run."""
        return self.directory / f"{self.prefix}{self.first + index:0{self.padding}d}{self.suffix}"


def find_sequence(path: str | Path) -> ImageSequence | None:
    """The image sequence that `path` names (a printf pattern or a directory), or None for a file."""
    path = Path(path)
    if path.is_dir():
        return _sequence_in_directory(path)
    match = _PRINTF.match(path.name)
    if match is None:
        return None
    prefix, suffix = match["prefix"], match["suffix"]
    padding = int(match["padding"] or 1)
    numbers = _numbers_matching(path.parent, prefix, padding, suffix)
    if not numbers:
        raise MediaError(
            "media_missing",
            f"no files match the image sequence pattern {path}; check the folder and the "
            "padding (%04d means four digits, e.g. shot.0001.png)",
        )
    return ImageSequence(path.parent, prefix, padding, suffix, min(numbers), max(numbers))


def probe(path: str | Path, *, rate: Fraction | int | None = None) -> MediaInfo:
    """Describe the media at `path`: a movie, a still image, a printf pattern or a sequence folder.

    `rate` is only used for images, which carry none of their own: an image sequence written by
    write_movie keeps its rate in a sidecar; otherwise `rate` (default 24) applies.
    """
    path = Path(path)
    sequence = find_sequence(path) if path.is_dir() or "%" in path.name else None
    if sequence is not None:
        return _probe_sequence(sequence, rate)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _probe_still(path, rate)
    return _probe_movie(path)


def open_media(path: Path) -> av.container.InputContainer:
    """Open `path` for reading, turning FFmpeg's failures into MediaErrors that name the file."""
    try:
        with pinned(path) as readable:   # under the server's read policy: opened, checked, pinned
            if readable == str(path) and not path.exists():
                raise MediaError("media_missing", f"media file {path} does not exist; relink or re-render it")
            # a pinned fd path has no file extension: name the image demuxer the suffix implies
            image_format = _IMAGE_DEMUXERS.get(path.suffix.lower()) if readable != str(path) else None
            return av.open(readable, format=image_format)
    except PathError as error:
        raise MediaError(error.code, str(error)) from None
    except av.FFmpegError as error:
        raise MediaError(
            "media_unreadable",
            f"FFmpeg cannot read {path} ({error}); check the file is complete and is video or images",
        ) from error


def video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """The first video stream of `container`; a file without one is refused."""
    if not container.streams.video:
        raise MediaError("no_video_stream", f"{path} has no video stream; pick a file with picture in it")
    return container.streams.video[0]


def stream_rate(stream: av.VideoStream, path: Path) -> Fraction:
    """The stream's frame rate as an exact rational: what the container stores, or the
    standard rate it approximates."""
    for candidate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if candidate:
            return _snapped_rate(Fraction(candidate))
    raise MediaError("media_unreadable", f"{path} states no frame rate; re-wrap it with a constant rate")


def _snapped_rate(rate: Fraction) -> Fraction:
    """A container's rate as the standard rate it stands for (bridge/timecode.py's table)."""
    return snap_rate(rate, Fraction(1, 100_000)) or rate


def bit_depth(pix_fmt: str) -> int:
    """Bits per component of an FFmpeg pixel format: 8 for yuv420p, 10 for yuv422p10le."""
    return max(component.bits for component in av.VideoFormat(pix_fmt).components)


def _probe_movie(path: Path) -> MediaInfo:
    with open_media(path) as container:
        stream = video_stream(container, path)
        rate = stream_rate(stream, path)
        frame_count = _frame_count(container, stream, rate)
        timecode = _timecode(container)
        context = stream.codec_context
        if context.format is None:
            raise MediaError(
                "media_unreadable",
                f"{path} is {context.name} video that this FFmpeg cannot decode; transcode it to "
                "ProRes or H.264 first",
            )
        facts = _picture_facts(context)
        if stream.sample_aspect_ratio:   # the container's word (MOV 'pasp') over the codec's
            facts["sample_aspect"] = Fraction(stream.sample_aspect_ratio)
        return MediaInfo(
            path=path,
            width=context.width,
            height=context.height,
            rate=rate,
            frame_count=frame_count,
            start_timecode=timecode,
            drop_frame=timecode is not None and ";" in timecode,
            codec=context.name,
            pix_fmt=context.format.name,
            is_sequence=False,
            bit_depth=bit_depth(context.format.name),
            **facts,
        )


# AVFieldOrder: 0 unknown, 1 progressive, 2.. the interlaced orders (tt, bb, tb, bt)
_PROGRESSIVE_OR_UNKNOWN = (0, 1)


def _picture_facts(context) -> dict:
    """Colour tags, profile, alpha, interlacing and pixel aspect of a decoder context."""
    fmt = context.format
    try:
        field_order = int(context.field_order or 0)
    except (TypeError, ValueError):
        field_order = 0
    sar = context.sample_aspect_ratio
    return {"color": ColorTags.of(context), "profile": context.profile or None,
            "has_alpha": any(c.is_alpha for c in fmt.components) or fmt.name in ("bgra", "rgba", "argb", "abgr"),
            "interlaced": field_order not in _PROGRESSIVE_OR_UNKNOWN,
            "sample_aspect": Fraction(sar) if sar else Fraction(1)}


def _frame_count(container: av.container.InputContainer, stream: av.VideoStream, rate: Fraction) -> int:
    # A sample table's count is trusted only when the stream's duration agrees with it: an edit
    # list that trims the media makes the two disagree, and then only demuxing tells the truth.
    if stream.frames > 0 and any(name in container.format.name for name in _SAMPLE_TABLE_FORMATS):
        if stream.duration is not None and round(stream.duration * stream.time_base * rate) == stream.frames:
            return stream.frames
    # Demuxing reads packets without decoding them; the last, empty packet is the end marker.
    return sum(1 for packet in container.demux(stream) if packet.size and not packet.is_discard)


def _timecode(container: av.container.InputContainer) -> str | None:
    # MOV/MP4 keep it on the video stream and the tmcd data stream, MKV as a global TIMECODE
    # tag, MXF on the container; take the first one found.
    for metadata in [stream.metadata for stream in container.streams] + [container.metadata]:
        for key, value in metadata.items():
            if key.lower() == "timecode" and value:
                return value
    return None


def _probe_still(path: Path, rate: Fraction | int | None) -> MediaInfo:
    return _image_info(path, path, _image_rate(rate), 1, None, is_sequence=False)


def _probe_sequence(sequence: ImageSequence, rate: Fraction | int | None) -> MediaInfo:
    first_file = sequence.frame_path(0)
    sidecar = _read_sidecar(sequence.directory)
    if sidecar is not None:
        rate = Fraction(sidecar["rate"])
    return _image_info(
        first_file,
        sequence.pattern,
        _image_rate(rate),
        sequence.frame_count,
        sidecar.get("start_timecode") if sidecar else None,
        is_sequence=True,
    )


def _image_info(
    image: Path, path: Path, rate: Fraction, frame_count: int, timecode: str | None, *, is_sequence: bool
) -> MediaInfo:
    with open_media(image) as container:
        context = video_stream(container, image).codec_context
        pix_fmt = context.format.name
        return MediaInfo(
            path=path,
            width=context.width,
            height=context.height,
            rate=rate,
            frame_count=frame_count,
            start_timecode=timecode,
            drop_frame=timecode is not None and ";" in timecode,
            codec=context.name,
            pix_fmt=pix_fmt,
            is_sequence=is_sequence,
            bit_depth=bit_depth(pix_fmt),
            **_picture_facts(context),
        )


def _image_rate(rate: Fraction | int | None) -> Fraction:
    rate = DEFAULT_IMAGE_RATE if rate is None else Fraction(rate)
    if rate <= 0:
        raise MediaError("bad_rate", f"image rate {rate} must be above 0 frames per second, e.g. 24000/1001")
    return rate


def _read_sidecar(directory: Path) -> dict | None:
    sidecar = directory / SEQUENCE_SIDECAR
    if not sidecar.exists():
        return None
    try:
        data = json.loads(read_bytes(sidecar, "image sequence sidecar").decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except PathError as error:
        raise MediaError(error.code, str(error)) from None
    except (OSError, ValueError) as error:
        raise MediaError(
            "media_unreadable",
            f"image sequence sidecar {sidecar} is not readable JSON ({error}); delete it to fall "
            "back to the rate you pass in",
        ) from error


def _numbers_matching(directory: Path, prefix: str, padding: int, suffix: str) -> list[int]:
    _check_listed(directory)
    if not directory.is_dir():
        return []
    numbered = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
    numbers = []
    for entry in directory.iterdir():
        match = numbered.match(entry.name)
        # printf pads to at least `padding` digits, so shot.012.png is not frame 12 of %04d.
        if match and f"{int(match[1]):0{padding}d}" == match[1]:
            numbers.append(int(match[1]))
    return numbers


def _sequence_in_directory(directory: Path) -> ImageSequence:
    _check_listed(directory)
    runs: dict[tuple[str, str], list[str]] = {}
    for entry in directory.iterdir():
        match = _NUMBERED.match(entry.name)
        if match and match["suffix"].lower() in IMAGE_SUFFIXES:
            runs.setdefault((match["prefix"], match["suffix"]), []).append(match["digits"])
    if not runs:
        raise MediaError(
            "media_missing",
            f"folder {directory} holds no numbered images (like shot.0001.png); render the "
            "sequence there or pass the right folder",
        )
    if len(runs) > 1:
        names = ", ".join(sorted(f"{prefix}#{suffix}" for prefix, suffix in runs))
        raise MediaError(
            "media_unreadable",
            f"folder {directory} holds several image sequences ({names}); pass one as a printf "
            f"pattern such as {directory}/shot.%04d.png",
        )
    (prefix, suffix), digits = runs.popitem()
    # Unpadded runs (1, 2, ..., 10) have a 1-digit shortest name, which %01d formats correctly.
    padding = min(len(text) for text in digits)
    numbers = [int(text) for text in digits]
    return ImageSequence(directory, prefix, padding, suffix, min(numbers), max(numbers))


def _check_listed(directory: Path) -> None:
    try:
        check_listed(directory, "image sequence folder")
    except PathError as error:
        raise MediaError(error.code, str(error)) from None
