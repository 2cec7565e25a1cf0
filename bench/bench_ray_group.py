"""One job on a device group against the same job on one device (issue 18 §5), in one run.

A refine of the tiny Wan video-to-video pipeline (random weights, its profile asking for
`--devices` per job) goes through real gRPC to (a) a server without Ray, where the model runs
whole on one device, and (b) `serve --ray` with one device group of `--devices` workers, where
the transformer's attention is split over them (diffusers' Ulysses context parallelism; NCCL on
GPUs, gloo on CPUs). It records each job's wall time (medians of --repeats after a warm-up job
that loads the model), whether the two takes are the same pixels (and the largest difference),
and the group's ranks from the manifest.

The tiny model says nothing about speed-up on real models (its attention is a few hundred
tokens); what this run shows is that a group forms, splits, agrees with one device, and what a
group costs per job. On a machine with fewer devices than asked it writes why it did not run.

    python bench/bench_ray_group.py --device cuda --devices 2     # a machine with 2+ GPUs
    python bench/bench_ray_group.py --device cpu --devices 2      # the same code on CPU processes

Results: bench/results/ray_group_<device>_<hostname>.json with the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = ROOT / "bench" / "results"


def _profile(folder: Path, devices: int, steps: int) -> Path:
    from server.backends.diffusers.tiny import make_tiny

    profile = make_tiny(folder / "models", only=["tiny-wan-v2v"])
    data = json.loads(profile.read_text())
    data["models"][0].update(parallel={"devices": devices, "method": "ulysses"}, steps=steps)
    profile.write_text(json.dumps(data))
    return profile


def _jobs(folder: Path, profile: Path, device: str, repeats: int, ray: str | None) -> dict:
    from conftest import make_timeline, submit_request

    from bridge.api import pb
    from bridge.client import GenerationClient
    from server.app import ServerConfig, build_server, shutdown
    from server.media import read_frames, write_movie
    from server.samples import noisy_clip

    frames = noisy_clip(17, 96, 160, 8.0, seed=1)[0]
    media = write_movie(frames, folder / f"clip-{ray or 'one'}.mkv", codec="ffv1", rate=24).path
    timeline = make_timeline(media, rate=24, media_start=0, media_frames=17, clip_in=0, clip_frames=17)
    server, runtime, port = build_server(ServerConfig(port=0, store=folder / f"store-{ray or 'one'}", models=profile,
                                                      device=device, ray=ray, ray_workers=1))
    client = GenerationClient(f"127.0.0.1:{port}")
    try:
        seconds, manifest, take = [], None, None
        for run in range(repeats + 1):          # the first loads the model (and joins the group)
            request = submit_request(timeline, "A", "refine", strength=0.7, seed=5)
            request.backend = "diffusers"
            started = time.perf_counter()
            done = client.wait(client.submit(request).job_id)
            if done.state != pb.SUCCEEDED:
                raise SystemExit(f"the job failed: {done.error}")
            if run:
                seconds.append(time.perf_counter() - started)
            manifest = json.loads(Path(done.take.manifest_url).read_text())
            take = read_frames(done.take.media.url, 0, 17)
        return {"seconds_median": round(statistics.median(seconds), 3), "runs": [round(s, 3) for s in seconds],
                "worker": manifest.get("worker"), "parallel": (manifest.get("determinism") or {}).get("parallel"),
                "take": take}
    finally:
        client.close()
        shutdown(server, runtime, grace=0.5)


def _devices_here(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    return os.cpu_count() or 1


def run(device: str, devices: int, repeats: int, steps: int) -> dict:
    import numpy as np

    have = _devices_here(device)
    if have < devices:
        return {"ran": False, "why": f"{devices} {device} devices asked, {have} here"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        profile = _profile(folder, devices, steps)
        one = _jobs(folder, profile, device, repeats, None)
        group = _jobs(folder, profile, device, repeats, "local")
    difference = int(np.abs(one.pop("take").astype(int) - group.pop("take").astype(int)).max())
    return {"ran": True, "device": device, "devices": devices, "steps": steps,
            "job": "refine, 17 frames of 160x96, tiny Wan v2v (random weights)",
            "one_device": one, "device_group": group, "same_pixels": difference == 0,
            "largest_pixel_difference": difference,
            "group_over_one_device_time": round(group["seconds_median"] / one["seconds_median"], 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (a group of GPUs, NCCL) or cpu (processes, gloo)")
    parser.add_argument("--devices", type=int, default=2, help="devices in the group (divides the model's 2 heads)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--json", type=Path, help="where to write (default bench/results/ray_group_<device>_<host>.json)")
    args = parser.parse_args(argv)
    from bench_classic import machine_info, write_result

    result = {"machine": machine_info(), **run(args.device, args.devices, args.repeats, args.steps)}
    if result["ran"]:
        print(f"one device {result['one_device']['seconds_median']} s, group of {args.devices} "
              f"{result['device_group']['seconds_median']} s per job; same pixels: {result['same_pixels']} "
              f"(largest difference {result['largest_pixel_difference']})")
    else:
        print(f"not run: {result['why']}")
    out = args.json or RESULTS / f"ray_group_{args.device.split(':')[0]}_{socket.gethostname()}.json"
    write_result(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
