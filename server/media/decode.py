"""Frame-exact reads of source media into RGB arrays, and of matte media into boolean masks.

Frame 0 is the media's first frame; every decoded picture is placed by its timestamp, not by count.
"""
from __future__ import annotations

import heapq
import itertools
import queue
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import MediaError
from .pixels import SCALE_FLAGS, ColorTags, Native, media_threads, rgb_of
from .probe import IMAGE_SUFFIXES, MediaInfo, find_sequence, open_media, probe, video_stream

__all__ = ["SCALE_FLAGS", "iter_frames", "iter_masks", "iter_pictures", "read_frames", "read_mask", "to_rgb"]
# Luma above this is "inside" the mask: white paints where generation happens.
_MASK_THRESHOLD = 127


def read_frames(
    path: str | Path, start: int, count: int, *, rate: Fraction | int | None = None, depth: int = 8
) -> np.ndarray:
    """Frames start .. start+count-1 of `path` as one (count, H, W, 3) RGB array: uint8 at
    depth 8, uint16 (0..65535) at depth 16, converted with the media's own colour tags.

    `rate` only matters for image sequences without a sidecar (see probe()).
    """
    info = probe(path, rate=rate)
    _check_range(info, start, count)
    frames = np.empty((count, info.height, info.width, 3), np.uint8 if depth == 8 else np.uint16)
    for slot, (rgb, _) in enumerate(iter_pictures(path, start, count, rate=rate, depth=depth, native=False)):
        frames[slot] = rgb
    return frames


def iter_frames(
    path: str | Path, start: int = 0, count: int | None = None, *, rate: Fraction | int | None = None,
    depth: int = 8
) -> Iterator[np.ndarray]:
    """Like read_frames, one (H, W, 3) frame at a time; count=None reads to the end of the media."""
    return (rgb for rgb, _ in iter_pictures(path, start, count, rate=rate, depth=depth, native=False))


def iter_pictures(
    path: str | Path, start: int = 0, count: int | None = None, *, rate: Fraction | int | None = None,
    depth: int = 8, native: bool = True, timing: dict | None = None
) -> Iterator[tuple[np.ndarray, Native | None]]:
    """(working RGB at `depth`, the picture's own planes or None) for each frame of the range.
    `timing`, when given, counts what variable frame timing made the reader do: "held" frames
    (a picture shown again over a timestamp gap) and "skipped" pictures (a second picture for a
    frame already given)."""
    info = probe(path, rate=rate)
    if count is None:
        count = info.frame_count - start
    _check_range(info, start, count)
    tags = _tags(info)
    return prefetched((rgb_of(picture, depth, tags), Native.of(picture) if native else None)
                      for picture in _iter_checked(info, start, count, timing))


# pictures held to put a long-GOP stream that does not state its reordering back in display
# order (H.264 reorders at most a few pictures in practice; each held picture costs its memory)
REORDER_WINDOW = 4
PREFETCH = 3   # decoded and converted frames a reader runs ahead of its consumer


def prefetched(items: Iterator, ahead: int = PREFETCH, name: str = "takebridge-decode") -> Iterator:
    """`items` produced in a thread of its own, at most `ahead` in advance: decoding and colour
    conversion (which release the GIL) overlap with whatever the consumer does with the frames
    before. Errors reach the consumer where they happened; a consumer that stops early stops the
    producer."""
    slots: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((done, None))
        except BaseException as error:   # handed to the consumer, raised there
            slots.put((done, error))

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():   # let the producer see the stop and end
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


def _tags(info: MediaInfo) -> ColorTags | None:
    """The media's stated colour tags (None: each picture's own)."""
    return info.color if info.color != ColorTags() else None


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
    masks = np.empty((count, size[1], size[0]), bool)
    for slot, mask in enumerate(iter_masks(path, list(range(start, start + count)), size, rate=rate)):
        masks[slot] = mask
    return masks


def iter_masks(
    path: str | Path,
    indexes: list[int],
    size: tuple[int, int],
    *,
    rate: Fraction | int | None = None,
) -> Iterator[np.ndarray]:
    """The masks of matte frames `indexes` (non-decreasing; repeats hold a frame) one at a time,
    as (H, W) bool arrays; a single still image is one mask for every index."""
    info = probe(path, rate=rate)
    if info.size != tuple(size):
        raise MediaError(
            "mask_size_mismatch",
            f"mask {info.path} is {info.width}x{info.height} but the frames it masks are "
            f"{size[0]}x{size[1]}; render the mask at the frame size",
        )
    if not indexes:
        return
    if not info.is_sequence and info.frame_count == 1:
        still = _mask_of(to_rgb(next(_iter_checked(info, 0, 1))))
        for _ in indexes:
            yield still
        return
    first, last = indexes[0], indexes[-1]
    _check_range(info, first, last - first + 1)
    pictures = enumerate(_iter_checked(info, first, last - first + 1), start=first)
    current, mask = first - 1, None
    for index in indexes:
        while current < index:
            current, picture = next(pictures)
            if current == index:
                mask = _mask_of(to_rgb(picture))
        yield mask


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded picture as (H, W, 3) uint8 RGB, whatever its pixel format and bit depth."""
    return rgb_of(frame, 8)


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


def _iter_checked(info: MediaInfo, start: int, count: int, timing: dict | None = None) -> Iterator[av.VideoFrame]:
    if count == 0:
        return iter(())
    if info.is_sequence:
        return _iter_sequence(info, start, count)
    if info.path.suffix.lower() in IMAGE_SUFFIXES:
        return _iter_still(info.path)
    return _iter_movie(info, start, count, {} if timing is None else timing)


def _iter_still(path: Path) -> Iterator[av.VideoFrame]:
    yield _decode_image(path)


def _iter_sequence(info: MediaInfo, start: int, count: int) -> Iterator[av.VideoFrame]:
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


def _decode_image(path: Path) -> av.VideoFrame:
    with open_media(path) as container:
        stream = video_stream(container, path)
        for frame in container.decode(stream):
            return frame
    raise MediaError("media_unreadable", f"image {path} decodes to no picture; re-export it")


def _iter_movie(info: MediaInfo, start: int, count: int, timing: dict) -> Iterator[av.VideoFrame]:
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
                yield from _fill_range(info, start, end, first, pictures, timing)
                return
        backoff = max(2 * backoff, round(info.rate))


def _timed_pictures(
    container: av.container.InputContainer, info: MediaInfo, seek_index: int
) -> Iterator[tuple[int, av.VideoFrame]]:
    """(frame index, picture) in display order, from the keyframe before `seek_index` on."""
    stream = video_stream(container, info.path)
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = media_threads()
    origin = stream.start_time or 0
    if seek_index > 0:
        # Flooring keeps the target at or before the frame's own timestamp in coarse time bases
        # (Matroska's milliseconds), so the backward seek never passes it.
        target = origin + int(Fraction(seek_index) / info.rate / stream.time_base)
        container.seek(target, stream=stream, backward=True, any_frame=False)
    # Codecs with B-frames: a stream that does not state its reordering depth (some cameras'
    # and phones' H.264) comes out of a threaded decoder in coded order; a few pictures held in
    # a heap by timestamp put them back in display order. Intra-only codecs need none.
    window = REORDER_WINDOW if stream.codec_context.codec.reorder else 0
    held: list = []
    try:
        for number, frame in enumerate(container.decode(stream)):
            if frame.pts is None:
                raise MediaError(
                    "media_unreadable",
                    f"{info.path} has pictures without timestamps, so frames cannot be placed "
                    "exactly; re-wrap it into .mov or .mkv (ffmpeg -i in -c copy out.mov)",
                )
            heapq.heappush(held, (frame.pts, number, frame))
            if len(held) > window:
                pts, _, picture = heapq.heappop(held)
                yield round((pts - origin) * stream.time_base * info.rate), picture
        while held:
            pts, _, picture = heapq.heappop(held)
            yield round((pts - origin) * stream.time_base * info.rate), picture
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
    timing: dict,
) -> Iterator[av.VideoFrame]:
    """One picture per index start..end-1, holding the last picture over timestamp gaps."""
    timing.setdefault("held", 0)
    timing.setdefault("skipped", 0)
    wanted = start
    held = None
    pictures = rest if first is None else itertools.chain([first], rest)
    for index, picture in pictures:
        if index >= wanted:
            # A gap in the timestamps (variable frame rate) shows the previous picture, as
            # editors do; duplicates of an index already handed out are skipped.
            filler = picture if held is None else held
            while wanted < min(index, end):
                timing["held"] += 1
                yield filler
                wanted += 1
            if wanted < end:
                yield picture
                wanted += 1
            if wanted >= end:
                return
        elif index >= start:
            timing["skipped"] += 1
        held = picture
    if held is None:
        raise MediaError("media_unreadable", f"{info.path} decoded to no pictures from frame {start} on")
    while wanted < end:
        timing["held"] += 1
        yield held
        wanted += 1
