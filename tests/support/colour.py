"""Colour test material: natural-looking display colours encoded into a log space."""
from __future__ import annotations

import numpy as np

from server import color


def log_frames(space: str, n=6, h=48, w=64, seed=0) -> np.ndarray:
    """Natural-looking display colours encoded into `space` at 16-bit code values."""
    rng = np.random.default_rng(seed)
    base = np.clip(rng.normal(0.45, 0.2, (h // 8, w // 8, 3)), 0.02, 0.98).astype(np.float32)
    display = np.repeat(np.repeat(base, 8, 0), 8, 1)
    frames = []
    for i in range(n):
        shifted = np.roll(display, i, axis=1).copy()
        codes = color.ColorTransform(color.DEFAULT_CONFIG, space).from_model(shifted)
        frames.append(np.clip(np.rint(codes * 65535), 0, 65535).astype(np.uint16))
    return np.stack(frames)
