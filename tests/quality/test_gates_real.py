"""The quality gates on real camera footage (tests/support/footage.py), with truths nobody has to guess:

- good extensions are the clips' own held-back frames (the true continuation, tail and head);
- good refines and inpaints are the classic backend's takes of the clips (inpaints of a disc
  crossing the shot and of a fixed logo, pasted on real frames);
- planted defects are what goes wrong in practice: an extension that freezes (at once or half
  way), a dropped frame padded back to the right count, two swapped frames, a repeated frame,
  a uniform level shift where nothing should change (a VAE round trip), an inpaint that left
  the object in, a seam that jumps ahead.

The confusion table is printed; targets: at least 95 % of the planted defects caught, at most
5 % of the good takes flagged.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np

from support import footage
from server import gates
from server.backends.base import Spec
from server.backends.classic import ClassicBackend
from server.media import probe, read_frames
from server.samples import with_logo, with_moving_disc

# (clip, first frame, frames): no cut inside; the last 24 are an extension's true continuation
SEGMENTS = [("bikes", 30, 46), ("bikes", 80, 48), ("city", 40, 48), ("vtest", 300, 48), ("wolfgang", 100, 48),
            ("box", 150, 48), ("cup", 60, 48)]
NEW = 24


@dataclass
class Case:
    name: str
    op: str
    source: np.ndarray
    take: np.ndarray
    defect: str | None = None
    mask: np.ndarray | None = None
    side: str = "tail"
    extend_frames: int = 0


def _classic(op, frames, rate, **spec):
    return ClassicBackend().run(op, frames, Spec(op=op, rate=rate, seed=1, **spec), lambda *a: None,
                                threading.Event())


def _segments():
    out = []
    for clip, start, count in SEGMENTS:
        path = footage.for_test(clip)
        out.append((f"{clip}@{start}", read_frames(path, start, count), probe(path).rate))
    return out


def good_cases(segments) -> list[Case]:
    cases = []
    for name, frames, rate in segments:
        shot = frames[:-NEW]
        cases.append(Case(f"{name} extend tail (truth)", "extend", shot, frames, side="tail", extend_frames=NEW))
        cases.append(Case(f"{name} extend head (truth)", "extend", frames[NEW:], frames, side="head",
                          extend_frames=NEW))
        clip = frames[:NEW]
        cases.append(Case(f"{name} refine", "refine", clip, _classic("refine", clip, rate, strength=0.5)))
        for kind, paste in (("disc", with_moving_disc), ("logo", with_logo)):
            pasted, mask = paste(clip)
            take = _classic("inpaint", pasted, rate, mask=mask)
            cases.append(Case(f"{name} inpaint {kind}", "inpaint", pasted, take, _doubtful(take, pasted, clip, mask),
                              mask=mask))
    return cases


def _psnr(a, b) -> float:
    return float(10 * np.log10(255.0 ** 2 / max(float(np.mean((a.astype(float) - b.astype(float)) ** 2)), 1e-9)))


def _doubtful(take, pasted, truth, mask) -> str | None:
    """What the truth behind the pasted object says of our own inpaint: worse than per-frame
    Telea inside the mask by more than 1 dB, or a fill that wobbles 1.5x as much as the truth
    does in the same blocks (and a level a frame² more). Such a take should be flagged; the gates never see the truth."""
    import cv2
    telea = np.stack([cv2.inpaint(f, m.astype(np.uint8), 5, cv2.INPAINT_TELEA) for f, m in zip(pasted, mask)])
    ours_db, telea_db = _psnr(take[mask], truth[mask]), _psnr(telea[mask], truth[mask])
    if ours_db < telea_db - 1.0:
        return f"doubtful: {ours_db:.1f} dB inside the mask, Telea {telea_db:.1f}"
    share = gates._blocks(mask.astype(np.float32))
    ours_wobble, _ = gates._inpaint_flicker_blocks(gates._blocks(gates._gray(take)), share)
    true_wobble, _ = gates._inpaint_flicker_blocks(gates._blocks(gates._gray(truth)), share)
    if ours_wobble > 1.5 * true_wobble and ours_wobble - true_wobble > 1.0:
        return f"doubtful: the fill wobbles {ours_wobble:.2f} levels/frame², the truth {true_wobble:.2f}"
    return None


def _dropped_padded(take: np.ndarray, at: int) -> np.ndarray:
    return np.concatenate([take[:at], take[at + 1:], take[-1:]])


def _swapped(take: np.ndarray, at: int) -> np.ndarray:
    out = take.copy()
    out[[at, at + 1]] = out[[at + 1, at]]
    return out


def _shifted(take: np.ndarray, levels: int, where: np.ndarray | None = None) -> np.ndarray:
    moved = np.clip(take.astype(np.int16) + levels, 0, 255).astype(np.uint8)
    if where is None:
        return moved
    return np.where(where[..., None], moved, take)


def planted_cases(good: list[Case]) -> list[Case]:
    cases = []
    for case in good:
        if case.defect:
            continue

        def plant(defect, take):
            cases.append(Case(f"{case.name}: {defect}", case.op, case.source, take, defect, case.mask, case.side,
                              case.extend_frames))
        if case.op == "extend" and case.side == "tail":
            shot_len = len(case.source)
            new = case.take[shot_len:]
            plant("frozen extension", np.concatenate([case.source, np.repeat(case.source[-1:], NEW, axis=0)]))
            plant("freezes half-way", np.concatenate([case.source, new[:NEW // 2],
                                                      np.repeat(new[NEW // 2 - 1:NEW // 2], NEW - NEW // 2, axis=0)]))
            plant("seam jumps ahead", np.concatenate([case.source, new[6:], np.repeat(new[-1:], 6, axis=0)]))
        elif case.op in ("refine", "inpaint"):
            mid = len(case.take) // 2
            plant("dropped frame padded", _dropped_padded(case.take, mid))
            plant("two frames swapped", _swapped(case.take, mid))
            repeated = case.take.copy()
            repeated[mid] = repeated[mid - 1]
            plant("repeated frame", repeated)
            if case.op == "inpaint":
                plant("level shift outside the mask", _shifted(case.take, 4, ~case.mask))
                plant("object left in", case.source.copy())
            else:
                plant("level shift", _shifted(case.take, 4))
    return cases


def _gates(case: Case):
    return gates.evaluate(case.op, case.source, case.take, mask=case.mask, extend_side=case.side,
                          extend_frames=case.extend_frames)


def test_gates_on_real_footage_catch_planted_defects_and_pass_good_takes(capsys):
    segments = _segments()
    ours = good_cases(segments)
    good = [c for c in ours if not c.defect]
    doubtful = [c for c in ours if c.defect]
    planted = planted_cases(good)
    table, missed, false_flags, caught_by, doubtful_lines = Counter(), [], [], Counter(), []
    for case in good + planted + doubtful:
        flagged = [g for g in _gates(case) if g.flagged]
        truth = "doubtful" if case.defect and case.defect.startswith("doubtful") else \
            "defect" if case.defect else "good"
        table[(truth, "flagged" if flagged else "passed")] += 1
        if truth == "doubtful":
            print_doubtful = f"{case.name} ({case.defect}): " + (", ".join(g.reason() for g in flagged) or "NOT flagged")
            doubtful_lines.append(print_doubtful)
            continue
        if case.defect and not flagged:
            missed.append(case.name)
        if case.defect and flagged:
            caught_by[(case.defect, ",".join(sorted(g.name for g in flagged)))] += 1
        if not case.defect and flagged:
            false_flags.append(f"{case.name}: {[g.reason() for g in flagged]}")
    with capsys.disabled():
        print(f"\n\nreal-footage gate confusion table ({len(good)} good takes, {len(planted)} with planted defects, "
              f"{len(doubtful)} of our own takes that the truth says are doubtful)")
        print(f"{'':>8} {'flagged':>8} {'passed':>8}")
        for truth in ("defect", "good", "doubtful"):
            print(f"{truth:>8} {table[(truth, 'flagged')]:>8} {table[(truth, 'passed')]:>8}")
        for (defect, names), n in sorted(caught_by.items()):
            print(f"  {defect:<30} caught by {names} x{n}")
        for name in missed:
            print(f"  MISSED {name}")
        for line in false_flags:
            print(f"  FALSE FLAG {line}")
        for line in doubtful_lines:
            print(f"  DOUBTFUL {line}")
    caught = table[("defect", "flagged")] / len(planted)
    wrongly = table[("good", "flagged")] / len(good)
    assert caught >= 0.95, f"caught {caught:.0%} of planted defects; missed: {missed}"
    assert len(good) >= 20 and len(planted) >= 60
    assert wrongly <= 0.05, f"flagged {wrongly:.0%} of good takes: {false_flags}"
