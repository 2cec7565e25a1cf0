"""Jobs on Ray: throughput with 1 and 2 workers, and the Ray path's per-job overhead against the
local worker, in one run.

N refine jobs (classic backend) of one small clip are submitted at once through real gRPC to a
server whose jobs run (a) on its local worker thread, (b) on one Ray worker, (c) on two; the
wall time from the first submit to the last take, median of --repeats runs. Throughput ratio =
(b) / (c) (the target on two cores: at least 1.6x); per-job overhead = ((b) - (a)) / N; and
(d) one Ray worker without shared storage (the range cut into the front's media store, fetched
by the worker once, the take sent back): its cost per job against (b), and the bytes that
travelled for the first job and for the others. Each
Ray worker uses the one CPU Ray gives it (OpenCV's threads set to it), and the local run is held
to one core likewise, so the overhead compares like with like.

    python bench/bench_ray.py [--jobs 8] [--repeats 3] [--json OUT]

Results: bench/results/ray_<hostname>.json with the machine.
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
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench_classic import machine_info, write_result  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _one(folder: Path, jobs: int, ray: str | None, workers: int, shared: bool = True) -> tuple[float, list]:
    from conftest import make_timeline, submit_request

    from bridge.api import pb
    from bridge.client import GenerationClient
    from server.app import ServerConfig, build_server, shutdown
    from server.media import write_movie
    from server.ray_media import CACHE_ENV
    from server.samples import noisy_clip

    frames = noisy_clip(96, 180, 320, 8.0, seed=1)[0]
    media = write_movie(frames, folder / "clip.mkv", codec="ffv1", rate=Fraction(24), start_timecode="01:00:00:00").path
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=96, clip_in=24, clip_frames=48)
    os.environ[CACHE_ENV] = str(folder / "worker-cache")    # each run's workers start with an empty cache
    server, runtime, port = build_server(ServerConfig(port=0, store=folder / "store", ray=ray, ray_workers=workers,
                                                      ray_shared_storage=shared))
    client = GenerationClient(f"127.0.0.1:{port}")
    try:
        started = time.perf_counter()
        submitted = [client.submit(submit_request(timeline, "A", "refine", strength=0.5, seed=i)) for i in range(jobs)]
        done = [client.wait(job.job_id) for job in submitted]
        elapsed = time.perf_counter() - started
        assert all(job.state == pb.SUCCEEDED for job in done), [job.error for job in done]
        transfers = [json.loads(Path(job.take.manifest_url).read_text()).get("media_transfer") for job in done]
        return elapsed, [t["shipped_in_bytes"] for t in transfers if t]
    finally:
        client.close()
        shutdown(server, runtime, grace=0.5)


def run(jobs: int, repeats: int) -> dict:
    import cv2

    cv2.setNumThreads(1)   # the local worker on one core, as each Ray worker is: the overhead compares like with like
    results = {}
    for label, ray, workers, shared in (("local", None, 1, True), ("ray_1_worker", "local", 1, True),
                                        ("ray_2_workers", "local", 2, True),
                                        ("ray_1_worker_no_shared_storage", "local", 1, False)):
        times = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                elapsed, fetched = _one(Path(tmp), jobs, ray, workers, shared)
                times.append(elapsed)
        results[label] = {"seconds_median": round(statistics.median(times), 3), "runs": [round(t, 3) for t in times]}
        if fetched:
            results[label]["bytes_fetched_per_job"] = fetched
        print(f"  {label}: {results[label]['seconds_median']} s for {jobs} jobs")
    one, two, local, apart = (results[k]["seconds_median"] for k in ("ray_1_worker", "ray_2_workers", "local",
                                                                      "ray_1_worker_no_shared_storage"))
    return {"jobs": jobs, "clip": "frames 24-71 of a 96-frame 320x180 FFV1 clip (FFmpeg's default GOP), refine strength "
                                  "0.5 (classic)", **results,
            "throughput_ratio_2_vs_1": round(one / two, 3),
            "ray_overhead_per_job_s": round((one - local) / jobs, 3),
            "no_shared_storage_cost_per_job_s": round((apart - one) / jobs, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="where to write (default bench/results/ray_<host>.json)")
    args = parser.parse_args(argv)
    print(f"{args.jobs} jobs, local worker vs 1 and 2 Ray workers ...")
    result = {"machine": machine_info(), **run(args.jobs, args.repeats)}
    print(f"  throughput 2 vs 1 workers: {result['throughput_ratio_2_vs_1']}x; Ray overhead per job: "
          f"{result['ray_overhead_per_job_s']} s; without shared storage: "
          f"{result['no_shared_storage_cost_per_job_s']} s more per job")
    out = args.json or RESULTS / f"ray_{socket.gethostname()}.json"
    write_result(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
