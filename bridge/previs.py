"""Generate: a pre-vis shot made where the timeline has none.

The target is a **gap** on a video track (or a range past the track's end, or the pre-vis clip
an earlier Generate made there) with an exact length. `find_gap()` checks the range is empty and
names what is in the way; `export_gap()` makes the selection a job gets (one placeholder clip of
that length whose media is a GeneratorReference of kind ``TakeBridgePrevis``, and the outgoing and
incoming clips' frames for the keyframes mode); `place_generated()` puts the take in: a new clip
filling exactly that range, whose media references are its takes (v001, v002...).
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import opentimelineio as otio

from . import metadata
from .selection import PREVIS_KIND, SelectionError, media_source, played_range
from .timecode import exact_rate, rate_text, to_timecode
from .timeline import global_start, parse_point, record_range, timeline_rate, video_track



@dataclasses.dataclass
class FrameSource:
    """One frame of a neighbouring clip: its media and the 0-based frame index in it."""

    clip: str
    path: str
    frame: int


@dataclasses.dataclass
class GapTarget:
    """Where a generated shot goes: track, timeline-local first frame and length."""

    track_number: int
    record_start: int                     # timeline-local frames (0 = the timeline's first frame)
    count: int
    rate: Fraction                        # the timeline's
    shot: str
    placeholder: otio.schema.Clip | None = None   # the pre-vis clip already there (another take)
    before: FrameSource | None = None     # the outgoing clip's last frame, when it touches the gap
    after: FrameSource | None = None      # the incoming clip's first frame
    size: tuple[int, int] | None = None   # the shot's size, when its earlier takes set it

    @property
    def clip(self) -> str:
        """The name progress and results show (the shot's, as a clip's name is for the others)."""
        return self.shot

    @property
    def keyframes(self) -> tuple[FrameSource, FrameSource] | None:
        return (self.before, self.after) if self.before is not None and self.after is not None else None


def is_previs(clip) -> bool:
    """A clip Generate made (or its placeholder)."""
    if not isinstance(clip, otio.schema.Clip):
        return False
    if isinstance(clip.media_reference, otio.schema.GeneratorReference) and \
            clip.media_reference.generator_kind == PREVIS_KIND:
        return True
    try:
        return bool(metadata.read(clip).get("previs"))
    except metadata.MetadataError:
        return False


def gap_under(timeline: otio.schema.Timeline, track_number: int, point) -> tuple[int, int]:
    """(first, last + 1) absolute frames of the gap on the track at `point` (the playhead): from
    the clip before it to the clip after it. Past the track's end there is no end to find: refused."""
    rate = timeline_rate(timeline)
    track = video_track(timeline, track_number)
    origin = global_start(timeline)
    frame = parse_point(point, rate, what="playhead") - origin
    for index, item in enumerate(track):
        start, duration = record_range(track, index, rate)
        if start <= frame < start + duration:
            if isinstance(item, otio.schema.Gap):
                return start + origin, start + duration + origin
            if is_previs(item):
                return start + origin, start + duration + origin
            raise SelectionError("range_not_empty", f"{_tc(frame + origin, rate)} on V{track_number} is inside clip "
                                                    f"{item.name!r}, not a gap; move the playhead to a gap or give "
                                                    f"--in and --out-point")
    raise SelectionError("no_gap", f"{_tc(frame + origin, rate)} is past the end of V{track_number}: there is no gap "
                                   f"to fill there; give --in and --out-point for the shot's length")


def find_gap(timeline: otio.schema.Timeline, track_number: int, in_point, out_point, *,
             shot: str = "") -> GapTarget:
    """The range [in, out) on video track `track_number` (from 1) as a place for a generated shot.

    Refused, naming it, when a clip is in the way (unless it is a pre-vis clip covering exactly
    this range: then the new take goes on it) and when the length is zero or negative."""
    rate = timeline_rate(timeline)
    origin = global_start(timeline)
    first = parse_point(in_point, rate, what="--in") - origin
    last = parse_point(out_point, rate, what="--out-point") - origin
    count = last - first
    if count <= 0:
        raise SelectionError("bad_range", f"the range {_tc(first + origin, rate)}-{_tc(last + origin, rate)} is "
                                          f"{count} frames; the out point must come after the in point")
    if first < 0:
        raise SelectionError("bad_range", f"{_tc(first + origin, rate)} is before the timeline's start "
                                          f"{_tc(origin, rate)}")
    track = video_track(timeline, track_number)
    target = GapTarget(track_number, first, count, rate, shot)
    for index, item in enumerate(track):
        start, duration = record_range(track, index, rate)
        end = start + duration
        if isinstance(item, otio.schema.Gap) or end <= first or start >= last:
            if isinstance(item, otio.schema.Clip) and end == first:
                target.before = _edge_frame(item, "last")
            if isinstance(item, otio.schema.Clip) and start == last:
                target.after = _edge_frame(item, "first")
            continue
        if isinstance(item, otio.schema.Transition):
            raise SelectionError("range_not_empty", f"the range {_tc(first + origin, rate)}-{_tc(last + origin, rate)} "
                                                    f"crosses a transition on V{track_number}; remove it first")
        if is_previs(item) and (start, end) == (first, last):
            target.placeholder = item
            continue
        raise SelectionError("range_not_empty",
                             f"the range {_tc(first + origin, rate)}-{_tc(last + origin, rate)} on V{track_number} "
                             f"is not empty: clip {item.name!r} plays {_tc(start + origin, rate)}-"
                             f"{_tc(end + origin, rate)}; choose a gap, another track, or cut the clip out first")
    if target.placeholder is not None:
        target.shot = shot or _shot_of(target.placeholder)
        size = _previs_info(target.placeholder).get("size")
        if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
            target.size = (size[0], size[1])
    if not target.shot:
        target.shot = f"previs_{track_number}_{_tc(first + origin, rate).replace(':', '').replace(';', '')}"
    return target


def export_gap(timeline: otio.schema.Timeline, target: GapTarget) -> otio.schema.Timeline:
    """The selection a Generate job gets: one track holding a placeholder clip of exactly the
    gap's length (at the timeline's rate), its place on the timeline in the metadata."""
    rate = float(target.rate)
    length = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                     otio.opentime.RationalTime(target.count, rate))
    placeholder = otio.schema.Clip(
        name=target.shot, source_range=length,
        media_reference=otio.schema.GeneratorReference(name=target.shot, generator_kind=PREVIS_KIND,
                                                       available_range=length))
    metadata.write(placeholder, {"shot": target.shot, "previs": {"track": target.track_number}})
    track = otio.schema.Track(name=f"V{target.track_number}", kind=otio.schema.TrackKind.Video)
    track.append(placeholder)
    sub = otio.schema.Timeline(name=f"{timeline.name} — {target.shot}".strip(" —"))
    sub.global_start_time = otio.opentime.RationalTime(global_start(timeline), rate)
    sub.tracks.append(track)
    metadata.write(sub, {"selection": {"clip": target.shot, "record_start": target.record_start,
                                       "timeline_rate": rate_text(target.rate), "handles": 0,
                                       "track": target.track_number}})
    return sub


def place_generated(timeline: otio.schema.Timeline, target: GapTarget, take) -> otio.schema.Clip:
    """Put a Generate take (pb.Take) on the timeline: on the pre-vis clip already there, as
    another take, or as a new clip filling exactly the gap. Returns the clip."""
    from .takes import place_take, take_reference

    if target.placeholder is not None:
        return place_take(timeline, target.placeholder, take)
    if exact_rate(take.source_range.rate) != target.rate or take.source_range.frame_count != target.count:
        raise SelectionError("bad_take", f"take {take.take_id} has {take.source_range.frame_count} frames at "
                                         f"{rate_text(exact_rate(take.source_range.rate))} fps; the gap is "
                                         f"{target.count} at {rate_text(target.rate)}")
    rate = float(target.rate)
    reference = take_reference(take)
    clip = otio.schema.Clip(name=target.shot, source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(take.source_range.start_frame, rate),
        otio.opentime.RationalTime(target.count, rate)))
    clip.set_media_references({take.take_id: reference}, take.take_id)
    metadata.write(clip, {"shot": target.shot, "takes": [take.take_id],
                          "previs": {"track": target.track_number, "size": [take.media.width, take.media.height]}})
    _fill(video_track(timeline, target.track_number), target.record_start, target.count, clip, target.rate)
    return clip


def _fill(track: otio.schema.Track, first: int, count: int, clip: otio.schema.Clip, rate: Fraction) -> None:
    """Put `clip` at [first, first + count) of `track`, where only gaps (or nothing) are."""
    fps = float(rate)

    def gap(frames: int) -> otio.schema.Gap:
        return otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(frames, fps)))
    end = sum(record_range(track, i, rate)[1] for i, item in enumerate(track)
              if not isinstance(item, otio.schema.Transition))
    if first >= end:
        if first > end:
            track.append(gap(first - end))
        track.append(clip)
        return
    # the gaps the range covers become: [gap before] clip [gap after]
    covered = [(i, *record_range(track, i, rate)) for i, item in enumerate(track)
               if isinstance(item, otio.schema.Gap)]
    covered = [(i, s, d) for i, s, d in covered if s < first + count and s + d > first]
    lead = first - covered[0][1]
    tail = covered[-1][1] + covered[-1][2] - (first + count)
    index = covered[0][0]
    for i, _, _ in reversed(covered):
        del track[i]
    pieces = ([gap(lead)] if lead > 0 else []) + [clip] + ([gap(tail)] if tail > 0 else [])   # (tail < 0: past the end)
    for offset, piece in enumerate(pieces):
        track.insert(index + offset, piece)


def _edge_frame(clip: otio.schema.Clip, which: str) -> FrameSource | None:
    """The clip's first or last frame as played, as a media frame index (None when its media
    cannot be read: a generator, an offline clip)."""
    try:
        media = media_source(clip)
        start, played = played_range(clip)
    except SelectionError:
        return None
    if media.kind != "movie" and media.kind != "sequence" or played <= 0:
        return None
    rate = exact_rate(clip.source_range.start_time.rate)
    frame = start if which == "first" else start + played - 1
    origin = media.available_start if media.available_start is not None else 0
    seconds = Fraction(frame) / rate - Fraction(origin) / media.rate
    index = math.floor(seconds * media.rate + Fraction(1, 2))
    return FrameSource(clip.name, media.path, max(0, index))


def _previs_info(clip: otio.schema.Clip) -> dict:
    try:
        info = metadata.read(clip).get("previs")
    except metadata.MetadataError:
        return {}
    return info if isinstance(info, dict) else {}


def _shot_of(clip: otio.schema.Clip) -> str:
    try:
        return metadata.read(clip).get("shot") or clip.name
    except metadata.MetadataError:
        return clip.name


def _tc(frame: int, rate) -> str:
    try:
        return to_timecode(frame, rate)
    except ValueError:
        return f"frame {frame}"


REPLACED_TRACK = "TakeBridge pre-vis (replaced)"


def replace_previs(timeline: otio.schema.Timeline, clip: otio.schema.Clip, footage: otio.schema.Clip
                   ) -> otio.schema.Clip:
    """Real footage arrives: `footage` is cut in over the pre-vis shot `clip`, frame for frame
    (its length must be the shot's), and the shot, with every take, moves to a disabled track
    named REPLACED_TRACK at the same place: kept in the project as an original is, out of the
    picture. Returns the footage clip now on the timeline."""
    if not is_previs(clip):
        raise SelectionError("not_previs", f"clip {clip.name!r} is not a pre-vis shot; cut the footage in as usual")
    rate = timeline_rate(timeline)
    track = clip.parent()
    index = list(track).index(clip)
    start, count = record_range(track, index, rate)
    length = footage.duration().rescaled_to(float(rate)).value
    if round(length) != count or abs(length - round(length)) > 1e-6:
        raise SelectionError("bad_range", f"the footage clip {footage.name!r} runs {length:g} frames and the shot "
                                          f"{clip.name!r} {count}; trim the footage to the shot's length first")
    del track[index]
    track.insert(index, footage)
    info = _previs_info(clip)
    info["replaced_by"] = {"clip": footage.name, "media": getattr(footage.media_reference, "target_url", "")}
    data = metadata.read(clip)
    data["previs"] = info
    metadata.write(clip, data)
    holder = next((t for t in timeline.video_tracks() if t.name == REPLACED_TRACK), None)
    if holder is None:
        holder = otio.schema.Track(name=REPLACED_TRACK, kind=otio.schema.TrackKind.Video)
        holder.enabled = False
        timeline.tracks.append(holder)
    _fill(holder, start, count, clip, rate)
    return footage


def previs_summary(timeline: otio.schema.Timeline) -> dict:
    """Pre-vis shots on a timeline: how many, how many replaced by footage, their takes."""
    shots = [c for c in timeline.find_clips() if is_previs(c)]
    replaced = [c for c in shots if _previs_info(c).get("replaced_by")]
    return {"shots": len(shots), "replaced": len(replaced),
            "takes": sum(len(c.media_references()) for c in shots),
            "replaced_shots": sorted(c.name for c in replaced),
            "open_shots": sorted(c.name for c in shots if c not in replaced)}
