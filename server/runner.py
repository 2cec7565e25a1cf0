"""Run one planned job: decode the source range, call the backend, composite, encode the take
into a staging folder. Readable top to bottom; no gRPC and no database here.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from server import faults, gates, paths
from server.backends.base import Backend, Cancelled, Spec
from server.media import MediaInfo, read_frames, read_mask, write_movie
from server.backends.generative.conform import feathered_alpha
from server.plan import CODECS, JobPlan

# Share of the job's progress bar each stage gets.
STAGE_WEIGHTS = {"decode": 0.1, "generate": 0.72, "encode": 0.15, "gates": 0.03}

# report(stage, step, total, preview)
Report = Callable[[str, int, int, Optional[np.ndarray]], None]


@dataclasses.dataclass
class RunResult:
    staged: Path                 # the encoded take, in the staging folder
    media: MediaInfo
    timings: dict[str, float]    # seconds per stage
    generated_size: tuple[int, int]
    delivered_size: tuple[int, int]
    fallbacks: list[str]
    gates: list = dataclasses.field(default_factory=list)   # server.gates.Gate, in order
    device: str = "cpu"
    info: dict = dataclasses.field(default_factory=dict)    # what the backend reported (model, fps, generator)


def run_plan(plan: JobPlan, backend: Backend, staging: Path, report: Report,
             cancel: threading.Event) -> RunResult:
    timings: dict[str, float] = {}

    started = time.monotonic()
    source = _decode(plan, report)
    mask = _decode_mask(plan) if plan.op == "inpaint" else None
    timings["decode"] = time.monotonic() - started
    _check(cancel)
    faults.point("decoded")

    started = time.monotonic()
    work, work_mask = (source, mask) if plan.scale >= 1 else _smaller(source, mask, plan.scale)
    spec = Spec(op=plan.op, rate=plan.rate, seed=plan.seed, strength=plan.strength,
                extend_side=plan.extend_side or "tail", extend_frames=plan.extend_frames, mask=work_mask,
                prompt=plan.request.contract.prompt, negative_prompt=plan.request.contract.negative_prompt,
                model=plan.request.model, steps_scale=plan.steps_scale)
    spec.reference_images = [_read_image(path) for path in plan.reference_paths]
    generated = backend.run(plan.op, work, spec,
                            lambda done, total, preview: report("generate", done, total, preview), cancel)
    if work is not source:
        generated = _resized(generated, (source.shape[2], source.shape[1]), cv2.INTER_CUBIC)
    timings["generate"] = time.monotonic() - started
    faults.point("generated")
    take_frames = _composite(plan, source, generated, mask)
    if len(take_frames) != plan.take_count:
        raise RuntimeError(f"backend {backend.name} returned {len(take_frames)} frames for a take of "
                           f"{plan.take_count}; this is a bug in the backend")
    _check(cancel)

    started = time.monotonic()
    codec, suffix = CODECS[plan.codec]
    staging.mkdir(parents=True, exist_ok=True)
    dest = staging / f"{paths.slug(plan.shot)}{suffix}"
    media = write_movie(_frames_reporting(take_frames, report, cancel), dest, codec=codec, rate=plan.rate,
                        start_timecode=plan.start_timecode, drop_frame=plan.drop_frame)
    timings["encode"] = time.monotonic() - started
    faults.point("encoded")
    size = (source.shape[2], source.shape[1])
    generated_size = tuple(spec.info.get("generated_size") or (work.shape[2], work.shape[1]))
    if work is not source and "generated_size" in spec.info:  # degraded: the model's size at the smaller input
        generated_size = tuple(spec.info["generated_size"])
    result = RunResult(staged=dest, media=media, timings=timings, generated_size=generated_size,
                       delivered_size=size, fallbacks=list(plan.fallbacks), device=backend.device,
                       info=dict(spec.info))

    started = time.monotonic()
    result.gates = run_gates(plan, source, take_frames, mask, result)
    timings["gates"] = time.monotonic() - started
    return result


def run_gates(plan: JobPlan, source: np.ndarray, take_frames: np.ndarray, mask: np.ndarray | None,
              result: RunResult) -> list:
    """The quality gates of a take, on the frames in memory and the media as written."""
    expected = gates.Expected(frames=plan.take_count, rate=plan.rate, size=(plan.media.width, plan.media.height),
                              timecode=plan.start_timecode)
    actual = gates.Actual(frames=result.media.frame_count, rate=result.media.rate,
                          size=(result.media.width, result.media.height), timecode=result.media.start_timecode)
    return gates.evaluate(plan.op, source, take_frames, mask=mask, extend_side=plan.extend_side or "tail",
                          extend_frames=plan.extend_frames, expected=expected, actual=actual,
                          generated_size=result.generated_size, fallbacks=result.fallbacks,
                          thresholds=plan.request.contract.review.thresholds)


def _read_image(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"reference image {path} cannot be read; use a PNG or JPEG")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _resized(frames: np.ndarray, size: tuple[int, int], interpolation) -> np.ndarray:
    return np.stack([cv2.resize(f, size, interpolation=interpolation) for f in frames])


def _smaller(source: np.ndarray, mask: np.ndarray | None, scale: float):
    """The frames (and masks) the backend works on when the job was degraded to `scale`."""
    size = (max(16, round(source.shape[2] * scale)), max(16, round(source.shape[1] * scale)))
    small = _resized(source, size, cv2.INTER_AREA)
    if mask is None:
        return small, None
    return small, np.stack([cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
                            for m in mask])


def _decode(plan: JobPlan, report: Report) -> np.ndarray:
    """The frames of the read range; media frames are fetched once even when a rate change
    maps several take frames onto one media frame."""
    first, last = min(plan.media_indices), max(plan.media_indices)
    report("decode", 0, plan.read_count, None)
    span = read_frames(plan.media.path, first, last - first + 1, rate=plan.media.rate)
    report("decode", plan.read_count, plan.read_count, None)
    if plan.media_indices == list(range(first, last + 1)):
        return span
    return span[np.asarray(plan.media_indices) - first]


def _decode_mask(plan: JobPlan) -> np.ndarray:
    """One mask per frame read; mask frame 0 is the clip's first frame, handles hold the
    nearest mask frame."""
    offsets = [f - plan.selection.source_start for f in range(plan.read_start, plan.read_start + plan.read_count)]
    size = (plan.media.width, plan.media.height)
    full = read_mask(plan.mask_path, plan.selection.source_duration, size, rate=plan.rate)
    masks = full[np.clip(offsets, 0, len(full) - 1)]
    if plan.mask_invert:
        masks = ~masks
    if plan.mask_grow:
        masks = np.stack([grow_mask(m, plan.mask_grow) for m in masks])
    return masks


def grow_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` grown by `pixels` (Euclidean): a distance transform, so its cost does not depend
    on how far it grows (a dilation kernel's does, with the square of the radius)."""
    if not mask.any():
        return mask.copy()
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= pixels


def _composite(plan: JobPlan, source: np.ndarray, generated: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Pixels outside an inpaint mask are the source's; an extension is the source range plus
    the new frames on its side."""
    if plan.op == "inpaint":
        if plan.feather > 0:  # a soft edge inside the mask; outside it the source, exactly
            alpha = feathered_alpha(mask, plan.feather)[..., None]
            blended = np.rint(alpha * generated.astype(np.float32) + (1 - alpha) * source.astype(np.float32))
            return np.where(mask[..., None], blended.astype(np.uint8), source)
        return np.where(mask[..., None], generated, source)
    if plan.op == "extend":
        parts = (generated, source) if plan.extend_side == "head" else (source, generated)
        return np.concatenate(parts, axis=0)
    return generated


def _frames_reporting(frames: np.ndarray, report: Report, cancel: threading.Event):
    for index, frame in enumerate(frames):
        _check(cancel)
        yield frame
        report("encode", index + 1, len(frames), None)


def _check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled()
