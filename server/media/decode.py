"""Frame-exact reads of source media into RGB arrays, and of matte media into boolean masks.

Frame 0 is the media's first frame; every decoded picture is placed by its timestamp, not by count.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import Colorspace, Interpolation

from .errors import MediaError
from .probe import IMAGE_SUFFIXES, MediaInfo, bit_depth, find_sequence, open_media, probe, video_stream

# libavutil's AVCOL_SPC_UNSPECIFIED: the file does not say which YUV matrix it used.
_COLORSPACE_UNSPECIFIED = 2
# swscale's fast path copies each chroma sample to its neighbours and truncates; interpolated
# chroma with exact rounding brings a ProRes 4:2:2 round trip from ~1.8 to ~0.01 mean error.
SCALE_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
# Luma above this is "inside" the mask: white paints where generation happens.
_MASK_THRESHOLD = 127


def read_frames(
    path: str | Path, start: int, count: int, *, rate: Fraction | int | None = None
) -> np.ndarray:
    """Frames start .. start+count-1 of `path` as one (count, H, W, 3) uint8 RGB array.

    `rate` only matters for image sequences without a sidecar (see probe()).
    """
    info = probe(path, rate=rate)
    _check_range(info, start, count)
    frames = np.empty((count, info.height, info.width, 3), np.uint8)
    for slot, frame in enumerate(_iter_checked(info, start, count)):
        frames[slot] = frame
    return frames


def iter_frames(
    path: str | Path, start: int = 0, count: int | None = None, *, rate: Fraction | int | None = None
) -> Iterator[np.ndarray]:
    """Like read_frames, one (H, W, 3) frame at a time; count=None reads to the end of the media."""
    info = probe(path, rate=rate)
    if count is None:
        count = info.frame_count - start
    _check_range(info, start, count)
    return _iter_checked(info, start, count)


def read_mask(
    path: str | Path,
    count: int,
    size: tuple[int, int],
    start: int = 0,
    *,
    rate: Fraction | int | None = None,
) -> np.ndarray:
    """`count` masks as a (count, H, W) bool array: True where the matte's luma is above 127.

    A single still image is one mask held for every frame; a movie or sequence is read from
    frame `start`. `size` is the (width, height) the masks must have: the frames they cut.
    """
    info = probe(path, rate=rate)
    if info.size != tuple(size):
        raise MediaError(
            "mask_size_mismatch",
            f"mask {info.path} is {info.width}x{info.height} but the frames it masks are "
            f"{size[0]}x{size[1]}; render the mask at the frame size",
        )
    if not info.is_sequence and info.frame_count == 1:
        still = _mask_of(next(_iter_checked(info, 0, 1)))
        return np.repeat(still[np.newaxis], count, axis=0)
    _check_range(info, start, count)
    masks = np.empty((count, info.height, info.width), bool)
    for slot, frame in enumerate(_iter_checked(info, start, count)):
        masks[slot] = _mask_of(frame)
    return masks


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded picture as (H, W, 3) uint8 RGB, whatever its pixel format and bit depth."""
    if frame.format.name == "rgb24":
        return frame.to_ndarray()
    if _is_deep_rgb_or_gray(frame.format):
        # swscale rounds 16-bit RGB up by one for half of all values (0x8080 -> 0x81);
        # scaling by 255/65535 with rounding gives each 8-bit value back exactly.
        deep = frame.to_ndarray(format="rgb48le").astype(np.uint32)
        return ((deep * 255 + 32767) // 65535).astype(np.uint8)
    matrix = None
    if not frame.format.is_rgb and frame.colorspace == _COLORSPACE_UNSPECIFIED:
        # Untagged YUV: follow what players assume, BT.709 for HD and up, BT.601 below.
        matrix = Colorspace.ITU709 if frame.height >= 720 else Colorspace.ITU601
    return frame.reformat(format="rgb24", src_colorspace=matrix, interpolation=SCALE_FLAGS).to_ndarray()


def _is_deep_rgb_or_gray(pixel_format: av.VideoFormat) -> bool:
    has_no_chroma = pixel_format.is_rgb or len(pixel_format.components) <= 2
    return has_no_chroma and bit_depth(pixel_format.name) > 8


def _mask_of(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) > _MASK_THRESHOLD


def _check_range(info: MediaInfo, start: int, count: int) -> None:
    if start < 0 or count < 0 or start + count > info.frame_count:
        raise MediaError(
            "range_outside_media",
            f"frames {start}..{start + count - 1} ({count} from {start}) are outside {info.path}, "
            f"which has {info.frame_count} frames (0..{info.frame_count - 1}); ask for a range "
            "inside the media, or extend the source",
        )


def _iter_checked(info: MediaInfo, start: int, count: int) -> Iterator[np.ndarray]:
    if count == 0:
        return iter(())
    if info.is_sequence:
        return _iter_sequence(info, start, count)
    if info.path.suffix.lower() in IMAGE_SUFFIXES:
        return _iter_still(info.path)
    return _iter_movie(info, start, count)


def _iter_still(path: Path) -> Iterator[np.ndarray]:
    yield _decode_image(path)


def _iter_sequence(info: MediaInfo, start: int, count: int) -> Iterator[np.ndarray]:
    sequence = find_sequence(info.path)
    for index in range(start, start + count):
        image = sequence.frame_path(index)
        if not image.exists():
            raise MediaError(
                "media_missing",
                f"frame {index} of image sequence {info.path} is missing ({image}); re-render "
                "the gap or trim the range around it",
            )
        yield _decode_image(image)


def _decode_image(path: Path) -> np.ndarray:
    with open_media(path) as container:
        stream = video_stream(container, path)
        for frame in container.decode(stream):
            return to_rgb(frame)
    raise MediaError("media_unreadable", f"image {path} decodes to no picture; re-export it")


def _iter_movie(info: MediaInfo, start: int, count: int) -> Iterator[np.ndarray]:
    end = start + count
    # Seek to a keyframe at or before `start`. With B-frames (open GOPs) the demuxer's index can
    # land on a keyframe shown after `start`, and seeks in MPEG-TS are byte guesses that may land
    # anywhere; then back off further, down to decoding from frame 0.
    backoff = 0
    while True:
        seek_index = max(start - backoff, 0)
        with open_media(info.path) as container:
            pictures = _timed_pictures(container, info, seek_index)
            first = next(pictures, None)
            if (first is not None and first[0] <= start) or seek_index == 0:
                yield from _fill_range(info, start, end, first, pictures)
                return
        backoff = max(2 * backoff, round(info.rate))


def _timed_pictures(
    container: av.container.InputContainer, info: MediaInfo, seek_index: int
) -> Iterator[tuple[int, av.VideoFrame]]:
    """(frame index, picture) in display order, from the keyframe before `seek_index` on."""
    stream = video_stream(container, info.path)
    stream.thread_type = "AUTO"
    origin = stream.start_time or 0
    if seek_index > 0:
        # Flooring keeps the target at or before the frame's own timestamp in coarse time bases
        # (Matroska's milliseconds), so the backward seek never passes it.
        target = origin + int(Fraction(seek_index) / info.rate / stream.time_base)
        container.seek(target, stream=stream, backward=True, any_frame=False)
    try:
        for frame in container.decode(stream):
            if frame.pts is None:
                raise MediaError(
                    "media_unreadable",
                    f"{info.path} has pictures without timestamps, so frames cannot be placed "
                    "exactly; re-wrap it into .mov or .mkv (ffmpeg -i in -c copy out.mov)",
                )
            yield round((frame.pts - origin) * stream.time_base * info.rate), frame
    except av.FFmpegError as error:
        raise MediaError(
            "media_unreadable",
            f"decoding {info.path} failed ({error}); the file may be truncated or damaged",
        ) from error


def _fill_range(
    info: MediaInfo,
    start: int,
    end: int,
    first: tuple[int, av.VideoFrame] | None,
    rest: Iterator[tuple[int, av.VideoFrame]],
) -> Iterator[np.ndarray]:
    """One RGB frame per index start..end-1, holding the last picture over timestamp gaps."""
    wanted = start
    held = None
    pictures = rest if first is None else itertools.chain([first], rest)
    for index, picture in pictures:
        if index >= wanted:
            # A gap in the timestamps (variable frame rate) shows the previous picture, as
            # editors do; duplicates of an index already handed out are skipped.
            filler = picture if held is None else held
            while wanted < min(index, end):
                yield to_rgb(filler)
                wanted += 1
            if wanted < end:
                yield to_rgb(picture)
                wanted += 1
            if wanted >= end:
                return
        held = picture
    if held is None:
        raise MediaError("media_unreadable", f"{info.path} decoded to no pictures from frame {start} on")
    while wanted < end:
        yield to_rgb(held)
        wanted += 1
