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
from server.media import MediaInfo, delivery_for, iter_pictures, read_mask, write_movie
from server.media.pixels import (align_mask, chroma_grid, composite_native, has_alpha, native_of_rgb,
                                 working_depth)
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
    pixels: dict = dataclasses.field(default_factory=dict)  # depth, delivery format, colour, untouched frames


def run_plan(plan: JobPlan, backend: Backend, staging: Path, report: Report,
             cancel: threading.Event) -> RunResult:
    timings: dict[str, float] = {}
    codec, suffix = CODECS[plan.codec]
    depth = working_depth(plan.media.bit_depth)
    delivery = delivery_for(codec, plan.media, depth)
    # the source's own samples are kept when the take is stored in the source's pixel format
    native = delivery.pix_fmt == plan.media.pix_fmt and codec not in ("png", "exr")
    # the source's pictures are also read when the take carries their alpha in another format
    keep_pictures = native or (plan.media.has_alpha and has_alpha(delivery.pix_fmt))

    started = time.monotonic()
    source, natives = _decode(plan, report, depth, keep_pictures)
    mask = None
    if plan.op == "inpaint":
        mask = _decode_mask(plan)
        grid = chroma_grid(plan.media.pix_fmt) if native else (1, 1)
        mask = align_mask(mask, grid)   # whole chroma samples: pixels outside keep every sample
        plan.mask_grid = grid
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
                            lambda done, total, preview: report("generate", done, total, _preview8(preview)),
                            cancel)
    generated = _at_depth(generated, source.dtype)
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
    staging.mkdir(parents=True, exist_ok=True)
    dest = staging / f"{paths.slug(plan.shot)}{suffix}"
    items, kept = _take_items(plan, source, natives, take_frames, mask, delivery)
    media = write_movie(_frames_reporting(items, report, cancel), dest, codec=codec, rate=plan.rate,
                        start_timecode=plan.start_timecode, drop_frame=plan.drop_frame, delivery=delivery)
    timings["encode"] = time.monotonic() - started
    faults.point("encoded")
    size = (source.shape[2], source.shape[1])
    generated_size = tuple(spec.info.get("generated_size") or (work.shape[2], work.shape[1]))
    if work is not source and "generated_size" in spec.info:  # degraded: the model's size at the smaller input
        generated_size = tuple(spec.info["generated_size"])
    result = RunResult(staged=dest, media=media, timings=timings, generated_size=generated_size,
                       delivered_size=size, fallbacks=list(plan.fallbacks), device=backend.device,
                       info=dict(spec.info))
    result.pixels = {"source_bit_depth": plan.media.bit_depth, "processing_bit_depth": depth,
                     "delivery": delivery.describe(), "source_pix_fmt": plan.media.pix_fmt,
                     "source_color": plan.media.color.describe(),
                     "kept_source_samples": native,
                     "frames_untouched": _ranges(kept), "frames_encoded": _ranges(
                         [i for i in range(plan.take_count) if i not in set(kept)]),
                     "mask_grid": list(getattr(plan, "mask_grid", (1, 1))) if plan.op == "inpaint" else None}

    started = time.monotonic()
    result.gates = run_gates(plan, _eight(source), _eight(take_frames), mask, result)
    timings["gates"] = time.monotonic() - started
    return result


def _take_items(plan: JobPlan, source: np.ndarray, natives: list | None, take_frames: np.ndarray,
                mask: np.ndarray | None, delivery) -> tuple[list, list[int]]:
    """What is written for each take frame: the source's own picture where the operation left
    the frame as it was (bit-exact in any decoder), the source's samples outside the mask for an
    inpaint frame, the take's RGB otherwise (with the source's alpha where the take has alpha).
    Returns (items, indexes of the frames the operation left as they were)."""
    offset = plan.extend_frames if plan.op == "extend" and plan.extend_side == "head" else 0
    same_format = bool(natives) and natives[0].pix_fmt == delivery.pix_fmt
    items, kept = [], []

    def converted(frame, s):
        if not natives:
            return frame
        return native_of_rgb(frame, delivery.pix_fmt, delivery.color,
                             alpha_from=natives[min(max(s, 0), len(natives) - 1)])

    for index, frame in enumerate(take_frames):
        s = index - offset
        if not 0 <= s < len(source):
            items.append(converted(frame, s))
        elif np.array_equal(frame, source[s]):
            kept.append(index)
            items.append(natives[s] if same_format else converted(frame, s))
        elif same_format and plan.op == "inpaint":
            items.append(composite_native(natives[s], converted(frame, s), mask[s]))
        else:
            items.append(converted(frame, s))
    return items, kept


def _ranges(indexes: list[int]) -> list[list[int]]:
    """[[first, last], ...] runs of consecutive indexes."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def _eight(frames: np.ndarray) -> np.ndarray:
    """An 8-bit view of working frames, for the gates (their thresholds are in 8-bit levels)."""
    if frames.dtype == np.uint8:
        return frames
    return ((frames.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _preview8(preview):
    return None if preview is None else _eight(preview[None])[0]


def _at_depth(frames: np.ndarray, dtype) -> np.ndarray:
    """A backend's frames at the working depth (a backend that only makes 8 bits is widened)."""
    if frames.dtype == dtype:
        return frames
    if frames.dtype == np.uint8 and dtype == np.uint16:
        return frames.astype(np.uint16) * 257
    raise RuntimeError(f"backend returned {frames.dtype} frames for {np.dtype(dtype)} work; this is a bug")


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


def _decode(plan: JobPlan, report: Report, depth: int, native: bool) -> tuple[np.ndarray, list | None]:
    """The frames of the read range at the working depth (and the source's own pictures when
    the take keeps them); media frames are fetched once even when a rate change maps several
    take frames onto one media frame."""
    first, last = min(plan.media_indices), max(plan.media_indices)
    report("decode", 0, plan.read_count, None)
    frames = np.empty((last - first + 1, plan.media.height, plan.media.width, 3),
                      np.uint8 if depth == 8 else np.uint16)
    pictures = [] if native else None
    for slot, (rgb, picture) in enumerate(iter_pictures(plan.media.path, first, last - first + 1,
                                                        rate=plan.media.rate, depth=depth, native=native)):
        frames[slot] = rgb
        if native:
            pictures.append(picture)
    report("decode", plan.read_count, plan.read_count, None)
    if plan.media_indices == list(range(first, last + 1)):
        return frames, pictures
    picks = np.asarray(plan.media_indices) - first
    return frames[picks], ([pictures[i] for i in picks] if native else None)


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
            return np.where(mask[..., None], blended.astype(source.dtype), source)
        return np.where(mask[..., None], generated, source)
    if plan.op == "extend":
        parts = (generated, source) if plan.extend_side == "head" else (source, generated)
        return np.concatenate(parts, axis=0)
    return generated


def _frames_reporting(frames, report: Report, cancel: threading.Event):
    for index, frame in enumerate(frames):
        _check(cancel)
        yield frame
        report("encode", index + 1, len(frames), None)


def _check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled()
