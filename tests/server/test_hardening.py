"""The server attacked as a careful tester would (loopback only): path tricks, hostile names and
numbers, concurrent submits, a job that fails, many open streams. Each trick is refused with a
clear status and touches nothing outside the allowed folders; the server keeps serving."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import opentimelineio as otio
import pytest

from bridge.api import pb, pb_grpc
from bridge.client import ClientError, GenerationClient
from server import paths
from server.app import ServerConfig, build_server, shutdown
from server.samples import pan_clip
from server.worker import Worker

from conftest import make_timeline, refused, submit_request


@pytest.fixture
def media(write_media):
    return write_media("src", pan_clip(8, 48, 64, 1.0))


@pytest.fixture
def timeline(media):
    return make_timeline(media, rate=24, media_start=86400, media_frames=8, clip_in=0, clip_frames=8)


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


# -- names that become paths ---------------------------------------------------------------------
@pytest.mark.parametrize("shot", ["../../escaped", "/tmp/takebridge-abs-escape", "..", "a/../../b", "sh\x01010",
                                  "x" * 500])
def test_a_hostile_shot_name_stays_inside_the_take_folder(server, timeline, tmp_path, shot):
    client, runtime = server
    timeline.tracks[0][0].metadata["takebridge"] = {"shot": shot}
    outside_before = set(os.listdir(tmp_path))
    job = client.wait(client.submit(submit_request(timeline, "A", "refine")).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    media = Path(job.take.media.url).resolve()
    takes = runtime.take_dir.resolve()
    assert takes in media.parents, f"{media} is outside {takes}"
    assert len(media.parent.name) <= paths.MAX_SLUG_CHARS and "/" not in job.take.take_id
    assert set(os.listdir(tmp_path)) == outside_before, "nothing was created beside the store"
    assert not Path("/tmp/takebridge-abs-escape").exists()


@pytest.mark.parametrize("shot", [5, True, None, ["a"], {"a": 1}])
def test_a_shot_name_that_is_not_text_is_refused_and_the_worker_keeps_working(server, timeline, shot):
    client, _ = server
    timeline.tracks[0][0].metadata["takebridge"] = {"shot": shot}
    if shot is None:   # no shot: the clip's name is the shot, as before
        assert client.wait(client.submit(submit_request(timeline, "A", "refine")).job_id).state == pb.SUCCEEDED
        return
    err = refused(client, submit_request(timeline, "A", "refine"))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "shot" in str(err)
    timeline.tracks[0][0].metadata["takebridge"] = {"shot": "ok"}
    assert client.wait(client.submit(submit_request(timeline, "A", "refine")).job_id).state == pb.SUCCEEDED


def test_a_clip_named_like_a_path_makes_a_take_inside_the_store(server, media, tmp_path):
    client, runtime = server
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=8, clip_in=0, clip_frames=8,
                             name="../../../clip")
    job = client.wait(client.submit(submit_request(timeline, "../../../clip", "refine")).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    assert runtime.take_dir.resolve() in Path(job.take.media.url).resolve().parents


def test_slug_keeps_long_names_apart_and_refuses_non_text():
    a, b = "shot_" + "x" * 200 + "1", "shot_" + "x" * 200 + "2"
    assert paths.slug(a) != paths.slug(b) and len(paths.slug(a)) <= paths.MAX_SLUG_CHARS
    assert paths.slug("../..") == "shot" and paths.slug("/etc/passwd") == "etc_passwd"
    with pytest.raises(paths.PathError, match="must be text"):
        paths.slug(7)


@pytest.mark.parametrize("name", ["..", ".", "a/b", "..\\x", "x" * 300, "bad\x00name", "tab\tname"])
def test_an_upload_with_a_name_that_is_not_one_file_name_is_refused(server, tmp_path, name):
    client, runtime = server
    client._ensure_connected()
    data = b"hello"
    chunk = pb.MediaChunk(sha256=hashlib.sha256(data).hexdigest(), filename=name, offset=0, data=data,
                          total_size=len(data))
    with pytest.raises(grpc.RpcError) as err:
        client.stub.UploadMedia(iter([chunk]), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert "upload file name" in err.value.details()
    cas = runtime.limits.cas_dir
    assert [p for p in files_under(cas) if not p.startswith(paths.STAGING)] == []
    assert not any((cas / paths.STAGING).iterdir()), "the temporary upload is gone"


def test_an_upload_then_download_round_trips(server, tmp_path):
    client, _ = server
    source = tmp_path / "plate.bin"
    source.write_bytes(os.urandom(3 << 20))
    stored = client.upload(str(source))
    again = client.upload(str(source))
    assert again.already_present and again.sha256 == stored.sha256
    out = client.download(str(tmp_path / "back.bin"), sha256=stored.sha256)
    assert Path(out).read_bytes() == source.read_bytes()


@pytest.mark.parametrize("digest", ["../../../../etc/passwd", "/etc", "..", "", "A" * 64, "g" * 64,
                                    "../" + "a" * 61, "a" * 63, "a" * 65])
def test_a_download_digest_must_be_64_hex_characters(server, digest):
    client, _ = server
    with pytest.raises(ClientError) as err:
        client.download("/dev/null", sha256=digest) if digest else client.download("/dev/null", take_id="")
    assert err.value.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), str(err.value)
    assert "root:" not in str(err.value)


def test_a_symlink_planted_in_the_media_store_is_not_followed(server, tmp_path):
    client, runtime = server
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    digest = "ab" * 32
    folder = runtime.limits.cas_dir / digest
    folder.mkdir(parents=True)
    (folder / "plate.mov").symlink_to(secret)
    with pytest.raises(ClientError) as err:
        client.download(str(tmp_path / "out"), sha256=digest)
    assert err.value.code == grpc.StatusCode.NOT_FOUND and not (tmp_path / "out").exists()
    (folder / "plate.mov").unlink()
    folder.rmdir()
    runtime.limits.cas_dir.joinpath(digest).symlink_to(tmp_path)   # the digest folder itself a link out
    with pytest.raises(ClientError) as err:
        client.download(str(tmp_path / "out"), sha256=digest)
    assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_open_regular_refuses_a_swap_to_a_link_out_after_the_check(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (outside / "secret").write_text("secret")
    target = root / "media.mov"
    target.write_text("fine")
    roots = paths.Roots((root,))
    os.close(roots.open_regular(target, "media"))
    target.unlink()
    target.symlink_to(outside / "secret")   # swapped after a check would have passed
    with pytest.raises(paths.PathError) as err:
        roots.open_regular(target, "media")
    assert err.value.code == "path_not_allowed"


def test_a_fifo_given_as_media_is_refused_at_once(server, tmp_path, media):
    client, _ = server
    fifo = tmp_path / "plate.mov"
    os.mkfifo(fifo)
    timeline = make_timeline(fifo, rate=24, media_start=0, media_frames=8, clip_in=0, clip_frames=8)
    started = time.monotonic()
    err = refused(client, submit_request(timeline, "A", "refine"))
    assert time.monotonic() - started < 10, "a FIFO must not block the submit until its deadline"
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "FIFO" in str(err)


def test_a_refusal_outside_the_allowed_folders_does_not_tell_whether_the_file_exists(tmp_path, write_media):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    grpc_server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store", allow=(allowed,)))
    try:
        exists = write_media("outside", pan_clip(4, 32, 48, 1.0))
        answers = []
        with GenerationClient(f"127.0.0.1:{port}") as client:
            for path in (exists, tmp_path / "does-not-exist.mkv", Path("/etc/passwd"), Path("/etc/nope")):
                timeline = make_timeline(path, rate=24, media_start=0, media_frames=4, clip_in=0, clip_frames=4)
                err = refused(client, submit_request(timeline, "A", "refine"))
                answers.append((err.code, str(err).replace(str(path), "PATH")))
            link = allowed / "link.mkv"   # a link inside the allowed folder that leads out
            link.symlink_to(exists)
            timeline = make_timeline(link, rate=24, media_start=0, media_frames=4, clip_in=0, clip_frames=4)
            assert refused(client, submit_request(timeline, "A", "refine")).code == grpc.StatusCode.PERMISSION_DENIED
            mask_request = submit_request(make_timeline(link, rate=24, media_start=0, media_frames=4, clip_in=0,
                                                        clip_frames=4), "A", "inpaint", mask="/etc/shadow")
            assert refused(client, mask_request).code == grpc.StatusCode.PERMISSION_DENIED
        assert len(set(answers)) == 1, answers
        assert answers[0][0] == grpc.StatusCode.PERMISSION_DENIED
    finally:
        shutdown(grpc_server, runtime, grace=0.1)


def test_a_take_folder_outside_the_allowed_folders_is_refused(server, timeline):
    client, _ = server
    request = submit_request(timeline, "A", "refine")
    request.contract.output.take_dir = "/etc/takebridge"
    err = refused(client, request)
    assert err.code == grpc.StatusCode.PERMISSION_DENIED and "take folder" in str(err)


def test_remove_staging_deletes_only_inside_staging(tmp_path):
    staging = tmp_path / "takes" / "A" / paths.STAGING
    (staging / "job1").mkdir(parents=True)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious").write_text("x")
    (staging / "job2").symlink_to(keep)
    paths.remove_staging(staging / "job2", staging)   # a link is removed as a link
    assert (keep / "precious").exists()
    for victim in (keep, tmp_path / "takes" / "A", staging / ".." / ".." / ".."):
        with pytest.raises(paths.PathError, match="not inside the staging folder"):
            paths.remove_staging(victim, staging)
    assert (keep / "precious").exists()
    paths.remove_staging(staging / "job1", staging)
    assert not (staging / "job1").exists()


# -- numbers and sizes ---------------------------------------------------------------------------
@pytest.mark.parametrize("key, value, words", [
    ("handles", -5, "'handles'"), ("head_handles", -1, "'head_handles'"), ("record_start", float("nan"), "NaN"), ("record_start", "12", "'record_start'"),
    ("handles", 10**9, "'handles'"), ("timeline_rate", "abc", "frame rate"), ("timeline_rate", -24, "rate"),
])
def test_hostile_selection_numbers_are_refused_naming_the_field(server, timeline, key, value, words):
    client, _ = server
    request = submit_request(timeline, "A", "refine")
    data = otio.adapters.read_from_string(request.selection_otio, "otio_json")
    data.metadata["takebridge"]["selection"][key] = value
    request.selection_otio = otio.adapters.write_to_string(data, "otio_json")
    err = refused(client, request)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and words in str(err), str(err)


def test_a_clip_rate_far_above_its_media_is_refused_before_any_work(server, timeline):
    client, _ = server
    clip = timeline.tracks[0][0]
    clip.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(0, 2400),
                                                otio.opentime.RationalTime(800, 2400))
    started = time.monotonic()
    err = refused(client, submit_request(timeline, "A", "refine"))
    assert time.monotonic() - started < 5 and err.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("field, value, words", [
    ("grow", 100_000, "inpaint.grow_pixels"), ("feather", 1000, "mask_feather_px"),
    ("note", "n" * 9000, "note"), ("seed", -1, "contract.seed"),
])
def test_fields_over_their_bounds_are_refused(server, timeline, tmp_path, field, value, words):
    client, _ = server
    if field == "note":
        with pytest.raises(ClientError) as err:
            client.review("A_v001", approve=False, note=value)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and words in str(err.value)
        assert client.list_jobs() == []
        return
    request = submit_request(timeline, "A", "inpaint" if field == "grow" else "refine", mask=tmp_path / "m.png")
    if field == "grow":
        request.inpaint.grow_pixels = value
    elif field == "feather":
        request.contract.constraints.mask_feather_px = value
    else:
        request.contract.seed = value
    err = refused(client, request)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and words in str(err)


def test_a_seed_above_31_bits_makes_a_take(server, timeline):
    client, _ = server
    request = submit_request(timeline, "A", "refine")
    request.contract.seed = 2**40 + 3
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.SUCCEEDED and job.take.seed == 2**40 + 3


# -- concurrency ---------------------------------------------------------------------------------
def test_concurrent_submits_of_one_request_id_make_one_job(server, timeline):
    client, _ = server
    first = submit_request(timeline, "A", "refine", strength=0.3)
    second = submit_request(timeline, "A", "refine", strength=0.6)
    for rounds in range(3):
        request_id = f"race-{rounds}"
        first.request_id = second.request_id = request_id
        barrier = threading.Barrier(8)

        def send(request):
            barrier.wait()
            try:
                return ("ok", client.submit(request).job_id)
            except ClientError as err:
                return (err.code, "")
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, [first, second] * 4))
        ok = [a for a in answers if a[0] == "ok"]
        conflicts = [a for a in answers if a[0] == grpc.StatusCode.ALREADY_EXISTS]
        assert len(ok) + len(conflicts) == 8, answers
        assert len({job for _, job in ok}) == 1, "one job for one request_id"
        assert len(ok) == 4 and len(conflicts) == 4, "every submit of the other payload is a conflict"


def hold_workers(runtime) -> None:
    """Stop the runtime's workers so jobs stay QUEUED (release_workers starts new ones)."""
    for worker in runtime.workers:
        worker.stop()
        worker.join(timeout=10)


def release_workers(runtime) -> None:
    runtime.workers = [Worker(runtime, w.device, w.backends) for w in runtime.workers]
    for worker in runtime.workers:
        worker.start()


def test_a_failing_job_does_not_stop_the_next(server, write_media, tmp_path):
    client, runtime = server
    doomed = write_media("doomed", pan_clip(8, 48, 64, 1.0))
    fine = write_media("fine", pan_clip(8, 48, 64, 1.0))
    jobs = []
    hold_workers(runtime)
    for media, name in ((doomed, "D"), (fine, "F")):
        timeline = make_timeline(media, rate=24, media_start=86400, media_frames=8, clip_in=0, clip_frames=8,
                                 name=name)
        jobs.append(client.submit(submit_request(timeline, name, "refine")))
    Path(doomed).write_bytes(b"not a movie any more")   # broken between submit and run
    release_workers(runtime)
    failed, done = client.wait(jobs[0].job_id), client.wait(jobs[1].job_id)
    assert failed.state == pb.FAILED and failed.error_code not in ("", "internal") and "doomed" in failed.error, failed.error
    assert done.state == pb.SUCCEEDED


def test_many_open_streams_do_not_starve_calls(server, write_media):
    """64 WatchJob streams open on queued jobs; GetJob and SubmitJob still answer at once
    (the latency figures are measured in bench/bench_load.py)."""
    client, runtime = server
    media = write_media("long", pan_clip(8, 48, 64, 1.0))
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=8, clip_in=0, clip_frames=8)
    hold_workers(runtime)   # streams stay open on QUEUED jobs
    jobs = [client.submit(submit_request(timeline, "A", "refine")) for _ in range(4)]
    channel = grpc.insecure_channel(client.address)
    stub = pb_grpc.GenerationStub(channel)
    streams = [stub.WatchJob(pb.WatchJobRequest(job_id=jobs[i % 4].job_id, after_seq=1)) for i in range(64)]
    try:
        time.sleep(1.0)
        for _ in range(5):
            started = time.monotonic()
            assert client.get_job(jobs[0].job_id).state == pb.QUEUED
            extra = client.submit(submit_request(timeline, "A", "refine"))
            assert extra.state == pb.QUEUED
            assert time.monotonic() - started < 5
        caps = client.capabilities()
        assert caps.server_version
    finally:
        for stream in streams:
            stream.cancel()
        channel.close()


# -- untrusted OTIO ------------------------------------------------------------------------------
@pytest.mark.parametrize("mutation, words", [
    (lambda d: d["metadata"].__setitem__("takebridge", "text"), "must be an object"),
    (lambda d: d["metadata"]["takebridge"].__setitem__("selection", "text"), "selection metadata must be an object"),
    (lambda d: d["metadata"]["takebridge"]["selection"].__setitem__("timeline_rate", [24]), "frame rate"),
    (lambda d: d["tracks"]["children"][0]["children"].__setitem__(0, {"OTIO_SCHEMA": "Marker.2"}),
     "'Marker.2' where a Clip or Gap"),
    (lambda d: d["tracks"]["children"][0].__setitem__("children", {"OTIO_SCHEMA": "Clip.2"}), "must be a list"),
    (lambda d: d["tracks"]["children"][0]["children"][0]["source_range"]["duration"].__setitem__("rate", 0),
     "rate 0"),
    (lambda d: d["tracks"]["children"][0]["children"][0]["source_range"]["start_time"].__setitem__("value", 1e300),
     "beyond"),
    (lambda d: d["tracks"]["children"][0]["children"][0].__setitem__("OTIO_SCHEMA", "Clip.99"), "Clip.99"),
])
def test_malformed_otio_is_refused_naming_the_place(server, timeline, mutation, words):
    import json
    client, _ = server
    request = submit_request(timeline, "A", "refine")
    data = json.loads(request.selection_otio)
    mutation(data)
    request.selection_otio = json.dumps(data)
    err = refused(client, request)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and words in str(err), str(err)


@pytest.mark.parametrize("text", ["[" * 200_000, '{"a":' * 50_000 + "1" + "}" * 50_000, "\x00", "null", "[]", "7"])
def test_deep_or_odd_otio_text_is_refused_at_once(server, timeline, text):
    client, runtime = server
    request = submit_request(timeline, "A", "refine")
    request.selection_otio = text
    started = time.monotonic()
    err = refused(client, request)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and time.monotonic() - started < 5
    assert runtime.selection_reader.crashes == 0


def test_an_otio_reader_that_dies_costs_one_request_not_the_server(server, timeline, monkeypatch):
    """Whatever still crashes OTIO's C++ layer ends a child process: simulated here by killing
    the reader child while it reads; the request is refused and the next one is read."""
    import signal
    client, runtime = server
    reader = runtime.selection_reader
    assert client.wait(client.submit(submit_request(timeline, "A", "refine")).job_id).state == pb.SUCCEEDED
    child = reader._idle.get_nowait()
    original = child.ask

    def dying_ask(text, timeout):
        os.kill(child.process.pid, signal.SIGSEGV)
        child.process.join(5)
        return original(text, timeout)
    child.ask = dying_ask
    reader._idle.put(child)
    err = refused(client, submit_request(timeline, "A", "refine"))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "crashed the OpenTimelineIO reader" in str(err)
    assert reader.crashes == 1
    assert client.wait(client.submit(submit_request(timeline, "A", "refine")).job_id).state == pb.SUCCEEDED


# -- tokens and TLS ------------------------------------------------------------------------------
def test_a_token_is_enforced_on_every_kind_of_call(tmp_path):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    grpc_server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store", token="s3cret"))
    address = f"127.0.0.1:{port}"
    try:
        channel = grpc.insecure_channel(address)
        stub = pb_grpc.GenerationStub(channel)
        calls = [lambda md: stub.GetCapabilities(pb.GetCapabilitiesRequest(), metadata=md, timeout=10),
                 lambda md: list(stub.WatchJob(pb.WatchJobRequest(job_id="x"), metadata=md, timeout=10)),
                 lambda md: stub.UploadMedia(iter([pb.MediaChunk(filename="a.bin", data=b"1")]), metadata=md,
                                             timeout=10),
                 lambda md: list(stub.DownloadMedia(pb.DownloadMediaRequest(sha256="a" * 64), metadata=md,
                                                    timeout=10))]
        for call in calls:
            for metadata in ((), (("authorization", "Bearer wrong"),)):
                with pytest.raises(grpc.RpcError) as err:
                    call(metadata)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, err.value.details()
        good = (("authorization", "Bearer s3cret"),)
        assert calls[0](good).server_version
        with pytest.raises(grpc.RpcError) as err:
            calls[1](good)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND   # past the token: the job is unknown
        assert calls[2](good).size == 1
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING   # health stays open
        channel.close()
    finally:
        shutdown(grpc_server, runtime, grace=0.1)


def test_tls_and_a_token_serve_a_client_that_has_both(tmp_path):
    import shutil
    import subprocess
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    config = ServerConfig(host="localhost", port=0, store=tmp_path / "store", tls_cert=cert, tls_key=key,
                          token="t0ken")
    grpc_server, runtime, port = build_server(config)
    try:
        with GenerationClient(f"localhost:{port}", token="t0ken", root_certificates=cert.read_bytes()) as client:
            assert client.capabilities().server_version
            assert client.list_jobs() == []
        with GenerationClient(f"localhost:{port}", token="nope", root_certificates=cert.read_bytes()) as client:
            with pytest.raises(ClientError) as err:
                client.list_jobs()
            assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        shutdown(grpc_server, runtime, grace=0.1)
