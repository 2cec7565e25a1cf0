"""`takebridge demo` end to end (small size): three takes whose media decode to the expected
frame counts, a timeline with them, and a contact sheet."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import opentimelineio as otio
import pytest

from bridge.takes import list_takes
from server.media import probe

pytestmark = pytest.mark.slow


def test_demo_leaves_a_timeline_with_four_takes_and_a_contact_sheet(tmp_path):
    done = subprocess.run([sys.executable, "-m", "server.cli", "demo", "--out", str(tmp_path), "--frames", "36",
                           "--width", "320", "--height", "180", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {(t["clip"], t["operation"], t["frames"]) for t in report["takes"]} == {
        ("sh010", "refine", 12), ("sh020", "inpaint", 12), ("sh030", "extend", 24), ("sh040", "generate", 12)}
    for take in report["takes"]:
        assert probe(take["media"]).frame_count == take["frames"]
    timeline = otio.adapters.read_from_file(report["timeline"])
    active = {r.clip: r.take_id for r in list_takes(timeline) if r.active}
    assert active == {"sh010": "sh010_v001", "sh020": "sh020_v001", "sh030": "sh030_v001", "sh040": "sh040_v001"}
    track = timeline.tracks[0]
    assert [(i.name, track.range_of_child_at_index(n).start_time.value, i.duration().value) for n, i in
            enumerate(track)] == [("sh010", 0, 12), ("sh020", 12, 12), ("sh030", 24, 24), ("sh040", 48, 12)]
    sheet = cv2.imread(report["contact_sheet"])
    assert sheet is not None and sheet.shape[0] > 8 * 60, "eight labelled rows of thumbnails"
