"""The Resolve scripts end to end: the module driven through the documented scripting API
(tests/support/resolve_standin.py) against a real server process."""
from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from server.media import probe, read_frames, write_movie
from server.samples import moving_object_clip, pan_clip

from support.resolve_standin import Resolve
from support.servers import module_server as server  # noqa: F401  (the fixture)
from support.servers import diffusers_server  # noqa: F401  (the fixture: diffusers on tiny pipelines, for drafts)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resolve_scripts"))
from takebridge_resolve import core, markers  # noqa: E402

pytestmark = pytest.mark.slow
RATE = Fraction(24)


@pytest.fixture
def cut(tmp_path):
    """V1 at 24 fps from 01:00:00:00: A (media frames 4..28 at +0), gap 12, B (0..20 at +36)."""
    resolve = Resolve()
    a_frames, a_masks, _ = moving_object_clip(40, 48, 64, seed=1)
    a = write_movie(a_frames, tmp_path / "A.mkv", codec="ffv1", rate=RATE, start_timecode="10:00:00:00").path
    b = write_movie(pan_clip(30, 48, 64, 1.2, seed=2), tmp_path / "B.mkv", codec="ffv1", rate=RATE,
                    start_timecode="11:00:00:00").path
    item_a = resolve.import_and_place(str(a), 1, 0, 4, 24)
    item_b = resolve.import_and_place(str(b), 1, 36, 0, 20)
    mask = write_movie(np.repeat(a_masks[..., None] * np.uint8(255), 3, axis=-1), tmp_path / "mask.mkv",
                       codec="ffv1", rate=RATE).path
    return resolve, item_a, item_b, a_frames, a_masks, str(mask)


def _options(tmp_path, **kw):
    return core.Options(codec="FFV1", take_dir=str(tmp_path / "takes"), **kw)


def test_refine_adds_a_selected_take_with_its_ids(cut, server, tmp_path):
    resolve, item_a, _b, frames, _m, _mask = cut
    resolve.timeline.selected = [item_a]
    (result,) = core.run(resolve, _options(tmp_path, op="refine", handles=2), server=server)
    assert result["state"] == "succeeded" and result["take_index"] == 2
    assert item_a.GetTakesCount() == 2 and item_a.GetSelectedTakeIndex() == 2
    take = item_a.GetTakeByIndex(2)
    mpi = take["mediaPoolItem"]
    # the take carries 2 handle frames each side: the item shows its frames 2..26
    assert (take["startFrame"], take["endFrame"]) == (2, 26) and item_a.GetDuration() == 24
    assert item_a.GetMediaPoolItem() is mpi and item_a.GetTakeByIndex(1)["startFrame"] == 4
    meta = json.loads(mpi.GetThirdPartyMetadata("takebridge"))
    assert meta["take_id"] == result["take_id"] and meta["job_id"] == result["job_id"] and meta["status"] in ("ok",
                                                                                                            "needs_review")
    bin_ = next(f for f in resolve.project.pool.GetRootFolder().GetSubFolderList() if f.GetName() == "TakeBridge")
    assert mpi in bin_.GetClipList() and resolve.project.pool.GetCurrentFolder().GetName() == "Master"
    info = probe(mpi.path)
    assert info.frame_count == 28 and info.start_timecode == "10:00:00:02"   # source frames 2..29 of A
    rows = core.takes_of(item_a)
    assert [(r["index"], r["selected"], r.get("take_id", "")) for r in rows] == [(1, False, ""),
                                                                                 (2, True, result["take_id"])]


def test_inpaint_the_item_under_the_playhead_within_in_out_marks_on_an_older_resolve(cut, server, tmp_path):
    resolve, item_a, _b, frames, masks, mask = cut
    resolve._version = resolve.timeline._version = (19, 1, 0)          # no GetSelectedClips before 21.0.4
    assert "GetSelectedClips" not in dir(resolve.timeline) and hasattr(resolve.timeline, "GetSelectedClips")
    resolve.timeline.playhead = resolve.timeline.start + 5
    (result,) = core.run(resolve, _options(tmp_path, op="inpaint", mask=mask), server=server)
    assert result["state"] == "succeeded" and item_a.GetSelectedTakeIndex() == 2
    take = read_frames(item_a.GetMediaPoolItem().path, 0, 24)
    source = frames[4:28]
    outside = ~masks[:24]  # mask frame 0 is the clip's first frame
    assert np.array_equal(take[outside], source[outside]), "pixels outside the mask are the source's"
    # In/Out marks narrow the range: only frames 8..15 are sent, and the take lands over exactly them
    resolve.timeline.SetMarkInOut(8, 15)
    (result,) = core.run(resolve, _options(tmp_path, op="refine"), server=server)
    assert result["state"] == "succeeded" and result["take_id"].startswith("A_v")
    placed = result["placement"]
    assert resolve.timeline.GetTrackName("video", placed["track"]) == "TakeBridge"
    assert (placed["start"] - resolve.timeline.start, placed["duration"]) == (8, 8)
    assert probe(json.loads(open(result["manifest"]).read())["take"]["media"]["url"]).frame_count == 8
    assert item_a.GetSelectedTakeIndex() == 2, "the item's own takes are untouched"


def test_refusals_say_what_to_do(cut, server, tmp_path):
    resolve, item_a, _b, _f, _m, _mask = cut
    resolve.timeline.playhead = resolve.timeline.start + 30     # in the gap
    with pytest.raises(core.ResolveError, match="select a clip on a video track"):
        core.run(resolve, _options(tmp_path, op="refine"), server=server)
    resolve.timeline.selected = [item_a]
    with pytest.raises(core.ResolveError, match="inpaint needs a mask file"):
        core.run(resolve, _options(tmp_path, op="inpaint"), server=server)


def test_extension_goes_into_the_following_gap_or_a_takebridge_track(cut, server, tmp_path):
    resolve, item_a, item_b, _f, _m, _mask = cut
    resolve.timeline.selected = [item_a]
    (result,) = core.run(resolve, _options(tmp_path, op="extend", frames=8), server=server)
    placed = result["placement"]
    assert placed == {"track": 1, "start": item_a.GetEnd(), "duration": 8, "expected_duration": 8}
    assert item_a.GetTakesCount() == 0, "an extension does not go into the Take Selector"
    v1 = resolve.timeline.GetItemListInTrack("video", 1)
    assert [i.GetStart() - resolve.timeline.start for i in v1] == [0, 24, 36]
    # the first extension now fills the frames after A: another one does not fit there ...
    with pytest.raises(core.ResolveError, match=r"01:00:01:00 to 01:00:01:08 on V1, which would overwrite 'A_v\d+\.mkv' \(at 01:00:01:00\).*Use the TakeBridge track placement"):
        core.run(resolve, _options(tmp_path, op="extend", frames=8), server=server, items=[v1[0]])
    # ... but a TakeBridge track above takes the whole extended take
    (result,) = core.run(resolve, _options(tmp_path, op="extend", frames=8, side="head", placement="track"),
                         server=server, items=[item_b])
    placed = result["placement"]
    assert resolve.timeline.GetTrackName("video", placed["track"]) == "TakeBridge"
    assert placed["start"] == item_b.GetStart() - 8 and placed["duration"] == 28 == placed["expected_duration"]


def test_marker_mode_processes_every_marked_clip_and_colours_the_markers(cut, server, tmp_path):
    resolve, item_a, item_b, _f, _m, mask = cut
    c = write_movie(pan_clip(30, 48, 64, 0.8, seed=5), tmp_path / "C.mkv", codec="ffv1", rate=RATE,
                    start_timecode="12:00:00:00").path
    item_c = resolve.import_and_place(str(c), 1, 70, 0, 20)
    item_a.AddMarker(3, "Blue", "gen", f"tb inpaint {mask}", 1)
    item_b.AddMarker(0, "Blue", "gen", "tb refine 0.7", 1)
    resolve.timeline.AddMarker(72, "Blue", "gen", "tb extend 6", 1)       # a timeline marker over C
    item_b.AddMarker(5, "Blue", "note", "not for us", 1)
    results = markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"))
    assert sorted(r["item"] for r in results) == ["A.mkv", "B.mkv", "C.mkv"]
    assert all(r["state"] == "succeeded" for r in results)
    assert item_a.GetMarkers()[3]["color"] in ("Green", "Yellow") and "-> " in item_a.GetMarkers()[3]["note"]
    assert item_b.GetMarkers()[0]["color"] in ("Green", "Yellow") and item_b.GetMarkers()[5]["color"] == "Blue"
    assert resolve.timeline.GetMarkers()[72]["color"] in ("Green", "Yellow")
    assert item_a.GetTakesCount() == 2 and item_b.GetTakesCount() == 2
    assert any(i.GetStart() == item_c.GetEnd() for i in resolve.timeline.GetItemListInTrack("video", 1))
    # a marker that cannot be read turns red with the reason
    item_a.AddMarker(10, "Blue", "gen", "tb explode 3", 1)
    results = markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"))
    bad = item_a.GetMarkers()[10]
    assert bad["color"] == "Red" and "cannot read marker" in bad["note"]


def test_switch_review_and_finalize(cut, server, tmp_path):
    resolve, item_a, _b, _f, _m, _mask = cut
    resolve.timeline.selected = [item_a]
    (first,) = core.run(resolve, _options(tmp_path, op="refine", seed=1), server=server)
    (second,) = core.run(resolve, _options(tmp_path, op="refine", seed=2), server=server)
    assert item_a.GetTakesCount() == 3 and item_a.GetSelectedTakeIndex() == 3
    core.switch_take(item_a, 2)
    assert item_a.GetMediaPoolItem() is item_a.GetTakeByIndex(2)["mediaPoolItem"]
    with pytest.raises(core.ResolveError, match="has takes 1..3, not 7"):
        core.switch_take(item_a, 7)
    meta = core.review(item_a, 2, False, "ghosting on the left", server=server, reviewer="ray")
    assert meta["status"] == "rejected" and meta["note"] == "ghosting on the left"
    manifest = json.loads(open(meta["manifest"]).read())
    assert manifest["reviews"] == [{"approve": False, "note": "ghosting on the left", "reviewer": "ray"}]
    with pytest.raises(core.ResolveError, match="was not made by TakeBridge"):
        core.review(item_a, 1, True, "", server=server)
    core.switch_take(item_a, 3)
    core.finalize(item_a)
    assert item_a.GetTakesCount() == 0 and item_a.GetMediaPoolItem().GetName().startswith(second["take_id"])


def test_install_resolve_copies_the_scripts_that_then_run_from_their_folder(cut, server, tmp_path, capsys,
                                                                            monkeypatch):
    import os
    import runpy

    from server.cli import main

    # the installed script puts its folder's site-packages first on sys.path, as it should in
    # Resolve; here that is this test process's path, given back after the test
    monkeypatch.setattr(sys, "path", list(sys.path))

    dest, lib = tmp_path / "Scripts" / "Edit", tmp_path / "lib"
    assert main(["install-resolve", "--dest", str(dest), "--lib", str(lib), "--python", sys.executable, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and {p.name for p in dest.iterdir()} == {"TakeBridge.py", "TakeBridge Markers.py"}
    assert {p.name for p in lib.iterdir()} == {"takebridge_resolve", "takebridge_core", "site-packages",
                                               "INSTALLED.json"}
    assert main(["install-resolve", "--print", "--python", str(tmp_path / "no-python"), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert not data["ok"] and "pass --python with the Python Resolve uses" in data["problem"]
    # the installed marker script, run the way Resolve runs it (with `resolve` injected)
    resolve, _a, item_b, _f, _m, _mask = cut
    item_b.AddMarker(0, "Blue", "gen", "tb refine 0.4", 1)
    os.environ["TAKEBRIDGE_SERVER"] = server
    try:
        runpy.run_path(str(dest / "TakeBridge Markers.py"), init_globals={"resolve": resolve})
    finally:
        del os.environ["TAKEBRIDGE_SERVER"]
    assert item_b.GetMarkers()[0]["color"] in ("Green", "Yellow") and item_b.GetTakesCount() == 2


def test_the_dialog_falls_back_to_marker_mode_and_its_controller_drives_the_takes(cut, server, tmp_path):
    from takebridge_resolve import dialog

    resolve, item_a, _b, _f, _m, _mask = cut
    assert "marker" in dialog.show(resolve, None, server=server)      # no UIManager (free edition)

    class Widget:
        Text, CurrentText, Value = "", "refine", 1

    items = {name: Widget() for name in ("Op", "Prompt", "Frames", "Seed", "Mask", "Status", "Takes", "Note")}
    items["Seed"].Value = 3
    resolve.timeline.selected = [item_a]
    controller = dialog.Controller(resolve, server, items)
    controller.generate(wait=True)
    assert item_a.GetTakesCount() == 2 and "A_v" in items["Status"].Text
    items["Note"].Text = "good"
    controller.review(True, index=2)
    assert items["Status"].Text.endswith("approved")
    controller.switch(1)
    assert item_a.GetSelectedTakeIndex() == 1


def _jobs(server) -> int:
    from bridge.client import GenerationClient

    with GenerationClient(server) as client:
        return len(client.list_jobs(limit=1000))


def test_the_same_source_cut_in_twice_on_one_track_is_found_by_position(tmp_path, server):
    """Resolve names items after their media-pool clip: two cuts of A.mkv on V1 share a name. The
    script finds each by track and position and never asks for a --track it cannot have."""
    resolve = Resolve()
    frames = pan_clip(40, 48, 64, 1.0, seed=7)
    a = write_movie(frames, tmp_path / "A.mkv", codec="ffv1", rate=RATE, start_timecode="10:00:00:00").path
    first = resolve.import_and_place(str(a), 1, 0, 4, 24)
    (mpi,) = [i.GetMediaPoolItem() for i in [first]]
    second = resolve.timeline.place(mpi, 1, resolve.timeline.start + 30, 20, 12)
    assert first.GetName() == second.GetName() == "A.mkv"
    resolve.timeline.selected = [second]
    (result,) = core.run(resolve, _options(tmp_path, op="refine", strength=0.4), server=server)
    assert result["state"] == "succeeded", result
    assert (first.GetTakesCount(), second.GetTakesCount()) == (0, 2)
    take = second.GetTakeByIndex(2)
    media = take["mediaPoolItem"].GetClipProperty("File Path")
    made = read_frames(media, 0, probe(media).frame_count)
    # the take holds the second cut's source frames 20..31, not the first cut's 4..27
    assert len(made) == 12 and np.abs(made.astype(int) - frames[20:32]).mean() < np.abs(
        made.astype(int) - frames[4:16]).mean()


def test_an_extension_without_room_is_refused_before_anything_is_sent_and_named_in_timecode(cut, server,
                                                                                          tmp_path):
    resolve, item_a, _b, _f, _m, _mask = cut
    resolve.timeline.selected = [item_a]
    before = _jobs(server)
    with pytest.raises(core.ResolveError) as err:
        core.run(resolve, _options(tmp_path, op="extend", frames=20), server=server)
    # A ends at 01:00:01:00; 20 frames would reach into B at 01:00:01:12
    assert "01:00:01:00 to 01:00:01:20 on V1, which would overwrite 'B.mkv' (at 01:00:01:12)" in str(err.value)
    assert _jobs(server) == before, "nothing was submitted"
    assert item_a.GetTakesCount() == 0


def test_one_refused_clip_in_a_multi_clip_selection_does_not_drop_the_others(cut, server, tmp_path):
    resolve, item_a, item_b, _f, _m, _mask = cut
    resolve.timeline.selected = [item_a, item_b]
    before = _jobs(server)
    results = core.run(resolve, _options(tmp_path, op="extend", frames=20), server=server)
    assert [(r["item"], r["state"]) for r in results] == [("A.mkv", "refused"), ("B.mkv", "succeeded")]
    assert "would overwrite 'B.mkv'" in results[0]["error"] and results[0]["record_start"] == "01:00:00:00"
    assert results[1]["placement"]["start"] == item_b.GetEnd() and results[1]["placement"]["duration"] == 20
    assert _jobs(server) == before + 1


def test_the_marker_script_run_twice_makes_each_take_once_unless_asked_to_redo(cut, server, tmp_path):
    resolve, _a, item_b, _f, _m, _mask = cut
    item_b.AddMarker(0, "Blue", "gen", "tb refine 0.7", 1)
    (first,) = markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"))
    assert first["state"] == "succeeded" and item_b.GetTakesCount() == 2
    marker = item_b.GetMarkers()[0]
    assert marker["customData"] == f"takebridge:{first['status']}:{first['take_id']}"
    (again,) = markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"))
    assert (again["state"], again["take_id"]) == ("skipped", first["take_id"]) and item_b.GetTakesCount() == 2
    assert item_b.GetMarkers()[0] == marker, "a skipped marker is left as it was"
    # a marker whose custom data was lost is still recognised by its note
    item_b.DeleteMarkerAtFrame(0)
    item_b.AddMarker(0, marker["color"], marker["name"], marker["note"], 1)
    assert markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"))[0]["state"] == "skipped"
    (redone,) = markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"), redo=True)
    assert redone["state"] == "succeeded" and redone["take_id"] != first["take_id"]
    assert item_b.GetTakesCount() == 3 and item_b.GetMarkers()[0]["note"].startswith("tb refine 0.7 -> ")


def test_the_dialog_cancels_only_the_jobs_it_sent(cut, server, tmp_path):
    """Someone else's jobs on the same server (here: two queued behind each other) survive the
    dialog's Cancel."""
    from bridge.client import GenerationClient
    from bridge.api import pb
    from conftest import submit_request, make_timeline
    from takebridge_resolve import dialog

    long = write_movie(pan_clip(240, 96, 128, 1.0, seed=9), tmp_path / "long.mkv", codec="ffv1", rate=RATE).path
    timeline = make_timeline(long, rate=RATE, media_start=0, media_frames=240, clip_in=0, clip_frames=240)
    with GenerationClient(server) as client:
        theirs = [client.submit(submit_request(timeline, "A", "refine", strength=1.0)).job_id for _ in range(2)]
        states = [client.get_job(j).state for j in theirs]
        controller = dialog.Controller(cut[0], server, {"Status": type("W", (), {"Text": ""})()})
        controller.cancel()
        assert pb.QUEUED in states or pb.RUNNING in states, "the other jobs had ended: make them longer"
        assert "nothing of ours to cancel" in controller.items["Status"].Text
        ended = [client.wait(j) for j in theirs]
    assert [j.state for j in ended] == [pb.SUCCEEDED, pb.SUCCEEDED]


def test_exporting_the_timeline_leaves_no_temporary_folder(cut, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    resolve = cut[0]
    timeline = core.export_otio(core.context(resolve))
    assert len(list(timeline.find_clips())) == 2
    assert not list(tmp_path.glob("takebridge-resolve-*"))


# ------------------------------------------------------------------------------ Generate

def _shot_items(resolve, track: int = 1) -> list:
    """The pre-vis items (Generate made them) on a track, by record start."""
    return [i for i in resolve.timeline.GetItemListInTrack("video", track) if core.previs_meta(i)]


def test_marker_mode_generates_a_shot_at_each_timeline_marker_in_a_gap(cut, server, tmp_path):
    """Timeline markers: `tb generate 12 "harbour at dawn"` in the 12-frame gap between A and B
    makes a 12-frame shot at the marker's frame (A's last and B's first frames as keyframes);
    one over B is refused in one line naming B, nothing sent; one past the end takes its own
    duration; one whose frames run into the next clip goes on the TakeBridge track."""
    resolve, item_a, item_b, _f, _m, _mask = cut
    timeline, start = resolve.timeline, resolve.timeline.start
    assert timeline.SetSetting("timelineResolutionWidth", "64") and timeline.SetSetting("timelineResolutionHeight", "48")
    timeline.AddMarker(24, "Blue", "gen", 'tb generate 12 "harbour at dawn"', 1)
    timeline.AddMarker(40, "Blue", "gen", 'tb generate 6 "over B"', 1)
    timeline.AddMarker(60, "Blue", "coda", 'tb generate "the harbour at night" shot=coda burn-in', 8)
    timeline.AddMarker(56, "Blue", "gen", 'tb generate 10 "gulls"', 1)       # 56..66 runs into coda (60..68)
    before = _jobs(server)
    results = {r["item"]: r for r in markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"))}
    assert _jobs(server) == before + 3, "the refused marker sent nothing"

    refused = results["marker at 01:00:01:16"]
    assert refused["state"] == "failed" and refused["marker_colour"] == "Red"
    assert "is on clip 'B.mkv' on V1, not in a gap" in refused["error"] and "\n" not in refused["error"]
    assert timeline.GetMarkers()[40]["color"] == "Red" and "'B.mkv'" in timeline.GetMarkers()[40]["note"]

    harbour, coda = _shot_items(resolve)
    made = results[core.takes_of(harbour)[0]["shot"]]
    assert made["state"] == "succeeded" and made["take_id"] == core.takes_of(harbour)[0]["take_id"]
    assert (harbour.GetStart() - start, harbour.GetDuration()) == (24, 12)
    assert [i.GetStart() - start for i in timeline.GetItemListInTrack("video", 1)] == [0, 24, 36, 60]
    assert timeline.GetMarkers()[24]["color"] in ("Green", "Yellow") and made["take_id"] in timeline.GetMarkers()[24]["note"]
    manifest = json.loads(open(made["manifest"]).read())
    assert manifest["generate"]["mode"] == "keyframes" and manifest["generate"]["size"] == [64, 48]
    assert [(f["which"], f["frame"]) for f in manifest["inputs"]["frames"]] == [("first", 27), ("last", 0)]
    assert manifest["request"]["contract"]["prompt"] == "harbour at dawn"
    assert manifest["request"]["client"] == "takebridge-resolve"

    assert results["coda"]["take_id"].startswith("coda_v") and (coda.GetStart() - start, coda.GetDuration()) == (60, 8)
    assert json.loads(open(results["coda"]["manifest"]).read())["generate"]["burn_in"] is True

    (gulls,) = [r for r in results.values() if r.get("placement", {}).get("track", 1) != 1]
    track = gulls["placement"]["track"]
    assert timeline.GetTrackName("video", track) == "TakeBridge"
    assert (gulls["placement"]["start"] - start, gulls["placement"]["duration"]) == (56, 10)
    assert len(_shot_items(resolve, track)) == 1

    # run again: the shots made are skipped, the refused one refused again; redo makes another
    # take of the harbour shot in the same item's Take Selector
    again = markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"))
    assert sorted(r["state"] for r in again) == ["failed", "skipped", "skipped", "skipped"]
    timeline.DeleteMarkerAtFrame(24)
    timeline.AddMarker(24, "Blue", "gen", 'tb generate 12 "harbour at dawn, fog"', 1)
    (second,) = [r for r in markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"))
                 if r["state"] == "succeeded"]
    assert second["take_index"] == 2 and harbour.GetTakesCount() == 2 and harbour.GetSelectedTakeIndex() == 2
    assert [t["take_id"] for t in core.takes_of(harbour)] == [made["take_id"], second["take_id"]]
    assert (harbour.GetStart() - start, harbour.GetDuration()) == (24, 12) and len(_shot_items(resolve)) == 2


def test_a_generate_marker_on_a_clip_or_past_the_end_without_a_length_is_refused_saying_why(cut, server,
                                                                                           tmp_path):
    resolve, item_a, _b, _f, _m, _mask = cut
    item_a.AddMarker(3, "Blue", "gen", 'tb generate 12 "x"', 1)             # on a clip, not in a gap
    resolve.timeline.AddMarker(80, "Blue", "gen", 'tb generate "x"', 1)     # past the end, no length
    before = _jobs(server)
    results = markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"))
    assert [r["state"] for r in results] == ["failed", "failed"] and _jobs(server) == before
    assert "not on clip 'A.mkv'" in results[0]["error"]
    assert "past the end of V1" in results[1]["error"] and 'tb generate N "prompt"' in results[1]["error"]
    assert item_a.GetMarkers()[3]["color"] == "Red" and resolve.timeline.GetMarkers()[80]["color"] == "Red"


def test_the_dialog_generates_in_the_gap_at_the_playhead(cut, server, tmp_path):
    from takebridge_resolve import dialog

    resolve, _a, item_b, _f, _m, _mask = cut
    timeline, start = resolve.timeline, resolve.timeline.start

    class Widget:
        Text, CurrentText, Value, Checked = "", "", 1, False

    items = {name: Widget() for name in ("Op", "Prompt", "Frames", "Seed", "Mask", "Status", "Takes", "Note",
                                         "Track", "Mode", "Camera", "BurnIn")}
    items["Op"].CurrentText, items["Prompt"].Text = "generate", "a boat crosses"
    items["Mode"].CurrentText, items["Camera"].CurrentText, items["BurnIn"].Checked = "auto", "auto", True
    controller = dialog.Controller(resolve, server, items)

    assert timeline.SetCurrentTimecode("01:00:01:16")                 # on B
    before = _jobs(server)
    controller.generate(wait=True)
    assert "the playhead (01:00:01:16) is on clip 'B.mkv' on V1, not in a gap" in items["Status"].Text
    assert _jobs(server) == before

    assert timeline.SetCurrentTimecode("01:00:01:06")                 # in the gap A..B
    controller.generate(wait=True)
    (shot,) = _shot_items(resolve)
    (row,) = controller.rows                                          # the dialog lists the new shot's take
    assert (shot.GetStart() - start, shot.GetDuration()) == (24, 12) and row["selected"]
    assert row["take_id"] in items["Status"].Text and row["op"] == "generate"
    manifest = json.loads(open(row["manifest"]).read())
    assert manifest["generate"]["burn_in"] is True and manifest["generate"]["mode"] == "keyframes"

    items["Camera"].CurrentText, items["Mode"].CurrentText = "push_in", "text"   # another take, the playhead on the shot
    controller.generate(wait=True)
    assert shot.GetTakesCount() == 2 and [r["selected"] for r in controller.rows] == [False, True]
    assert json.loads(open(controller.rows[1]["manifest"]).read())["generate"]["camera"] == "push_in"
    controller.switch(1)
    assert shot.GetSelectedTakeIndex() == 1
    items["Note"].Text = "keeps the cut"
    controller.review(True, index=1)
    assert items["Status"].Text == f"{row['take_id']}: approved"
    assert [i.GetStart() - start for i in timeline.GetItemListInTrack("video", 1)] == [0, 24, 36]


# ------------------------------------------------------------------------ shot contracts

SHOT = """
role = "pre-vis"
purpose = "establish the harbour before the chase"
prompt = "a wide of the harbour at dawn"
negative_prompt = "text, watermark"
characters = ["hero"]
seed = 77
codec = "FFV1"
mode = "text"
burn_in = true
[constraints]
duration = 12
camera = "push-in"
must_not_change = ["the boats' positions"]
[review]
flicker = 1.5
[budget]
max_compute_seconds = 600
"""


@pytest.fixture
def shot_folder(tmp_path):
    """A shot contract and the character library beside it."""
    import cv2

    folder = tmp_path / "shots"
    (folder / "refs").mkdir(parents=True)
    cv2.imwrite(str(folder / "refs" / "hero.png"), np.full((16, 16, 3), (30, 30, 200), np.uint8))
    (folder / "characters.toml").write_text('[hero]\ndescription = "a woman in a red raincoat"\n'
                                            'images = ["refs/hero.png"]\n')
    (folder / "shot.toml").write_text(SHOT)
    return folder


def _fields(items) -> dict:
    """What the dialog's fields hold."""
    return {"prompt": items["Prompt"].Text, "seed": items["Seed"].Value, "codec": items["Codec"].CurrentText,
            "mode": items["Mode"].CurrentText, "camera": items["Camera"].CurrentText,
            "burn_in": items["BurnIn"].Checked, "op": items["Op"].CurrentText}


def _worked(window, button: str) -> None:
    """Click a button whose work runs in the dialog's thread, and wait for that work."""
    import threading

    before = set(threading.enumerate())
    window.click(button)
    for thread in set(threading.enumerate()) - before:
        if "(work)" in thread.name:
            thread.join(120)


def test_the_dialog_loads_a_shot_contract_its_job_carries_it_and_save_writes_it(cut, server, shot_folder):
    """Through the dialog (the stand-in's UIManager): Load fills the fields from the contract and
    keeps the rest for the job (role, purpose, characters from characters.toml beside it);
    Save writes the contract of what the dialog holds, and another dialog loads it the same."""
    from bridge import contract
    from support.resolve_standin import Bmd
    from takebridge_resolve import dialog

    resolve, _a, _b, _f, _m, _mask = cut
    saved, seen = shot_folder / "saved.json", {}
    assert resolve.timeline.SetCurrentTimecode("01:00:01:06")          # in the gap A..B

    def user(window):
        items = window.GetItems()
        assert {"Contract", "LoadContract", "SaveContract", "Codec"} <= set(items)
        items["Contract"].Text = str(shot_folder / "shot.toml")
        window.click("LoadContract")
        seen["loaded"], seen["status"] = _fields(items), items["Status"].Text
        items["Op"].CurrentText = "generate"
        _worked(window, "Go")
        seen["made"] = items["Status"].Text
        items["Prompt"].Text = "the harbour at night"
        items["Contract"].Text = str(shot_folder / "saved")              # no suffix: .json
        window.click("SaveContract")
        seen["saved"] = items["Status"].Text

    assert dialog.show(resolve, Bmd(user), server=server) == ""
    assert seen["loaded"] == {"prompt": "a wide of the harbour at dawn", "seed": 77, "codec": "lossless",
                              "mode": "text", "camera": "push_in", "burn_in": True, "op": "refine"}
    assert seen["status"] == "loaded shot.toml; role pre-vis; characters hero; 12 frames"
    (shot,) = _shot_items(resolve)
    (row,) = core.takes_of(shot)
    assert row["take_id"] in seen["made"]
    request = json.loads(open(row["manifest"]).read())["request"]
    sent = request["contract"]
    assert (sent["role"], sent["purpose"], sent["negative_prompt"]) == (
        "pre-vis", "establish the harbour before the chase", "text, watermark")
    assert [c["name"] for c in sent["characters"]] == ["hero"] and len(sent["characters"][0]["sha256"]) == 64
    assert sent["prompt"] == "a wide of the harbour at dawn hero: a woman in a red raincoat."
    assert [r["role"] for r in sent["reference_images"]] == ["character"]
    assert (sent["seed"], sent["output"]["codec"], sent["must_not_change"]) == ("77", "FFV1",
                                                                               ["the boats' positions"])
    assert sent["review"]["thresholds"] == {"flicker": 1.5} and sent["budget"]["max_compute_seconds"] == 600
    assert (request["generate"]["mode"], request["generate"]["camera"], request["generate"]["burn_in"]) == (
        "TEXT", "PUSH_IN", True)

    assert seen["saved"] == f"saved the shot contract {saved}"
    data = contract.read_contract(saved)
    assert (data["prompt"], data["seed"], data["codec"], data["role"], data["characters"]) == (
        "the harbour at night", 77, "lossless", "pre-vis", ["hero"])
    assert data["constraints"]["camera"] == "push_in" and data["constraints"]["duration"] == 12
    assert data["review"] == {"flicker": 1.5} and data["budget"] == {"max_compute_seconds": 600}

    def again(window):                                                  # a new dialog loads what was saved
        items = window.GetItems()
        items["Contract"].Text = str(saved)
        window.click("LoadContract")
        seen["again"] = _fields(items)

    assert dialog.show(resolve, Bmd(again), server=server) == ""
    assert seen["again"] == {**seen["loaded"], "prompt": "the harbour at night"}   # (burn-in kept too)


@pytest.mark.parametrize("text,match", [
    ('prompt = "x"\ncolour = "red"\n', r"unknown field 'colour'"),
    ('seed = "many"\n', r"seed is 'many'; it must be a whole number in 0\.\.9007199254740991"),
    ('seed = 9999999999\n', r"seed 9999999999 is outside the dialog's 0\.\.2147483647"),
    ('codec = "mp3"\n', r"codec 'mp3' is not one of prores, lossless"),
    ('[constraints]\ncamera = "zoom"\n', r"camera move 'zoom' is not one of"),
    ('[constraints]\ncamera_amount = 2\n', r"camera_amount is 2; it must be 0\.\.1"),
    ('prompt = \n', r"cannot be read"),
    (None, r"contract .*missing\.toml not found"),
])
def test_a_bad_contract_shows_its_message_in_the_dialog_and_changes_nothing(cut, shot_folder, text, match):
    import re

    from support.resolve_standin import Bmd
    from takebridge_resolve import dialog

    bad, seen = shot_folder / ("bad.toml" if text is not None else "missing.toml"), {}
    if text is not None:
        bad.write_text(text)

    def user(window):
        items = window.GetItems()
        items["Contract"].Text = str(shot_folder / "shot.toml")
        window.click("LoadContract")
        seen["before"] = _fields(items)
        items["Contract"].Text = str(bad)
        window.click("LoadContract")
        seen["after"], seen["status"] = _fields(items), items["Status"].Text
        items["Contract"].Text = str(shot_folder / "out.toml")
        window.click("SaveContract")
        seen["save"] = items["Status"].Text

    assert dialog.show(cut[0], Bmd(user), server="127.0.0.1:1") == ""
    assert seen["status"].startswith("error: ") and re.search(match, seen["status"]), seen["status"]
    assert seen["after"] == seen["before"]
    assert "contracts are saved as JSON; name the file out.json" in seen["save"]
    assert not (shot_folder / "out.toml").exists()


def test_the_free_edition_has_no_dialog_but_a_marker_can_name_a_contract(cut, server, shot_folder, tmp_path):
    """`tb generate contract=/path/shot.toml` at a timeline marker past the end: the contract's 12
    frames from the marker, its role and characters (characters.toml beside it) in the request;
    a relative path is refused on the marker, naming it."""
    from support.resolve_standin import Bmd
    from takebridge_resolve import dialog

    resolve = cut[0]
    resolve.product = "DaVinci Resolve"
    assert "marker" in dialog.show(resolve, Bmd(), server=server)
    timeline, start = resolve.timeline, resolve.timeline.start
    note = f'tb generate "gulls over the harbour" contract={shot_folder / "shot.toml"}'
    timeline.AddMarker(60, "Blue", "gen", note, 1)
    timeline.AddMarker(80, "Blue", "gen", "tb generate contract=shots/shot.toml", 1)
    results = markers.process(resolve, server=server, take_dir=str(tmp_path / "takes"))
    made, refused = sorted(results, key=lambda r: r["state"] != "succeeded")
    assert made["state"] == "succeeded", made
    (shot,) = [i for i in _shot_items(resolve) if i.GetStart() - start == 60]
    assert shot.GetDuration() == 12
    sent = json.loads(open(made["manifest"]).read())["request"]["contract"]
    assert sent["role"] == "pre-vis" and [c["name"] for c in sent["characters"]] == ["hero"]
    assert sent["prompt"] == "gulls over the harbour hero: a woman in a red raincoat.", "the marker's words win"
    assert refused["state"] == "failed" and "contract=shots/shot.toml: give the contract file's full path" in \
        refused["error"]
    assert timeline.GetMarkers()[80]["color"] == "Red"


# ------------------------------------------------------------------ draft and final (issue 17)

def _meta(take: dict) -> dict:
    return json.loads(take["mediaPoolItem"].GetThirdPartyMetadata("takebridge"))


def test_a_draft_refine_then_its_final_is_another_take_in_the_take_selector(cut, diffusers_server, tmp_path):
    resolve, item_a, _b, _f, _m, _mask = cut
    resolve.timeline.selected = [item_a]
    (draft,) = core.run(resolve, _options(tmp_path, op="refine", strength=0.6, seed=21, tier="draft"),
                        server=diffusers_server)
    assert draft["state"] == "succeeded" and draft["take_index"] == 2 and draft["tier"] == "draft", draft
    assert [(r["index"], r.get("tier", "")) for r in core.takes_of(item_a)] == [(1, ""), (2, "draft")]
    manifest = json.loads(open(draft["manifest"]).read())
    assert manifest["tier"]["tier"] == "draft" and manifest["request"]["tier"] == "TIER_DRAFT"

    before = _jobs(diffusers_server)
    final = core.final_from_draft(resolve, item_a, 2, server=diffusers_server)
    assert final["state"] == "succeeded" and final["take_index"] == 3 and _jobs(diffusers_server) == before + 1
    assert (final["promoted_from"], final["tier"]) == (draft["take_id"], "final")
    assert final["take_id"] != draft["take_id"]
    assert item_a.GetTakesCount() == 3 and item_a.GetSelectedTakeIndex() == 3
    shown_draft, shown_final = item_a.GetTakeByIndex(2), item_a.GetTakeByIndex(3)
    assert (shown_final["startFrame"], shown_final["endFrame"]) == (shown_draft["startFrame"], shown_draft["endFrame"])
    assert probe(shown_final["mediaPoolItem"].path).frame_count == probe(shown_draft["mediaPoolItem"].path).frame_count
    assert _meta(shown_final)["promoted_from"] == draft["take_id"] and _meta(shown_final)["tier"] == "final"
    final_manifest = json.loads(open(final["manifest"]).read())
    assert final_manifest["tier"]["promoted_from"] == draft["take_id"] and final_manifest["tier"]["tier"] == "final"
    assert final_manifest["tier"]["steps"] > manifest["tier"]["steps"]
    assert final_manifest["seed"] == manifest["seed"] == 21
    assert final_manifest["request"]["contract"] == manifest["request"]["contract"], "the draft's own contract"

    # the draft named by its take id: another final, another take
    again = core.final_from_draft(resolve, item_a, draft["take_id"], server=diffusers_server)
    assert again["take_index"] == 4 and again["promoted_from"] == draft["take_id"]

    # a final is made from a TakeBridge draft only: refused before anything is sent, saying why
    with pytest.raises(core.ResolveError, match=rf"\({final['take_id']}\) is not a draft \(it is a final take\)"):
        core.final_from_draft(resolve, item_a, 3, server=diffusers_server)
    with pytest.raises(core.ResolveError, match=r"take 1 of 'A_v\d+\.mkv' was not made by TakeBridge"):
        core.final_from_draft(resolve, item_a, 1, server=diffusers_server)
    with pytest.raises(core.ResolveError, match=r"has no take 9; its takes: 1 \(A\.mkv\), 2 "):
        core.final_from_draft(resolve, item_a, 9, server=diffusers_server)
    assert _jobs(diffusers_server) == before + 2 and item_a.GetTakesCount() == 4


def test_the_dialog_sends_draft_and_makes_the_final_of_the_chosen_draft(cut, diffusers_server, tmp_path):
    """Through the dialog (the stand-in's UIManager): Draft checked, Go makes a draft take (the
    take list says so); Final from draft on it adds the final, selected; on the final, refused."""
    from support.resolve_standin import Bmd
    from takebridge_resolve import dialog

    resolve, item_a, _b, _f, _m, _mask = cut
    resolve.timeline.selected = [item_a]
    seen = {}

    def user(window):
        items = window.GetItems()
        assert {"Draft", "FinalFromDraft"} <= set(items) and items["Draft"].Checked is False
        items["Draft"].Checked, items["Seed"].Value = True, 21
        items["Prompt"].Text, items["Mask"].Text = "a lamp post in the rain", ""
        _worked(window, "Go")
        tree = items["Takes"]
        seen["draft"] = items["Status"].Text, [(r.Text[0], r.Text[4]) for r in tree.rows]
        tree.current = tree.rows[1]                         # the draft
        _worked(window, "FinalFromDraft")
        seen["final"] = items["Status"].Text, [(r.Text[0], r.Text[3], r.Text[4]) for r in tree.rows]
        tree.current = tree.rows[2]                         # the final: not a draft
        _worked(window, "FinalFromDraft")
        seen["refused"] = items["Status"].Text

    assert dialog.show(resolve, Bmd(user), server=diffusers_server) == ""
    draft_row, final_row = core.takes_of(item_a)[1:]
    assert draft_row["tier"] == "draft" and draft_row["take_id"] in seen["draft"][0]
    assert seen["draft"][1] == [("1", ""), ("2", "draft")]
    assert seen["final"][0].endswith(f": {final_row['take_id']} {final_row['status']}, the final of "
                                     f"{draft_row['take_id']}")
    assert seen["final"][1] == [("1", "", ""), ("2", "", "draft"), ("3", "*", f"final of {draft_row['take_id']}")]
    assert json.loads(open(final_row["manifest"]).read())["request"]["tier"] == "TIER_FINAL"
    assert seen["refused"].startswith("error: ") and "is not a draft" in seen["refused"]
    assert item_a.GetTakesCount() == 3 and item_a.GetSelectedTakeIndex() == 3


def test_a_marker_with_the_word_draft_sends_the_draft_tier(cut, diffusers_server, tmp_path):
    resolve, item_a, item_b, _f, _m, _mask = cut
    parsed = markers.parse("tb refine 0.6 draft")
    assert (parsed.op, parsed.strength, parsed.tier) == ("refine", 0.6, "draft")
    assert markers.parse("tb refine 0.6").tier == "" and markers.parse("tb extend 12 tier=draft head").side == "head"
    assert markers.parse('tb generate 12 "harbour at dawn" draft').prompt == "harbour at dawn"
    assert markers.parse("tb inpaint draft /m.mov").mask == "/m.mov"
    with pytest.raises(core.ResolveError, match="tier=fast is not draft or final"):
        markers.parse("tb refine tier=fast")
    item_a.AddMarker(0, "Blue", "gen", "tb refine 0.6 draft", 1)
    item_b.AddMarker(0, "Blue", "gen", "tb refine 0.4", 1)
    results = {r["item"]: r for r in markers.process(resolve, server=diffusers_server,
                                                         take_dir=str(tmp_path / "takes"))}
    assert results["A.mkv"]["state"] == results["B.mkv"]["state"] == "succeeded"
    assert (results["A.mkv"]["tier"], results["B.mkv"]["tier"]) == ("draft", "final")
    asked = {name: json.loads(open(r["manifest"]).read())["request"].get("tier", "") for name, r in results.items()}
    assert asked == {"A.mkv": "TIER_DRAFT", "B.mkv": ""}
    assert item_a.GetMarkers()[0]["color"] in ("Green", "Yellow")
    assert core.takes_of(item_a)[1]["tier"] == "draft"


def test_the_final_of_a_generated_draft_shot_goes_into_its_own_take_selector(cut, diffusers_server, tmp_path):
    """A pre-vis shot Generate made as a draft is an item of its own (no Take Selector yet): its
    final opens one, over the same frames, and the shot stays a pre-vis shot with its size."""
    resolve, _a, _b, _f, _m, _mask = cut
    timeline, start = resolve.timeline, resolve.timeline.start
    assert timeline.SetSetting("timelineResolutionWidth", "64")
    assert timeline.SetSetting("timelineResolutionHeight", "48")
    (draft,) = core.generate(resolve, _options(tmp_path, prompt="harbour at dawn", seed=4, tier="draft"),
                             server=diffusers_server, shots=[core.Shot(track=1, first=start + 24, last=start + 36)])
    assert draft["state"] == "succeeded" and draft["tier"] == "draft", draft
    (shot,) = _shot_items(resolve)
    assert shot.GetTakesCount() == 0 and core.takes_of(shot)[0]["tier"] == "draft"
    final = core.final_from_draft(resolve, shot, 1, server=diffusers_server)
    assert final["state"] == "succeeded" and final["take_index"] == 2 and final["promoted_from"] == draft["take_id"]
    assert shot.GetTakesCount() == 2 and shot.GetSelectedTakeIndex() == 2 and _shot_items(resolve) == [shot]
    rows = core.takes_of(shot)
    assert [(r["tier"], r["shot"], r["size"]) for r in rows] == [("draft", draft["shot"], [64, 48]),
                                                                  ("final", draft["shot"], [64, 48])]
    assert (rows[1]["start"], rows[1]["end"]) == (rows[0]["start"], rows[0]["end"]) == (0, 12)
    assert (shot.GetStart() - start, shot.GetDuration()) == (24, 12)
    assert json.loads(open(final["manifest"]).read())["tier"]["promoted_from"] == draft["take_id"]
