"""Synthetic footage with a known answer: pans, moving objects over clean plates, noisy clips.

Tests and benchmarks measure the backends against these; the demo renders `demo_scene`.
"""
from __future__ import annotations

import cv2
import numpy as np


def textured_background(h: int, w: int, seed: int) -> np.ndarray:
    """An (h, w, 3) uint8 RGB scene: gradient sky, multi-scale noise, shapes, fine grain.

    Rich at every scale so that motion can be measured anywhere, with enough structure
    (edges, flat-ish shapes, gradients) to look like a set in a contact sheet.
    """
    rng = np.random.default_rng(seed)
    size = min(h, w)

    top, bottom = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    scene = np.repeat((top + (bottom - top) * ramp).astype(np.float32), w, axis=1)

    # Coarse blotches down to fine mottling; each octave is random values on a grid,
    # upsampled smoothly, so the texture has no period a tracker could lock onto.
    for cell, amplitude in ((size / 3, 45.0), (size / 12, 25.0), (size / 40, 14.0), (4.0, 8.0)):
        grid = rng.uniform(-1.0, 1.0, (int(h / cell) + 2, int(w / cell) + 2, 3)).astype(np.float32)
        scene += amplitude * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)

    canvas = np.clip(scene, 0, 255).astype(np.uint8)
    for _ in range(max(6, int(h * w / (0.18 * size) ** 2))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        extent = int(rng.uniform(0.02, 0.10) * size) + 2
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.rectangle(canvas, (x, y), (x + 2 * extent, y + extent), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.circle(canvas, (x, y), extent, colour, -1, cv2.LINE_AA)
        else:
            end = (x + int(rng.integers(-4, 5)) * extent, y + int(rng.integers(-4, 5)) * extent)
            cv2.line(canvas, (x, y), end, colour, max(1, extent // 6), cv2.LINE_AA)

    # Grain over the shapes too, so their interiors are not perfectly flat.
    grain = rng.normal(0.0, 6.0, (h, w, 1)).astype(np.float32)
    return np.clip(canvas.astype(np.float32) + grain, 0, 255).astype(np.uint8)


def pan_clip(n: int, h: int, w: int, dx_per_frame: float, dy_per_frame: float = 0.0,
             seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) uint8: a camera moving (dx, dy) px per frame over a textured set.

    The scene slides the opposite way. Frame i depends only on i, never on n, so
    `pan_clip(n + k, ...)[n:]` is the true continuation of `pan_clip(n, ...)`.
    """
    canvas, origin = _set_for(h, w, dx_per_frame, dy_per_frame, seed)
    return _film(canvas, [_camera(origin, i * dx_per_frame, i * dy_per_frame) for i in range(n)],
                 h, w)


def moving_object_clip(n: int, h: int, w: int, seed: int = 0,
                       pan: tuple[float, float] = (0.0, 0.0)
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured disc crossing a (optionally panning) set, for object removal.

    Returns (frames, masks, clean_plate): masks (n, h, w) bool cover the disc, slightly
    dilated as a roto artist would draw them; clean_plate is the same shot without the disc.
    """
    clean_plate = pan_clip(n, h, w, pan[0], pan[1], seed)
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    path = np.stack([w * (0.15 + 0.7 * t), h * (0.5 + 0.15 * np.sin(2.0 * np.pi * t))], axis=1)
    frames, masks = _composite(clean_plate, _disc_sprite(round(0.12 * min(h, w)), seed), path)
    return frames, masks, clean_plate


def with_moving_disc(plate: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Real footage with a textured disc crossing it (the truth behind it is the footage):
    (frames, masks) as moving_object_clip makes them."""
    n, h, w = plate.shape[:3]
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    path = np.stack([w * (0.15 + 0.7 * t), h * (0.5 + 0.15 * np.sin(2.0 * np.pi * t))], axis=1)
    return _composite(plate, _disc_sprite(round(0.12 * min(h, w)), seed), path)


def with_logo(plate: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Real footage with a fixed, opaque station-logo style badge in the upper right corner:
    (frames, masks)."""
    n, h, w = plate.shape[:3]
    bw, bh = max(16, w // 6), max(10, h // 9)
    side = max(bw, bh) + 5   # _composite centres square sprites
    badge = np.zeros((side, side, 4), np.uint8)
    colour = [int(c) for c in np.random.default_rng([seed, 3]).integers(40, 220, 3)]
    cv2.rectangle(badge, (2, 2), (bw + 2, bh + 2), (*colour, 255), -1)
    cv2.putText(badge, "TB", (bw // 5, int(bh * 0.8)), cv2.FONT_HERSHEY_SIMPLEX, bh / 30.0, (250, 250, 250, 255),
                max(1, bh // 12), cv2.LINE_AA)
    badge = badge.astype(np.float32)
    badge[..., 3] /= 255.0
    centre = (w - side // 2 - w // 20, h // 10 + side // 2)
    return _composite(plate, badge, np.tile(np.array(centre, np.float64), (n, 1)))


def noisy_clip(n: int, h: int, w: int, sigma: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean): a slow drift over a textured set, and the same with Gaussian noise."""
    clean = pan_clip(n, h, w, 0.6, 0.25, seed)
    noise = np.random.default_rng([seed, 1]).normal(0.0, sigma, clean.shape)
    noisy = np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)
    return noisy, clean


def demo_scene(n: int, h: int = 720, w: int = 1280, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(frames, masks): the demo shot — a slow push-in pan with a disc to remove crossing it."""
    dx, dy = 0.004 * w, 0.001 * h
    canvas, origin = _set_for(h, w, dx, dy, seed)
    centre = np.array([w / 2.0, h / 2.0])
    cameras = []
    for i in range(n):
        zoom = 1.0 + 0.002 * i
        camera = _camera(origin, i * dx, i * dy)
        # Scale about the frame centre, so the push-in does not drift the framing.
        camera[:, :2] *= zoom
        camera[:, 2] = zoom * camera[:, 2] + (1.0 - zoom) * centre
        cameras.append(camera)
    plate = _film(canvas, cameras, h, w)
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    path = np.stack([w * (0.8 - 0.6 * t), h * (0.55 - 0.1 * np.sin(np.pi * t))], axis=1)
    return _composite(plate, _disc_sprite(round(0.1 * min(h, w)), seed + 1), path)


def _set_for(h: int, w: int, dx: float, dy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A set twice the frame size, and where the first frame sits on it.

    The camera starts at the edge it moves away from, so a pan of up to a frame width stays
    on the set; beyond that the set continues as its mirror image (see `_film`).
    """
    canvas = textured_background(2 * h, 2 * w, seed)
    origin = np.array([w / 2.0 * (1.0 - np.sign(dx)), h / 2.0 * (1.0 - np.sign(dy))])
    return canvas, origin


def _camera(origin: np.ndarray, x: float, y: float) -> np.ndarray:
    """2x3 affine from set coordinates to frame coordinates for a camera at origin + (x, y)."""
    return np.array([[1.0, 0.0, -(origin[0] + x)], [0.0, 1.0, -(origin[1] + y)]])


def _film(canvas: np.ndarray, cameras: list[np.ndarray], h: int, w: int) -> np.ndarray:
    """Render each camera's view of the set; sub-pixel positions use bicubic sampling."""
    frames = np.empty((len(cameras), h, w, 3), np.uint8)
    for i, camera in enumerate(cameras):
        frames[i] = cv2.warpAffine(canvas, camera, (w, h), flags=cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_REFLECT_101)
    return frames


def _disc_sprite(radius: int, seed: int) -> np.ndarray:
    """(2r+5, 2r+5, 4) float32 RGBA: a shaded, blotchy disc with a bright band and a soft edge.

    Its texture has no period, as a real prop's would not, so motion can be measured on it.
    """
    rng = np.random.default_rng([seed, 2])
    size = 2 * radius + 5
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) - size // 2
    base = rng.uniform(60, 200, 3).astype(np.float32)
    cells = max(2, radius // 4)
    blotches = cv2.resize(rng.uniform(-45, 45, (cells, cells, 3)).astype(np.float32), (size, size),
                          interpolation=cv2.INTER_CUBIC)
    band = 50.0 * np.exp(-0.5 * ((xx - 0.6 * yy) / (0.15 * max(radius, 1))) ** 2)
    shade = 1.0 - 0.35 * (xx + yy) / (2.0 * max(radius, 1))
    rgb = np.clip(base * shade[..., None] + blotches + band[..., None], 0, 255)
    alpha = np.zeros((size, size), np.uint8)
    cv2.circle(alpha, (size // 2, size // 2), radius, 255, -1, cv2.LINE_AA)
    return np.dstack([rgb, alpha.astype(np.float32) / 255.0]).astype(np.float32)


def _composite(plate: np.ndarray, sprite: np.ndarray, path: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Lay the sprite over each plate frame at path[i] (sub-pixel); return frames and masks."""
    n, h, w = plate.shape[:3]
    half = sprite.shape[0] // 2
    grow = max(2, round(0.01 * min(h, w)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    frames = np.empty_like(plate)
    masks = np.empty((n, h, w), bool)
    for i in range(n):
        place = np.array([[1.0, 0.0, path[i][0] - half], [0.0, 1.0, path[i][1] - half]])
        layer = cv2.warpAffine(sprite, place, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        alpha = layer[..., 3:]
        frames[i] = np.clip(np.rint(plate[i] * (1.0 - alpha) + layer[..., :3] * alpha), 0, 255)
        masks[i] = cv2.dilate((alpha[..., 0] > 0).astype(np.uint8), kernel) > 0
    return frames, masks
