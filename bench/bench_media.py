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

from server.media import iter_pictures, probe, read_frames, write_movie  # noqa: E402
from server.media.encode import Delivery  # noqa: E402
from server.media.pixels import SCALE_FLAGS_CLI, ColorTags  # noqa: E402

RATE = Fraction(24000, 1001)
RESULTS = Path(__file__).resolve().parent / "results"

# The ffmpeg invocation that does what write_movie does for each codec, from RGB.
FFMPEG_ARGS = {
    "prores": (["-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le"], ".mov"),
    "ffv1": (["-c:v", "ffv1", "-level", "3", "-pix_fmt", "bgr0"], ".mkv"),
    "ffv1_10": (["-c:v", "ffv1", "-level", "3", "-pix_fmt", "yuv422p10le"], ".mkv"),
    "h264": (["-c:v", "libx264", "-crf", "18", "-preset", "medium", "-pix_fmt", "yuv420p"], ".mp4"),
}
# the same colour conversion on both sides: the matrix, range and swscale flags the server uses
SWS = ["-sws_flags", SCALE_FLAGS_CLI]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time TakeBridge's media path (the streaming read of an H.264 source, then write_movie) against "
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
    parser.add_argument("--uhd-frames", type=int, default=12,
                        help="frames of the 10-bit ProRes UHD source (0: skip it; default 12)")
    parser.add_argument("--uhd-size", default="3840x2160", help="its WIDTHxHEIGHT (default 3840x2160)")
    parser.add_argument("--json", action="store_true", help="print the result JSON instead of the table")
    parser.add_argument("--ffmpeg", help="ffmpeg binary (default: ffmpeg on PATH, else the one imageio-ffmpeg ships)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.frames, args.size, args.uhd_frames, args.uhd_size = 1, 12, "640x360", 4, "1280x720"
    width, height = (int(part) for part in args.size.lower().split("x"))
    if width % 2 or height % 2 or args.frames < 1 or args.repeats < 1:
        parser.error("--size needs even width and height; --frames and --repeats must be at least 1")
    args.width, args.height = width, height
    args.uhd_size = tuple(int(part) for part in args.uhd_size.lower().split("x"))
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


def time_decode_ours(source: Path, frames: int, depth: int) -> float:
    """The server's decode path (what the runner consumes): each frame as working RGB plus its
    own planes, streamed, nothing kept."""
    started = time.perf_counter()
    count = sum(1 for _ in iter_pictures(source, 0, frames, depth=depth, native=True))
    seconds = time.perf_counter() - started
    assert count == frames
    return seconds


def time_decode_ffmpeg(ffmpeg: str, source: Path, depth: int) -> float:
    pix_fmt = "rgb24" if depth == 8 else "rgb48le"
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(source), *SWS, "-f", "rawvideo",
               "-pix_fmt", pix_fmt, "-y", os.devnull]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def time_encode_ours(pictures: np.ndarray, dest: Path, codec: str) -> float:
    started = time.perf_counter()
    if codec == "ffv1_10":
        write_movie(pictures, dest, codec="ffv1", rate=RATE,
                    delivery=Delivery("ffv1", "yuv422p10le", {"level": "3"}, ColorTags(1, 1, 1, 1)))
    else:
        write_movie(pictures, dest, codec=codec, rate=RATE)
    return time.perf_counter() - started


def time_encode_ffmpeg(ffmpeg: str, raw: Path, size: tuple[int, int], depth: int, dest: Path, codec: str) -> float:
    pix_fmt = "rgb24" if depth == 8 else "rgb48le"
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", pix_fmt,
               "-s", f"{size[0]}x{size[1]}", "-r", f"{RATE.numerator}/{RATE.denominator}", "-i", str(raw), *SWS,
               *FFMPEG_ARGS[codec][0], "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
               "-y", str(dest)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def row(name: str, frames: int, ours: list[float], theirs: list[float]) -> dict:
    ours_s, ffmpeg_s = statistics.median(ours), statistics.median(theirs)
    return {
        "row": name, "frames": frames, "ours_s": round(ours_s, 4), "ffmpeg_s": round(ffmpeg_s, 4),
        "ours_fps": round(frames / ours_s, 2), "ffmpeg_fps": round(frames / ffmpeg_s, 2),
        "ratio_ours_over_ffmpeg": round(ours_s / ffmpeg_s, 3),
        "ours_runs_s": [round(t, 4) for t in ours], "ffmpeg_runs_s": [round(t, 4) for t in theirs],
    }


def bench_source(label: str, source: Path, workdir: Path, ffmpeg: str, frames: int, depth: int,
                 codecs: tuple[str, ...], repeats: int) -> list[dict]:
    """Decode to working RGB, then encode those RGB frames, each against ffmpeg doing the same."""
    rows, ours, theirs = [], [], []
    for _ in range(repeats):   # alternating the two sides spreads drift in machine load over both
        ours.append(time_decode_ours(source, frames, depth))
        theirs.append(time_decode_ffmpeg(ffmpeg, source, depth))
    pictures = read_frames(source, 0, frames, depth=depth)
    rows.append(row(f"{label} -> RGB{'48' if depth == 16 else '24'}", frames, ours, theirs))
    raw = workdir / "frames.rgb"
    raw.write_bytes(pictures.astype("<u2").tobytes() if depth == 16 else pictures.tobytes())
    size = (pictures.shape[2], pictures.shape[1])
    for codec in codecs:
        suffix = FFMPEG_ARGS[codec][1]
        ours, theirs = [], []
        for _ in range(repeats):
            ours.append(time_encode_ours(pictures, workdir / f"ours{suffix}", codec))
            theirs.append(time_encode_ffmpeg(ffmpeg, raw, size, depth, workdir / f"ffmpeg{suffix}", codec))
        assert probe(workdir / f"ours{suffix}").frame_count == probe(workdir / f"ffmpeg{suffix}").frame_count == frames
        rows.append(row(f"RGB{'48' if depth == 16 else '24'} -> {codec}", frames, ours, theirs))
    raw.unlink()
    return rows


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
        rows = bench_source(f"{args.width}x{args.height} H.264 8-bit", source, workdir, ffmpeg, args.frames, 8,
                            ("prores", "ffv1", "h264"), args.repeats)
        source.unlink()
        if args.uhd_frames:
            deep = workdir / "uhd10.mov"
            shot = synthetic_shot(args.uhd_frames, *args.uhd_size)
            write_movie(shot.astype(np.uint16) * 257 + 77, deep, codec="prores", rate=RATE)
            del shot
            rows += bench_source(f"{args.uhd_size[0]}x{args.uhd_size[1]} ProRes 10-bit", deep, workdir, ffmpeg,
                                 args.uhd_frames, 16, ("prores", "ffv1_10"), args.repeats)
    result = {
        "benchmark": "media",
        "sources": [f"{args.width}x{args.height} H.264 yuv420p, {args.frames} frames at {RATE} fps",
                    f"{args.uhd_size[0]}x{args.uhd_size[1]} ProRes 422 HQ 10-bit, {args.uhd_frames} frames"],
        "repeats": args.repeats,
        "quick": args.quick,
        "note": ("decode rows: the source to working RGB (8 or 16 bits) with the server's conversion (BT.709, "
                 "limited range, bicubic + accurate rounding + full chroma interpolation); ffmpeg with the same "
                 "-sws_flags; ours is the server's streaming read (iter_pictures: RGB plus the picture's own planes, "
                 "decoded and converted a few frames ahead in a thread), ffmpeg writes raw RGB to /dev/null. Encode rows: those RGB frames, in memory for us, as a raw file for ffmpeg, into "
                 "each codec with the same conversion"),
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
        print(f"median of {args.repeats}; ffmpeg: {result['machine']['ffmpeg_binary']}")
        print(f"{'row':<36}{'ours fps':>10}{'ffmpeg fps':>12}{'ours/ffmpeg':>13}")
        for item in rows:
            print(f"{item['row']:<36}{item['ours_fps']:>10}{item['ffmpeg_fps']:>12}"
                  f"{item['ratio_ours_over_ffmpeg']:>13}")
        print(f"written to {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
