"""Quality gates: numbers that say whether a take needs a human look before anyone uses it.

Every take gets every gate that applies to its operation; each gives a value, the threshold
it was held to and a verdict ("pass", "flag", or "n/a"). A take with any flag is
NEEDS_REVIEW with the reasons; otherwise it is OK. Nothing is ever approved automatically.

| gate | measures | value | flags when | default |
|---|---|---|---|---|
| seam (extend) | the join against the shot's own steps: plain, motion-compensated, and how far its motion strays | the worst of the three ratios | value > threshold | 3.0 |
| motion (extend) | new frames standing still where the shot moved | share of still steps | value > threshold | 0.25 |
| frame_order | take frames that look more like a neighbouring source frame than their own | count | value > 0 | 0 |
| level_shift (refine, inpaint) | change where nothing should change: outside the mask, or a refine's mean level | levels | value > threshold | 1.5 |
| inpaint_effect (inpaint) | the masked region left as it was | mean change inside the mask, levels | value < threshold | 1.0 |
| mask_outside (inpaint) | pixels outside the mask that changed | share of outside pixels changed by more than 12 levels (8-bit), worst frame | value > threshold | 0.002 |
| mask_boundary (inpaint) | how visible the mask's edge is in the take | edge-ring gradient / gradient of the band just outside | value > threshold | 1.8 |
| flicker | temporal flicker of what was generated | common-mode block-luminance 2nd temporal difference of the new frames / the source's (inpaint: inside the mask / the clear blocks around it, same frames) | value > threshold | 2.0 |
| conformance | frame count, rate, size, timecode as asked | number of mismatches | value > 0 | 0 |
| real_resolution | detail the take really has | high-band / mid-band spectral energy, take / source; for a take generated smaller and upscaled (always stated), the share of delivered pixels really generated | value < threshold | 0.35 |
| fallback | the server did something other than asked | number of fallbacks | value > 0 | 0 |
| color_clip (contract colour space, generative) | what the model's working space could not hold | share of the generated region clipped on the way in, or made at the model's limits | value > threshold | 0.02 |

Thresholds come from the shot contract (`review.thresholds`, by gate name) or these defaults.
The measures are deliberately simple, documented and cheap (a few ms per frame on a CPU).
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction

import cv2
import numpy as np

from server import noise

DEFAULTS = {"seam": 3.0, "mask_outside": 0.002, "mask_boundary": 1.8, "flicker": 2.0, "conformance": 0.0,
            "real_resolution": 0.35, "fallback": 0.0, "color_clip": 0.02,
            "motion": 0.25, "frame_order": 0.0, "level_shift": 1.5, "inpaint_effect": 1.0,
            # GENERATE (server.generate)
            "generated_flicker": 0.75, "board_fidelity": 3.0, "keyframe_fidelity": 3.0, "previs": 0.0,
            "color_drift": 2.5}
HIGHER_IS_WORSE = {"seam", "mask_outside", "mask_boundary", "flicker", "conformance", "fallback", "color_clip",
                   "motion", "frame_order", "level_shift", "generated_flicker", "board_fidelity",
                   "keyframe_fidelity", "previs", "color_drift"}
THUMB_WIDTH = 64          # motion, order and level gates compare 64-pixel-wide luma thumbnails
STILL_SHARE = 0.15        # a frame-to-frame change under this share of the source's own is a freeze
MOVING_FLOOR = 0.4        # thumbnail levels: a source changing less than this a frame is standing still
STILL_LEVELS = 0.5        # thumbnail levels: a new frame changing less than this (and than STILL_SHARE of the
                          # shot's own step) is a repeat; real footage moving at all changes more
CLOSER_SHARE = 0.5        # a take frame this much closer to a neighbouring source frame is out of place
CHANGED_LEVELS = 12       # an outside pixel "changed" beyond codec noise
MOTION_FLOOR = 1.0        # levels: a static shot's frame-to-frame change is at least this
FLICKER_FLOOR = 0.25
FLICKER_EXCESS = 0.75     # levels/frame²: less extra wobble than this does not show, whatever the ratio
BLOCKS = 8                # flicker: luminance of an 8x8 grid of blocks


@dataclasses.dataclass
class Gate:
    name: str
    value: float | None
    threshold: float | None
    verdict: str              # "pass" | "flag" | "n/a"
    detail: str = ""

    @property
    def flagged(self) -> bool:
        return self.verdict == "flag"

    def reason(self) -> str:
        return f"{self.name}: {self.detail}" if self.detail else self.name

    def as_dict(self) -> dict:
        return {"name": self.name, "value": None if self.value is None else round(float(self.value), 6),
                "threshold": self.threshold, "verdict": self.verdict, "detail": self.detail}


@dataclasses.dataclass
class Expected:
    """What the take was asked to be."""
    frames: int
    rate: Fraction
    size: tuple[int, int]
    timecode: str | None


@dataclasses.dataclass
class Actual:
    frames: int
    rate: Fraction
    size: tuple[int, int]
    timecode: str | None


def thresholds_from(contract_thresholds) -> dict[str, float]:
    """Defaults overridden by the shot contract's review thresholds (unknown names refused)."""
    merged = dict(DEFAULTS)
    for name, value in dict(contract_thresholds or {}).items():
        if name not in DEFAULTS:
            raise ValueError(f"review threshold {name!r} is not a gate; gates: {', '.join(DEFAULTS)}")
        merged[name] = float(value)
    return merged


def evaluate(op: str, source: np.ndarray, take: np.ndarray, *, mask: np.ndarray | None = None,
             extend_side: str = "tail", extend_frames: int = 0, expected: Expected | None = None,
             actual: Actual | None = None, generated_size: tuple[int, int] | None = None,
             fallbacks: list[str] | None = None, thresholds: dict | None = None) -> list[Gate]:
    """Every gate for one take, from whole arrays (`takebridge check`, tests): the frames go
    through a GateMeter as the server's do while a take streams. `source` is the source range
    as read (handles included) and `take` the take's frames: for refine and inpaint frame i of
    one is frame i of the other; for an extension the take is the source plus `extend_frames`
    new frames at `extend_side`. `mask` (inpaint) is one boolean mask per source frame."""
    meter = GateMeter(op, len(source), len(take), extend_side=extend_side, extend_frames=extend_frames,
                      with_mask=mask is not None)
    for i, frame in enumerate(source):
        meter.add_source(i, frame)
    for i, frame in enumerate(take):
        s = meter.source_index(i)
        paired = s is not None and 0 <= s < len(source)
        frame_mask = mask[s] if mask is not None and paired and s < len(mask) else None
        meter.add_take(i, frame, source[s] if paired else None, frame_mask)
    return meter.finish(expected=expected, actual=actual, generated_size=generated_size, fallbacks=fallbacks,
                        thresholds=thresholds, delivered_size=(take.shape[2], take.shape[1]) if take.ndim == 4 else None)


def _gray(frames: np.ndarray) -> np.ndarray:
    """(n, h, w) uint8 luma of (n, h, w, 3) RGB."""
    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames])


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.absdiff(a, b).mean())


def _seam_gate(window: np.ndarray, edge: np.ndarray, new: np.ndarray, threshold: float, side: str = "tail") -> Gate:
    """The join against the shot's own frame steps, three ways, the worst counting: the plain
    change (jump / typical step); the change left once the step's motion is undone (a fast pan
    hides a jump in the plain change: its every step is large); and how far the join's motion
    strays from the shot's steady motion (a jump ahead within a pan moves too far at once)."""
    typical = float(np.median([_mad(window[i + 1], window[i]) for i in range(len(window) - 1)]))
    jump = _mad(new, edge)
    plain = jump / max(typical, MOTION_FLOOR)
    thumbs = [_seam_thumb(f) for f in window]
    steps = [_compensated_step(a, b) for a, b in zip(thumbs[:-1], thumbs[1:])]
    join = _compensated_step(_seam_thumb(edge), _seam_thumb(new)) if side == "tail" else \
        _compensated_step(_seam_thumb(new), _seam_thumb(edge))
    shifts = np.array([s for s, _ in steps])
    steady = np.median(shifts, axis=0)
    spread = float(np.median(np.linalg.norm(shifts - steady, axis=1)))
    residual = join[1] / max(float(np.median([r for _, r in steps])), SEAM_RESIDUAL_FLOOR)
    stray = float(np.linalg.norm(join[0] - steady)) / max(float(np.linalg.norm(steady)) + spread, SEAM_SHIFT_FLOOR)
    value = max(plain, residual, stray)
    verdict = "flag" if value > threshold else "pass"
    return Gate("seam", value, threshold, verdict,
                f"jump {jump:.1f} levels at the join vs {typical:.1f} between source frames ({plain:.2f}x); "
                f"motion-compensated {residual:.2f}x; the join moves ({join[0][0]:+.1f}, {join[0][1]:+.1f}) px "
                f"against the shot's steady ({steady[0]:+.1f}, {steady[1]:+.1f}) ({stray:.2f}x) — worst "
                f"{value:.2f}x{' > ' if verdict == 'flag' else ' <= '}{threshold:g}x")


SEAM_THUMB_WIDTH = 160    # seam: motion measured on 160-pixel-wide luma
SEAM_RESIDUAL_FLOOR = 0.5  # levels: a shot's own motion-compensated step is at least this
SEAM_SHIFT_FLOOR = 0.5    # thumbnail pixels: a shot's steady motion is at least this


def delta_e_of(a: np.ndarray, b: np.ndarray) -> float:
    """ΔE*76 between the mean L*a*b* colours of two sets of RGB uint8 frames."""
    def mean_lab(frames):
        flat = np.ascontiguousarray(frames.reshape(-1, frames.shape[-2], 3)).astype(np.float32) / 255.0
        return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(-1, 3).mean(axis=0)
    return float(np.linalg.norm(mean_lab(a) - mean_lab(b)))


def _seam_thumb(frame: np.ndarray) -> np.ndarray:
    gray = _gray(frame[None])[0]
    w = min(SEAM_THUMB_WIDTH, gray.shape[1])
    return cv2.resize(gray.astype(np.float32), (w, max(8, round(gray.shape[0] * w / gray.shape[1]))),
                      interpolation=cv2.INTER_AREA)


def _compensated_step(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """(the global shift from a to b, by phase correlation; the mean change left once a is
    moved by it), on thumbnails, away from the borders the shift brings in."""
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, window)
    moved = cv2.warpAffine(a, np.float32([[1, 0, dx], [0, 1, dy]]), (a.shape[1], a.shape[0]),
                           borderMode=cv2.BORDER_REPLICATE)
    m = max(1, min(a.shape) // 16)
    return np.array([dx, dy]), float(np.abs(moved - b)[m:-m, m:-m].mean())


def _mask_outside_gate(measured: list[tuple[int, float, float]], frames: int, threshold: float) -> Gate:
    """From (frame, share changed, mean change) of each frame with pixels outside the mask."""
    worst, worst_frame, mean_diff = 0.0, 0, 0.0
    for index, share, mean in measured:
        mean_diff += mean / frames
        if share > worst:
            worst, worst_frame = share, index
    verdict = "flag" if worst > threshold else "pass"
    return Gate("mask_outside", worst, threshold, verdict,
                f"{worst * 100:.2f}% of the pixels outside the mask changed by more than {CHANGED_LEVELS} levels "
                f"(frame {worst_frame}; mean change outside {mean_diff:.2f} levels)")


def _outside_numbers(source: np.ndarray, take: np.ndarray, mask: np.ndarray) -> tuple[float, float] | None:
    """(share of the outside pixels changed beyond CHANGED_LEVELS, their mean change) of one
    frame; None when the mask covers it all."""
    outside = np.where(mask, 0, 255).astype(np.uint8)
    count = cv2.countNonZero(outside)
    if not count:
        return None
    d = cv2.absdiff(take, source)
    d = cv2.max(cv2.max(d[..., 0], d[..., 1]), d[..., 2])
    changed = cv2.compare(d, CHANGED_LEVELS, cv2.CMP_GT)
    return cv2.countNonZero(cv2.bitwise_and(changed, outside)) / count, cv2.mean(d, mask=outside)[0]


_RING_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def _boundary_ratio(frame: np.ndarray, mask: np.ndarray) -> float | None:
    """Gradient on the mask's edge ring / gradient of the band just outside, for one frame."""
    ys, xs = np.nonzero(mask)
    if not len(ys) or len(ys) == mask.size:
        return None
    pad = 16  # the measuring bands reach 10 px past the mask
    y0, y1 = max(0, ys.min() - pad), min(mask.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(mask.shape[1], xs.max() + pad + 1)
    m = mask[y0:y1, x0:x1].astype(np.uint8)
    ring = (cv2.dilate(m, _RING_KERNEL) > 0) & ~(cv2.erode(m, _RING_KERNEL) > 0)
    outer = (cv2.dilate(m, _RING_KERNEL, iterations=4) > 0) & ~(cv2.dilate(m, _RING_KERNEL, iterations=2) > 0)
    if not ring.any() or not outer.any():
        return None
    gray = _gray(frame[None, y0:y1, x0:x1])[0]
    grad = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    return float(grad[ring].mean()) / max(float(grad[outer].mean()), 1.0)


def _blocks(frames: np.ndarray, grid: int = BLOCKS) -> np.ndarray:
    """(n, grid, grid) float32 block means of (n, h, w) frames."""
    return np.stack([cv2.resize(f.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
                     for f in frames])


def _second_difference_blocks(blocks: np.ndarray) -> np.ndarray:
    return np.abs(blocks[2:] - 2 * blocks[1:-1] + blocks[:-2])


def _flicker_of_blocks(blocks: np.ndarray) -> float:
    """The common part of the blocks' 2nd temporal difference of luminance: |the median over
    the blocks of each frame triple's signed 2nd difference|, averaged over the triples.
    Steady light gives little, light that pumps a lot (it moves the blocks together, one way);
    real motion (a car crossing, a pan over detail) jerks blocks both ways and cancels out."""
    if len(blocks) < 3:
        return float("nan")
    second = blocks[2:] - 2 * blocks[1:-1] + blocks[:-2]
    return float(np.abs(np.median(second.reshape(len(second), -1), axis=1)).mean())


def _inpaint_flicker_blocks(take_blocks: np.ndarray, share: np.ndarray) -> tuple[float, float]:
    """(wobble where the mask covered the block in all three frames, wobble of the clear blocks
    right around those, in the same frames): the fill should breathe like the untouched picture
    next to it at that moment (like with like: where a subject moves by the mask, its
    neighbours move too; a static background far away says nothing about it)."""
    if len(take_blocks) < 3:
        return float("nan"), float("nan")
    second = _second_difference_blocks(take_blocks)
    covered = (share[2:] >= 0.5) & (share[1:-1] >= 0.5) & (share[:-2] >= 0.5)
    clear = (share[2:] == 0) & (share[1:-1] == 0) & (share[:-2] == 0)
    near = np.stack([cv2.dilate(c.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0 for c in covered]) & clear
    if not covered.any() or not near.any():
        return float("nan"), float("nan")
    frames = covered.any(axis=(1, 2)) & near.any(axis=(1, 2))
    if not frames.any():
        return float("nan"), float("nan")
    return float(second[covered & frames[:, None, None]].mean()), float(second[near & frames[:, None, None]].mean())


def _extension_and_reference(source: np.ndarray, generated: np.ndarray, side: str, frames: int):
    """(the new frames with the source frame they continue from, the source frames at that
    edge to compare with): frames or their block luminances alike. The join is the seam gate's
    business; flicker is measured inside the new frames (two new frames are then enough)."""
    count = max(3, min(len(source), frames))
    reference = source[-count:] if side == "tail" else source[:count]
    edge = source[-1:] if side == "tail" else source[:1]
    return (np.concatenate([edge, generated]) if side == "tail" else np.concatenate([generated, edge])), reference


def _flicker_gate(mine: float, theirs: float, against: str, threshold: float) -> Gate:
    if np.isnan(mine) or np.isnan(theirs):
        return Gate("flicker", None, threshold, "n/a", "too few frames (or no steadily masked area) to compare")
    value = mine / max(theirs, FLICKER_FLOOR)
    # a ratio of two small wobbles is not a visible flicker: the excess must reach FLICKER_EXCESS too
    # (scaled down with a contract's stricter threshold: a stricter review asks for less)
    excess = FLICKER_EXCESS * min(1.0, threshold / DEFAULTS["flicker"])
    verdict = "flag" if value > threshold and mine - theirs > excess else "pass"
    return Gate("flicker", value, threshold, verdict,
                f"block luminance wobbles {mine:.2f} levels/frame² vs {theirs:.2f} in {against} ({value:.2f}x"
                + (f"; {mine - theirs:.2f} more, under the {excess:.2f} that shows)"
                   if value > threshold and verdict == "pass" else ")"))


def conformance(expected: Expected, actual: Actual) -> Gate:
    problems = []
    if actual.frames != expected.frames:
        problems.append(f"{actual.frames} frames, asked {expected.frames}")
    if Fraction(actual.rate) != Fraction(expected.rate):
        problems.append(f"{actual.rate} fps, asked {expected.rate}")
    if tuple(actual.size) != tuple(expected.size):
        problems.append(f"{actual.size[0]}x{actual.size[1]}, asked {expected.size[0]}x{expected.size[1]}")
    if expected.timecode and actual.timecode != expected.timecode:
        problems.append(f"starts at {actual.timecode or 'no timecode'}, asked {expected.timecode}")
    return Gate("conformance", float(len(problems)), 0.0, "flag" if problems else "pass",
                "; ".join(problems) if problems else
                f"{actual.frames} frames at {actual.rate} fps, {actual.size[0]}x{actual.size[1]}"
                + (f", from {actual.timecode}" if actual.timecode else ""))


def _band_ratio(frames: np.ndarray) -> float:
    """High-band (0.55..0.95 Nyquist) over mid-band (0.15..0.45) spectral energy of luma, on a
    central crop of at most 512 x 512 of up to 4 frames, less each frame's noise floor (white
    noise of the picture's own level, server/noise.py, puts sigma^2 x sum(window^2) in every
    bin): a denoise takes grain away, which is not resolution; an upscale takes the signal's
    fine detail away."""
    picks = frames[np.linspace(0, len(frames) - 1, min(4, len(frames))).astype(int)]
    h, w = picks.shape[1:3]
    ch, cw = min(h, 512), min(w, 512)
    top, left = (h - ch) // 2, (w - cw) // 2
    gray = _gray(picks[:, top:top + ch, left:left + cw]).astype(np.float32)
    fy = np.fft.fftfreq(ch)[:, None] * 2
    fx = np.fft.rfftfreq(cw)[None, :] * 2
    radius = np.sqrt(fx ** 2 + fy ** 2)
    high = (radius >= 0.55) & (radius <= 0.95)
    mid = (radius >= 0.15) & (radius <= 0.45)
    window = np.outer(np.hanning(ch), np.hanning(cw)).astype(np.float32)
    floor_per_sigma = float((window ** 2).sum())
    ratios = []
    for g in gray:
        power = np.abs(np.fft.rfft2((g - g.mean()) * window)) ** 2
        floor = noise.luma_sigma(g) ** 2 * floor_per_sigma
        signal_high = max(float(power[high].mean()) - floor, 0.05 * float(power[high].mean()))
        ratios.append(signal_high / max(float(power[mid].mean()) - floor, 1e-9))
    return float(np.mean(ratios))


def _upscale_gate(g: tuple[int, int], delivered: tuple[int, int], threshold: float) -> Gate:
    share = (g[0] * g[1]) / (delivered[0] * delivered[1])
    return Gate("real_resolution", share, threshold, "flag" if share < threshold else "pass",
                f"generated at {g[0]}x{g[1]} and upscaled to {delivered[0]}x{delivered[1]} "
                f"({share:.0%} of the delivered pixels)")


def _detail_gate(mine: float, theirs: float, delivered: tuple[int, int], threshold: float) -> Gate:
    value = mine / max(theirs, 1e-9)
    verdict = "flag" if value < threshold else "pass"
    return Gate("real_resolution", value, threshold, verdict,
                f"fine detail {value:.2f}x the source's at {delivered[0]}x{delivered[1]}"
                + (" — looks upscaled from a smaller picture" if verdict == "flag" else ""))


def color_clip(color: dict, thresholds=None) -> Gate:
    """The generated region's pixels that the model's working space could not hold: source
    pixels clipped on the way in (a log source's highlights and gamut beyond sRGB-encoded
    Rec.709), or pixels the model made at the end of its range. Only for takes that went
    through a colour transform (a contract colour space on a generative backend)."""
    threshold = thresholds_from(thresholds)["color_clip"]
    clipped, saturated = float(color.get("clipped_in_share", 0.0)), float(color.get("saturated_out_share", 0.0))
    value = max(clipped, saturated)
    verdict = "flag" if value > threshold else "pass"
    return Gate("color_clip", value, threshold, verdict,
                f"{clipped:.1%} of the generated region's source pixels fell outside {color.get('model_space')} "
                f"and were clipped; {saturated:.1%} of the generated pixels sit at its limits")


def status_and_flags(gates: list[Gate]) -> tuple[str, list[str]]:
    """("needs_review", reasons) when any gate flags, else ("ok", [])."""
    reasons = [g.reason() for g in gates if g.flagged]
    return ("needs_review" if reasons else "ok"), reasons


class GateMeter:
    """The gates of a take measured while its frames stream past: each frame leaves a few
    numbers (block luminance, its mask share, its outside-mask change, its edge ratio) and a
    handful of frames are kept whole (the join of an extension, the frames the detail measure
    looks at), so memory does not grow with the take's length. finish() gives the same gates,
    with the same values, as evaluate() on the whole arrays.

    Frames go in through add_source(i, frame) for the source range as read (i = 0..) and
    add_take(i, frame, mask) for the take (i = 0..; the mask of the source frame it covers)."""

    def __init__(self, op: str, source_count: int, take_count: int, *, extend_side: str = "tail",
                 extend_frames: int = 0, with_mask: bool = False):
        self.op, self.side, self.extend_frames = op, extend_side, extend_frames
        self.source_count, self.take_count = source_count, take_count
        self.with_mask = with_mask
        self.source_blocks: dict[int, np.ndarray] = {}
        self.take_blocks: dict[int, np.ndarray] = {}
        self.mask_blocks: dict[int, np.ndarray] = {}
        self.outside: list[tuple[int, float, float]] = []      # (frame, share changed, mean change)
        self.outside_frames = 0
        self.boundary: list[float] = []
        self.kept_source: dict[int, np.ndarray] = {}
        self.kept_take: dict[int, np.ndarray] = {}
        generated = self._generated_indexes()
        self.detail_take = {generated[i] for i in _picks(len(generated))}
        self.detail_source = set(_picks(source_count))
        self.seam_source = set(range(max(0, source_count - 9), source_count) if extend_side == "tail"
                               else range(min(9, source_count)))
        self.edge_new = (generated[0] if extend_side == "tail" else generated[-1]) if generated else None
        # motion, order, levels: running numbers, and thumbnails only for the frames in reach
        self.source_thumbs: dict[int, np.ndarray] = {}  # a sliding window: pruned as take frames pass
        self.pending_order: dict[int, tuple] = {}       # take frames waiting for their source neighbours
        self.order_wrong: list[int] = []
        self.order_checked = 0
        self.last_source_needed = -1
        if op == "extend" and generated:
            self.motion_frames = set(generated) | ({generated[0] - 1} if extend_side == "tail" else {generated[-1] + 1})
        else:
            self.motion_frames = set()
        self.motion_steps: list[float] = []
        self.previous_take: tuple[int, np.ndarray] | None = None
        self.levels = [0.0, 0.0, 0]                     # signed and absolute luma change outside the mask, frames
        self.inside = [0.0, 0]                          # absolute luma change inside the mask, frames

    def source_index(self, take_index: int) -> int | None:
        """The source frame a take frame shows (None: a new frame of an extension)."""
        if self.op != "extend":
            return take_index
        s = take_index - self.extend_frames if self.side == "head" else take_index
        return s if 0 <= s < self.source_count else None

    def _generated_indexes(self) -> list[int]:
        if self.op != "extend":
            return list(range(self.take_count))
        if self.side == "head":
            return list(range(self.extend_frames))
        return list(range(self.take_count - self.extend_frames, self.take_count))

    def add_source(self, index: int, frame: np.ndarray) -> None:
        gray = _gray(frame[None])[0]
        self.source_blocks[index] = _blocks(gray[None])[0]
        self.source_thumbs[index] = _thumb(gray)
        self._check_order()
        if self.op == "extend" and index in self.seam_source:
            self.kept_source[index] = frame.copy()
        elif index in self.detail_source:
            self.kept_source[index] = _detail_crop(frame)

    def add_take(self, index: int, frame: np.ndarray, source: np.ndarray | None = None,
                 mask: np.ndarray | None = None) -> None:
        gray = _gray(frame[None])[0]
        self.take_blocks[index] = _blocks(gray[None])[0]
        thumb = _thumb(gray)
        if index in self.motion_frames:
            if self.previous_take is not None and self.previous_take[0] == index - 1:
                self.motion_steps.append(_thumb_change(self.previous_take[1], thumb))
            self.previous_take = (index, thumb)
        weight = None
        if source is not None and self.op in ("refine", "inpaint"):
            source_gray = _gray(source[None])[0].astype(np.float32)
            diff = gray.astype(np.float32) - source_gray
            if mask is not None:
                weight = 1.0 - _thumb(mask.astype(np.float32) * 255) / 255.0
                if mask.any():
                    self.inside[0] += float(np.abs(diff[mask]).mean())
                    self.inside[1] += 1
                diff = diff[~mask] if (~mask).any() else None
            if diff is not None:
                self.levels[0] += float(diff.mean())
                self.levels[1] += float(np.abs(diff).mean())
                self.levels[2] += 1
        s = self.source_index(index)
        if s is not None:
            self.pending_order[index] = (s, thumb, weight)
            self.last_source_needed = max(self.last_source_needed, s)
            self._check_order()
        if index == self.edge_new:
            self.kept_take[index] = frame.copy()
        elif index in self.detail_take:
            self.kept_take[index] = _detail_crop(frame)
        if mask is None or source is None:
            return
        self.mask_blocks[index] = _blocks(mask[None].astype(np.float32))[0]
        self.outside_frames += 1
        numbers = _outside_numbers(source, frame, mask)
        if numbers is not None:
            self.outside.append((index, *numbers))
        ratio = _boundary_ratio(frame, mask)
        if ratio is not None:
            self.boundary.append(ratio)

    def finish(self, *, expected: Expected | None = None, actual: Actual | None = None, seams: list | None = None,
               generated_size=None, fallbacks=None, thresholds=None, delivered_size=None) -> list[Gate]:
        limits = thresholds_from(thresholds)
        source_blocks = np.stack([self.source_blocks[i] for i in sorted(self.source_blocks)])
        take_blocks = np.stack([self.take_blocks[i] for i in sorted(self.take_blocks)])
        gates = []
        if self.op == "extend":
            gates.append(self._seam(limits["seam"]))
        if self.op == "inpaint" and self.with_mask:
            gates.append(self._mask_outside(limits["mask_outside"]))
            gates.append(self._mask_boundary(limits["mask_boundary"]))
        gates.append(self._flicker(source_blocks, take_blocks, limits["flicker"]))
        if expected is not None and actual is not None:
            gates.append(conformance(expected, actual))
        gates.append(self._real_resolution(generated_size, delivered_size, limits["real_resolution"]))
        if self.op == "extend":
            gates.append(self._motion(limits["motion"]))
        gates.append(self._frame_order(limits["frame_order"]))
        if self.op in ("refine", "inpaint"):
            gates.append(self._level_shift(limits["level_shift"]))
        if self.op == "inpaint" and self.with_mask:
            gates.append(self._inpaint_effect(limits["inpaint_effect"]))
        if self.op == "extend" or seams:
            gates.append(self._color_drift(seams or [], limits["color_drift"]))
        if fallbacks is not None:
            gates.append(Gate("fallback", float(len(fallbacks)), 0.0, "flag" if fallbacks else "pass",
                              "; ".join(fallbacks)))
        return gates

    def _seam(self, threshold: float) -> Gate:
        window = np.stack([self.kept_source[i] for i in sorted(self.seam_source)]) if self.seam_source else None
        if self.extend_frames <= 0 or self.edge_new is None or window is None or self.source_count < 2:
            return Gate("seam", None, threshold, "n/a", "no new frames or too little source to compare")
        new = self.kept_take[self.edge_new]
        edge = window[-1] if self.side == "tail" else window[0]
        return _seam_gate(window, edge, new, threshold, self.side)

    def _color_drift(self, seams: list, threshold: float) -> Gate:
        """Colour drift (ΔE*76 of mean L*a*b*) at the extension's join (last kept frame against
        the first new one) and at each join between a generative backend's chunks, after they
        were matched to the first chunk (server/backends/diffusers/conform.colour_matched)."""
        parts = []
        window = [self.kept_source[i] for i in sorted(self.seam_source) if i in self.kept_source] \
            if self.op == "extend" else []
        if self.edge_new is not None and window:
            edge = window[-1] if self.side == "tail" else window[0]
            parts.append(("the join", delta_e_of(edge[None], self.kept_take[self.edge_new][None])))
        for seam in seams:
            parts.append((f"chunk at model frame {seam['at']} (was {seam['delta_e_before']:.2f})",
                          float(seam["delta_e_after"])))
        if not parts:
            return Gate("color_drift", None, threshold, "n/a", "no join to measure")
        where, value = max(parts, key=lambda p: p[1])
        verdict = "flag" if value > threshold else "pass"
        return Gate("color_drift", value, threshold, verdict, f"worst colour drift ΔE {value:.2f} at {where}"
                    + (f"; {len(seams)} chunk join(s) matched to the first chunk" if seams else ""))

    def _mask_outside(self, threshold: float) -> Gate:
        return _mask_outside_gate(self.outside, self.outside_frames, threshold)

    def _mask_boundary(self, threshold: float) -> Gate:
        if not self.boundary:
            return Gate("mask_boundary", None, threshold, "n/a", "the mask has no edge inside the frame")
        value = float(np.median(self.boundary))
        verdict = "flag" if value > threshold else "pass"
        return Gate("mask_boundary", value, threshold, verdict,
                    f"edge of the mask {value:.2f}x as sharp as its surroundings (median over "
                    f"{len(self.boundary)} frames)")

    def _flicker(self, source_blocks: np.ndarray, take_blocks: np.ndarray, threshold: float) -> Gate:
        if self.op == "inpaint" and self.with_mask:
            share = np.stack([self.mask_blocks[i] for i in sorted(self.mask_blocks)])
            mine, theirs = _inpaint_flicker_blocks(take_blocks[:len(share)], share[:len(take_blocks)])
            against = "the untouched background"
        else:
            if self.op == "extend":
                generated, reference = _extension_and_reference(
                    source_blocks, take_blocks[self._generated_indexes()], self.side, self.extend_frames)
            else:
                generated, reference = take_blocks, source_blocks
            mine, theirs = _flicker_of_blocks(generated), _flicker_of_blocks(reference)
            against = "the source"
        return _flicker_gate(mine, theirs, against, threshold)

    def _real_resolution(self, generated_size, delivered_size, threshold: float) -> Gate:
        if delivered_size is not None and generated_size is not None and tuple(generated_size) != tuple(delivered_size):
            return _upscale_gate(tuple(generated_size), tuple(delivered_size), threshold)
        picks_take = [_detail_crop(self.kept_take[i]) for i in sorted(self.detail_take)]
        picks_source = [_detail_crop(self.kept_source[i]) for i in sorted(self.detail_source)]
        if not picks_take or delivered_size is None or min(delivered_size) < 16:
            return Gate("real_resolution", None, threshold, "n/a", "frames too small to measure")
        return _detail_gate(_band_ratio(np.stack(picks_take)), _band_ratio(np.stack(picks_source)),
                            tuple(delivered_size), threshold)


    # -- motion, order, levels -----------------------------------------------------------------
    def _check_order(self, final: bool = False) -> None:
        """Judge the take frames whose source frame and its neighbours are in (all of them at
        the end), then let go of the source thumbnails no later take frame can need."""
        for index in sorted(self.pending_order):
            s, thumb, weight = self.pending_order[index]
            wanted = [n for n in (s - 1, s, s + 1) if 0 <= n < self.source_count]
            if not final and not all(n in self.source_thumbs for n in wanted):
                continue
            del self.pending_order[index]
            if s not in self.source_thumbs:
                continue
            self.order_checked += 1
            own = _thumb_change(thumb, self.source_thumbs[s], weight)
            around = [n for n in (s - 1, s + 1) if n in self.source_thumbs]
            moved = [_thumb_change(self.source_thumbs[s], self.source_thumbs[n], weight) for n in around]
            if not around or min(moved) < MOVING_FLOOR:
                continue   # the source stands still here: any of its frames would look alike
            if min(_thumb_change(thumb, self.source_thumbs[n], weight) for n in around) < CLOSER_SHARE * own:
                self.order_wrong.append(index)
        needed = min([s for s, _, _ in self.pending_order.values()] + [self.last_source_needed + 1]) - 1
        for n in [n for n in self.source_thumbs if n < needed]:
            del self.source_thumbs[n]

    def _source_motion(self) -> float:
        """The shot's median frame step at its extended edge, on thumbnails of the frames the
        seam gate keeps."""
        thumbs = [_thumb(_gray(self.kept_source[i][None])[0]) for i in sorted(self.seam_source)]
        steps = [_thumb_change(a, b) for a, b in zip(thumbs[:-1], thumbs[1:])]
        return float(np.median(steps)) if steps else 0.0

    def _motion(self, threshold: float) -> Gate:
        """An extension should keep moving as the shot did: the share of its frame-to-frame
        steps (the join included) that stand still where the shot's last frames moved."""
        generated = self._generated_indexes()
        if len(generated) < 2 or self.source_count < 3:
            return Gate("motion", None, threshold, "n/a", "too few frames to compare motion")
        typical = self._source_motion()
        if typical < MOVING_FLOOR:
            return Gate("motion", 0.0, threshold, "pass",
                        f"the shot stands still at its edge ({typical:.2f} levels a frame): holding is right")
        steps = self.motion_steps
        frozen = [s < min(STILL_SHARE * typical, STILL_LEVELS) for s in steps]
        value = float(np.mean(frozen)) if steps else 0.0
        first = frozen.index(True) if any(frozen) else None
        verdict = "flag" if value > threshold else "pass"
        return Gate("motion", value, threshold, verdict,
                    f"{sum(frozen)} of {len(steps)} steps of the new frames stand still (from step {first})"
                    f" where the shot moved {typical:.2f} levels a frame; median step {np.median(steps):.2f}"
                    if first is not None else
                    f"the new frames keep moving: median step {np.median(steps):.2f} levels, the shot's {typical:.2f}")

    def _frame_order(self, threshold: float) -> Gate:
        """Each take frame that shows a source frame should look most like that one: a frame
        that stands still where the source moved (a duplicate: a dropped frame padded back), or
        that is clearly closer to the source frame before or after (swapped, shifted), is out
        of place. Compared on thumbnails, outside the mask for an inpaint."""
        self._check_order(final=True)
        wrong = sorted(self.order_wrong)
        value = float(len(wrong))
        verdict = "flag" if value > threshold else "pass"
        return Gate("frame_order", value, threshold, verdict,
                    f"take frame(s) {_ranges_text(wrong)} look more like a neighbouring source frame than their own "
                    f"(a dropped, repeated or swapped frame)" if wrong else
                    f"each of {self.order_checked} frames looks most like its own source frame")

    def _level_shift(self, threshold: float) -> Gate:
        """Change where nothing should change: outside the mask (inpaint), or a whole refine's
        mean level. A VAE round trip or a grade shifts every pixel a few levels; the
        mask_outside gate counts only large changes."""
        if not self.levels[2]:
            return Gate("level_shift", None, threshold, "n/a", "nothing outside the mask to compare")
        signed, absolute = self.levels[0] / self.levels[2], self.levels[1] / self.levels[2]
        if self.op == "refine":   # a refine changes detail, not level: only the mean shift counts
            value, what = abs(signed), "the mean level"
        else:
            value, what = absolute, "pixels outside the mask"
        verdict = "flag" if value > threshold else "pass"
        return Gate("level_shift", value, threshold, verdict,
                    f"{what} changed by {value:.2f} levels on average (signed mean {signed:+.2f})")

    def _inpaint_effect(self, threshold: float) -> Gate:
        """An inpaint that leaves the masked region as it was (the object still there)."""
        if not self.inside[1]:
            return Gate("inpaint_effect", None, threshold, "n/a", "the mask is empty on every frame")
        value = self.inside[0] / self.inside[1]
        verdict = "flag" if value < threshold else "pass"
        return Gate("inpaint_effect", value, threshold, verdict,
                    f"the masked region changed by {value:.2f} levels on average"
                    + (" — the inpaint left it as it was" if verdict == "flag" else ""))


def _thumb(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape[:2]
    size = (min(THUMB_WIDTH, w), max(1, round(h * min(THUMB_WIDTH, w) / w)))
    return cv2.resize(gray.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def _thumb_change(a: np.ndarray, b: np.ndarray, weight: np.ndarray | None = None) -> float:
    d = np.abs(a - b)
    if weight is None:
        return float(d.mean())
    return float((d * weight).sum() / max(float(weight.sum()), 1e-6))


def _ranges_text(indexes: list[int]) -> str:
    out, start = [], None
    for i, v in enumerate(indexes):
        if start is None:
            start = v
        if i + 1 == len(indexes) or indexes[i + 1] != v + 1:
            out.append(f"{start}" if start == v else f"{start}-{v}")
            start = None
    return ", ".join(out)


def _detail_crop(frame: np.ndarray) -> np.ndarray:
    """The central crop of at most 512 x 512 that _band_ratio measures (kept instead of the frame)."""
    h, w = frame.shape[:2]
    ch, cw = min(h, 512), min(w, 512)
    top, left = (h - ch) // 2, (w - cw) // 2
    return frame[top:top + ch, left:left + cw].copy()


def _picks(count: int) -> list[int]:
    """The frames _band_ratio looks at, of `count` frames."""
    if count <= 0:
        return []
    return [int(i) for i in np.linspace(0, count - 1, min(4, count)).astype(int)]
