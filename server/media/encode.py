"""Writing takes to disk: RGB frames in, a ProRes/FFV1/H.264 movie or PNG sequence out.

Rates and start timecodes go into the file exactly; a destination is replaced whole or not at all.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .decode import prefetched
from .errors import MediaError
from .pixels import (
    ColorTags,
    Native,
    float_picture,
    has_alpha,
    native_of_rgb,
    picture_of_rgb,
    rgb_of,
)
from .probe import (
    SEQUENCE_SIDECAR,
    MediaInfo,
    find_sequence,
    open_media,
    probe,
    video_stream,
)
from .timecode import is_drop_frame, timecode_to_frames

# What a take is written with when nothing else is said: BT.709, limited range.
DEFAULT_TAGS = ColorTags(1, 1, 1, 1)

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
    # Avid DNxHR (resolution independent, intra-only): Avid's and Resolve's mastering codec.
    "dnxhr": MovieCodec("dnxhd", "mov", (".mov",), "yuv422p10le", {"profile": "dnxhr_hqx"}),
    # Light proxy for review; faststart so players can begin before the whole file arrives.
    "h264": MovieCodec(
        "libx264", "mp4", (".mp4",), "yuv420p", {"crf": "18", "preset": "medium"}, {"movflags": "+faststart"}
    ),
}
CODECS = (*MOVIE_CODECS, "png", "exr")
SEQUENCE_CODECS = ("png", "exr")
# pixel formats each encoder takes (a take keeps the source's format when its encoder does)
ENCODER_FORMATS = {name: tuple(f.name for f in (av.codec.Codec(movie.encoder, "w").video_formats or ()))
                   for name, movie in MOVIE_CODECS.items()}
PRORES_PROFILES = {"proxy": 0, "lt": 1, "standard": 2, "hq": 3, "4444": 4, "4444xq": 5}
# FFmpeg's decoder names the profiles Proxy, LT, Standard, HQ, 4444, XQ
_PRORES_DECODER_NAMES = {"xq": "4444xq"}
# DNxHR profiles by the pixel formats they store (the decoder names them "DNXHR HQX", ...)
DNXHR_PROFILES = {"dnxhr_lb": ("yuv422p",), "dnxhr_sq": ("yuv422p",), "dnxhr_hq": ("yuv422p",),
                  "dnxhr_hqx": ("yuv422p10le",), "dnxhr_444": ("yuv444p10le", "gbrp10le")}


@dataclass(frozen=True)
class Delivery:
    """How a take is stored: codec, pixel format, codec options and colour tags."""

    codec: str
    pix_fmt: str
    options: dict = field(default_factory=dict)
    color: ColorTags = DEFAULT_TAGS
    sample_aspect: Fraction = Fraction(1)

    def describe(self) -> dict:
        return {"codec": self.codec, "pix_fmt": self.pix_fmt, "options": dict(self.options),
                "color": self.color.describe(), "sample_aspect": str(self.sample_aspect)}


def delivery_for(codec: str, source: MediaInfo | None, depth: int = 8) -> Delivery:
    """The take's format for `codec`, matched to the source: its pixel format where the encoder
    takes it (FFV1 every planar YUV/RGB depth, ProRes 422/4444/4444 XQ with alpha), its ProRes
    profile, its colour tags; PNG at 8 or 16 bits, EXR as half floats (exact for 8-bit sources)
    or 32-bit floats (deeper ones)."""
    color = source.color.stated(source.height) if source is not None else DEFAULT_TAGS
    alpha = source is not None and source.has_alpha
    if codec == "png":
        return Delivery(codec, {(8, False): "rgb24", (16, False): "rgb48be", (8, True): "rgba",
                                (16, True): "rgba64be"}[(depth, alpha)], color=color)
    if codec == "exr":
        return Delivery(codec, "gbrapf32le" if alpha else "gbrpf32le",
                        {"format": "half" if depth == 8 else "float", "compression": "zip1"}, color=color)
    delivery = _matched(codec, source, depth, color, alpha)
    if source is not None and source.sample_aspect != 1 and codec not in SEQUENCE_CODECS:
        delivery = dataclasses.replace(delivery, sample_aspect=source.sample_aspect)
    return delivery


def _matched(codec: str, source: MediaInfo | None, depth: int, color: ColorTags, alpha: bool) -> Delivery:
    movie = MOVIE_CODECS[codec]
    if codec == "h264" or source is None:
        return Delivery(codec, movie.pix_fmt, dict(movie.options), color)
    pix_fmt = source.pix_fmt if source.pix_fmt in ENCODER_FORMATS[codec] else None
    if codec == "ffv1" and pix_fmt is None:
        pix_fmt = {(8, False): "bgr0", (8, True): "bgra", (16, False): "rgb48le", (16, True): "rgba64le"}[(depth, alpha)]
    options = dict(movie.options)
    if codec == "dnxhr":
        return _dnxhr(source, pix_fmt, depth, color, options)
    if codec == "prores":
        chroma_444 = pix_fmt is None and (source.pix_fmt.startswith(("yuv444", "yuva444", "gbr", "rgb", "bgr"))
                                          or alpha)
        pix_fmt = pix_fmt or ("yuva444p10le" if alpha else "yuv444p10le" if chroma_444 else movie.pix_fmt)
        wanted = (source.profile or "").lower().replace(" ", "") if source.codec == "prores" else ""
        wanted = _PRORES_DECODER_NAMES.get(wanted, wanted)
        if wanted not in PRORES_PROFILES:
            wanted = "4444" if pix_fmt.startswith(("yuv444", "yuva444")) else "hq"
        options["profile"] = wanted
        if alpha and pix_fmt.startswith("yuva"):
            options["alpha_bits"] = "16"
        # ProRes is limited-range video by definition: a full-range source is converted, and
        # tagged as what it then is (its look is kept; the numbers change)
        color = dataclasses.replace(color, range=1)
    return Delivery(codec, pix_fmt, options, color)


def _dnxhr(source: MediaInfo, pix_fmt: str | None, depth: int, color: ColorTags, options: dict) -> Delivery:
    """DNxHR in the source's profile and pixel format where they go together; otherwise HQ
    (8-bit 4:2:2), HQX (10-bit 4:2:2) or 444 (10-bit 4:4:4) by the source's depth and chroma."""
    if pix_fmt is None:
        chroma_444 = source.pix_fmt.startswith(("yuv444", "yuva444", "gbr", "rgb", "bgr"))
        pix_fmt = "yuv444p10le" if chroma_444 else "yuv422p" if depth == 8 else "yuv422p10le"
    wanted = _dnxhr_profile(source) if source.codec == "dnxhd" else None
    if wanted is None or pix_fmt not in DNXHR_PROFILES[wanted]:
        wanted = next(name for name in ("dnxhr_hq", "dnxhr_hqx", "dnxhr_444") if pix_fmt in DNXHR_PROFILES[name])
    options["profile"] = wanted
    if not pix_fmt.startswith("gbr"):   # video range by definition, like ProRes
        color = dataclasses.replace(color, range=1)
    return Delivery("dnxhr", pix_fmt, options, color)


def _dnxhr_profile(source: MediaInfo) -> str | None:
    """The encoder's name for a DNxHR source's profile ("DNXHR HQX" -> "dnxhr_hqx"); None for
    DNxHD (fixed sizes and bit rates) and unknown ones."""
    name = (source.profile or "").lower().replace(" ", "_")
    return name if name in DNXHR_PROFILES else None


Progress = Callable[[int, "int | None"], None]


def write_movie(
    frames: np.ndarray | Iterable[np.ndarray | Native],
    dest: str | Path,
    *,
    codec: str = "prores",
    rate: Fraction | int,
    start_timecode: str | None = None,
    drop_frame: bool | None = None,
    progress: Progress | None = None,
    delivery: Delivery | None = None,
    copies: bool = False,
) -> MediaInfo:
    """Encode frames to `dest`; probe it back.

    Frames are RGB ((H, W, 3) uint8, or uint16 at 0..65535 for deep takes) or Native pictures,
    which are written sample for sample when they are already in the delivery's pixel format.
    codec: "prores" (.mov), "dnxhr" (.mov), "ffv1" (.mkv), "h264" (.mp4), "png" or "exr" (`dest` is a folder of
    `<dest name>.NNNNNN.png|exr` plus a sequence.json holding rate and timecode).
    delivery: pixel format, options and colour tags (delivery_for); default: the codec's own.
    copies: frames may be CopiedFrame (the source's own packets); the encoder then runs with
    slice threads only, so it never holds a frame back (frame threads are faster otherwise).
    drop_frame=None takes the counting from the timecode's separator (';' is drop-frame).
    progress(done, total) is called after every frame; total is None for a plain iterator.
    """
    dest = Path(dest)
    rate = _checked_rate(rate)
    start_timecode = _checked_timecode(start_timecode, rate, drop_frame)
    movie = _checked_codec(codec, dest)
    total = len(frames) if hasattr(frames, "__len__") else None
    size, checked = _checked_frames(frames, codec)
    if delivery is None:
        delivery = delivery_for(codec, None)
    elif delivery.codec != codec:
        raise MediaError("unsupported_codec", f"delivery is for {delivery.codec!r}, not {codec!r}")

    def report(done: int) -> None:
        if progress is not None:
            progress(done, total)

    def write(temp: Path) -> None:
        try:
            if movie is None:
                _write_sequence(checked, temp, dest.name, rate, start_timecode, report, delivery, size)
            else:
                _write_movie_file(checked, temp, movie, size, rate, start_timecode, report, delivery, copies)
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
    if codec in SEQUENCE_CODECS:
        if dest.is_file():
            raise MediaError("bad_destination", f"destination {dest} is a file; an image sequence needs a folder name")
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
    frames: np.ndarray | Iterable[np.ndarray | Native], codec: str
) -> tuple[tuple[int, int], Iterator[np.ndarray | Native]]:
    """(width, height) of the first frame, and all frames one at a time, checked against it."""
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise MediaError("bad_frames", "no frames to write; a take needs at least one frame")
    width, height = _size_of(first, 0)
    if codec == "h264" and (width % 2 or height % 2):
        raise MediaError(
            "bad_frames",
            f"H.264 (yuv420p) needs even width and height, frames are {width}x{height}; crop or pad "
            f"to {width + width % 2}x{height + height % 2}, or write prores/ffv1/png",
        )
    return (width, height), _same_size(first, (width, height), iterator)


def _size_of(frame, index: int) -> tuple[int, int]:
    if isinstance(frame, CopiedFrame):
        frame = frame.native
    if isinstance(frame, Native):
        return frame.width, frame.height
    array = np.asarray(frame)
    if array.dtype not in (np.uint8, np.uint16) or array.ndim != 3 or array.shape[2] != 3:
        raise MediaError(
            "bad_frames",
            f"frame {index} is {array.shape} {array.dtype}; frames must be (height, width, 3) uint8 or uint16 RGB",
        )
    return array.shape[1], array.shape[0]


def _same_size(first, size: tuple[int, int], rest: Iterator) -> Iterator[np.ndarray | Native]:
    yield first
    for index, frame in enumerate(rest, start=1):
        if _size_of(frame, index) != size:
            raise MediaError(
                "bad_frames",
                f"frame {index} is {_size_of(frame, index)} but frame 0 is {size}; every frame of a take must "
                "have the same size",
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
    frames: Iterator[np.ndarray | Native],
    temp: Path,
    movie: MovieCodec,
    size: tuple[int, int],
    rate: Fraction,
    start_timecode: str | None,
    report: Callable[[int], None],
    delivery: Delivery,
    copies: bool = False,
) -> None:
    with av.open(str(temp), "w", format=movie.container, options=movie.container_options) as container:
        if start_timecode is not None:
            # MOV/MP4 turn this into a tmcd track, Matroska into a TIMECODE tag; probe reads both.
            container.metadata["timecode"] = start_timecode
        stream = _add_video_stream(container, movie, size, rate, delivery, copies)
        source_packets, held = None, 0   # held: frames the encoder has not given back yet
        try:
            # the frames are made and converted in a thread of its own, a few ahead, while this
            # one encodes and muxes: the same overlap as ffmpeg's decode/filter/encode threads
            for index, item in enumerate(prefetched(_encoder_inputs(frames, delivery), name="takebridge-convert")):
                if isinstance(item, CopiedFrame):
                    # an intra-only codec's frames stand alone: the source's packet is the frame
                    if held:
                        raise MediaError("encode_failed", "the encoder holds frames back, so a copied frame "
                                                          "would land out of order")
                    source_packets = source_packets or _PacketSource(item.path, rate)
                    container.mux(source_packets.packet(item.media_index, index, stream, rate))
                else:
                    picture = item
                    picture.pts = index
                    held += 1
                    for packet in stream.encode(picture):
                        container.mux(packet)
                        held -= 1
                report(index + 1)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            if source_packets is not None:
                source_packets.close()


@dataclass(frozen=True)
class CopiedFrame:
    """A take frame written as the source's own compressed packet (media frame `media_index`
    of `path`): bit-exact even in a lossy codec. `native` is the picture, for anything else."""

    path: Path
    media_index: int
    native: Native


def can_copy_packets(source: MediaInfo, delivery: Delivery) -> bool:
    """Whether a take in `delivery` can carry the source's packets as they are: the same
    intra-only codec (ProRes, DNxHR), profile and pixel format. (Lossless codecs need no copy:
    their untouched frames are re-encoded from the source's own samples, bit for bit.)"""
    if source.is_sequence:   # a PNG sequence into a PNG take of the same format: the files themselves
        return delivery.codec == "png" and source.codec == "png" and source.pix_fmt == delivery.pix_fmt
    if delivery.codec == "prores" and source.codec == "prores":
        wanted = (source.profile or "").lower().replace(" ", "")
        return _PRORES_DECODER_NAMES.get(wanted, wanted) == delivery.options.get("profile")
    if delivery.codec == "dnxhr" and source.codec == "dnxhd":
        return _dnxhr_profile(source) == delivery.options.get("profile") and source.pix_fmt == delivery.pix_fmt
    return False


class _PacketSource:
    """The source's video packets by frame index, read in order (intra-only: one per frame)."""

    def __init__(self, path: Path, rate: Fraction):
        self.container = open_media(Path(path))
        self.stream = video_stream(self.container, Path(path))
        self.origin = self.stream.start_time or 0
        self.rate = rate
        self.packets = self.container.demux(self.stream)
        self.current: tuple[int, bytes] | None = None

    def packet(self, media_index: int, index: int, stream, rate: Fraction) -> av.Packet:
        while self.current is None or self.current[0] < media_index:
            packet = next(self.packets, None)
            if packet is None:
                raise MediaError("media_unreadable", f"the source has no packet for frame {media_index}")
            if not packet.size or packet.pts is None:
                continue
            at = round((packet.pts - self.origin) * self.stream.time_base * self.rate)
            self.current = (at, bytes(packet))
        if self.current[0] != media_index:
            raise MediaError("media_unreadable", f"the source's packets skip frame {media_index}")
        copy = av.Packet(self.current[1])
        copy.pts = copy.dts = index
        copy.duration = 1
        copy.time_base = 1 / Fraction(rate)
        copy.stream = stream
        copy.is_keyframe = True
        return copy

    def close(self) -> None:
        self.container.close()


def _add_video_stream(
    container: av.container.OutputContainer, movie: MovieCodec, size: tuple[int, int], rate: Fraction,
    delivery: Delivery, copies: bool = False,
) -> av.VideoStream:
    # rate= sets the codec time base to exactly 1/rate (1001/24000), which MOV keeps as 1/24000.
    options = dict(delivery.options)
    if delivery.sample_aspect != 1:   # non-square pixels stay what they were (MOV keeps it; MKV does not)
        options["aspect"] = f"{delivery.sample_aspect.numerator}/{delivery.sample_aspect.denominator}"
    stream = container.add_stream(movie.encoder, rate=rate, options=options)
    stream.width, stream.height = size
    stream.pix_fmt = delivery.pix_fmt
    # with copied packets: slice threads, so each frame's packet comes out at once, in order, and
    # a copied source packet can go between two encoded ones (frame threads hold frames back)
    stream.thread_type = "SLICE" if copies else "AUTO"
    # (encoders keep FFmpeg's thread count, $TAKEBRIDGE_MEDIA_THREADS or not: x264's pictures depend
    # on it, and a take must not change with the worker that encoded it)
    _tag(stream.codec_context, delivery)
    return stream


def _tag(context, delivery: Delivery) -> None:
    """Write the colour tags a reader needs to turn the samples back into the same RGB."""
    fmt = av.VideoFormat(delivery.pix_fmt)
    tags = delivery.color
    context.color_primaries, context.color_trc = tags.primaries, tags.transfer
    if not fmt.is_rgb:
        context.colorspace, context.color_range = tags.matrix, tags.range or 1


def _encoder_inputs(frames: Iterator, delivery: Delivery) -> Iterator[av.VideoFrame | CopiedFrame]:
    for item in frames:
        yield item if isinstance(item, CopiedFrame) else picture_of(item, delivery)


def picture_of(item, delivery: Delivery) -> av.VideoFrame:
    """An encoder's input for one take frame: a Native already in the delivery's pixel format as
    it is (sample for sample), anything else converted with the delivery's colour tags."""
    if isinstance(item, CopiedFrame):
        item = item.native
    if isinstance(item, Native):
        if item.pix_fmt == delivery.pix_fmt:
            return item.frame()
        item = _rgb_of_native(item, delivery)
    if not has_alpha(delivery.pix_fmt):
        return picture_of_rgb(np.asarray(item), delivery.pix_fmt, delivery.color)
    return native_of_rgb(np.ascontiguousarray(item), delivery.pix_fmt, delivery.color).frame()


def _rgb_of_native(item: Native, delivery: Delivery) -> np.ndarray:
    depth = 8 if max(c.bits for c in av.VideoFormat(item.pix_fmt).components) <= 8 else 16
    return rgb_of(item.frame(), depth, delivery.color)


def _write_sequence(
    frames: Iterator[np.ndarray | Native],
    temp: Path,
    name: str,
    rate: Fraction,
    start_timecode: str | None,
    report: Callable[[int], None],
    delivery: Delivery,
    size: tuple[int, int],
) -> None:
    temp.mkdir()
    suffix = delivery.codec
    pattern = f"{name}.%0{SEQUENCE_PADDING}d.{suffix}"
    source_sequence = None
    for index, item in enumerate(frames):
        image = temp / (pattern % (SEQUENCE_FIRST_NUMBER + index))
        if isinstance(item, CopiedFrame):
            source_sequence = source_sequence or find_sequence(item.path)
            if source_sequence is not None and _copy_regular(source_sequence.frame_path(item.media_index), image):
                report(index + 1)
                continue
            item = item.native   # not a plain file (a link, say): written from its samples instead
        if delivery.codec == "exr":
            rgb = _rgb_of_native(item, delivery) if isinstance(item, Native) else np.asarray(item)
            item = float_picture(rgb, alpha=delivery.pix_fmt.startswith("gbrap"))
        _write_image(image, item, delivery)
        report(index + 1)
    sidecar = {
        "schema_version": 1,
        "pattern": pattern,
        "first_number": SEQUENCE_FIRST_NUMBER,
        "rate": f"{rate.numerator}/{rate.denominator}",
        "start_timecode": start_timecode,
        "drop_frame": start_timecode is not None and is_drop_frame(start_timecode),
        "pixel_format": delivery.pix_fmt,
        "color": delivery.color.describe(),
    }
    (temp / SEQUENCE_SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")


def _copy_regular(source: Path, dest: Path) -> bool:
    """Copy `source` byte for byte when it is a regular file (never through a link); False
    otherwise, and nothing written."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            return False
        with open(dest, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
    return True


def _write_image(path: Path, item, delivery: Delivery) -> None:
    """One PNG (8 or 16 bits, through OpenCV) or EXR (half or float, through FFmpeg's encoder)."""
    if delivery.codec == "png":
        if isinstance(item, Native):
            item = _rgb_of_native(item, delivery)
        array = np.asarray(item)
        if array.dtype == np.uint8 and delivery.pix_fmt.startswith("rgb48"):
            array = array.astype(np.uint16) * 257
        if not cv2.imwrite(str(path), cv2.cvtColor(array, cv2.COLOR_RGB2BGR)):
            raise OSError(f"OpenCV could not write {path.name} as PNG")
        return
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("exr", rate=1, options=dict(delivery.options))
        stream.width, stream.height, stream.pix_fmt = item.width, item.height, delivery.pix_fmt
        item.pts = 0
        for packet in stream.encode(item):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
