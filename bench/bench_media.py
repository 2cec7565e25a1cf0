"""Benchmark TakeBridge's media path against the ffmpeg command line doing the same transcode.

Both sides are timed in the same run on the same source; results go to bench/results/media_<host>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.media import probe, read_frames, write_movie  # noqa: E402

RATE = Fraction(24000, 1001)
RESULTS = Path(__file__).resolve().parent / "results"

# The ffmpeg invocation that does what write_movie does for each codec.
FFMPEG_ARGS = {
    "prores": (["-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le"], ".mov"),
    "ffv1": (["-c:v", "ffv1", "-level", "3", "-pix_fmt", "bgr0"], ".mkv"),
    "h264": (["-c:v", "libx264", "-crf", "18", "-preset", "medium", "-pix_fmt", "yuv420p"], ".mp4"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time TakeBridge's media path (read_frames of an H.264 source, then write_movie) against "
            "the ffmpeg command line transcoding the same source, for ProRes 422 HQ, FFV1 and H.264, "
            "plus decode-only to RGB. Reports the median of --repeats runs as fps and the ratio "
            "ours/ffmpeg (time; above 1 means TakeBridge is slower)."
        ),
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side and row; the median is reported (default 5)")
    parser.add_argument("--frames", type=int, default=48, help="frames in the generated H.264 source (default 48)")
    parser.add_argument("--size", default="1920x1080", help="source WIDTHxHEIGHT (default 1920x1080)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 640x360, 12 frames, 1 repeat; writes media_<host>_quick.json"
    )
    parser.add_argument("--json", action="store_true", help="print the result JSON instead of the table")
    parser.add_argument("--ffmpeg", help="ffmpeg binary (default: ffmpeg on PATH, else the one imageio-ffmpeg ships)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.frames, args.size = 1, 12, "640x360"
    width, height = (int(part) for part in args.size.lower().split("x"))
    if width % 2 or height % 2 or args.frames < 1 or args.repeats < 1:
        parser.error("--size needs even width and height; --frames and --repeats must be at least 1")
    args.width, args.height = width, height
    return args


def find_ffmpeg(explicit: str | None) -> str:
    if explicit:
        return explicit
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def synthetic_shot(frames: int, width: int, height: int) -> np.ndarray:
    """A moving gradient with a drifting square and film-like grain, so encoders do real work."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    shot = np.empty((frames, height, width, 3), np.uint8)
    for index in range(frames):
        phase = index / max(frames - 1, 1)
        picture = np.stack(
            [255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 40 + 6 * phase)], axis=-1
        )
        left = int(phase * (width - height // 3))
        picture[height // 3 : 2 * height // 3, left : left + height // 3] = (230, 60, 40)
        picture += rng.normal(0, 4, picture.shape).astype(np.float32)
        shot[index] = np.clip(picture, 0, 255).astype(np.uint8)
    return shot


def time_ours(source: Path, dest: Path, codec: str, frames: int) -> float:
    started = time.perf_counter()
    pictures = read_frames(source, 0, frames)
    if codec != "decode":
        write_movie(pictures, dest, codec=codec, rate=RATE)
    return time.perf_counter() - started


def time_ffmpeg(ffmpeg: str, source: Path, dest: Path, codec: str) -> float:
    if codec == "decode":
        output = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-y", os.devnull]
    else:
        output = [*FFMPEG_ARGS[codec][0], "-y", str(dest)]
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(source), *output]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def bench_row(codec: str, source: Path, workdir: Path, ffmpeg: str, frames: int, repeats: int) -> dict:
    suffix = FFMPEG_ARGS[codec][1] if codec in FFMPEG_ARGS else ""
    ours_dest, ffmpeg_dest = workdir / f"ours{suffix}", workdir / f"ffmpeg{suffix}"
    ours, theirs = [], []
    for _ in range(repeats):
        # Alternating the two sides spreads any drift in machine load evenly over both.
        ours.append(time_ours(source, ours_dest, codec, frames))
        theirs.append(time_ffmpeg(ffmpeg, source, ffmpeg_dest, codec))
    if codec != "decode":
        ours_info, ffmpeg_info = probe(ours_dest), probe(ffmpeg_dest)
        assert ours_info.frame_count == ffmpeg_info.frame_count == frames, (ours_info, ffmpeg_info)
    ours_s, ffmpeg_s = statistics.median(ours), statistics.median(theirs)
    return {
        "row": "decode to RGB" if codec == "decode" else f"h264 -> {codec}",
        "codec": codec,
        "frames": frames,
        "ours_s": round(ours_s, 4),
        "ffmpeg_s": round(ffmpeg_s, 4),
        "ours_fps": round(frames / ours_s, 2),
        "ffmpeg_fps": round(frames / ffmpeg_s, 2),
        "ratio_ours_over_ffmpeg": round(ours_s / ffmpeg_s, 3),
        "ours_runs_s": [round(t, 4) for t in ours],
        "ffmpeg_runs_s": [round(t, 4) for t in theirs],
    }


def machine_info(ffmpeg: str) -> dict:
    cpu_model = None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, check=True).stdout
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model or platform.processor(),
        "python": platform.python_version(),
        "av": av.__version__,
        "av_ffmpeg": av.ffmpeg_version_info,
        "ffmpeg_binary": ffmpeg,
        "ffmpeg_version": version.splitlines()[0],
        "numpy": np.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ffmpeg = find_ffmpeg(args.ffmpeg)
    # Other work on the machine slows both sides alike, but says how far the fps can be trusted.
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="takebridge-bench-") as workdir:
        workdir = Path(workdir)
        source = workdir / "source.mp4"
        write_movie(synthetic_shot(args.frames, args.width, args.height), source, codec="h264", rate=RATE)
        rows = [
            bench_row(codec, source, workdir, ffmpeg, args.frames, args.repeats)
            for codec in ("decode", "prores", "ffv1", "h264")
        ]
    result = {
        "benchmark": "media",
        "source": f"{args.width}x{args.height} H.264 yuv420p, {args.frames} frames at {RATE} fps",
        "repeats": args.repeats,
        "quick": args.quick,
        "note": "ours decodes to RGB and re-encodes from RGB (what a backend sees); ffmpeg converts YUV directly",
        "machine": {
            **machine_info(ffmpeg),
            "load_average_1_5_15_before": load_before,
            "load_average_1_5_15_after": os.getloadavg(),
        },
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"media_{socket.gethostname()}{'_quick' if args.quick else ''}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['source']}, median of {args.repeats}; ffmpeg: {result['machine']['ffmpeg_binary']}")
        print(f"{'row':<16}{'ours fps':>10}{'ffmpeg fps':>12}{'ours/ffmpeg':>13}")
        for row in rows:
            print(f"{row['row']:<16}{row['ours_fps']:>10}{row['ffmpeg_fps']:>12}{row['ratio_ours_over_ffmpeg']:>13}")
        print(f"written to {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
