"""Refine a shot: motion-compensated temporal denoise, then a light detail lift, by strength.

Neighbouring frames are aligned with optical flow and averaged only where they agree, so nothing ghosts.
"""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from . import motion

DETAIL_GAIN = 0.35       # unsharp-mask amount at strength 1
DETAIL_SIGMA = 1.2       # px: the scale of detail the unsharp mask lifts
_AGREEMENT_FLOOR = 3.0   # grey levels of disagreement always tolerated, even on clean footage


def radius_for(strength: float) -> int:
    """Frames each side averaged: 1 for a touch, up to 3 at full strength."""
    return 1 + int(round(2.0 * float(np.clip(strength, 0.0, 1.0))))


def refined_frames(frames: np.ndarray, strength: float) -> Iterator[np.ndarray]:
    """Yield each frame refined; strength 0 yields the frames unchanged.

    For frame t, each neighbour within `radius_for(strength)` is pulled onto t along the
    dense flow, then weighted per pixel by how well it matches t, so occluded or misaligned
    pixels barely count. The weighted mean is blended with the original by strength and
    lightly sharpened.
    """
    return refined_stream(iter(frames), strength)


def refined_stream(frames: Iterator[np.ndarray], strength: float) -> Iterator[np.ndarray]:
    """refined_frames over an iterator: a window of 2 * radius + 1 frames (at most 7) is all
    that is held, since frame t only ever looks at its neighbours within the radius."""
    strength = float(np.clip(strength, 0.0, 1.0))
    if strength == 0.0:
        for frame in frames:
            yield frame.copy()
        return
    radius = radius_for(strength)
    window: dict[int, np.ndarray] = {}
    ended, read = False, 0
    t = 0
    while True:
        while not ended and read <= t + radius:     # read ahead to t + radius
            frame = next(frames, None)
            if frame is None:
                ended = True
            else:
                window[read] = frame
                read += 1
        if t >= read:
            return
        yield _refined(window, t, radius, strength)
        window.pop(t - radius, None)                 # no later frame looks this far back
        t += 1


def _refined(window: dict[int, np.ndarray], t: int, radius: int, strength: float) -> np.ndarray:
    reference = window[t]
    neighbours = [s for s in range(t - radius, t + radius + 1) if s != t and s in window]
    aligned = [motion.pull_along_flow(window[s], motion.dense_flow(reference, window[s])) for s in neighbours]
    differences = [motion.disagreement(a, reference) for a in aligned]
    agreement = _agreement_table(min((float(np.median(d[::4, ::4])) for d in differences), default=0.0))

    total = reference.astype(np.float32)
    weight_sum = np.ones(reference.shape[:2] + (1,), np.float32)
    for pulled, difference in zip(aligned, differences):
        weight = cv2.LUT(difference, agreement).astype(np.float32)[..., None] / 255.0
        total += weight * pulled
        weight_sum += weight
    blended = reference + strength * (total / weight_sum - reference)
    detail = blended - cv2.GaussianBlur(blended, (0, 0), DETAIL_SIGMA)
    top = np.iinfo(reference.dtype).max   # 255, or 65535 for deep frames
    return np.clip(np.rint(blended + strength * DETAIL_GAIN * detail), 0, top).astype(reference.dtype)


def _agreement_table(typical: float) -> np.ndarray:
    """uint8 lookup: smoothed difference -> weight (255 = agrees, 0 = ignore).

    `typical` is the median difference of the best-aligned neighbour: what agreement looks
    like in this footage, noise included. Differences up to half again as much count fully;
    beyond, the weight falls off quickly, so several half-agreeing neighbours cannot add up
    to a ghost.
    """
    knee = 1.5 * typical + _AGREEMENT_FLOOR
    falloff = 0.5 * typical + _AGREEMENT_FLOOR / 2.0
    excess = np.maximum(np.arange(256, dtype=np.float32) - knee, 0.0)
    return np.rint(255.0 * np.exp(-0.5 * (excess / falloff) ** 2)).astype(np.uint8)
