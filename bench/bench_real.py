"""The classic backend on real camera footage against its naive baselines, quality and speed in
one run.

The corpus is tests/support/footage.py's real clips (fetch them with `make footage`), a 48-frame segment
of each with no cut in it, and truths nobody has to guess:
- extend: the segment less its last 24 frames is the shot, those 24 (held back) its true continuation;
  ours against holding the last frame (MAE over the 24 new frames, and at frames 1, 12, 24);
- inpaint: a textured disc crossing the shot, and a fixed opaque logo, pasted on the first 24
  frames (the footage behind them is the truth); ours against per-frame cv2.inpaint (Telea) and
  cv2.xphoto's frequency-selective reconstruction (FSR, fast; timed once: ~1 s a frame), PSNR
  inside the mask;
- refine: the first 24 frames with sigma-8 Gaussian noise; ours at strength 0.5 against a
  sigma-1 Gaussian blur and OpenCV's temporal fastNlMeansDenoisingColoredMulti (5-frame
  window, on 4 frames: it takes seconds a frame), PSNR against the clean frames.

    python bench/bench_real.py [--repeats 3] [--clips bikes city ...] [--json OUT]

Results: bench/results/real_<hostname>.json with the machine; fps are medians of --repeats runs.
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import footage  # noqa: E402
from bench_classic import _mae, _psnr, machine_info  # noqa: E402
from server.backends.base import Spec  # noqa: E402
from server.backends.classic import ClassicBackend  # noqa: E402
from server.media import probe, read_frames  # noqa: E402
from server.samples import with_logo, with_moving_disc  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# segment -> (clip, first frame, frames (no cut inside), what it shows); the last 24 are the
# true continuation of an extension
SEGMENTS = {
    "bikes-pan": ("bikes", 30, 46, "hand-held telephoto pan following a cyclist (shot 30-75)"),
    "bikes-traffic": ("bikes", 80, 48, "hand-held, cars and a van crossing the foreground (shot 76-136)"),
    "city": ("city", 40, 48, "slow motorised pan over lit skyscrapers at night, low-light noise"),
    "vtest": ("vtest", 300, 48, "static high camera, people walking (10 fps)"),
    "wolfgang": ("wolfgang", 100, 48, "static camera, a face, a hand passing in front of it"),
    "box": ("box", 150, 48, "static camera, a printed box moved by hand"),
    "cup": ("cup", 60, 48, "static camera, a bottle moved in front of a white wall"),
}
SHOT = 24
NLMEANS_FRAMES = 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (median reported)")
    parser.add_argument("--clips", nargs="+", choices=sorted(SEGMENTS), default=list(SEGMENTS))
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/real_<host>.json)")
    args = parser.parse_args(argv)
    missing = sorted({SEGMENTS[s][0] for s in args.clips if footage.cached(SEGMENTS[s][0]) is None})
    if missing:
        raise SystemExit(f"real clips not fetched: {', '.join(missing)}; run `make footage`")
    rows = []
    for name in args.clips:
        clip, start, count, what = SEGMENTS[name]
        path = footage.cached(clip)
        frames = read_frames(path, start, count)
        rate = probe(path).rate
        print(f"{name}: {clip} frames {start}..{start + count - 1}, {frames.shape[2]}x{frames.shape[1]} ({what})",
              flush=True)
        for row in (extend_row(name, frames, rate, args.repeats),
                    *inpaint_rows(name, frames[:SHOT], rate, args.repeats),
                    refine_row(name, frames[:SHOT], rate, args.repeats)):
            rows.append(row)
            print("  " + _line(row), flush=True)
    summary = _summary(rows)
    print(json.dumps(summary, indent=1))
    out = args.json or RESULTS / f"real_{socket.gethostname()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine_info(), "repeats": args.repeats, "new_frames": SHOT,
                               "corpus": {s: {"clip": SEGMENTS[s][0], "first_frame": SEGMENTS[s][1],
                                              "frames": SEGMENTS[s][2], "shows": SEGMENTS[s][3],
                                              "source": footage.BY_ID[SEGMENTS[s][0]].package,
                                              "licence": footage.BY_ID[SEGMENTS[s][0]].licence} for s in args.clips},
                               "summary": summary, "rows": rows,
                               "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1) + "\n")
    print(f"written to {out}")
    return 0


def extend_row(clip: str, frames: np.ndarray, rate: Fraction, repeats: int) -> dict:
    shot, truth = frames[:-SHOT], frames[-SHOT:]
    spec = Spec(op="extend", rate=rate, seed=1, extend_side="tail", extend_frames=SHOT)
    ours, ours_s = _timed(lambda: _classic(shot, spec), repeats)
    hold, hold_s = _timed(lambda: np.repeat(shot[-1:], SHOT, axis=0), repeats)

    def errors(made):
        return {"mae": _mae(made, truth), "mae_frame_1": _mae(made[0], truth[0]),
                "mae_frame_12": _mae(made[11], truth[11]), "mae_frame_24": _mae(made[23], truth[23])}
    return {"clip": clip, "op": "extend", "metric": "MAE against the true continuation (lower is better)",
            "ours": {**errors(ours), "fps": _fps(SHOT, ours_s)},
            "baselines": {"hold": {**errors(hold), "fps": _fps(SHOT, hold_s)}},
            "ours_beats_all": bool(_mae(ours, truth) <= _mae(hold, truth))}


def inpaint_rows(clip: str, plate: np.ndarray, rate: Fraction, repeats: int) -> list[dict]:
    rows = []
    for kind, paste in (("moving disc", with_moving_disc), ("fixed logo", with_logo)):
        frames, masks = paste(plate)
        spec = Spec(op="inpaint", rate=rate, seed=1, mask=masks)
        ours, ours_s = _timed(lambda: _classic(frames, spec), repeats)
        telea, telea_s = _timed(lambda: np.stack([cv2.inpaint(f, m.astype(np.uint8), 5, cv2.INPAINT_TELEA)
                                                  for f, m in zip(frames, masks)]), repeats)
        fsr, fsr_s = _timed(lambda: np.stack([_fsr(f, m) for f, m in zip(frames, masks)]), 1)
        ours_db = _psnr(ours[masks], plate[masks])
        baselines = {"telea": {"psnr": _psnr(telea[masks], plate[masks]), "fps": _fps(SHOT, telea_s)},
                     "fsr_fast": {"psnr": _psnr(fsr[masks], plate[masks]), "fps": _fps(SHOT, fsr_s)}}
        rows.append({"clip": clip, "op": f"inpaint ({kind})", "metric": "PSNR inside the mask, dB (higher is better)",
                     "ours": {"psnr": ours_db, "fps": _fps(SHOT, ours_s),
                              "outside_changed": int((ours[~masks] != frames[~masks]).sum())},
                     "baselines": baselines,
                     "ours_beats_all": bool(all(ours_db > b["psnr"] for b in baselines.values()))})
    return rows


def _fsr(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """cv2.xphoto's frequency-selective reconstruction, fast mode, of one frame (its mask: 0 = fill)."""
    out = np.empty_like(frame)
    cv2.xphoto.inpaint(frame, (~mask).astype(np.uint8) * 255, out, cv2.xphoto.INPAINT_FSR_FAST)
    return out


def refine_row(clip: str, clean: np.ndarray, rate: Fraction, repeats: int) -> dict:
    noise = np.random.default_rng(8).normal(0.0, 8.0, clean.shape)
    noisy = np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)
    spec = Spec(op="refine", rate=rate, seed=1, strength=0.5)
    ours, ours_s = _timed(lambda: _classic(noisy, spec), repeats)
    blur, blur_s = _timed(lambda: np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in noisy]), repeats)
    middle = range(SHOT // 2 - NLMEANS_FRAMES // 2, SHOT // 2 + NLMEANS_FRAMES // 2)
    nl, nl_s = _timed(lambda: np.stack([cv2.fastNlMeansDenoisingColoredMulti(list(noisy), i, 5, None, 8, 8, 7, 21)
                                        for i in middle]), 1)
    picked = list(middle)
    return {"clip": clip, "op": "refine (sigma 8)", "metric": "PSNR against the clean frames, dB (higher is better)",
            "input_psnr": _psnr(noisy, clean),
            "ours": {"psnr": _psnr(ours, clean), "psnr_same_frames_as_nlmeans": _psnr(ours[picked], clean[picked]),
                     "fps": _fps(SHOT, ours_s)},
            "baselines": {"gaussian_blur_sigma1": {"psnr": _psnr(blur, clean), "fps": _fps(SHOT, blur_s)},
                          "nlmeans_multi_5": {"psnr": _psnr(nl, clean[picked]), "fps": _fps(len(picked), nl_s),
                                              "frames": len(picked)}},
            "ours_beats_all": bool(_psnr(ours[picked], clean[picked]) >= max(_psnr(nl, clean[picked]),
                                                                         _psnr(blur[picked], clean[picked])))}


def _classic(frames: np.ndarray, spec: Spec) -> np.ndarray:
    return ClassicBackend().run(spec.op, frames, spec, lambda *a: None, threading.Event())


def _timed(make, repeats: int):
    seconds, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = make()
        seconds.append(time.perf_counter() - start)
    return result, seconds


def _fps(frames: int, seconds: list[float]) -> float:
    return round(frames / max(statistics.median(seconds), 1e-9), 2)


def _line(row: dict) -> str:
    key = "mae" if row["op"] == "extend" else "psnr"
    base = ", ".join(f"{name} {b[key]:.2f}" for name, b in row["baselines"].items())
    return (f"{row['op']:<22} ours {row['ours'][key]:.2f} ({row['ours']['fps']} fps) | {base} | "
            f"{'beats' if row['ours_beats_all'] else 'LOSES to'} the baselines")


def _summary(rows: list[dict]) -> dict:
    out = {}
    for row in rows:
        op = row["op"]
        entry = out.setdefault(op, {"clips": 0, "ours_beats_all": 0, "losing_clips": []})
        entry["clips"] += 1
        if row["ours_beats_all"]:
            entry["ours_beats_all"] += 1
        else:
            entry["losing_clips"].append(row["clip"])
    return out


if __name__ == "__main__":
    sys.exit(main())
