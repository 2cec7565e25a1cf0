"""Models by name (issue 17): the catalog, weights found in a Hugging Face-shaped cache (built
here from the tiny random pipelines, offline), `takebridge serve --model ID` with no profile
file, `models list` and `models pull` (its plan; offline it fails in one line and writes
nothing), and tampered weights refused naming the file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bridge.api import pb
from bridge.client import GenerationClient
from server.app import ConfigError, ServerConfig, build_server, shutdown
from server.backends.diffusers import catalog
from support.servers import TAKEBRIDGE


def cli(*args, check=True):
    """The command line, as a user runs it, with this test's environment (HF_HUB_CACHE...)."""
    import subprocess

    done = subprocess.run([*TAKEBRIDGE, *args], capture_output=True, text=True, env=dict(os.environ), timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    from server.backends.diffusers.tiny import make_hf_cache, make_tiny

    built = tmp_path_factory.mktemp("tiny")
    make_tiny(built, only=["tiny-wan-vace", "tiny-wan-t2v"])
    cache = tmp_path_factory.mktemp("hub")
    return cache, make_hf_cache(built, cache)


@pytest.fixture
def hub_env(hf_cache, monkeypatch):
    cache, catalog_file = hf_cache
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("TAKEBRIDGE_CATALOG", str(catalog_file))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_a_model_by_name_is_found_in_the_hugging_face_cache_and_served_with_no_profile(hub_env, tmp_path):
    profile = catalog.resolve("tiny-wan-vace")
    assert profile.folder.parent.name == "snapshots" and (profile.folder / "model_index.json").is_file()
    assert len(profile.weights_sha256) == 64 and profile.weights_sha256 == catalog.snapshot_identity(profile.folder)

    server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store", model=("tiny-wan-vace",),
                                                      device="cpu"))
    client = GenerationClient(f"127.0.0.1:{port}")
    try:
        caps = {b.name: b for b in client.capabilities().backends}
        assert caps["diffusers"].available and pb.GENERATE in caps["diffusers"].operations
        import opentimelineio as otio

        from bridge import previs
        from bridge.request import JobOptions, build_request

        timeline = otio.schema.Timeline("t", global_start_time=otio.opentime.RationalTime(0, 24))
        timeline.tracks.append(otio.schema.Track("V1"))
        target = previs.find_gap(timeline, 1, 0, 12, shot="by_name")
        options = JobOptions(op="generate", backend="diffusers", model="tiny-wan-vace", prompt="a red car",
                             codec="lossless", width=64, height=48, keyframes="", take_dir=str(tmp_path / "takes"))
        job = client.wait(client.submit(build_request(previs.export_gap(timeline, target), options,
                                                      client="t")).job_id)
        assert job.state == pb.SUCCEEDED, job.error
        manifest = json.loads(Path(job.take.manifest_url).read_text())
        assert manifest["backend"]["model"] == "tiny-wan-vace"
        assert manifest["backend"]["weights_sha256"] == profile.weights_sha256
    finally:
        client.close()
        shutdown(server, runtime, grace=0.5)


def test_models_list_says_what_is_installed_and_how_to_get_the_rest(hub_env):
    listed = json.loads(cli("models", "list", "--json").stdout)
    rows = {r["id"]: r for r in listed["models"]}
    assert rows["tiny-wan-vace"]["installed"] and rows["tiny-wan-t2v"]["installed"]
    assert not rows["wan2.1-vace-1.3b"]["installed"] and rows["wan2.1-vace-1.3b"]["repo"].startswith("Wan-AI/")
    assert "wan2.1-vace-1.3b" in catalog.CATALOG and {"wan2.1-vace-14b", "wan2.1-t2v-1.3b", "wan2.2-ti2v-5b",
                                                      "ltx-video-0.9.5"} <= set(rows)
    text = cli("models", "list").stdout
    assert "no: takebridge models pull wan2.1-vace-1.3b" in text


def test_a_model_not_installed_or_unknown_is_refused_saying_what_to_do(hub_env, tmp_path):
    with pytest.raises(ConfigError, match=r"'wan2.1-vace-1.3b' is not installed .*takebridge models pull wan2.1-vace-1.3b"):
        build_server(ServerConfig(port=0, store=tmp_path / "s1", model=("wan2.1-vace-1.3b",), device="cpu"))
    with pytest.raises(ConfigError, match=r"no model 'wan-vace' in the catalog; known: .*tiny-wan-vace"):
        build_server(ServerConfig(port=0, store=tmp_path / "s2", model=("wan-vace",), device="cpu"))


def test_a_pull_offline_fails_in_one_line_and_writes_nothing_and_its_plan_is_shown(hub_env, tmp_path, monkeypatch):
    empty = tmp_path / "hub"
    empty.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(empty))
    plan = json.loads(cli("models", "pull", "wan2.1-vace-1.3b", "--dry-run", "--json").stdout)
    assert plan["repo"] == "Wan-AI/Wan2.1-VACE-1.3B-diffusers" and "*.safetensors" in plan["allow_patterns"]
    assert "*.bin" not in plan["allow_patterns"] and plan["destination"].startswith(str(empty))
    done = cli("models", "pull", "wan2.1-vace-1.3b", check=False)
    assert done.returncode == 2 and "cannot download Wan-AI/Wan2.1-VACE-1.3B-diffusers" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not [p for p in empty.rglob("*") if p.is_file()], "nothing half-written in the cache"


def test_weights_that_do_not_match_their_hash_are_named(hf_cache, tmp_path):
    import shutil

    cache, _ = hf_cache
    copy = tmp_path / "hub"
    shutil.copytree(cache, copy, symlinks=True)
    repo = next(copy.glob("models--takebridge-tiny--tiny-wan-t2v"))
    snapshot = next((repo / "snapshots").iterdir())
    assert catalog.verify_snapshot(snapshot) == []
    weights = next(snapshot.rglob("*.safetensors"))
    blob = weights.resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    assert catalog.verify_snapshot(snapshot) == [str(weights.relative_to(snapshot))]


def test_takebridge_serve_model_on_the_command_line(hub_env, tmp_path):
    """`takebridge serve --backend diffusers --model ID`, a real process, no profile file."""
    import subprocess

    from support.servers import TAKEBRIDGE, free_port, stop

    proc = subprocess.Popen([*TAKEBRIDGE, "--log-level", "warning", "serve", "--port", str(free_port()), "--store",
                             str(tmp_path / "store"), "--backend", "diffusers", "--model", "tiny-wan-t2v",
                             "--device", "cpu", "--json"], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        address = json.loads(proc.stdout.readline())["address"]
        with GenerationClient(address) as client:
            caps = client.capabilities()
        backends = {b.name: b for b in caps.backends}
        assert caps.default_backend == "diffusers" and backends["diffusers"].available
        assert list(backends["diffusers"].operations) == [pb.GENERATE]
    finally:
        stop(proc)
