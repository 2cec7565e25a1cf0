"""Object removal: fill each frame's masked region with the set as other frames saw it.

For each hole pixel the nearest frames that saw the set there give their values (camera motion
compensated, so a panning shot borrows from far frames), each donor checked on a ring of known
pixels around the hole, level-matched there and refused when it fits worse than painting would;
the median of up to three donors is taken where they agree. What no donor gave is painted: a
weighted mean of Navier-Stokes propagation and frequency-selective reconstruction, painted once and
reused while the hole and its surroundings hold still. Real-footage figures against per-frame
Telea and FSR: bench/bench_real.py, docs/quality.md.
"""
from __future__ import annotations

import functools
import logging
import threading
from typing import Iterator

import cv2
import numpy as np

from ..base import Cancelled
from server.media.pixels import eight_bit

from . import motion

_log = logging.getLogger(__name__)

FRINGE_PX = 3          # also distrust this much around a donor's mask: roto edges miss soft fringes
TEXTURE_WEIGHT = 0.6   # of FSR's fill in the painted mean (0.4 Navier-Stokes)
_SPATIAL_RADIUS = 5    # cv2.inpaint (Navier-Stokes) neighbourhood for pixels no frame ever saw
# A donor is checked on a ring of known pixels around the hole before it gives anything: there
# it must show what the frame shows. Its mean level offset there is taken off what it gives
# (auto-exposure, flicker), and a donor whose aligned ring still differs by more than
# RING_TOLERANCE x the best donor's (+ RING_SLACK levels), or by more than RING_LIMIT levels,
# is not used (misaligned, or something else passed there).
RING_PX = 8
RING_TOLERANCE = 3.0
RING_SLACK = 3.0
RING_LIMIT = 40.0
_RING_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING_PX + 1,) * 2)
# Each hole pixel takes the median of its DONORS_PER_PIXEL nearest donors that see it; where
# their values spread by more than AGREE_LEVELS (8-bit levels) something moved there and the
# pixel is painted instead.
DONORS_PER_PIXEL = 3
AGREE_LEVELS = 24.0
# A donor must also fit the ring within PAINT_RATIO x what painting the ring in from outside
# misses there (_painted_ring_error): a car passing the hole in this frame but not in the
# donors' makes every donor's ring fit worse than a plain fill's, and the hole is painted.
PAINT_RATIO = 0.75
# What no donor gave is painted once and the paint reused (level-matched) while the hole is the
# same and the ring around it differs from when it was painted by at most REPAINT_LEVELS.
REPAINT_LEVELS = 3.0
# A donor is also tried where it stands, unmoved: chained camera motion on a static shot follows
# whatever moves most (a hand-held box, a face) and drifts tens of pixels. Standing still is
# taken when its ring error x STILL_MARGIN + STILL_SLACK levels is under the chained motion's.
STILL_MARGIN = 1.25
STILL_SLACK = 0.5


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

    For a frame t, the other frames are tried nearest first; a donor s offers the pixels of the
    hole that its camera-compensated view shows inside its own frame and outside its own mask,
    and up to DONORS_PER_PIXEL offers per pixel are kept and reconciled (median where they
    agree). Whatever is left is painted (_painted, reused by _repainted).
    """
    return filled_stream(iter(frames), iter(masks), cancel)


def filled_stream(frames: Iterator[np.ndarray], masks: Iterator[np.ndarray],
                  cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """filled_frames over iterators, holding only the donor window around the frame being filled."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * FRINGE_PX + 1,) * 2)
    window: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}   # index -> frame, mask, distrusted
    to_first: list[np.ndarray] = []   # homographies taking each frame's pixels to frame 0 (3x3 each)
    read, ended, t, radius = 0, False, 0, None
    painted: dict = {}   # the last paint of what no donor gave, for _repainted
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
        yield _filled(t, window, to_first, radius, painted)
        window.pop(t - radius, None)
        t += 1


def _chained(window: dict, i: int, previous: np.ndarray, cancel: threading.Event | None) -> np.ndarray:
    """Frame i's homography to frame 0, from frame i-1's and the camera motion between them
    (only consecutive frames are matched: they overlap most; masked regions do not vote)."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    (a, _, distrust_a), (b, _, distrust_b) = window[i - 1], window[i]
    return previous @ np.linalg.inv(motion.camera_motion(a, b, distrust_a, distrust_b).homography)


def _filled(t: int, window: dict, to_first: list[np.ndarray], radius: int, painted: dict) -> np.ndarray:
    frame, mask, _ = window[t]
    if not mask.any():
        return frame.copy()
    from_first = np.linalg.inv(to_first[t])
    h, w = mask.shape
    known_ring = _ring_around(mask)
    x0, y0, x1, y1 = _bounds(mask)
    x0, y0, x1, y1 = max(0, x0 - RING_PX), max(0, y0 - RING_PX), min(w, x1 + RING_PX), min(h, y1 + RING_PX)
    # Donors are warped only over the hole and its ring, in that box's coordinates.
    into_box = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
    box = (x1 - x0, y1 - y0)
    hole, ring_box, seen_box = mask[y0:y1, x0:x1], known_ring[y0:y1, x0:x1], frame[y0:y1, x0:x1]
    top = float(np.iinfo(frame.dtype).max)
    per_level = top / 255.0
    given = np.zeros((DONORS_PER_PIXEL, *hole.shape, frame.shape[2]), np.float32)   # nearest donors first
    count = np.zeros(hole.shape, np.int32)
    best = None
    bar = _painted_ring_error(frame, mask, known_ring)
    for offset in sorted(range(-radius, radius + 1), key=lambda o: (abs(o), o))[1:]:
        s = t + offset
        if s not in window:
            continue
        donor, _, distrusted = window[s]
        fits = []
        for s_to_t in _alignments(from_first @ to_first[s]):
            s_to_box = into_box @ s_to_t
            pixels = cv2.warpPerspective(donor, s_to_box, box, flags=cv2.INTER_CUBIC,
                                         borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            # A donor pixel counts only if it lands inside the donor, away from its mask.
            usable = cv2.warpPerspective((~distrusted).astype(np.uint8) * 255, s_to_box, box,
                                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) == 255
            ring = ring_box & usable
            if ring.sum() < 16:
                fits.append((np.inf, None, pixels, usable))
                continue
            fits.append((*_level_fit(seen_box[ring], pixels[ring], per_level), pixels, usable))
        # the chained motion unless standing still fits the ring clearly better
        error, shift, pixels, usable = fits[0]
        if len(fits) > 1 and fits[1][0] * STILL_MARGIN + STILL_SLACK < error:
            error, shift, pixels, usable = fits[1]
        take = hole & usable & (count < DONORS_PER_PIXEL)
        if not take.any():
            continue
        if shift is not None:
            worse_than_best = best is not None and error > RING_TOLERANCE * best + RING_SLACK
            if error > PAINT_RATIO * bar or error > RING_LIMIT or worse_than_best:
                continue
            best = error if best is None else min(best, error)
            pixels += shift
        rows, cols = np.nonzero(take)
        given[count[rows, cols], rows, cols] = pixels[rows, cols]
        count[rows, cols] += 1
        if (count[hole] >= DONORS_PER_PIXEL).all():
            break
    filled = frame.copy()
    seen = hole & (count > 0)
    values, spread = _agreed(given, count)
    # Where the donors disagree the set did not stand still there (something passed, parallax):
    # no donor is trusted and the pixel is painted.
    agreed = seen & (spread <= AGREE_LEVELS * per_level)
    filled[y0:y1, x0:x1][agreed] = np.clip(np.rint(values[agreed]), 0, top).astype(frame.dtype)
    left = mask.copy()
    left[y0:y1, x0:x1] &= ~agreed
    if left.any():
        filled[left] = _repainted(filled, left, painted, per_level)
    return filled


def _repainted(frame: np.ndarray, left: np.ndarray, painted: dict, per_level: float) -> np.ndarray:
    """The painted values of `left`'s pixels. The last paint is reused (level-shifted) while
    the hole is the same and the ring around it still shows what it showed then, within
    REPAINT_LEVELS: a fixed logo on a locked-off shot is painted once per still stretch, not
    re-invented (and made to boil) every frame."""
    now = frame[_ring_around(left)].astype(np.float32)
    last = painted.get("left")
    if last is not None and last.shape == left.shape and np.array_equal(last, left):
        error, shift = _level_fit(now, painted["ring"], per_level)
        if error <= REPAINT_LEVELS:
            top = float(np.iinfo(frame.dtype).max)
            return np.clip(np.rint(painted["values"] + shift), 0, top).astype(frame.dtype)
    values = _painted(frame, left)[left]
    painted.update(left=left.copy(), ring=now, values=values.astype(np.float32))
    return values


def _painted_ring_error(frame: np.ndarray, mask: np.ndarray, ring: np.ndarray) -> float:
    """How well painting would do, hindcast: the ring of known pixels around the hole painted in
    from outside (Navier-Stokes, on a crop) and compared with what it shows; mean absolute
    error in 8-bit levels. A donor must fit the ring at least this well to be used."""
    h, w = mask.shape
    x0, y0, x1, y1 = _bounds(mask)
    margin = 2 * RING_PX + _SPATIAL_RADIUS
    x0, y0, x1, y1 = max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin)
    ring = ring[y0:y1, x0:x1]
    if not ring.any():
        return float("inf")
    crop = np.ascontiguousarray(eight_bit(frame[y0:y1, x0:x1]))   # cv2.inpaint takes 16-bit as one channel only
    painted = cv2.inpaint(crop, (mask[y0:y1, x0:x1] | ring).astype(np.uint8), _SPATIAL_RADIUS, cv2.INPAINT_NS)
    return float(np.abs(painted[ring].astype(np.float32) - crop[ring]).mean())


def _level_fit(seen: np.ndarray, given: np.ndarray, per_level: float) -> tuple[float, np.ndarray]:
    """How well `given` pixels match `seen` once their per-channel median offset is taken off:
    (mean absolute misfit in 8-bit levels, the offset to add to `given`)."""
    diff = seen.astype(np.float32) - given
    if not len(diff):      # no pixel to compare (a hole at the frame's edge, a tiny frame): no fit
        return float("inf"), np.zeros(diff.shape[1:], np.float32)
    shift = np.median(diff, axis=0)
    return float(np.abs(diff - shift).mean()) / per_level, shift


def _ring_around(mask: np.ndarray) -> np.ndarray:
    """The known pixels within RING_PX of `mask`."""
    return (cv2.dilate(mask.astype(np.uint8), _RING_KERNEL) > 0) & ~mask


def _agreed(given: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: the donors' median (mean of two, the one where one) and their spread (largest
    minus smallest, mean over channels; 0 where one donor)."""
    values = given[0].copy()
    spread = np.zeros(count.shape, np.float32)
    for n in range(2, DONORS_PER_PIXEL + 1):
        at = count == n
        if not at.any():
            continue
        some = given[:n, at]                       # (n, pixels, channels)
        values[at] = np.median(some, axis=0)
        spread[at] = (some.max(axis=0) - some.min(axis=0)).mean(axis=-1)
    return values, spread


def _alignments(chained: np.ndarray) -> list[np.ndarray]:
    """Where a donor's pixels may land in the frame being filled: the chained camera motion, and
    no motion at all (a static camera whose "motion" followed a moving subject)."""
    if np.abs(chained - np.eye(3)).max() < 1e-6:
        return [chained]
    return [chained, np.eye(3)]


def _painted(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """A spatial fill of `hole` at the frame's depth: a weighted mean (TEXTURE_WEIGHT) of
    Navier-Stokes propagation (smooth where the set is smooth) and frequency-selective
    reconstruction (texture). Their errors are little correlated, so the mean beats either, and
    Telea's, on the real corpus (bench/bench_real.py). FSR is slow (~0.2-1.3 s a frame for a
    logo-sized hole on 2 cores): _repainted paints a still hole once."""
    hole8 = hole.astype(np.uint8)
    if frame.dtype == np.uint8:
        smooth = cv2.inpaint(frame, hole8, _SPATIAL_RADIUS, cv2.INPAINT_NS)
    else:   # cv2.inpaint takes 16-bit pictures only as one channel
        smooth = np.dstack([cv2.inpaint(np.ascontiguousarray(frame[..., c]), hole8, _SPATIAL_RADIUS, cv2.INPAINT_NS)
                            for c in range(frame.shape[2])])
    xphoto = getattr(cv2, "xphoto", None)
    if xphoto is None:   # opencv without its contrib modules: the smooth fill alone
        _warn_once("cv2.xphoto is missing (install opencv-contrib-python-headless): never-seen pixels get "
                     "Navier-Stokes propagation alone")
        return smooth
    texture = np.empty_like(frame)
    xphoto.inpaint(np.ascontiguousarray(frame), (~hole).astype(np.uint8) * 255, texture, xphoto.INPAINT_FSR_FAST)
    mean = smooth.astype(np.float32) * (1.0 - TEXTURE_WEIGHT) + texture.astype(np.float32) * TEXTURE_WEIGHT
    return np.rint(mean).astype(frame.dtype)


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    _log.warning(message)


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (exclusive) of the True pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
