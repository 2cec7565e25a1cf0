"""Refine a shot: motion-compensated temporal denoise, then a light detail lift, by strength.

Neighbouring frames are aligned with optical flow (DIS at its medium preset, up to 960 px wide,
sampled bicubically: bilinear sampling at a sub-pixel shift blurs fine detail as much as the
noise it removes) and averaged only where they agree, so nothing ghosts. The clip's noise level is estimated first (from its first frames aligned to each other, read in
their calmest blocks: server/noise.py); strength then chooses how much is averaged, not how much of an
average is mixed back in: how many frames each side (1 at a touch, 5 at full strength), how
far a neighbour may disagree and still count (a multiple of the noise), and how strongly the
result is smoothed in space within the noise's range (an edge-keeping bilateral filter). Above
half strength, detail above the noise band is lifted (a look: it costs fidelity, so it stays off
up to 0.5), never the grain. Strength 0 gives the frames back unchanged.
"""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from server import noise

from . import motion

DETAIL_GAIN = 0.35       # unsharp-mask amount at strength 1 (none up to strength 0.5)
DETAIL_SIGMA = 1.2       # px: the scale of detail the unsharp mask lifts
_AGREEMENT_FLOOR = 3.0   # grey levels of disagreement always tolerated, even on clean footage
# a neighbour counts fully up to (0.6 + 0.5 strength) x noise of disagreement (+ the floor); the
# bilateral range is (1.3 + 2 strength) x noise: full strength averages more frames and smooths
# more without smearing detail away. Chosen on real footage with sigma-8 noise added
# (bench/bench_real.py), with the noise as estimated (which reads ~10 % low there): at 0.5,
# 0.85 x and 2.3 x beat looser and tighter settings on all seven segments (a looser tolerance
# lets misaligned neighbours in; a tighter one averages too little).
TOLERANCE = (0.6, 0.5)   # (base, per unit of strength) multiples of the noise
SPATIAL = (1.3, 2.0)
FLOW_WIDTH = 960         # refine's flow is measured at most this wide (finer than motion.FLOW_WIDTH)
NOISE_FRAMES = 3         # frames the noise level is estimated on (the first ones: a stream reads them first)
_LUMA_OF_RGB_NOISE = 0.67  # luma noise / per-channel noise, for noise independent in R, G and B


def radius_for(strength: float) -> int:
    """Frames each side averaged: 1 for a touch, 3 at strength 0.5, 5 at full strength."""
    return max(1, int(round(1.0 + 4.0 * float(np.clip(strength, 0.0, 1.0)))))


def temporal_noise(a: np.ndarray, b: np.ndarray) -> float:
    """Per-channel noise sigma (8-bit levels) from two neighbouring frames: b pulled onto a
    along the flow, their luma difference averaged over 8x8 blocks and read in the calmest of
    them (server/noise.py). Texture cancels once aligned (where one frame alone cannot tell fine
    texture from grain), and what moved or failed to align stays in the busy blocks."""
    pulled = motion.pull_along_flow(b, motion.dense_flow(a, b))
    difference = np.abs(_luma8(a) - _luma8(pulled))[4:-4, 4:-4]   # not the borders the flow pulls in
    if min(difference.shape) < 8:
        return noise_level(a)
    # |difference of two noisy frames| averages sigma * sqrt(2) * sqrt(2 / pi)
    return noise.calm_blocks(difference) / (np.sqrt(2.0) * np.sqrt(2.0 / np.pi)) / _LUMA_OF_RGB_NOISE


def noise_level(frame: np.ndarray) -> float:
    """Per-channel noise sigma of one RGB frame in 8-bit levels (server/noise.py on its luma)."""
    return noise.luma_sigma(_luma8(frame)) / _LUMA_OF_RGB_NOISE


def _luma8(frame: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return gray * (255.0 / 65535.0) if frame.dtype != np.uint8 else gray


def refined_frames(frames: np.ndarray, strength: float) -> Iterator[np.ndarray]:
    """Yield each frame refined; strength 0 yields the frames unchanged.

    For frame t, each neighbour within `radius_for(strength)` is pulled onto t along the
    dense flow, then weighted per pixel by how well it matches t (within a tolerance set by the
    clip's noise and the strength), so occluded or misaligned pixels barely count. The weighted
    mean is smoothed in space within the noise's range and its detail above the noise lifted.
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
    level = None
    while True:
        while not ended and read <= max(t + radius, NOISE_FRAMES - 1):     # read ahead to t + radius
            frame = next(frames, None)
            if frame is None:
                ended = True
            else:
                window[read] = frame
                read += 1
        if t >= read:
            return
        if level is None:   # from the first frames: the same for every run of the clip
            first = [window[i] for i in range(min(NOISE_FRAMES, read))]
            level = float(np.median([temporal_noise(a, b) for a, b in zip(first[:-1], first[1:])])) \
                if len(first) > 1 else noise_level(first[0])
        yield _refined(window, t, radius, strength, level)
        window.pop(t - radius, None)                 # no later frame looks this far back
        t += 1


def _refined(window: dict[int, np.ndarray], t: int, radius: int, strength: float, level: float) -> np.ndarray:
    reference = window[t]
    neighbours = [s for s in range(t - radius, t + radius + 1) if s != t and s in window]
    aligned = [motion.pull_along_flow(window[s], motion.dense_flow(reference, window[s], FLOW_WIDTH,
                                                                   cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
                                      interpolation=cv2.INTER_CUBIC) for s in neighbours]
    differences = [motion.disagreement(a, reference) for a in aligned]
    agreement = _agreement_table((TOLERANCE[0] + TOLERANCE[1] * strength) * level)

    total = reference.astype(np.float32)
    weight_sum = np.ones(reference.shape[:2] + (1,), np.float32)
    for pulled, difference in zip(aligned, differences):
        weight = cv2.LUT(difference, agreement).astype(np.float32)[..., None] / 255.0
        total += weight * pulled
        weight_sum += weight
    averaged = total / weight_sum
    top = float(np.iinfo(reference.dtype).max)   # 255, or 65535 for deep frames
    scale = top / 255.0
    spatial = (SPATIAL[0] + SPATIAL[1] * strength) * level
    if spatial > 0.5:
        averaged = cv2.bilateralFilter(averaged, 5, spatial * scale, 2.0)
    gain = DETAIL_GAIN * max(0.0, 2.0 * strength - 1.0)
    if gain > 0.0:
        # the detail lift works above the noise band only (cored): grain is not sharpened back in
        detail = averaged - cv2.GaussianBlur(averaged, (0, 0), DETAIL_SIGMA)
        core = 1.5 * level * scale
        averaged = averaged + gain * (np.sign(detail) * np.maximum(np.abs(detail) - core, 0.0))
    return np.clip(np.rint(averaged), 0, top).astype(reference.dtype)


def _agreement_table(tolerance: float) -> np.ndarray:
    """uint8 lookup: smoothed difference (8-bit levels) -> weight (255 = agrees, 0 = ignore).

    Differences up to `tolerance` (from the noise and the strength) plus a small floor count
    fully; beyond, the weight falls off quickly, so several half-agreeing neighbours cannot
    add up to a ghost.
    """
    knee = tolerance + _AGREEMENT_FLOOR
    falloff = 0.5 * tolerance + _AGREEMENT_FLOOR / 2.0
    excess = np.maximum(np.arange(256, dtype=np.float32) - knee, 0.0)
    return np.rint(255.0 * np.exp(-0.5 * (excess / falloff) ** 2)).astype(np.uint8)
