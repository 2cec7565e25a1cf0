"""A labelled set of takes the tests build themselves: good takes made by the classic backend
on generated footage, and the same takes with planted defects (a seam jump, flicker, mask
bleed, one frame missing, a silent upscale)."""
from __future__ import annotations

import dataclasses
import threading
from fractions import Fraction

import cv2
import numpy as np

from server.backends.base import Spec
from server.backends.classic import ClassicBackend
from server.samples import moving_object_clip, noisy_clip, pan_clip

H, W, N = 72, 112, 16
RATE = Fraction(24)


@dataclasses.dataclass
class Case:
    name: str
    op: str
    source: np.ndarray
    take: np.ndarray
    defect: str                    # "" for a good take
    mask: np.ndarray | None = None
    extend_side: str = "tail"
    extend_frames: int = 0

    @property
    def expected_frames(self) -> int:
        return len(self.source) + self.extend_frames


def _run(op, frames, **spec):
    return ClassicBackend().run(op, frames, Spec(op=op, rate=RATE, **spec), lambda *a: None, threading.Event())


def good_cases() -> list[Case]:
    cases = []
    for seed, (dx, dy) in enumerate([(1.5, 0.0), (-1.0, 0.5), (0.5, -0.8), (2.5, 1.0)]):
        source = pan_clip(N, H, W, dx, dy, seed=seed)
        side = "tail" if seed % 2 == 0 else "head"
        new = _run("extend", source, extend_side=side, extend_frames=8)
        take = np.concatenate([source, new]) if side == "tail" else np.concatenate([new, source])
        cases.append(Case(f"extend-pan{seed}", "extend", source, take, "", extend_side=side, extend_frames=8))
    for seed in range(4):
        source, mask, _clean = moving_object_clip(N, H, W, seed=seed, pan=(0.6 * seed, 0.2))
        filled = _run("inpaint", source, mask=mask)
        take = np.where(mask[..., None], filled, source)
        cases.append(Case(f"inpaint{seed}", "inpaint", source, take, "", mask=mask))
    for seed in range(3):
        noisy, _clean = noisy_clip(N, H, W, sigma=8 + 4 * seed, seed=seed)
        cases.append(Case(f"refine{seed}", "refine", noisy, _run("refine", noisy, strength=0.5), ""))
    return cases


def _with(case: Case, take: np.ndarray, defect: str) -> Case:
    return dataclasses.replace(case, name=f"{case.name}+{defect}", take=take, defect=defect)


def planted_cases(good: list[Case]) -> list[Case]:
    cases = []
    for case in good:
        take = case.take.copy()
        if case.op == "extend":
            # seam jump: the new frames come from another place on the set
            elsewhere = np.roll(take, (H // 3, W // 3), axis=(1, 2))
            gen = slice(len(take) - case.extend_frames, None) if case.extend_side == "tail" else slice(0, case.extend_frames)
            jumped = take.copy()
            jumped[gen] = elsewhere[gen]
            cases.append(_with(case, jumped, "seam"))
        if case.op == "inpaint":
            # mask bleed: the fill spills 6 px past the mask
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))
            grown = np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in case.mask])
            blurred = np.stack([cv2.GaussianBlur(f, (9, 9), 4) for f in case.take])
            cases.append(_with(case, np.where(grown[..., None], blurred, case.take), "mask_bleed"))
        # flicker: the brightness of what was generated wobbles frame to frame
        wobble = np.where(np.arange(len(take)) % 2 == 0, 7, -7).astype(np.int16)[:, None, None, None]
        flickered = np.clip(take.astype(np.int16) + wobble, 0, 255).astype(np.uint8)
        if case.op == "inpaint":
            flickered = np.where(case.mask[..., None], flickered, take)
        elif case.op == "extend":
            keep = slice(0, len(take) - case.extend_frames) if case.extend_side == "tail" else slice(case.extend_frames, None)
            flickered[keep] = take[keep]
        cases.append(_with(case, flickered, "flicker"))
        # one frame missing
        cases.append(_with(case, np.delete(take, len(take) // 2, axis=0), "missing_frame"))
        # silent upscale: made at half size, delivered at full size, nothing said
        small = np.stack([cv2.resize(f, (W // 2, H // 2), interpolation=cv2.INTER_AREA) for f in take])
        cases.append(_with(case, np.stack([cv2.resize(f, (W, H), interpolation=cv2.INTER_CUBIC) for f in small]),
                           "upscale"))
    return cases
