"""Round-trips through every editing format with takes on the clips: OTIO -> format -> OTIO
keeps every clip's record and source range frame-exactly, and the takes come back (natively
in OTIO and .otioz, through the sidecar elsewhere)."""
from __future__ import annotations

import json
import tempfile
import zipfile
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.api import pb
from bridge.interchange import InterchangeError, read_timeline, resolve_shape, sidecar_path, write_timeline
from bridge.takes import ORIGINAL, place_take
from bridge.timecode import from_timecode
from bridge.timeline import select_clip, select_range, timeline_rate

from support.timeline_strategies import fake_take, rt, timelines, tr


def cut_with_takes(tmp_path, rate, *, tracks=2, dissolve=True) -> otio.schema.Timeline:
    """V1: A | dissolve | B | gap | C ; V2: gap | D. Takes: A refine (active), B extension into
    the gap (active), D two refines (first active). Real (tiny) media files for bundling."""
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    start = from_timecode("01:00:00;00" if rate == Fraction(30000, 1001) else "01:00:00:00", rate)

    def clip(name, src, duration, avail_start, avail_frames):
        path = media / f"{name}.mov"
        path.write_bytes(name.encode() * 10)
        return otio.schema.Clip(name, otio.schema.ExternalReference(str(path), tr(avail_start, avail_frames, rate)),
                                tr(src, duration, rate))

    timeline = otio.schema.Timeline("cut", global_start_time=rt(start, rate))
    v1 = otio.schema.Track("V1")
    v1.append(clip("A", start + 10, 48, start, 200))
    if dissolve:
        v1.append(otio.schema.Transition(transition_type="SMPTE_Dissolve", in_offset=rt(6, rate),
                                         out_offset=rt(6, rate)))
    v1.append(clip("B", 1005, 24, 1000, 100))
    v1.append(otio.schema.Gap(source_range=tr(0, 12, rate)))
    v1.append(clip("C", 1050, 40, 1000, 200))
    timeline.tracks.append(v1)
    if tracks > 1:
        v2 = otio.schema.Track("V2")
        v2.append(otio.schema.Gap(source_range=tr(0, 30, rate)))
        v2.append(clip("D", 20, 50, 0, 500))
        timeline.tracks.append(v2)
    takes = tmp_path / "takes"
    takes.mkdir(exist_ok=True)

    def take(take_id, segment, **kw):
        t = fake_take(take_id, segment, **kw)
        path = takes / f"{take_id}.mov"
        path.write_bytes(take_id.encode())
        t.media.url = str(path)
        return t

    a = select_clip(timeline, "A", handles=2)
    place_take(timeline, "A", take("A_v001", a))
    b = select_clip(timeline, "B")
    place_take(timeline, "B", take("B_v001", b, op=pb.EXTEND, side="tail", frames=5))
    if tracks > 1:
        d = select_clip(timeline, "D")
        place_take(timeline, "D", take("D_v001", d))
        place_take(timeline, "D", take("D_v002", d), activate=False)
    return timeline


def summary(timeline, *, refs=True):
    """Per video track, per clip: name, record start/duration (timeline frames), source
    start/duration (source frames), active key and reference keys."""
    rate = float(timeline_rate(timeline))
    rows = []
    for number, track in enumerate(timeline.video_tracks(), start=1):
        for index, item in enumerate(track):
            if not isinstance(item, otio.schema.Clip):
                continue
            rec = track.range_of_child_at_index(index)
            row = (number, item.name, round(rec.start_time.value_rescaled_to(rate)),
                   round(rec.duration.value_rescaled_to(rate)), round(item.source_range.start_time.value),
                   round(item.source_range.duration.value))
            if refs:
                row += (item.active_media_reference_key, tuple(sorted(item.media_references())))
            rows.append(row)
    return rows


RATES = {"23.976": Fraction(24000, 1001), "25": Fraction(25), "29.97": Fraction(30000, 1001)}


@pytest.mark.parametrize("suffix,rate", [
    (".otio", "23.976"), (".otio", "29.97"), (".otioz", "25"),
    (".xml", "23.976"), (".xml", "25"), (".xml", "29.97"),
    (".aaf", "23.976"), (".aaf", "25"), (".aaf", "29.97"),
    (".fcpxml", "25"),
])
def test_round_trip_keeps_ranges_and_brings_the_takes_back(tmp_path, suffix, rate):
    rate = RATES[rate] if rate != "24" else Fraction(24)
    timeline = cut_with_takes(tmp_path, rate)
    expected = summary(timeline)
    path = tmp_path / "out" / f"cut{suffix}"
    report = write_timeline(timeline, path)
    back = read_timeline(path)
    assert summary(back) == expected
    assert back.global_start_time.value == timeline.global_start_time.value
    d = next(c for c in back.find_clips() if c.name == "D")
    assert d.active_media_reference_key == "D_v001" and set(d.media_references()) == {ORIGINAL, "D_v001", "D_v002"}
    if suffix in (".otio", ".otioz"):
        assert report["sidecar"] is None
    else:
        assert report["sidecar"] and report["takes_in_sidecar"] == 4
        # the file alone (no sidecar) still has every cut frame-exactly, with the active takes
        sidecar_path(path).rename(tmp_path / "aside.json")
        alone = read_timeline(path)
        assert summary(alone, refs=False) == [row[:6] for row in expected]
        active = {c.name: c.media_reference.target_url for c in alone.find_clips()}
        assert active["A"].endswith("A_v001.mov") and active["D"].endswith("D_v001.mov")


@pytest.mark.parametrize("rate", ["23.976", "29.97"])
def test_edl_round_trip_of_one_track_with_a_dissolve(tmp_path, rate):
    rate = RATES[rate]
    timeline = cut_with_takes(tmp_path, rate, tracks=1)
    expected = summary(timeline)
    path = tmp_path / "cut.edl"
    write_timeline(timeline, path)
    text = path.read_text()
    assert "FROM CLIP NAME:  A" in text and "A_v001.mov" in text
    back = read_timeline(path)
    assert summary(back) == expected
    assert back.tracks[0][1].in_offset.value == 6 and back.tracks[0][1].out_offset.value == 6


def test_edl_without_a_dissolve_keeps_every_cut_without_the_sidecar(tmp_path):
    timeline = cut_with_takes(tmp_path, Fraction(24000, 1001), tracks=1, dissolve=False)
    expected = summary(timeline, refs=False)
    path = tmp_path / "cut.edl"
    write_timeline(timeline, path)
    sidecar_path(path).unlink()
    back = read_timeline(path, rate="24000/1001")
    assert summary(back, refs=False) == expected
    assert back.global_start_time.value == 86400


def test_edl_refuses_several_video_tracks_and_says_what_to_do(tmp_path):
    timeline = cut_with_takes(tmp_path, Fraction(25))
    with pytest.raises(InterchangeError, match="EDL holds one video track and this timeline has 2"):
        write_timeline(timeline, tmp_path / "cut.edl")
    assert not (tmp_path / "cut.edl").exists() and not sidecar_path(tmp_path / "cut.edl").exists()


def test_fcpxml_at_an_ntsc_rate_is_written_exactly_not_rounded(tmp_path):
    """The adapter wrote no frame duration for 23.976 (and read it back at 23 fps): the frame
    duration is 1001/24000s and every clip comes back at 24000/1001, frame for frame, without the
    sidecar."""
    from support.timeline_strategies import shape

    timeline = cut_with_takes(tmp_path, Fraction(24000, 1001), dissolve=False)
    write_timeline(timeline, tmp_path / "cut.fcpxml")
    assert 'frameDuration="1001/24000s"' in (tmp_path / "cut.fcpxml").read_text()
    expected = shape(read_timeline(tmp_path / "cut.fcpxml"))
    sidecar_path(tmp_path / "cut.fcpxml").unlink()
    again = read_timeline(tmp_path / "cut.fcpxml")
    assert shape(again) == expected
    assert {round(float(c.source_range.start_time.rate), 3) for c in again.find_clips()} == {23.976}


def test_aaf_refuses_a_clip_at_another_rate(tmp_path):
    timeline = cut_with_takes(tmp_path, Fraction(25))
    c = next(c for c in timeline.find_clips() if c.name == "C")
    c.source_range = tr(1050, 40, 24)
    with pytest.raises(InterchangeError, match="clip 'C' runs at 24 fps on a 25 fps timeline; AAF needs"):
        write_timeline(timeline, tmp_path / "cut.aaf")


def test_otioz_bundles_the_media_of_every_take_not_only_the_active_one(tmp_path):
    timeline = cut_with_takes(tmp_path, Fraction(25))
    path = tmp_path / "cut.otioz"
    write_timeline(timeline, path)
    names = set(zipfile.ZipFile(path).namelist())
    assert {"content.otio", "version.txt", "media/D_v001.mov", "media/D_v002.mov", "media/D.mov",
            "media/A.mov", "media/A_v001.mov"} <= names
    # OTIO's own reader opens it too
    plain = otio.adapters.read_from_file(str(path))
    assert {c.name for c in plain.find_clips()} == {"A", "B", "C", "D"}
    back = read_timeline(path)
    d = next(c for c in back.find_clips() if c.name == "D")
    assert open(d.media_references()["D_v002"].target_url, "rb").read() == b"D_v002"


def test_a_range_take_split_survives_the_round_trip(tmp_path):
    timeline = cut_with_takes(tmp_path, Fraction(25))
    (segment,) = select_range(timeline, 1, 90000 + 70, 90000 + 80)
    place_take(timeline, "B", fake_take("B_v002", segment), segment=segment)
    expected = summary(timeline)
    path = tmp_path / "cut.xml"
    write_timeline(timeline, path)
    assert summary(read_timeline(path)) == expected


def test_resolve_shape(tmp_path):
    timeline = cut_with_takes(tmp_path, Fraction(24000, 1001))
    for clip in timeline.find_clips():  # as some tools write them
        refs = clip.media_references()
        for ref in refs.values():
            ref.target_url = "file://" + ref.target_url
        clip.set_media_references(refs, clip.active_media_reference_key)
    warnings = []
    shaped = resolve_shape(timeline, warnings=warnings)
    data = json.loads(otio.adapters.write_to_string(shaped, "otio_json"))
    assert data["global_start_time"]["value"] == 86400
    assert data["metadata"]["Resolve_OTIO"] == {"Resolve OTIO Meta Version": "1.0"}
    clips = [c for track in data["tracks"]["children"] for c in track["children"] if c["OTIO_SCHEMA"] == "Clip.2"]
    assert len(clips) == 4 and all(c["active_media_reference_key"] for c in clips)
    for c in clips:
        for ref in c["media_references"].values():
            assert ref["available_range"] is not None and not ref["target_url"].startswith("file:")
    assert warnings == []


@pytest.mark.parametrize("suffix", [".xml", ".edl", ".otio"])
def test_a_clip_at_another_rate_comes_back_exactly_with_the_sidecar(tmp_path, suffix):
    rate = Fraction(24000, 1001)
    timeline = cut_with_takes(tmp_path, rate, tracks=1, dissolve=False)
    c = next(c for c in timeline.find_clips() if c.name == "C")
    c.source_range = tr(1050, 50, 25)  # 2 s of 25 fps media on a 23.976 timeline
    refs = c.media_references()
    refs[ORIGINAL].available_range = tr(1000, 200, 25)
    c.set_media_references(refs, ORIGINAL)
    expected = summary(timeline)
    path = tmp_path / f"mixed{suffix}"
    write_timeline(timeline, path)
    back = read_timeline(path)
    assert summary(back) == expected
    back_c = next(c for c in back.find_clips() if c.name == "C")
    assert back_c.source_range.start_time.rate == 25 and back_c.source_range.duration.value == 50


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timeline=timelines(mixed=False), suffix=st.sampled_from([".xml", ".aaf", ".otioz", ".edl"]))
def test_generated_timelines_round_trip_frame_exactly(timeline, suffix):
    """Several tracks (one for EDL), gaps, dissolves, start timecodes at every rate; every clip
    with a take."""
    if suffix == ".edl":
        while len(timeline.tracks) > 1:
            timeline.tracks.pop()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for number, clip in enumerate(timeline.find_clips()):
            refs = clip.media_references()
            for key, ref in list(refs.items()):
                ref.target_url = str(folder / f"{number}_{key}.mov")
                Path(ref.target_url).write_bytes(b"m")
            take = otio.schema.ExternalReference(str(folder / f"{number}_take.mov"), clip.source_range)
            Path(take.target_url).write_bytes(b"t")
            refs["take"] = take
            clip.set_media_references(refs, "take")
        expected = summary(timeline)
        write_timeline(timeline, folder / f"cut{suffix}")
        back = read_timeline(folder / f"cut{suffix}")
        assert summary(back) == expected
