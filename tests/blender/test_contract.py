"""The editor contract (tests/support/contract.py) in real Blender: the same story the OTIO file and
Resolve tell in tests/editors/test_editor_contract.py, in the Sequencer's terms (strips on channel 1 from
frame 1; takes as strips above; the record frame is the frame number less 1)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import bpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support import contract  # noqa: E402

FIRST = 1    # the scene's first frame: record frame 0


class BlenderDriver:
    """The user in Blender: Refine/Extend/Inpaint on a strip (the operators' own path:
    jobs.submit_all, results per strip), the take list's Activate and Review."""

    def __init__(self, scene, folder: Path, server: str):
        from blender_addon import compat

        self.scene, self.server, self.paths = scene, server, contract.media(folder / "media")
        for name, (record, first, frames) in contract.LAYOUT.items():
            strip = compat.strips(scene).new_movie(name=name, filepath=self.paths[name], channel=1,
                                                   frame_start=FIRST + record - first)
            strip.frame_final_start, strip.frame_final_end = FIRST + record, FIRST + record + frames

    def _run(self, clip, op, **params) -> dict:
        from blender_addon import jobs, vse_takes

        source = vse_takes.find_source(self.scene, clip)
        (result,) = jobs.submit_all(self.scene, [source], op, server=self.server, wait=True,
                                    params_for=lambda strip: params)
        return result

    def refine(self, clip):
        return self._run(clip, "refine")

    def inpaint(self, clip):
        return self._run(clip, "inpaint", mask_path=self.paths["mask"])

    def extend(self, clip, frames):
        result = self._run(clip, "extend", frames=frames, side="TAIL")
        if result["state"] == "refused":   # the operator says so too (bpy raises what it reports as an error)
            with pytest.raises(RuntimeError, match=f"{clip} \\(.*\\): refused: .*would overwrite 'C'"):
                bpy.ops.takebridge.extend(strip=clip, frames=frames, side="TAIL", wait=True, server=self.server)
        return result

    def generate(self, start, count, shot):
        """Generate on channel 1 over record frames [start, start + count) (the operator's own path:
        jobs.gap_choice, jobs.submit_generate); a refusal is what the operator reports too."""
        from blender_addon import jobs

        choice = jobs.gap_choice(self.scene, 1, first=FIRST + start, last=FIRST + start + count, shot=shot)
        (result,) = jobs.submit_generate(self.scene, [choice], server=self.server, wait=True)
        if result["state"] == "refused":
            with pytest.raises(RuntimeError, match=f"{shot} \\(.*\\): refused: .*not empty: clip 'B'"):
                bpy.ops.takebridge.generate(channel=1, frame_in=FIRST + start, frame_out=FIRST + start + count,
                                            shot=shot, wait=True, server=self.server)
        return result

    def shown(self, clip):
        from blender_addon import vse

        active = [s for s in vse.takes_of(self.scene, clip) if not s.mute]
        return vse.take_data(active[0])["take_id"] if active else "original"

    def take_frames(self, clip, take_id):
        from blender_addon import vse_takes

        strip = vse_takes.find_take(self.scene, take_id)
        return int(strip.frame_final_start) - FIRST, int(strip.frame_final_duration)

    def show_original(self, clip):
        assert bpy.ops.takebridge.take_activate(strip=clip, take_id="original") == {"FINISHED"}

    def approve(self, clip, take_id, note):
        assert bpy.ops.takebridge.take_review(take_id=take_id, approve=True, note=note, reviewer="kim",
                                              server=self.server) == {"FINISHED"}

    def review_in_editor(self, clip, take_id):
        from blender_addon import vse, vse_takes

        data = vse.take_data(vse_takes.find_take(self.scene, take_id))
        return data["status"], data.get("note", "")

    def jobs_on_server(self):
        from blender_addon import jobs

        with jobs.client(self.server) as client:
            return len(client.list_jobs())


def test_blender_tells_the_contract_story_the_same_way(scene, server, tmp_path):
    scene.frame_end = 80
    takes = contract.tell(BlenderDriver(scene, tmp_path, server))
    assert len(set(takes.values())) == 3


def test_a_refused_strip_in_a_selection_never_drops_the_others(scene, server, tmp_path):
    """Extend A and B at once (both selected): B has no room (C follows it on its channel), A has;
    A's take is placed and B's refusal names C."""
    from blender_addon import jobs, vse_takes

    driver = BlenderDriver(scene, tmp_path, server)
    sources = [vse_takes.find_source(scene, name) for name in ("A", "B")]
    results = jobs.submit_all(scene, sources, "extend", server=server, wait=True,
                              params_for=lambda strip: {"frames": contract.EXTENSION, "side": "TAIL"})
    assert [(r["item"], r["state"]) for r in results] == [("A", "succeeded"), ("B", "refused")]
    assert "would overwrite 'C'" in results[1]["error"] and results[1]["record_start"] == "00:00:01:13"
    assert driver.take_frames("A", results[0]["take_id"]) == (0, 24 + contract.EXTENSION)
    assert [j.source for j in scene.takebridge.jobs] == ["A"], "nothing was sent for B"


def test_blender_generates_a_shot_into_a_gap_the_same_way(scene, server, tmp_path):
    from blender_addon import vse, vse_takes

    scene.frame_end = 80
    takes = contract.tell_generate(BlenderDriver(scene, tmp_path, server))
    shot = vse_takes.find_source(scene, "bridge")
    gap_start = FIRST + contract.LAYOUT["A"][0] + contract.LAYOUT["A"][2]
    assert vse.is_previs(shot) and shot.channel == 1, "the shot fills the gap on the clips' own channel"
    assert (shot.frame_final_start, shot.frame_final_end) == (gap_start, FIRST + contract.LAYOUT["B"][0])
    first, second = vse.takes_of(scene, "bridge")
    assert [vse.take_data(t)["take_id"] for t in (first, second)] == [takes["first"], takes["second"]]
    assert first.mute and not second.mute and first.channel == second.channel - 1 == 2
    assert vse.take_data(second)["op"] == "generate" and vse.take_data(second)["shot"] == "bridge"
    assert [j.op for j in scene.takebridge.jobs] == ["generate", "generate"], "the refused range sent nothing"


def test_a_generated_shot_starts_on_the_outgoing_strips_last_frame(scene, server, tmp_path):
    """Between two strips the keyframes are their frames: the take's first frame is A's last shown
    frame (FFV1 is lossless), its last frame B's first; the shot's size is the scene's."""
    import av
    import numpy as np

    from blender_addon import vse_takes

    driver = BlenderDriver(scene, tmp_path, server)
    (a_record, a_first, a_frames), (b_record, b_first, _) = contract.LAYOUT["A"], contract.LAYOUT["B"]
    made = driver.generate(a_record + a_frames, b_record - a_record - a_frames, "bridge")
    assert made["state"] == "succeeded", made
    take = vse_takes.take_data_full(vse_takes.find_take(scene, made["take_id"]))["take"]

    def frames(path):
        with av.open(path) as container:
            return [f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)]
    shot = frames(take["media"]["url"])
    outgoing, incoming = frames(driver.paths["A"])[a_first + a_frames - 1], frames(driver.paths["B"])[b_first]
    assert shot[0].shape == outgoing.shape == (scene.render.resolution_y, scene.render.resolution_x, 3)
    assert np.array_equal(shot[0], outgoing), "the first frame is A's last, exactly"
    assert np.array_equal(shot[-1], incoming), "the last frame is B's first, exactly"
    assert np.abs(shot[0] - incoming).mean() > 10, "A's last and B's first differ (the test means something)"
