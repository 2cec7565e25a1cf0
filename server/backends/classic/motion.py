"""How the picture moves between two frames: camera motion as a homography, the rest as flow.

Shared by the classic operations; everything is measured on small grayscale copies and scaled back.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import cv2
import numpy as np

TRACKING_WIDTH = 640      # camera motion is measured at most this wide
FLOW_WIDTH = 480          # dense flow is measured at most this wide
_MIN_HOMOGRAPHY_POINTS = 12
_MIN_AFFINE_POINTS = 4


@dataclasses.dataclass(frozen=True)
class CameraMotion:
    """Where frame `a`'s pixels land in frame `b`, and how far to trust it.

    `homography` maps full-resolution pixel coordinates of a to b. `inlier_ratio` is the share
    of tracked points the model explains; `residual_px` their median misfit at full resolution.
    """

    homography: np.ndarray
    inlier_ratio: float
    residual_px: float


IDENTITY = CameraMotion(np.eye(3), 0.0, float("inf"))


def camera_motion(a: np.ndarray, b: np.ndarray, exclude_a: Optional[np.ndarray] = None,
                  exclude_b: Optional[np.ndarray] = None) -> CameraMotion:
    """Global motion from RGB frame a to b, ignoring points in the exclude masks (True = ignore).

    Corners tracked with pyramidal Lucas-Kanade and checked forward-backward; a RANSAC
    homography when enough agree, a similarity (partial affine) when few do, else identity.
    Exclude what moves on its own (objects, regions being replaced) so only the set votes.
    """
    scale = min(1.0, TRACKING_WIDTH / a.shape[1])
    gray_a, gray_b = _small_gray(a, scale), _small_gray(b, scale)
    allowed = None if exclude_a is None else (~_small_mask(exclude_a, gray_a.shape)).astype(np.uint8)
    points = cv2.goodFeaturesToTrack(gray_a, maxCorners=500, qualityLevel=0.01, minDistance=7,
                                     mask=allowed, blockSize=7)
    if points is None or len(points) < _MIN_AFFINE_POINTS:
        return IDENTITY
    src, dst = _track(gray_a, gray_b, points.reshape(-1, 2))
    if exclude_b is not None and len(dst):
        keep = ~_small_mask(exclude_b, gray_b.shape)[_index(dst[:, 1], gray_b.shape[0]),
                                                     _index(dst[:, 0], gray_b.shape[1])]
        src, dst = src[keep], dst[keep]
    if len(src) < _MIN_AFFINE_POINTS:
        return IDENTITY

    small = None
    if len(src) >= _MIN_HOMOGRAPHY_POINTS:
        small, inliers = cv2.findHomography(src, dst, cv2.RANSAC, ransacReprojThreshold=1.0,
                                            maxIters=2000, confidence=0.995)
    if small is None:
        affine, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                      ransacReprojThreshold=1.0)
        if affine is None:
            return IDENTITY
        small = np.vstack([affine, [0.0, 0.0, 1.0]])
    inliers = inliers.ravel().astype(bool)
    if not inliers.any():
        return IDENTITY
    misfit = np.linalg.norm(cv2.perspectiveTransform(src[inliers][None], small)[0] - dst[inliers],
                            axis=1)
    to_small = _resize_matrix(scale)
    full = np.linalg.inv(to_small) @ small @ to_small
    return CameraMotion(full / full[2, 2], float(inliers.mean()), float(np.median(misfit) / scale))


def dense_flow(a: np.ndarray, b: np.ndarray, width: int = FLOW_WIDTH,
               preset: int = cv2.DISOPTICAL_FLOW_PRESET_FAST) -> np.ndarray:
    """(H, W, 2) float32 flow with a(x) ≈ b(x + flow(x)), from DIS on a small grayscale copy."""
    h, w = a.shape[:2]
    scale = min(1.0, width / w)
    dis = cv2.DISOpticalFlow_create(preset)
    flow = dis.calc(_small_gray(a, scale), _small_gray(b, scale), None)
    if scale == 1.0:
        return flow
    return cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(1.0 / scale)


def pull_along_flow(image: np.ndarray, flow: np.ndarray, border: int = cv2.BORDER_REPLICATE,
                    interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Sample image at x + flow(x): with flow = dense_flow(a, b), pull_along_flow(b, flow) ≈ a.

    Bilinear sampling at a fractional shift is itself a blur (at half a pixel it halves the
    finest detail); where detail must survive the move, pass cv2.INTER_CUBIC."""
    return cv2.remap(image, pixel_grid(image.shape[:2]) + flow, None, interpolation, borderMode=border)


def disagreement(a: np.ndarray, b: np.ndarray, blur_px: int = 5) -> np.ndarray:
    """(H, W) uint8: per pixel, the worst channel's absolute difference in 8-bit levels, box-blurred.

    The worst channel, so a grey subject over a colourful set of equal brightness still reads
    as different; blurred, so isolated noise spikes do not read as a mismatch.
    """
    red, green, blue = cv2.split(cv2.absdiff(a, b))
    worst = cv2.max(cv2.max(red, green), blue)
    if worst.dtype != np.uint8:   # deep frames: measured in 8-bit levels, like every threshold here
        worst = cv2.convertScaleAbs(worst, alpha=255.0 / 65535.0)
    return cv2.blur(worst, (blur_px, blur_px))


def warp(image: np.ndarray, homography: np.ndarray, interpolation: int = cv2.INTER_LINEAR,
         border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """Move image's pixels to where `homography` sends them, on a canvas of the same size."""
    h, w = image.shape[:2]
    return cv2.warpPerspective(image, homography, (w, h), flags=interpolation, borderMode=border)


def toward_identity(homography: np.ndarray, amount: float, size: tuple[int, int]) -> np.ndarray:
    """The homography that moves the frame's corners `amount` (0..1) of the way H moves them.

    "Part of a motion" defined on what the viewer sees, so it stays a plausible camera move
    for any homography, where a fractional matrix power may not exist.
    """
    h, w = size
    corners = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    moved = cv2.perspectiveTransform(corners[None], homography)[0]
    partial = corners + np.float32(amount) * (moved - corners)
    return cv2.getPerspectiveTransform(corners, partial.astype(np.float32)).astype(np.float64)


def pixel_grid(size: tuple[int, int]) -> np.ndarray:
    """(H, W, 2) float32 of each pixel's own (x, y)."""
    h, w = size
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([xs, ys])


def _track(gray_a: np.ndarray, gray_b: np.ndarray, points: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Points found again in b, kept only when tracking back lands where they started."""
    params = dict(winSize=(21, 21), maxLevel=3,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    forward, ok, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, points, None, **params)
    back, ok_back, _ = cv2.calcOpticalFlowPyrLK(gray_b, gray_a, forward, None, **params)
    h, w = gray_b.shape
    good = ((ok.ravel() == 1) & (ok_back.ravel() == 1)
            & (np.linalg.norm(back - points, axis=1) < 0.5)
            & (forward[:, 0] >= 0) & (forward[:, 0] <= w - 1)
            & (forward[:, 1] >= 0) & (forward[:, 1] <= h - 1))
    return points[good], forward[good]


def _small_gray(image: np.ndarray, scale: float) -> np.ndarray:
    """8-bit luma at `scale`: motion is estimated at 8 bits whatever the frames' depth (the
    trackers take 8-bit images; the pixels they move keep their depth)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if gray.dtype != np.uint8:
        gray = cv2.convertScaleAbs(gray, alpha=255.0 / 65535.0)
    if scale == 1.0:
        return gray
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _small_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool mask at the tracking size; a small pixel counts if any of its source pixels did."""
    if mask.shape == shape:
        return mask
    coverage = cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return coverage > 0


def _index(values: np.ndarray, limit: int) -> np.ndarray:
    return np.clip(np.rint(values).astype(int), 0, limit - 1)


def _resize_matrix(scale: float) -> np.ndarray:
    """Full-resolution pixel coordinates to those of a copy resized by `scale` (pixel centres)."""
    offset = 0.5 * scale - 0.5
    return np.array([[scale, 0.0, offset], [0.0, scale, offset], [0.0, 0.0, 1.0]])
