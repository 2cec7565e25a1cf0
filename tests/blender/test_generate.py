"""Generate in Blender (issue 16): the operator's own choices (the gap under the playhead on the
active strip's channel, the preview range, a board strip), what the Sequencer shows, the pre-vis
shot through OTIO export and import, and what is refused before anything is sent. The editor
contract's Generate story is in test_contract.py."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from conftest import bpy, clip_frames, draw_panel, write_movie


def _cut(scene, tmp_path):
    """A (frames 1-24), a gap (25-36), B (37-56) on channel 1; A active."""
    from blender_addon import compat

    strips = {}
    for seed, (name, start, end) in enumerate((("A", 1, 25), ("B", 37, 57))):
        path = write_movie(tmp_path / f"{name}.mkv", clip_frames(30, seed, square=False)[0])
        strip = compat.strips(scene).new_movie(name=name, filepath=path, channel=1, frame_start=start)
        strip.frame_final_start, strip.frame_final_end = start, end
        strips[name] = strip
    compat.editor(scene).active_strip = strips["A"]
    return strips


def _manifest(scene, take_id):
    from blender_addon import vse_takes

    return json.loads(open(vse_takes.find_take(scene, take_id)["takebridge"]["manifest"]).read())


def test_the_operator_fills_the_gap_under_the_playhead_and_makes_more_takes_of_the_shot(scene, server, tmp_path):
    from blender_addon import vse, vse_takes

    _cut(scene, tmp_path)
    scene.frame_current = 30
    assert bpy.ops.takebridge.generate(wait=True, server=server) == {"FINISHED"}
    (shot,) = [s for s in vse.compat.strips(scene) if vse.is_previs(s)]
    assert shot.name == "previs_1_00000101" and shot.channel == 1, "named after its channel and timecode"
    assert (shot.frame_final_start, shot.frame_final_end) == (25, 37)
    (first,) = vse.takes_of(scene, shot.name)
    assert (first.frame_final_start, first.frame_final_end, first.channel) == (25, 37, 2) and not first.mute
    assert vse.previs_info(shot)["size"] == [scene.render.resolution_x, scene.render.resolution_y]
    assert _manifest(scene, vse.take_data(first)["take_id"])["generate"]["mode"] == "keyframes"

    scene.frame_current = 36                 # inside the shot now: Generate makes another take of it
    scene.takebridge.generate_burn_in = True
    scene.takebridge.generate_shot = "sh050"  # (a name for new shots: this one keeps its own)
    assert bpy.ops.takebridge.generate(wait=True, server=server) == {"FINISHED"}
    assert [s.name for s in vse.compat.strips(scene) if vse.is_previs(s)] == [shot.name]
    first, second = vse.takes_of(scene, shot.name)
    assert first.mute and not second.mute and (second.frame_final_start, second.frame_final_end) == (25, 37)
    assert vse.take_data(second)["version"] == vse.take_data(first)["version"] + 1
    assert vse.take_data(second)["shot"] == shot.name
    assert _manifest(scene, vse.take_data(second)["take_id"])["generate"]["burn_in"] is True

    # the takes switch like any strip's, and the shot shows what is active
    vse_takes.activate_take(scene, shot, "original")
    scene.frame_set(30)
    placeholder = _render(scene, tmp_path / "placeholder.png")
    assert bpy.ops.takebridge.take_activate(strip=shot.name, take_id=vse.take_data(first)["take_id"]) == {"FINISHED"}
    taken = _render(scene, tmp_path / "take.png")
    flat = (np.abs(placeholder - np.median(placeholder, axis=(0, 1))).max(axis=-1) <= 3).mean()
    assert flat > 0.95 and np.abs(taken - placeholder).mean() > 10, "the placeholder is one colour, the take not"


def _render(scene, path) -> np.ndarray:
    from PIL import Image

    scene.render.filepath = str(path)
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(str(path)).convert("RGB")).astype(int)


def test_what_generate_refuses_before_sending_anything(scene, server, tmp_path):
    from blender_addon import compat, jobs

    _cut(scene, tmp_path)
    scene.frame_current = 10
    with pytest.raises(RuntimeError, match="on channel 1 is inside clip 'A', not a gap"):
        bpy.ops.takebridge.generate(wait=True, server=server)
    scene.frame_current = 70
    with pytest.raises(RuntimeError, match="past the end of channel 1.*preview range"):
        bpy.ops.takebridge.generate(wait=True, server=server)
    title = compat.new_effect(scene, "title", "COLOR", 1, 28, 31)   # the edit leaves effect strips out
    scene.frame_current = 26
    with pytest.raises(RuntimeError, match="not empty: strip 'title' \\(a color strip\\) plays frames 28-31"):
        bpy.ops.takebridge.generate(wait=True, server=server, frame_in=25, frame_out=37)
    compat.strips(scene).remove(title)
    scene.takebridge.generate_range = "PREVIEW"
    with pytest.raises(RuntimeError, match="the scene has none"):
        bpy.ops.takebridge.generate(wait=True, server=server)
    assert len(scene.takebridge.jobs) == 0 and not any(jobs.vse.is_previs(s) for s in compat.strips(scene))


def test_a_preview_range_past_the_last_strip_makes_a_shot_from_the_prompt_or_a_board(scene, server, tmp_path):
    from PIL import Image

    from blender_addon import compat, vse

    _cut(scene, tmp_path)
    scene.takebridge.generate_range = "PREVIEW"
    scene.use_preview_range, scene.frame_preview_start, scene.frame_preview_end = True, 60, 69
    scene.takebridge.prompt, scene.takebridge.generate_shot = "a lighthouse at dusk", "sh090"
    assert bpy.ops.takebridge.generate(wait=True, server=server) == {"FINISHED"}
    shot = next(s for s in compat.strips(scene) if vse.is_previs(s))
    assert (shot.name, shot.frame_final_start, shot.frame_final_end) == ("sh090", 60, 70)
    (take,) = vse.takes_of(scene, "sh090")
    assert _manifest(scene, vse.take_data(take)["take_id"])["generate"]["mode"] == "text"

    board = tmp_path / "board.png"
    Image.new("RGB", (64, 48), (30, 120, 200)).save(board)
    still = compat.strips(scene).new_image(name="board", filepath=str(board), channel=5, frame_start=1)
    still.mute = True
    scene.takebridge.board_strip = "board"
    assert bpy.ops.takebridge.generate(wait=True, server=server) == {"FINISHED"}
    _, second = vse.takes_of(scene, "sh090")
    manifest = _manifest(scene, vse.take_data(second)["take_id"])
    assert manifest["generate"]["mode"] == "image" and manifest["request"]["generate"]["first"]["url"] == str(board)


def test_a_generated_shot_goes_through_otio_export_and_import_with_its_takes(scene, server, tmp_path):
    import opentimelineio as otio

    from blender_addon import vse, vse_takes
    from bridge import previs

    _cut(scene, tmp_path)
    bpy.ops.takebridge.generate(wait=True, server=server, channel=1, frame_in=25, frame_out=37, shot="bridge")
    bpy.ops.takebridge.generate(wait=True, server=server, channel=1, frame_in=25, frame_out=37, shot="bridge")
    first, second = (vse.take_data(t)["take_id"] for t in vse.takes_of(scene, "bridge"))
    out = tmp_path / "edit.otio"
    assert bpy.ops.takebridge.export_otio(filepath=str(out)) == {"FINISHED"}
    timeline = otio.adapters.read_from_file(str(out))
    clip = next(c for c in timeline.find_clips() if c.name == "bridge")
    assert previs.is_previs(clip) and clip.active_media_reference_key == second
    assert {first, second} <= set(clip.media_references())
    assert (clip.range_in_parent().start_time.value, clip.range_in_parent().duration.value) == (24, 12)
    target = previs.find_gap(timeline, 1, 25, 37)       # the OTIO sees the shot where Blender has it
    assert target.placeholder is not None and target.shot == "bridge" and target.size == (64, 48)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1
    assert bpy.ops.takebridge.import_otio(filepath=str(out)) == {"FINISHED"}
    shot = vse_takes.find_source(scene, "bridge")
    assert vse.is_previs(shot) and (shot.frame_final_start, shot.frame_final_end) == (25, 37)
    takes = vse.takes_of(scene, "bridge")
    assert [vse.take_data(t)["take_id"] for t in takes] == [first, second]
    assert takes[0].mute and not takes[1].mute


def test_generate_without_wait_puts_the_shot_there_at_once_and_the_timer_places_its_take(scene, server, tmp_path):
    from blender_addon import jobs, vse

    _cut(scene, tmp_path)
    started = time.monotonic()
    assert bpy.ops.takebridge.generate(server=server, frame_in=25, frame_out=37, shot="bridge") == {"FINISHED"}
    assert time.monotonic() - started < 3.0
    shot = jobs.vse_takes.find_source(scene, "bridge")
    assert vse.is_previs(shot) and vse.takes_of(scene, "bridge") == [], "the shot's place is kept while it is made"
    (item,) = scene.takebridge.jobs
    assert (item.op, item.source) == ("generate", "bridge")
    deadline = time.monotonic() + 60
    while not item.placed and time.monotonic() < deadline:
        jobs.apply_events()
        time.sleep(0.05)
    assert item.placed and len(vse.takes_of(scene, "bridge")) == 1


def test_a_shot_whose_job_ends_without_a_take_leaves_no_placeholder(scene, server, tmp_path):
    from blender_addon import jobs, vse

    _cut(scene, tmp_path)
    scene.takebridge.generate_camera = "PUSH_IN"     # a camera move between two keyframes: refused, nothing made
    (refused,) = jobs.submit_generate(scene, [jobs.gap_choice(scene, 1, first=25, last=37, shot="bridge")],
                                      server=server, wait=True)
    assert refused["state"] == "refused" and "camera move" in refused["error"], refused
    assert not any(vse.is_previs(s) for s in vse.compat.strips(scene)) and len(scene.takebridge.jobs) == 0
    scene.takebridge.generate_camera = "AUTO"
    # a long shot at full HD: the cancel must arrive while it runs (a small one can finish first)
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 1920, 1080, 100
    (queued,) = jobs.submit_generate(scene, [jobs.gap_choice(scene, 1, first=60, last=1000, shot="long")],
                                     server=server, wait=False)
    assert queued["state"] == "queued", queued.get("error")
    assert vse.is_previs(jobs.vse_takes.find_source(scene, "long"))
    jobs.cancel(scene, queued["job_id"])               # sent, then cancelled: its placeholder goes again
    (item,) = scene.takebridge.jobs
    deadline = time.monotonic() + 60
    while item.state not in jobs.TERMINAL and time.monotonic() < deadline:
        jobs.apply_events()
        time.sleep(0.05)
    assert item.state == "cancelled" and not any(vse.is_previs(s) for s in vse.compat.strips(scene))


def test_refine_on_a_pre_vis_shot_refines_its_shown_take(scene, server, tmp_path):
    from blender_addon import vse

    _cut(scene, tmp_path)
    bpy.ops.takebridge.generate(wait=True, server=server, frame_in=25, frame_out=37, shot="bridge")
    assert bpy.ops.takebridge.refine(strip="bridge", wait=True, server=server) == {"FINISHED"}
    generated, refined = vse.takes_of(scene, "bridge")
    assert vse.take_data(refined)["op"] == "refine" and not refined.mute and generated.mute
    assert (refined.frame_final_start, refined.frame_final_end) == (25, 37)


def test_the_panel_draws_generate_and_a_pre_vis_shots_takes(scene, server, tmp_path):
    from blender_addon import jobs

    _cut(scene, tmp_path)
    bpy.ops.takebridge.generate(wait=True, server=server, frame_in=25, frame_out=37, shot="bridge")
    shot = jobs.vse_takes.find_source(scene, "bridge")
    scene.frame_current = 30
    calls = draw_panel(scene, shot)
    assert "takebridge.generate" in [args[0] for name, args, _ in calls if name == "operator"]
    props = {args[1] for name, args, _ in calls if name in ("prop", "prop_search") and len(args) > 1}
    assert {"generate_mode", "generate_camera", "generate_camera_amount", "generate_burn_in", "board_strip",
            "generate_range", "generate_shot", "prompt"} <= props
    labels = " ".join(str(kwargs.get("text", "")) for name, _, kwargs in calls if isinstance(kwargs, dict))
    assert "Takes of bridge: 1" in labels and "Generate another take of bridge" in labels
