"""Real editors' timelines (tests/data/nle/, SOURCES.md: exported by Avid, Premiere, Final Cut Pro
X, Hiero, Nucoda... and shipped by OpenTimelineIO's adapter repositories): each is read, a take is
placed on its first video clip, written back in its own format and read again. Every item on
every track must come back frame-exact (record and source frames), with the take active on its
clip; or the file is refused in one line, for a reason listed here that an editor can act on.

A defect found and not yet fixed goes in OPEN, a strict xfail naming it: fixing it turns
its test red until the mark is removed."""
from __future__ import annotations

import re
import shutil
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from support.timeline_strategies import fake_take, shape

from bridge.interchange import (
    InterchangeError,
    read_timeline,
    sidecar_path,
    write_timeline,
)
from bridge.takes import place_take
from bridge.timecode import exact_rate
from bridge.timeline import select_item

CORPUS = Path(__file__).resolve().parents[1] / "data" / "nle"
FILES = sorted(p for p in CORPUS.glob("*/*") if p.suffix != ".md")
# refused in one line, for a reason an editor can act on
REFUSED = {
    "fcpx/fcpx_clips.fcpxml": r"holds no timeline",                     # an event's clips, no project
    "fcp7/premiere_example_filter.xml": r"No top-level sequences found",  # a filter preset, no sequence
    # the adapter's own failing case: a dissolve with no cut line to dissolve from
    "edl/dissolve_test_fail.edl": r"event 002 is a dissolve without the cut line that opens it",
    # an event whose source and record lengths disagree (the adapter's test of it): names the event
    "edl/timecode_mismatch.edl": r"Source and record duration don't match.*for clip sq001_s004",
    # 23.976 media on a 29.97 DF sequence: the AAF writer needs media at the sequence rate
    "aaf/2997fps-DFTC.aaf": r"media runs at 23\.976 fps on a 29\.97 fps sequence.*write \.xml",
    # audio only: nothing for a video take, and an EDL is written for one video track
    "edl/multi_audio.edl": r"no video track \(audio only\).*write \.otio, \.xml or \.aaf",
}
# open defects (strict: a fix shows up as XPASS); none left from issue 15
OPEN: dict[str, str] = {}


def _first_video_clip(timeline):
    for number, track in enumerate(timeline.video_tracks(), start=1):
        for index, item in enumerate(track):
            if isinstance(item, otio.schema.Clip) and item.source_range is not None:
                return number, index, item
    return None


def _relink_missing(clip, folder: Path) -> None:
    """What an editor does with an offline clip before working on it: point it at its media (a
    stand-in path; the adapters only read the path and range)."""
    if isinstance(clip.media_reference, otio.schema.ExternalReference):
        return
    source = clip.source_range
    clip.media_reference = otio.schema.ExternalReference(
        target_url=str(folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', clip.name or 'clip')}.mov"),
        available_range=otio.opentime.TimeRange(source.start_time - otio.opentime.RationalTime(10, source.start_time.rate),
                                                source.duration + otio.opentime.RationalTime(20, source.start_time.rate)))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_a_real_editors_timeline_takes_a_take_and_comes_back_exactly(path, tmp_path):
    name = str(path.relative_to(CORPUS))
    if name in OPEN:
        pytest.xfail(f"issue 15: {OPEN[name]}")
    local = tmp_path / path.name
    shutil.copy2(path, local)
    if name in REFUSED:      # on reading, or on writing back
        with pytest.raises(InterchangeError, match=REFUSED[name]) as refusal:
            write_timeline(read_timeline(local), tmp_path / f"back{path.suffix}")
        assert "\n" not in str(refusal.value).strip(), "a refusal is one line"
        return
    timeline = read_timeline(local)
    found = _first_video_clip(timeline)
    take = None
    if found is not None:        # (an audio-only or empty sequence comes back as it was, with no take)
        number, index, clip = found
        _relink_missing(clip, tmp_path / "media")
        take = fake_take(f"{(clip.name or 'clip')[:20]}_v001", select_item(timeline, number, index))
        place_take(timeline, clip, take)
    expected = shape(timeline)

    out = tmp_path / f"back{path.suffix}"
    write_timeline(timeline, out)
    again = read_timeline(out)
    assert shape(again) == expected
    if take is not None:
        taken = [c for c in again.find_clips() if take.take_id in c.media_references()]
        assert len(taken) == 1 and taken[0].active_media_reference_key == take.take_id

    # without the sidecar the file alone is still the same cut, frame for frame
    if sidecar_path(out).exists():
        sidecar_path(out).unlink()
        assert shape(read_timeline(out)) == expected


@pytest.mark.parametrize("fps", ["12", "15", "16", "10", "20"])
def test_fcp7_xml_holds_media_at_rates_without_smpte_timecode(fps, tmp_path):
    """Phone, animation and surveillance media on a 24 fps cut: FCP 7 XML writes a timecode for every file, and
    SMPTE timecode exists at a few rates only; the file's range is counted at the smallest
    timecode rate that is a whole multiple (12 -> 24, 15 -> 30, 16 -> 48, 10 -> 30, 20 -> 60), so
    every clip comes back frame for frame."""
    rate = float(Fraction(fps))
    clip = otio.schema.Clip(name="phone", source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(12, rate),
                                                                                otio.opentime.RationalTime(30, rate)))
    clip.media_reference = otio.schema.ExternalReference(
        target_url=str(tmp_path / "phone.mov"),
        available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(90, rate)))
    timeline = otio.schema.Timeline("phone", global_start_time=otio.opentime.RationalTime(0, 24))   # a 24 fps cut
    timeline.tracks.append(otio.schema.Track("V1", children=[clip]))
    write_timeline(timeline, tmp_path / "phone.xml")
    sidecar_path(tmp_path / "phone.xml").unlink()
    assert shape(read_timeline(tmp_path / "phone.xml")) == shape(timeline)


def test_fcp7_xml_refuses_a_rate_no_timecode_can_count_in_one_line_naming_the_clip(tmp_path):
    rate = 26.78
    clip = otio.schema.Clip(name="cctv", source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                                               otio.opentime.RationalTime(30, rate)))
    clip.media_reference = otio.schema.ExternalReference(
        target_url=str(tmp_path / "cctv.mp4"),
        available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(60, rate)))
    timeline = otio.schema.Timeline("cctv", global_start_time=otio.opentime.RationalTime(0, 24))   # on a 24 fps cut
    timeline.tracks.append(otio.schema.Track("V1", children=[clip]))
    with pytest.raises(InterchangeError, match=r"clip 'cctv': its media runs at 26\.78 fps.*Write \.otio") as refusal:
        write_timeline(timeline, tmp_path / "cctv.xml")
    assert "\n" not in str(refusal.value) and not (tmp_path / "cctv.xml").exists()


def test_an_edl_is_read_at_the_rate_its_timecodes_were_written_at(tmp_path):
    """CMX 3600 states no rate: frames up to :23 read at 24, :24 at 25, up to :29 at 30 (29.97
    when the EDL says drop frame), and so on; timecodes no standard rate holds are refused."""
    from bridge.interchange import edl_rate

    event = "001  AX V C        01:00:00:{f} 01:00:01:00 00:00:00:00 00:00:01:00\n"
    assert edl_rate("FCM: NON-DROP FRAME\n" + event.format(f="23")) == 24
    assert edl_rate("FCM: NON-DROP FRAME\n" + event.format(f="24")) == 25
    assert edl_rate("FCM: NON-DROP FRAME\n" + event.format(f="29")) == 30
    assert edl_rate("FCM: DROP FRAME\n" + event.format(f="12").replace("01:00:01:00", "01:00:01;00")) == \
        Fraction(30000, 1001)
    assert edl_rate(event.format(f="49")) == 50
    with pytest.raises(InterchangeError, match="up to frame 75.*--rate"):
        edl_rate(event.format(f="75"))
    clip = read_timeline(CORPUS / "edl" / "25fps.edl").find_clips()[0]
    assert exact_rate(clip.source_range.start_time.rate) == 25


@pytest.mark.parametrize("name,attribute", [("fcp7/premiere_example.xml", r"<pathurl>([^<]+)</pathurl>"),
                                            ("fcpx/fcpx_example.fcpxml", r'\bsrc="([^"]+)"')])
def test_paths_are_written_as_the_application_wrote_them(name, attribute, tmp_path):
    """FCP 7's pathurl and FCPXML's src are file:// URLs: the file's own are written back exactly
    as they were (file://localhost/D%3a/... stays so, not /D:/...), a take's local path becomes a
    file:// URL; EDL and AAF get plain paths."""
    source = CORPUS / name
    timeline = read_timeline(source)
    out = tmp_path / f"back{source.suffix}"
    write_timeline(timeline, out)
    before = set(re.findall(attribute, source.read_text()))
    after = set(re.findall(attribute, out.read_text()))
    assert before and after <= before, sorted(after - before)[:3]
    # a take at a local path
    number, index, clip = _first_video_clip(timeline)
    take = fake_take("urlcheck_v001", select_item(timeline, number, index))
    take.media.url = str(tmp_path / "takes" / "urlcheck_v001.mov")
    place_take(timeline, clip, take)
    write_timeline(timeline, out)
    assert (tmp_path / "takes" / "urlcheck_v001.mov").as_uri() in re.findall(attribute, out.read_text())


def test_an_avid_aaf_written_back_plays_the_active_take_even_without_its_sidecar(tmp_path):
    """Avid's AAF keeps the media path in the clip's UserComments ("UNC Path"), which the AAF
    reader prefers: written back with a take active, that path is the take's, so the file alone is
    the cut with its active takes."""
    timeline = read_timeline(CORPUS / "aaf" / "simple.aaf")
    number, index, clip = _first_video_clip(timeline)
    take = fake_take("avid_v001", select_item(timeline, number, index))
    take.media.url = str(tmp_path / "takes" / "avid_v001.mov")
    place_take(timeline, clip, take)
    write_timeline(timeline, tmp_path / "back.aaf")
    sidecar_path(tmp_path / "back.aaf").unlink()
    again = read_timeline(tmp_path / "back.aaf")
    urls = [c.media_reference.target_url for c in again.find_clips() if c.name == clip.name]
    assert urls and all(url.endswith("takes/avid_v001.mov") for url in urls[:1]), urls


def test_a_take_of_a_speed_changed_clip_covers_the_frames_it_plays(tmp_path):
    """Avid's speed effects (misc_speed_effects.aaf): each clip's take covers the source frames it
    really plays (8 record frames at 2x play 16, at 0.375x 3, a freeze 1), at the source rate; the
    clip keeps its effect and comes back exactly; a reversed clip is refused in one line."""
    from bridge.selection import SelectionError, speed_of

    timeline = read_timeline(CORPUS / "aaf" / "misc_speed_effects.aaf")
    checked = 0
    for number, track in enumerate(timeline.video_tracks(), start=1):
        for index, item in enumerate(list(track)):
            if not isinstance(item, otio.schema.Clip):
                continue
            speed = speed_of(item)
            if speed < 0:
                with pytest.raises(SelectionError, match=r"plays its media backwards \(-1x\).*render the reverse"):
                    select_item(timeline, number, index)
                continue
            segment = select_item(timeline, number, index)
            record = round(item.source_range.duration.value)
            assert segment.source_duration == (1 if speed == 0 else -(-record * speed // 1)), (item.name, speed)
            place_take(timeline, item, fake_take(f"speed{checked}_v001", segment))
            checked += 1
    assert checked >= 8
    expected = shape(timeline)
    write_timeline(timeline, tmp_path / "back.aaf")
    again = read_timeline(tmp_path / "back.aaf")
    assert shape(again) == expected
    assert [round(float(speed_of(c)), 3) for c in again.find_clips()] == \
        [round(float(speed_of(c)), 3) for c in timeline.find_clips()]


@pytest.mark.parametrize("fps", ["15", "12", "26.78"])
def test_a_timeline_at_a_rate_without_smpte_timecode_is_written_where_it_can_be_and_refused_in_one_line_elsewhere(
        fps, tmp_path):
    """Phone and surveillance rates: OTIO, AAF and FCPXML (frame durations written exactly) keep
    any rate exactly; an EDL (counted in SMPTE timecode) and FCP 7 XML (its sequence is stamped
    with one) refuse in one line naming the rate and what to write instead."""
    rate = float(Fraction(fps))
    clip = otio.schema.Clip(name="cam", source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(2, rate),
                                                                              otio.opentime.RationalTime(20, rate)))
    clip.media_reference = otio.schema.ExternalReference(
        target_url=str(tmp_path / "cam.mp4"),
        available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(30, rate)))
    timeline = otio.schema.Timeline("cam", global_start_time=otio.opentime.RationalTime(0, rate))
    timeline.tracks.append(otio.schema.Track("V1", children=[clip]))
    for kept in ("otio", "aaf", "fcpxml"):
        write_timeline(timeline, tmp_path / f"cam.{kept}")
        if sidecar_path(tmp_path / f"cam.{kept}").exists():
            sidecar_path(tmp_path / f"cam.{kept}").unlink()
        assert shape(read_timeline(tmp_path / f"cam.{kept}")) == shape(timeline), kept
    for refused in ("edl", "xml"):
        with pytest.raises(InterchangeError, match=rf"{re.escape(f'{rate:.6g}')}.*write .*\.otio") as refusal:
            write_timeline(timeline, tmp_path / f"cam.{refused}")
        assert "\n" not in str(refusal.value) and not (tmp_path / f"cam.{refused}").exists(), refused


NTSC_FCPXML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.8">
  <resources>
    <format id="r1" name="FFVideoFormat1080p2398" frameDuration="1001/24000s" width="1920" height="1080"/>
    <asset id="r2" name="A001" src="file:///media/A001.mov" start="0s" duration="240240/24000s" hasVideo="1" format="r1"/>
  </resources>
  <library>
    <event name="e">
      <project name="p">
        <sequence format="r1" duration="72072/24000s" tcStart="0s" tcFormat="NDF">
          <spine>
            <asset-clip name="A001" ref="r2" offset="0s" start="24024/24000s" duration="48048/24000s" format="r1"/>
            <asset-clip name="A001" ref="r2" offset="48048/24000s" start="120120/24000s" duration="24024/24000s"
                        format="r1"/>
          </spine>
        </sequence>
      </project>
    </event>
  </library>
</fcpxml>
"""


def test_an_ntsc_final_cut_project_is_read_at_its_real_rate_frame_for_frame(tmp_path):
    """Most Final Cut projects run at 23.976 or 29.97 (a project written here, in Final Cut's
    own form, for what the corpus lacks). The adapter read them at int(24000/1001) = 23 fps: clips
    two frames short and a phantom gap between them. Read exactly: 48 and 24 frames from source
    frames 24 and 120, at 24000/1001, no gap."""
    (tmp_path / "ntsc.fcpxml").write_text(NTSC_FCPXML)
    track = read_timeline(tmp_path / "ntsc.fcpxml").video_tracks()[0]
    rows = [(type(item).__name__, round(_rate_of(item), 3)) for item in track]
    assert rows == [("Clip", 23.976), ("Clip", 23.976)]
    assert [(c.source_range.start_time.value, c.source_range.duration.value) for c in track] == [(24, 48), (120, 24)]
    assert [track.range_of_child_at_index(i).start_time.value for i in range(2)] == [0, 48]


def _rate_of(item) -> float:
    return float(item.source_range.start_time.rate)


def test_takes_are_written_as_a_final_cut_audition_and_read_back_from_it_without_the_sidecar(tmp_path):
    """Final Cut's own take container: a clip with takes is written as an <audition> whose pick
    is the active take and whose alternatives are the others, each on its own asset; the file
    alone (no sidecar) reads back with every take, the same one active, each at its file and
    range, and the cut unchanged."""
    timeline = read_timeline(CORPUS / "fcpx" / "fcpx_example.fcpxml")
    number, index, clip = _first_video_clip(timeline)
    segment = select_item(timeline, number, index)
    for version, active in ((1, True), (2, False)):
        take = fake_take(f"harbour_v00{version}", segment)
        take.media.url = str(tmp_path / "takes" / f"harbour_v00{version}.mov")
        place_take(timeline, clip, take, activate=active)
    expected = shape(timeline)
    report = write_timeline(timeline, tmp_path / "takes.fcpxml")
    assert report["auditions"] == 1

    text = (tmp_path / "takes.fcpxml").read_text()
    assert text.count("<audition") == 1
    audition = re.search(r"<audition[^>]*>(.*?)</audition>", text, re.S)[1]
    members = re.findall(r'<md key="com\.takebridge\.take" value="([^"]+)"', audition)
    assert members == ["harbour_v001", otio.schema.Clip.DEFAULT_MEDIA_KEY, "harbour_v002"]   # the pick first
    pick_ref = re.search(r'<video [^>]*ref="(r\d+)"', audition)[1]
    assert re.search(rf'<asset [^>]*id="{pick_ref}"[^>]*>', text)[0].count((tmp_path / "takes").as_uri()) == 1

    sidecar_path(tmp_path / "takes.fcpxml").unlink()
    again = read_timeline(tmp_path / "takes.fcpxml")
    assert shape(again) == expected
    back = next(c for c in again.find_clips() if "harbour_v002" in c.media_references())
    assert back.name == clip.name and back.active_media_reference_key == "harbour_v001"
    references = back.media_references()
    assert sorted(references) == sorted(clip.media_references())
    for key in ("harbour_v001", "harbour_v002"):
        assert references[key].target_url == (tmp_path / "takes" / f"{key}.mov").as_uri()
        assert references[key].available_range == clip.media_references()[key].available_range
    assert references[otio.schema.Clip.DEFAULT_MEDIA_KEY].target_url == \
        clip.media_references()[otio.schema.Clip.DEFAULT_MEDIA_KEY].target_url


def test_a_final_cut_1_11_project_reads_its_auditions_media_reps_and_start_timecode(tmp_path):
    """An FCPXML 1.11 project in Final Cut's own form (made here: 23.976 fps, starting at
    01:00:00:00, assets naming their files in <media-rep>, one audition, a connected clip):
    the adapter alone read every clip offline, an hour of gap before the cut, and both
    audition members as clips on top of each other."""
    timeline = read_timeline(CORPUS / "fcpx" / "made_here_1.11_ntsc_audition.fcpxml")
    assert timeline.global_start_time.value == 86400 and round(timeline.global_start_time.rate, 3) == 23.976
    main, connected = timeline.video_tracks()
    assert [(item.name, main.range_of_child_at_index(i).start_time.value, item.duration().value)
            for i, item in enumerate(main)] == [("A001_C003", 0, 48), ("B002_C011", 48, 48)]
    assert [(type(item).__name__, connected.range_of_child_at_index(i).start_time.value, item.duration().value)
            for i, item in enumerate(connected)] == [("Gap", 0, 60), ("Clip", 60, 24)]
    audition = main[0]
    assert audition.active_media_reference_key == otio.schema.Clip.DEFAULT_MEDIA_KEY
    references = audition.media_references()
    assert sorted(references) == ["A001_C003_grade", otio.schema.Clip.DEFAULT_MEDIA_KEY]
    assert references["A001_C003_grade"].target_url == "file:///Volumes/Shoot/Grade/A001_C003_grade.mov"
    assert references["A001_C003_grade"].available_range.start_time.value == 86400
    assert audition.source_range.start_time.value == 86424
    # the original media, not the proxy listed before it
    assert main[1].media_reference.target_url == "file:///Volumes/Shoot/Day1/B002_C011.mov"
    # written back, the file alone keeps the start timecode and the audition
    write_timeline(timeline, tmp_path / "back.fcpxml")
    sidecar_path(tmp_path / "back.fcpxml").unlink()
    again = read_timeline(tmp_path / "back.fcpxml")
    assert again.global_start_time.value == 86400 and shape(again) == shape(timeline)
    assert sorted(again.video_tracks()[0][0].media_references()) == sorted(references)


# what each format keeps of speed changes and markers, by itself (without the sidecar)
KEEPS_ALONE = {"otio": (True, True), "xml": (False, True), "aaf": (False, False), "edl": (True, True),
               "fcpxml": (False, True)}


@pytest.mark.parametrize("suffix", sorted(KEEPS_ALONE))
def test_what_each_format_keeps_of_speed_changes_and_markers(suffix, tmp_path):
    """As docs/timeline.md's format table says: a 2x time warp, a freeze frame and a marker on each
    clip, written and read back without the sidecar (what the file alone holds) and with it
    (everything, in every format; an EDL writes marker names in capitals)."""
    def rt(frames):
        return otio.opentime.RationalTime(frames, 24)
    timeline = otio.schema.Timeline("keeps", global_start_time=rt(86400))
    track = otio.schema.Track("V1")
    for index, effect in enumerate([None, otio.schema.LinearTimeWarp(time_scalar=2.0), otio.schema.FreezeFrame()]):
        ref = otio.schema.ExternalReference(str(tmp_path / f"c{index}.mov"),
                                            otio.opentime.TimeRange(rt(86400), rt(480)))
        clip = otio.schema.Clip(f"c{index}", ref, otio.opentime.TimeRange(rt(86410), rt(24)))
        if effect is not None:
            clip.effects.append(effect)
        clip.markers.append(otio.schema.Marker(name=f"note{index}",
                                               marked_range=otio.opentime.TimeRange(rt(86405), rt(1))))
        track.append(clip)
    timeline.tracks.append(track)

    def kept(again):
        clips = list(again.find_clips())
        speeds = [type(c.effects[0]).__name__ if c.effects else None for c in clips]
        return (speeds == [None, "LinearTimeWarp", "FreezeFrame"],
                [m.name.lower() for c in clips for m in c.markers] == ["note0", "note1", "note2"])
    out = tmp_path / f"keeps.{suffix}"
    write_timeline(timeline, out)
    assert kept(read_timeline(out)) == (True, True)          # with the sidecar: all of it
    if sidecar_path(out).exists():
        sidecar_path(out).unlink()
    assert kept(read_timeline(out)) == KEEPS_ALONE[suffix]
