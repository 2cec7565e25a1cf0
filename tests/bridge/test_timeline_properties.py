"""Property tests over generated timelines (several tracks, gaps, dissolves, mixed rates, start
timecodes): a take changes nothing outside its selection, an extension changes the track by
exactly the extension or not at all, and switching back to the original restores what the
editor saw, frame by frame."""
from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bridge.api import pb
from bridge.selection import SelectionError
from bridge.takes import ORIGINAL, PlacementError, activate, place_take
from bridge.timeline import global_start, select_clip, select_range

from support.timeline_strategies import fake_take, frame_map, rate_of, timelines, track_frames

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _json(obj) -> str:
    return otio.adapters.write_to_string(obj, "otio_json")


def _clip_places(timeline):
    return [(n, i) for n, track in enumerate(timeline.video_tracks(), start=1)
            for i, item in enumerate(track) if isinstance(item, otio.schema.Clip)]


@SETTINGS
@given(timeline=timelines(), data=st.data())
def test_a_range_take_changes_nothing_outside_the_selection(timeline, data):
    rate = rate_of(timeline)
    number = data.draw(st.integers(1, len(timeline.video_tracks())), label="track")
    track = timeline.video_tracks()[number - 1]
    total = track_frames(track, rate)
    assume(total >= 1)
    first = data.draw(st.integers(0, total - 1), label="in")
    last = data.draw(st.integers(first + 1, total), label="out")
    origin = global_start(timeline)
    try:
        segments = select_range(timeline, number, first + origin, last + origin,
                                handles=data.draw(st.integers(0, 4), label="handles"))
    except SelectionError as err:
        assert err.code == "cuts_transition", err
        return
    others = [_json(t) for t in timeline.tracks if t is not track]
    before = frame_map(track, rate, total)
    for k, segment in enumerate(segments):
        assert segment.record_duration >= 1 and segment.source_duration >= 1
        place_take(timeline, segment.clip, fake_take(f"t{k}", segment), track_number=number, segment=segment)
    after = frame_map(track, rate, total)
    assert track_frames(track, rate) == total
    assert [_json(t) for t in timeline.tracks if t is not track] == others
    for frame in range(total):
        if first <= frame < last:
            if before[frame][0] == "gap":
                assert after[frame] == before[frame]
            else:
                assert after[frame][:3] == before[frame][:3], f"frame {frame} shows other source frames"
                assert after[frame][3].startswith("t"), f"frame {frame} does not show the new take"
        else:
            assert after[frame] == before[frame], f"frame {frame} outside the selection changed"


@SETTINGS
@given(timeline=timelines(), data=st.data())
def test_an_extension_changes_the_track_by_exactly_the_extension_or_not_at_all(timeline, data):
    places = _clip_places(timeline)
    assume(places)
    number, index = data.draw(st.sampled_from(places), label="clip")
    track = timeline.video_tracks()[number - 1]
    clip = track[index]
    side = data.draw(st.sampled_from(["head", "tail"]), label="side")
    frames = data.draw(st.integers(1, 30), label="frames")
    placement = data.draw(st.sampled_from(["gap", "ripple", "ripple-sync", "new_track"]), label="placement")
    sync = placement == "ripple-sync"
    placement = "ripple" if sync else placement
    segment = select_clip(timeline, clip.name)
    rate = rate_of(timeline)
    seconds = Fraction(frames) / segment.rate
    neighbour = index + (1 if side == "tail" else -1)
    neighbour = track[neighbour] if 0 <= neighbour < len(track) else None
    room = neighbour.duration().to_seconds() if isinstance(neighbour, otio.schema.Gap) else 0.0
    durations = [t.duration().to_seconds() for t in timeline.tracks]
    insert_at = track.range_of_child_at_index(index)
    insert_at = (insert_at.end_time_exclusive() if side == "tail" else insert_at.start_time).to_seconds()
    snapshot = _json(timeline)
    try:
        place_take(timeline, clip.name, fake_take("ext", segment, op=pb.EXTEND, side=side, frames=frames),
                   placement=placement, sync=sync)
    except PlacementError:
        assert _json(timeline) == snapshot, "a refused extension changed the timeline"
        return
    after = [t.duration().to_seconds() for t in timeline.tracks]
    own = list(timeline.tracks).index(track)
    if placement == "new_track":
        assert len(after) == len(durations) + 1
        new = timeline.tracks[own + 1]
        assert new[len(new) - 1].source_range.duration.value == clip.source_range.duration.value + frames
        assert _json(clip) != "" and clip.active_media_reference_key == ORIGINAL
        assert after[:own + 1] + after[own + 2:] == pytest.approx(durations)
        return
    grown = Fraction(after[own] - durations[own]).limit_denominator(100000)
    if placement == "ripple":
        assert grown == pytest.approx(float(seconds), abs=1e-6)
        for k, (old, new) in enumerate(zip(durations, after)):
            if k == own:
                continue
            moved = sync and old > insert_at + 1e-9
            assert new == pytest.approx(old + (float(seconds) if moved else 0.0), abs=1e-6)
        return
    # gap: a big enough gap absorbs it; at the end of the track it grows by what the gap lacked
    assert after[:own] + after[own + 1:] == pytest.approx(durations[:own] + durations[own + 1:])
    if room >= float(seconds) - 1e-9:
        assert grown == pytest.approx(0.0, abs=1e-6)
    else:
        assert side == "tail" and grown == pytest.approx(float(seconds) - room, abs=1e-6)
    del rate


@SETTINGS
@given(timeline=timelines(), data=st.data())
def test_activate_then_activate_original_restores_what_the_editor_saw(timeline, data):
    rate = rate_of(timeline)
    places = _clip_places(timeline)
    assume(places)
    number, index = data.draw(st.sampled_from(places), label="clip")
    track = timeline.video_tracks()[number - 1]
    clip = track[index]
    total = track_frames(track, rate)
    before = frame_map(track, rate, total)
    others = [_json(t) for t in timeline.tracks if t is not track]
    segment = select_clip(timeline, clip.name)
    if data.draw(st.booleans(), label="extend"):
        side = data.draw(st.sampled_from(["head", "tail"]), label="side")
        take = fake_take("ext", segment, op=pb.EXTEND, side=side, frames=data.draw(st.integers(1, 20)))
    else:
        take = fake_take("ref", segment)
    try:
        place_take(timeline, clip.name, take)
    except PlacementError:
        return
    activate(timeline, clip.name, "original")
    assert frame_map(track, rate, total) == before
    assert all(entry == ("gap",) for entry in frame_map(track, rate)[total:])
    assert [_json(t) for t in timeline.tracks if t is not track] == others
    activate(timeline, clip.name, take.take_id)  # and back again: the take's frames return
    assert clip.active_media_reference_key == take.take_id
    assert clip.source_range.duration.value == segment.source_duration + take.generated_frames
