"""Timeline ranges: a track plus an in/out range becomes one job per clip segment.

Coordinates, the way editors count them:

* **Record time** is timeline time. In/out points are absolute timeline frames (or timecode)
  and include the timeline's `global_start_time` (a timeline starting at 01:00:00:00 has its
  first frame at 86400 at 24 fps). The out point is exclusive, as in an EDL: in 01:00:00:00,
  out 01:00:01:00 at 24 fps is 24 frames.
* **Source time** is the clip's `source_range`, in the media reference's own numbering
  (timecode-absolute when its available range is). Takes are anchored there, never to record
  frames, so a clip that is moved, trimmed within its takes' handles or slipped keeps them.
* **Mixed rates** (the documented rule). A clip whose source rate differs from the timeline's
  plays in real time, as in Resolve, Premiere and Blender: OTIO places it by seconds. A record
  position maps to the source time at that instant: a segment from record offset r to e
  (timeline frames from the clip's real start) uses source frames ``floor(src_start + r *
  src_rate / timeline_rate)`` up to ``ceil(src_start + e * src_rate / timeline_rate)``
  (exclusive), clamped to the clip. The take is generated at the source rate over those
  whole source frames, so it covers every record frame of the segment; record positions are
  OTIO's real-time positions rounded to the nearest timeline frame. When both rates are equal
  all of this is exact integer arithmetic.
* **Handles** are N extra source frames each side of a segment, clamped to the media's
  available range. A transition inside the range needs the media under it, so the handle on
  that side is at least the transition's overlap.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from fractions import Fraction

import opentimelineio as otio

from . import metadata
from .selection import SelectionError, find_clip, media_source, played_range, speed_of
from .timecode import RateError, exact_rate, frames_of, from_timecode, rate_text, to_timecode


@dataclasses.dataclass(frozen=True)
class Segment:
    """The part of one clip a range covers: one job."""

    clip: str
    track_index: int               # 0-based index among the video tracks
    track: str
    item_index: int                # index of the clip in its track
    record_start: int              # timeline-local frames (0 = the timeline's first frame)
    record_duration: int
    source_start: int              # clip source frames (the clip's source rate)
    source_duration: int
    rate: Fraction                 # the clip's source rate
    timeline_rate: Fraction
    head_handles: int              # clamped to the media's available range
    tail_handles: int
    whole_clip: bool               # the segment is the clip's whole source range
    cut_in: Fraction | None = None  # exact source time (in source frames) of the record in point
    cut_out: Fraction | None = None  # ... and out point: fractional only when the rates differ

    @property
    def source_end(self) -> int:
        return self.source_start + self.source_duration

    @property
    def handles(self) -> int:
        return max(self.head_handles, self.tail_handles)


def timeline_rate(timeline: otio.schema.Timeline) -> Fraction:
    """The timeline's rate: its global start time's, else its first clip's."""
    if timeline.global_start_time is not None:
        return exact_rate(timeline.global_start_time.rate)
    for clip in timeline.find_clips():
        if clip.source_range is not None:
            return exact_rate(clip.source_range.start_time.rate)
    raise SelectionError("no_rate", f"timeline {timeline.name!r} has no global start time and no trimmed clip, "
                                    f"so its frame rate is unknown; set its global_start_time")


def global_start(timeline: otio.schema.Timeline) -> int:
    """The timeline's first frame as an absolute frame number (0 without a global start)."""
    if timeline.global_start_time is None:
        return 0
    return frames_of(timeline.global_start_time, timeline_rate(timeline))


def video_track(timeline: otio.schema.Timeline, number: int) -> otio.schema.Track:
    """Video track `number`, counted from 1 from the bottom as editors do (V1, V2...)."""
    tracks = list(timeline.video_tracks())
    if not 1 <= number <= len(tracks):
        raise SelectionError("unknown_track", f"there is no video track V{number}: the timeline has "
                                              f"{len(tracks)} video track(s), V1..V{len(tracks)}")
    return tracks[number - 1]


def parse_point(text, rate, *, what: str = "point") -> int:
    """An absolute timeline frame from timecode ("01:00:00:00", drop frame "00:59:59;28") or a
    plain frame number."""
    if isinstance(text, int):
        return text
    value = str(text).strip()
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        return from_timecode(value, rate)
    except RateError as err:
        raise SelectionError("bad_timecode", f"{what} {text!r}: {err}") from None


def clip_at(timeline: otio.schema.Timeline, track_number: int, point) -> otio.schema.Clip:
    """The clip on video track `track_number` (from 1) that plays at `point` (timeline timecode or
    absolute frame): a clip by its place, for names that repeat (a shot cut in twice)."""
    rate = timeline_rate(timeline)
    track = video_track(timeline, track_number)
    frame = parse_point(point, rate, what="--at") - global_start(timeline)
    for index, item in enumerate(track):
        start, duration = record_range(track, index, rate)
        if start <= frame < start + duration and not isinstance(item, otio.schema.Transition):
            if isinstance(item, otio.schema.Clip):
                return item
            break
    raise SelectionError("unknown_clip", f"no clip plays on V{track_number} at {point} (a gap or the track's end "
                                         f"is there); give a point inside the clip")


def record_range(track: otio.schema.Track, index: int, rate) -> tuple[int, int]:
    """(start, duration) of item `index` on its track in timeline-local frames: the record
    frames whose first instant falls inside it."""
    item_range = track.range_of_child_at_index(index)
    start = _frame_at(item_range.start_time, rate)
    return start, _frame_at(item_range.end_time_exclusive(), rate) - start


def _frame_at(time: otio.opentime.RationalTime, rate) -> int:
    """The first record frame at or after `time` (ceil, tolerant of float noise)."""
    return math.ceil(time.value_rescaled_to(float(exact_rate(rate))) - 1e-6)


def _exact_frames(time: otio.opentime.RationalTime, rate) -> Fraction:
    return Fraction(time.value_rescaled_to(float(exact_rate(rate)))).limit_denominator(1_000_000)


def source_time_at(clip: otio.schema.Clip, record_offset, timeline_rate_) -> Fraction:
    """The exact source time, in source frames, `record_offset` timeline frames (a Fraction
    from the clip's real start) into the clip, clamped to it; fractional when the rates differ.
    Where a take of part of a clip splits it."""
    src = clip.source_range
    rate = exact_rate(src.start_time.rate)
    speed = speed_of(clip)
    played_range(clip)                         # refuses a reversed clip
    scaled = Fraction(record_offset) * rate / exact_rate(timeline_rate_) * speed
    start = Fraction(src.start_time.value).limit_denominator(1_000_000)
    duration = Fraction(src.duration.value).limit_denominator(1_000_000) * speed
    return start + max(Fraction(0), min(duration, scaled))


def select_range(timeline: otio.schema.Timeline, track_number: int, in_point, out_point,
                 *, handles: int = 0) -> list[Segment]:
    """The clip segments of video track `track_number` between in and out (absolute timeline
    frames or timecode, out exclusive), one per clip; gaps give no job.

    Refuses a range of zero length, one outside the track, one that cuts a transition, and
    clips whose media is missing, each naming the value.
    """
    if handles < 0:
        raise SelectionError("bad_handles", f"handles must be >= 0 frames, not {handles}")
    rate = timeline_rate(timeline)
    track = video_track(timeline, track_number)
    origin = global_start(timeline)
    first = parse_point(in_point, rate, what="in point") - origin
    last = parse_point(out_point, rate, what="out point") - origin
    if last <= first:
        raise SelectionError("empty_range", f"the range {_tc(first + origin, rate)}..{_tc(last + origin, rate)} "
                                            f"is {last - first} frames long; the out point (exclusive) must be "
                                            f"after the in point")
    track_frames = _frame_at(track.duration(), rate) if len(track) else 0
    if first < 0 or last > track_frames:
        raise SelectionError("outside_track", f"the range {_tc(first + origin, rate)}..{_tc(last + origin, rate)} "
                                              f"is outside track V{track_number}, which runs "
                                              f"{_tc(origin, rate)}..{_tc(origin + track_frames, rate)}")
    _check_transitions(track, first, last, rate, origin)
    segments = []
    for index, item in enumerate(track):
        if isinstance(item, (otio.schema.Gap, otio.schema.Transition)):
            continue
        start, duration = record_range(track, index, rate)
        lo, hi = max(first, start), min(last, start + duration)
        if hi <= lo:
            continue
        if not isinstance(item, otio.schema.Clip):
            raise SelectionError("unsupported_item", f"the range covers {item.schema_name()} {item.name!r} on "
                                                     f"V{track_number}; only clips can be generated, flatten it first")
        real_start = _exact_frames(track.range_of_child_at_index(index).start_time, rate)
        segments.append(_segment(item, track, track_number - 1, index, rate, lo, hi, start, duration, handles,
                                 real_start))
    return segments


def select_clip(timeline: otio.schema.Timeline, clip_name: str, *, handles: int = 0,
                track_number: int | None = None) -> Segment:
    """The whole of one clip as a segment."""
    if handles < 0:
        raise SelectionError("bad_handles", f"handles must be >= 0 frames, not {handles}")
    clip, track = find_clip(timeline, clip_name, track_number=track_number)
    rate = timeline_rate(timeline)
    index = track.index(clip)
    start, duration = record_range(track, index, rate)
    track_index = list(timeline.video_tracks()).index(track)
    return _segment(clip, track, track_index, index, rate, start, start + duration, start, duration, handles,
                    Fraction(start))


def select_item(timeline: otio.schema.Timeline, track_number: int, item_index: int, *, handles: int = 0) -> Segment:
    """The whole of the clip at `item_index` (0-based, gaps and transitions counted) on video
    track `track_number` (from 1): editors identify a clip by where it is, never by its name
    alone (the same source cut in twice has one name twice)."""
    if handles < 0:
        raise SelectionError("bad_handles", f"handles must be >= 0 frames, not {handles}")
    track = video_track(timeline, track_number)
    if not 0 <= item_index < len(track) or not isinstance(track[item_index], otio.schema.Clip):
        raise SelectionError("unknown_clip", f"V{track_number} has no clip at position {item_index}")
    clip, rate = track[item_index], timeline_rate(timeline)
    start, duration = record_range(track, item_index, rate)
    return _segment(clip, track, track_number - 1, item_index, rate, start, start + duration, start, duration,
                    handles, Fraction(start))


def _segment(clip, track, track_index, index, rate, lo, hi, start, duration, handles, real_start) -> Segment:
    if clip.source_range is None:
        raise SelectionError("no_source_range", f"clip {clip.name!r} has no source range; trim it first")
    media = media_source(clip)  # raises media_missing, naming the clip
    whole = lo == start and hi == start + duration
    if whole:
        src_start, played = played_range(clip)     # a speed change plays more or fewer source frames
        src_end = src_start + played
        cut_in, cut_out = Fraction(src_start), Fraction(src_end)
    else:
        # the split falls exactly on the range's record frames; the take covers every source
        # frame the piece touches
        cut_in, cut_out = source_time_at(clip, lo - real_start, rate), source_time_at(clip, hi - real_start, rate)
        src_start, src_end = math.floor(cut_in), max(math.ceil(cut_out), math.floor(cut_in) + 1)   # a freeze: 1
    head, tail = handles, handles
    before, after = _transition_overlaps(track, index, clip)
    if lo == start:
        head = max(head, before)
    if hi == start + duration:
        tail = max(tail, after)
    if media.available_start is not None and media.available_duration is not None:
        src_rate = exact_rate(clip.source_range.start_time.rate)
        avail_start = frames_of(otio.opentime.RationalTime(media.available_start, float(media.rate)), src_rate)
        avail_end = avail_start + frames_of(otio.opentime.RationalTime(media.available_duration, float(media.rate)),
                                            src_rate)
        head = max(0, min(head, src_start - avail_start))
        tail = max(0, min(tail, avail_end - src_end))
    return Segment(clip=clip.name, track_index=track_index, track=track.name, item_index=index,
                   record_start=lo, record_duration=hi - lo, source_start=src_start,
                   source_duration=src_end - src_start, rate=exact_rate(clip.source_range.start_time.rate),
                   timeline_rate=exact_rate(rate), head_handles=head, tail_handles=tail, whole_clip=whole,
                   cut_in=cut_in, cut_out=cut_out)


def _transition_overlaps(track, index, clip) -> tuple[int, int]:
    """Source frames a clip shows under the transitions on each side of it."""
    rate = clip.source_range.start_time.rate
    before = after = 0
    if index > 0 and isinstance(track[index - 1], otio.schema.Transition):
        before = frames_of(track[index - 1].out_offset, rate)
    if index + 1 < len(track) and isinstance(track[index + 1], otio.schema.Transition):
        after = frames_of(track[index + 1].in_offset, rate)
    return before, after


def _check_transitions(track, first: int, last: int, rate, origin: int) -> None:
    for index, item in enumerate(track):
        if not isinstance(item, otio.schema.Transition):
            continue
        start, duration = record_range(track, index, rate)
        for point, name in ((first, "in"), (last, "out")):
            if start < point < start + duration:
                raise SelectionError(
                    "cuts_transition",
                    f"the {name} point {_tc(point + origin, rate)} cuts the {_label(item)} "
                    f"({_tc(start + origin, rate)}..{_tc(start + duration + origin, rate)}); put it at "
                    f"{_tc(start + origin, rate)} or {_tc(start + duration + origin, rate)}, or remove the transition")


def _label(transition) -> str:
    kind = transition.transition_type
    if transition.name:
        return f"transition {transition.name!r}" + (f" ({kind})" if kind else "")
    return f"{kind} transition" if kind else "transition"


def _tc(frame: int, rate) -> str:
    try:
        return to_timecode(frame, rate)
    except RateError:
        return str(frame)


def segment_metadata(segment: Segment) -> dict:
    return {
        "clip": segment.clip,
        "track": segment.track,
        "track_index": segment.track_index,
        "item_index": segment.item_index,
        "record_start": segment.record_start,
        "record_duration": segment.record_duration,
        "source_start": segment.source_start,
        "source_duration": segment.source_duration,
        "rate": rate_text(segment.rate),
        "timeline_rate": rate_text(segment.timeline_rate),
        "handles": segment.handles,
        "head_handles": segment.head_handles,
        "tail_handles": segment.tail_handles,
        "whole_clip": segment.whole_clip,
        "cut_in": str(segment.cut_in if segment.cut_in is not None else segment.source_start),
        "cut_out": str(segment.cut_out if segment.cut_out is not None else segment.source_end),
    }


def job_timeline(timeline: otio.schema.Timeline, segment: Segment) -> otio.schema.Timeline:
    """The selection one job gets: one track with a copy of the clip trimmed to the segment,
    and the segment's place on the original timeline in the `takebridge` metadata."""
    track = list(timeline.video_tracks())[segment.track_index]
    clip = track[segment.item_index]
    sub = otio.schema.Timeline(name=f"{timeline.name} — {segment.clip}".strip(" —"))
    sub.global_start_time = copy.deepcopy(timeline.global_start_time)
    sub_track = otio.schema.Track(name=track.name, kind=otio.schema.TrackKind.Video)
    piece = clip.deepcopy()
    rate = float(segment.rate)
    piece.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(segment.source_start, rate),
                                                 otio.opentime.RationalTime(segment.source_duration, rate))
    sub_track.append(piece)
    sub.tracks.append(sub_track)
    metadata.write(sub, {"selection": segment_metadata(segment)})
    return sub


def export_selection(timeline: otio.schema.Timeline, clip_name: str, *, handles: int = 0,
                     track_number: int | None = None) -> otio.schema.Timeline:
    """The sub-timeline sent to the server for one whole clip: one track holding a copy of it,
    its place on the original timeline in the `takebridge` metadata. Ranges: export_range."""
    return job_timeline(timeline, select_clip(timeline, clip_name, handles=handles, track_number=track_number))


def export_range(timeline: otio.schema.Timeline, track_number: int, in_point, out_point,
                 *, handles: int = 0) -> otio.schema.Timeline:
    """RANGE.otio: the track trimmed to the range (gaps and transitions kept, boundary clips
    trimmed), starting at the in point, with one segment entry per clip: what an add-on sends.
    `range_jobs()` turns it into the per-clip job selections."""
    segments = select_range(timeline, track_number, in_point, out_point, handles=handles)
    rate = timeline_rate(timeline)
    origin = global_start(timeline)
    first = parse_point(in_point, rate) - origin
    last = parse_point(out_point, rate) - origin
    track = video_track(timeline, track_number)
    local = otio.opentime.TimeRange(otio.opentime.RationalTime(first, float(rate)),
                                    otio.opentime.RationalTime(last - first, float(rate)))
    try:
        trimmed = otio.algorithms.track_trimmed_to_range(track, local)
    except otio.exceptions.CannotTrimTransitionsError:  # select_range names it first; kept as a guard
        raise SelectionError("cuts_transition", "the range cuts a transition") from None
    out = otio.schema.Timeline(name=f"{timeline.name} V{track_number} {_tc(first + origin, rate)}-"
                                    f"{_tc(last + origin, rate)}")
    out.global_start_time = otio.opentime.RationalTime(first + origin, float(rate))
    out.tracks.append(trimmed)
    clips = [item for item in trimmed if isinstance(item, otio.schema.Clip)]
    for item, segment in zip(clips, segments):  # both in track order; gaps give no segment
        data = metadata.read(item)
        data["segment"] = segment_metadata(segment)
        metadata.write(item, data)
    metadata.write(out, {"range": {
        "track": track_number, "track_name": track.name, "in": first + origin, "out": last + origin,
        "in_timecode": _tc(first + origin, rate), "out_timecode": _tc(last + origin, rate),
        "timeline_rate": rate_text(rate), "timeline": timeline.name, "handles": handles,
        "segments": [segment_metadata(s) for s in segments]}})
    jobs = [job_timeline(timeline, s) for s in segments]
    metadata.write(out, {**metadata.read(out), "jobs": [otio.adapters.write_to_string(j, "otio_json") for j in jobs]})
    return out


def range_jobs(range_timeline: otio.schema.Timeline) -> list[otio.schema.Timeline]:
    """The per-segment job selections stored in a RANGE.otio by export_range()."""
    jobs = metadata.read(range_timeline).get("jobs")
    if jobs is None:
        raise SelectionError("not_a_range", f"timeline {range_timeline.name!r} is not a range export; make one "
                                            f"with `takebridge timeline export-range`")
    return [otio.adapters.read_from_string(text, "otio_json") for text in jobs]
