"""The `diffusers` backend: refine, extend and inpaint with video diffusion pipelines.

| operation | pipeline | how |
|---|---|---|
| inpaint | Wan 2.1 VACE | source with the masked area grey + mask video (white = generate) |
| extend | Wan 2.1 VACE, or LTX-Video condition | last K frames kept (black mask) + N new (white); LTX: the tail as a conditioning video |
| refine | Wan video-to-video (strength), or LTX-Video condition (latents + denoise strength) | |
| generate | Wan 2.1 VACE, LTX-Video condition, Wan text-to-video, image-to-video or first-last-frame | text: nothing kept; image: the board as frame 0 (VACE: kept under a black mask; LTX: an image condition); keyframes: the first and last frames; references: the contract's images (VACE); a shot longer than one call continues from the last frames made, as an extension does |

Around the model (server/backends/diffusers/conform.py): the frames are resampled to the
model's native fps, resized to its size rule, cut into valid-length chunks that overlap and
are cross-faded, then mapped back to exactly the frames, rate and size the timeline asked
for. Reference images from the shot contract go to VACE. A seeded torch generator per chunk
makes the same request give the same pixels. Progress is reported per denoising step, with a
cheap latent preview every few steps; cancellation is checked between steps.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import math
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from server.color import codes_of, frames_of

from ..base import BackendError, Cancelled, ProgressFn, Spec
from . import conform
from .loading import ModelProfile, PipelineCache, determinism_of, free_device_memory

log = logging.getLogger("takebridge.diffusers")
PREVIEW_EVERY_STEPS = 2
GREY = 128


class _Stop(Exception):
    """Raised from the step callback to leave the denoising loop at once."""


class DiffusersBackend:
    name = "diffusers"
    deep = True   # takes deep frames: narrows them itself (through the contract's colour space, if any)

    def __init__(self, profiles: list[ModelProfile], device: str, *, memory_budget_gb: float | None = None):
        self.profiles = {p.id: p for p in profiles}
        self.device = device
        budget = memory_budget_gb if memory_budget_gb is not None else _device_memory_gb(device)
        self.cache = PipelineCache(device, budget)

    def operations(self) -> tuple[str, ...]:
        return tuple(op for op in ("refine", "extend", "inpaint", "generate")
                     if any(op in p.operations for p in self.profiles.values()))

    def model_for(self, op: str, model_id: str = "") -> ModelProfile:
        if model_id:
            profile = self.profiles.get(model_id)
            if profile is None:
                raise BackendError("unknown_model", f"no model {model_id!r} in the profile; models: "
                                                    f"{', '.join(self.profiles) or 'none'}")
            if op not in profile.operations:
                raise BackendError("model_cannot", f"model {model_id!r} does {', '.join(profile.operations)}, "
                                                   f"not {op}")
            return profile
        for profile in self.profiles.values():
            if op in profile.operations:
                return profile
        raise BackendError("no_model", f"no model in the profile does {op}; add one (docs/models.md)")

    def estimate_seconds(self, op: str, width: int, height: int, frames: int, model_id: str = "",
                         steps_scale: float = 1.0) -> float:
        """Expected compute: the profile's `cost_per_megapixel_frame_step` x model megapixels x
        model frames x steps (0 when the profile gives no cost)."""
        profile = self.model_for(op, model_id)
        size = conform.model_size(width, height, tuple(profile.native_size), profile.size_multiple)
        model_frames = frames * profile.native_fps / 24.0
        steps = max(1, round(profile.steps * steps_scale))
        return profile.cost_per_megapixel_frame_step * size[0] * size[1] / 1e6 * model_frames * steps

    # -- memory -------------------------------------------------------------------------------
    def memory_estimate_gb(self, profile: ModelProfile, size: tuple[int, int], frames: int) -> float:
        """Resident weights (profile) + denoising activations, roughly linear in latent tokens."""
        tokens = (frames / 4 + 1) * (size[0] / 16) * (size[1] / 16)
        return profile.memory_gb + tokens * 0.5e-4  # ~0.5 GB per 10k tokens (bf16, one CFG branch pair)

    def check_memory(self, profile: ModelProfile, size: tuple[int, int], frames: int, spec: Spec | None = None) -> None:
        """Refuse a job that cannot fit, counting the VAE decode at the job's size (the step that
        runs out of memory last, after minutes of denoising); plan a tiled decode when only that fits."""
        if not self.device.startswith("cuda"):
            return
        import torch

        free, _total = torch.cuda.mem_get_info()
        loaded = profile.id in self.cache.loaded()
        room = (free + (self.cache.used_gb() * 1024 ** 3 if not loaded else 0)) / 1024 ** 3
        need = self.memory_estimate_gb(profile, size, frames) - (profile.memory_gb if loaded else 0.0)
        plan = decode_plan(room, need, decode_gb(size, frames), decode_gb(size, frames, tiled=True))
        if plan == "refuse":
            raise BackendError("insufficient_memory",
                               f"model {profile.id} needs about {need + decode_gb(size, frames, tiled=True):.1f} GB "
                               f"(with a tiled VAE decode) at {size[0]}x{size[1]} x {frames} frames but {room:.1f} GB "
                               f"is free on {self.device}; select fewer frames, enable group_offload in the "
                               f"profile, or free the GPU")
        if spec is not None:
            spec.info["decode"] = {"plan": plan, "full_decode_gb": round(decode_gb(size, frames), 2),
                                   "free_gb": round(room, 2)}

    # -- stream (refine, inpaint) --------------------------------------------------------------
    def stream(self, op: str, frames, masks, spec: Spec, progress: ProgressFn, cancel: threading.Event,
               total: int):
        """run() for refine and inpaint over iterators, a model window at a time: each frame is
        taken to the model's size (and colour space) as it arrives, every window runs as soon as
        its frames are in, and an output frame leaves once every window covering it is done.
        What is held: one window of model-size frames plus, in the server, the source frames
        between the newest input and the oldest output (about one window's span): bounded, not
        growing with the range. Same frames and spec give the same pixels as run()."""
        if op not in ("refine", "inpaint"):
            raise BackendError("unknown_operation", f"operation {op!r} does not stream; use run()")
        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            return
        runner, boundary = self._prepared(op, spec, first, total, progress, cancel)
        inputs = (boundary.into(frame, mask) for frame, mask in
                  zip(itertools.chain([first], frames), masks if masks is not None else itertools.repeat(None)))
        with self._running(cancel, boundary, spec):
            for out in runner.stream(op, inputs, total):
                yield boundary.out_of(out)

    # -- run ----------------------------------------------------------------------------------
    def run(self, op: str, frames: np.ndarray, spec: Spec, progress: ProgressFn,
            cancel: threading.Event) -> np.ndarray:
        if op == "generate":
            return self._generate(frames, spec, progress, cancel)
        if op not in ("refine", "inpaint", "extend"):
            raise BackendError("unknown_operation", f"operation {op!r} is not refine, extend, inpaint or generate")
        runner, boundary = self._prepared(op, spec, frames[0], len(frames) + spec.extend_frames, progress, cancel)
        masks = spec.mask if op == "inpaint" else itertools.repeat(None)
        model = np.stack([boundary.into(frame, mask)[0] for frame, mask in zip(frames, masks)])
        with self._running(cancel, boundary, spec):
            if op == "refine":
                out = runner.refine(model)
            elif op == "inpaint":
                out = runner.inpaint(model, spec.mask)
            else:
                out = runner.extend(model, spec.extend_frames, spec.extend_side)
            return np.stack([boundary.out_of(f) for f in out])

    def _prepared(self, op: str, spec: Spec, first: np.ndarray, frames: int, progress, cancel):
        """The model for `op`, its size for these frames (stated in spec.info), the memory check,
        the pipeline (loaded or warm), and the colour/depth boundary for the frames."""
        profile = self.model_for(op, spec.model)
        height, width = first.shape[:2]
        size = conform.model_size(width, height, tuple(profile.native_size), profile.size_multiple)
        spec.info.update({"model": profile.id, "weights_sha256": profile.weights_sha256,
                          "generated_size": size, "generated_fps": profile.native_fps,
                          "generator": f"torch.Generator({self.device}).manual_seed(seed + chunk)"})
        self.check_memory(profile, size, min(profile.max_frames, frames), spec)
        if cancel.is_set():
            raise Cancelled()
        pipe = self.cache.get(profile)   # a ModelError is a BackendError: the job fails with its code
        spec.info["determinism"] = determinism_of(pipe, profile, self.device)
        # an extension's new frames have no masks; refine and inpaint frames pair with theirs
        boundary = _Boundary(spec.color, first.dtype, (width, height), op == "inpaint")
        return _Run(self, pipe, profile, spec, size, progress, cancel), boundary

    def _generate(self, keyframes: np.ndarray, spec: Spec, progress, cancel: threading.Event) -> np.ndarray:
        """A new shot of spec.generate["frames"] frames at the shot's size (see the module's table)."""
        gen = spec.generate
        count, width, height = int(gen["frames"]), int(gen["width"]), int(gen["height"])
        profile = self.model_for("generate", spec.model)
        size = conform.model_size(width, height, tuple(profile.native_size), profile.size_multiple)
        spec.info.update({"model": profile.id, "weights_sha256": profile.weights_sha256, "generated_size": size,
                          "generated_fps": profile.native_fps, "kind": "model",
                          "made": f"{profile.id} ({profile.pipeline}), {gen['mode']} mode",
                          "generator": f"torch.Generator({self.device}).manual_seed(seed + chunk)"})
        self.check_memory(profile, size, min(profile.max_frames, count), spec)
        if cancel.is_set():
            raise Cancelled()
        pipe = self.cache.get(profile)
        spec.info["determinism"] = determinism_of(pipe, profile, self.device)
        run = _Run(self, pipe, profile, spec, size, progress, cancel)
        with self._running(cancel, _Boundary(None, np.uint8, (width, height), False), spec):
            made = run.generate(conform.resize(keyframes, size) if len(keyframes) else keyframes, gen["mode"], count)
        return conform.resize(made, (width, height))

    @contextlib.contextmanager
    def _running(self, cancel: threading.Event, boundary: "_Boundary", spec: Spec):
        """Around the calls into the pipeline: a stop from the step callback is a cancellation,
        the device's memory is freed after one, and the colour statistics are stated."""
        try:
            yield
        except _Stop:
            raise Cancelled() from None
        finally:
            if cancel.is_set():
                free_device_memory(self.device)
            boundary.describe(spec)


class _Boundary:
    """A frame into the model's terms (its colour space through the contract's transform, or
    8 bits) and a generated one back (source size, exact inverse transform, source depth), with
    the colour statistics run() reports, accumulated frame by frame."""

    def __init__(self, transform, dtype, size: tuple[int, int], masked: bool):
        self.transform, self.dtype, self.size, self.masked = transform, dtype, size, masked
        self.clipped_in = [0, 0]      # pixels with a channel outside 0..1 in the model's space, pixels looked at
        self.saturated_out = [0, 0]
        self.masks: list = []         # masks of frames in flight (inpaint), for the output statistics

    def into(self, frame: np.ndarray, mask):
        if self.masked:
            self.masks.append(mask)
        if self.transform is not None:
            model = self.transform.to_model(codes_of(frame))
            outside = ((model < 0.0) | (model > 1.0)).any(axis=-1)
            _count(self.clipped_in, outside, mask if self.masked else None)
            return frames_of(np.clip(model, 0.0, 1.0), np.uint8), mask
        if frame.dtype != np.uint8:
            frame = ((frame.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        return frame, mask

    def out_of(self, frame: np.ndarray) -> np.ndarray:
        frame = conform.resize(frame[None], self.size)[0]
        mask = self.masks.pop(0) if self.masked else None
        if self.transform is None:
            return frame
        _count(self.saturated_out, ((frame == 0) | (frame == 255)).any(axis=-1), mask)
        return frames_of(self.transform.from_model(codes_of(frame)), self.dtype)

    def describe(self, spec: Spec) -> None:
        if self.transform is not None:
            spec.info["color"] = {**self.transform.describe(),
                                  "clipped_in_share": self.clipped_in[0] / max(1, self.clipped_in[1]),
                                  "saturated_out_share": self.saturated_out[0] / max(1, self.saturated_out[1])}


def _count(tally: list, flags: np.ndarray, mask) -> None:
    if mask is not None and mask.shape == flags.shape:
        flags = flags[mask]
    tally[0] += int(flags.sum())
    tally[1] += int(flags.size)


class _Run:
    """One job's calls into a pipeline, with its progress accounting."""

    def __init__(self, backend, pipe, profile: ModelProfile, spec: Spec, size, progress: ProgressFn,
                 cancel: threading.Event):
        self.backend, self.pipe, self.profile, self.spec = backend, pipe, profile, spec
        self.size, self.progress, self.cancel = size, progress, cancel
        self.steps_done = 0
        self.steps_total = 0
        self.chunk_index = 0
        self.rate = Fraction(spec.rate)
        self.fps = float(profile.native_fps)
        self.references = [_pil(r) for r in (spec.reference_images or [])]
        # colour drift at each join of chunks, before and after matching to the first chunk
        self.seams = spec.info.setdefault("seams", [])
        spec.info["preview"] = "the middle latent frame's first three channels, scaled to 0..255 (no VAE decode)"
        self.guidance = profile.guidance_scale
        steps = profile.steps
        if getattr(spec, "tier", "final") == "draft":
            if not profile.draft:
                raise BackendError("no_draft_tier", f"model {profile.id} has no draft tier; ask for the final tier, "
                                                    f"or give its profile a draft section (docs/models.md)")
            steps = int(profile.draft.get("steps", max(1, profile.steps // 8)))
            self.guidance = float(profile.draft.get("guidance_scale", 1.0))
        spec.info["tier"] = {"tier": getattr(spec, "tier", "final"), "steps": steps, "guidance_scale": self.guidance}
        # the DEGRADE fallback may ask for fewer steps
        self.steps = max(1, int(round(steps * getattr(spec, "steps_scale", 1.0))))

    # -- shared -------------------------------------------------------------------------------
    def _generator(self):
        import torch

        device = "cpu" if not self.backend.device.startswith("cuda") else self.backend.device
        generator = torch.Generator(device).manual_seed(int(self.spec.seed) + self.chunk_index)
        self.chunk_index += 1
        return generator

    def _callback(self, pipe, step, timestep, kwargs):
        if self.cancel.is_set():
            raise _Stop()
        self.steps_done += 1
        preview = None
        if self.steps_done % PREVIEW_EVERY_STEPS == 0 and "latents" in kwargs:
            preview = _latent_preview(kwargs["latents"])
        self.progress(self.steps_done, max(self.steps_total, self.steps_done), preview)
        return {}

    def _call(self, **kwargs) -> np.ndarray:
        """One pipeline call, its VAE decode guarded (Wan pipelines): denoised to latents, which
        are saved before the decode; the decode runs tiled when the memory check planned it, and
        one that runs out of memory is retried tiled from the saved latents, not generated again.
        Other pipelines decode themselves."""
        if self.profile.pipeline not in WAN_PIPELINES:
            return self.pipe(**kwargs).frames[0]
        import torch

        latents = self.pipe(**{**kwargs, "output_type": "latent"}).frames
        if self.profile.pipeline == "wan_vace" and kwargs.get("reference_images"):
            latents = latents[:, :, len(kwargs["reference_images"]):]   # the references' own latent frames
        saved = self._save_latents(latents)
        decode = self.spec.info.setdefault("decode", {"plan": "full"})
        decode.update(latents_saved=saved is not None)
        if decode.get("plan") == "tiled":
            self.pipe.vae.enable_tiling()
        try:
            return self._decoded(latents)
        except torch.cuda.OutOfMemoryError:
            del latents
            free_device_memory(self.backend.device)
            self.pipe.vae.enable_tiling()
            decode.update(retried_tiled_after_out_of_memory=True, plan="tiled")
            log.warning("VAE decode ran out of memory; decoding again, tiled, from the saved latents")
            return self._decoded(torch.load(saved, weights_only=True) if saved else None)
        finally:
            if saved is not None:
                saved.unlink(missing_ok=True)

    def _save_latents(self, latents):
        import tempfile

        import torch

        folder = Path(self.spec.scratch) if getattr(self.spec, "scratch", None) else Path(tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"latents-{self.chunk_index:03d}.pt"
        torch.save(latents.detach().cpu(), path)
        return path

    def _decoded(self, latents) -> np.ndarray:
        """Wan latents to frames (0..1): un-normalised with the VAE's statistics, decoded, post-processed."""
        import torch

        vae = self.pipe.vae
        latents = latents.to(device=vae.device, dtype=vae.dtype)
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, latents.dtype)
        inverse_std = 1.0 / torch.tensor(vae.config.latents_std).view(shape).to(latents.device, latents.dtype)
        with torch.no_grad():
            video = vae.decode(latents / inverse_std + mean, return_dict=False)[0]
        return self.pipe.video_processor.postprocess_video(video, output_type="np")[0]

    def _steps_per_call(self, strength: float = 1.0) -> int:
        return max(1, int(self.steps * strength)) if strength < 1 else self.steps

    def _common(self) -> dict:
        return dict(prompt=self.spec.prompt or "", negative_prompt=self.spec.negative_prompt or None,
                    height=self.size[1], width=self.size[0], num_inference_steps=self.steps,
                    guidance_scale=self.guidance, output_type="np",
                    callback_on_step_end=self._callback, callback_on_step_end_tensor_inputs=["latents"])

    def _to_model(self, frames: np.ndarray) -> tuple[np.ndarray, list[int]]:
        picks = conform.to_model_times(len(frames), self.rate, self.fps)
        return conform.resize(frames[picks], self.size), picks

    def _back(self, model_frames: np.ndarray, count: int) -> np.ndarray:
        picks = conform.from_model_times(count, self.rate, self.fps, len(model_frames))
        return model_frames[picks]

    def _windows(self, total: int) -> list[tuple[int, int]]:
        length = self.profile.max_frames
        return conform.chunks(total, length, self.profile.overlap_frames, self.profile.frame_step)

    def _padded(self, frames: np.ndarray) -> np.ndarray:
        """Pad to the model's frame rule by repeating the last frame (the extra is dropped)."""
        target = conform.valid_length(len(frames), self.profile.frame_step)
        if target == len(frames):
            return frames
        return np.concatenate([frames, np.repeat(frames[-1:], target - len(frames), axis=0)])

    # -- streaming -----------------------------------------------------------------------------
    def stream(self, op: str, inputs, total: int):
        """(frame, mask) pairs at the source rate in; the operation's frames out, in order, as
        soon as they are final: the windows, seeds and cross-fades of refine()/inpaint()."""
        strength = float(self.spec.strength)
        if op == "refine" and strength <= 0:
            self.progress(1, 1, None)
            yield from (frame for frame, _ in inputs)
            return
        if op == "inpaint" and self.profile.pipeline != "wan_vace":
            raise BackendError("model_cannot", f"model {self.profile.id} has no mask input; inpaint needs Wan VACE")
        picks = conform.to_model_times(total, self.rate, self.fps)
        back = conform.from_model_times(total, self.rate, self.fps, len(picks))
        windows = self._windows(len(picks))
        self.steps_total = len(windows) * (self._steps_per_call(strength) if op == "refine" else self.steps)
        joiner = conform.Joiner(windows, len(picks), self.seams)
        model: dict[int, np.ndarray] = {}
        masks: dict[int, np.ndarray] = {}
        final: dict[int, np.ndarray] = {}
        filled, window, emitted = 0, 0, 0

        def run_ready(everything: bool):
            nonlocal window
            while window < len(windows) and (everything or windows[window][1] <= filled):
                start, end = windows[window]
                chunk = np.stack([model[m] for m in range(start, end)])
                if op == "refine":
                    out = self._refine_chunk(chunk, strength, end - start)
                else:
                    out = self._inpaint_chunk(chunk, np.stack([masks[m] for m in range(start, end)]), end - start)
                final.update(joiner.add(out))
                window += 1
                keep_from = windows[window][0] if window < len(windows) else len(picks)
                for m in [m for m in model if m < keep_from]:
                    del model[m]
                    masks.pop(m, None)

        def ready(consumed: int):
            # output k pairs with input k (the server composites it over that source frame), so
            # it never leaves before its input came in, even when its model frame is final
            nonlocal emitted
            while emitted < min(total, consumed) and back[emitted] in final:
                yield final[back[emitted]]
                emitted += 1
                for m in [m for m in final if m < back[min(emitted, total - 1)]]:
                    del final[m]

        for index, (frame, mask) in enumerate(inputs):
            while filled < len(picks) and picks[filled] == index:
                model[filled] = conform.resize(frame[None], self.size)[0]
                if mask is not None:
                    masks[filled] = conform.resize(mask[None].astype(np.uint8) * 255, self.size, nearest=True)[0] > 127
                filled += 1
            run_ready(False)
            yield from ready(index + 1)
        run_ready(True)
        yield from ready(total)

    def _refine_chunk(self, chunk: np.ndarray, strength: float, count: int) -> np.ndarray:
        chunk = self._padded(chunk)
        if self.profile.pipeline == "wan_v2v":
            # the pipeline denoises int(steps x strength) steps: at a draft's few steps that can be none
            common = {**self._common(), "num_inference_steps": max(self.steps, math.ceil(1 / max(strength, 1e-3)))}
            out = self._call(video=_pils(chunk), strength=strength, generator=self._generator(), **common)
        elif self.profile.pipeline == "ltx_condition":
            out = self._ltx_refine(chunk, strength)
        else:
            raise BackendError("model_cannot", f"model {self.profile.id} cannot refine")
        return _uint8(out)[:count]

    def _inpaint_chunk(self, chunk: np.ndarray, chunk_mask: np.ndarray, count: int) -> np.ndarray:
        video = self._padded(chunk).copy()
        chunk_mask = self._padded(chunk_mask)
        video[chunk_mask] = GREY
        out = self._call(video=_pils(video), mask=_pils(chunk_mask.astype(np.uint8) * 255, mode="L"),
                         reference_images=self.references or None, num_frames=len(video),
                         generator=self._generator(), **self._common())
        return _uint8(out)[:count]

    # -- operations ---------------------------------------------------------------------------
    def refine(self, frames: np.ndarray) -> np.ndarray:
        strength = float(self.spec.strength)
        if strength <= 0:
            self.progress(1, 1, None)
            return frames.copy()
        model, _ = self._to_model(frames)
        windows = self._windows(len(model))
        self.steps_total = len(windows) * self._steps_per_call(strength)
        pieces = [(start, self._refine_chunk(model[start:end], strength, end - start)) for start, end in windows]
        return self._back(conform.join_chunks(pieces, len(model), self.seams), len(frames))

    def _ltx_refine(self, chunk: np.ndarray, strength: float):
        import torch

        pipe = self.pipe
        video = torch.from_numpy(chunk).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
        video = video.to(device=pipe.vae.device, dtype=pipe.vae.dtype)
        with torch.no_grad():
            latents = pipe.vae.encode(video).latent_dist.mode()
        latents = pipe._normalize_latents(latents, pipe.vae.latents_mean, pipe.vae.latents_std)
        return pipe(latents=latents.to(pipe.transformer.dtype), denoise_strength=strength, num_frames=len(chunk),
                    frame_rate=self.fps, generator=self._generator(), **self._common()).frames[0]

    def inpaint(self, frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.profile.pipeline != "wan_vace":
            raise BackendError("model_cannot", f"model {self.profile.id} has no mask input; inpaint needs Wan VACE")
        model, picks = self._to_model(frames)
        masks = conform.resize(mask[picks].astype(np.uint8) * 255, self.size, nearest=True) > 127
        windows = self._windows(len(model))
        self.steps_total = len(windows) * self.steps
        pieces = [(start, self._inpaint_chunk(model[start:end], masks[start:end], end - start))
                  for start, end in windows]
        return self._back(conform.join_chunks(pieces, len(model), self.seams), len(frames))

    def extend(self, frames: np.ndarray, count: int, side: str) -> np.ndarray:
        """`count` new frames after the source (before it for a head extension: the clip is
        reversed, extended, and the new frames reversed back). Long extensions are made in
        several calls, each continuing from the last frames of the one before."""
        source = frames[::-1] if side == "head" else frames
        model, _ = self._to_model(source)
        needed = conform.model_frames_for(count, self.rate, self.fps)
        keep = min(len(model), max(1, (self.profile.max_frames - 1) // 2))
        context = model[-keep:]
        per_call = self.profile.max_frames - keep
        self.steps_total = max(1, -(-needed // per_call)) * self.steps
        made = []
        while sum(len(n) for n in made) < needed:
            fresh = self._continued(*self._extend_call(context, needed - sum(len(n) for n in made)))
            made.append(fresh)
            context = np.concatenate([context, fresh])[-keep:]
        generated = np.concatenate(made)[:needed]
        # the new frame k (at the timeline rate) sits (k + 1) / rate after the last source frame
        timeline = np.concatenate([model[-1:], generated])
        picks = [min(len(timeline) - 1, int(round((k + 1) / float(self.rate) * self.fps))) for k in range(count)]
        out = timeline[picks]
        return out[::-1].copy() if side == "head" else out

    def generate(self, keyframes: np.ndarray, mode: str, count: int) -> np.ndarray:
        """`count` frames at the timeline rate: made at the model's rate, in calls of at most
        max_frames, each after the first continuing from the last frames of the one before; the
        first keyframe is model frame 0, the last one (keyframes mode) the last model frame."""
        needed = len(conform.to_model_times(count, self.rate, self.fps))
        first = keyframes[0] if mode in ("image", "keyframes") and len(keyframes) else None
        last = keyframes[1] if mode == "keyframes" and len(keyframes) > 1 else None
        pipeline, limit, step = self.profile.pipeline, self.profile.max_frames, self.profile.frame_step
        if pipeline == "wan_v2v":
            raise BackendError("model_cannot", f"model {self.profile.id} turns video into video; Generate needs "
                                               f"Wan VACE, LTX-Video or a Wan text-to-video model")
        if pipeline == "wan_t2v" and (first is not None or needed > limit):
            why = "takes no picture" if first is not None else f"makes at most {limit} frames in one call"
            raise BackendError("model_cannot", f"model {self.profile.id} {why}; use Wan VACE or LTX-Video for a "
                                               f"board, keyframes or a shot this long")
        if mode == "references" and pipeline != "wan_vace":
            raise BackendError("model_cannot", f"model {self.profile.id} takes no reference images; use Wan VACE")
        if pipeline == "wan_i2v" and (first is None or last is not None):
            why = "needs a board (image mode)" if first is None else "takes one picture, not two keyframes"
            raise BackendError("model_cannot", f"model {self.profile.id} {why}; use Wan VACE, LTX-Video or a "
                                               f"first-last-frame model (wan_flf2v) for keyframes")
        if pipeline == "wan_flf2v" and (last is None or needed > limit):
            why = "needs a first and a last frame (keyframes mode)" if last is None else \
                f"makes at most {limit} frames between its two keyframes"
            raise BackendError("model_cannot", f"model {self.profile.id} {why}; use Wan VACE or LTX-Video")
        keep = max(1, (limit - 1) // 2)
        if pipeline == "wan_i2v":            # it continues from one picture: the last frame made
            keep = 1
        if pipeline == "ltx_condition":      # its conditioning clips are step*k + 1 frames long
            keep = ((keep - 1) // step) * step + 1
        calls = 1 if needed <= limit else 1 + -(-(needed - limit) // (limit - keep))
        self.steps_total = calls * self.steps
        made = np.zeros((0, self.size[1], self.size[0], 3), np.uint8)
        while len(made) < needed:
            context = made[-keep:]
            want = needed - len(made)
            total = min(conform.valid_length(len(context) + want, step), limit)
            last_at = len(context) + want - 1 if last is not None and len(context) + want <= total else None
            out = self._generate_call(context, first if not len(made) else None, last, last_at, total)
            if len(context):
                out = np.concatenate([context, self._continued(out, context)])
            if pipeline == "wan_flf2v" and last_at is not None and last_at < total - 1:
                # the model puts the last keyframe at its own last frame: its frames, spread over ours
                out = out[np.round(np.linspace(0, total - 1, last_at + 1)).astype(int)]
            made = np.concatenate([made, out[len(context):len(context) + want]])
        return made[conform.from_model_times(count, self.rate, self.fps, needed)]

    def _generate_call(self, context: np.ndarray, first, last, last_at, total: int) -> np.ndarray:
        """One pipeline call making `total` model frames: the `context` frames (continuing) or
        the `first` keyframe at frame 0, and the `last` keyframe at `last_at` when it is in this call."""
        pipeline = self.profile.pipeline
        if pipeline == "wan_vace":
            video = np.full((total, self.size[1], self.size[0], 3), GREY, np.uint8)
            mask = np.full(video.shape[:3], 255, np.uint8)
            known = dict(enumerate(context)) if len(context) else ({0: first} if first is not None else {})
            if last_at is not None:
                known[last_at] = last
            for index, frame in known.items():
                video[index], mask[index] = frame, 0
            out = self._call(video=_pils(video), mask=_pils(mask, mode="L"), reference_images=self.references or None,
                             num_frames=total, generator=self._generator(), **self._common())
        elif pipeline == "ltx_condition":
            from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

            conditions = []
            if len(context):
                conditions.append(LTXVideoCondition(video=_pils(context), frame_index=0))
            elif first is not None:
                conditions.append(LTXVideoCondition(image=_pil(first), frame_index=0))
            if last_at is not None:
                conditions.append(LTXVideoCondition(image=_pil(last), frame_index=last_at))
            out = self.pipe(conditions=conditions or None, num_frames=total, frame_rate=self.fps,
                            generator=self._generator(), **self._common()).frames[0]
        elif pipeline in ("wan_i2v", "wan_flf2v"):
            picture = context[-1] if len(context) else first
            extra = {"last_image": _pil(last)} if pipeline == "wan_flf2v" else {}
            out = self._call(image=_pil(picture), num_frames=total, generator=self._generator(), **extra,
                             **self._common())
        else:   # wan_t2v
            out = self._call(num_frames=total, generator=self._generator(), **self._common())
        return _uint8(out)

    def _extend_call(self, context: np.ndarray, want: int) -> np.ndarray:
        """New frames continuing `context` (at most what one call can make)."""
        step, limit = self.profile.frame_step, self.profile.max_frames
        if self.profile.pipeline == "wan_vace":
            cond = context
        elif self.profile.pipeline == "ltx_condition":
            usable = ((len(context) - 1) // step) * step + 1   # conditioning clips are step*k + 1 long
            cond = context[len(context) - usable:]
        else:
            raise BackendError("model_cannot", f"model {self.profile.id} cannot extend")
        total = min(conform.valid_length(len(cond) + want, step), limit)
        if total <= len(cond):
            raise BackendError("model_cannot", f"model {self.profile.id} takes {limit} frames, no room to extend "
                                               f"after {len(cond)} context frames")
        if self.profile.pipeline == "wan_vace":
            video = np.concatenate([cond, np.full((total - len(cond), *cond.shape[1:]), GREY, np.uint8)])
            mask = np.zeros(video.shape[:3], np.uint8)
            mask[len(cond):] = 255
            out = self._call(video=_pils(video), mask=_pils(mask, mode="L"), reference_images=self.references or None,
                             num_frames=total, generator=self._generator(), **self._common())
        else:
            from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

            out = self.pipe(conditions=[LTXVideoCondition(video=_pils(cond), frame_index=0)], num_frames=total,
                            frame_rate=self.fps, generator=self._generator(), **self._common()).frames[0]
        return _uint8(out)[:total], cond

    def _continued(self, out: np.ndarray, context: np.ndarray) -> np.ndarray:
        """A call's new frames, colour-matched so that its version of the `context` frames it
        was given takes their colour (the context is the source, or frames already matched to
        the first call: so every call is held to the first, not drifting at each join)."""
        if not len(context):
            return out
        ours = out[:len(context)]
        drift = conform.delta_e(ours, context)
        matched = conform.colour_matched(out, ours, context)
        self.seams.append({"at": int(len(context)), "delta_e_before": round(drift, 3),
                           "delta_e_after": round(conform.delta_e(matched[:len(context)], context), 3)})
        return matched[len(context):]


# -- helpers --------------------------------------------------------------------------------

WAN_PIPELINES = ("wan_vace", "wan_v2v", "wan_t2v", "wan_i2v", "wan_flf2v")
DECODE_BYTES_PER_PIXEL = 300          # full VAE decode peak per output pixel (estimate; bench/gpu_bench.py measures)
TILED_DECODE_GB = 1.5                 # a tiled decode's peak: bounded by the tile, not the shot (estimate)


def decode_gb(size: tuple[int, int], frames: int, *, tiled: bool = False) -> float:
    """Peak memory of the VAE decode of `frames` frames at `size`, full or tiled."""
    return TILED_DECODE_GB if tiled else size[0] * size[1] * frames * DECODE_BYTES_PER_PIXEL / 1024 ** 3


def decode_plan(free_gb: float, denoise_gb: float, full_gb: float, tiled_gb: float) -> str:
    """"full" when the denoising and a full decode fit, "tiled" when only a tiled decode does,
    "refuse" when neither (the decode runs after the denoising: the larger of the two counts)."""
    if max(denoise_gb, full_gb) <= free_gb:
        return "full"
    if max(denoise_gb, tiled_gb) <= free_gb:
        return "tiled"
    return "refuse"


def _device_memory_gb(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_properties(torch.device(device)).total_memory / 1024 ** 3 * 0.9
    return float("inf")


def _uint8(frames) -> np.ndarray:
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    return array


def _pils(frames: np.ndarray, mode: str = "RGB"):
    from PIL import Image

    return [Image.fromarray(np.ascontiguousarray(f), mode=mode) for f in frames]


def _pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(image))


def _latent_preview(latents) -> np.ndarray | None:
    """A cheap look at the denoising: the middle latent frame's first three channels, scaled
    to 0..255 (no VAE decode). Packed (B, tokens, C) latents are skipped."""
    try:
        if latents.ndim != 5:
            return None
        frame = latents[0, :3, latents.shape[2] // 2].float().cpu().numpy()
    except Exception:  # a preview must never break the job
        return None
    lo, hi = frame.min(), frame.max()
    image = ((frame - lo) / (hi - lo + 1e-6) * 255).astype(np.uint8).transpose(1, 2, 0)
    return np.ascontiguousarray(image)
