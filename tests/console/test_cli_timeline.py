"""`takebridge timeline ...` and `takebridge submit` over a range, as a script uses them (--json,
exit codes), on real files and against a real server on loopback."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from bridge.interchange import read_timeline, write_timeline
from bridge.takes import ORIGINAL, place_take
from bridge.timeline import select_clip
from server.app import ServerConfig, build_server, shutdown
from server.cli import main
from server.samples import pan_clip

from support.timeline_strategies import fake_take, rt, tr


def run(capsys, *argv) -> tuple[int, dict]:
    code = main(["--log-level", "error", *map(str, argv), "--json"])
    out = capsys.readouterr().out.strip()
    return code, json.loads(out) if out else {}


@pytest.fixture
def cut(tmp_path):
    """V1 at 24 fps from 01:00:00:00: A (40) | dissolve | B (30) | gap 10; B has a take."""
    timeline = otio.schema.Timeline("cut", global_start_time=rt(86400, 24))
    track = otio.schema.Track("V1")
    for name, start, frames in (("A", 86410, 40), ("B", 86405, 30)):
        path = tmp_path / f"{name}.mov"
        path.write_bytes(b"x")
        track.append(otio.schema.Clip(name, otio.schema.ExternalReference(str(path), tr(86400, 100, 24)),
                                      tr(start, frames, 24)))
    track.insert(1, otio.schema.Transition(name="mix", in_offset=rt(4, 24), out_offset=rt(4, 24)))
    track.append(otio.schema.Gap(source_range=tr(0, 10, 24)))
    timeline.tracks.append(track)
    place_take(timeline, "B", fake_take("B_v001", select_clip(timeline, "B")))
    path = tmp_path / "cut.otio"
    write_timeline(timeline, path)
    return path


def test_export_range_writes_jobs_and_says_what_it_selected(capsys, cut, tmp_path):
    code, data = run(capsys, "timeline", "export-range", cut, "--track", 1, "--in", "01:00:00:20",
                     "--out", "01:00:03:00", "--handles", 2, "-o", tmp_path / "range.otio")
    assert code == 0 and data["jobs"] == 2 and data["frames"] == 52
    assert [(s["clip"], s["source_start"], s["source_duration"]) for s in data["segments"]] == \
        [("A", 86430, 20), ("B", 86405, 30)]
    assert (tmp_path / "range.otio").exists()


def test_activate_finalize_and_status_write_a_new_file_and_leave_the_input_alone(capsys, cut, tmp_path):
    original = cut.read_text()
    code, data = run(capsys, "timeline", "activate", cut, "--clip", "B", "--take", "original",
                     "-o", tmp_path / "a.otio")
    assert code == 0 and data["active"] == "DEFAULT_MEDIA"
    code, data = run(capsys, "timeline", "status", tmp_path / "a.otio", "--clip", "B", "--take", "B_v001",
                     "--set", "approved", "--note", "good", "-o", tmp_path / "b.otio")
    assert code == 0
    code, data = run(capsys, "timeline", "finalize", tmp_path / "b.otio", "--clip", "B", "--take", "B_v001",
                     "--drop-others", "-o", tmp_path / "c.otio")
    assert code == 0 and data["active"] == "DEFAULT_MEDIA"
    code, data = run(capsys, "timeline", "takes", tmp_path / "c.otio")
    rows = [(r["clip"], r["key"], r["take_id"], r["status"], r["active"]) for r in data["takes"] if r["clip"] == "B"]
    assert rows == [("B", "DEFAULT_MEDIA", "B_v001", "approved", True), ("B", "original", "", "", False)]
    assert cut.read_text() == original


@pytest.mark.parametrize("argv,message", [
    (["activate", "{cut}", "--clip", "B", "--take", "B_v009", "-o", "{out}"], "clip 'B' has no take 'B_v009'"),
    (["export-range", "{cut}", "--track", "1", "--in", "01:00:00:10", "--out", "01:00:00:10", "-o", "{out}"],
     "is 0 frames long"),
    (["export-range", "{cut}", "--track", "1", "--in", "01:00:01:14", "--out", "01:00:02:00", "-o", "{out}"],
     "cuts the transition 'mix'"),
    (["convert", "{cut}", "{out}.mp4"], "unknown timeline format '.mp4'"),
])
def test_bad_input_exits_2_with_the_reason(capsys, cut, tmp_path, argv, message):
    argv = [a.format(cut=cut, out=tmp_path / "out.otio") for a in argv]
    code, data = run(capsys, "timeline", *argv)
    assert code == 2 and data["status"] == "error" and message in data["error"]
    assert not (tmp_path / "out.otio").exists()


def test_convert_to_fcp_xml_and_back_brings_the_takes_back(capsys, cut, tmp_path):
    code, data = run(capsys, "timeline", "convert", cut, tmp_path / "cut.xml")
    assert code == 0 and data["takes_in_sidecar"] == 1 and data["sidecar"].endswith("cut.xml.takebridge.json")
    code, data = run(capsys, "timeline", "convert", tmp_path / "cut.xml", tmp_path / "back.otio")
    assert code == 0
    back = read_timeline(tmp_path / "back.otio")
    b = next(c for c in back.find_clips() if c.name == "B")
    assert b.active_media_reference_key == "B_v001" and set(b.media_references()) == {"DEFAULT_MEDIA", "B_v001"}


def test_convert_resolve_shape_moves_sources_to_timecode_absolute_frames(capsys, tmp_path, write_media):
    media = write_media("plate", pan_clip(8, 48, 64, 2.0), rate=Fraction(25), timecode="01:00:00:00")
    timeline = otio.schema.Timeline("r", global_start_time=rt(90000, 25))
    track = otio.schema.Track("V1")
    track.append(otio.schema.Clip("P", otio.schema.ExternalReference("file://" + str(media), tr(0, 8, 25)),
                                  tr(2, 4, 25)))
    timeline.tracks.append(track)
    write_timeline(timeline, tmp_path / "in.otio")
    code, data = run(capsys, "timeline", "convert", tmp_path / "in.otio", tmp_path / "resolve.otio", "--resolve")
    assert code == 0 and data["format"] == "otio_json (Resolve)"
    clip = json.loads((tmp_path / "resolve.otio").read_text())["tracks"]["children"][0]["children"][0]
    ref = clip["media_references"]["DEFAULT_MEDIA"]
    assert ref["target_url"] == str(media) and ref["available_range"]["start_time"]["value"] == 90000
    assert clip["source_range"]["start_time"]["value"] == 90002


@pytest.fixture
def address(tmp_path):
    grpc_server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store"))
    yield f"127.0.0.1:{port}"
    shutdown(grpc_server, runtime, grace=0.5)


def test_submit_a_range_makes_one_take_per_clip_and_splits_the_partly_covered_clip(capsys, tmp_path, address,
                                                                                    write_media):
    frames = pan_clip(40, 64, 96, 1.5, seed=3)
    media = write_media("plate", frames, rate=Fraction(24), timecode="01:00:00:00")
    timeline = otio.schema.Timeline("range", global_start_time=rt(86400, 24))
    track = otio.schema.Track("V1")
    for name, start in (("A", 86400), ("B", 86420)):
        track.append(otio.schema.Clip(name, otio.schema.ExternalReference(str(media), tr(86400, 40, 24)),
                                      tr(start, 12, 24)))
    timeline.tracks.append(track)
    write_timeline(timeline, tmp_path / "in.otio")
    code, data = run(capsys, "submit", "--server", address, "--op", "refine", "--timeline", tmp_path / "in.otio",
                     "--track", 1, "--in", "01:00:00:06", "--out-point", "01:00:00:18", "--handles", 2,
                     "--codec", "lossless", "--wait", "--out", tmp_path / "out.otio")
    assert code == 0, data
    assert [j["frames"] for j in data["jobs"]] == [2 + 6 + 2, 2 + 6 + 2]  # each segment with its handles
    out = read_timeline(tmp_path / "out.otio")
    pieces = [(c.name, c.source_range.start_time.value, c.source_range.duration.value,
               c.active_media_reference_key != "DEFAULT_MEDIA") for c in out.tracks[0]]
    assert pieces == [("A", 86400, 6, False), ("A", 86406, 6, True), ("B", 86420, 6, True), ("B", 86426, 6, False)]
    assert out.tracks[0].duration().value == 24
    a_take = out.tracks[0][1].media_reference
    assert (a_take.available_range.start_time.value, a_take.available_range.duration.value) == (86404, 10)


def test_an_edl_per_track_as_resolve_and_premiere_export_them(capsys, tmp_path):
    """Premiere's FCP 7 XML of a four-track cut (tests/data/nle): one EDL cannot hold it, and the
    refusal says how to write it; --track 2 writes V2 alone, --all-tracks one EDL per track, each
    read back (with its sidecar) as that track's cut, frame for frame."""
    from bridge.interchange import track_only

    from support.timeline_strategies import shape

    source = Path(__file__).resolve().parents[1] / "data" / "nle" / "fcp7" / "premiere_example.xml"
    code, data = run(capsys, "timeline", "convert", source, tmp_path / "cut.edl")
    assert code == 2 and "--track N" in data["error"] and "--all-tracks" in data["error"]
    original = read_timeline(source)
    code, data = run(capsys, "timeline", "convert", source, tmp_path / "v2.edl", "--track", 2)
    assert code == 0 and data["track"] == 2
    assert shape(read_timeline(tmp_path / "v2.edl")) == shape(track_only(original, 2))[:5]   # up to the nest
    code, data = run(capsys, "timeline", "convert", source, tmp_path / "cut.edl", "--all-tracks")
    assert code == 0 and [f["track"] for f in data["files"]] == [1, 2, 3, 4]
    for number in (1, 3, 4):
        back = read_timeline(tmp_path / f"cut_V{number}.edl")
        assert shape(back) == shape(track_only(original, number)), f"V{number}"
    # V2 ends in a nested sequence, which no EDL can list: said, not silently dropped
    assert any("written as a cut; the sidecar restores it" in w for w in data["files"][1]["warnings"])
    assert any("nested sequence 'sc01_sh010_anim'" in w for w in data["files"][1]["warnings"])


def test_take_actions_find_a_clip_by_its_place_when_its_name_repeats(capsys, cut, tmp_path):
    """The same shot cut in twice (A renamed B, both with the take's name): by name the action is
    ambiguous and says how to choose; --track 1 --at TC acts on the clip playing there only."""
    timeline = read_timeline(cut)
    track = timeline.tracks[0]
    track[0].name = "B"                       # A, renamed: two clips named B on V1
    place_take(timeline, track[0], fake_take("B_v002", _segment_of(timeline, 0)))
    write_timeline(timeline, tmp_path / "twice.otio")
    code, data = run(capsys, "timeline", "activate", tmp_path / "twice.otio", "--clip", "B", "--take", "original",
                     "--track", 1, "-o", tmp_path / "x.otio")
    assert code == 2 and "choose by position" in data["error"]
    # 01:00:02:00 is frame 48 of the cut: inside the second clip (the first plays frames 0..39)
    code, data = run(capsys, "timeline", "activate", tmp_path / "twice.otio", "--track", 1, "--at", "01:00:02:00",
                     "--take", "original", "-o", tmp_path / "second.otio")
    assert code == 0 and data["active"] == ORIGINAL
    clips = [c for c in read_timeline(tmp_path / "second.otio").find_clips()]
    assert [c.active_media_reference_key for c in clips] == ["B_v002", ORIGINAL]
    code, data = run(capsys, "timeline", "status", tmp_path / "second.otio", "--track", 1, "--at", "01:00:00:05",
                     "--take", "B_v002", "--set", "approved", "--note", "first cut", "-o", tmp_path / "third.otio")
    assert code == 0 and data["clip"] == "B"
    code, data = run(capsys, "timeline", "activate", tmp_path / "second.otio", "--track", 1, "--at", "01:00:04:00",
                     "--take", "original", "-o", tmp_path / "y.otio")
    assert code == 2 and "no clip plays on V1 at 01:00:04:00" in data["error"]


def _segment_of(timeline, index):
    from bridge.timeline import select_item

    return select_item(timeline, 1, index)
