"""Draft and "final from this draft" in Blender (issue 17): the panel's Draft toggle goes with every
operation as the request's tier; a draft take (diffusers backend, tiny pipelines on the CPU) offers
Final from this draft, whose take is the draft's own request and seed at full steps, promoted from
the draft, placed as another take of the same strip and shown."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from conftest import bpy, clip_frames, draw_panel, write_movie


def _source(scene, tmp_path, name="sh010", visible=(5, 17)):
    from blender_addon import compat

    frames, masks = clip_frames(24, 3)
    strip = compat.strips(scene).new_movie(name=name, filepath=write_movie(tmp_path / f"{name}.mkv", frames),
                                           channel=1, frame_start=1)
    strip.frame_final_start, strip.frame_final_end = visible
    return strip, masks


def _manifest(strip) -> dict:
    return json.loads(open(strip["takebridge"]["manifest"]).read())


def test_a_draft_refine_then_the_final_from_it_is_another_take_of_the_strip(scene, diffusers_server, tmp_path):
    from blender_addon import jobs, vse, vse_takes
    from bridge.api import pb

    source, _masks = _source(scene, tmp_path)
    settings = scene.takebridge
    settings.backend, settings.draft, settings.seed, settings.strength = "diffusers", True, 21, 0.6
    settings.prompt = "a lamp post in the rain"
    assert bpy.ops.takebridge.refine(strip="sh010", wait=True, server=diffusers_server) == {"FINISHED"}
    (draft,) = vse.takes_of(scene, "sh010")
    draft_id = draft["takebridge"]["take_id"]
    assert vse_takes.tier_of(draft) == "draft" and vse_takes.take_message(draft).tier == pb.TIER_DRAFT
    manifest = _manifest(draft)
    assert manifest["tier"]["tier"] == "draft" and manifest["tier"]["asked"] == "draft"
    assert manifest["request"]["tier"] == "TIER_DRAFT" and manifest["backend"]["name"] == "diffusers"

    # the final is the draft's request and seed, whatever the panel holds now
    settings.draft, settings.seed, settings.prompt = False, 5, "something else"
    assert bpy.ops.takebridge.final_from_draft(strip="sh010", take=draft_id, wait=True,
                                               server=diffusers_server) == {"FINISHED"}
    draft, final = vse.takes_of(scene, "sh010")
    final_id = final["takebridge"]["take_id"]
    assert final_id != draft_id and final["takebridge"]["promoted_from"] == draft_id
    assert vse_takes.tier_of(final) == "final" and vse_takes.take_message(final).promoted_from == draft_id
    assert draft.mute and not final.mute, "the final is shown, the draft muted"
    assert (final.frame_final_start, final.frame_final_end) == (draft.frame_final_start, draft.frame_final_end)
    assert (final.frame_final_start, final.frame_final_end) == (5, 17)
    assert final.channel > source.channel and final.channel != draft.channel
    final_manifest = _manifest(final)
    assert final_manifest["tier"]["tier"] == "final" and final_manifest["tier"]["promoted_from"] == draft_id
    assert final_manifest["tier"]["steps"] > manifest["tier"]["steps"]
    assert final_manifest["seed"] == manifest["seed"] == 21 and vse_takes.take_message(final).seed == 21
    assert final_manifest["request"]["contract"]["prompt"] == "a lamp post in the rain"
    (item,) = [j for j in settings.jobs if j.take_id == final_id]
    assert item.placed and item.op == "refine" and item.source == "sh010"

    # the panel: Draft next to the generative options; the tier in the take list; Final only on the draft
    calls = draw_panel(scene, source)
    assert any(name == "prop" and args[1:] == ("draft",) for name, args, _ in calls)
    finals = [kwargs.get("text") for name, args, kwargs in calls if name == "operator"
              and args[0] == "takebridge.final_from_draft"]
    assert finals == ["Final from this draft"]
    texts = [str(kwargs.get("text", "")) for name, args, kwargs in calls if name == "operator"
             and args[0] == "takebridge.take_activate"]
    assert any(t.endswith("refine draft") for t in texts) and any(t.endswith("refine final") for t in texts)

    # a final is made from a draft only: refused before anything is sent, saying so
    jobs_before = len(settings.jobs)
    with pytest.raises(RuntimeError, match=f"take {final_id} is not a draft"):
        bpy.ops.takebridge.final_from_draft(take=final_id, wait=True, server=diffusers_server)
    with pytest.raises(RuntimeError, match="no take strip for 'nope'"):
        bpy.ops.takebridge.final_from_draft(take="nope", wait=True, server=diffusers_server)
    assert len(settings.jobs) == jobs_before and len(vse.takes_of(scene, "sh010")) == 2

    # strip=NAME alone: the take the strip shows; from the UI it does not wait (the timer places it)
    assert bpy.ops.takebridge.take_activate(strip="sh010", take_id=draft_id) == {"FINISHED"}
    assert bpy.ops.takebridge.final_from_draft(strip="sh010", server=diffusers_server) == {"FINISHED"}
    (item,) = [j for j in settings.jobs if not j.placed]
    deadline = time.monotonic() + 120
    while not item.placed and time.monotonic() < deadline:
        jobs.apply_events()
        time.sleep(0.05)
    assert item.placed, item.message
    takes = vse.takes_of(scene, "sh010")
    assert len(takes) == 3 and takes[-1]["takebridge"]["promoted_from"] == draft_id and not takes[-1].mute


def test_the_draft_toggle_goes_with_every_operation(scene, server, tmp_path):
    """The classic backend has one tier (its takes are finals), but the request says what was asked."""
    from blender_addon import compat, jobs, vse

    source, masks = _source(scene, tmp_path, visible=(5, 25))
    settings = scene.takebridge
    settings.draft = True
    assert jobs.panel_options(settings).tier == "draft"
    matte = compat.strips(scene).new_movie(
        name="matte", filepath=write_movie(tmp_path / "mask.mkv", np.repeat(masks[..., None] * np.uint8(255), 3,
                                                                            axis=-1)), channel=9, frame_start=1)
    matte.mute = True
    settings.extend_amount = 4
    assert bpy.ops.takebridge.refine(strip="sh010", wait=True, server=server) == {"FINISHED"}
    assert bpy.ops.takebridge.extend(strip="sh010", wait=True, server=server) == {"FINISHED"}
    assert bpy.ops.takebridge.inpaint(strip="sh010", mask="matte", wait=True, server=server) == {"FINISHED"}
    scene.frame_current = 40                                  # past sh010 on channel 1: Generate's gap
    settings.generate_range = "PREVIEW"
    scene.use_preview_range, scene.frame_preview_start, scene.frame_preview_end = True, 30, 41
    assert bpy.ops.takebridge.generate(channel=1, wait=True, server=server) == {"FINISHED"}
    (shot,) = [s for s in compat.strips(scene) if vse.is_previs(s)]
    made = vse.takes_of(scene, "sh010") + vse.takes_of(scene, shot.name)
    assert [t["takebridge"]["op"] for t in made] == ["refine", "extend", "inpaint", "generate"]
    for take in made:
        manifest = _manifest(take)
        assert manifest["request"]["tier"] == "TIER_DRAFT" and manifest["tier"]["asked"] == "draft"
        # the classic backend makes finals: no Final from this draft for them
        assert take["takebridge"]["tier"] == manifest["tier"]["tier"] == "final"
    with pytest.raises(RuntimeError, match="is not a draft"):
        bpy.ops.takebridge.final_from_draft(strip="sh010", wait=True, server=server)
    settings.draft = False
    assert jobs.panel_options(settings).tier == ""
