"""Extend a shot by frames that carry on its motion: the camera move, plus what moves within it.

Each new frame is the shot's last frame, moved once by the extrapolated motion (never re-warped).
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import cv2
import numpy as np

from . import motion

HISTORY = 5             # frame steps the camera move is averaged over
LOCAL_FADE = 0.85       # per new frame, how much of the subject's own motion carries on
_STILL_PX = 0.25        # local motion below this is measurement noise, not movement


@dataclasses.dataclass(frozen=True)
class Continuation:
    """What the last frame does next: its per-frame camera step and its subjects' velocity.

    `step` maps the last frame's pixels one frame on; `velocity` (H, W, 2) is the motion left
    over after the camera's, in px per frame at the last frame's pixels; `trust` (0..1) is how
    much of the measured motion survived the reliability damping.
    """

    step: np.ndarray
    velocity: np.ndarray
    trust: float


def extend(frames: np.ndarray, count: int, side: str) -> Iterator[np.ndarray]:
    """Yield `count` new frames in timeline order, after the shot ("tail") or before it ("head").

    A head extension is a tail extension of the shot played backwards; since every new frame
    is made from the edge frame directly, they can be yielded earliest first either way.
    """
    shot = frames[::-1] if side == "head" else frames
    plan = continuation(shot)
    for k in (range(count, 0, -1) if side == "head" else range(1, count + 1)):
        yield continue_frame(shot[-1], plan, k)


def continuation(shot: np.ndarray) -> Continuation:
    """Measure how the end of the shot moves, damped toward a held frame where unsure.

    The camera step is the entry-wise median of the last HISTORY steps (robust to one bad
    pair). Trust falls when few tracked points fit the model or they fit it loosely; the
    step is then scaled toward no motion, so a doubtful estimate becomes a held frame
    rather than a wild move.
    """
    h, w = shot.shape[1:3]
    if len(shot) < 2:
        return Continuation(np.eye(3), np.zeros((h, w, 2), np.float32), 0.0)
    recent = shot[-(HISTORY + 1):]
    steps = [motion.camera_motion(a, b) for a, b in zip(recent[:-1], recent[1:])]
    step = np.median(np.stack([s.homography for s in steps]), axis=0)
    fit = float(np.median([s.inlier_ratio for s in steps]))
    misfit = float(np.median([s.residual_px for s in steps]))
    trust = float(np.clip((fit - 0.3) / 0.4, 0.0, 1.0) * np.clip((2.0 - misfit) / 1.5, 0.0, 1.0))
    step = motion.toward_identity(step, trust, (h, w))

    # Subjects' own motion: what the last pair still disagrees on once the camera is undone.
    previous = motion.warp(shot[-2], steps[-1].homography, border=cv2.BORDER_REPLICATE)
    velocity = -motion.dense_flow(shot[-1], previous) * np.float32(trust)
    velocity[np.linalg.norm(velocity, axis=2) < _STILL_PX] = 0.0
    return Continuation(step, velocity, trust)


def continue_frame(last: np.ndarray, plan: Continuation, k: int) -> np.ndarray:
    """The k-th frame after `last`: camera step applied k times, subject motion fading out.

    Where the move brings in picture the shot never showed, the frame is mirrored at its
    edge rather than its edge pixels smeared: a mirror keeps the set's grain and texture,
    where replication draws streaks that read as an error on any textured background.
    """
    h, w = last.shape[:2]
    back = np.linalg.inv(np.linalg.matrix_power(plan.step, k))
    source = cv2.perspectiveTransform(motion.pixel_grid((h, w)).reshape(1, -1, 2), back)
    source = source.reshape(h, w, 2)
    if plan.velocity.any():
        travelled = LOCAL_FADE * (1.0 - LOCAL_FADE ** k) / (1.0 - LOCAL_FADE)
        velocity = cv2.remap(plan.velocity, source, None, cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        source -= np.float32(travelled) * velocity
    return cv2.remap(last, source, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
