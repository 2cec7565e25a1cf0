"""Budgets and stop triggers, and the fallback policy: a job over its budget stops cleanly with
the reason; DEGRADE and CLASSIC do something else only when asked, and say so."""
from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from bridge.api import pb
from bridge.client import ClientError, GenerationClient
from server.app import ServerConfig, build_server, shutdown
from server.samples import noisy_clip, pan_clip

from conftest import make_timeline, submit_request


@pytest.fixture
def clip_timeline(write_media):
    noisy, _ = noisy_clip(16, 48, 64, sigma=10, seed=1)
    media = write_media("noisy", noisy, timecode="01:00:00:00")
    return make_timeline(media, rate=24, media_start=86400, media_frames=16, clip_in=0, clip_frames=16)


def test_a_job_estimated_over_its_budget_fails_before_computing(server, clip_timeline):
    client, runtime = server
    runtime.limits.costs["classic"]["refine"] = 1000.0  # pretend refine is very slow
    request = submit_request(clip_timeline, "A", "refine")
    request.contract.budget.max_compute_seconds = 2.0
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.FAILED and job.error_code == "over_budget"
    assert "over the job's compute budget of 2 s" in job.error and "allow the DEGRADE fallback" in job.error
    assert not job.take.take_id


def test_degrade_processes_at_half_resolution_and_says_so(server, clip_timeline):
    client, runtime = server
    runtime.limits.costs["classic"]["refine"] = 1000.0
    request = submit_request(clip_timeline, "A", "refine")
    request.contract.budget.max_compute_seconds = 20.0   # full size needs ~49 s by the estimate: a quarter fits
    request.contract.fallback = pb.DEGRADE
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.SUCCEEDED and job.take.status == pb.NEEDS_REVIEW
    assert any(f.startswith("real_resolution: generated at 32x24 and upscaled to 64x48") for f in job.take.flags)
    assert any(f.startswith("fallback: estimated") and "half resolution" in f for f in job.take.flags)
    manifest = json.loads(Path(job.take.manifest_url).read_text())
    assert manifest["resolution"]["generated"]["width"] == 32 and manifest["resolution"]["upscaled"] is True
    assert manifest["fallbacks"] and "DEGRADE" in manifest["fallbacks"][0]
    assert job.take.media.width == 64 and job.take.media.height == 48


def test_a_running_job_over_its_budget_stops_cleanly(server, write_media):
    client, runtime = server
    runtime.limits.costs["classic"]["refine"] = 0.0   # the estimate lets it start ...
    frames = pan_clip(200, 96, 128, 1.0)
    media = write_media("long", frames, timecode="01:00:00:00")
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=200, clip_in=0, clip_frames=200)
    request = submit_request(timeline, "A", "refine")
    request.contract.budget.max_compute_seconds = 0.05  # ... and the stop trigger ends it
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.FAILED and job.error_code == "over_budget"
    assert job.error.startswith("stopped after") and "over the job's compute budget of 0.05 s; nothing was kept" \
        in job.error
    take_dir = Path(request.contract.output.take_dir or runtime.take_dir)
    leftovers = [p for p in take_dir.rglob("*") if p.is_file()] if take_dir.exists() else []
    assert leftovers == [], "a stopped job left media or staging files behind"


def test_the_server_budget_refuses_new_jobs_once_spent(tmp_path, clip_timeline):
    grpc_server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store", compute_budget=1e-6))
    client = GenerationClient(f"127.0.0.1:{port}")
    try:
        job = client.wait(client.submit(submit_request(clip_timeline, "A", "refine")).job_id)
        assert job.state == pb.FAILED and job.error_code == "over_budget"
        assert "what is left of the server's compute budget" in job.error
        with pytest.raises(ClientError, match="the server.s compute budget of 1e-06 s is spent") as err:
            client.submit(submit_request(clip_timeline, "A", "refine"))
        assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        client.close()
        shutdown(grpc_server, runtime, grace=0.5)


def test_an_unavailable_backend_runs_on_classic_only_when_the_policy_says_so(server, clip_timeline):
    client, _runtime = server
    request = submit_request(clip_timeline, "A", "refine")
    request.backend = "diffusers"
    with pytest.raises(ClientError, match="backend 'diffusers' is not available.*fallback to CLASSIC") as err:
        client.submit(request)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    request.contract.fallback = pb.CLASSIC
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.SUCCEEDED and job.backend == "classic" and job.take.status == pb.NEEDS_REVIEW
    assert job.take.flags == ["fallback: backend 'diffusers' is not available here: ran on 'classic' "
                              "(fallback policy CLASSIC)"]
