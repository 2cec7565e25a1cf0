"""Object removal: fill each frame's masked region with the set as other frames saw it.

Camera motion is compensated so a panning shot can borrow from far frames; what no frame saw is painted in.
"""
from __future__ import annotations

import threading
from typing import Iterator

import cv2
import numpy as np

from ..base import Cancelled
from . import motion

FRINGE_PX = 3          # also distrust this much around a donor's mask: roto edges miss soft fringes
_SPATIAL_RADIUS = 5    # cv2.inpaint neighbourhood for pixels no frame ever saw
# A donor is checked on a ring of known pixels around the hole before it gives anything: there
# it must show what the frame shows. Its mean level offset there is taken off what it gives
# (auto-exposure, flicker), and a donor whose aligned ring still differs by more than
# RING_TOLERANCE x the best donor's (+ RING_SLACK levels), or by more than RING_LIMIT levels,
# is not used (misaligned, or something else passed there).
RING_PX = 8
RING_TOLERANCE = 3.0
RING_SLACK = 3.0
RING_LIMIT = 40.0


# Donors are looked for within a window of frames around the one being filled: the nearest
# frames are the likeliest to show the set (least lighting drift, least perspective change), and
# the window is what bounds memory. Its radius is what fits WINDOW_BYTES of frames and masks,
# at most MAX_DONOR_RADIUS (2 s at 24 fps: a mask that has not moved off the set within 2 s is
# painted, not borrowed), at least MIN_DONOR_RADIUS. UHD 16-bit frames get ~8, HD ~48.
WINDOW_BYTES = 1 << 30
MAX_DONOR_RADIUS = 48
MIN_DONOR_RADIUS = 4


def donor_radius(shape: tuple[int, ...], dtype) -> int:
    h, w = shape[:2]
    per_frame = h * w * 3 * np.dtype(dtype).itemsize + 2 * h * w   # the frame, its mask and distrust
    return int(np.clip(WINDOW_BYTES // (2 * per_frame), MIN_DONOR_RADIUS, MAX_DONOR_RADIUS))


def filled_frames(frames: np.ndarray, masks: np.ndarray,
                  cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """Yield each frame with its masked pixels (True) replaced; unmasked pixels are untouched.

    For a frame t, the other frames are tried nearest first; a donor s gives the pixels of the
    hole that its camera-compensated view shows inside its own frame and outside its own mask.
    Whatever is left after all donors is filled spatially (Telea).
    """
    return filled_stream(iter(frames), iter(masks), cancel)


def filled_stream(frames: Iterator[np.ndarray], masks: Iterator[np.ndarray],
                  cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """filled_frames over iterators, holding only the donor window around the frame being filled."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * FRINGE_PX + 1,) * 2)
    window: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}   # index -> frame, mask, distrusted
    to_first: list[np.ndarray] = []   # homographies taking each frame's pixels to frame 0 (3x3 each)
    read, ended, t, radius = 0, False, 0, None
    while True:
        while not ended and (radius is None or read <= t + radius):
            frame = next(frames, None)
            if frame is None:
                ended = True
                break
            mask = np.asarray(next(masks), bool)
            if radius is None:
                radius = donor_radius(frame.shape, frame.dtype)
            window[read] = (frame, mask, cv2.dilate(mask.astype(np.uint8), kernel) > 0)
            to_first.append(np.eye(3) if read == 0 else _chained(window, read, to_first[-1], cancel))
            read += 1
        if t >= read:
            return
        yield _filled(t, window, to_first, radius)
        window.pop(t - radius, None)
        t += 1


def _chained(window: dict, i: int, previous: np.ndarray, cancel: threading.Event | None) -> np.ndarray:
    """Frame i's homography to frame 0, from frame i-1's and the camera motion between them
    (only consecutive frames are matched: they overlap most; masked regions do not vote)."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    (a, _, distrust_a), (b, _, distrust_b) = window[i - 1], window[i]
    return previous @ np.linalg.inv(motion.camera_motion(a, b, distrust_a, distrust_b).homography)


def _filled(t: int, window: dict, to_first: list[np.ndarray], radius: int) -> np.ndarray:
    frame, mask, _ = window[t]
    hole = mask.copy()
    if not hole.any():
        return frame.copy()
    filled = frame.copy()
    from_first = np.linalg.inv(to_first[t])
    h, w = mask.shape
    ring_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING_PX + 1,) * 2)
    known_ring = (cv2.dilate(mask.astype(np.uint8), ring_kernel) > 0) & ~mask
    best = None
    top = float(np.iinfo(frame.dtype).max)
    per_level = top / 255.0
    for offset in sorted(range(-radius, radius + 1), key=lambda o: (abs(o), o))[1:]:
        s = t + offset
        if s not in window:
            continue
        donor, _, distrusted = window[s]
        x0, y0, x1, y1 = _bounds(hole)
        x0, y0, x1, y1 = max(0, x0 - RING_PX), max(0, y0 - RING_PX), min(w, x1 + RING_PX), min(h, y1 + RING_PX)
        # The donor is warped only over what is still missing (and its ring), in that box's coordinates.
        into_box = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
        s_to_box = into_box @ from_first @ to_first[s]
        box = (x1 - x0, y1 - y0)
        pixels = cv2.warpPerspective(donor, s_to_box, box, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        # A donor pixel counts only if it lands inside the donor, away from its mask.
        usable = cv2.warpPerspective((~distrusted).astype(np.uint8) * 255, s_to_box, box,
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) == 255
        take = hole[y0:y1, x0:x1] & usable
        if not take.any():
            continue
        ring = known_ring[y0:y1, x0:x1] & usable
        if ring.sum() >= 16:
            seen, given = frame[y0:y1, x0:x1][ring].astype(np.float32), pixels[ring].astype(np.float32)
            shift = np.median(seen - given, axis=0)                        # per channel
            error = float(np.abs(seen - given - shift).mean()) / per_level   # in 8-bit levels
            if error > RING_LIMIT or (best is not None and error > RING_TOLERANCE * best + RING_SLACK):
                continue
            best = error if best is None else min(best, error)
            pixels = np.clip(pixels.astype(np.float32) + shift, 0, top).astype(frame.dtype)
        filled[y0:y1, x0:x1][take] = pixels[take]
        hole[y0:y1, x0:x1] &= ~take
        if not hole.any():
            break
    if hole.any():
        filled[hole] = _painted(filled, hole)[hole]
    return filled


def _painted(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Telea's fill of `hole`; deep frames channel by channel (Telea takes 16-bit only as one
    channel), so the fill keeps the frame's depth."""
    hole8 = hole.astype(np.uint8)
    if frame.dtype == np.uint8:
        return cv2.inpaint(frame, hole8, _SPATIAL_RADIUS, cv2.INPAINT_TELEA)
    return np.dstack([cv2.inpaint(np.ascontiguousarray(frame[..., c]), hole8, _SPATIAL_RADIUS, cv2.INPAINT_TELEA)
                      for c in range(frame.shape[2])])


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (exclusive) of the True pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
