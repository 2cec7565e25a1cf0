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


def filled_frames(frames: np.ndarray, masks: np.ndarray,
                  cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """Yield each frame with its masked pixels (True) replaced; unmasked pixels are untouched.

    For a frame t, the other frames are tried nearest first; a donor s gives the pixels of the
    hole that its camera-compensated view shows inside its own frame and outside its own mask.
    Whatever is left after all donors is filled spatially (Telea).
    """
    n = len(masks)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * FRINGE_PX + 1,) * 2)
    distrusted = np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in masks])
    to_first = _to_first_frame(frames, distrusted, cancel)
    nearest_first = sorted(range(1 - n, n), key=lambda offset: (abs(offset), offset))[1:]

    for t in range(n):
        hole = masks[t].copy()
        if not hole.any():
            yield frames[t].copy()
            continue
        filled = frames[t].copy()
        from_first = np.linalg.inv(to_first[t])
        for offset in nearest_first:
            s = t + offset
            if not 0 <= s < n:
                continue
            x0, y0, x1, y1 = _bounds(hole)
            # The donor is warped only over what is still missing, in that box's coordinates.
            into_box = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
            s_to_box = into_box @ from_first @ to_first[s]
            box = (x1 - x0, y1 - y0)
            pixels = cv2.warpPerspective(frames[s], s_to_box, box, flags=cv2.INTER_CUBIC,
                                         borderMode=cv2.BORDER_REPLICATE)
            # A donor pixel counts only if it lands inside the donor, away from its mask.
            usable = cv2.warpPerspective((~distrusted[s]).astype(np.uint8) * 255, s_to_box, box,
                                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            take = hole[y0:y1, x0:x1] & (usable == 255)
            filled[y0:y1, x0:x1][take] = pixels[take]
            hole[y0:y1, x0:x1] &= ~take
            if not hole.any():
                break
        if hole.any():
            filled[hole] = _painted(filled, hole)[hole]
        yield filled


def _painted(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Telea's fill of `hole`; deep frames channel by channel (Telea takes 16-bit only as one
    channel), so the fill keeps the frame's depth."""
    hole8 = hole.astype(np.uint8)
    if frame.dtype == np.uint8:
        return cv2.inpaint(frame, hole8, _SPATIAL_RADIUS, cv2.INPAINT_TELEA)
    return np.dstack([cv2.inpaint(np.ascontiguousarray(frame[..., c]), hole8, _SPATIAL_RADIUS, cv2.INPAINT_TELEA)
                      for c in range(frame.shape[2])])


def _to_first_frame(frames: np.ndarray, distrusted: np.ndarray,
                    cancel: threading.Event | None) -> list[np.ndarray]:
    """Homographies taking each frame's pixels to frame 0, chained from neighbouring pairs.

    Only consecutive frames are matched (they overlap most); masked regions do not vote.
    """
    chain = [np.eye(3)]
    for i in range(1, len(frames)):
        # this pass runs before the first frame is yielded: honour cancel here too
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        step = motion.camera_motion(frames[i - 1], frames[i], distrusted[i - 1], distrusted[i])
        chain.append(chain[-1] @ np.linalg.inv(step.homography))
    return chain


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (exclusive) of the True pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
