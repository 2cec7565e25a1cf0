"""Run one planned job: decode the source range, call the backend, composite, encode the take
into a staging folder, measure its gates. Readable top to bottom; no gRPC and no database here.

Frames stream: decode -> backend -> composite -> encode -> gates, one frame after another. What
is held at any time is the backend's window (classic refine: 7 frames; inpaint: its donor window,
sized by memory; extension: the frames at the extended edge), the source pictures waiting for
their generated frame, and a few frames the gates keep. So memory does not grow with a clip's
length. A backend without stream() (the diffusers backend works in model-sized chunks of its
own) gets the range as one array, as before.

Pixels travel at the source's depth: working RGB is 16-bit for sources deeper than 8 bits, and
frames (or pixels outside an inpaint mask) that the operation leaves as they were are written
from the source's own decoded samples when the take is stored in the source's pixel format.
"""
from __future__ import annotations

import collections
import dataclasses
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import cv2
import numpy as np

from server import faults, gates, paths
from server.backends.base import Backend, Cancelled, Spec
from server.backends.diffusers.conform import feathered_alpha
from server.media import delivery_for, write_movie
from server.media.encode import CopiedFrame, can_copy_packets
from server.media.decode import iter_masks, iter_pictures
from server.media.pixels import (align_mask, chroma_grid, composite_native, eight_bit, has_alpha, is_yuv,
                                 native_of_rgb, transcoded, working_depth)
from server.jobplan import CODECS, JobPlan, RunResult

# Share of the job's progress bar each stage gets (they overlap: frames stream through all).
STAGE_WEIGHTS = {"decode": 0.02, "generate": 0.9, "encode": 0.05, "gates": 0.03}

# report(stage, step, total, preview)
Report = Callable[[str, int, int, Optional[np.ndarray]], None]


@dataclasses.dataclass
class _Frame:
    """A source frame in flight: working RGB, its 8-bit view for the gates, its own picture
    (when kept), its mask (inpaint)."""
    index: int
    rgb: np.ndarray
    eight: np.ndarray
    picture: object = None
    mask: Optional[np.ndarray] = None


def run_plan(plan: JobPlan, backend: Backend, staging: Path, report: Report,
             cancel: threading.Event) -> RunResult:
    clock = _Clock()
    codec, suffix = CODECS[plan.codec]
    depth = working_depth(plan.media.bit_depth)
    delivery = delivery_for(codec, plan.media, depth)
    # the source's own samples are kept when the take is stored in the source's pixel format,
    # and the source's pictures also read when the take carries their alpha in another format
    native = delivery.pix_fmt == plan.media.pix_fmt and codec not in ("png", "exr")
    copy = can_copy_packets(plan.media, delivery)   # untouched ProRes/DNxHR frames: the source's packets
    # another Y'CbCr format (e.g. 4:2:0 8-bit H.264 into 4:2:2 10-bit ProRes): untouched pixels
    # are converted from the source's samples directly, as a plain re-encode would, not via RGB
    transcode = not native and codec not in ("png", "exr") and is_yuv(plan.media.pix_fmt) and is_yuv(delivery.pix_fmt)
    keep_pictures = native or copy or transcode or (plan.media.has_alpha and has_alpha(delivery.pix_fmt))
    plan.mask_grid = (1, 1)
    if (native or transcode) and plan.op == "inpaint":   # whole chroma samples of both formats
        plan.mask_grid = tuple(max(a, b) for a, b in zip(chroma_grid(plan.media.pix_fmt), chroma_grid(delivery.pix_fmt)))
    spec = Spec(op=plan.op, rate=plan.rate, seed=plan.seed, strength=plan.strength,
                extend_side=plan.extend_side or "tail", extend_frames=plan.extend_frames,
                prompt=plan.request.contract.prompt, negative_prompt=plan.request.contract.negative_prompt,
                model=plan.request.model, steps_scale=plan.steps_scale, color=plan.color)
    spec.reference_images = [_read_image(path) for path in plan.reference_paths]
    spec.scratch, spec.tier = staging, plan.tier
    meter = gates.GateMeter(plan.op, plan.read_count, plan.take_count, extend_side=plan.extend_side or "tail",
                            extend_frames=plan.extend_frames, with_mask=plan.op == "inpaint")
    job = _Job(plan, backend, spec, meter, clock, report, cancel, depth, delivery, keep_pictures, copy, transcode)

    report("decode", 0, 1, None)
    items = job.extension() if plan.op == "extend" else job.frame_by_frame()
    staging.mkdir(parents=True, exist_ok=True)
    dest = staging / f"{paths.slug(plan.shot)}{suffix}"
    with clock.stage("encode"):
        media = write_movie(_checked(items, cancel), dest, codec=codec, rate=plan.rate,
                            start_timecode=plan.start_timecode or None, drop_frame=plan.drop_frame, delivery=delivery,
                            copies=copy)
    _check(cancel)
    if job.made != plan.take_count:
        raise RuntimeError(f"backend {backend.name} made a take of {job.made} frames, not {plan.take_count}; "
                           f"this is a bug in the backend")
    report("encode", 1, 1, None)
    faults.point("encoded")

    size = (plan.media.width, plan.media.height)
    generated_size = tuple(spec.info.get("generated_size") or job.work_size or size)
    result = RunResult(staged=dest, media=media, timings=clock.totals, generated_size=generated_size,
                       delivered_size=size, fallbacks=list(plan.fallbacks), device=backend.device,
                       info=dict(spec.info))
    extension = spec.info.get("extend") or {}
    if extension.get("fallback"):   # stated, and flagged for review by the fallback gate
        result.fallbacks.append(extension["fallback"])
    if job.timing.get("held") or job.timing.get("skipped"):
        # stated, and flagged for review by the fallback gate: the take is frame-exact to the
        # timeline, but what the source showed between its timestamps was guessed
        result.fallbacks.append(
            f"the source has variable frame timing: {job.timing['held']} frame(s) held over timestamp gaps and "
            f"{job.timing['skipped']} extra picture(s) skipped to make {plan.read_count} frames at "
            f"{plan.media.rate} fps; conform it to a constant rate first (e.g. ffmpeg -vf fps={plan.media.rate}) "
            f"for a take made only of real pictures")
    result.pixels = {"source_bit_depth": plan.media.bit_depth, "processing_bit_depth": depth,
                     "delivery": delivery.describe(), "source_pix_fmt": plan.media.pix_fmt,
                     "source_color": plan.media.color.describe(), "kept_source_samples": native,
                     "frames_untouched": _ranges(job.untouched),
                     # untouched frames written as the source's own compressed packets or PNG files (bit-exact)
                     "frames_copied": _ranges(job.copied),
                     "frames_encoded": _ranges(sorted(set(range(plan.take_count)) - set(job.untouched))),
                     "mask_grid": list(plan.mask_grid) if plan.op == "inpaint" else None,
                     "variable_frame_timing": dict(job.timing),
                     "color_transform": spec.info.get("color")}
    with clock.stage("gates"):
        expected = gates.Expected(frames=plan.take_count, rate=plan.rate, size=size, timecode=plan.start_timecode or None)
        actual = gates.Actual(frames=media.frame_count, rate=media.rate, size=(media.width, media.height),
                              timecode=media.start_timecode)
        result.gates = meter.finish(expected=expected, actual=actual, generated_size=generated_size,
                                    delivered_size=size, fallbacks=result.fallbacks, seams=spec.info.get("seams"),
                                    thresholds=plan.request.contract.review.thresholds)
        if "color" in spec.info:
            result.gates.append(gates.color_clip(spec.info["color"], plan.request.contract.review.thresholds))
    report("gates", 1, 1, None)
    return result


class _Job:
    """The frame pipeline of one run (see the module's docstring)."""

    def __init__(self, plan: JobPlan, backend, spec: Spec, meter, clock, report, cancel, depth, delivery,
                 keep_pictures: bool, copy_packets: bool = False, transcode: bool = False):
        self.plan, self.backend, self.spec, self.meter, self.clock = plan, backend, spec, meter, clock
        self.report, self.cancel, self.delivery = report, cancel, delivery
        self.depth, self.keep_pictures = depth, keep_pictures
        self.same_format = keep_pictures and delivery.pix_fmt == plan.media.pix_fmt
        self.transcode = transcode   # never with same_format: it needs another Y'CbCr format
        self.deep_backend = bool(getattr(backend, "deep", False))
        self.untouched: list[int] = []
        self.copied: list[int] = []
        self.timing: dict = {}   # variable frame timing met while reading (decode.iter_pictures)
        self.copy_packets = copy_packets
        self.made = 0
        self.work_size: tuple[int, int] | None = None

    # -- the source --------------------------------------------------------------------------
    def source(self, positions: Iterable[int] | None = None) -> Iterator[_Frame]:
        """The read range's frames (or those at `positions` of it), decoded at the working depth.
        Media frames are decoded once even when a rate change maps several read frames onto one."""
        plan = self.plan
        wanted = list(range(plan.read_count)) if positions is None else list(positions)
        if not wanted:
            return
        media_indexes = [plan.media_indices[i] for i in wanted]
        first, last = min(media_indexes), max(media_indexes)
        pictures = self.clock.wrap(enumerate(iter_pictures(plan.media.path, first, last - first + 1,
                                                           rate=plan.media.rate, depth=self.depth,
                                                           native=self.keep_pictures, timing=self.timing),
                                             start=first), "decode")
        masks = self._masks(wanted) if plan.op == "inpaint" else None
        cache: dict[int, tuple] = {}
        current = first - 1
        for position, media_index in zip(wanted, media_indexes):
            while current < media_index:
                current, decoded = next(pictures)
                cache = {current: decoded}
            rgb, picture = cache[media_index]
            mask = next(masks) if masks is not None else None
            if position == wanted[0]:
                faults.point("decoded")
            yield _Frame(position, rgb, eight_bit(rgb), picture, mask)

    def _masks(self, positions: list[int]) -> Iterator[np.ndarray]:
        """Each read frame's mask: matte frame 0 is the clip's first frame, handles hold the
        nearest matte frame; inverted, grown and aligned to the chroma grid as planned."""
        plan = self.plan
        offsets = [min(max(plan.read_start + p - plan.selection.source_start, 0), plan.selection.source_duration - 1)
                   for p in positions]
        size = (plan.media.width, plan.media.height)
        for mask in self.clock.wrap(iter_masks(plan.mask_path, offsets, size, rate=plan.rate), "decode"):
            if plan.mask_invert:
                mask = ~mask
            if plan.mask_grow:
                mask = grow_mask(mask, plan.mask_grow)
            yield align_mask(mask, plan.mask_grid)

    # -- refine and inpaint ----------------------------------------------------------------------
    def frame_by_frame(self) -> Iterator:
        plan, pending = self.plan, collections.deque()
        work_masks = collections.deque()

        def inputs() -> Iterator[np.ndarray]:
            for frame in self.source():
                self.meter.add_source(frame.index, frame.eight)
                pending.append(frame)
                work, work_mask = self._work(frame)
                work_masks.append(work_mask)
                yield work

        def masks() -> Iterator[np.ndarray]:
            while work_masks:
                yield work_masks.popleft()

        progress = self._progress(plan.read_count)
        if hasattr(self.backend, "stream"):
            made = self.backend.stream(plan.op, inputs(), masks() if plan.op == "inpaint" else None, self.spec,
                                       progress, self.cancel, plan.read_count)
        else:
            made = self._whole(plan.op, inputs(), lambda: np.stack(list(work_masks)), progress)
        for generated in self.clock.wrap(made, "generate"):
            faults.point("generated")
            frame = pending.popleft()
            take = self._composited(frame, self._back(generated, frame.rgb))
            yield self._item(self.made, take, frame)

    def _whole(self, op, inputs: Iterator[np.ndarray], masks: Callable, progress) -> Iterator[np.ndarray]:
        """A backend without stream(): the range as one array."""
        frames = np.stack(list(inputs))
        if op == "inpaint":
            self.spec.mask = masks()
        yield from self.backend.run(op, frames, self.spec, progress, self.cancel)

    def _work(self, frame: _Frame) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """What the backend gets for a frame: at its depth, smaller when the job was degraded."""
        work, mask = (frame.rgb if self.deep_backend else frame.eight), frame.mask
        if self.plan.scale < 1:
            size = (max(16, round(work.shape[1] * self.plan.scale)), max(16, round(work.shape[0] * self.plan.scale)))
            work = cv2.resize(work, size, interpolation=cv2.INTER_AREA)
            if mask is not None:
                mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        self.work_size = (work.shape[1], work.shape[0])
        return work, mask

    def _back(self, generated: np.ndarray, like: np.ndarray) -> np.ndarray:
        """A generated frame at the source's size and the working depth."""
        generated = _at_depth(generated, like.dtype)
        if generated.shape != like.shape:
            generated = cv2.resize(generated, (like.shape[1], like.shape[0]), interpolation=cv2.INTER_CUBIC)
        return generated

    def _composited(self, frame: _Frame, generated: np.ndarray) -> np.ndarray:
        """Pixels outside an inpaint mask are the source's; a feathered edge only inside it."""
        if self.plan.op != "inpaint":
            return generated
        mask = frame.mask
        if self.plan.feather > 0:
            alpha = feathered_alpha(mask[None], self.plan.feather)[0][..., None]
            blended = np.rint(alpha * generated.astype(np.float32) + (1 - alpha) * frame.rgb.astype(np.float32))
            return np.where(mask[..., None], blended.astype(frame.rgb.dtype), frame.rgb)
        return np.where(mask[..., None], generated, frame.rgb)

    # -- extend ----------------------------------------------------------------------------------
    def extension(self) -> Iterator:
        """The source range as it is, and the new frames at its edge. Only the frames at the
        extended edge that the backend needs are held (extend_context())."""
        plan, n = self.plan, self.plan.read_count
        context = min(n, int(getattr(self.backend, "extend_context", lambda: n)()))
        if plan.extend_side == "head":
            edge = list(self.source(range(context)))
            yield from self._new_frames(edge)
            for frame in self.source():
                self.meter.add_source(frame.index, frame.eight)
                yield self._item(self.made, frame.rgb, frame)
            return
        edge: collections.deque = collections.deque(maxlen=context)
        for frame in self.source():
            self.meter.add_source(frame.index, frame.eight)
            edge.append(frame)
            yield self._item(self.made, frame.rgb, frame)
        yield from self._new_frames(list(edge))

    def _new_frames(self, edge: list[_Frame]) -> Iterator:
        works = [self._work(frame)[0] for frame in edge]
        progress = self._progress(self.plan.extend_frames)
        with self.clock.stage("generate"):
            made = self.backend.run("extend", np.stack(works), self.spec, progress, self.cancel)
        faults.point("generated")
        nearest = edge[-1] if self.plan.extend_side == "tail" else edge[0]
        for generated in made:
            yield self._item(self.made, self._back(generated, nearest.rgb), None, alpha_from=nearest.picture)

    # -- one take frame ------------------------------------------------------------------------
    def _item(self, index: int, take: np.ndarray, frame: Optional[_Frame], alpha_from=None):
        """What is written for take frame `index`: the source's own picture where the operation
        left the frame as it was (bit-exact in any decoder), the source's samples outside the
        mask for an inpaint frame, the take's RGB otherwise (with the source's alpha where the
        take has alpha). Also feeds the gates."""
        self.made += 1
        eight = eight_bit(take)
        self.meter.add_take(index, eight, frame.eight if frame is not None else None,
                            frame.mask if frame is not None else None)
        if frame is None:
            return self._converted(take, alpha_from)
        if np.array_equal(take, frame.rgb):
            self.untouched.append(index)
            if self.copy_packets:
                self.copied.append(index)
                return CopiedFrame(self.plan.media.path, self.plan.media_indices[frame.index], frame.picture)
            if self.same_format:
                return frame.picture
            return self._transcoded(frame.picture) if self.transcode else self._converted(take, frame.picture)
        if (self.same_format or self.transcode) and self.plan.op == "inpaint":
            base = frame.picture if self.same_format else self._transcoded(frame.picture)
            return composite_native(base, self._converted(take, frame.picture), frame.mask)
        return self._converted(take, frame.picture)

    def _transcoded(self, picture):
        return transcoded(picture, self.delivery.pix_fmt, self.plan.media.color, self.delivery.color)

    def _converted(self, rgb: np.ndarray, alpha_from):
        if not self.keep_pictures:
            return rgb
        return native_of_rgb(rgb, self.delivery.pix_fmt, self.delivery.color, alpha_from=alpha_from)

    def _progress(self, total: int):
        """The backend's progress as the job's (its own steps: frames, or denoising steps)."""
        def progress(done: int, steps: int, preview) -> None:
            self.report("generate", done, steps or total, None if preview is None else eight_bit(preview))
        return progress


class _Clock:
    """Seconds per stage of an interleaved pipeline: time goes to the innermost stage running."""

    def __init__(self):
        self.totals: dict[str, float] = collections.defaultdict(float)
        self.stack: list[str] = []
        self.mark = time.monotonic()

    def _switch(self) -> None:
        now = time.monotonic()
        if self.stack:
            self.totals[self.stack[-1]] += now - self.mark
        self.mark = now

    class _Stage:
        def __init__(self, clock, name):
            self.clock, self.name = clock, name

        def __enter__(self):
            self.clock._switch()
            self.clock.stack.append(self.name)

        def __exit__(self, *exc):
            self.clock._switch()
            self.clock.stack.pop()

    def stage(self, name: str) -> "_Clock._Stage":
        return self._Stage(self, name)

    def wrap(self, iterable, name: str) -> Iterator:
        iterator = iter(iterable)
        while True:
            with self.stage(name):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item


def grow_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` grown by `pixels` (Euclidean): a distance transform, so its cost does not depend
    on how far it grows (a dilation kernel's does, with the square of the radius)."""
    if not mask.any():
        return mask.copy()
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= pixels


def _read_image(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"reference image {path} cannot be read; use a PNG or JPEG")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _ranges(indexes: list[int]) -> list[list[int]]:
    """[[first, last], ...] runs of consecutive indexes."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def _at_depth(frame: np.ndarray, dtype) -> np.ndarray:
    """A backend's frame at the working depth (a backend that only makes 8 bits is widened)."""
    if frame.dtype == dtype:
        return frame
    if frame.dtype == np.uint8 and dtype == np.uint16:
        return frame.astype(np.uint16) * 257
    raise RuntimeError(f"backend returned {frame.dtype} frames for {np.dtype(dtype)} work; this is a bug")


def _checked(items: Iterator, cancel: threading.Event) -> Iterator:
    for item in items:
        _check(cancel)
        yield item


def _check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled()
