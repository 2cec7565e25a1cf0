"""Takes on clips: a returned take becomes another media reference on the same OTIO clip.

The original stays under DEFAULT_MEDIA; the take's reference is keyed by its take id and made
active. Takes are anchored to source time (the reference's available range is the take's
source range), so a clip that is moved, slipped or trimmed within the take's handles keeps
its takes.

Extensions lengthen the clip's source range by the generated frames, which only the take
has. Room comes from, by the editor's choice:
  * ``gap`` (default): the neighbouring gap is consumed; a neighbour is never overwritten,
    the refusal names it and the room there is;
  * ``ripple``: the rest of the track moves by the extension; with ``sync`` every other
    track gets the same room at the same time (clips there are split), as a ripple insert;
  * ``new_track``: the extended take goes on a new video track above, the clip stays.
Switching the active take re-fits the clip: deactivating an extension gives its frames back
to a gap (other items never move); activating one takes them again from a gap or the end of
the track, and refuses rather than overwrite.
"""
from __future__ import annotations

import dataclasses
import math
import os
from fractions import Fraction

import opentimelineio as otio
from google.protobuf import json_format

from . import files, metadata, window
from .api import pb
from .selection import SelectionError, find_clip, played_range, speed_of
from .timecode import exact_rate, frames_of, rational_time, to_timecode
from .timeline import source_time_at, timeline_rate

ORIGINAL = otio.schema.Clip.DEFAULT_MEDIA_KEY
ORIGINAL_ALIAS = "original"       # the untouched source; also its key once a take is finalized
STATUS_NAMES = {v: k.lower() for k, v in pb.TakeStatus.items() if v}
STATUS_VALUES = {name: value for value, name in STATUS_NAMES.items()}
OP_NAMES = {v: k.lower() for k, v in pb.Operation.items()}
PLACEMENTS = ("gap", "ripple", "new_track")


class PlacementError(SelectionError):
    """Placing a take would change something the editor did not ask to change."""


@dataclasses.dataclass(frozen=True)
class TakeListing:
    clip: str
    track: int                     # video track number, from 1
    key: str
    take_id: str
    operation: str
    status: str
    version: int
    active: bool
    covers: bool                   # the reference has every source frame the clip uses now
    media: str


# ---------------------------------------------------------------------------------- room

def check_extension_room(timeline: otio.schema.Timeline, clip_name: "str | otio.schema.Clip", side: str, frames: int,
                         *, placement: str = "gap", sync: bool = False, track_number: int | None = None) -> None:
    """Raise PlacementError unless `frames` more frames can go at the clip's `side` with this
    placement, without overwriting anything. The clip is the Clip itself (editors find it by
    position) or its name (on `track_number`)."""
    clip, track = _locate(timeline, clip_name, track_number)
    _check_side(side, frames, placement)
    if placement == "gap":
        _room(clip, track, side, frames, _origin(timeline, clip))
    elif placement == "ripple" and sync:
        _sync_plan(timeline, track, _insert_point(clip, track, side), frames)
    elif placement == "new_track" and side == "head":
        _new_track_start(timeline, clip, track, frames)


def _check_side(side: str, frames: int, placement: str) -> None:
    if side not in ("head", "tail"):
        raise PlacementError("bad_side", f"extension side must be 'head' or 'tail', not {side!r}")
    if frames <= 0:
        raise PlacementError("bad_frames", f"an extension needs at least 1 frame, not {frames}")
    if placement not in PLACEMENTS:
        raise PlacementError("bad_placement", f"placement {placement!r} is not one of {', '.join(PLACEMENTS)}")


def _origin(timeline, clip) -> int:
    """The timeline's first frame in the clip's rate (0 without a global start): refusals name
    the timeline's timecode, not the track's count."""
    start = timeline.global_start_time
    return 0 if start is None else frames_of(start, clip.source_range.start_time.rate)


def _room(clip, track, side: str, frames: int, origin: int = 0):
    """(neighbour gap or None) after checking the room; raises PlacementError.

    The decision is bridge/window.py's, on frames counted from the clip's edge (0) in the
    clip's rate: the neighbouring item (past a gap, measured in time and rounded down: a gap
    shorter than the extension by part of a frame, with mixed rates, has no room) is the span
    the new frames may not reach; the track's start is the floor for a head extension."""
    index = track.index(clip)
    neighbour_index = index + 1 if side == "tail" else index - 1
    if side == "tail" and neighbour_index >= len(track):
        return None  # the end of the track: the track just gets longer
    exact = exact_rate(clip.source_range.start_time.rate)
    rate = float(exact)
    new = (0, frames) if side == "tail" else (-frames, 0)
    room, blocker, gap = 0, None, None
    if 0 <= neighbour_index < len(track):
        neighbour = track[neighbour_index]
        if isinstance(neighbour, otio.schema.Gap):
            gap, seconds = neighbour, neighbour.duration().to_seconds()
            if seconds + 1e-9 >= frames / rate:
                return neighbour
            room = math.floor(seconds * rate + 1e-6)
            beyond = neighbour_index + (1 if side == "tail" else -1)
            blocker = track[beyond] if 0 <= beyond < len(track) else None
            if blocker is None and side == "tail":
                return neighbour  # a trailing gap: consume it, the track gets longer
        else:
            blocker = neighbour
    edge = origin + _edge_frame(track, clip, side)
    others = []
    if blocker is not None:
        name = blocker.name or getattr(blocker, "transition_type", "") or type(blocker).__name__.lower()
        others.append(window.Span(room, room + 1, name) if side == "tail" else window.Span(-room - 1, -room, name))
    try:
        window.check_room(clip.name, new, side, others, floor=None if blocker is not None else -room,
                          floor_name="its track", instead="ask for ripple or a new track",
                          label=lambda frame: to_timecode(edge + frame, exact))
    except window.RoomError as err:
        raise PlacementError(err.code, str(err)) from None
    return gap


def _edge_frame(track, clip, side: str) -> int:
    """The track frame (the clip's rate) at the clip's head or just past its tail; the track's
    own start counts as 00:00:00:00 (a track knows nothing of the timeline's start)."""
    own = track.range_of_child(clip)
    return frames_of(own.end_time_exclusive() if side == "tail" else own.start_time,
                     clip.source_range.start_time.rate)


def _insert_point(clip, track, side: str):
    """Record time (track-local RationalTime) where a ripple inserts the new frames."""
    own = track.range_of_child(clip)
    return own.end_time_exclusive() if side == "tail" else own.start_time


def _sync_plan(timeline, own_track, at, frames: int) -> list:
    """For a sync ripple: (track, index, kind) of where each other track gets the room; refuses
    before anything changes when the point falls inside a transition."""
    rate = exact_rate(at.rate)
    point = at.to_seconds()
    plan = []
    for track in timeline.tracks:
        if track is own_track or not isinstance(track, otio.schema.Track):
            continue
        for index, item in enumerate(track):
            item_range = track.range_of_child_at_index(index)
            if item_range.end_time_exclusive().to_seconds() <= point + 1e-9:
                continue
            if item_range.start_time.to_seconds() >= point - 1e-9:
                plan.append((track, index, None))
                break
            if isinstance(item, otio.schema.Transition):
                raise PlacementError(
                    "no_room", f"a sync ripple at track frame {frames_of(at, rate)} falls inside the transition "
                    f"{item.name or item.transition_type!r} on track {track.name!r}; move the extension point or "
                    f"the transition, or ripple this track only")
            if isinstance(item, otio.schema.Gap):
                plan.append((track, index, None))
                break
            offset = Fraction(point - item_range.start_time.to_seconds()).limit_denominator(1_000_000_000)
            cut = source_time_at(item, offset * rate, rate)
            src_start, src_end = item.source_range.start_time.value, item.source_range.end_time_exclusive().value
            if float(cut) <= src_start + 1e-6:
                plan.append((track, index, None))
            elif float(cut) >= src_end - 1e-6:
                plan.append((track, index + 1, None))
            else:
                plan.append((track, index, cut))
            break
    return plan


def _apply_sync(plan, frames: int, rate) -> None:
    """Room of `frames` frames at `rate` (the extended clip's source rate) where the plan says:
    before item `index`, or inside it at source time `cut` (the clip is split there)."""
    for track, index, cut in plan:
        duration = otio.opentime.RationalTime(frames, rate)
        item = track[index] if index < len(track) else None
        if cut is None and isinstance(item, otio.schema.Gap):  # a gap there just gets longer
            item.source_range = otio.opentime.TimeRange(item.source_range.start_time,
                                                        item.source_range.duration + duration)
            continue
        if cut is not None:
            split_at_source(track, item, cut)
            index += 1
        if index > 0 and isinstance(track[index - 1], otio.schema.Gap):
            gap = track[index - 1]
            gap.source_range = otio.opentime.TimeRange(gap.source_range.start_time,
                                                       gap.source_range.duration + duration)
        else:
            track.insert(index, otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=duration)))


def _new_track_start(timeline, clip, track, frames: int) -> int:
    rate = timeline_rate(timeline)
    start = frames_of(track.range_of_child(clip).start_time, rate)
    if start - frames < 0:
        raise PlacementError("no_room", f"a head extension of {frames} frames on a new track would start "
                                        f"{frames - start} frames before the timeline starts; extend by at most "
                                        f"{start} frames or ripple")
    return start - frames


def split_at_source(track: otio.schema.Track, clip: otio.schema.Clip, cut) -> otio.schema.Clip:
    """Razor `clip` at source time `cut` (source frames; fractional where a mixed-rate clip is
    cut on a record frame boundary); returns the right piece. Both pieces keep the name,
    metadata, every media reference and the active one, as an editor's blade does; the track's
    length and every other item stay where they were."""
    src = clip.source_range
    start, end = src.start_time.value, src.end_time_exclusive().value
    if not start < float(cut) < end:
        raise PlacementError("bad_split", f"cannot split {clip.name!r} at source frame {float(cut):g}: it uses "
                                          f"{start:g}..{end - 1:g}")
    rate = src.start_time.rate
    right = clip.deepcopy()
    clip.source_range = otio.opentime.TimeRange(src.start_time, otio.opentime.RationalTime(float(cut) - start, rate))
    right.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(float(cut), rate),
                                                 otio.opentime.RationalTime(end - float(cut), rate))
    track.insert(track.index(clip) + 1, right)
    return right


# ------------------------------------------------------------------------------ placing

def place_take(timeline: otio.schema.Timeline, clip_name: "str | otio.schema.Clip", take: "pb.Take", *, activate: bool = True,
               placement: str = "gap", sync: bool = False, track_number: int | None = None,
               segment=None) -> otio.schema.Clip:
    """Add `take` to the clip as another media reference (keyed by take id), active by default;
    returns the clip that holds it.

    A take of part of the clip (its selected range inside the clip's source range) splits the
    clip there and goes on the middle piece. An extension lengthens the clip's source range
    by the generated frames with the chosen placement (see the module text). Nothing changes
    when it refuses. `segment` (bridge.timeline.Segment, from the selection) makes a mixed-rate
    split fall exactly on the range's record frames; without it the take's selected source
    frames are the cut points, the same thing when the rates agree.
    """
    clip, track = _clip_for_take(timeline, clip_name, take, track_number)
    if not take.take_id:
        raise PlacementError("bad_take", "the take has no take_id; was the job finished?")
    if take.take_id in clip.media_references():
        raise PlacementError("duplicate_take", f"clip {clip.name!r} already has take {take.take_id!r}")
    extending = take.operation == pb.EXTEND and take.generated_frames > 0
    side = "head" if take.extend_side == pb.HEAD else "tail"
    if extending:
        _check_side(side, take.generated_frames, placement)
        if placement == "gap":
            _room(clip, track, side, take.generated_frames, _origin(timeline, clip))
        elif placement == "ripple" and sync:
            sync_plan = _sync_plan(timeline, track, _insert_point(clip, track, side), take.generated_frames)
        elif placement == "new_track":
            start = (_new_track_start(timeline, clip, track, take.generated_frames) if side == "head"
                     else frames_of(track.range_of_child(clip).start_time, timeline_rate(timeline)))
            clip, track = _copy_to_new_track(timeline, clip, track, start)
    else:
        clip = _isolate_selected(clip, track, take, segment)
    _check_covers(clip, take_reference(take), take.take_id, extension=take if extending else None)
    if extending and placement == "ripple" and sync:
        _apply_sync(sync_plan, take.generated_frames, clip.source_range.start_time.rate)
    references = clip.media_references()
    references[take.take_id] = take_reference(take)
    clip_meta = metadata.read(clip)
    clip_meta.setdefault("shot", take.shot or clip.name)
    clip_meta["takes"] = [*clip_meta.get("takes", []), take.take_id]
    metadata.write(clip, clip_meta)
    clip.set_media_references(references, clip.active_media_reference_key)
    if activate:
        _activate(clip, track, take.take_id, room=placement)
    return clip


def _locate(timeline, clip, track_number):
    """(clip, track) for a Clip itself (found by position) or a clip name."""
    if isinstance(clip, otio.schema.Clip):
        track = clip.parent()
        if track is None:
            raise SelectionError("unknown_clip", f"clip {clip.name!r} is on no track")
        return clip, track
    return find_clip(timeline, clip, track_number=track_number)


def _clip_for_take(timeline, clip_name, take, track_number):
    """The clip a take belongs to: the Clip itself, or by name, narrowed to the one whose source
    range holds the take's selected frames when a split left several pieces with that name."""
    if isinstance(clip_name, otio.schema.Clip):
        return _locate(timeline, clip_name, track_number)
    try:
        return find_clip(timeline, clip_name, track_number=track_number)
    except SelectionError as err:
        if err.code != "ambiguous_clip" or not take.HasField("selected_range"):
            raise
    sel = take.selected_range
    matches = []
    for number, track in enumerate(timeline.video_tracks(), start=1):
        if track_number is not None and number != track_number:
            continue
        for item in track:
            if isinstance(item, otio.schema.Clip) and item.name == clip_name and item.source_range is not None:
                start, end = _frames(item.source_range)
                if start <= sel.start_frame and sel.start_frame + sel.frame_count - take.generated_frames <= end:
                    matches.append((item, track))
    if len(matches) != 1:
        advice = ("place it by position (the clip itself, as the editors and `takebridge submit` do)"
                  if track_number is not None else "name the track (--track N), or place it by position")
        raise SelectionError("ambiguous_clip", f"{len(matches) or 'no'} clips named {clip_name!r}"
                                               f"{f' on V{track_number}' if track_number is not None else ''} hold "
                                               f"source frames {sel.start_frame}..; {advice}")
    return matches[0]


def _isolate_selected(clip, track, take, segment=None):
    """Split the clip so that one piece is exactly the selection."""
    if not take.HasField("selected_range") or not take.selected_range.frame_count:
        return clip
    start, end = clip.source_range.start_time.value, clip.source_range.end_time_exclusive().value
    if speed_of(clip) != 1:        # a speed change plays other source frames than its range counts
        start, played = played_range(clip)
        end = start + played
    sel_start = take.selected_range.start_frame
    sel_end = sel_start + take.selected_range.frame_count
    if segment is not None and segment.cut_in is not None and segment.cut_out is not None:
        sel_start, sel_end = segment.cut_in, segment.cut_out
    if sel_start <= start and sel_end >= end:
        return clip
    if sel_start >= end or sel_end <= start:
        raise PlacementError("take_outside_clip", f"take {take.take_id!r} has source frames {sel_start}.."
                                                  f"{sel_end - 1}, none of which clip {clip.name!r} uses "
                                                  f"({start}..{end - 1})")
    if sel_start > start + 1e-9:
        clip = split_at_source(track, clip, sel_start)
    if sel_end < end - 1e-9:
        split_at_source(track, clip, sel_end)
    return clip


def _copy_to_new_track(timeline, clip, track, start: int):
    """A copy of the clip alone on a new video track just above `track`, starting at record
    frame `start` (timeline-local)."""
    rate = timeline_rate(timeline)
    new = otio.schema.Track(name=f"{track.name} ext", kind=otio.schema.TrackKind.Video)
    if start > 0:
        new.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=rational_time(start, rate))))
    copy = clip.deepcopy()
    data = metadata.read(copy)
    data["extension_of"] = {"track": track.name, "clip": clip.name}
    data.pop("takes", None)
    metadata.write(copy, data)
    refs = {k: v for k, v in copy.media_references().items() if k in (ORIGINAL, ORIGINAL_ALIAS)}
    copy.set_media_references(refs, ORIGINAL)
    new.append(copy)
    stack = timeline.tracks
    stack.insert(list(stack).index(track) + 1, new)
    return copy, new


# ---------------------------------------------------------------------- switching takes

def activate(timeline: otio.schema.Timeline, clip_name: str, take_id: str, *,
             track_number: int | None = None) -> otio.schema.Clip:
    """Make take `take_id` (or "original") the clip's active media, re-fitting an extension."""
    clip, track = _find_with_take(timeline, clip_name, take_id, track_number)
    _activate(clip, track, _key(clip, take_id), room="gap")
    return clip


def _activate(clip, track, key: str, *, room: str) -> None:
    references = clip.media_references()
    current = references[clip.active_media_reference_key]
    target = references[key]
    old_ext, new_ext = _extension_of(current), _extension_of(target)
    start, end = _frames(clip.source_range)
    want_start, want_end = start, end
    if old_ext is not None and key != clip.active_media_reference_key:
        side, gen_start, gen_end = old_ext
        if side == "tail":
            want_end = min(want_end, gen_start)
        else:
            want_start = max(want_start, gen_end)
    if new_ext is not None:
        side, gen_start, gen_end = new_ext
        if side == "tail" and want_end <= gen_start:
            want_end = gen_end
        elif side == "head" and want_start >= gen_end:
            want_start = gen_start
    if want_end <= want_start:
        raise PlacementError("no_frames_left", f"clip {clip.name!r} would have no frames left with {key!r} active")
    used_start, used_end = _used_frames(clip)     # what it plays: a speed change scales the range
    _check_covers_range(clip.name, target, key, used_start + (want_start - start), used_end + (want_end - end),
                        clip.source_range.start_time.rate)
    grow_head, grow_tail = start - want_start, want_end - end
    for side, delta in (("head", grow_head), ("tail", grow_tail)):
        if delta > 0 and room == "gap":
            _room(clip, track, side, delta)
    # every check passed: change the timeline
    for side, delta in (("head", grow_head), ("tail", grow_tail)):
        if delta > 0:
            _grow(clip, track, side, delta, consume_gap=room == "gap")
        elif delta < 0:
            _shrink(clip, track, side, -delta)
    clip.active_media_reference_key = key


def _extension_of(ref):
    """("head"|"tail", first, end) of the source frames only this extension take has."""
    take = take_of_reference(ref)
    if take is None or take.operation != pb.EXTEND or take.generated_frames <= 0:
        return None
    sel = take.selected_range if take.HasField("selected_range") and take.selected_range.frame_count else None
    if take.extend_side == pb.HEAD:
        first = sel.start_frame if sel else take.source_range.start_frame
        return "head", first, first + take.generated_frames
    end = (sel.start_frame + sel.frame_count) if sel else take.source_range.start_frame + take.source_range.frame_count
    return "tail", end - take.generated_frames, end


def _grow(clip, track, side: str, frames: int, *, consume_gap: bool) -> None:
    gap = _room(clip, track, side, frames) if consume_gap else None
    rate = clip.source_range.start_time.rate
    extra = otio.opentime.RationalTime(frames, rate)
    start = clip.source_range.start_time - extra if side == "head" else clip.source_range.start_time
    clip.source_range = otio.opentime.TimeRange(start, clip.source_range.duration + extra)
    if gap is None:
        return
    remaining = gap.duration() - extra.rescaled_to(gap.duration().rate)
    if remaining.value <= 1e-9:
        track.remove(gap)
    else:
        gap.source_range = otio.opentime.TimeRange(gap.source_range.start_time, remaining)


def _shrink(clip, track, side: str, frames: int) -> None:
    """Give `frames` back at the clip's side to a gap; nothing else moves. A tail at the end
    of the track just ends earlier."""
    rate = clip.source_range.start_time.rate
    less = otio.opentime.RationalTime(frames, rate)
    start = clip.source_range.start_time + less if side == "head" else clip.source_range.start_time
    clip.source_range = otio.opentime.TimeRange(start, clip.source_range.duration - less)
    index = track.index(clip)
    neighbour_index = index + 1 if side == "tail" else index - 1
    if side == "tail" and neighbour_index >= len(track):
        return
    if 0 <= neighbour_index < len(track) and isinstance(track[neighbour_index], otio.schema.Gap):
        gap = track[neighbour_index]
        if side == "tail" and neighbour_index == len(track) - 1:
            return  # a trailing gap after the track's last clip only makes the track longer; keep it
        gap.source_range = otio.opentime.TimeRange(gap.source_range.start_time,
                                                   gap.source_range.duration + less.rescaled_to(gap.duration().rate))
        return
    track.insert(index + 1 if side == "tail" else index, otio.schema.Gap(source_range=otio.opentime.TimeRange(
        duration=less)))


def set_status(timeline: otio.schema.Timeline, clip_name: str, take_id: str, status: str, *,
               note: str = "", reviewer: str = "", track_number: int | None = None) -> "pb.Take":
    """Set a take's review status: draft, needs_review, ok, approved or rejected."""
    if status not in STATUS_VALUES:
        raise PlacementError("bad_status", f"status {status!r} is not one of {', '.join(STATUS_VALUES)}")
    clip, _track = _find_with_take(timeline, clip_name, take_id, track_number)
    key = _key(clip, take_id)
    references = clip.media_references()
    ref = references[key]
    take = take_of_reference(ref)
    if take is None:
        raise PlacementError("not_a_take", f"{take_id!r} on clip {clip.name!r} is the original media, which has "
                                           f"no review status")
    take.status = STATUS_VALUES[status]
    if note:
        take.review_note = note
    if reviewer:
        take.reviewer = reviewer
    _store_take(ref, take)
    clip.set_media_references(references, clip.active_media_reference_key)
    return take


def delete_take(timeline: otio.schema.Timeline, clip_name: str, take_id: str, *,
                track_number: int | None = None) -> otio.schema.Clip:
    """Remove a take's reference from the clip (its media and manifest stay on disk). The
    active take gives way to the original first."""
    clip, track = _find_with_take(timeline, clip_name, take_id, track_number)
    key = _key(clip, take_id)
    if key in (ORIGINAL, ORIGINAL_ALIAS):
        raise PlacementError("not_a_take", f"{take_id!r} is clip {clip.name!r}'s own media; it cannot be deleted "
                                           f"as a take")
    if clip.active_media_reference_key == key:
        _activate(clip, track, _key(clip, ORIGINAL_ALIAS), room="gap")
    references = clip.media_references()
    del references[key]
    data = metadata.read(clip)
    data["takes"] = [t for t in data.get("takes", []) if t != key]
    metadata.write(clip, data)
    clip.set_media_references(references, clip.active_media_reference_key)
    return clip


def finalize(timeline: otio.schema.Timeline, clip_name: str, take_id: str, *, drop_others: bool = False,
             track_number: int | None = None) -> otio.schema.Clip:
    """Make a take the clip's media (DEFAULT_MEDIA, what every other tool reads). The original
    stays recoverable under the key "original" (`activate ... original`); the other takes stay
    unless drop_others."""
    clip, track = _find_with_take(timeline, clip_name, take_id, track_number)
    key = _key(clip, take_id)
    if key in (ORIGINAL, ORIGINAL_ALIAS) and ORIGINAL_ALIAS not in clip.media_references():
        raise PlacementError("not_a_take", f"clip {clip.name!r} already plays its original media; name a take")
    _activate(clip, track, key, room="gap")
    references = clip.media_references()
    chosen = references.pop(key)
    if ORIGINAL_ALIAS not in references:
        references[ORIGINAL_ALIAS] = references.pop(ORIGINAL)
    elif key != ORIGINAL:
        references.pop(ORIGINAL)  # a previously finalized take; it stays on disk and in the sidecar history
    data = metadata.read(clip)
    kept = [t for t in data.get("takes", []) if t in references and t != key]
    if drop_others:
        references = {ORIGINAL_ALIAS: references[ORIGINAL_ALIAS]}
        kept = []
    references[ORIGINAL] = chosen
    data["takes"] = kept
    data["finalized"] = {"take": take_id, "original_key": ORIGINAL_ALIAS}
    metadata.write(clip, data)
    clip.set_media_references(references, ORIGINAL)
    return clip


def _find_with_take(timeline, clip_name, take_id, track_number):
    if isinstance(clip_name, otio.schema.Clip):     # the clip itself, found by its place
        clip, track = _locate(timeline, clip_name, track_number)
        if take_id not in (ORIGINAL, ORIGINAL_ALIAS) and take_id not in clip.media_references():
            raise SelectionError("unknown_take", f"clip {clip.name!r} has no take {take_id!r}; list its takes with "
                                                 f"`takebridge timeline takes`")
        return clip, track
    if take_id in (ORIGINAL, ORIGINAL_ALIAS):
        return find_clip(timeline, clip_name, track_number=track_number)
    return find_clip(timeline, clip_name, track_number=track_number, take_id=take_id)


def _key(clip, take_id: str) -> str:
    references = clip.media_references()
    if take_id in (ORIGINAL, ORIGINAL_ALIAS):
        return ORIGINAL_ALIAS if ORIGINAL_ALIAS in references else ORIGINAL
    if take_id not in references:
        known = ", ".join(repr(k) for k in references)
        raise SelectionError("unknown_take", f"clip {clip.name!r} has no take {take_id!r}; it has {known}")
    return take_id


def _used_frames(clip) -> tuple[int, int]:
    """(first, end) of the source frames the clip plays: its source range, or, with a speed change,
    the frames the change makes it play (bridge.selection.played_range)."""
    if speed_of(clip) == 1:
        return _frames(clip.source_range)
    start, played = played_range(clip)
    return start, start + played


def _check_covers(clip, ref, key, *, extension=None) -> None:
    start, end = _used_frames(clip)
    ext = _extension_of(ref) if extension is not None else None
    if ext is not None:
        side, gen_start, gen_end = ext
        start, end = (gen_start, end) if side == "head" else (start, gen_end)
    _check_covers_range(clip.name, ref, key, start, end, clip.source_range.start_time.rate)


def _check_covers_range(name, ref, key, start, end, rate) -> None:
    available = ref.available_range
    if available is None:
        return
    a_start = frames_of(available.start_time, rate)
    a_end = a_start + frames_of(available.duration, rate)
    if start < a_start or end > a_end:
        raise PlacementError(
            "take_does_not_cover", f"{key!r} has source frames {a_start}..{a_end - 1} but clip {name!r} uses "
            f"{start}..{end - 1}; trim the clip to {max(start, a_start)}..{min(end, a_end) - 1} or make the take "
            f"again with more handles")


def _frames(time_range) -> tuple[int, int]:
    """(first, end) of the whole source frames a range shows: a piece of a mixed-rate clip cut
    on a record frame starts or ends part way into a source frame."""
    start = time_range.start_time.value
    end = start + time_range.duration.value
    return math.floor(start + 1e-6), math.ceil(end - 1e-6)


# ----------------------------------------------------------------------------- listing

def list_takes(timeline: otio.schema.Timeline) -> list[TakeListing]:
    """Every clip's references, original first, in the order the takes were added."""
    rows = []
    for number, track in enumerate(timeline.video_tracks(), start=1):
        for clip in track:
            if not isinstance(clip, otio.schema.Clip):
                continue
            references = clip.media_references()
            order = [ORIGINAL, ORIGINAL_ALIAS] + [k for k in metadata.read(clip).get("takes", []) if k in references]
            order += [k for k in references if k not in order]
            for key in order:
                if key not in references:
                    continue
                ref = references[key]
                take = take_of_reference(ref)
                rows.append(TakeListing(
                    clip=clip.name, track=number, key=key,
                    take_id=take.take_id if take else "",
                    operation=OP_NAMES.get(take.operation, "") if take else "original",
                    status=STATUS_NAMES.get(take.status, "") if take else "",
                    version=take.version if take else 0,
                    active=key == clip.active_media_reference_key,
                    covers=_covers(clip, ref),
                    media=reference_path(ref)))
    return rows


def _covers(clip, ref) -> bool:
    if clip.source_range is None or ref.available_range is None:
        return True
    try:
        _check_covers_range(clip.name, ref, "", *_used_frames(clip), clip.source_range.start_time.rate)
    except SelectionError:   # PlacementError included; a reversed clip is covered by nothing
        return False
    return True


# --------------------------------------------------------------------------- references

def take_reference(take: "pb.Take") -> otio.core.MediaReference:
    """An OTIO reference to the take's media with available_range = the take's source range."""
    rate = exact_rate(take.source_range.rate)
    available = otio.opentime.TimeRange(rational_time(take.source_range.start_frame, rate),
                                        rational_time(take.source_range.frame_count, rate))
    url = take.media.url
    if take.media.codec == pb.PNG_SEQUENCE:
        folder, prefix, padding, suffix = _split_pattern(url)
        ref = otio.schema.ImageSequenceReference(
            target_url_base=folder + "/", name_prefix=prefix, name_suffix=suffix,
            start_frame=take.source_range.start_frame, frame_step=1, rate=float(rate),
            frame_zero_padding=padding, available_range=available)
    else:
        ref = otio.schema.ExternalReference(target_url=url, available_range=available)
    ref.name = take.take_id
    _store_take(ref, take)
    return ref


def _store_take(ref, take: "pb.Take") -> None:
    data = metadata.read(ref)
    data["take"] = json_format.MessageToDict(take, preserving_proto_field_name=True)
    metadata.write(ref, data)


def take_of_reference(ref) -> "pb.Take | None":
    data = metadata.read(ref).get("take")
    if not data:
        return None
    return json_format.ParseDict(data, pb.Take(), ignore_unknown_fields=True)


def _split_pattern(pattern: str) -> tuple[str, str, int, str]:
    folder, name = os.path.split(pattern)
    parts = files.printf_pattern(name)
    if parts is None or not parts.padding:
        raise PlacementError("bad_take", f"image sequence {pattern!r} is not a printf pattern like name.%06d.png")
    return folder, parts.prefix, parts.padding, parts.suffix


def reference_path(ref) -> str:
    if isinstance(ref, otio.schema.ExternalReference):
        return ref.target_url
    if isinstance(ref, otio.schema.ImageSequenceReference):
        return ref.target_url_base + ref.name_prefix + f"%0{ref.frame_zero_padding}d" + ref.name_suffix
    return ""
