"""Shot contracts in the Blender panel (issue 16): Load Contract sets the panel's widgets from a
contract file and keeps the fields it has no widget for (sent with every job, the characters from
characters.toml beside the .blend); Save Contract writes what the panel holds, and it reads back
the same; a contract that cannot be used is refused, naming the value, and changes nothing."""
from __future__ import annotations

import json

import pytest

from conftest import bpy, clip_frames, draw_panel, write_movie

CONTRACT = """
role = "pre-vis"
purpose = "establish the harbour before the chase"
prompt = "a wide of the harbour at dawn"
negative_prompt = "text, watermark"
characters = ["hero"]
seed = 1234
fallback = "classic"
codec = "lossless"
mode = "text"
references = ["style=refs/mood.png"]
[constraints]
duration = 12
camera = "pan_right"
camera_amount = 0.25
must_not_change = ["the boats' positions"]
[review]
flicker = 1.5
[budget]
max_frames = 240
max_compute_seconds = 600
"""

LIBRARY = """
[hero]
description = "a woman in her thirties, red raincoat"
images = ["refs/hero.png"]
"""


@pytest.fixture
def project(tmp_path):
    """A contract, its reference image and a character library, in one folder."""
    from PIL import Image

    (tmp_path / "refs").mkdir()
    for name, colour in (("hero", (200, 30, 30)), ("mood", (30, 60, 120))):
        Image.new("RGB", (16, 16), colour).save(tmp_path / "refs" / f"{name}.png")
    (tmp_path / "shot.toml").write_text(CONTRACT)
    (tmp_path / "characters.toml").write_text(LIBRARY)
    return tmp_path


def _cut(scene, folder):
    """A (frames 1-24), a gap (25-36), B (37-56) on channel 1; A active."""
    from blender_addon import compat

    for seed, (name, start, end) in enumerate((("A", 1, 25), ("B", 37, 57))):
        path = write_movie(folder / f"{name}.mkv", clip_frames(30, seed, square=False)[0])
        strip = compat.strips(scene).new_movie(name=name, filepath=path, channel=1, frame_start=start)
        strip.frame_final_start, strip.frame_final_end = start, end
        if name == "A":
            compat.editor(scene).active_strip = strip


def _panel(settings) -> dict:
    """What the panel holds of a contract (the kept fields by what they make of job options)."""
    import dataclasses

    from bridge import contract
    from bridge.request import JobOptions

    fields = ("prompt", "negative_prompt", "seed_lock", "fallback", "codec", "generate_mode", "generate_camera",
              "generate_burn_in", "backend", "model")
    state = {name: getattr(settings, name) for name in fields}
    state["kept"] = dataclasses.asdict(contract.apply_contract(JobOptions(), json.loads(settings.contract_extra)))
    state["seed"] = settings.seed if settings.seed_lock else None
    state["camera_amount"] = round(settings.generate_camera_amount, 6)
    state["references"] = [(ref.filepath, ref.role) for ref in settings.references]
    return state


def _request(scene, take_strip) -> dict:
    from blender_addon import vse

    return json.loads(open(vse.take_data(take_strip)["manifest"]).read())["request"]


def test_a_loaded_contract_sets_the_panel_and_its_jobs_carry_the_rest(scene, server, project):
    from blender_addon import compat, vse

    _cut(scene, project)
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "edit.blend"))   # characters.toml is beside it
    scene = bpy.context.scene
    settings = scene.takebridge
    assert bpy.ops.takebridge.contract_load(filepath=str(project / "shot.toml")) == {"FINISHED"}
    assert (settings.prompt, settings.negative_prompt, settings.seed, settings.seed_lock) == (
        "a wide of the harbour at dawn", "text, watermark", 1234, True)
    assert (settings.fallback, settings.codec, settings.generate_mode, settings.generate_camera) == (
        "classic", "FFV1", "TEXT", "PAN_RIGHT")
    assert settings.generate_camera_amount == pytest.approx(0.25)
    assert [(ref.filepath, ref.role) for ref in settings.references] == [(str(project / "refs" / "mood.png"),
                                                                          "style")]
    assert json.loads(settings.contract_extra) == {
        "role": "pre-vis", "purpose": "establish the harbour before the chase", "characters": ["hero"],
        "constraints": {"duration": 12, "must_not_change": ["the boats' positions"]},
        "review": {"flicker": 1.5}, "budget": {"max_frames": 240, "max_compute_seconds": 600}}
    assert settings.contract_path == str(project / "shot.toml")

    scene.frame_current = 30                      # the gap between A and B
    assert bpy.ops.takebridge.generate(wait=True, server=server) == {"FINISHED"}
    (shot,) = [s for s in compat.strips(scene) if vse.is_previs(s)]
    request = _request(scene, vse.takes_of(scene, shot.name)[0])
    contract = request["contract"]
    assert (contract["role"], contract["purpose"]) == ("pre-vis", "establish the harbour before the chase")
    assert [c["name"] for c in contract["characters"]] == ["hero"] and len(contract["characters"][0]["sha256"]) == 64
    assert contract["prompt"] == "a wide of the harbour at dawn hero: a woman in her thirties, red raincoat."
    assert sorted(r["role"] for r in contract["reference_images"]) == ["character", "style"]
    assert contract["must_not_change"] == ["the boats' positions"]
    assert contract["review"]["thresholds"] == {"flicker": 1.5} and contract["budget"]["max_compute_seconds"] == 600
    assert (contract["seed"], contract["fallback"], contract["output"]["codec"]) == ("1234", "CLASSIC", "FFV1")
    assert (request["generate"]["mode"], request["generate"]["camera"]) == ("TEXT", "PAN_RIGHT")

    scene.frame_current = 70                      # past channel 1's last strip: the contract's 12 frames
    assert bpy.ops.takebridge.generate(wait=True, server=server) == {"FINISHED"}
    late = next(s for s in compat.strips(scene) if vse.is_previs(s) and s.name != shot.name)
    assert (late.frame_final_start, late.frame_final_end) == (70, 82)

    # a refine carries the contract too
    assert bpy.ops.takebridge.refine(strip="A", wait=True, server=server) == {"FINISHED"}
    refined = _request(scene, vse.takes_of(scene, "A")[0])["contract"]
    assert refined["role"] == "pre-vis" and [c["name"] for c in refined["characters"]] == ["hero"]

    # without a library beside the .blend, a shot citing characters is refused before anything is sent
    (project / "characters.toml").rename(project / "elsewhere.toml")
    jobs_before = len(settings.jobs)
    with pytest.raises(RuntimeError, match=r"cites character\(s\) hero but there is no character library"):
        bpy.ops.takebridge.refine(strip="A", wait=True, server=server)
    assert len(settings.jobs) == jobs_before


def test_save_writes_what_the_panel_holds_and_it_loads_back_the_same(scene, project):
    from blender_addon import jobs
    from bridge import contract

    settings = scene.takebridge
    assert bpy.ops.takebridge.contract_load(filepath=str(project / "shot.toml")) == {"FINISHED"}
    settings.prompt, settings.codec, settings.generate_camera = "the harbour at night", "DNXHR", "TILT_UP"
    settings.seed_lock = False                    # no seed: the server picks one
    held = _panel(settings)
    assert bpy.ops.takebridge.contract_save(filepath=str(project / "saved")) == {"FINISHED"}
    saved = project / "saved.json"
    data = contract.read_contract(saved)
    assert "seed" not in data
    assert (data["prompt"], data["codec"], data["role"], data["characters"]) == (
        "the harbour at night", "dnxhr", "pre-vis", ["hero"])
    assert data["constraints"]["camera"] == "tilt_up" and data["constraints"]["duration"] == 12
    assert data["review"] == {"flicker": 1.5} and data["budget"]["max_compute_seconds"] == 600
    assert settings.contract_path == str(saved)

    # another contract, then the saved one again: the panel as it was
    (project / "other.json").write_text(json.dumps({"prompt": "x", "seed": 7, "codec": "h264"}))
    assert bpy.ops.takebridge.contract_load(filepath=str(project / "other.json")) == {"FINISHED"}
    assert (settings.prompt, settings.seed, settings.codec, settings.contract_extra) == ("x", 7, "H264_PROXY", "{}")
    assert settings.negative_prompt == "" and len(settings.references) == 0 and settings.generate_camera == "AUTO"
    assert bpy.ops.takebridge.contract_load(filepath=str(saved)) == {"FINISHED"}
    assert _panel(settings) == held
    again = contract.contract_of(jobs.panel_options(settings))
    assert {k: v for k, v in again.items() if k != "codec"} == {k: v for k, v in data.items() if k != "codec"}

    with pytest.raises(RuntimeError, match="contracts are saved as JSON; name the file shot.json"):
        bpy.ops.takebridge.contract_save(filepath=str(project / "shot.toml"))


@pytest.mark.parametrize("text,match", [
    ('prompt = "x"\ncolour = "red"\n', r"unknown field 'colour'"),
    ('seed = "many"\n', r"seed is 'many'; it must be a whole number in 0\.\.9007199254740991"),
    ('codec = "png"\n', r"codec 'png' is not one the panel offers \(lossless, prores, dnxhr, h264\)"),
    ('[constraints]\ncamera = "zoom"\n', r"camera move 'zoom' is not one of"),
    ('[constraints]\nduration = -4\n', r"\[constraints\] duration is -4; it must be a whole number in 0\.\.10000000"),
    ('references = ["mask=refs/mood.png"]\n', r"reference image role 'mask'"),
    ('prompt = \n', r"cannot be read"),
])
def test_a_bad_contract_is_refused_naming_the_value_and_changes_nothing(scene, project, text, match):
    settings = scene.takebridge
    assert bpy.ops.takebridge.contract_load(filepath=str(project / "shot.toml")) == {"FINISHED"}
    before = _panel(settings)
    (project / "bad.toml").write_text(text)
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.takebridge.contract_load(filepath=str(project / "bad.toml"))
    assert _panel(settings) == before and settings.contract_path == str(project / "shot.toml")


def test_the_panel_has_load_and_save_and_shows_the_kept_fields(scene, project):

    assert bpy.ops.takebridge.contract_load(filepath=str(project / "shot.toml")) == {"FINISHED"}
    calls = draw_panel(scene, None)
    operators = [args[0] for name, args, _ in calls if name == "operator"]
    assert {"takebridge.contract_load", "takebridge.contract_save", "takebridge.contract_clear"} <= set(operators)
    labels = [kwargs.get("text", "") for name, _, kwargs in calls if name == "label"]
    assert "Contract: shot.toml" in labels and "characters: hero" in labels and "role: pre-vis" in labels
    assert bpy.ops.takebridge.contract_clear() == {"FINISHED"}
    assert scene.takebridge.contract_extra == "" and scene.takebridge.prompt == "a wide of the harbour at dawn"
