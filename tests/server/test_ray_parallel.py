"""One job on several devices (issue 18 §5), on a real local Ray cluster: a device group of two
CPU processes (gloo) runs the tiny Wan video-to-video pipeline with its transformer's attention
split over them (diffusers' Ulysses context parallelism), as a group of GPUs would with NCCL.
The split take must equal the one-device take; a cancel stops the whole group and the group
joins again for the next job; a profile asking for more devices than any node has is refused
at start-up; a worker whose versions differ from the front's is refused with both versions."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bridge.api import pb
from bridge.client import GenerationClient
from server.app import ConfigError, ServerConfig, build_server, shutdown
from server.media import read_frames
from server.samples import noisy_clip

from conftest import make_timeline, submit_request

pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def split_profile(tmp_path_factory) -> Path:
    """The tiny Wan v2v model, its profile asking for two devices per job (and the same model as
    "slow", with 400 steps, for a job to cancel while it runs)."""
    from server.backends.diffusers.tiny import make_tiny

    profile = make_tiny(tmp_path_factory.mktemp("models"), only=["tiny-wan-v2v"])
    data = json.loads(profile.read_text())
    data["models"][0].update(parallel={"devices": 2, "method": "ulysses"}, steps=3)
    data["models"].append({**data["models"][0], "id": "slow", "steps": 400})
    profile.write_text(json.dumps(data))
    return profile


@pytest.fixture
def timeline(write_media):
    video = noisy_clip(13, 48, 64, 8.0, seed=1)[0]
    media = write_media("a", video)
    return make_timeline(media, rate=24, media_start=86400, media_frames=13, clip_in=0, clip_frames=13)


def _serve(tmp_path, **config):
    server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store", device="cpu", **config))
    return server, runtime, GenerationClient(f"127.0.0.1:{port}")


def _refine(timeline, seed=5, model="tiny-wan-v2v"):
    request = submit_request(timeline, "A", "refine", strength=0.7, seed=seed)
    request.backend, request.model = "diffusers", model
    return request


def _take(client, request):
    done = client.wait(client.submit(request).job_id)
    assert done.state == pb.SUCCEEDED, done.error
    return done, json.loads(Path(done.take.manifest_url).read_text())


def test_a_split_job_runs_on_a_device_group_and_makes_the_one_device_take(tmp_path, split_profile, timeline,
                                                                          monkeypatch):
    monkeypatch.setenv("TAKEBRIDGE_WORKER_CACHE", str(tmp_path / "worker-cache"))   # (the workers inherit it)
    server, runtime, client = _serve(tmp_path / "one", models=split_profile)   # no Ray: the model runs whole
    try:
        done, alone = _take(client, _refine(timeline))
        pixels_alone = read_frames(done.take.media.url, 0, 13)
    finally:
        client.close()
        shutdown(server, runtime, grace=0.5)
    assert alone["determinism"]["parallel"]["note"] == "not in a device group: ran on one device"

    server, runtime, client = _serve(tmp_path / "group", models=split_profile, ray="local", ray_workers=1)
    try:
        caps = client.capabilities()
        assert [(w.name, w.devices) for w in caps.workers] == [("ray-group-0", 2)], caps.workers
        done, manifest = _take(client, _refine(timeline))
        group = manifest["worker"]["group"]
        assert [r["rank"] for r in group] == [0, 1] and len({r["pid"] for r in group}) == 2, group
        assert manifest["determinism"]["parallel"] == {"devices": 2, "method": "ulysses", "backend": "gloo"}
        split = read_frames(done.take.media.url, 0, 13)
        assert split.shape == pixels_alone.shape
        assert np.array_equal(split, pixels_alone), "split over two processes: the same take, pixel for pixel"
        assert "tiny-wan-v2v" in client.capabilities().workers[0].loaded_models

        # a cancel stops the whole group (the ranks wait on each other); it joins again for the next job
        job = client.submit(_refine(timeline, seed=6, model="slow")).job_id
        _wait_running(client, job)
        client.cancel(job)
        assert client.wait(job).state == pb.CANCELLED
        _, again = _take(client, _refine(timeline, seed=7))
        assert {r["pid"] for r in again["worker"]["group"]}.isdisjoint({r["pid"] for r in group}), \
            "the group's processes were ended and started again"

        # a group without the front's disk: every rank gets the inputs from the front's store
        runtime.workers[0].shared = False
        done, apart = _take(client, _refine(timeline))
        assert len(apart["worker"]["group"]) == 2 and apart["media_transfer"]["shipped_in_bytes"] > 0
        assert np.array_equal(read_frames(done.take.media.url, 0, 13), split), "the same take as on the shared disk"
    finally:
        client.close()
        shutdown(server, runtime, grace=0.5)


def _wait_running(client, job_id, timeout=120):
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get_job(job_id)
        if job.state == pb.RUNNING and job.progress.fraction > 0.0:
            return
        assert job.state in (pb.QUEUED, pb.RUNNING), job.error
        time.sleep(0.02)
    raise AssertionError("the job never started")


def test_a_profile_asking_more_devices_than_any_node_has_is_refused_at_start(tmp_path, split_profile):
    from ray.cluster_utils import Cluster

    data = json.loads(split_profile.read_text())
    for model in data["models"]:
        model["parallel"]["devices"] = 3
        model["folder"] = str(split_profile.parent / model["folder"])
    profile = tmp_path / "models.json"
    profile.write_text(json.dumps(data))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    try:
        with pytest.raises(ConfigError, match=r"model tiny-wan-v2v asks for 3 CPUs for one job \(its profile's "
                                              r"parallel.devices\) and the largest node of the Ray cluster has 2"):
            build_server(ServerConfig(port=0, store=tmp_path / "store", device="cpu", models=profile,
                                      ray=cluster.address, ray_workers=1))
    finally:
        cluster.shutdown()


def test_ray_at_an_address_where_no_cluster_answers_is_refused_before_anything_starts(tmp_path):
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(ConfigError, match=rf"--ray 127.0.0.1:{port}: no Ray cluster answers there .*ray start --head "
                                          rf"--port {port}"):
        build_server(ServerConfig(port=0, store=tmp_path / "store", ray=f"127.0.0.1:{port}"))
    with pytest.raises(ConfigError, match=r"--ray 'nowhere' is not HOST:PORT"):
        build_server(ServerConfig(port=0, store=tmp_path / "store2", ray="nowhere"))


def test_a_worker_whose_versions_differ_from_the_fronts_is_refused_with_both(tmp_path, monkeypatch):
    """The workers import TakeBridge from a copy whose version says otherwise (as a node with
    another install would): every worker is refused and the server does not start."""
    import bridge
    from server import ray_cluster

    root = Path(ray_cluster._root())
    copy = tmp_path / "other-install"
    for package in ("bridge", "server"):
        shutil.copytree(root / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    init = copy / "bridge" / "__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{bridge.__version__}"', '__version__ = "0.0.1-other"'))
    assert "0.0.1-other" in init.read_text()
    monkeypatch.setattr(ray_cluster, "_root", lambda: str(copy))
    monkeypatch.chdir(tmp_path)     # (Ray puts the front's working folder first on its workers' path)
    with pytest.raises(ConfigError, match=rf"takebridge 0.0.1-other on the worker and {bridge.__version__} here; "
                                          r"install the same versions on every node"):
        build_server(ServerConfig(port=0, store=tmp_path / "store", ray="local", ray_workers=1))


@pytest.mark.parametrize("parallel, message", [
    ({"devices": 0}, r"parallel.devices 0 is not a whole number from 1 to 64"),
    ({"devices": "2"}, r"parallel.devices '2' is not a whole number"),
    ({"devices": 2, "method": "pipeline"}, r"parallel.method 'pipeline' is not ulysses or ring"),
    ({"devices": 2, "gpus": 2}, r"parallel has unknown field\(s\) gpus; it takes devices and method"),
])
def test_a_bad_parallel_section_is_refused_with_what_to_write(tmp_path, parallel, message):
    from server.backends.diffusers.loading import ModelError, read_profiles

    entry = {"id": "m", "pipeline": "wan_v2v", "folder": "m", "operations": ["refine"], "native_size": [32, 32],
             "size_multiple": 16, "native_fps": 16, "frame_rule": "4k+1", "max_frames": 17, "parallel": parallel}
    (tmp_path / "models.json").write_text(json.dumps({"models": [entry]}))
    with pytest.raises(ModelError, match=message):
        read_profiles(tmp_path / "models.json")
    entry.update(pipeline="wan_vace", parallel={"devices": 2})
    (tmp_path / "models.json").write_text(json.dumps({"models": [entry]}))
    with pytest.raises(ModelError, match=r"pipeline wan_vace has no context-parallel plan here; parallel works for "
                                         r"wan_v2v, wan_t2v, wan_i2v, wan_flf2v"):
        read_profiles(tmp_path / "models.json")


def test_models_asking_for_groups_of_different_sizes_are_refused_before_ray_starts(tmp_path, split_profile):
    import ray

    data = json.loads(split_profile.read_text())
    data["models"][1]["parallel"] = {"devices": 4}
    for model in data["models"]:
        model["folder"] = str(split_profile.parent / model["folder"])
    profile = tmp_path / "models.json"
    profile.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"device groups of different sizes \(tiny-wan-v2v: 2, slow: 4\); one server "
                                          r"runs groups of one size"):
        build_server(ServerConfig(port=0, store=tmp_path / "store", device="cpu", models=profile, ray="local"))
    assert not ray.is_initialized()


def _load_split(rank: int, world: int, profile_path: str, port: int, errors: str) -> None:
    """One rank of a process group loading a split model (a spawned process)."""
    import os

    import torch.distributed as dist

    from server.backends.diffusers.loading import load_pipeline, read_profiles

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        load_pipeline(read_profiles(Path(profile_path))[0], "cpu")
    except Exception as err:
        Path(errors, f"rank{rank}").write_text(str(err))
    finally:
        dist.destroy_process_group()


def test_ulysses_over_a_device_count_that_does_not_divide_the_heads_is_refused_with_the_numbers(tmp_path,
                                                                                                split_profile):
    """Three ranks for a model of two attention heads: every rank refuses to load it, saying
    why and what to write instead (the tiny Wan transformer has 2 heads)."""
    import socket

    import torch.multiprocessing as mp

    data = json.loads(split_profile.read_text())
    model = {**data["models"][0], "parallel": {"devices": 3, "method": "ulysses"},
             "folder": str(split_profile.parent / data["models"][0]["folder"])}
    profile = tmp_path / "models.json"
    profile.write_text(json.dumps({"models": [model]}))
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    errors = tmp_path / "errors"
    errors.mkdir()
    mp.spawn(_load_split, args=(3, str(profile), port, str(errors)), nprocs=3)
    said = {p.name: p.read_text() for p in errors.iterdir()}
    assert sorted(said) == ["rank0", "rank1", "rank2"]
    assert all("Ulysses attention splits the 2 attention heads over 3 devices" in text and "use method ring" in text
               for text in said.values()), said


def test_the_device_group_benchmark_runs_and_says_when_it_cannot():
    """bench/bench_ray_group.py (prepared for a multi-GPU machine) on CPU processes: a group
    forms, makes the one-device take, and its ranks are recorded; asked for GPUs that are not
    here, it says so instead of running."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    try:
        import bench_ray_group
    finally:
        sys.path.pop(0)
    result = bench_ray_group.run("cpu", 2, 1, 2)
    assert result["ran"] and result["same_pixels"] and result["largest_pixel_difference"] == 0
    assert [r["rank"] for r in result["device_group"]["worker"]["group"]] == [0, 1]
    assert result["device_group"]["parallel"]["devices"] == 2 and result["one_device"]["worker"] is None
    import torch

    if not torch.cuda.is_available():
        assert bench_ray_group.run("cuda", 2, 1, 2) == {"ran": False, "why": "2 cuda devices asked, 0 here"}
