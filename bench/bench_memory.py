"""Peak memory of the server for takes of growing length: it must not grow with the length.

For each size (1920x1080 8-bit H.264 camera-like footage; 3840x2160 10-bit ProRes 422 HQ) and
each length (100, 500, 1000 frames), a fresh `takebridge serve` process runs one inpaint job (a
moving box mask, the heaviest classic operation: a donor window of frames) delivered in the
source's format, and its peak resident memory (VmHWM) is read when the job is done. The source
media are made frame by frame (never held whole) and removed afterwards.

    python bench/bench_memory.py [--lengths 100 500 1000] [--sizes hd uhd] [--op inpaint]

Results: bench/results/memory_<hostname>.json with the machine; the ratio of the longest to the
shortest take's peak is the number that matters (goal: at most 1.25), and UHD 10-bit under 4 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import opentimelineio as otio  # noqa: E402

from bridge.api import pb  # noqa: E402
from bridge.client import GenerationClient  # noqa: E402
from bridge.timeline import export_selection  # noqa: E402
from server.media import write_movie  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SIZES = {"hd": (1920, 1080, 8, "h264"), "uhd": (3840, 2160, 10, "prores")}
RATE = Fraction(24)


def frames(n: int, width: int, height: int, deep: bool):
    """A slow pan over a textured plate with a moving bright box; made one frame at a time."""
    rng = np.random.default_rng(1)
    plate = cv2.resize(rng.integers(0, 255, (height // 8 + 8, width // 8 + 64, 3), dtype=np.uint8),
                       (width + 512, height + 64), interpolation=cv2.INTER_CUBIC)
    plate = cv2.GaussianBlur(plate, (0, 0), 1.5)
    for i in range(n):
        x = (i * 2) % 500
        frame = plate[32:32 + height, x:x + width].copy()
        bx = 100 + (i * 7) % (width - 400)
        frame[height // 3:height // 3 + 200, bx:bx + 200] = 240
        yield frame.astype(np.uint16) * 257 + (i % 64) if deep else frame


def make_source(folder: Path, n: int, size: str) -> Path:
    width, height, bits, codec = SIZES[size]
    suffix = {"h264": ".mp4", "prores": ".mov"}[codec]
    return write_movie(frames(n, width, height, bits > 8), folder / f"plate_{size}_{n}{suffix}", codec=codec,
                       rate=RATE, start_timecode="01:00:00:00").path


def make_mask(folder: Path, size: str) -> Path:
    width, height, _, _ = SIZES[size]
    mask = np.zeros((height, width, 3), np.uint8)
    mask[height // 2:height // 2 + 256, width // 2:width // 2 + 256] = 255   # a logo-sized patch
    path = folder / f"mask_{size}.png"
    cv2.imwrite(str(path), mask)
    return path


def timeline_for(media: Path, n: int) -> otio.schema.Timeline:
    t = otio.schema.Timeline("bench")
    track = otio.schema.Track("V1")
    rt = lambda v: otio.opentime.RationalTime(v, 24)  # noqa: E731
    ref = otio.schema.ExternalReference(str(media), otio.opentime.TimeRange(rt(86400), rt(n)))
    track.append(otio.schema.Clip("A", ref, otio.opentime.TimeRange(rt(86400), rt(n))))
    t.tracks.append(track)
    return t


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_one(folder: Path, media: Path, mask: Path, n: int, op: str, codec: int) -> dict:
    store = folder / f"store_{media.stem}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "--log-level", "warning", "serve", "--port", "0",
                             "--store", str(store), "--json", "--max-frames", str(max(2000, n)), "--allow",
                             str(folder)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        address = json.loads(proc.stdout.readline())["address"]
        idle = peak_rss_mb(proc.pid)
        request = pb.SubmitJobRequest(operation=pb.INPAINT if op == "inpaint" else pb.REFINE,
                                      selection_otio=otio.adapters.write_to_string(
                                          export_selection(timeline_for(media, n), "A"), "otio_json"))
        if op == "inpaint":
            request.inpaint.mask_url = str(mask)
        else:
            request.refine.strength = 0.5
        request.contract.output.codec = codec
        request.contract.output.take_dir = str(folder / "takes")
        started = time.monotonic()
        with GenerationClient(address) as client:
            job = client.wait(client.submit(request).job_id, reconnect_timeout=3600)
        seconds = time.monotonic() - started
        if job.state != pb.SUCCEEDED:
            raise SystemExit(f"the {op} job of {n} frames failed: {job.error}")
        return {"frames": n, "op": op, "peak_rss_mb": round(peak_rss_mb(proc.pid), 1),
                "idle_rss_mb": round(idle, 1), "seconds": round(seconds, 1),
                "take_frames": job.take.media.frame_count, "take_pix_fmt": job.take.media.pixel_format}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["hd", "uhd"])
    parser.add_argument("--op", choices=("inpaint", "refine"), default="inpaint")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = {"machine": {"hostname": socket.gethostname(), "platform": platform.platform(),
                          "cpu_count": os.cpu_count(), "python": sys.version.split()[0]},
              "runs": {}}
    with tempfile.TemporaryDirectory(prefix="tb-mem-", dir=os.environ.get("TMPDIR")) as tmp:
        folder = Path(tmp)
        for size in args.sizes:
            mask = make_mask(folder, size)
            rows = []
            for n in args.lengths:
                made = time.monotonic()
                media = make_source(folder, n, size)
                print(f"{size} {n} frames: source made in {time.monotonic() - made:.0f} s", flush=True)
                codec = pb.PRORES_422_HQ if SIZES[size][3] == "prores" else pb.FFV1
                rows.append(run_one(folder, media, mask, n, args.op, codec))
                print(json.dumps(rows[-1]), flush=True)
                result["runs"][size] = {"size": list(SIZES[size][:2]), "source_bits": SIZES[size][2], "rows": rows}
                _write(result, args.out)   # after every run: a long bench keeps what it measured
                media.unlink()
                for take in (folder / "takes").rglob("*"):
                    if take.is_file():
                        take.unlink()
            peaks = [r["peak_rss_mb"] for r in rows]
            result["runs"][size] = {"size": list(SIZES[size][:2]), "source_bits": SIZES[size][2], "rows": rows,
                                    "peak_ratio_longest_to_shortest": round(peaks[-1] / peaks[0], 3)}
    out = _write(result, args.out)
    print(json.dumps({k: v["peak_ratio_longest_to_shortest"] for k, v in result["runs"].items()}))
    print(f"written to {out}")
    return 0


def _write(result: dict, out: Path | None) -> Path:
    out = out or RESULTS / f"memory_{socket.gethostname()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return out


if __name__ == "__main__":
    sys.exit(main())
