"""The command line as an editor's script uses it, against a real server process: serve, submit
--wait --json, takes; and a server killed mid-job that finishes the job after a restart."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from bridge.api import pb
from bridge.client import GenerationClient
from server.media import probe, read_frames
from server.samples import moving_object_clip, noisy_clip

from conftest import make_timeline, submit_request
from support.servers import cli, free_port, start_server, stop

pytestmark = pytest.mark.slow
def test_submit_wait_json_places_the_take_and_takes_lists_it(tmp_path, write_media):
    frames, masks, _ = moving_object_clip(16, 72, 128, seed=4)
    media = write_media("shot010", frames, codec="prores")
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=16, clip_in=2, clip_frames=12,
                             name="sh010", gap_after=8, next_clip=10)
    otio.adapters.write_to_file(timeline, str(tmp_path / "edit.otio"))
    mask = tmp_path / "matte.png"
    import cv2
    cv2.imwrite(str(mask), (masks[5] * 255).astype(np.uint8))  # one still held for every frame
    proc, address = start_server(tmp_path / "store", 0)
    try:
        done = cli("submit", "--server", address, "--op", "inpaint", "--timeline", str(tmp_path / "edit.otio"),
                   "--clip", "sh010", "--mask", str(mask), "--seed", "11", "--out", str(tmp_path / "out.otio"),
                   "--wait", "--json")
        result = json.loads(done.stdout)
        assert result["status"] == "succeeded" and result["take_id"] == "sh010_v001"
        assert Path(result["media"]).suffix == ".mov" and Path(result["manifest"]).exists()
        assert probe(result["media"]).frame_count == 12
        assert Path(result["media"]).parent.parent == tmp_path / "takes", "takes go beside the timeline"

        done = cli("submit", "--server", address, "--op", "extend", "--timeline", str(tmp_path / "out.otio"),
                   "--clip", "sh010", "--tail-frames", "6", "--out", str(tmp_path / "out2.otio"), "--wait", "--json")
        assert json.loads(done.stdout)["take_id"] == "sh010_v002"

        refused = cli("submit", "--server", address, "--op", "extend", "--timeline", str(tmp_path / "out2.otio"),
                      "--clip", "sh010", "--tail-frames", "5", "--wait", "--json", check=False)
        assert refused.returncode == 2 and "'B'" in refused.stderr and "at most 2 frames" in refused.stderr

        listed = json.loads(cli("takes", str(tmp_path / "out2.otio"), "--json").stdout)["takes"]
        clip_rows = [(r["take_id"] or "original", r["operation"], r["active"]) for r in listed if r["clip"] == "sh010"]
        assert clip_rows == [("original", "original", False), ("sh010_v001", "inpaint", False),
                             ("sh010_v002", "extend", True)]
        track = otio.adapters.read_from_file(str(tmp_path / "out2.otio")).tracks[0]
        assert [item.name for item in track] == ["sh010", "", "B"]
        assert track[0].source_range.duration.value == 18 and track[1].source_range.duration.value == 2
        assert track.range_of_child_at_index(2).start_time.value == 20, "the next clip has not moved"

        workers = json.loads(cli("workers", "--server", address, "--json").stdout)["workers"]
        assert [(w["name"], w["device"], w["devices"], w["busy"]) for w in workers] == [("cpu", "cpu", 1, False)]
        assert cli("workers", "--server", address).stdout.split()[:4] == ["cpu", workers[0]["host"], "cpu", "x1"]
    finally:
        stop(proc)


def test_a_server_killed_mid_job_finishes_the_job_after_a_restart(tmp_path, write_media):
    noisy, _ = noisy_clip(48, 360, 640, sigma=10, seed=9)
    media = write_media("long", noisy)
    timeline = make_timeline(media, rate=25, media_start=0, media_frames=48, clip_in=0, clip_frames=48)
    port = free_port()
    proc, address = start_server(tmp_path / "store", port)
    client = GenerationClient(address)
    job = client.submit(submit_request(timeline, "A", "refine", strength=1.0))
    seen, killed = [], False
    try:
        for event in client.watch(job.job_id, reconnect_timeout=120):
            seen.append(event.WhichOneof("kind"))
            if event.WhichOneof("kind") == "progress" and event.progress.stage == "generate" and not killed:
                proc.kill()  # SIGKILL: no chance to clean up
                proc.wait()
                killed = True
                proc, _ = start_server(tmp_path / "store", port)
        final = client.get_job(job.job_id)
    finally:
        client.close()
        stop(proc)
    assert final.state == pb.SUCCEEDED, final.error
    assert final.attempts == 2
    assert seen.count("started") == 2 and seen[-1] == "take_ready"
    assert len(read_frames(final.take.media.url, 0, final.take.media.frame_count)) == 48
    staging = tmp_path / "store" / "takes" / "A" / ".staging"
    assert not staging.exists() or not any(staging.iterdir()), "the killed attempt's partial files are gone"
