"""Where a take's frames sit against its source, and whether an extension has room: the one
computation the three editors share (the OTIO file, Resolve, Blender), in whatever frame
numbers the editor counts in.

A take's media frame 0 is source frame `take_origin` (the take's source_range.start_frame); the
clip shows source frames from `source_start` at record frame `record_start` for `duration`
frames. An extension adds its generated frames right before (head) or after (tail) that.

Room is decided on spans of record frames: the new frames must not overlap any other item on
the track, and a head extension must not start before the track or timeline does. Refusals name
the blocker, where it is (the editor's timecode), how much room there is, and what to do.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Optional

from .errors import TakeBridgeError


class RoomError(TakeBridgeError):
    """An extension would overwrite a neighbour or start before the timeline."""

    def __init__(self, message: str):
        super().__init__("no_room", message)


@dataclasses.dataclass(frozen=True)
class Span:
    """Record frames start..end (exclusive) taken by `name` (an item on the track)."""

    start: int
    end: int
    name: str = ""


@dataclasses.dataclass(frozen=True)
class TakeWindow:
    """What a take shows on the timeline: record frames `record` (start, end exclusive) show its
    media frames `media`; `new` is the record span of the generated frames (empty but for an
    extension)."""

    record: tuple[int, int]
    media: tuple[int, int]
    new: tuple[int, int]

    @property
    def duration(self) -> int:
        return self.record[1] - self.record[0]


def extension_span(record_start: int, duration: int, side: str, frames: int) -> tuple[int, int]:
    """The record frames an extension of `frames` at `side` ("head"/"tail") takes."""
    if side not in ("head", "tail"):
        raise TakeBridgeError("bad_side", f"extension side must be 'head' or 'tail', not {side!r}")
    if frames <= 0:
        raise TakeBridgeError("bad_frames", f"an extension needs at least 1 frame, not {frames}")
    return (record_start - frames, record_start) if side == "head" else (record_start + duration,
                                                                          record_start + duration + frames)


def take_window(record_start: int, duration: int, source_start: int, take_origin: int, *,
                side: str = "", frames: int = 0, take_frames: Optional[int] = None) -> TakeWindow:
    """Where a take of the clip sits: the clip's own record frames, plus the extension's, showing
    the matching take media frames (media frame = source frame - take_origin). `take_frames`
    (the take media's length) trims the window to what the media has."""
    first = source_start - take_origin          # the take's media frame at the clip's first record frame
    start, end = record_start, record_start + duration
    new = (start, start)
    if frames:
        new = extension_span(record_start, duration, side, frames)
        start, end = min(start, new[0]), max(end, new[1])
    media_start = first - (record_start - start)
    if take_frames is not None:                  # trim to the frames the media really has
        cut_front = max(0, -media_start)
        cut_back = max(0, media_start + (end - start) - take_frames)
        start, end, media_start = start + cut_front, end - cut_back, media_start + cut_front
    return TakeWindow((start, end), (media_start, media_start + max(0, end - start)), new)


def check_room(clip: str, new: tuple[int, int], side: str, others: Iterable[Span], *,
               floor: Optional[int] = None, floor_name: str = "the timeline", track: str = "",
               label: Callable[[int], str] = lambda frame: f"frame {frame}",
               instead: str = "place it on a new track") -> None:
    """Raise RoomError unless the record frames `new` overlap none of `others` (the track's
    other items) and start no earlier than `floor` (the track's or timeline's first frame).
    `label` names a frame in the editor's terms (its timecode); `instead` is what the editor
    can do instead (its other placements); `track` names the track (" on V1")."""
    start, end = new
    frames = end - start
    blockers = [o for o in others if o.start < end and o.end > start]
    if blockers:
        nearest = min(blockers, key=lambda o: o.start) if side == "tail" else max(blockers, key=lambda o: o.end)
        available = max(0, nearest.start - start) if side == "tail" else max(0, end - nearest.end)
        where = nearest.start if side == "tail" else nearest.end - 1
        advice = (f"extend by at most {available} frames, " if available else "") + instead
        raise RoomError(
            f"extending {clip!r} by {frames} frames at the {side} needs {label(start)} to {label(end)}{track}, "
            f"which would overwrite {nearest.name!r} (at {label(where)}): the gap there is only {available} "
            f"frames. {advice[0].upper() + advice[1:]}, or move {nearest.name!r} by {frames - available} frames first")
    if floor is not None and start < floor:
        available = max(0, end - floor)
        if available == 0:
            raise RoomError(f"{clip!r} starts {floor_name} (at {label(floor)}), so a head extension of {frames} "
                            f"frames has no room before it; {instead}, or make room before it first")
        raise RoomError(f"a head extension of {frames} frames would start at {label(start)}, {frames - available} "
                        f"frames before {floor_name} starts (at {label(floor)}); extend by at most {available} "
                        f"frames, {instead}, or make room before it first")
