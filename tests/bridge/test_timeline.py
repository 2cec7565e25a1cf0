"""Ranges, rates, timecode and take management on timelines, with the numbers an editor would
check: segments, handles, drop-frame labels, and the errors for bad selections."""
from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
import pytest

from bridge import metadata
from bridge.api import pb
from bridge.selection import SelectionError
from bridge.takes import (ORIGINAL, ORIGINAL_ALIAS, PlacementError, activate, delete_take, finalize, list_takes,
                          place_take, set_status)
from bridge.timecode import from_timecode, to_timecode
from bridge.timeline import export_range, job_timeline, range_jobs, select_clip, select_range

from support.timeline_strategies import fake_take, frame_map, rt, tr

R = 24


def clip(name, start, duration, *, rate=R, media_start=None, media_frames=None, url=None):
    media_start = start - 10 if media_start is None else media_start
    media_frames = (start - media_start) + duration + 10 if media_frames is None else media_frames
    ref = otio.schema.ExternalReference(url or f"/media/{name}.mov", tr(media_start, media_frames, rate))
    return otio.schema.Clip(name, ref, tr(start, duration, rate))


@pytest.fixture
def cut():
    """V1: A (40) | dissolve 4/4 | B (30) | gap 10 | C (25 fps, 50 frames); V2: gap 30 | D (60).
    Starts at 01:00:00:00, 24 fps."""
    timeline = otio.schema.Timeline("cut", global_start_time=rt(86400, R))
    v1 = otio.schema.Track("V1")
    v1.append(clip("A", 86410, 40))
    v1.append(otio.schema.Transition(name="mix", transition_type="SMPTE_Dissolve", in_offset=rt(4, R),
                                     out_offset=rt(4, R)))
    v1.append(clip("B", 86405, 30))
    v1.append(otio.schema.Gap(source_range=tr(0, 10, R)))
    v1.append(clip("C", 20, 50, rate=25, media_start=0, media_frames=200))
    v2 = otio.schema.Track("V2")
    v2.append(otio.schema.Gap(source_range=tr(0, 30, R)))
    v2.append(clip("D", 0, 60, media_start=0, media_frames=100))
    timeline.tracks.extend([v1, v2])
    return timeline


def test_a_range_over_clips_a_transition_and_a_gap_gives_one_job_per_clip_segment(cut):
    segments = select_range(cut, 1, "01:00:00:20", "01:00:04:00", handles=3)
    assert [s.clip for s in segments] == ["A", "B", "C"]
    a, b, c = segments
    # A: record 20..40 of its 0..40, source 86430..86450; the dissolve needs 4 frames past its end
    assert (a.record_start, a.record_duration, a.source_start, a.source_duration) == (20, 20, 86430, 20)
    assert (a.head_handles, a.tail_handles, a.whole_clip) == (3, 4, False)
    assert (b.record_start, b.record_duration, b.source_start, b.source_duration) == (40, 30, 86405, 30)
    assert (b.head_handles, b.tail_handles, b.whole_clip) == (4, 3, True)
    # C runs at 25 fps on a 24 fps timeline: record 80..96 shows source 20 + 16*25/24 = 36.67
    assert (c.record_start, c.record_duration, c.source_start, c.source_duration) == (80, 16, 20, 17)
    assert c.rate == 25 and c.cut_out == Fraction(20) + Fraction(16 * 25, 24)


def test_handles_are_clamped_to_the_media(cut):
    (d,) = select_range(cut, 2, 86400 + 30, 86400 + 40, handles=20)
    assert (d.source_start, d.head_handles, d.tail_handles) == (0, 0, 20)
    (d,) = select_range(cut, 2, 86400 + 80, 86400 + 90, handles=20)
    assert (d.source_start, d.source_duration, d.tail_handles) == (50, 10, 20)
    whole = select_clip(cut, "D", handles=60)
    assert (whole.head_handles, whole.tail_handles) == (0, 40)


def test_export_range_writes_the_trimmed_track_and_one_job_selection_per_clip(cut):
    out = export_range(cut, 1, "01:00:00:20", "01:00:04:00", handles=2)
    assert out.global_start_time.value == 86420
    track = out.tracks[0]
    assert [type(i).__name__ for i in track] == ["Clip", "Transition", "Clip", "Gap", "Clip"]
    assert round(track.duration().value_rescaled_to(24)) == 76
    jobs = range_jobs(out)
    assert [metadata.read(j)["selection"]["clip"] for j in jobs] == ["A", "B", "C"]
    first = jobs[0].tracks[0][0]
    assert (first.source_range.start_time.value, first.source_range.duration.value) == (86430, 20)
    # the job selection is what the server reads
    from bridge.selection import read_selection

    sel = read_selection(jobs[0])
    assert (sel.source_start, sel.source_duration, sel.head_handles, sel.tail_handles) == (86430, 20, 2, 4)


def test_a_take_of_part_of_a_clip_splits_it_and_keeps_every_other_frame(cut):
    track = cut.tracks[0]
    before = frame_map(track, Fraction(R))
    (a,) = select_range(cut, 1, 86400 + 10, 86400 + 20)
    place_take(cut, "A", fake_take("A_v001", a), segment=a)
    names = [(i.name, i.source_range.start_time.value, i.source_range.duration.value, i.active_media_reference_key)
             for i in track if isinstance(i, otio.schema.Clip)][:3]
    assert names == [("A", 86410, 10, ORIGINAL), ("A", 86420, 10, "A_v001"), ("A", 86430, 20, ORIGINAL)]
    after = frame_map(track, Fraction(R))
    assert [f[:3] for f in after] == [f[:3] for f in before]
    assert {f[3] for f in after[10:20]} == {"A_v001"} and after[9][3] == after[20][3] == ORIGINAL


def test_takes_follow_the_clip_when_it_is_moved_slipped_or_trimmed_within_handles(cut):
    segment = select_clip(cut, "B", handles=5)
    place_take(cut, "B", fake_take("B_v001", segment), segment=segment)
    track = cut.tracks[0]
    b = track[2]
    # move: a longer gap before it; trim the tail by 2; slip by 3 (still inside the 5-frame handles)
    track[3].source_range = tr(0, 14, R)
    b.source_range = tr(86405 + 3, 28 - 3, R)
    rows = {r.key: r for r in list_takes(cut) if r.clip == "B"}
    assert rows["B_v001"].covers and rows["B_v001"].active
    # trimmed past the handles: the take no longer has those frames; listing says so, activation refuses
    b.source_range = tr(86405 - 8, 30, R)
    activate(cut, "B", "original")
    assert not {r.key: r for r in list_takes(cut) if r.clip == "B"}["B_v001"].covers
    with pytest.raises(PlacementError, match=r"has source frames 86400\.\.86439 but clip 'B' uses 86397\.\.86426"):
        activate(cut, "B", "B_v001")
    assert b.active_media_reference_key == ORIGINAL


def test_status_delete_and_finalize_keep_the_original_recoverable(cut):
    segment = select_clip(cut, "D")
    for n in (1, 2, 3):
        place_take(cut, "D", fake_take(f"D_v00{n}", segment), activate=n == 2)
    d = cut.tracks[1][1]
    assert d.active_media_reference_key == "D_v002"
    set_status(cut, "D", "D_v002", "approved", note="hair fixed", reviewer="ana")
    row = {r.key: r for r in list_takes(cut)}["D_v002"]
    assert row.status == "approved"
    with pytest.raises(PlacementError, match="not one of draft, needs_review, ok, approved, rejected"):
        set_status(cut, "D", "D_v002", "great")
    delete_take(cut, "D", "D_v003")
    assert set(d.media_references()) == {ORIGINAL, "D_v001", "D_v002"}
    finalize(cut, "D", "D_v002", drop_others=True)
    refs = d.media_references()
    assert set(refs) == {ORIGINAL, ORIGINAL_ALIAS} and d.active_media_reference_key == ORIGINAL
    assert refs[ORIGINAL].target_url == "/takes/D_v002.mov" and refs[ORIGINAL_ALIAS].target_url == "/media/D.mov"
    assert metadata.read(d)["finalized"] == {"take": "D_v002", "original_key": "original"}
    activate(cut, "D", "original")
    assert d.media_reference.target_url == "/media/D.mov"


def test_deleting_the_active_extension_gives_its_frames_back_to_the_gap(cut):
    track = cut.tracks[0]
    segment = select_clip(cut, "B")
    place_take(cut, "B", fake_take("B_v001", segment, op=pb.EXTEND, side="tail", frames=6))
    assert track[3].source_range.duration.value == 4
    delete_take(cut, "B", "B_v001")
    assert track[2].source_range.duration.value == 30 and track[3].source_range.duration.value == 10


def test_ripple_moves_the_rest_of_the_track_and_sync_splits_clips_on_other_tracks(cut):
    v1, v2 = cut.tracks
    a = select_clip(cut, "A")
    with pytest.raises(PlacementError, match="starts its track"):
        place_take(cut, "A", fake_take("A_v001", a, op=pb.EXTEND, side="head", frames=12))
    place_take(cut, "A", fake_take("A_v001", a, op=pb.EXTEND, side="head", frames=12), placement="ripple", sync=True)
    assert v1[0].source_range.duration.value == 52
    assert v1.range_of_child_at_index(2).start_time.value == 52  # B moved by 12
    # V2 had a 30-frame gap covering frame 0: it grows by 12, D moves by 12
    assert v2[0].source_range.duration.value == 42 and v2.range_of_child_at_index(1).start_time.value == 42
    # a tail extension of B at record 70 splits D (30..90) on V2 at its source frame 40
    b = select_clip(cut, "B")
    place_take(cut, "B", fake_take("B_v001", b, op=pb.EXTEND, side="tail", frames=5), placement="ripple", sync=True)
    pieces = [(type(i).__name__, i.source_range.start_time.value, i.source_range.duration.value) for i in v2]
    assert pieces == [("Gap", 0, 42), ("Clip", 0, 40), ("Gap", 0, 5), ("Clip", 40, 20)]


def test_new_track_placement_leaves_the_clip_alone(cut):
    b = select_clip(cut, "B")
    place_take(cut, "B", fake_take("B_v001", b, op=pb.EXTEND, side="head", frames=8), placement="new_track")
    assert len(cut.video_tracks()) == 3
    original = cut.tracks[0][2]
    assert original.source_range.duration.value == 30 and "B_v001" not in original.media_references()
    new = cut.tracks[1]
    assert new.range_of_child_at_index(1).start_time.value == 40 - 8
    assert new[1].active_media_reference_key == "B_v001" and new[1].source_range.duration.value == 38


@pytest.mark.parametrize("frame,label", [(1798, "00:00:59;28"), (1799, "00:00:59;29"), (1800, "00:01:00;02"),
                                         (1801, "00:01:00;03"), (1802, "00:01:00;04"), (17980, "00:09:59;28"),
                                         (17981, "00:09:59;29"), (17982, "00:10:00;00"), (17983, "00:10:00;01"),
                                         (17984, "00:10:00;02")])
def test_drop_frame_labels_around_minute_boundaries(frame, label):
    rate = Fraction(30000, 1001)
    assert to_timecode(frame, rate) == label and from_timecode(label, rate) == frame


@pytest.mark.parametrize("first,last,frames", [("00:00:59;28", "00:01:00;02", 2), ("00:00:59;29", "00:01:00;04", 3),
                                               ("00:09:59;28", "00:10:00;02", 4), ("00:09:59;28", "00:10:00;00", 2)])
def test_ranges_across_drop_frame_minutes_have_the_real_frame_count(first, last, frames):
    rate = Fraction(30000, 1001)
    timeline = otio.schema.Timeline("df", global_start_time=rt(0, rate))
    track = otio.schema.Track("V1")
    track.append(clip("long", 107892, 20000, rate=rate, media_start=107892, media_frames=20000))
    timeline.tracks.append(track)
    (segment,) = select_range(timeline, 1, first, last)
    assert segment.record_start == from_timecode(first, rate) and segment.record_duration == frames
    assert segment.source_start == 107892 + from_timecode(first, rate)
    out = export_range(timeline, 1, first, last)
    assert metadata.read(out)["range"]["in_timecode"] == first and metadata.read(out)["range"]["out_timecode"] == last


def test_a_skipped_drop_frame_label_is_refused_by_name(cut):
    rate = Fraction(30000, 1001)
    timeline = otio.schema.Timeline("df", global_start_time=rt(0, rate))
    track = otio.schema.Track("V1")
    track.append(clip("long", 0, 4000, rate=rate, media_start=0, media_frames=4000))
    timeline.tracks.append(track)
    with pytest.raises(SelectionError, match=r"in point '00:01:00;00'.*does not exist in drop-frame counting"):
        select_range(timeline, 1, "00:01:00;00", "00:01:01;00")


@pytest.mark.parametrize("rate,start_tc,expected", [
    (Fraction(24000, 1001), "01:00:00:00", 86400), (Fraction(25), "01:00:00:00", 90000),
    (Fraction(30000, 1001), "00:59:59;28", 107890), (Fraction(50), "01:00:00:00", 180000),
    (Fraction(60000, 1001), "01:00:00;00", 215784), (Fraction(60), "01:00:00:00", 216000)])
def test_timeline_start_timecodes_at_every_rate(rate, start_tc, expected):
    start = from_timecode(start_tc, rate)
    assert start == expected
    timeline = otio.schema.Timeline("t", global_start_time=rt(start, rate))
    track = otio.schema.Track("V1")
    track.append(clip("X", 1000, 100, rate=rate))
    timeline.tracks.append(track)
    (segment,) = select_range(timeline, 1, start + 10, start + 15)
    assert (segment.record_start, segment.source_start, segment.source_duration) == (10, 1010, 5)
    assert job_timeline(timeline, segment).global_start_time.value == start


@pytest.mark.parametrize("args,code,message", [
    ((1, "01:00:00:10", "01:00:00:10"), "empty_range", "is 0 frames long"),
    ((1, "01:00:00:20", "01:00:00:10"), "empty_range", "must be after the in point"),
    ((1, 86400 + 38, 86400 + 50), "cuts_transition", r"in point 01:00:01:14 cuts the transition 'mix'.*put it at "
                                                     r"01:00:01:12 or 01:00:01:20"),
    ((1, 86400 + 30, 86400 + 42), "cuts_transition", "out point 01:00:01:18 cuts"),
    ((1, 86400, 86400 + 500), "outside_track", "outside track V1, which runs 01:00:00:00..01:00:05:08"),
    ((3, 86400, 86410), "unknown_track", "no video track V3: the timeline has 2"),
    ((1, "1:00:00:00", 86410), "bad_timecode", "not HH:MM:SS:FF"),
])
def test_bad_ranges_are_refused_with_the_value_named(cut, args, code, message):
    with pytest.raises(SelectionError, match=message) as err:
        select_range(cut, *args)
    assert err.value.code == code


def test_a_clip_with_missing_media_in_the_range_is_named(cut):
    cut.tracks[0][2].media_reference = otio.schema.MissingReference()
    with pytest.raises(SelectionError, match=r"clip 'B' has no usable media \(MissingReference\); relink it") as err:
        select_range(cut, 1, 86400, 86400 + 80)
    assert err.value.code == "media_missing"


def test_an_unknown_take_id_is_named_with_the_takes_there_are(cut):
    segment = select_clip(cut, "D")
    place_take(cut, "D", fake_take("D_v001", segment))
    for action in (lambda: activate(cut, "D", "D_v009"), lambda: finalize(cut, "D", "D_v009"),
                   lambda: delete_take(cut, "D", "D_v009"), lambda: set_status(cut, "D", "D_v009", "ok")):
        with pytest.raises(SelectionError, match="clip 'D' has no take 'D_v009'") as err:
            action()
        assert err.value.code == "unknown_take"


def test_a_gap_shorter_than_the_extension_in_time_has_no_room_even_when_frames_round_up():
    """50 fps timeline, a 1-frame gap (20 ms) before a 29.97 fps clip: one source frame (33 ms)
    does not fit, although the gap rounds to one source frame."""
    timeline = otio.schema.Timeline("mixed", global_start_time=rt(0, 50))
    track = otio.schema.Track("V1")
    track.append(clip("a", 10, 4, rate=50))
    track.append(otio.schema.Gap(source_range=tr(0, 1, 50)))
    track.append(clip("b", 10, 4, rate=Fraction(30000, 1001)))
    timeline.tracks.append(track)
    before = otio.adapters.write_to_string(timeline, "otio_json")
    segment = select_clip(timeline, "b")
    with pytest.raises(PlacementError, match="the gap there is only 0 frames"):
        place_take(timeline, "b", fake_take("b_v001", segment, op=pb.EXTEND, side="head", frames=1))
    assert otio.adapters.write_to_string(timeline, "otio_json") == before
