"""bridge.request: the one request builder every editor uses, and its versioned options."""
from __future__ import annotations

import ast
from pathlib import Path

import opentimelineio as otio
import pytest

from bridge.api import names, pb
from bridge.request import OPTIONS_VERSION, JobOptions, Reference, RequestError, build_request

ROOT = Path(__file__).resolve().parents[2]


def _selection() -> otio.schema.Timeline:
    timeline = otio.schema.Timeline("job")
    track = otio.schema.Track("V1")
    rate = 24
    ref = otio.schema.ExternalReference("/media/a.mov", otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                                               otio.opentime.RationalTime(48, rate)))
    track.append(otio.schema.Clip("A", ref, otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                                    otio.opentime.RationalTime(24, rate))))
    timeline.tracks.append(track)
    return timeline


def test_each_operation_becomes_its_request_with_the_contract_filled_in(tmp_path):
    mask = tmp_path / "matte.mkv"
    mask.write_bytes(b"")
    ref = tmp_path / "hero.png"
    ref.write_bytes(b"")
    common = dict(seed=11, codec="lossless", fallback="classic", feather=3, prompt="dusk", take_dir="/takes",
                  max_compute_seconds=90.0, references=[Reference(str(ref), "character")])
    refine = build_request(_selection(), JobOptions(op="refine", strength=0.25, **common), client="t")
    extend = build_request(_selection(), JobOptions(op="extend", frames=12, side="head", **common), client="t")
    inpaint = build_request(_selection(), JobOptions(op="inpaint", mask=str(mask), **common), client="t")

    assert (refine.operation, refine.refine.strength) == (pb.REFINE, 0.25)
    assert (extend.operation, extend.extend.side, extend.extend.frames) == (pb.EXTEND, pb.HEAD, 12)
    assert (inpaint.operation, inpaint.inpaint.mask_url) == (pb.INPAINT, str(mask))
    for request in (refine, extend, inpaint):
        c = request.contract
        assert (c.seed, c.output.codec, c.fallback, c.constraints.mask_feather_px) == (11, pb.FFV1, pb.CLASSIC, 3)
        assert (c.prompt, c.output.take_dir, c.budget.max_compute_seconds) == ("dusk", "/takes", 90.0)
        assert [(r.role, r.name) for r in c.reference_images] == [("character", "hero")]
        assert request.client == "t" and len(request.request_id) >= 16
        clips = list(otio.adapters.read_from_string(request.selection_otio, "otio_json").find_clips())
        assert [c.name for c in clips] == ["A"]
    assert len({refine.request_id, extend.request_id, inpaint.request_id}) == 3


@pytest.mark.parametrize("options,says", [
    (JobOptions(op="regrade"), "operation 'regrade' is not one of refine, extend, inpaint"),
    (JobOptions(op="extend", frames=0), "an extension needs at least 1 frame, not 0"),
    (JobOptions(op="extend", side="middle"), "extension side 'middle' is not one of tail, head"),
    (JobOptions(op="inpaint"), "inpaint needs a mask file"),
    (JobOptions(op="inpaint", mask="/no/such/matte.mkv"), "mask file /no/such/matte.mkv not found"),
    (JobOptions(op="refine", strength=1.5), "refine strength 1.5 is outside 0..1"),
    (JobOptions(codec="mpeg1"), "codec 'mpeg1' is not one of prores, lossless"),
    (JobOptions(fallback="pray"), "fallback 'pray' is not one of fail, degrade, classic"),
    (JobOptions(references=[Reference("/no/such.png")]), "reference image /no/such.png not found"),
])
def test_options_that_cannot_make_a_job_are_refused_before_anything_is_sent(options, says):
    with pytest.raises(RequestError) as err:
        build_request(_selection(), options, client="t")
    assert says in str(err.value)


def test_an_image_sequence_pattern_and_a_server_url_are_taken_as_masks(tmp_path):
    (tmp_path / "m.0001.png").write_bytes(b"")
    pattern = build_request(_selection(), JobOptions(op="inpaint", mask=str(tmp_path / "m.%04d.png")), client="t")
    assert pattern.inpaint.mask_url == str(tmp_path / "m.%04d.png")
    uploaded = build_request(_selection(), JobOptions(op="inpaint", mask="cas:ab12"), client="t")
    assert uploaded.inpaint.mask_url == "cas:ab12"


def test_options_round_trip_and_older_saved_options_are_read_forward():
    options = JobOptions(op="extend", frames=48, side="head", seed=3, references=[Reference("/a.png", "style")])
    saved = options.to_dict()
    assert saved["version"] == OPTIONS_VERSION
    assert JobOptions.from_dict(saved) == options
    # before versioning (Blender's panel names, upper-case sides), and keys this version does not know
    old = JobOptions.from_dict({"operation": "inpaint", "mask_path": "/m.mkv", "feather_px": 4, "side": "HEAD",
                                "future_knob": 1})
    assert (old.op, old.mask, old.feather, old.side) == ("inpaint", "/m.mkv", 4, "head")
    with pytest.raises(RequestError, match="newer TakeBridge"):
        JobOptions.from_dict({"version": OPTIONS_VERSION + 1})


def test_the_names_table_and_the_api_enums_agree():
    assert [names.operation_value(n) for n in names.OPERATIONS] == [pb.REFINE, pb.EXTEND, pb.INPAINT, pb.GENERATE]
    assert {names.generate_mode_value(n) for n in names.GENERATE_MODES} == \
        {v for v in pb.GenerateMode.values() if v != pb.GENERATE_MODE_UNSPECIFIED}
    assert {names.camera_value(n) for n in names.CAMERA_MOVES} == \
        {v for v in pb.CameraMove.values() if v != pb.CAMERA_MOVE_UNSPECIFIED}
    assert names.camera_value("push-in") == pb.PUSH_IN and names.generate_mode_value("auto") == 0
    assert all(names.operation_name(names.operation_value(n)) == n for n in names.OPERATIONS)
    assert {names.codec_value(short) for short in names.CODEC_CHOICES} == \
        {v for v in pb.Codec.values() if v != pb.CODEC_UNSPECIFIED}
    assert names.codec_value("FFV1") == names.codec_value("lossless") == pb.FFV1


def test_submit_job_request_is_built_in_one_place_outside_the_server_and_the_tests():
    """Editors, the client CLI and the demo build requests through bridge.request only."""
    builders = []
    for folder in ("bridge", "blender_addon", "resolve_scripts", "server"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) \
                        == "SubmitJobRequest" and node.args == [] and node.keywords:
                    builders.append(str(path.relative_to(ROOT)))
    assert builders == ["bridge/request.py"]
