"""`takebridge submit --op generate` as a user runs it, against a real server process: the gap
under the playhead, a range from --in and the contract's duration, a board, a contract saved
and read back; refusals in one line."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import opentimelineio as otio

from server.media import probe, read_frames
from server.samples import pan_clip

from conftest import make_timeline
from support.servers import cli, start_server, stop


def test_generate_from_the_command_line_fills_the_gap_and_keeps_the_cut(tmp_path, write_media):
    frames = pan_clip(40, 72, 128, 2.0, seed=2)
    media = write_media("pan", frames)
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=40, clip_in=0, clip_frames=10,
                             name="A", gap_after=14, next_clip=10)
    otio.adapters.write_to_file(timeline, str(tmp_path / "edit.otio"))
    board = tmp_path / "board.png"
    cv2.imwrite(str(board), frames[20][..., ::-1])
    (tmp_path / "shot.toml").write_text('prompt = "the harbour at dawn"\nrole = "pre-vis"\n'
                                        '[constraints]\nduration = 20\ncamera = "pull_out"\n')
    proc, address = start_server(tmp_path / "store", 0)
    try:
        # the gap under the playhead, between A and B: a morph between their frames
        done = cli("submit", "--server", address, "--op", "generate", "--timeline", str(tmp_path / "edit.otio"),
                   "--track", "1", "--at", "01:00:00:15", "--shot", "bridge", "--codec", "lossless", "--out", str(tmp_path / "g1.otio"),
                   "--wait", "--json", "--save-contract", str(tmp_path / "saved.json"))
        result = json.loads(done.stdout)
        assert result["status"] == "succeeded" and result["take_id"] == "bridge_v001" and result["frames"] == 14
        assert probe(result["media"]).frame_count == 14
        take = read_frames(result["media"], 0, 14)
        assert np.array_equal(take[0], frames[9]) and np.array_equal(take[-1], frames[0])   # A's last, B's first
        track = otio.adapters.read_from_file(str(tmp_path / "g1.otio")).tracks[0]
        assert [(i.name, track.range_of_child_at_index(n).start_time.value, i.duration().value)
                for n, i in enumerate(track)] == [("A", 0, 10), ("bridge", 10, 14), ("B", 24, 10)]
        assert json.loads((tmp_path / "saved.json").read_text())["schema"] == 1

        # past the end of the track: --in and the contract's 20 frames, a board with its camera move
        done = cli("submit", "--server", address, "--op", "generate", "--timeline", str(tmp_path / "g1.otio"),
                   "--track", "1", "--in", "01:00:01:10", "--contract", str(tmp_path / "shot.toml"),
                   "--image", str(board), "--size", "128x72", "--out", str(tmp_path / "g2.otio"), "--wait", "--json")
        result = json.loads(done.stdout)
        assert result["frames"] == 20, result
        manifest = json.loads(Path(result["manifest"]).read_text())
        assert manifest["generate"]["camera"] == "pull_out" and manifest["request"]["contract"]["role"] == "pre-vis"
        track = otio.adapters.read_from_file(str(tmp_path / "g2.otio")).tracks[0]
        assert [(i.name, track.range_of_child_at_index(n).start_time.value, i.duration().value)
                for n, i in enumerate(track)][-2:] == [("B", 24, 10), ("previs_1_01000110", 34, 20)]

        # the footage arrives: it replaces the shot frame for frame; the shot and its take are kept
        done = cli("timeline", "replace-previs", str(tmp_path / "g2.otio"), "--clip", "bridge", "--media", str(media),
                   "--source-in", "01:00:01:00", "-o", str(tmp_path / "g3.otio"), "--json")
        assert json.loads(done.stdout)["frames"] == 14
        cut = otio.adapters.read_from_file(str(tmp_path / "g3.otio"))
        main, kept = cut.video_tracks()
        assert [(i.name, main.range_of_child_at_index(n).start_time.value, i.duration().value)
                for n, i in enumerate(main)][:3] == [("A", 0, 10), ("pan", 10, 14), ("B", 24, 10)]
        assert main[1].source_range.start_time.value == 86424
        assert kept.name == "TakeBridge pre-vis (replaced)" and kept.enabled is False
        assert [(type(i).__name__, kept.range_of_child_at_index(n).start_time.value, i.duration().value)
                for n, i in enumerate(kept)] == [("Gap", 0, 10), ("Clip", 10, 14)]
        assert list(kept[1].media_references()) == ["bridge_v001"]
        report = json.loads(cli("report", "--store", str(tmp_path / "store"), "--timeline", str(tmp_path / "g3.otio"),
                                "--json").stdout)
        assert report["previs"]["shots"] == 2 and report["previs"]["replaced"] == 1
        assert report["previs"]["replaced_shots"] == ["bridge"] and report["operations"]["generate"]["takes"] == 2
        assert report["generate_by_mode"] == {"image (animatic)": 1, "keyframes (animatic)": 1}
        refused = cli("timeline", "replace-previs", str(tmp_path / "g3.otio"), "--clip", "A", "--media", str(media),
                      "-o", str(tmp_path / "g4.otio"), check=False)
        assert refused.returncode == 2 and "'A' is not a pre-vis shot" in refused.stderr

        refused = cli("submit", "--server", address, "--op", "generate", "--timeline", str(tmp_path / "g2.otio"),
                      "--track", "1", "--in", "01:00:00:05", "--out-point", "01:00:00:20", "--wait", check=False)
        assert refused.returncode == 2 and "clip 'A' plays 01:00:00:00-01:00:00:10" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    finally:
        stop(proc)
