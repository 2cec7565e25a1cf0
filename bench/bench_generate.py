"""Generate on the CPU (the classic animatic) against its naive baseline, quality and speed in one run.

- morph quality: on the real camera clips of tests/support/footage.py, frames `gap` apart (4 and
  8) are the keyframes and the frame in the middle is the truth; the morph's middle frame against
  a cross-dissolve's, mean absolute level difference (0..255) over the picture;
- speed at 1280x720 (frames a second, medians of --repeats runs): the morph and a camera move over
  a board against the naive cross-dissolve (the cheapest thing that makes frames between two).

    python bench/bench_generate.py [--repeats 3] [--json OUT]

Results: bench/results/generate_<hostname>.json with the machine.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import footage  # noqa: E402
from bench_classic import machine_info, write_result  # noqa: E402
from server.backends.classic import animatic  # noqa: E402
from server.media import probe, read_frames  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CLIPS = ("bikes", "city", "vtest", "wolfgang", "box", "cup")
STARTS = (10, 40, 70)
GAPS = (4, 8)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def quality() -> dict:
    cases = []
    for clip in CLIPS:
        path = footage.cached(clip)
        if path is None:
            print(f"  {clip}: not cached (python tests/support/footage.py fetch), skipped")
            continue
        count = probe(path).frame_count
        for gap in GAPS:
            for start in STARTS:
                if start + gap >= count:
                    continue
                frames = read_frames(path, start, gap + 1)
                middle = gap // 2
                ours = list(animatic.morph(frames[0], frames[gap], gap + 1))[middle]
                naive = list(animatic.cross_dissolve(frames[0], frames[gap], gap + 1))[middle]
                cases.append({"clip": clip, "gap": gap, "start": start,
                              "morph_mae": round(_mad(ours, frames[middle]), 3),
                              "dissolve_mae": round(_mad(naive, frames[middle]), 3)})
    ratios = [c["morph_mae"] / c["dissolve_mae"] for c in cases if c["dissolve_mae"] > 0]
    return {"cases": cases, "count": len(cases),
            "mean_ratio": round(statistics.mean(ratios), 3) if ratios else None,
            "median_ratio": round(statistics.median(ratios), 3) if ratios else None,
            "mean_morph_mae": round(statistics.mean(c["morph_mae"] for c in cases), 3) if cases else None,
            "mean_dissolve_mae": round(statistics.mean(c["dissolve_mae"] for c in cases), 3) if cases else None,
            "worst_excess_levels": round(max(c["morph_mae"] - c["dissolve_mae"] for c in cases), 3) if cases else None}


def speed(repeats: int) -> dict:
    rng = np.random.default_rng(0)
    import cv2
    board = cv2.GaussianBlur(rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8), (0, 0), 2)
    other = np.roll(board, 24, axis=1)
    count = 24

    def fps(make) -> float:
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            for _frame in make():
                pass
            runs.append(count / (time.perf_counter() - started))
        return round(statistics.median(runs), 2)
    out = {"size": [1280, 720], "frames": count,
           "cross_dissolve_fps": fps(lambda: animatic.cross_dissolve(board, other, count)),
           "morph_fps": fps(lambda: animatic.morph(board, other, count)),
           "push_in_fps": fps(lambda: animatic.camera_move(board, count, "push_in", 0.15)),
           "pan_fps": fps(lambda: animatic.camera_move(board, count, "pan_right", 0.15))}
    out["morph_vs_dissolve_speed"] = round(out["morph_fps"] / out["cross_dissolve_fps"], 3)
    out["push_in_vs_dissolve_speed"] = round(out["push_in_fps"] / out["cross_dissolve_fps"], 3)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="where to write (default bench/results/generate_<host>.json)")
    args = parser.parse_args(argv)
    print("morph quality on real footage ...")
    result = {"machine": machine_info(), "quality": quality()}
    print(f"  {result['quality']['count']} cases: morph {result['quality']['mean_morph_mae']} levels, dissolve "
          f"{result['quality']['mean_dissolve_mae']} (mean ratio {result['quality']['mean_ratio']}, median "
          f"{result['quality']['median_ratio']}, worst excess {result['quality']['worst_excess_levels']})")
    print("speed at 1280x720 ...")
    result["speed"] = speed(args.repeats)
    print("  " + ", ".join(f"{k} {v}" for k, v in result["speed"].items() if k.endswith(("fps", "speed"))))
    out = args.json or RESULTS / f"generate_{socket.gethostname()}.json"
    write_result(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
