"""The OTIO file as an editor (bridge/editor.py's protocol): the command line's `submit` works on
a timeline file the way the Resolve and Blender adapters work on theirs.

Clips are the segments the user chose (by clip name and track, or a track's range), each
identified by its track and position; a take is placed on the in-memory timeline with the
chosen placement (bridge/takes.py), and the caller writes the file. For Generate the "clip" is
a gap (bridge.previs.GapTarget): its take becomes a new clip filling exactly the gap.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import opentimelineio as otio

from .previs import GapTarget, export_gap, place_generated
from .request import JobOptions, build_request
from .takes import check_extension_room, place_take
from .timecode import to_timecode
from .timeline import Segment, global_start, job_timeline, timeline_rate, video_track

PLACEMENT_CHOICES = {"gap": ("gap", False), "ripple": ("ripple", False), "ripple-sync": ("ripple", True),
                     "new-track": ("new_track", False)}


class OtioFileEditor:
    """Segments of an OTIO timeline in memory. `prepare(request, selection)` may rewrite a
    request before it is sent (the command line's --upload); `on_progress(segment, view)` shows
    progress."""

    def __init__(self, timeline: otio.schema.Timeline, segments: Sequence[Segment], *, placement: str = "gap",
                 client_name: str = "takebridge-cli", prepare: Optional[Callable] = None,
                 on_progress: Optional[Callable] = None, library: Optional[dict] = None):
        if placement not in PLACEMENT_CHOICES:
            raise ValueError(f"placement {placement!r} is not one of {', '.join(PLACEMENT_CHOICES)}")
        self.timeline, self.segments = timeline, list(segments)
        self.placement, self.sync = PLACEMENT_CHOICES[placement]
        self.client_name, self.prepare, self.on_progress = client_name, prepare, on_progress
        self.library = library      # the project's characters (bridge.contract), for options.characters
        self.placed = 0
        # each segment's clip by its position, taken now: placing one take may split a clip and
        # shift the positions after it, and two clips may share a name (one source cut in twice)
        self._clips = {id(s): video_track(timeline, s.track_index + 1)[s.item_index] for s in self.segments
                       if not isinstance(s, GapTarget)}

    def clips(self) -> list[Segment]:
        return self.segments

    def describe(self, segment: Segment) -> dict:
        rate = timeline_rate(self.timeline)
        if isinstance(segment, GapTarget):
            return {"item": segment.shot, "track": segment.track_number, "frames": segment.count,
                    "record_start": to_timecode(global_start(self.timeline) + segment.record_start, rate)}
        return {"item": segment.clip, "track": segment.track_index + 1,
                "record_start": to_timecode(global_start(self.timeline) + segment.record_start, rate)}

    def request(self, segment: Segment, options: JobOptions):
        if isinstance(segment, GapTarget):
            if segment.size and not options.width:   # another take of the shot: at its size
                options = dataclasses.replace(options, width=segment.size[0], height=segment.size[1])
            selection = export_gap(self.timeline, segment)
            request = build_request(selection, options, client=self.client_name, keyframes=segment.keyframes,
                                    library=self.library)
            if self.prepare is not None:
                self.prepare(request, selection)
            return request
        if options.op == "extend":       # refused before any compute is spent
            check_extension_room(self.timeline, self._clips[id(segment)], options.side, options.frames,
                                 placement=self.placement, sync=self.sync)
        selection = job_timeline(self.timeline, segment)
        request = build_request(selection, options, client=self.client_name, library=self.library)
        if self.prepare is not None:
            self.prepare(request, selection)
        return request

    def apply(self, segment: Segment, take, options: JobOptions) -> dict:
        if isinstance(segment, GapTarget):
            place_generated(self.timeline, segment, take)
            self.placed += 1
            return {"placed": "gap" if segment.placeholder is None else "take"}
        place_take(self.timeline, self._clips[id(segment)], take, placement=self.placement, sync=self.sync,
                   segment=segment)
        self.placed += 1
        return {"placed": self.placement}

    def progress(self, segment: Segment, view) -> None:
        if self.on_progress is not None:
            self.on_progress(segment, view)
