"""Placing takes on OTIO clips: the original stays under DEFAULT_MEDIA, the take is active and
frame-exact, an extension consumes a gap and never overwrites a neighbour."""
from __future__ import annotations

import opentimelineio as otio
import pytest

from bridge import metadata
from bridge.api import pb
from bridge.selection import SelectionError, parse_timeline, read_selection
from bridge.timeline import export_selection
from bridge.takes import ORIGINAL, activate, PlacementError, check_extension_room, list_takes, place_take
from bridge.timecode import exact_rate, from_timecode, to_timecode

from conftest import make_timeline


def take(take_id="A_v001", op=pb.REFINE, start=86400, count=12, generated=0, side=pb.EXTEND_SIDE_UNSPECIFIED,
         codec=pb.PRORES_422_HQ, url="/takes/A/A_v001.mov"):
    return pb.Take(take_id=take_id, shot="A", version=1, operation=op, status=pb.OK, generated_frames=generated,
                   extend_side=side, source_range=pb.FrameRange(start_frame=start, frame_count=count,
                                                                rate=pb.Rate(num=24, den=1)),
                   media=pb.MediaInfo(url=url, codec=codec))


@pytest.fixture
def timeline(tmp_path):
    return make_timeline(tmp_path / "plate.mov", rate=24, media_start=86400, media_frames=48, clip_in=4,
                         clip_frames=12, gap_after=10, next_clip=8)


def test_a_refine_take_becomes_the_active_reference_and_the_original_stays(timeline):
    before = timeline.tracks[0][0].source_range
    clip = place_take(timeline, "A", take(start=86404))
    refs = clip.media_references()
    assert set(refs) == {ORIGINAL, "A_v001"} and clip.active_media_reference_key == "A_v001"
    assert refs[ORIGINAL].target_url.endswith("plate.mov")
    assert clip.source_range == before, "a refine take does not move or trim the clip"
    assert clip.available_range().start_time.value == 86404 and clip.available_range().duration.value == 12
    assert metadata.read(refs["A_v001"])["take"]["take_id"] == "A_v001"
    clip.active_media_reference_key = ORIGINAL
    assert clip.media_reference.target_url.endswith("plate.mov")


def test_extending_the_tail_into_the_gap_keeps_the_next_clip_where_it_was(timeline):
    track = timeline.tracks[0]
    next_start = track.range_of_child_at_index(2).start_time
    place_take(timeline, "A", take(op=pb.EXTEND, start=86404, count=18, generated=6, side=pb.TAIL))
    assert track[0].source_range.duration.value == 18
    assert track[1].source_range.duration.value == 4
    assert track.range_of_child_at_index(2).start_time == next_start
    activate(timeline, "A", "original")
    assert track[0].source_range.duration.value == 12 and track[1].source_range.duration.value == 10
    assert track.range_of_child_at_index(2).start_time == next_start


def test_an_extension_that_fills_the_gap_exactly_removes_it(timeline):
    place_take(timeline, "A", take(op=pb.EXTEND, start=86404, count=22, generated=10, side=pb.TAIL))
    assert [type(i).__name__ for i in timeline.tracks[0]] == ["Clip", "Clip"]
    assert timeline.tracks[0].range_of_child_at_index(1).start_time.value == 22


def test_an_extension_that_would_overwrite_a_neighbour_is_refused_and_changes_nothing(timeline):
    before = otio.adapters.write_to_string(timeline)
    with pytest.raises(PlacementError, match=r"would overwrite 'B'.*only 10 frames.*at most 10 frames"):
        place_take(timeline, "A", take(op=pb.EXTEND, start=86404, count=23, generated=11, side=pb.TAIL))
    assert otio.adapters.write_to_string(timeline) == before


def test_a_head_extension_needs_room_before_the_clip(timeline):
    with pytest.raises(PlacementError, match="starts its track"):
        check_extension_room(timeline, "A", "head", 4)
    check_extension_room(timeline, "B", "head", 10)  # the gap before B
    with pytest.raises(PlacementError, match="would overwrite 'A'"):
        check_extension_room(timeline, "B", "head", 11)
    check_extension_room(timeline, "B", "tail", 100)  # the end of the track is free


def test_a_head_extension_consumes_the_gap_before_the_clip(tmp_path):
    timeline = make_timeline(tmp_path / "p.mov", rate=24, media_start=0, media_frames=48, clip_in=10,
                             clip_frames=12, gap_after=10, next_clip=8)
    place_take(timeline, "B", take("B_v001", op=pb.EXTEND, start=-4, count=12, generated=4, side=pb.HEAD))
    track = timeline.tracks[0]
    assert track[2].source_range.start_time.value == -4 and track[2].source_range.duration.value == 12
    assert track[1].source_range.duration.value == 6
    assert track.range_of_child_at_index(2).start_time.value == 18


def test_image_sequence_takes_become_image_sequence_references(timeline):
    clip = place_take(timeline, "A", take(codec=pb.PNG_SEQUENCE, start=86404,
                                          url="/takes/A/A_v001/A_v001.%06d.png"))
    ref = clip.media_reference
    assert isinstance(ref, otio.schema.ImageSequenceReference)
    assert ref.target_url_for_image_number(0) == "/takes/A/A_v001/A_v001.086404.png"


def test_the_selection_carries_the_clip_its_media_and_its_place(timeline):
    sub = export_selection(timeline, "A", handles=3)
    sel = read_selection(parse_timeline(otio.adapters.write_to_string(sub)))
    assert (sel.clip_name, sel.source_start, sel.source_duration, sel.handles) == ("A", 86404, 12, 3)
    assert sel.media.available_start == 86400 and sel.media.path.endswith("plate.mov")
    assert sel.record_start == 0 and sel.rate == 24


def test_unknown_and_ambiguous_clips_are_named(timeline):
    with pytest.raises(SelectionError, match=r"no video clip named 'Q' on the timeline; clips: 'A', 'B'"):
        export_selection(timeline, "Q")
    timeline.tracks[0][2].name = "A"
    with pytest.raises(SelectionError, match=r"2 video clips are named 'A'; name the track \(--track N\), or choose by "
                                             r"position"):
        export_selection(timeline, "A")
    # with the track named already, the advice is the range on that track, not the track again
    from bridge.selection import find_clip
    with pytest.raises(SelectionError, match=r"named 'A' on V1; choose by position instead: --track 1 --in TC"):
        find_clip(timeline, "A", track_number=1)


def test_metadata_from_a_newer_takebridge_is_refused_clearly(timeline):
    clip = timeline.tracks[0][0]
    clip.metadata["takebridge"] = {"schema": 99}
    with pytest.raises(metadata.MetadataError, match="schema 99"):
        metadata.read(clip)


def test_takes_listing_marks_the_active_take(timeline):
    place_take(timeline, "A", take(start=86404))
    rows = [(r.clip, r.take_id, r.operation, r.active) for r in list_takes(timeline)]
    assert rows == [("A", "", "original", False), ("A", "A_v001", "refine", True), ("B", "", "original", True)]


@pytest.mark.parametrize("frame, rate, label", [
    (1798, "30000/1001", "00:00:59;28"), (1800, "30000/1001", "00:01:00;02"), (1802, "30000/1001", "00:01:00;04"),
    (17982, "30000/1001", "00:10:00;00"), (86400, "24", "01:00:00:00"), (86313, "24000/1001", "00:59:56:09"),
    (90000, "25", "01:00:00:00"),
    # a camera's odd constant rate counts whole frames at its nominal rate, as timecode tracks do
    (97232, "26777/1000", "01:00:01:05"), (0, "456000/15217", "00:00:00:00"),
])
def test_timecode_round_trips_exactly(frame, rate, label):
    assert to_timecode(frame, rate) == label
    assert from_timecode(label, rate) == frame


def test_non_drop_labels_at_1001_rates_count_to_the_end_of_the_day():
    """29.97 without drop frame counts 30 labels a second: the day's last frame is 23:59:59:29
    (not a label wrapped by the real-time length of the day)."""
    assert to_timecode(30 * 86400 - 1, "30000/1001", drop_frame=False) == "23:59:59:29"
    assert from_timecode("23:59:59:29", "30000/1001") == 30 * 86400 - 1


def test_float_rates_from_otio_snap_to_the_exact_rational():
    assert exact_rate(23.976023976023978) == exact_rate("24000/1001")
    assert exact_rate(29.97) == exact_rate("30000/1001")
    assert exact_rate(pb.Rate(num=25, den=1)) == 25


def test_a_tail_extension_past_a_short_trailing_gap_lengthens_the_track(tmp_path):
    timeline = make_timeline(tmp_path / "p.mov", rate=24, media_start=0, media_frames=48, clip_in=0,
                             clip_frames=12, gap_after=3)
    place_take(timeline, "A", take(op=pb.EXTEND, start=0, count=20, generated=8, side=pb.TAIL))
    track = timeline.tracks[0]
    assert [type(i).__name__ for i in track] == ["Clip"]
    assert track.duration().value == 20
