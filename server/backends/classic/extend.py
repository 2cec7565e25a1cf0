"""Extend a shot by frames that carry on its motion: the camera move, plus what moves within it.

Each new frame is the shot's last frame, moved once by the extrapolated motion (never re-warped).
How far the motion carries on is decided by a hindcast: the same extrapolation is run from the
shot's own frames before its last HINDCAST ones, whose truth is known, at a few decay rates and
against simply holding the frame; the extension uses whichever of those did best there. When
holding wins, the extension holds (and says so: the take is flagged); a motion that fades is
used when a constant one overshoots. Picture the move uncovers is filled by a soft smear of the
edge, never a mirror image.

On a locked-off shot a third kind of candidate is tried: layers. The set behind the subjects is
the per-pixel median of the shot's last frames (a clean plate, since walkers pass and do not
stay); each subject (what differs from the plate in the last frame, as connected pieces) moves
whole at its own median velocity, and where it stood the plate shows. Walkers keep walking
instead of being smeared or frozen, and nothing tears.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import cv2
import numpy as np

from . import motion

HISTORY = 5             # frame steps the camera move is averaged over
LOCAL_FADE = 0.85       # per new frame, how much of the subject's own motion carries on
HINDCAST = 8            # the shot's last frames an extrapolation is tried on first (their truth is known)
# per new frame, how much of the motion carries on (1: constant); holding is always a candidate
DECAYS = (1.0, 0.9, 0.75)
# a motion must beat holding by this share of hold's error on the hindcast to be chosen: the extension
# runs longer than the hindcast, and a marginal early gain was seen to turn into a loss later on
# (bench/bench_real.py: 2 % let two hand-held clips through that then lost to hold)
_MIN_GAIN = 0.05
_STILL_PX = 0.25        # local motion below this is measurement noise, not movement
LAYER_DECAYS = (1.0, 0.9)   # the layered candidates' per-frame decay of the subjects' motion
# the clean plate is the median of at most this many of the shot's last frames: vtest's walkers
# (10 fps) linger too long for 16 (5 % better than holding, against 16 % with 24); the runner holds
# PLATE_FRAMES + HINDCAST frames of the edge (extend_context), whatever the shot's length
PLATE_FRAMES = 24
_PLATE_MIN_FRAMES = 8   # fewer, and a subject that stands still half the time stays in the plate
_SUBJECT_LEVELS = 20    # grey levels from the plate at which a pixel of the last frame is a subject
_LOCKED_OFF_PX = 0.3    # mean corner motion per frame (px) under which the camera counts as still
_MATCH_TOLERANCE = 2    # grey levels by which following the flow must match better to count


@dataclasses.dataclass(frozen=True)
class Continuation:
    """What the last frame does next: its per-frame camera step and its subjects' velocity.

    `step` maps the last frame's pixels one frame on; `velocity` (H, W, 2) is the motion left
    over after the camera's, in px per frame at the last frame's pixels, and `moving` (H, W)
    where it is not zero; `trust` (0..1) is how much of the measured motion survived the
    reliability damping.
    """

    step: np.ndarray
    velocity: np.ndarray
    moving: np.ndarray
    trust: float


def new_frames(frames: np.ndarray, count: int, side: str, report: dict | None = None) -> Iterator[np.ndarray]:
    """Yield `count` new frames in timeline order, after the shot ("tail") or before it ("head").

    A head extension is a tail extension of the shot played backwards; since every new frame
    is made from the edge frame directly, they can be yielded earliest first either way.
    `report` receives the hindcast: each candidate's error, the choice, and a fallback line
    when the extension holds the frame.
    """
    shot = frames[::-1] if side == "head" else frames
    kind, decay = hindcast(shot, report if report is not None else {})
    ks = range(count, 0, -1) if side == "head" else range(1, count + 1)
    if kind == "layers":
        scene = layers(shot)
        for k in ks:
            yield layered_frame(scene, k, decay)
        return
    plan = continuation(shot)
    cap = max(1, len(shot) - 1)
    for k in ks:
        yield shot[-1].copy() if decay == 0 else continue_frame(shot[-1], plan, k, decay, cap)


def hindcast(shot: np.ndarray, report: dict) -> tuple[str, float]:
    """How to extend `shot`: ("hold", 0), ("decay", d) (the last frame moved by the measured
    motion, fading by d per frame) or ("layers", d) (locked-off shots: subjects moved over a
    clean plate), chosen on the shot's own last HINDCAST frames: each candidate continues the
    frames before them, and the one closest to what really came next (mean absolute error)
    wins. Holding wins ties and near-ties: carrying motion on must earn its place. Too short a
    shot for a hindcast is extended with the gentlest decay."""
    if len(shot) < HINDCAST + 3:
        report.update({"hindcast_frames": 0, "chosen": f"decay {DECAYS[-1]}",
                       "why": f"the shot has {len(shot)} frames, too few to test an extrapolation on its own "
                              f"last {HINDCAST}; the motion fades at the gentlest rate"})
        return "decay", DECAYS[-1]
    history, truth = shot[:-HINDCAST], shot[-HINDCAST:].astype(np.float32)
    plan = continuation(history)
    cap = max(1, len(history) - 1)
    errors = {"hold": float(np.mean(np.abs(truth - history[-1].astype(np.float32))))}
    for decay in DECAYS:
        made = np.stack([continue_frame(history[-1], plan, k, decay, cap) for k in range(1, HINDCAST + 1)])
        errors[f"decay {decay}"] = float(np.mean(np.abs(truth - made.astype(np.float32))))
    scene = layers(history)
    if scene is not None:
        for decay in LAYER_DECAYS:
            made = np.stack([layered_frame(scene, k, decay) for k in range(1, HINDCAST + 1)])
            errors[f"layers {decay}"] = float(np.mean(np.abs(truth - made.astype(np.float32))))
    best = min(errors, key=errors.get)
    if best != "hold" and errors[best] > errors["hold"] * (1.0 - _MIN_GAIN):
        best = "hold"
    report.update({"hindcast_frames": HINDCAST, "errors_mae": {k: round(v, 3) for k, v in errors.items()},
                   "chosen": best})
    if best == "hold":
        report["fallback"] = (f"extend held the last frame: tried on the shot's own last {HINDCAST} frames, "
                              f"carrying its motion on did not beat holding by the {_MIN_GAIN:.0%} it must "
                              f"(mean error {min(v for k, v in errors.items() if k != 'hold'):.2f} against "
                              f"{errors['hold']:.2f} for holding); check the take, or extend with a model")
        return "hold", 0.0
    kind, decay = best.split()
    return kind, float(decay)


@dataclasses.dataclass(frozen=True)
class Layers:
    """A locked-off shot as a clean plate and the subjects in front of it.

    `base` is the last frame with the plate shown where subjects stood; each piece is a
    subject's pixels in the last frame (rows, columns, values) and its velocity in px per frame.
    """

    base: np.ndarray
    pieces: tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]


def layers(shot: np.ndarray) -> "Layers | None":
    """The shot's end as plate + subjects, or None when the camera moves (a median of moving
    frames is no plate) or the shot is too short for a median to clear its subjects."""
    recent = shot[-PLATE_FRAMES:]
    if len(recent) < _PLATE_MIN_FRAMES or not _locked_off(shot):
        return None
    plate = np.median(recent, axis=0).astype(shot.dtype)
    last = shot[-1]
    h, w = last.shape[:2]
    size = max(3, w // 130) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    subject = (motion.disagreement(last, plate) > _SUBJECT_LEVELS).astype(np.uint8)
    subject = cv2.morphologyEx(cv2.morphologyEx(subject, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(subject)
    back = motion.dense_flow(last, shot[-2])          # last(x) ≈ previous(x + back(x))
    smallest = max(30, h * w // 10000)
    pieces = []
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_AREA] < smallest:
            continue
        ys, xs = np.nonzero(labels == label)
        velocity = -np.median(back[ys, xs], axis=0)
        pieces.append((ys, xs, last[ys, xs], velocity.astype(np.float32)))
    stood = cv2.dilate(subject, kernel) > 0
    return Layers(np.where(stood[..., None], plate, last), tuple(pieces))


def layered_frame(scene: Layers, k: int, decay: float) -> np.ndarray:
    """The k-th new frame: the base, each subject moved whole by its velocity (fading by
    `decay` per frame), pasted at whole pixels (no resampling blur)."""
    travelled = float(k) if decay >= 1.0 else decay_sum(decay, k)
    out = scene.base.copy()
    h, w = out.shape[:2]
    for ys, xs, values, velocity in scene.pieces:
        to_x = np.rint(xs + travelled * velocity[0]).astype(np.int64)
        to_y = np.rint(ys + travelled * velocity[1]).astype(np.int64)
        inside = (to_x >= 0) & (to_x < w) & (to_y >= 0) & (to_y < h)
        out[to_y[inside], to_x[inside]] = values[inside]
    return out


def _locked_off(shot: np.ndarray) -> bool:
    """Whether the camera stood still over the shot's last HISTORY frames: the corners move
    less than _LOCKED_OFF_PX a frame, measured on points enough of which agree."""
    first = shot[-min(len(shot), HISTORY + 1)]
    found = motion.camera_motion(first, shot[-1])
    if found.inlier_ratio < 0.3:
        return False
    h, w = shot.shape[1:3]
    corners = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    moved = cv2.perspectiveTransform(corners[None], found.homography)[0]
    steps = min(len(shot), HISTORY + 1) - 1
    return float(np.linalg.norm(moved - corners, axis=1).mean()) < _LOCKED_OFF_PX * max(1, steps)


def continuation(shot: np.ndarray) -> Continuation:
    """Measure how the end of the shot moves, damped toward a held frame where unsure.

    The camera step is the entry-wise median of the last HISTORY steps (robust to one bad
    pair). Trust falls when few tracked points fit the model or they fit it loosely; the
    step is then scaled toward no motion, so a doubtful estimate becomes a held frame
    rather than a wild move.
    """
    h, w = shot.shape[1:3]
    if len(shot) < 2:
        return Continuation(np.eye(3), np.zeros((h, w, 2), np.float32), np.zeros((h, w), bool), 0.0)
    recent = shot[-(HISTORY + 1):]
    steps = [motion.camera_motion(a, b) for a, b in zip(recent[:-1], recent[1:])]
    step = np.median(np.stack([s.homography for s in steps]), axis=0)
    trust = _trust(steps, w)
    step = motion.toward_identity(step, trust, (h, w))

    # Subjects' own motion: what the last pair still disagrees on once the camera is undone.
    previous = motion.warp(shot[-2], steps[-1].homography, border=cv2.BORDER_REPLICATE)
    velocity = subject_velocity(shot[-1], previous) * np.float32(trust)
    return Continuation(step, velocity, velocity.any(axis=2), trust)


def subject_velocity(last: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """(H, W, 2) px per frame of what moved on its own from `previous` (camera undone) to `last`.

    Dense flow bleeds from a moving subject into the still set around it, which would bend
    the set's lines; flow is kept only where following it explains `last` clearly better
    than standing still does, and the kept pixels are then grown into whole regions.
    """
    flow = motion.dense_flow(last, previous)      # last(x) ≈ previous(x + flow(x))
    followed = motion.disagreement(last, motion.pull_along_flow(previous, flow)).astype(np.int16)
    still = motion.disagreement(last, previous).astype(np.int16)
    kept = (followed + _MATCH_TOLERANCE < still) & (np.linalg.norm(flow, axis=2) >= _STILL_PX)
    return _as_regions(-flow, kept)


def _as_regions(velocity: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The kept velocities as whole moving regions: specks dropped, pinholes filled, smoothed.

    Subjects move as pieces; a torn velocity field would tear them apart when extrapolated.
    Gaps take the mean of the kept velocities around them (a normalised box filter).
    """
    size = max(3, velocity.shape[1] // 100) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    kept8 = kept.astype(np.uint8)
    region = cv2.morphologyEx(cv2.morphologyEx(kept8, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    share = cv2.blur(kept8.astype(np.float32), (2 * size + 1,) * 2)
    mean = cv2.blur(np.where(kept[..., None], velocity, 0.0).astype(np.float32), (2 * size + 1,) * 2)
    smooth = mean / np.maximum(share, 1e-3)[..., None]
    return np.where(region[..., None] > 0, smooth, 0.0).astype(np.float32)


def _trust(steps: list[motion.CameraMotion], width: int) -> float:
    """0..1: full when most tracked points fit the camera model tightly, none when few do.

    Ramps: the share of points explained, from 30% (none) to 70% (full); their median
    misfit, from 0.8 (full) to 3 (none) thousandths of the frame width, so the same shot
    is trusted alike at any resolution.
    """
    explained = float(np.median([s.inlier_ratio for s in steps]))
    misfit = 1000.0 * float(np.median([s.residual_px for s in steps])) / width
    return float(np.clip((explained - 0.3) / 0.4, 0.0, 1.0) * np.clip((3.0 - misfit) / 2.2, 0.0, 1.0))


def continue_frame(last: np.ndarray, plan: Continuation, k: int, decay: float = 1.0,
                   cap: float = float("inf")) -> np.ndarray:
    """The k-th frame after `last`: the camera step carried on (each frame `decay` times the one
    before, at most `cap` steps in all: no further than the shot itself moved), subject motion
    fading out at least as fast.

    Where the move brings in picture the shot never showed, the edge is smeared and softened:
    a neutral extension of what is there, never a mirror image (mirrored signs and chairs walk
    into frame) and never hard streaks.
    """
    h, w = last.shape[:2]
    steps = min(cap, float(k) if decay >= 1.0 else decay_sum(decay, k))
    source = cv2.perspectiveTransform(motion.pixel_grid((h, w)).reshape(1, -1, 2),
                                      np.linalg.inv(_camera_after(plan.step, steps, (h, w))))
    source = source.reshape(h, w, 2)
    if plan.moving.any():
        fade = min(LOCAL_FADE, decay)
        travelled = fade * (1.0 - fade ** k) / (1.0 - fade)
        # Nearest, so a subject's edge moves whole rather than half as far as its interior.
        velocity = cv2.remap(arrivals(plan.velocity, plan.moving, travelled), source, None,
                             cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        source -= np.float32(travelled) * velocity
    out = cv2.remap(last, source, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    outside = (source[..., 0] < 0) | (source[..., 0] > w - 1) | (source[..., 1] < 0) | (source[..., 1] > h - 1)
    if outside.any():
        soft = cv2.GaussianBlur(out, (0, 0), max(2.0, 0.015 * max(h, w)))
        out[outside] = soft[outside]
    return out


def decay_sum(decay: float, k: int) -> float:
    """Steps travelled after k frames when each frame moves `decay` times the one before."""
    return (1.0 - decay ** k) / (1.0 - decay)


def _camera_after(step: np.ndarray, steps: float, size: tuple[int, int]) -> np.ndarray:
    """The camera step applied `steps` times (a fraction allowed): whole powers, and between
    two of them the frame's corners moved part of the way."""
    whole = int(np.floor(steps))
    below = np.linalg.matrix_power(step, whole)
    part = steps - whole
    if part < 1e-6:
        return below
    return motion.toward_identity(step, part, size) @ below


def arrivals(velocity: np.ndarray, moving: np.ndarray, travelled: float) -> np.ndarray:
    """Velocity field indexed by where things end up after moving `travelled` frames' worth.

    Drawing a frame looks up, for each pixel, where its content came from, so it needs the
    velocity of whatever arrives there, not of what was there before. Moving pixels are
    splatted (3x3, no cracks) to their destination. A pixel a subject left with nothing
    arriving shows the set from behind the subject: its own velocity, lengthened until the
    look-up falls off the moving region (a stretched trail, not a second copy of the subject).
    """
    h, w = velocity.shape[:2]
    ys, xs = np.nonzero(moving)
    carried = velocity[ys, xs]
    to_x = np.rint(xs + travelled * carried[:, 0]).astype(np.int64)
    to_y = np.rint(ys + travelled * carried[:, 1]).astype(np.int64)
    arrived = velocity.copy()
    for reach in (4.0, 3.0, 2.0, 1.0):     # the shortest reach that clears the subject wins
        from_x = np.clip(np.rint(xs - reach * travelled * carried[:, 0]).astype(np.int64), 0, w - 1)
        from_y = np.clip(np.rint(ys - reach * travelled * carried[:, 1]).astype(np.int64), 0, h - 1)
        clear = ~moving[from_y, from_x]
        arrived[ys[clear], xs[clear]] = reach * carried[clear]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            x, y = to_x + dx, to_y + dy
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            arrived[y[inside], x[inside]] = carried[inside]
    return arrived
