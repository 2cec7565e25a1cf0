"""The noise level of a picture, for the refine operation (how much to average) and the gates
(what a denoise may take away): read in the flattest 8x8 blocks of a Laplacian-difference
response (Immerkaer's estimate, kept off texture and edges)."""
from __future__ import annotations

import cv2
import numpy as np

PERCENTILE = 20           # the noise is read in the flattest fifth of the 8x8 blocks
PERCENTILE_OF_MEAN = 0.9  # that percentile of 8x8 block means of pure noise, as a share of their mean
_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def luma_sigma(gray: np.ndarray) -> float:
    """Noise sigma of a (H, W) luma picture, in its own levels."""
    gray = gray.astype(np.float32)
    if min(gray.shape) < 10:
        return 0.0
    response = np.abs(cv2.filter2D(gray, -1, _KERNEL)[1:-1, 1:-1])
    return float(np.sqrt(np.pi / 2.0) * calm_blocks(response) / 6.0)


def calm_blocks(values: np.ndarray) -> float:
    """The PERCENTILE-th of the 8x8 block means of `values`, scaled to the mean it stands for."""
    h, w = (values.shape[0] // 8) * 8, (values.shape[1] // 8) * 8
    if not h or not w:
        return float(values.mean()) if values.size else 0.0
    blocks = values[:h, :w].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))
    return float(np.percentile(blocks, PERCENTILE)) / PERCENTILE_OF_MEAN
