"""Benchmark the classic backend: frames/s and quality per operation against naive per-frame OpenCV.

Synthetic footage with a known answer (server/samples.py), so speed and quality come from one run.
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
from typing import Callable

import cv2
import numpy as np

from server import samples
from server.backends.base import Spec
from server.backends.classic import ClassicBackend

RESULTS = Path(__file__).resolve().parent / "results"
NLMEANS_FRAMES = 3      # the denoise baseline takes seconds a frame at HD: time a few, report fps


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.width, args.height, args.frames, args.repeats = 480, 270, 12, 1
    size = (args.height, args.width)

    print(f"classic backend, {args.frames} frames at {args.width}x{args.height}, "
          f"median of {args.repeats} run(s), {cv2.getNumThreads()} OpenCV threads", flush=True)
    rows = [bench(args.frames, size, args.repeats, args.seed)
            for bench in (bench_inpaint, bench_extend, bench_refine)]
    print(_table(rows))

    report = {
        "machine": machine_info(),
        "config": {"width": args.width, "height": args.height, "frames": args.frames,
                   "repeats": args.repeats, "seed": args.seed, "quick": args.quick},
        "results": rows,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    destination = args.json or (None if args.quick else RESULTS / f"classic_{socket.gethostname()}.json")
    if destination is not None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {destination}")
    return 0


def bench_inpaint(n: int, size: tuple[int, int], repeats: int, seed: int) -> dict:
    """Remove a disc crossing a slow pan; quality is PSNR inside the masks vs the clean plate."""
    h, w = size
    frames, masks, clean_plate = samples.moving_object_clip(n, h, w, seed, pan=(w / 640, h / 1350))
    spec = Spec(op="inpaint", rate=Fraction(24), seed=seed, mask=masks)
    ours, ours_s = _timed(lambda: _run(frames, spec), repeats)
    telea, telea_s = _timed(lambda: np.stack([cv2.inpaint(f, m.astype(np.uint8), 5, cv2.INPAINT_TELEA)
                                              for f, m in zip(frames, masks)]), repeats)
    return _row("inpaint", "per-frame cv2.inpaint (Telea)", "PSNR in mask vs clean plate, dB",
                n, ours_s, _psnr(ours[masks], clean_plate[masks]),
                n, telea_s, _psnr(telea[masks], clean_plate[masks]))


def bench_extend(n: int, size: tuple[int, int], repeats: int, seed: int) -> dict:
    """Extend a pan by as many frames as the shot has; quality is MAE vs the true continuation."""
    h, w = size
    footage = samples.pan_clip(2 * n, h, w, w / 640, h / 1350, seed)
    shot, truth = footage[:n], footage[n:]
    spec = Spec(op="extend", rate=Fraction(24), seed=seed, extend_side="tail", extend_frames=n)
    ours, ours_s = _timed(lambda: _run(shot, spec), repeats)
    held, held_s = _timed(lambda: np.repeat(shot[-1:], n, axis=0), repeats)
    return _row("extend", "repeat the last frame", "mean abs error vs true continuation",
                n, ours_s, _mae(ours, truth), n, held_s, _mae(held, truth))


def bench_refine(n: int, size: tuple[int, int], repeats: int, seed: int) -> dict:
    """Refine at strength 1 a clip with sigma-8 noise; quality is PSNR vs the clean clip."""
    h, w = size
    noisy, clean = samples.noisy_clip(n, h, w, 8.0, seed)
    spec = Spec(op="refine", rate=Fraction(24), seed=seed, strength=1.0)
    ours, ours_s = _timed(lambda: _run(noisy, spec), repeats)
    few = min(NLMEANS_FRAMES, n)
    nlmeans, nlmeans_s = _timed(lambda: np.stack([cv2.fastNlMeansDenoisingColored(f, None, 8, 8, 7, 21)
                                                  for f in noisy[:few]]), repeats)
    return _row("refine", f"per-frame cv2.fastNlMeansDenoisingColored ({few} frames)",
                "PSNR vs clean clip, dB (input: %.2f)" % _psnr(noisy, clean),
                n, ours_s, _psnr(ours, clean), few, nlmeans_s, _psnr(nlmeans, clean[:few]))


def write_result(result: dict, out: Path) -> Path:
    """A benchmark's result as JSON at `out` (its folder made), said on the console."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return out


def machine_info() -> dict:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "numpy": np.__version__,
    }


def _run(frames: np.ndarray, spec: Spec) -> np.ndarray:
    return ClassicBackend().run(spec.op, frames, spec, lambda done, total, preview: None,
                                threading.Event())


def _timed(make: Callable[[], np.ndarray], repeats: int) -> tuple[np.ndarray, list[float]]:
    """The result of make() and the wall-clock seconds of each of `repeats` runs."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = make()
        seconds.append(time.perf_counter() - start)
    return result, seconds


def _row(operation: str, baseline: str, quality: str, frames: int, seconds: list[float],
         score: float, baseline_frames: int, baseline_seconds: list[float], baseline_score: float) -> dict:
    def side(count: int, runs: list[float], value: float) -> dict:
        median = statistics.median(runs)
        return {"frames": count, "seconds": runs, "seconds_median": median,
                "fps": count / median if median > 0 else float("inf"), "quality": value}

    return {"operation": operation, "quality_metric": quality,
            "classic": side(frames, seconds, score),
            "baseline": dict(side(baseline_frames, baseline_seconds, baseline_score), method=baseline)}


def _table(rows: list[dict]) -> str:
    lines = [f"{'operation':<9} {'classic fps':>11} {'baseline fps':>12}  {'classic':>8} {'baseline':>8}  "
             "quality metric / baseline"]
    for row in rows:
        ours, base = row["classic"], row["baseline"]
        lines.append(f"{row['operation']:<9} {ours['fps']:>11.2f} {base['fps']:>12.2f}  "
                     f"{ours['quality']:>8.2f} {base['quality']:>8.2f}  "
                     f"{row['quality_metric']} / {base['method']}")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Frames per second and quality of the classic backend's refine, extend and "
                    "inpaint on synthetic footage, each against a naive per-frame OpenCV baseline "
                    "timed in the same run. Prints a table and writes JSON with machine info.")
    parser.add_argument("--width", type=int, default=1920, help="frame width in px (default 1920)")
    parser.add_argument("--height", type=int, default=1080, help="frame height in px (default 1080)")
    parser.add_argument("--frames", type=int, default=24,
                        help="frames per shot; extend makes as many new ones (default 24)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per measurement; the median is reported (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic footage (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 12 frames at 480x270, one repeat; writes JSON only with --json")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the JSON report "
                             "(default: bench/results/classic_<hostname>.json)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
