"""The server under load and under attack, through a real `takebridge serve` process on loopback.

1. Latency with open streams: GetJob and SubmitJob acknowledgement times (p50/p95) with 0 open
   WatchJob streams (the baseline, same run) and with 64, while a long job keeps the worker busy.
2. Memory over submit/cancel cycles: the server's RSS after each block of cycles.
3. Attack: mutated OTIO selections and hostile field values; counts of each status, whether the
   server process survived, and how many OTIO reader children were replaced.

    python bench/bench_load.py [--streams 64] [--calls 200] [--cycles 1000] [--attack 3000]

Results: bench/results/load_<hostname>.json (machine included). Loopback only; every loop is
bounded in count and time.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import grpc
import opentimelineio as otio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.api import pb, pb_grpc  # noqa: E402
from bridge.timeline import export_selection  # noqa: E402
from server.media import write_movie  # noqa: E402
from server.samples import pan_clip  # noqa: E402

RESULTS = ROOT / "bench" / "results"
OK_STATUSES = {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "PERMISSION_DENIED", "ALREADY_EXISTS",
               "RESOURCE_EXHAUSTED", "OUT_OF_RANGE"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    log = open(store.parent / "server.log", "a")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "--log-level", "info", "serve", "--port", str(port),
                             "--store", str(store), "--json", "--max-frames", "2000"], stdout=subprocess.PIPE,
                            stderr=log, text=True, env=env, cwd=ROOT)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("the server did not start; see server.log")
    return proc, json.loads(line)["address"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timeline_for(media: Path, frames: int, rate: int = 24) -> otio.schema.Timeline:
    t = otio.schema.Timeline("bench")
    track = otio.schema.Track("V1")
    rt = lambda v: otio.opentime.RationalTime(v, rate)  # noqa: E731
    ref = otio.schema.ExternalReference(str(media), otio.opentime.TimeRange(rt(0), rt(frames)))
    track.append(otio.schema.Clip("A", ref, otio.opentime.TimeRange(rt(0), rt(frames))))
    t.tracks.append(track)
    return t


def request_for(timeline, op=pb.REFINE, request_id: str = "") -> "pb.SubmitJobRequest":
    request = pb.SubmitJobRequest(operation=op, request_id=request_id or os.urandom(8).hex(),
                                  selection_otio=otio.adapters.write_to_string(export_selection(timeline, "A"),
                                                                               "otio_json"))
    request.refine.strength = 0.5
    request.contract.output.codec = pb.FFV1
    return request


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_ms": round(1000 * statistics.median(ordered), 2),
            "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2),
            "max_ms": round(1000 * ordered[-1], 2)}


def latencies(stub, small, calls: int) -> dict:
    get, submit = [], []
    job_id = stub.SubmitJob(request_for(small), timeout=30).job_id
    for _ in range(calls):
        started = time.perf_counter()
        stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=30)
        get.append(time.perf_counter() - started)
        started = time.perf_counter()
        job = stub.SubmitJob(request_for(small), timeout=30)
        submit.append(time.perf_counter() - started)
        stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id), timeout=30)
    return {"GetJob": percentiles(get), "SubmitJob": percentiles(submit)}


def bench_streams(stub, channel, big, small, streams: int, calls: int) -> dict:
    busy = stub.SubmitJob(request_for(big), timeout=60)   # keeps the worker (and a core) busy
    queued = [stub.SubmitJob(request_for(small), timeout=30) for _ in range(4)]
    baseline = latencies(stub, small, calls)
    open_streams = [stub.WatchJob(pb.WatchJobRequest(job_id=(queued[i % 4].job_id if i % 2 else busy.job_id),
                                                     include_previews=True)) for i in range(streams)]
    time.sleep(1.0)
    loaded = latencies(stub, small, calls)
    for stream in open_streams:
        stream.cancel()
    for job in (busy, *queued):
        stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id), timeout=30)
    return {"streams": streams, "calls_each": calls, "without_streams": baseline, "with_streams": loaded,
            "p95_ratio_get": round(loaded["GetJob"]["p95_ms"] / max(baseline["GetJob"]["p95_ms"], 1e-3), 2),
            "p95_ratio_submit": round(loaded["SubmitJob"]["p95_ms"] / max(baseline["SubmitJob"]["p95_ms"], 1e-3), 2)}


def bench_memory(stub, pid: int, small, cycles: int) -> dict:
    marks = {0: rss_mb(pid)}
    block = max(1, cycles // 10)
    for index in range(1, cycles + 1):
        job = stub.SubmitJob(request_for(small), timeout=30)
        try:
            stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id), timeout=30)
        except grpc.RpcError as err:   # it may have finished already
            if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
        if index % block == 0:
            marks[index] = rss_mb(pid)
    values = list(marks.values())
    return {"cycles": cycles, "rss_mb": {str(k): round(v, 1) for k, v in marks.items()},
            "growth_second_half_mb": round(values[-1] - values[len(values) // 2], 1)}


# -- attack ------------------------------------------------------------------------------------
NASTY = ["../../etc/passwd", "/etc/passwd", "", "x" * 5000, -1, 0, 2**63, -2**63, 1e308, -1e-308, True, False, None,
         [], {}, [[[[]]]], {"OTIO_SCHEMA": "Clip.2"}, {"OTIO_SCHEMA": "Track.1", "children": 5},
         {"OTIO_SCHEMA": "Timeline.1"}, "NaN", "24000/0", {"OTIO_SCHEMA": "RationalTime.1", "value": 1, "rate": 0}]


def mutate(data, rng: random.Random):
    data = copy.deepcopy(data)
    nodes = []

    def walk(node, parent, key):
        nodes.append((parent, key))
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, node, k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, node, i)
    walk(data, None, None)
    for _ in range(rng.randint(1, 4)):
        parent, key = rng.choice(nodes[1:])
        action = rng.random()
        try:
            if action < 0.6:
                parent[key] = copy.deepcopy(rng.choice(NASTY))
            elif action < 0.8 and isinstance(parent, dict):
                del parent[key]
            else:
                parent[key] = copy.deepcopy(rng.choice([n for n in (data, parent) if n is not None]))
        except (KeyError, IndexError, TypeError):
            pass
    return data


def bench_attack(stub, proc, small, count: int, seed: int = 11) -> dict:
    rng = random.Random(seed)
    valid = json.loads(request_for(small).selection_otio)
    statuses: dict[str, int] = {}
    accepted, started = [], time.monotonic()
    for index in range(count):
        request = request_for(small)
        kind = rng.random()
        if kind < 0.7:
            request.selection_otio = json.dumps(mutate(valid, rng))
        elif kind < 0.8:
            text = request.selection_otio
            cut = rng.randrange(len(text))
            request.selection_otio = text[:cut] + rng.choice(["", "}", "[", "\x00", "\"", "1e999"]) + text[cut + 1:]
        elif kind < 0.85:
            request.selection_otio = "[" * rng.choice([100, 10_000, 100_000]) + "]" * 10
        else:
            field = rng.choice(["strength", "seed", "grow", "feather", "handles", "take_dir", "ref"])
            if field == "strength":
                request.refine.strength = rng.choice([float("nan"), float("inf"), -1.0, 7.0])
            elif field == "seed":
                request.contract.seed = rng.choice([-1, 2**62, 2**31])
            elif field == "grow":
                request.operation = pb.INPAINT
                request.inpaint.mask_url = "/etc/passwd"
                request.inpaint.grow_pixels = rng.choice([-5, 10**6])
            elif field == "feather":
                request.contract.constraints.mask_feather_px = rng.choice([-1, 10**6])
            elif field == "take_dir":
                request.contract.output.take_dir = rng.choice(["/etc", "../../..", "/proc/self"])
            else:
                request.contract.reference_images.add(url=rng.choice(["cas:../../etc/passwd", "/dev/zero",
                                                                      "cas:" + "a" * 64]))
        try:
            job = stub.SubmitJob(request, timeout=30)
            statuses["OK"] = statuses.get("OK", 0) + 1
            accepted.append(job.job_id)
        except grpc.RpcError as err:
            statuses[err.code().name] = statuses.get(err.code().name, 0) + 1
        if proc.poll() is not None:
            return {"requests": index + 1, "statuses": statuses, "server_survived": False}
    # every accepted job ends
    deadline = time.monotonic() + 300
    ended = 0
    for job_id in accepted:
        while time.monotonic() < deadline:
            job = stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=30)
            if job.state in (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED):
                ended += 1
                break
            time.sleep(0.2)
    return {"requests": count, "seconds": round(time.monotonic() - started, 1), "statuses": statuses,
            "unclear_statuses": sum(v for k, v in statuses.items() if k not in OK_STATUSES),
            "server_survived": proc.poll() is None, "accepted": len(accepted), "accepted_jobs_ended": ended}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--calls", type=int, default=200, help="GetJob and SubmitJob calls per measurement")
    parser.add_argument("--cycles", type=int, default=1000, help="submit/cancel cycles for the memory check")
    parser.add_argument("--attack", type=int, default=3000, help="hostile SubmitJob requests")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", choices=("streams", "memory", "attack"), default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tb-load-") as tmp:
        tmp = Path(tmp)
        small = timeline_for(write_movie(pan_clip(6, 48, 64, 1.0), tmp / "small.mkv", codec="ffv1",
                                         rate=Fraction(24)).path, 6)
        big = timeline_for(write_movie(pan_clip(600, 360, 640, 2.0), tmp / "big.mkv", codec="ffv1",
                                       rate=Fraction(24)).path, 600)
        proc, address = start_server(tmp / "store")
        channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.GenerationStub(channel)
        try:
            result = {"machine": {"hostname": socket.gethostname(), "platform": platform.platform(),
                                  "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
                                  "grpcio": grpc.__version__}}
            if args.only in (None, "streams"):
                result["streams"] = bench_streams(stub, channel, big, small, args.streams, args.calls)
                print(json.dumps(result["streams"], indent=1), flush=True)
            if args.only in (None, "memory"):
                result["memory"] = bench_memory(stub, proc.pid, small, args.cycles)
                print(json.dumps(result["memory"], indent=1), flush=True)
            if args.only not in (None, "attack"):
                return _write(result, args.out)
            result["attack"] = bench_attack(stub, proc, small, args.attack)
            log = (tmp / "server.log").read_text(errors="replace")
            result["attack"]["reader_children_replaced"] = log.count("OTIO reader child")
            result["attack"]["tracebacks_in_log"] = log.count("Traceback")
            result["attack"]["traceback_samples"] = [part[:1500] for part in log.split("Traceback")[1:4]]
            print(json.dumps(result["attack"], indent=1), flush=True)
        finally:
            channel.close()
            proc.terminate()
            proc.wait(timeout=30)
    return _write(result, args.out)


def _write(result: dict, out: Path | None) -> int:
    out = out or RESULTS / f"load_{socket.gethostname()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
