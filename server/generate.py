"""GENERATE: a new shot where the timeline has none (bridge.previs is the editor's side).

plan_generate() checks a request (the gap's length, the board or keyframe frames under the
allowed roots, the mode, the camera move, the size) and returns the JobPlan the other operations
use, with no source media: the take's format is the shot's (its size, the timeline's rate).
run_generate() reads the keyframes, asks the backend for the frames, marks them pre-vis when
asked, encodes the take and measures its gates:

| gate | measures | flags when |
|---|---|---|
| conformance | frames, rate, size, timecode against the gap | anything differs |
| generated_flicker | the shot's own block luminance pumping (levels/frame²) | > threshold (0.75) |
| board_fidelity | IMAGE: mean level difference of the first frame to the board | > threshold (3.0) |
| keyframe_fidelity | KEYFRAMES: the worse of first frame to the outgoing shot's last, last to the next's | > 3.0 |
| real_resolution | generated size against delivered | as for the other operations |
| previs | what made it: an animatic or a slate is stated and flagged, never passed off as footage | classic |
"""
from __future__ import annotations

import os
import time
from fractions import Fraction
from pathlib import Path

import grpc
import numpy as np

from bridge.api import pb
from bridge.selection import Selection
from server import gates
from server.errors import JobError
from server.media import MediaInfo, delivery_for, probe, write_movie
from server.media.decode import read_frames
from server.jobplan import CODECS, JobPlan, Limits, RunResult, resolve_media_url

MODES = {pb.TEXT: "text", pb.IMAGE: "image", pb.KEYFRAMES: "keyframes", pb.REFERENCES: "references"}
MOVES = {pb.STATIC: "static", pb.PUSH_IN: "push_in", pb.PULL_OUT: "pull_out", pb.PAN_LEFT: "pan_left",
         pb.PAN_RIGHT: "pan_right", pb.TILT_UP: "tilt_up", pb.TILT_DOWN: "tilt_down"}
DEFAULT_SIZE = (1920, 1080)
DEFAULT_AMOUNT = 0.15


def plan_generate(request: "pb.SubmitJobRequest", selection: Selection, limits: Limits) -> JobPlan:
    """The plan of a GENERATE request (finish_plan does the checks all operations share)."""
    params = request.generate
    count = selection.source_duration
    frames = []
    for which in ("first", "last"):
        ref = getattr(params, which)
        if ref.url:
            frames.append(_frame_input(ref, which, limits, selection.rate))
    mode = MODES.get(params.mode) if params.mode else _inferred_mode(frames, request)
    if params.mode and mode is None:
        raise JobError("bad_generate", f"generate mode {params.mode} is not one of TEXT, IMAGE, KEYFRAMES, REFERENCES")
    if mode == "image" and not frames:
        raise JobError("bad_generate", "IMAGE mode needs its first frame: a storyboard still or another clip's "
                                       "frame (--image)")
    if mode == "keyframes" and len(frames) != 2:
        raise JobError("bad_generate", "KEYFRAMES mode needs a first and a last frame: Generate between two clips "
                                       "(their frames are the keyframes), or give both images")
    if mode == "references" and not request.contract.reference_images:
        raise JobError("bad_generate", "REFERENCES mode needs the contract's reference images (characters, style)")
    camera = MOVES.get(params.camera) if params.camera else ("push_in" if mode == "image" else "static")
    if camera is None:
        raise JobError("bad_camera", f"camera move {params.camera} is not one of "
                                     f"{', '.join(pb.CameraMove.Name(c) for c in MOVES)}")
    if mode == "keyframes" and camera != "static":
        raise JobError("bad_camera", f"KEYFRAMES mode moves from one frame to the other; a camera move "
                                     f"({camera}) is for one board (IMAGE mode)")
    if (params.width > 0) != (params.height > 0):
        raise JobError("bad_size", f"give both width and height of the shot, not {params.width}x{params.height}")
    if params.width > 0:
        size = (params.width, params.height)
    elif frames:
        size = (frames[0]["width"], frames[0]["height"])
    else:
        size = DEFAULT_SIZE
    if size[0] < 16 or size[1] < 16:
        raise JobError("bad_size", f"a shot of {size[0]}x{size[1]} is too small to see; 16x16 at least")
    media = MediaInfo(path=Path(frames[0]["path"]) if frames else Path(""), width=size[0], height=size[1],
                      rate=selection.rate, frame_count=count, start_timecode=None, drop_frame=False,
                      codec="generated", pix_fmt="rgb24", is_sequence=False, bit_depth=8)
    plan = JobPlan(request=request, op="generate", selection=selection, media=media, rate=selection.rate,
                   read_start=selection.source_start, media_indices=[], take_start=selection.source_start,
                   take_count=count, head_handles=0, tail_handles=0)
    plan.generate = {"mode": mode, "camera": camera, "camera_amount": params.camera_amount or DEFAULT_AMOUNT,
                     "burn_in": params.burn_in, "size": list(size), "frames": frames,
                     "size_from": "request" if params.width > 0 else ("first frame" if frames else "default")}
    return plan


def _inferred_mode(frames: list, request) -> str:
    if len(frames) == 2:
        return "keyframes"
    if frames:
        return "image"
    return "references" if request.contract.reference_images else "text"


def _frame_input(ref: "pb.FrameRef", which: str, limits: Limits, rate: Fraction) -> dict:
    """A board or keyframe: the file under the allowed roots, the frame inside it, its size."""
    path = str(limits.check_path(resolve_media_url(ref.url, limits.cas_dir), f"generate {which} frame"))
    if not os.path.exists(path):
        raise JobError("media_missing", f"the {which} frame's file {ref.url} is not there; check the path",
                       grpc.StatusCode.NOT_FOUND)
    try:
        info = probe(path, rate=rate)
    except Exception as exc:   # a file that is not a picture: named, with what to do
        raise JobError("media_unreadable", f"the {which} frame's file {ref.url} cannot be read as a picture "
                                           f"({exc}); use a PNG, JPEG or a movie") from None
    if not 0 <= ref.frame < info.frame_count:
        raise JobError("range_outside_media", f"the {which} frame is frame {ref.frame} of {ref.url}, which has "
                                              f"{info.frame_count} (0..{info.frame_count - 1})")
    return {"which": which, "path": path, "frame": int(ref.frame), "width": info.width, "height": info.height}


# ------------------------------------------------------------------------------- running

def run_generate(plan: JobPlan, backend, staging: Path, report, cancel):
    """Make, mark, encode and measure the take of a GENERATE plan (see the module's table)."""
    from server.backends.base import Spec
    from server.backends.classic.animatic import burn_in, fit
    from server.runner import _checked, _read_image

    started, timings = time.monotonic(), {}
    gen = plan.generate
    width, height = gen["size"]
    report("decode", 0, 1, None)
    keyframes = [fit(read_frames(f["path"], f["frame"], 1)[0], width, height) for f in gen["frames"]]
    timings["decode"] = time.monotonic() - started
    spec = Spec(op="generate", rate=plan.rate, seed=plan.seed, prompt=plan.request.contract.prompt,
                negative_prompt=plan.request.contract.negative_prompt, model=plan.request.model,
                steps_scale=plan.steps_scale)
    spec.reference_images = [_read_image(path) for path in plan.reference_paths]
    spec.scratch, spec.tier = staging, plan.tier
    spec.generate = {"mode": gen["mode"], "camera": gen["camera"], "camera_amount": gen["camera_amount"],
                     "frames": plan.take_count, "width": width, "height": height, "shot": plan.shot,
                     "take": gen.get("take_label", ""), "duration": f"{plan.take_count} frames at "
                                                                     f"{float(plan.rate):.6g} fps"}
    report("decode", 1, 1, None)

    def progress(done, total, preview):
        report("generate", done, total, preview)
    clock = time.monotonic()
    inputs = np.stack(keyframes) if keyframes else np.zeros((0, height, width, 3), np.uint8)
    made = backend.run("generate", inputs, spec, progress, cancel)
    timings["generate"] = time.monotonic() - clock
    if made.shape != (plan.take_count, height, width, 3) or made.dtype != np.uint8:
        raise RuntimeError(f"backend {backend.name} made {made.shape} {made.dtype} frames for a generate of "
                           f"{plan.take_count} frames at {width}x{height}; this is a bug in the backend")
    measured = _fidelity(gen["mode"], made, keyframes)
    frames = made
    if gen["burn_in"]:
        frames = np.stack([burn_in(f, f"PRE-VIS  {plan.shot}  {gen['mode']}  {i + 1}/{plan.take_count}")
                           for i, f in enumerate(made)])
    codec, suffix = CODECS[plan.codec]
    staging.mkdir(parents=True, exist_ok=True)
    from server import paths
    dest = staging / f"{paths.slug(plan.shot)}{suffix}"
    clock = time.monotonic()
    media = write_movie(_checked(iter(frames), cancel), dest, codec=codec, rate=plan.rate,
                        start_timecode=plan.start_timecode or None, drop_frame=plan.drop_frame,
                        delivery=delivery_for(codec, None, 8))
    timings["encode"] = time.monotonic() - clock
    report("encode", 1, 1, None)
    size = (width, height)
    generated_size = tuple(spec.info.get("generated_size") or size)
    thresholds = gates.thresholds_from(plan.request.contract.review.thresholds)
    expected = gates.Expected(frames=plan.take_count, rate=plan.rate, size=size, timecode=plan.start_timecode or None)
    actual = gates.Actual(frames=media.frame_count, rate=media.rate, size=(media.width, media.height),
                          timecode=media.start_timecode)
    kind = spec.info.get("kind", "model")
    result_gates = [gates.conformance(expected, actual),
                    _flicker(made, thresholds["generated_flicker"]),
                    *_fidelity_gates(gen["mode"], measured, thresholds),
                    gates._upscale_gate(generated_size, size, thresholds["real_resolution"]),
                    _previs_gate(kind, backend.name, spec.info.get("made", ""))]
    timings["gates"] = 0.0
    return RunResult(staged=dest, media=media, timings=timings, generated_size=generated_size, delivered_size=size,
                     fallbacks=list(plan.fallbacks), gates=result_gates, device=backend.device, info=dict(spec.info),
                     pixels={"source_bit_depth": 8, "processing_bit_depth": 8,
                             "delivery": delivery_for(codec, None, 8).describe(), "burn_in": bool(gen["burn_in"])})


def _fidelity(mode: str, made: np.ndarray, keyframes: list) -> dict:
    """Mean level differences (8-bit) of the take's ends to what they were asked to be."""
    def mad(a, b):
        return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))
    if mode in ("image", "references") and keyframes:
        return {"board": mad(made[0], keyframes[0])}
    if mode == "keyframes" and len(keyframes) == 2:
        return {"first": mad(made[0], keyframes[0]), "last": mad(made[-1], keyframes[1])}
    return {}


def _fidelity_gates(mode: str, measured: dict, thresholds: dict) -> list:
    if "board" in measured:
        limit = thresholds["board_fidelity"]
        value = measured["board"]
        return [gates.Gate("board_fidelity", value, limit, "flag" if value > limit else "pass",
                           f"the first frame is {value:.2f} levels from the board on average")]
    if "first" in measured:
        limit = thresholds["keyframe_fidelity"]
        value = max(measured["first"], measured["last"])
        return [gates.Gate("keyframe_fidelity", value, limit, "flag" if value > limit else "pass",
                           f"first frame {measured['first']:.2f} levels from the outgoing shot's last, last frame "
                           f"{measured['last']:.2f} from the incoming shot's first")]
    return []


def _flicker(made: np.ndarray, threshold: float):
    blocks = gates._blocks(gates._gray(made[:: max(1, len(made) // 240)]))
    value = gates._flicker_of_blocks(blocks)
    if np.isnan(value):
        return gates.Gate("generated_flicker", None, threshold, "n/a", "too few frames to measure")
    return gates.Gate("generated_flicker", value, threshold, "flag" if value > threshold else "pass",
                      f"block luminance pumps {value:.2f} levels/frame²")


def _previs_gate(kind: str, backend: str, made: str):
    if kind in ("animatic", "slate"):
        article = "an" if kind[0] in "aeiou" else "a"
        return gates.Gate("previs", 1.0, 0.0, "flag", f"{article} {kind} made by the {backend} backend ({made}): "
                                                      f"pre-vis, not footage")
    return gates.Gate("previs", 0.0, 0.0, "pass", f"generated by the {backend} backend ({made}): pre-vis")
