"""Exactly one take per job, whatever the crash.

A real `takebridge serve` is started with TAKEBRIDGE_CRASH_AT naming one crash point
(server/faults.py), so the process SIGKILLs itself there while running a job; a server started
on the same store without the variable must then finish that job with exactly one take: the next
version of the shot, complete (media that decodes, a manifest naming the job, hashes that match),
versions contiguous, and nothing else left in the shot's folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bridge.api import pb
from bridge.client import ClientError, GenerationClient
from server import faults
from server.media import probe, read_frames
from server.samples import pan_clip

from conftest import make_timeline, submit_request

pytestmark = pytest.mark.slow

TAKEBRIDGE = [sys.executable, "-m", "server.cli"]
SHOT = "sh010"
FRAMES = 6                      # frames in the take (clip of a slightly longer piece of media)
CODECS = {"ffv1": (pb.FFV1, ".mkv"), "png": (pb.PNG_SEQUENCE, "")}   # take codec -> media suffix ("" = folder)
MANIFEST = ".manifest.json"
JOB_TIMEOUT_S = 60


def server_env(crash_at: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != faults.ENV}
    env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    if crash_at:
        env[faults.ENV] = crash_at
    return env


def start_server(store: Path, crash_at: str | None = None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([*TAKEBRIDGE, "--log-level", "warning", "serve", "--port", "0", "--store", str(store),
                             "--json"], stdout=subprocess.PIPE, text=True, env=server_env(crash_at))
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        proc.wait()
        pytest.fail(f"the server printed no address (exit code {proc.returncode})")
    return proc, json.loads(line)["address"]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


def wait_terminal(client: GenerationClient, job_id: str, timeout: float = JOB_TIMEOUT_S) -> "pb.Job":
    deadline = time.monotonic() + timeout
    while True:
        job = client.get_job(job_id)
        if job.state in (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {pb.JobState.Name(job.state)} after {timeout} s"
        time.sleep(0.05)


def job_with_request_id(client: GenerationClient, request_id: str) -> "pb.Job":
    matches = [j for j in client.list_jobs(limit=1000) if j.request_id == request_id]
    assert len(matches) == 1, f"{len(matches)} jobs with request_id {request_id!r}"
    return matches[0]


def hash_media(path: Path) -> str:
    """sha256 of a movie file, or of a sequence folder's files in name order (as the manifest records)."""
    digest = hashlib.sha256()
    for file in (sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]):
        digest.update(file.read_bytes())
    return digest.hexdigest()


def manifests(shot_dir: Path) -> dict[str, dict]:
    """take id -> manifest, for every manifest in the shot's folder."""
    found = {}
    for path in sorted(shot_dir.glob(f"*{MANIFEST}")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert path.name == data["take"]["take_id"] + MANIFEST, f"{path.name} holds take {data['take']['take_id']}"
        found[data["take"]["take_id"]] = data
    return found


class StagingLeftover(AssertionError):
    """Something is left in the shot's .staging folder."""


def check_shot_folder(shot_dir: Path, versions: int, suffix: str) -> None:
    """The shot folder holds v001..v<versions> (media + manifest each), a .staging folder
    (checked by check_staging_empty) and nothing else; a sequence take's folder holds its frames
    and sidecar only."""
    expected = {f"{SHOT}_v{v:03d}{end}" for v in range(1, versions + 1) for end in (suffix, MANIFEST)}
    present = {entry.name for entry in shot_dir.iterdir()} - {".staging"}
    assert present == expected, f"unexpected {sorted(present - expected)}, missing {sorted(expected - present)}"
    if suffix == "":
        for v in range(1, versions + 1):
            take_id = f"{SHOT}_v{v:03d}"
            files = sorted(p.name for p in (shot_dir / take_id).iterdir())
            frames = [name for name in files if name.startswith(f"{take_id}.") and name.endswith(".png")]
            assert len(frames) == FRAMES and set(files) - set(frames) == {"sequence.json"}, files


def check_staging_empty(shot_dir: Path) -> None:
    """The shot's .staging folder, if there is one, is an empty folder: nothing of any attempt is
    left. Checked last, so that every other assert of a test has passed when this one fails."""
    staging = shot_dir / ".staging"
    if not os.path.lexists(staging):
        return
    assert staging.is_dir() and not staging.is_symlink(), f"{staging} is not a folder"
    left = sorted(str(p.relative_to(staging)) + ("/" if p.is_dir() else "") for p in staging.rglob("*"))
    if left:
        raise StagingLeftover(f".staging is not empty: {left}")


@pytest.fixture
def shot_timeline(write_media):
    media = write_media("plate", pan_clip(FRAMES + 2, 48, 64, 1.0, 0.5, seed=3))
    return make_timeline(media, rate=24, media_start=86400, media_frames=FRAMES + 2, clip_in=1,
                         clip_frames=FRAMES, name=SHOT)


def make_request(timeline, codec, request_id: str) -> "pb.SubmitJobRequest":
    request = submit_request(timeline, SHOT, "refine", codec=codec, seed=5, strength=0.5)
    request.request_id = request_id
    return request


def first_take(store: Path, timeline, codec) -> "pb.Job":
    """One ordinary take of the shot on a fresh store (v001), from a server without crash points."""
    proc, address = start_server(store)
    client = GenerationClient(address)
    try:
        job = wait_terminal(client, client.submit(make_request(timeline, codec, "first")).job_id)
    finally:
        client.close()
        stop(proc)
    assert job.state == pb.SUCCEEDED, job.error
    assert job.take.take_id == f"{SHOT}_v001"
    return job


def crash_during(store: Path, timeline, codec, point: str) -> str | None:
    """Submit a job to a server that SIGKILLs itself at `point`; the job id when the submit was
    answered before the crash (None when the server died first)."""
    proc, address = start_server(store, crash_at=point)
    client = GenerationClient(address)
    job_id = None
    try:
        try:
            job_id = client.submit(make_request(timeline, codec, "crashed")).job_id
        except ClientError:
            pass  # the worker may reach an early crash point before the answer is sent
        try:
            code = proc.wait(timeout=JOB_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server set to crash at {point!r} was still running after {JOB_TIMEOUT_S} s")
        assert code == -signal.SIGKILL, f"the server ended with {code}, not SIGKILL, at {point!r}"
    finally:
        client.close()
        stop(proc)
    return job_id


def check_recovered(store: Path, first: "pb.Job", job: "pb.Job", suffix: str, codec) -> None:
    """Asserts of the store after the crashed job finished on a restarted server."""
    shot_dir = store / "takes" / SHOT
    assert job.state == pb.SUCCEEDED, f"{pb.JobState.Name(job.state)}: {job.error_code} {job.error}"
    assert job.attempts == 2, "killed once, so run twice"
    take = job.take
    assert (take.take_id, take.version, take.job_id) == (f"{SHOT}_v002", 2, job.job_id)

    found = manifests(shot_dir)
    assert sorted(found) == [f"{SHOT}_v001", f"{SHOT}_v002"]
    of_job = [tid for tid, data in found.items() if data["take"]["job_id"] == job.job_id]
    assert of_job == [take.take_id], f"manifests naming job {job.job_id}: {of_job}"
    assert found[f"{SHOT}_v001"]["take"]["job_id"] == first.job_id
    manifest_take = found[take.take_id]["take"]
    assert manifest_take["version"] == 2 and manifest_take["media"]["sha256"] == take.media.sha256

    check_shot_folder(shot_dir, 2, suffix)

    media = shot_dir / f"{take.take_id}{suffix}"
    assert hash_media(media) == take.media.sha256, "the media is not what the manifest records"
    assert take.media.codec == codec and take.media.frame_count == FRAMES
    assert probe(take.media.url).frame_count == FRAMES
    frames = read_frames(take.media.url, 0, FRAMES)
    assert frames.shape == (FRAMES, 48, 64, 3)
    # same request and seed as v001 on a deterministic backend: the very same pixels
    assert np.array_equal(frames, read_frames(first.take.media.url, 0, FRAMES))


def recover(store: Path, timeline, codec, job_id: str | None):
    """(server, client, the crashed job once finished) on a restarted server without crash points."""
    proc, address = start_server(store)
    client = GenerationClient(address)
    try:
        if job_id is None:
            job_id = job_with_request_id(client, "crashed").job_id
        # resending the request (same request_id) is answered with the same job, not a new one
        assert client.submit(make_request(timeline, codec, "crashed")).job_id == job_id
        job = wait_terminal(client, job_id)
    except BaseException:
        client.close()
        stop(proc)
        raise
    return proc, client, job


def check_jobs(client: GenerationClient, first: "pb.Job", job: "pb.Job", extra=()) -> None:
    jobs = {j.job_id: j for j in client.list_jobs(limit=1000)}
    assert set(jobs) == {first.job_id, job.job_id, *extra}
    takes = sorted(j.take.take_id for j in jobs.values())
    assert takes == [f"{SHOT}_v{v:03d}" for v in range(1, len(jobs) + 1)], takes


@pytest.mark.parametrize("point,codec_name", [pytest.param(point, name, id=f"{point}-{name}")
                                              for point in faults.POINTS for name in CODECS])
def test_a_job_killed_at_any_stage_makes_exactly_one_take(tmp_path, shot_timeline, point, codec_name):
    codec, suffix = CODECS[codec_name]
    store = tmp_path / "store"
    first = first_take(store, shot_timeline, codec)
    job_id = crash_during(store, shot_timeline, codec, point)
    proc, client, job = recover(store, shot_timeline, codec, job_id)
    try:
        check_jobs(client, first, job)
        check_recovered(store, first, job, suffix, codec)
    finally:
        client.close()
        stop(proc)
    check_staging_empty(store / "takes" / SHOT)


@pytest.mark.parametrize("point", [pytest.param(point, id=point) for point in
                                   ("take_reserved", "media_moved", "manifest_written", "take_recorded")])
def test_the_job_after_a_recovered_one_gets_the_next_version(tmp_path, shot_timeline, point):
    codec, suffix = CODECS["ffv1"]
    store = tmp_path / "store"
    first = first_take(store, shot_timeline, codec)
    job_id = crash_during(store, shot_timeline, codec, point)
    proc, client, job = recover(store, shot_timeline, codec, job_id)
    try:
        assert job.state == pb.SUCCEEDED and job.take.take_id == f"{SHOT}_v002", job.error
        after = wait_terminal(client, client.submit(make_request(shot_timeline, codec, "after")).job_id)
        assert after.state == pb.SUCCEEDED, after.error
        assert (after.take.take_id, after.take.version, after.attempts) == (f"{SHOT}_v003", 3, 1)
        check_jobs(client, first, job, extra=(after.job_id,))
        shot_dir = store / "takes" / SHOT
        found = manifests(shot_dir)
        assert {tid: data["take"]["job_id"] for tid, data in found.items()} == {
            f"{SHOT}_v001": first.job_id, f"{SHOT}_v002": job.job_id, f"{SHOT}_v003": after.job_id}
        check_shot_folder(shot_dir, 3, suffix)
        assert hash_media(shot_dir / f"{SHOT}_v003{suffix}") == after.take.media.sha256
    finally:
        client.close()
        stop(proc)
    check_staging_empty(store / "takes" / SHOT)
