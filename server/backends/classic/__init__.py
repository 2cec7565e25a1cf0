"""The classic backend: refine, extend and inpaint with plain computer vision on the CPU, and
generate as an animatic (a camera move over a board, a motion-compensated morph between two
keyframes, or a slate card: see animatic).

No model, no download: motion estimation and resampling only, so results are exact and repeatable.
"""
from __future__ import annotations

import threading
from typing import Iterator

import cv2
import numpy as np

from ..base import BackendError, Cancelled, ProgressFn, Spec
from . import animatic, extend, inpaint, refine

PREVIEW_EVERY = 8       # frames between previews sent with progress


class ClassicBackend:
    """Implements the backend protocol (see base.Backend) with the classic operations."""

    name = "classic"
    device = "cpu"
    deep = True          # works at the frames' depth (8 or 16 bits)

    def operations(self) -> tuple[str, ...]:
        return ("refine", "extend", "inpaint", "generate")

    def run(self, op: str, frames: np.ndarray, spec: Spec, progress: ProgressFn,
            cancel: threading.Event) -> np.ndarray:
        """Generate the take's frames for `op`; see base.Backend.run for the contract."""
        if cancel.is_set():
            raise Cancelled()
        # Nothing here draws random numbers today; seeding keeps it so if something ever does.
        cv2.setRNGSeed(int(spec.seed) % 2**31)   # OpenCV takes a 32-bit seed
        if op == "refine":
            made, total = refine.refined_frames(frames, spec.strength), len(frames)
        elif op == "extend":
            _check_extend(spec)
            made = extend.new_frames(frames, spec.extend_frames, spec.extend_side, spec.info.setdefault("extend", {}))
            total = spec.extend_frames
        elif op == "inpaint":
            _check_mask(spec.mask, frames.shape)
            made = inpaint.filled_frames(frames, spec.mask.astype(bool, copy=False), cancel)
            total = len(frames)
        elif op == "generate":
            made, total = _animatic(frames, spec, cancel), int(spec.generate["frames"])
            shape = (int(spec.generate["height"]), int(spec.generate["width"]), 3)
            return _collect(made, total, shape, progress, cancel, np.uint8)
        else:
            raise BackendError("unsupported_operation",
                               f"the classic backend has no operation {op!r}; "
                               f"choose one of {', '.join(self.operations())}")
        return _collect(made, total, frames.shape[1:], progress, cancel, frames.dtype)


    def stream(self, op: str, frames: Iterator[np.ndarray], masks: Iterator[np.ndarray] | None, spec: Spec,
               progress: ProgressFn, cancel: threading.Event, total: int) -> Iterator[np.ndarray]:
        """refine / inpaint over a sliding window of frames (see refine.refined_stream and
        inpaint.filled_stream for the window sizes and why)."""
        cv2.setRNGSeed(int(spec.seed) % 2**31)
        if op == "refine":
            made = refine.refined_stream(frames, spec.strength)
        elif op == "inpaint":
            if masks is None:
                raise BackendError("mask_missing", "inpaint needs a mask: paint the region to replace")
            made = inpaint.filled_stream(frames, masks, cancel)
        else:
            raise BackendError("unsupported_operation", f"the classic backend streams refine and inpaint, not {op!r}")
        for done, frame in enumerate(made, start=1):
            if cancel.is_set():
                raise Cancelled()
            progress(done, total, frame if done % PREVIEW_EVERY == 0 or done == total else None)
            yield frame

    def extend_context(self) -> int:
        return max(extend.HISTORY + 1, extend.PLATE_FRAMES) + extend.HINDCAST


def _animatic(keyframes: np.ndarray, spec: Spec, cancel: threading.Event):
    """GENERATE without a model (see animatic): what it makes is said in spec.info."""
    gen = spec.generate
    count, width, height = int(gen["frames"]), int(gen["width"]), int(gen["height"])
    if gen["mode"] == "keyframes" and len(keyframes) == 2:
        spec.info.update(kind="animatic", made="a motion-compensated morph between the two keyframes (DIS flow)")
        return animatic.morph(keyframes[0], keyframes[1], count, cancel)
    if len(keyframes) >= 1:
        amount = float(gen.get("camera_amount") or animatic.DEFAULT_AMOUNT)
        spec.info.update(kind="animatic", made=f"a {gen['camera'].replace('_', ' ')} over the board "
                                               f"({amount:.0%}, eased)")
        return animatic.camera_move(keyframes[0], count, gen["camera"], amount, cancel)
    lines = {"prompt": spec.prompt or "(none)", "shot": gen.get("shot", ""), "length": gen.get("duration", ""),
             "take": gen.get("take", "") or "next", "seed": str(spec.seed)}
    if gen["mode"] == "references":
        lines["references"] = f"{len(spec.reference_images)} image(s): a model draws from them; this slate cannot"
    spec.info.update(kind="slate", made="a slate card with the prompt (text alone draws nothing without a model)")
    return animatic.slate(count, width, height, lines, cancel)


def _check_extend(spec: Spec) -> None:
    if spec.extend_side not in ("head", "tail"):
        raise BackendError("bad_extend", f"extend side {spec.extend_side!r} is neither "
                                         "'head' nor 'tail'")
    if spec.extend_frames < 0:
        raise BackendError("bad_extend", f"cannot extend by {spec.extend_frames} frames; "
                                         "ask for 0 or more")


def _check_mask(mask: np.ndarray | None, frames_shape: tuple[int, ...]) -> None:
    if mask is None:
        raise BackendError("mask_missing", "inpaint needs a mask: paint the region to replace")
    if mask.shape != frames_shape[:3]:
        raise BackendError("mask_size_mismatch",
                           f"mask is {mask.shape} (frames, height, width) but the frames are "
                           f"{frames_shape[:3]}; conform the mask to the shot")


def _collect(made: Iterator[np.ndarray], total: int, frame_shape: tuple[int, ...],
             progress: ProgressFn, cancel: threading.Event, dtype=np.uint8) -> np.ndarray:
    """Gather frames as they are made (at the input's depth), reporting progress and honouring
    cancel between them."""
    out = np.empty((total,) + tuple(frame_shape), dtype)
    for done in range(1, total + 1):
        if cancel.is_set():
            raise Cancelled()
        out[done - 1] = next(made)
        preview = out[done - 1] if done % PREVIEW_EVERY == 0 or done == total else None
        progress(done, total, preview)
    return out
