"""Conform around a model: its size multiples and native resolution, its frame-count rule
(4k+1 / 8k+1), its native fps, and chunks for long ranges; then back to exactly the frames,
rate and size the timeline asked for.

All pure numpy/OpenCV, so the rules are tested without a model.
"""
from __future__ import annotations

import math
from fractions import Fraction

import cv2
import numpy as np

from server.gates import delta_e_of


def model_size(width: int, height: int, native: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The size the model works at: the source's aspect at no more than the model's native
    area (never larger than the source), both sides multiples of `multiple`."""
    scale = min(1.0, math.sqrt((native[0] * native[1]) / float(width * height)))
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    return w, h


def resize(frames: np.ndarray, size: tuple[int, int], *, nearest: bool = False) -> np.ndarray:
    if (frames.shape[2], frames.shape[1]) == tuple(size):
        return frames
    w, h = size
    shrinking = w * h < frames.shape[1] * frames.shape[2]
    flag = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return np.stack([cv2.resize(np.ascontiguousarray(f), (w, h), interpolation=flag) for f in frames])


def valid_length(n: int, step: int) -> int:
    """The smallest count >= n of the form step*k + 1."""
    return max(1, math.ceil((n - 1) / step)) * step + 1 if n > 1 else 1


def to_model_times(count: int, rate: Fraction, fps: float) -> list[int]:
    """Indices (into `count` frames at `rate`) of the frames the model sees at `fps`, covering
    the same span: model frame j shows the source frame nearest to time j / fps."""
    span = (count - 1) / float(rate)
    model_count = int(math.floor(span * fps + 1e-9)) + 1
    return [min(count - 1, int(round(j / fps * float(rate)))) for j in range(model_count)]


def from_model_times(count: int, rate: Fraction, fps: float, model_count: int) -> list[int]:
    """For each of `count` output frames at `rate`, the nearest of `model_count` model frames."""
    return [min(model_count - 1, int(round(k / float(rate) * fps))) for k in range(count)]


def model_frames_for(count: int, rate: Fraction, fps: float) -> int:
    """Model frames needed to cover `count` new frames at `rate` (for an extension)."""
    return int(math.ceil(count * fps / float(rate) - 1e-9))


def chunks(total: int, length: int, overlap: int, step: int) -> list[tuple[int, int]]:
    """(start, end) windows over `total` frames, each at most `length` (a valid count) long,
    consecutive ones sharing `overlap` frames, the last one ending at `total`."""
    if total <= length:
        return [(0, total)]
    overlap = min(overlap, length - 1)
    stride = length - overlap
    out, start = [], 0
    while start + length < total:
        out.append((start, start + length))
        start += stride
    out.append((max(0, total - length), total))
    del step
    return out


def ramps(windows: list[tuple[int, int]]) -> list[np.ndarray]:
    """Each window's cross-fade weights: rising over what it shares with the window before,
    falling over what it shares with the one after (1 elsewhere)."""
    out = []
    for index, (start, end) in enumerate(windows):
        n = end - start
        ramp = np.ones(n, np.float32)
        if index > 0:
            shared = max(0, windows[index - 1][1] - start)
            if shared:
                ramp[:shared] = np.linspace(0, 1, shared + 2, dtype=np.float32)[1:-1]
        if index + 1 < len(windows):
            shared = max(0, end - windows[index + 1][0])
            if shared:
                ramp[n - shared:] = np.minimum(ramp[n - shared:],
                                               np.linspace(1, 0, shared + 2, dtype=np.float32)[1:-1])
        out.append(ramp)
    return out


def lab_of(frames: np.ndarray) -> np.ndarray:
    """RGB uint8 frames as CIE L*a*b* (float32; L 0..100)."""
    flat = np.ascontiguousarray(frames.reshape(-1, frames.shape[-2], 3)).astype(np.float32) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(frames.shape)


delta_e = delta_e_of   # colour drift between two sets of frames: ΔE*76 of their mean L*a*b* colours


def colour_matched(frames: np.ndarray, ours: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """`frames` (one chunk's output) moved in L*a*b* so that `ours` (its frames over the overlap)
    take the mean and spread of `anchor` (the same frames as already delivered, themselves
    matched back to the first chunk): each chunk is held to the first chunk's colour rather
    than drifting a little more at every join."""
    source, target = lab_of(ours).reshape(-1, 3), lab_of(anchor).reshape(-1, 3)
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    scale = np.clip(target.std(axis=0) / np.maximum(source.std(axis=0), 1e-3), 0.5, 2.0)
    lab = (lab_of(frames) - mean_s) * scale + mean_t
    flat = np.ascontiguousarray(lab.reshape(-1, lab.shape[-2], 3)).astype(np.float32)
    rgb = cv2.cvtColor(flat, cv2.COLOR_Lab2RGB).reshape(frames.shape)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def join_chunks(pieces: list[tuple[int, np.ndarray]], total: int, seams: list | None = None, *,
                match: bool = True) -> np.ndarray:
    """Blend chunk outputs: each chunk colour-matched over its overlap to the one before it (so
    to the first: colour_matched), then where two chunks overlap a linear cross-fade from the
    earlier to the later one, so the join has no visible step. `seams` collects the colour
    drift at each join, before and after matching (match=False: the cross-fade alone)."""
    if match:
        pieces = _matched(pieces, seams)
    shape = pieces[0][1].shape[1:]
    out = np.zeros((total, *shape), np.float32)
    weight = np.zeros((total, 1, 1, 1), np.float32)
    windows = [(start, start + len(frames)) for start, frames in pieces]
    for (start, frames), ramp in zip(pieces, ramps(windows)):
        n = len(frames)
        out[start:start + n] += frames.astype(np.float32) * ramp[:, None, None, None]
        weight[start:start + n] += ramp[:, None, None, None]
    return np.clip(np.rint(out / np.maximum(weight, 1e-6)), 0, 255).astype(np.uint8)


def _matched(pieces: list[tuple[int, np.ndarray]], seams: list | None) -> list[tuple[int, np.ndarray]]:
    out = []
    for start, frames in pieces:
        if out:
            before_start, before = out[-1]
            first, last = start, min(before_start + len(before), start + len(frames))
            if last > first:
                ours, anchor = frames[:last - first], before[first - before_start:last - before_start]
                drift = delta_e(ours, anchor)
                frames = colour_matched(frames, ours, anchor)
                if seams is not None:
                    seams.append({"at": int(start), "delta_e_before": round(drift, 3),
                                  "delta_e_after": round(delta_e(frames[:last - first], anchor), 3)})
        out.append((start, frames))
    return out


class Joiner:
    """join_chunks, a window at a time: add() each window's output in order; a model frame is
    final (and handed back) once every window covering it has been added. Holds only the frames
    of open windows; gives the same values as join_chunks, summed in the same order."""

    def __init__(self, windows: list[tuple[int, int]], total: int, seams: list | None = None):
        self.windows, self.total, self.ramps = windows, total, ramps(windows)
        self.seams = seams
        self.previous: tuple[int, np.ndarray] | None = None   # the last window, colour-matched
        self.cover = np.zeros(total, np.int32)
        for start, end in windows:
            self.cover[start:end] += 1
        self.sums: dict[int, np.ndarray] = {}
        self.weights: dict[int, np.float32] = {}
        self.added = 0

    def add(self, frames: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """The next window's output; returns (model index, final frame) for frames now final."""
        start, end = self.windows[self.added]
        ramp = self.ramps[self.added]
        self.added += 1
        if self.previous is not None:
            frames = _matched([self.previous, (start, frames)], self.seams)[1][1]
        self.previous = (start, frames)
        done = []
        for offset, m in enumerate(range(start, end)):
            weighted = frames[offset].astype(np.float32) * ramp[offset]
            if m in self.sums:
                self.sums[m] += weighted
                self.weights[m] += ramp[offset]
            else:
                self.sums[m], self.weights[m] = weighted, np.float32(0) + ramp[offset]
            self.cover[m] -= 1
            if self.cover[m] == 0:
                value = self.sums.pop(m) / np.maximum(self.weights.pop(m), np.float32(1e-6))
                done.append((m, np.clip(np.rint(value), 0, 255).astype(np.uint8)))
        return done


def feathered_alpha(mask: np.ndarray, feather: int) -> np.ndarray:
    """(N, H, W) float alpha: 1 deep inside the mask, ramping to 0 at its edge over `feather`
    pixels, exactly 0 outside (so pixels outside the mask stay the source's)."""
    if feather <= 0:
        return mask.astype(np.float32)
    alphas = []
    for m in mask:
        inside = m.astype(np.uint8)
        dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
        alphas.append(np.clip(dist / float(feather), 0.0, 1.0) * (inside > 0))
    return np.stack(alphas).astype(np.float32)
