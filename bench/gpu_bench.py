"""GPU benchmark of the diffusers backend: full-size architectures, random weights.

For Wan 2.1 VACE 1.3B (extend), Wan 2.1 1.3B video-to-video (refine) and LTX-Video 2B
(refine), at 832x480 (LTX: 832x480 rounded to /32 = 832x480) and 81 frames, it measures:

  (a) the plain diffusers pipeline call with default settings: seconds per denoising step,
      peak GPU memory;
  (b) TakeBridge's server path (DiffusersBackend.run with conform, chunking, progress,
      compositing inputs) with the profile's speed options (attention backend, regional
      compile, cache hook): seconds per step, peak memory, job time;
  (c) the share of (b)'s job time spent outside the denoising loop (text encoding, VAE,
      conform, resampling).

Random weights make the pictures meaningless but the compute real: every number here is
about cost, none about quality. Medians over --repeats runs after a warm-up run (which
absorbs compilation). Results go to bench/results/gpu_<device>.json with the machine.

    python bench/gpu_bench.py                 # on an H100/H200
    python bench/gpu_bench.py --tiny --device cpu --steps 2   # the same code on tiny configs (CI smoke)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).resolve().parent / "results"
NOTE = ("random weights: the pictures are noise, quality means nothing here; compute cost (time per step, "
        "memory) is real because the architectures are the published full-size ones")


# -------------------------------------------------------------------------- architectures

def _umt5_xxl(tiny: bool, vocab: int):
    from transformers import UMT5Config, UMT5EncoderModel

    if tiny:
        config = UMT5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                            relative_attention_num_buckets=8, dropout_rate=0.0)
    else:  # umT5-XXL encoder as used by Wan 2.1 (5.7 B parameters)
        config = UMT5Config(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                            relative_attention_num_buckets=32, dropout_rate=0.0, feed_forward_proj="gated-gelu")
    return UMT5EncoderModel(config).eval()


def _t5_xxl(tiny: bool, vocab: int):
    from transformers import T5Config, T5EncoderModel

    if tiny:
        config = T5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                          relative_attention_num_buckets=8, dropout_rate=0.0)
    else:  # T5-v1.1-XXL encoder as used by LTX-Video (4.8 B parameters)
        config = T5Config(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                          relative_attention_num_buckets=32, dropout_rate=0.0, feed_forward_proj="gated-gelu")
    return T5EncoderModel(config).eval()


def build(kind: str, tiny: bool, device: str, dtype):
    """A pipeline with the full-size (or tiny) architecture and random weights, built on the
    device directly (fast, no host copy)."""
    import torch
    import diffusers
    from server.backends.diffusers import tiny as tiny_models

    if tiny:
        builder = {"wan_vace": tiny_models.tiny_wan_vace, "wan_v2v": tiny_models.tiny_wan_v2v,
                   "ltx_condition": tiny_models.tiny_ltx_condition}[kind]
        pipe = builder().to(device)
        pipe.set_progress_bar_config(disable=True)
        return pipe
    tokenizer = tiny_models._tokenizer(512 if kind != "ltx_condition" else 128)
    with torch.device(device):
        torch.manual_seed(0)
        if kind in ("wan_vace", "wan_v2v"):
            common = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
                          out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30,
                          cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
            if kind == "wan_vace":
                transformer = diffusers.WanVACETransformer3DModel(**common, vace_layers=list(range(0, 30, 2)),
                                                                  vace_in_channels=96)
            else:
                transformer = diffusers.WanTransformer3DModel(**common)
            vae = diffusers.AutoencoderKLWan()          # the Wan 2.1 VAE's default configuration
            text_encoder = _umt5_xxl(False, len(tokenizer))
            scheduler = diffusers.UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                          flow_shift=3.0)
            cls = diffusers.WanVACEPipeline if kind == "wan_vace" else diffusers.WanVideoToVideoPipeline
            extra = {"transformer_2": None} if kind == "wan_vace" else {}
            pipe = cls(tokenizer=tokenizer, text_encoder=text_encoder.to(dtype), vae=vae.to(torch.float32),
                       scheduler=scheduler, transformer=transformer.to(dtype), **extra)
        else:
            transformer = diffusers.LTXVideoTransformer3DModel()   # the 2B configuration is the default
            vae = diffusers.AutoencoderKLLTXVideo()
            pipe = diffusers.LTXConditionPipeline(scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
                                                  vae=vae.to(dtype), text_encoder=_t5_xxl(False, 0).to(dtype),
                                                  tokenizer=tokenizer, transformer=transformer.to(dtype))
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------- measuring

class StepClock:
    """Times denoising steps through callback_on_step_end."""

    def __init__(self, device: str):
        self.device = device
        self.marks: list[float] = []

    def start(self):
        self._sync()
        self.marks = [time.perf_counter()]

    def __call__(self, pipe, step, timestep, kwargs):
        self._sync()
        self.marks.append(time.perf_counter())
        return {}

    def _sync(self):
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def step_seconds(self) -> list[float]:
        # the first interval includes text encoding and latent preparation: drop it
        return [b - a for a, b in zip(self.marks[1:], self.marks[2:])]


def _peak_reset(device):
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device) -> float | None:
    if device.startswith("cuda"):
        import torch

        return round(torch.cuda.max_memory_allocated() / 1024 ** 3, 2)
    return None


def plain_call(kind, pipe, frames, size, steps, device, clock):
    from PIL import Image

    video = [Image.fromarray(f) for f in frames]
    common = dict(prompt="a person walks down a street", height=size[1], width=size[0], num_inference_steps=steps,
                  output_type="np", callback_on_step_end=clock)
    import torch

    generator = torch.Generator("cpu").manual_seed(0)
    if kind == "wan_vace":
        mask = [Image.new("L", size, 0)] * (len(frames) - 16) + [Image.new("L", size, 255)] * 16
        return pipe(video=video, mask=mask, num_frames=len(frames), generator=generator, **common)
    if kind == "wan_v2v":
        return pipe(video=video, strength=1.0, generator=generator, **common)
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

    cond_len = ((len(frames) // 2 - 1) // 8) * 8 + 1
    return pipe(conditions=[LTXVideoCondition(video=video[:cond_len], frame_index=0)], num_frames=len(frames),
                frame_rate=24, generator=generator, **common)


def server_path(kind, pipe, frames, size, steps, device, speed, tiny):
    """DiffusersBackend.run on the same input, the pipeline injected into its warm cache."""
    from server.backends.base import Spec
    from server.backends.diffusers.backend import DiffusersBackend
    from server.backends.diffusers.loading import ModelProfile, apply_speed_options

    profile = ModelProfile(id=f"bench-{kind}", pipeline=kind, folder=Path("."),
                           operations=("extend",) if kind == "wan_vace" else ("refine",),
                           native_size=size, size_multiple=16 if kind != "ltx_condition" else 32,
                           native_fps=16 if kind != "ltx_condition" else 24,
                           frame_rule="4k+1" if kind != "ltx_condition" else "8k+1",
                           max_frames=len(frames), steps=steps, guidance_scale=5.0 if kind != "ltx_condition" else 3.0,
                           speed=speed, overlap_frames=8)
    if tiny:
        profile.frame_rule = "4k+1"
    applied = apply_speed_options(pipe, profile, device)
    backend = DiffusersBackend([profile], device, memory_budget_gb=1e9)
    backend.cache._loaded[profile.id] = (profile, pipe)
    clock = StepClock(device)
    step_times = []

    def progress(done, total, preview):
        clock(None, done, None, {})
        step_times.append(time.perf_counter())

    op = "extend" if kind == "wan_vace" else "refine"
    rate = Fraction(profile.native_fps).limit_denominator(1001)
    spec = Spec(op=op, rate=rate, seed=0, strength=1.0, extend_frames=16 if op == "extend" else 0)
    source = frames[:len(frames) - 16] if op == "extend" else frames
    clock.start()
    started = time.perf_counter()
    backend.run(op, source, spec, progress, threading.Event())
    clock._sync()
    total = time.perf_counter() - started
    steps_s = clock.step_seconds()
    return {"job_seconds": total, "step_seconds": steps_s, "applied": applied,
            "outside_loop_share": max(0.0, 1 - sum(steps_s) / total) if total else None}


def bench(kind, args) -> dict:
    import torch

    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    size = (args.width, args.height) if not args.tiny else (32, 32)
    count = args.frames if not args.tiny else 17
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (count, size[1], size[0], 3), dtype=np.uint8)
    print(f"{kind}: building {'tiny' if args.tiny else 'full-size'} architecture with random weights", flush=True)
    pipe = build(kind, args.tiny, args.device, dtype)
    row = {"pipeline": kind, "size": list(size), "frames": count, "steps": args.steps}
    plain = []
    for run in range(args.repeats + 1):
        clock = StepClock(args.device)
        _peak_reset(args.device)
        clock.start()
        plain_call(kind, pipe, frames, size, args.steps, args.device, clock)
        if run:  # the first run warms up
            plain.append(statistics.median(clock.step_seconds()))
    row["plain"] = {"step_seconds_median": round(statistics.median(plain), 4), "peak_gb": _peak_gb(args.device)}
    speed = {} if args.tiny else dict(SPEED[kind])
    reference = _frames_of(plain_call(kind, pipe, frames, size, args.steps, args.device, StepClock(args.device)))
    served = []
    for run in range(args.repeats + 1):
        _peak_reset(args.device)
        result = server_path(kind, pipe, frames, size, args.steps, args.device, speed if run == 0 else {}, args.tiny)
        if run:
            served.append(result)
    row["server"] = {
        "speed_options": speed, "applied": served[0]["applied"] if served else [],
        "step_seconds_median": round(statistics.median(statistics.median(r["step_seconds"]) for r in served), 4),
        "job_seconds_median": round(statistics.median(r["job_seconds"] for r in served), 3),
        "outside_loop_share_median": round(statistics.median(r["outside_loop_share"] for r in served), 3),
        "peak_gb": _peak_gb(args.device)}
    row["speedup_per_step"] = round(row["plain"]["step_seconds_median"] / row["server"]["step_seconds_median"], 3)
    # the same call, same seed, with the speed options now applied: how far do the pixels move?
    # (a profile switch stays off when this exceeds the tolerance you accept)
    sped = _frames_of(plain_call(kind, pipe, frames, size, args.steps, args.device, StepClock(args.device)))
    diff = np.abs(sped.astype(np.float32) - reference.astype(np.float32))
    row["speed_options_pixel_difference"] = {"mean_abs_levels": round(float(diff.mean()), 3),
                                             "max_abs_levels": round(float(diff.max()), 3)}
    print(json.dumps(row), flush=True)
    del pipe
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return row


def _frames_of(output) -> np.ndarray:
    frames = np.asarray(output.frames[0])
    return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8) if frames.dtype != np.uint8 else frames


# speed options per pipeline (see docs/models.md for which hooks each pipeline tolerates)
SPEED = {
    "wan_vace": {"attention_backend": "_native_cudnn", "compile": True, "cache": {"kind": "first_block",
                                                                                 "threshold": 0.05}},
    "wan_v2v": {"attention_backend": "_native_cudnn", "compile": True},
    "ltx_condition": {"attention_backend": "_native_cudnn", "compile": True, "cache": {"kind": "first_block",
                                                                                      "threshold": 0.05}},
}


def machine(device: str) -> dict:
    import torch

    info = {"host": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu_count": os.cpu_count()}
    try:
        import diffusers

        info["diffusers"] = diffusers.__version__
    except ImportError:
        pass
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 1024 ** 3, 1),
                    cuda=torch.version.cuda)
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--steps", type=int, default=10, help="denoising steps per call (times are per step)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pipelines", default="wan_vace,wan_v2v,ltx_condition")
    parser.add_argument("--tiny", action="store_true", help="tiny configurations: checks the script, not the GPU")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/gpu_<device>.json)")
    args = parser.parse_args(argv)
    rows = [bench(kind, args) for kind in args.pipelines.split(",")]
    result = {"benchmark": "gpu_bench", "note": NOTE, "machine": machine(args.device),
              "settings": {k: v for k, v in vars(args).items() if k != "out"}, "results": rows}
    name = "tiny_" + args.device if args.tiny else args.device.replace(":", "")
    out = args.out or RESULTS / f"gpu_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
