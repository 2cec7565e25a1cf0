"""Generate on the CPU, with no model: an animatic, honest about what it is.

- From a storyboard still (IMAGE): a camera move over the board, eased in and out (smoothstep),
  at the shot's size and rate, resampled bicubically at sub-pixel positions. A push-in starts on
  the board exactly and ends `amount` closer (1.15x for 0.15); a pull-out is its reverse; a pan or
  tilt travels `amount` of the picture over a board enlarged by as much, so no edge shows.
- From two keyframes (KEYFRAMES: the outgoing shot's last frame and the incoming shot's first):
  a motion-compensated morph. Dense optical flow both ways (DIS), each intermediate frame drawn
  from both keyframes warped along it and blended by time, rather than a cross-dissolve, which
  shows two pictures at half strength instead of one picture in between.
- From text only (TEXT): a slate card stating prompt, shot, length and take, with a running
  frame counter, so it is never taken for footage.
"""
from __future__ import annotations

import math
import textwrap
import threading
from typing import Iterator

import cv2
import numpy as np

from ..base import Cancelled

MOVES = ("static", "push_in", "pull_out", "pan_left", "pan_right", "tilt_up", "tilt_down")
DEFAULT_AMOUNT = 0.15
AGREEMENT = 40.0      # levels: two warped keyframes this far apart are trusted e^-1 as much as agreeing ones


def eased(t: float) -> float:
    """Smoothstep: starts and ends at rest, fastest in the middle."""
    t = min(max(t, 0.0), 1.0)
    return t * t * (3 - 2 * t)


def camera_geometry(move: str, amount: float, t: float, width: int, height: int) -> tuple[float, float, float]:
    """(scale, dx, dy) of the view at time t (0..1): the output pixel (x, y) shows the board at
    ((x - cx - dx) / scale + cx, (y - cy - dy) / scale + cy), board pixels at the shot's size (dx,
    dy: where the board's centre is drawn, in output pixels from the frame's centre)."""
    e = eased(t)
    if move == "push_in":
        return 1 + amount * e, 0.0, 0.0
    if move == "pull_out":
        return 1 + amount * (1 - e), 0.0, 0.0
    if move in ("pan_left", "pan_right", "tilt_up", "tilt_down"):
        # the view is enlarged by (1 + amount) and travels amount of the picture: never off the board
        scale = 1 + amount
        travel = (e - 0.5) * amount               # in pictures, on screen
        shift_x = travel * width if move in ("pan_left", "pan_right") else 0.0
        shift_y = travel * height if move in ("tilt_up", "tilt_down") else 0.0
        # the camera turning right shows what is right of the board's centre: the board moves left
        sign = {"pan_right": -1, "pan_left": 1, "tilt_down": -1, "tilt_up": 1}[move]
        return scale, sign * shift_x, sign * shift_y
    return 1.0, 0.0, 0.0


def camera_move(board: np.ndarray, count: int, move: str, amount: float,
                cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """`count` frames of a camera move over `board` (H, W, 3), at the board's size."""
    if move not in MOVES:
        raise ValueError(f"camera move {move!r} is not one of {', '.join(MOVES)}")
    height, width = board.shape[:2]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    for i in range(count):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        t = i / (count - 1) if count > 1 else 0.0
        scale, dx, dy = camera_geometry(move, amount, t, width, height)
        if scale == 1 and dx == 0 and dy == 0:
            yield board.copy()
            continue
        # output (x, y) <- board ((x - cx) / scale + cx - dx / scale, ...): an inverse affine map
        inverse = np.array([[1 / scale, 0, cx - cx / scale - dx / scale],
                            [0, 1 / scale, cy - cy / scale - dy / scale]], np.float64)
        yield cv2.warpAffine(board, inverse, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT101)


def morph(first: np.ndarray, last: np.ndarray, count: int, cancel: threading.Event | None = None
          ) -> Iterator[np.ndarray]:
    """`count` frames from `first` to `last` (both included), motion-compensated: flow both ways,
    intermediate flows approximated from them (quadratic in t), both keyframes warped to time t
    and blended with weights by time and by where each could be seen."""
    if count == 1:
        yield first.copy()
        return
    forward, backward = _flows(first, last)
    height, width = first.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    for i in range(count):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        t = i / (count - 1)
        if i == 0:
            yield first.copy()
            continue
        if i == count - 1:
            yield last.copy()
            continue
        # flows from the frame at t back to each keyframe (linear motion approximation)
        to_first = -(1 - t) * t * forward + t * t * backward
        to_last = (1 - t) * (1 - t) * forward - t * (1 - t) * backward
        from_first = cv2.remap(first, grid_x + to_first[..., 0], grid_y + to_first[..., 1], cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
        from_last = cv2.remap(last, grid_x + to_last[..., 0], grid_y + to_last[..., 1], cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REPLICATE)
        # where a warp lands outside its keyframe, trust the other one
        seen_first = _inside(grid_x + to_first[..., 0], grid_y + to_first[..., 1], width, height)
        seen_last = _inside(grid_x + to_last[..., 0], grid_y + to_last[..., 1], width, height)
        weight_first = (1 - t) * seen_first
        weight_last = t * seen_last
        total = weight_first + weight_last
        weight = np.where(total > 0, weight_first / np.maximum(total, 1e-6), 1 - t)[..., None]
        warped = weight * from_first.astype(np.float32) + (1 - weight) * from_last.astype(np.float32)
        # where the two warps disagree the flow is wrong (fast motion, occlusion): fall back there
        # towards the plain blend, which is never far off (on real footage: bikes, 8 frames apart,
        # 55.8 levels from the truth with the warps alone, 48.9 so, 47.9 the blend)
        agree = np.exp(-(np.abs(from_first.astype(np.float32) - from_last).mean(axis=2) / AGREEMENT) ** 2)[..., None]
        plain = (1 - t) * first.astype(np.float32) + t * last.astype(np.float32)
        yield np.clip(agree * warped + (1 - agree) * plain + 0.5, 0, 255).astype(np.uint8)


def cross_dissolve(first: np.ndarray, last: np.ndarray, count: int) -> Iterator[np.ndarray]:
    """The naive baseline: both keyframes at strengths by time."""
    for i in range(count):
        t = i / (count - 1) if count > 1 else 0.0
        yield np.clip((1 - t) * first.astype(np.float32) + t * last.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


def _flows(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense flow first -> last and last -> first (DIS, medium preset), on grey frames at most
    960 pixels wide, scaled back to the frames' size."""
    height, width = first.shape[:2]
    factor = min(1.0, 960 / width)
    small = (max(8, round(width * factor)), max(8, round(height * factor)))
    grey = [cv2.cvtColor(cv2.resize(f, small, interpolation=cv2.INTER_AREA) if factor < 1 else f, cv2.COLOR_RGB2GRAY)
            for f in (first, last)]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flows = []
    for a, b in ((grey[0], grey[1]), (grey[1], grey[0])):
        flow = dis.calc(a, b, None)
        if factor < 1:
            flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) / factor
        flows.append(flow.astype(np.float32))
    return flows[0], flows[1]


def _inside(x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    return ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).astype(np.float32)


def slate(count: int, width: int, height: int, lines: dict, cancel: threading.Event | None = None
          ) -> Iterator[np.ndarray]:
    """A slate card: what the shot should be, as text, with a frame counter (so it plays as a
    shot, and never passes for footage)."""
    base = np.full((height, width, 3), (28, 30, 36), np.uint8)
    scale = max(0.4, height / 720)
    thick = max(1, round(2 * scale))
    y = round(70 * scale)
    cv2.putText(base, "PRE-VIS SLATE (no footage, no model)", (round(40 * scale), y), cv2.FONT_HERSHEY_SIMPLEX,
                0.9 * scale, (90, 200, 255), thick, cv2.LINE_AA)
    y += round(30 * scale)
    wrap = max(20, int(width / (17 * scale)))
    for key, value in lines.items():
        text = f"{key}: {value}" if value else key
        for part in textwrap.wrap(text, wrap)[:4] or [""]:
            y += round(40 * scale)
            if y > height - round(80 * scale):
                break
            cv2.putText(base, part, (round(40 * scale), y), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (235, 235, 235),
                        thick, cv2.LINE_AA)
    for i in range(count):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        frame = base.copy()
        cv2.putText(frame, f"frame {i + 1} / {count}", (round(40 * scale), height - round(40 * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (235, 235, 235), thick, cv2.LINE_AA)
        # a bar that runs the shot's length: the slate moves, as a shot does
        bar = round((width - 80 * scale) * (i + 1) / count)
        cv2.rectangle(frame, (round(40 * scale), height - round(25 * scale)),
                      (round(40 * scale) + bar, height - round(18 * scale)), (90, 200, 255), -1)
        yield frame


def burn_in(frame: np.ndarray, text: str) -> np.ndarray:
    """Mark a frame as pre-vis: a dark band at the bottom with `text`."""
    out = frame.copy()
    height, width = out.shape[:2]
    band = max(14, round(height * 0.06))
    region = out[height - band:]
    region[:] = (region.astype(np.uint16) * 2 // 5).astype(out.dtype) if out.dtype == np.uint8 else region // 3
    scale = band / 40
    cv2.putText(out, text, (max(4, round(band * 0.3)), height - round(band * 0.3)), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (255, 255, 255) if out.dtype == np.uint8 else (65535,) * 3, max(1, round(scale * 2)),
                cv2.LINE_AA)
    return out


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A board or keyframe at the shot's size: scaled to cover it and centre-cropped (aspect kept)."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    factor = max(width / w, height / h)
    size = (max(width, math.ceil(w * factor)), max(height, math.ceil(h * factor)))
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    x, y = (size[0] - width) // 2, (size[1] - height) // 2
    return np.ascontiguousarray(scaled[y:y + height, x:x + width])
