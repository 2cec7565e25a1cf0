"""The TakeBridge extension in real Blender (bpy), headless, against a real server process."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from conftest import bpy, clip_frames, draw_panel, write_movie


def _source(scene, tmp_path, name="sh010", n=40, start=1, visible=(5, 25), channel=1, seed=0):
    from blender_addon import compat

    frames, masks = clip_frames(n, seed)
    path = write_movie(tmp_path / f"{name}.mkv", frames)
    strip = compat.strips(scene).new_movie(name=name, filepath=path, channel=channel, frame_start=start)
    strip.frame_final_start, strip.frame_final_end = visible
    return strip, frames, masks


def _take_strips(scene, source):
    from blender_addon import vse

    return vse.takes_of(scene, source.name)


def _render(scene, path) -> np.ndarray:
    from PIL import Image

    scene.render.filepath = str(path)
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(str(path) if str(path).endswith(".png") else str(path) + ".png").convert("RGB"))


def test_refine_extend_inpaint_make_frame_exact_take_strips(scene, server, tmp_path):
    source, frames, masks = _source(scene, tmp_path)
    assert bpy.ops.takebridge.refine(strip="sh010", wait=True, server=server) == {"FINISHED"}
    (refined,) = _take_strips(scene, source)
    info = refined["takebridge"]
    assert refined.channel == 2 and not refined.mute
    assert (refined.frame_final_start, refined.frame_final_end) == (5, 25)
    version = int(info["version"])
    assert refined.name == f"sh010_refine_v{version:03d}" and info["take_id"] == f"sh010_v{version:03d}"
    assert info["op"] == "refine"
    assert os.path.exists(info["manifest"]) and info["status"] in ("ok", "needs_review") and info["job_id"]
    scene.takebridge.extend_side, scene.takebridge.extend_amount = "TAIL", 6
    assert bpy.ops.takebridge.extend(strip="sh010", wait=True, server=server) == {"FINISHED"}
    refined, extended = _take_strips(scene, source)
    assert extended.channel == 3 and (extended.frame_final_start, extended.frame_final_end) == (5, 31)
    assert refined.mute and not extended.mute, "the newest take is active, the others muted"
    mask_path = write_movie(tmp_path / "mask.mkv", np.repeat(masks[..., None] * np.uint8(255), 3, axis=-1))
    from blender_addon import compat

    mask_strip = compat.strips(scene).new_movie(name="matte", filepath=mask_path, channel=9, frame_start=1)
    mask_strip.mute = True
    mask_strip.frame_final_start, mask_strip.frame_final_end = 5, 25
    assert bpy.ops.takebridge.inpaint(strip="sh010", mask="matte", wait=True, server=server) == {"FINISHED"}
    inpainted = _take_strips(scene, source)[-1]
    assert inpainted["takebridge"]["op"] == "inpaint" and (inpainted.frame_final_start, inpainted.frame_final_end) == (5, 25)


def test_switching_and_rendering_show_the_take_where_it_differs(scene, server, tmp_path):
    source, frames, masks = _source(scene, tmp_path)
    mask_path = write_movie(tmp_path / "mask.mkv", np.repeat(masks[..., None] * np.uint8(255), 3, axis=-1))
    from blender_addon import compat, vse_takes

    matte = compat.strips(scene).new_movie(name="matte", filepath=mask_path, channel=9, frame_start=1)
    matte.mute = True
    bpy.ops.takebridge.inpaint(strip="sh010", mask="matte", wait=True, server=server)
    (take,) = _take_strips(scene, source)
    scene.frame_set(12)
    vse_takes.activate_take(scene, source, "original")
    assert take.mute
    before = _render(scene, tmp_path / "before.png").astype(int)
    bpy.ops.takebridge.take_activate(strip="sh010", take_id=take["takebridge"]["take_id"])
    assert not take.mute
    after = _render(scene, tmp_path / "after.png").astype(int)
    inside = masks[11]          # scene frame 12 shows media frame 11
    diff = np.abs(after - before).max(axis=-1)
    assert diff[inside].mean() > 20, "the inpainted square is gone in the take"
    assert diff[~inside].mean() < 2, "outside the mask the picture is the source's"


def test_finalize_makes_the_take_the_media_and_restore_brings_the_original_back(scene, server, tmp_path):
    source, _frames, _masks = _source(scene, tmp_path)
    original = source.filepath
    bpy.ops.takebridge.refine(strip="sh010", wait=True, server=server)
    (take,) = _take_strips(scene, source)
    take_path, take_id = take.filepath, take["takebridge"]["take_id"]
    assert bpy.ops.takebridge.take_finalize(take_id=take_id) == {"FINISHED"}
    assert source.filepath == take_path and _take_strips(scene, source) == []
    assert (source.frame_final_start, source.frame_final_end) == (5, 25)
    assert source["takebridge_finalized"] == take_id
    assert bpy.ops.takebridge.restore_original(strip="sh010") == {"FINISHED"}
    assert source.filepath == original and (source.frame_final_start, source.frame_final_end) == (5, 25)


def test_takes_follow_their_source_and_survive_save_and_reopen(scene, server, tmp_path):
    source, _frames, _masks = _source(scene, tmp_path)
    bpy.ops.takebridge.refine(strip="sh010", wait=True, server=server)
    from blender_addon import vse_takes

    source.frame_start += 10
    vse_takes.follow_sources(scene)
    (take,) = _take_strips(scene, source)
    take_id = take["takebridge"]["take_id"]
    assert (take.frame_final_start, take.frame_final_end) == (source.frame_final_start, source.frame_final_end)
    path = tmp_path / "edit.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))
    scene = bpy.context.scene
    source = vse_takes.find_source(scene, "sh010")
    (take,) = _take_strips(scene, source)
    assert take["takebridge"]["take_id"] == take_id and (take.frame_final_start, take.channel) == (15, 2)
    assert [j.job_id for j in scene.takebridge.jobs] == [take["takebridge"]["job_id"]]
    assert scene.takebridge.jobs[0].state == "succeeded" and scene.takebridge.jobs[0].placed


def test_an_operator_without_wait_returns_at_once_and_the_timer_places_the_take(scene, server, tmp_path):
    source, _frames, _masks = _source(scene, tmp_path, n=200, visible=(1, 200))
    from blender_addon import jobs

    started = time.monotonic()
    assert bpy.ops.takebridge.refine(strip="sh010", server=server) == {"FINISHED"}
    assert time.monotonic() - started < 3.0, "the UI must not wait for the job (a job takes seconds)"
    (item,) = scene.takebridge.jobs
    assert item.state == "queued" and not item.placed and _take_strips(scene, source) == []
    deadline = time.monotonic() + 60
    seen_running = False
    while not item.placed and time.monotonic() < deadline:
        jobs.apply_events()      # what bpy.app.timers runs on the main thread
        seen_running = seen_running or item.state == "running"
        time.sleep(0.05)
    assert item.placed and item.state == "succeeded" and item.progress == 1.0
    assert len(_take_strips(scene, source)) == 1


def test_export_and_import_otio_with_takes(scene, server, tmp_path):
    source, _frames, _masks = _source(scene, tmp_path)
    bpy.ops.takebridge.refine(strip="sh010", wait=True, server=server)
    take_id = _take_strips(scene, source)[0]["takebridge"]["take_id"]
    out = tmp_path / "edit.otio"
    assert bpy.ops.takebridge.export_otio(filepath=str(out)) == {"FINISHED"}
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(out))
    clip = next(iter(timeline.find_clips()))
    assert clip.name == "sh010" and clip.active_media_reference_key == take_id
    assert (clip.source_range.start_time.value, clip.source_range.duration.value) == (4, 20)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1
    assert bpy.ops.takebridge.import_otio(filepath=str(out)) == {"FINISHED"}
    from blender_addon import vse_takes

    source = vse_takes.find_source(scene, "sh010")
    assert (source.frame_final_start, source.frame_final_end) == (5, 25)
    (take,) = _take_strips(scene, source)
    assert take["takebridge"]["take_id"] == take_id and not take.mute


def test_compare_adds_and_clears_its_strips(scene, server, tmp_path):
    source, _frames, _masks = _source(scene, tmp_path)
    bpy.ops.takebridge.refine(strip="sh010", wait=True, server=server)
    from blender_addon import compat

    take_id = _take_strips(scene, source)[0]["takebridge"]["take_id"]
    before = {s.name for s in compat.strips_all(scene)}
    assert bpy.ops.takebridge.compare(take_id=take_id, mode="WIPE") == {"FINISHED"}
    added = {s.name for s in compat.strips_all(scene)} - before
    assert len(added) == 3 and any(s.type == "WIPE" for s in compat.strips_all(scene))
    assert bpy.ops.takebridge.compare(take_id=take_id, mode="OFF") == {"FINISHED"}
    assert {s.name for s in compat.strips_all(scene)} == before


def test_errors_are_reported_with_what_to_do(scene, server, tmp_path):
    _source(scene, tmp_path)
    with pytest.raises(RuntimeError, match="inpaint needs a mask"):
        bpy.ops.takebridge.inpaint(strip="sh010", wait=True, server=server)
    with pytest.raises(RuntimeError, match="no source strip named 'nope'"):
        bpy.ops.takebridge.refine(strip="nope", wait=True, server=server)
    with pytest.raises(RuntimeError, match="cannot reach"):
        bpy.ops.takebridge.refine(strip="sh010", wait=True, server="127.0.0.1:9")


def test_inpaint_with_a_blender_mask_strip_and_review_from_blender(scene, server, tmp_path):
    source, _frames, _masks = _source(scene, tmp_path)
    from blender_addon import compat

    mask = bpy.data.masks.new("matte")
    spline = mask.layers.new(name="square").splines.new()
    spline.points.add(3)
    for point, (x, y) in zip(spline.points, [(0.35, 0.3), (0.65, 0.3), (0.65, 0.7), (0.35, 0.7)]):
        point.co = point.handle_left = point.handle_right = (x, y)
    spline.use_cyclic = True
    matte = compat.strips(scene).new_mask(name="matte", mask=mask, channel=9, frame_start=1)
    matte.frame_final_end = 60
    matte.mute = True
    assert bpy.ops.takebridge.inpaint(strip="sh010", mask="matte", wait=True, server=server) == {"FINISHED"}
    (take,) = _take_strips(scene, source)
    assert take["takebridge"]["op"] == "inpaint" and (take.frame_final_start, take.frame_final_end) == (5, 25)
    assert matte.mute, "the mask strip's state is restored after rendering it"
    import json

    manifest = json.loads(open(take["takebridge"]["manifest"]).read())
    assert manifest["inputs"]["mask"]["sha256"], "the rendered mask went to the server"
    take_id = take["takebridge"]["take_id"]
    assert bpy.ops.takebridge.take_review(take_id=take_id, approve=False, note="edge shimmer", reviewer="kim",
                                          server=server) == {"FINISHED"}
    assert take["takebridge"]["status"] == "rejected" and take["takebridge"]["note"] == "edge shimmer"
    manifest = json.loads(open(take["takebridge"]["manifest"]).read())
    assert manifest["reviews"] == [{"approve": False, "note": "edge shimmer", "reviewer": "kim"}]


def test_reference_images_go_to_the_server_with_the_job(scene, server, tmp_path):
    source, _frames, _masks = _source(scene, tmp_path)
    from PIL import Image

    hero = tmp_path / "hero.png"
    Image.new("RGB", (20, 30), (200, 50, 50)).save(hero)
    assert bpy.ops.takebridge.reference_add(filepath=str(hero), role="character") == {"FINISHED"}
    with pytest.raises(RuntimeError, match="reference image .*nothing.png not found"):
        bpy.ops.takebridge.reference_add(filepath=str(tmp_path / "nothing.png"))
    bpy.ops.takebridge.refine(strip="sh010", wait=True, server=server)
    (take,) = _take_strips(scene, source)
    import json

    manifest = json.loads(open(take["takebridge"]["manifest"]).read())
    assert manifest["request"]["contract"]["reference_images"] == [
        {"url": str(hero), "role": "character", "name": "hero"}]   # one request builder: named by stem, as the CLI did
    assert bpy.ops.takebridge.reference_remove(index=0) == {"FINISHED"} and len(scene.takebridge.references) == 0


def test_the_panel_draws_for_a_source_with_takes_and_a_running_job(scene, server, tmp_path):
    """Headless Blender has no window to draw in: call the panel's draw with a stand-in layout
    that records what it was asked to show (the real UILayout API names)."""
    source, _frames, _masks = _source(scene, tmp_path)
    bpy.ops.takebridge.refine(strip="sh010", wait=True, server=server)
    item = scene.takebridge.jobs.add()
    item.job_id, item.op, item.source, item.state, item.progress = "x1", "extend", "sh010", "running", 0.4

    calls = draw_panel(scene, source)
    operators = [args[0] for name, args, _ in calls if name == "operator"]
    assert {"takebridge.refine", "takebridge.extend", "takebridge.inpaint", "takebridge.take_activate",
            "takebridge.take_review", "takebridge.compare", "takebridge.take_finalize",
            "takebridge.cancel"} <= set(operators)
    labels = " ".join(str(kwargs.get("text", "")) for name, _, kwargs in calls if isinstance(kwargs, dict))
    assert "Takes of sh010: 1" in labels and "extend sh010: running" in labels


def test_a_job_running_when_the_file_is_closed_is_placed_after_reopening(scene, server, tmp_path):
    source, _frames, _masks = _source(scene, tmp_path, n=120, visible=(1, 120))
    from blender_addon import jobs

    bpy.ops.takebridge.refine(strip="sh010", server=server)
    path = tmp_path / "running.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    jobs._watchers.clear()                             # as if Blender had been closed
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))        # load_post reattaches by job id
    assert any(t.is_alive() for t in jobs._watchers.values()), "reopening started a watcher for the job"
    scene = bpy.context.scene
    (item,) = scene.takebridge.jobs
    deadline = time.monotonic() + 60
    while not item.placed and time.monotonic() < deadline:
        jobs.apply_events()
        time.sleep(0.05)
    from blender_addon import vse_takes

    assert item.placed and len(_take_strips(scene, vse_takes.find_source(scene, "sh010"))) == 1
