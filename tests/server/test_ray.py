"""Jobs on Ray (issue 18): a real local Ray cluster on loopback (started by the server the test
builds, no dashboard, stopped after). Two CPU workers run two jobs at once; a worker killed by
its PID mid-job loses nothing: the job runs again (attempts 2) and makes one take; a cancel
reaches the worker; the tiny diffusers pipelines run on a Ray worker."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from bridge.api import pb
from bridge.client import GenerationClient
from server.app import ServerConfig, build_server, shutdown
from server.samples import noisy_clip

from conftest import make_timeline, submit_request

pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture
def ray_server(tmp_path):
    servers = []

    def start(**config):
        server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store", ray="local",
                                                          ray_workers=2, **config))
        client = GenerationClient(f"127.0.0.1:{port}")
        servers.append((server, runtime, client))
        return client, runtime
    yield start
    for server, runtime, client in servers:
        client.close()
        shutdown(server, runtime, grace=0.5)


@pytest.fixture
def clip(write_media):
    def make(frames=48, size=(120, 200)):
        video = noisy_clip(frames, size[0], size[1], 8.0, seed=1)[0]
        media = write_media("a", video)
        return make_timeline(media, rate=24, media_start=86400, media_frames=frames, clip_in=0, clip_frames=frames)
    return make


def _diffusers(request):
    request.backend = "diffusers"
    return request


def _running(client, job_id, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get_job(job_id)
        if job.state == pb.RUNNING and job.progress.fraction > 0.05:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got going")


def test_two_workers_run_two_jobs_at_the_same_time_and_the_manifest_says_where(ray_server, clip):
    client, _ = ray_server()
    timeline = clip()
    jobs = [client.submit(submit_request(timeline, "A", "refine", strength=0.9, seed=s)) for s in (1, 2)]
    done = [client.wait(j.job_id) for j in jobs]
    assert [j.state for j in done] == [pb.SUCCEEDED, pb.SUCCEEDED], [j.error for j in done]
    first, second = sorted(done, key=lambda j: j.started_unix_ms)
    assert second.started_unix_ms < first.finished_unix_ms, "both started before either finished"
    workers = [json.loads(Path(j.take.manifest_url).read_text())["worker"] for j in done]
    assert all(w and w["pid"] != os.getpid() for w in workers) and workers[0]["pid"] != workers[1]["pid"]


def test_a_worker_killed_mid_job_loses_nothing(ray_server, clip):
    import ray

    client, runtime = ray_server()
    timeline = clip(96, (180, 320))
    job = client.submit(submit_request(timeline, "A", "refine", strength=0.9, seed=3))
    _running(client, job.job_id)
    worker = next(w for w in runtime.workers if job.job_id in w.cancels)
    pid = ray.get(worker.actor.where.remote())["pid"]
    os.kill(pid, signal.SIGKILL)
    done = client.wait(job.job_id)
    assert done.state == pb.SUCCEEDED, done.error
    assert done.attempts == 2 and done.take.take_id == "A_v001"
    takes = [j for j in client.list_jobs() if j.take.take_id]
    assert len(takes) == 1, "one take, committed once"
    assert sorted(p.name for p in Path(done.take.media.url).parent.iterdir() if p.name.startswith("A_v")) == \
        ["A_v001.manifest.json", "A_v001.mkv"]


def test_cancel_reaches_the_worker(ray_server, clip):
    client, _ = ray_server()
    timeline = clip(96, (180, 320))
    job = client.submit(submit_request(timeline, "A", "refine", strength=0.9, seed=4))
    _running(client, job.job_id)
    client.cancel(job.job_id)
    done = client.wait(job.job_id)
    assert done.state == pb.CANCELLED and not done.take.take_id
    # the worker is free again: the next job runs
    again = client.wait(client.submit(submit_request(clip(), "A", "refine", strength=0.5, seed=5)).job_id)
    assert again.state == pb.SUCCEEDED, again.error


def test_the_tiny_diffusers_pipelines_run_on_a_ray_worker_and_a_job_no_worker_can_hold_is_refused(
        ray_server, clip, tmp_path):
    from bridge.client import ClientError
    from server.backends.diffusers.tiny import make_tiny

    profile = make_tiny(tmp_path / "models", only=["tiny-wan-v2v"])
    client, runtime = ray_server(models=profile, device="cpu", ray_worker_memory_gb=0.2)
    request = submit_request(clip(13, (48, 64)), "A", "refine", strength=0.6, seed=2)
    request.backend = "diffusers"
    done = client.wait(client.submit(request).job_id)
    assert done.state == pb.SUCCEEDED, done.error
    manifest = json.loads(Path(done.take.manifest_url).read_text())
    assert manifest["backend"]["model"] == "tiny-wan-v2v" and manifest["worker"]["pid"] != os.getpid()
    caps = client.capabilities()
    assert [w.name for w in caps.workers] == ["ray-0", "ray-1"] and all(w.memory_gb == 0.2 for w in caps.workers)
    assert any("tiny-wan-v2v" in w.loaded_models for w in caps.workers), "the model stays warm on its worker"
    # a model bigger than any worker: refused at submit, with the numbers, nothing queued
    runtime.backends["diffusers"].profiles["tiny-wan-v2v"].memory_gb = 0.5
    with pytest.raises(ClientError, match=r"model tiny-wan-v2v needs about 0\.50 GB at 32x32 x 13 frames and the "
                                          r"largest worker has 0\.20 GB"):
        client.submit(_diffusers(submit_request(clip(13, (48, 64)), "A", "refine", strength=0.6, seed=3)))


def test_a_generative_job_goes_to_the_worker_that_has_its_model_loaded(ray_server, clip, tmp_path):
    from server.backends.diffusers.tiny import make_tiny

    profile = make_tiny(tmp_path / "models", only=["tiny-wan-v2v"])
    client, _ = ray_server(models=profile, device="cpu")
    timeline = clip(13, (48, 64))
    pids = []
    for seed in range(4):
        done = client.wait(client.submit(_diffusers(submit_request(timeline, "A", "refine", strength=0.6,
                                                                   seed=seed))).job_id)
        assert done.state == pb.SUCCEEDED, done.error
        pids.append(json.loads(Path(done.take.manifest_url).read_text())["worker"]["pid"])
    assert len(set(pids)) == 1, f"the warm worker took every job: {pids}"
    caps = {w.name: list(w.loaded_models) for w in client.capabilities().workers}
    assert sorted(caps.values()) == [[], ["tiny-wan-v2v"]]


def test_queued_jobs_are_taken_in_turn_between_clients(tmp_path):
    """One editor's five queued jobs do not starve another's one (any server, Ray or not)."""
    from server.jobstore import JobStore

    store = JobStore(str(tmp_path / "jobs.db"))
    ids = {}
    for index, client in enumerate(["a", "a", "a", "a", "a", "b"]):
        request = pb.SubmitJobRequest(request_id=f"r{index}", operation=pb.REFINE, client=client)
        job, _ = store.create_job(request, f"shot{index}", "classic", client=f"{client}@host")
        ids[job.job_id] = f"{client}{index}"
        time.sleep(0.002)
    order = []
    for _ in range(6):
        job_id = store.claim_next(["classic"])
        order.append(ids[job_id])
        time.sleep(0.002)
    assert order == ["a0", "b5", "a1", "a2", "a3", "a4"]
    store.close()


def test_a_worker_on_a_node_that_joins_later_picks_up_queued_work(tmp_path, clip):
    """A two-node Ray cluster on loopback, the second node added after the server started: the
    worker waiting for a node with room takes nothing until it has one, then runs queued jobs."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store", ray=cluster.address,
                                                          ray_workers=2))
    except BaseException:
        cluster.shutdown()     # (a cluster left up would be joined by every later test's server)
        raise
    client = GenerationClient(f"127.0.0.1:{port}")
    try:
        assert [w.ready() for w in runtime.workers].count(True) == 1, "one worker placed, one waiting for room"
        timeline = clip(96, (180, 320))
        first = client.submit(submit_request(timeline, "A", "refine", strength=0.9, seed=1))
        second = client.submit(submit_request(timeline, "A", "refine", strength=0.9, seed=2))
        _running(client, first.job_id)
        assert client.get_job(second.job_id).state == pb.QUEUED
        cluster.add_node(num_cpus=1)                       # a machine joins
        done = [client.wait(j.job_id) for j in (first, second)]
        assert [d.state for d in done] == [pb.SUCCEEDED, pb.SUCCEEDED], [d.error for d in done]
        nodes = {json.loads(Path(d.take.manifest_url).read_text())["worker"]["node"] for d in done}
        assert len(nodes) == 2, "the second job ran on the node that joined"
    finally:
        client.close()
        shutdown(server, runtime, grace=0.5)
        cluster.shutdown()


def test_a_worker_without_the_fronts_disk_gets_the_inputs_and_sends_the_take_back(ray_server, write_media,
                                                                                  tmp_path, monkeypatch):
    """No shared storage: the source's range (the GOPs it needs, cut into the front's media store)
    and the mask travel to the worker, the encoded take comes back, and the front commits it; the
    worker never reads the front's paths (it is given copies). The same job again moves nothing:
    the worker has both in its cache."""
    from conftest import write_mask
    from server.media import read_frames
    from server.samples import moving_object_clip

    monkeypatch.setenv("TAKEBRIDGE_WORKER_CACHE", str(tmp_path / "worker-cache"))   # (the workers inherit it)
    client, _ = ray_server(ray_shared_storage=False)
    video, masks, _ = moving_object_clip(60, 48, 64, seed=4)
    media = write_media("obj", video)                      # 60 frames; frames 20..31 are selected
    mask = write_mask(tmp_path / "mask.mkv", masks[20:32])
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=60, clip_in=20, clip_frames=12)
    manifests = []
    for seed in (3, 3):
        done = client.wait(client.submit(submit_request(timeline, "A", "inpaint", mask=mask, seed=seed)).job_id)
        assert done.state == pb.SUCCEEDED, done.error
        manifests.append(json.loads(Path(done.take.manifest_url).read_text()))
        take = read_frames(done.take.media.url, 0, 12)
        assert np.array_equal(take[~masks[20:32]], video[20:32][~masks[20:32]]), "pixels outside the mask are the source's"
        assert manifests[-1]["media_transfer"]["shipped_out_bytes"] == Path(done.take.media.url).stat().st_size
        assert manifests[-1]["inputs"]["media"]["path"] == str(media)          # recorded as the front's path
    first, second = (m["media_transfer"] for m in manifests)
    source, matte = first["inputs"]
    assert (source["role"], source["shipped"], source["path"]) == ("source", "range", str(media))
    assert source["read"] == [20, 31] and source["frames"][0] <= 20 and source["frames"][1] >= 31
    assert source["of"] == 60 and source["file_bytes"] == media.stat().st_size
    assert source["bytes"] < media.stat().st_size * 0.5, "only the range's GOPs travelled"
    assert (matte["shipped"], matte["bytes"]) == ("whole file", Path(mask).stat().st_size)
    assert first["shipped_in_bytes"] == source["bytes"] + matte["bytes"] < media.stat().st_size
    assert second["shipped_in_bytes"] == 0, "the second job on the same range fetched nothing"
    assert [(r["cached"], r["fetched_bytes"], r["digest"]) for r in second["inputs"]] == \
        [(True, 0, source["digest"]), (True, 0, matte["digest"])]
    assert [r["sent"] for r in first["inputs"]] == [True, True]
    assert [r["sent"] for r in second["inputs"]] == [False, False], "the worker said it had them: nothing was put"


def test_an_object_gone_from_the_workers_cache_after_it_said_so_is_sent_again(ray_server, write_media, tmp_path,
                                                                              monkeypatch):
    """The front is told the worker keeps the inputs (here: every time, although its cache is
    empty, as if they were evicted between the question and the job): the worker says one is
    gone, and the front sends everything; the job succeeds with the bytes fetched."""
    from server import ray_workers

    monkeypatch.setenv("TAKEBRIDGE_WORKER_CACHE", str(tmp_path / "worker-cache"))
    client, _ = ray_server(ray_shared_storage=False)
    asked = []
    real = ray_workers.shipped_inputs

    def believed_held(worker, plan, ask=False):
        shipped = real(worker, plan, ask=False)
        asked.append(ask)
        if ask:                               # the worker "said" it had every object: none is sent
            for item in shipped:
                for obj in item["objects"]:
                    obj["ref"] = None
        return shipped
    monkeypatch.setattr(ray_workers, "shipped_inputs", believed_held)
    media = write_media("plate", noisy_clip(30, 48, 64, 8.0, seed=2)[0])
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=30, clip_in=10, clip_frames=8)
    done = client.wait(client.submit(submit_request(timeline, "A", "refine", strength=0.5, seed=1)).job_id)
    assert done.state == pb.SUCCEEDED, done.error
    transfer = json.loads(Path(done.take.manifest_url).read_text())["media_transfer"]
    assert asked == [True, False], "asked, then sent everything"
    assert transfer["shipped_in_bytes"] > 0 and [r["sent"] for r in transfer["inputs"]] == [True]


def test_a_take_made_without_the_fronts_disk_is_the_take_made_with_it(ray_server, write_media, tmp_path,
                                                                       monkeypatch):
    """The same refine (same seed) on a worker that reads the front's disk and on one sent the
    range: the same pixels, the same coded pictures. (One cluster: the workers are switched between the two.)"""
    from server.media import read_frames

    monkeypatch.setenv("TAKEBRIDGE_WORKER_CACHE", str(tmp_path / "worker-cache"))
    client, runtime = ray_server(ray_shared_storage=False)
    media = write_media("plate", noisy_clip(60, 48, 64, 8.0, seed=1)[0])
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=60, clip_in=25, clip_frames=10)
    takes = {}
    for shared in (False, True):
        for worker in runtime.workers:
            worker.shared = shared
        done = client.wait(client.submit(submit_request(timeline, "A", "refine", strength=0.7, seed=11)).job_id)
        assert done.state == pb.SUCCEEDED, done.error
        manifest = json.loads(Path(done.take.manifest_url).read_text())
        assert (manifest["media_transfer"] is None) == shared
        takes[shared] = Path(done.take.media.url)
    assert np.array_equal(read_frames(takes[False], 0, 10), read_frames(takes[True], 0, 10))
    # the same coded pictures, byte for byte (the files differ in Matroska's random segment id)
    assert _packets(takes[False]) == _packets(takes[True])


def _packets(path: Path) -> list[str]:
    import hashlib

    import av

    with av.open(str(path)) as container:
        return [hashlib.sha256(bytes(p)).hexdigest() for p in container.demux(container.streams.video[0]) if p.size]


def test_an_image_sequence_source_runs_without_the_fronts_disk(ray_server, write_media, tmp_path, monkeypatch):
    """A PNG sequence: the frame files the range reads travel (each its own object), laid out
    under their names; the take's source frames are the source's frames of the range."""
    from server.media import read_frames

    monkeypatch.setenv("TAKEBRIDGE_WORKER_CACHE", str(tmp_path / "worker-cache"))
    client, _ = ray_server(ray_shared_storage=False)
    video = noisy_clip(20, 40, 56, 8.0, seed=3)[0]
    plate = write_media("plate", video, codec="png").parent    # the folder: what an editor links
    timeline = make_timeline(plate, rate=24, media_start=86400, media_frames=20, clip_in=4, clip_frames=8)
    done = client.wait(client.submit(submit_request(timeline, "A", "extend", frames=2)).job_id)
    assert done.state == pb.SUCCEEDED, done.error
    take = read_frames(done.take.media.url, 0, 10)
    assert np.array_equal(take[:8], video[4:12]), "the range's own frames, at the moved indices"
    [source] = json.loads(Path(done.take.manifest_url).read_text())["media_transfer"]["inputs"]
    assert (source["shipped"], source["frames"], source["of"], source["files"]) == ("sequence frames", [4, 11], 20, 8)
    assert source["fetched_bytes"] == source["bytes"] == sum(
        sorted(plate.glob("*.png"))[i].stat().st_size for i in range(4, 12))


def test_the_front_killed_and_restarted_loses_no_job_that_ran_on_the_cluster(tmp_path, write_media):
    """`takebridge serve --ray` killed (SIGKILL) while its job runs on a Ray worker, started
    again on the same store: the job runs again (attempts 2) and makes its one take."""
    import subprocess

    from server.media import read_frames
    from support.servers import ENV, TAKEBRIDGE, free_port

    video = noisy_clip(72, 180, 320, 8.0, seed=2)[0]
    media = write_media("long", video)
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=72, clip_in=0, clip_frames=72)
    port = free_port()

    def serve():
        proc = subprocess.Popen([*TAKEBRIDGE, "--log-level", "warning", "serve", "--port", str(port), "--store",
                                 str(tmp_path / "store"), "--ray", "--ray-workers", "1", "--json"],
                                stdout=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
        return proc, json.loads(proc.stdout.readline())["address"]
    proc, address = serve()
    client = GenerationClient(address)
    try:
        job = client.submit(submit_request(timeline, "A", "refine", strength=0.9, seed=6))
        _running(client, job.job_id)
        os.killpg(proc.pid, signal.SIGKILL)          # the front and the Ray cluster it started
        proc.wait()
        proc, _ = serve()
        final = client.wait(job.job_id)
    finally:
        client.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert final.state == pb.SUCCEEDED, final.error
    assert final.attempts == 2 and final.take.take_id == "A_v001"
    assert len(read_frames(final.take.media.url, 0, final.take.media.frame_count)) == 72
