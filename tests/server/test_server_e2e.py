"""End to end through real gRPC on loopback: an OTIO selection goes in, a job runs on the
classic backend, a take comes back, its media decodes to exactly the frames asked for."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import grpc
import numpy as np
import pytest

from bridge.api import pb
from bridge.client import ClientError
from bridge.takes import ORIGINAL, list_takes, place_take
from server.media import probe, read_frames, write_movie
from server.samples import moving_object_clip, noisy_clip, pan_clip

from conftest import make_timeline, submit_request


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def run(client, request) -> "pb.Job":
    job = client.submit(request)
    return client.wait(job.job_id)


def take_frames(job) -> np.ndarray:
    return read_frames(job.take.media.url, 0, job.take.media.frame_count)


def test_inpaint_removes_the_moving_object_and_keeps_every_pixel_outside_the_mask(server, write_media, tmp_path):
    client, _ = server
    frames, masks, clean = moving_object_clip(24, 96, 160, seed=3)
    media = write_media("plate", frames)
    mask = write_movie((masks[..., None] * 255).repeat(3, axis=3).astype(np.uint8), tmp_path / "mask.mkv",
                       codec="ffv1", rate=Fraction(24)).path
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=24, clip_in=0, clip_frames=24)

    job = run(client, submit_request(timeline, "A", "inpaint", mask=mask))

    assert job.state == pb.SUCCEEDED, job.error
    out = take_frames(job)
    assert out.shape == frames.shape
    outside = ~masks
    assert np.array_equal(out[outside], frames[outside]), "pixels outside the mask changed"
    inside = masks
    filled, original = psnr(out[inside], clean[inside]), psnr(frames[inside], clean[inside])
    print(f"inpaint PSNR inside the mask vs clean plate: {filled:.1f} dB (object left in: {original:.1f} dB)")
    assert filled > 30.0
    assert job.take.media.start_timecode == "01:00:00:00"


def test_extending_a_pan_continues_the_motion_better_than_holding_the_last_frame(server, write_media):
    client, _ = server
    truth = pan_clip(36, 96, 160, dx_per_frame=1.5, seed=5)
    media = write_media("pan", truth[:24])
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=24, clip_in=0, clip_frames=24,
                             gap_after=20)

    job = run(client, submit_request(timeline, "A", "extend", frames=12))

    assert job.state == pb.SUCCEEDED, job.error
    out = take_frames(job)
    assert len(out) == 36 and job.take.generated_frames == 12
    assert np.array_equal(out[:24], truth[:24]), "the source frames of an extension are the source's"
    interior = np.s_[:, 8:-8, 8:-40]  # away from the edge where new scenery enters
    generated = np.abs(out[24:].astype(int) - truth[24:].astype(int))[interior].mean()
    frozen = np.abs(truth[23:24].astype(int) - truth[24:].astype(int))[interior].mean()
    print(f"extend mean abs error: {generated:.2f} (holding the last frame: {frozen:.2f})")
    assert generated < 0.5 * frozen

    place_take(timeline, "A", job.take)
    track = timeline.tracks[0]
    assert track[0].source_range.duration.value == 36
    assert track.duration().value == 44, "extending into the gap keeps the track's length"


def test_refine_lowers_noise(server, write_media):
    client, _ = server
    noisy, clean = noisy_clip(16, 96, 160, sigma=12.0, seed=2)
    media = write_media("noisy", noisy)
    timeline = make_timeline(media, rate=25, media_start=90000, media_frames=16, clip_in=0, clip_frames=16)

    job = run(client, submit_request(timeline, "A", "refine", strength=1.0))

    assert job.state == pb.SUCCEEDED, job.error
    out = take_frames(job)
    before, after = psnr(noisy, clean), psnr(out, clean)
    print(f"refine PSNR vs clean: {before:.2f} dB -> {after:.2f} dB")
    assert after > before + 2.0


@pytest.mark.parametrize("rate, timecode, clip_in, expected_tc", [
    (Fraction(24000, 1001), "00:59:59:00", 5, "00:59:59:05"),
    (Fraction(25), "10:00:00:00", 3, "10:00:00:03"),
    (Fraction(30000, 1001), "00:00:59;28", 2, "00:01:00;02"),  # crosses the dropped labels
])
def test_takes_keep_the_rate_and_source_timecode(server, write_media, rate, timecode, clip_in, expected_tc):
    client, _ = server
    frames = pan_clip(12, 48, 64, dx_per_frame=1.0, seed=1)
    media = write_media("rated", frames, rate=rate, timecode=timecode, codec="prores")
    from bridge.timecode import from_timecode
    start = from_timecode(timecode, rate)
    timeline = make_timeline(media, rate=rate, media_start=start, media_frames=12, clip_in=clip_in, clip_frames=6)

    job = run(client, submit_request(timeline, "A", "refine", codec=pb.PRORES_422_HQ, strength=0.3))

    assert job.state == pb.SUCCEEDED, job.error
    info = probe(job.take.media.url)
    assert info.rate == rate
    assert info.frame_count == 6
    assert info.start_timecode == expected_tc
    assert info.codec == "prores" and info.pix_fmt == "yuv422p10le"
    assert job.take.source_range.start_frame == start + clip_in


def test_each_job_on_a_shot_makes_the_next_version_with_a_complete_manifest(server, write_media):
    client, _ = server
    media = write_media("v", pan_clip(8, 48, 64, 1.0))
    timeline = make_timeline(media, rate=24, media_start=0, media_frames=8, clip_in=0, clip_frames=8)
    first = run(client, submit_request(timeline, "A", "refine"))
    second = run(client, submit_request(timeline, "A", "refine", seed=8))
    assert (first.take.take_id, second.take.take_id) == ("A_v001", "A_v002")
    manifest = json.loads(Path(second.take.manifest_url).read_text())
    assert manifest["seed"] == 8
    assert manifest["take"]["take_id"] == "A_v002"
    assert manifest["backend"] == {"name": "classic", "model": "", "device": "cpu", "weights_sha256": None}
    assert manifest["inputs"]["media"]["sha256"] == manifest["source"]["media_sha256"]
    assert manifest["resolution"]["generated"]["width"] == manifest["resolution"]["delivered"]["width"] == 64
    assert manifest["source"]["source_range"] == {"start_frame": 0, "frame_count": 8, "rate": "24"}
    assert set(manifest["timings_seconds"]) == {"decode", "generate", "encode", "gates"}
    assert [g["name"] for g in manifest["gates"]] == ["flicker", "conformance", "real_resolution", "frame_order",
                                                     "level_shift", "fallback"]
    assert "opentimelineio" in manifest["versions"]
    import hashlib
    assert manifest["source"]["media_sha256"] == hashlib.sha256(media.read_bytes()).hexdigest()
    assert json.loads(Path(first.take.manifest_url).read_text())["source"]["media_sha256"] == \
        manifest["source"]["media_sha256"]

    place_take(timeline, "A", first.take)
    place_take(timeline, "A", second.take)
    rows = list_takes(timeline)
    assert [(r.key, r.active) for r in rows] == [(ORIGINAL, False), ("A_v001", False), ("A_v002", True)]


def test_same_request_id_returns_the_same_job_and_a_different_payload_is_refused(server, write_media):
    client, _ = server
    media = write_media("idem", pan_clip(6, 32, 48, 1.0))
    timeline = make_timeline(media, rate=24, media_start=0, media_frames=6, clip_in=0, clip_frames=6)
    request = submit_request(timeline, "A", "refine")
    request.request_id = "editor-click-1"
    first, again = client.submit(request), client.submit(request)
    assert first.job_id == again.job_id
    request.refine.strength = 0.9
    with pytest.raises(ClientError) as err:
        client.submit(request)
    assert err.value.code == grpc.StatusCode.ALREADY_EXISTS


def test_watch_resumes_after_the_last_event_seen(server, write_media):
    client, _ = server
    media = write_media("w", pan_clip(8, 32, 48, 1.0))
    timeline = make_timeline(media, rate=24, media_start=0, media_frames=8, clip_in=0, clip_frames=8)
    job = run(client, submit_request(timeline, "A", "refine"))
    all_events = list(client.watch(job.job_id, include_previews=True))
    assert [e.seq for e in all_events] == list(range(1, len(all_events) + 1))
    assert "preview" in {e.WhichOneof("kind") for e in all_events}
    without_previews = list(client.watch(job.job_id))
    assert "preview" not in {e.WhichOneof("kind") for e in without_previews}
    assert all_events[0].WhichOneof("kind") == "queued" and all_events[-1].WhichOneof("kind") == "take_ready"
    resumed = list(client.watch(job.job_id, after_seq=3, include_previews=True))
    assert [e.seq for e in resumed] == [e.seq for e in all_events[3:]]


def test_cancel_stops_a_running_job_and_leaves_no_take(server, write_media):
    client, runtime = server
    noisy, _ = noisy_clip(120, 360, 640, sigma=10, seed=1)
    media = write_media("long", noisy)
    timeline = make_timeline(media, rate=24, media_start=0, media_frames=120, clip_in=0, clip_frames=120)
    job = client.submit(submit_request(timeline, "A", "refine", strength=1.0))
    for event in client.watch(job.job_id):
        if event.WhichOneof("kind") == "progress" and event.progress.stage == "generate":
            client.cancel(job.job_id)
    final = client.get_job(job.job_id)
    assert final.state == pb.CANCELLED
    assert not final.take.take_id
    shot_dir = runtime.take_dir / "A"
    assert not list(shot_dir.glob("*.manifest.json")) and not list(shot_dir.glob("A_v*"))


def test_review_is_stored_on_the_take_and_in_its_manifest(server, write_media):
    client, _ = server
    media = write_media("r", pan_clip(6, 32, 48, 1.0))
    timeline = make_timeline(media, rate=24, media_start=0, media_frames=6, clip_in=0, clip_frames=6)
    job = run(client, submit_request(timeline, "A", "refine"))
    take = client.review(job.take.take_id, approve=False, note="edge shimmer on the left", reviewer="ana")
    assert take.status == pb.REJECTED and take.review_note == "edge shimmer on the left"
    manifest = json.loads(Path(take.manifest_url).read_text())
    assert manifest["reviews"] == [{"approve": False, "note": "edge shimmer on the left", "reviewer": "ana"}]
    assert client.get_job(job.job_id).take.status == pb.REJECTED


def test_upload_then_submit_by_content_address_and_download_the_take(server, write_media, tmp_path):
    client, _ = server
    frames = pan_clip(6, 32, 48, 1.0)
    media = write_media("u", frames)
    uploaded = client.upload(str(media))
    assert uploaded.url == f"cas:{uploaded.sha256}" and uploaded.size == media.stat().st_size
    assert client.upload(str(media)).already_present
    timeline = make_timeline(Path(uploaded.url), rate=24, media_start=0, media_frames=6, clip_in=0, clip_frames=6)
    clip = timeline.tracks[0][0]
    clip.media_reference.target_url = uploaded.url
    job = run(client, submit_request(timeline, "A", "refine", strength=0.0))
    assert job.state == pb.SUCCEEDED, job.error
    dest = client.download(str(tmp_path / "back.mkv"), take_id=job.take.take_id)
    assert np.array_equal(read_frames(dest, 0, 6), frames), "strength 0 is the source, bit for bit"


def test_health_and_reflection_are_served(server):
    client, _ = server
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    channel = client._channel
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="takebridge.v1.Generation"))
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    replies = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for s in next(replies).list_services_response.service}
    assert "takebridge.v1.Generation" in names and "grpc.health.v1.Health" in names


def test_capabilities_describe_the_cpu_backend_honestly(server):
    client, _ = server
    caps = client.capabilities()
    backends = {b.name: b for b in caps.backends}
    assert backends["classic"].available and backends["classic"].device == "cpu"
    assert set(backends["classic"].operations) == {pb.REFINE, pb.EXTEND, pb.INPAINT, pb.GENERATE}
    assert pb.GENERATE not in backends["diffusers"].operations     # (no Generate pipelines there yet)
    assert not backends["diffusers"].available and backends["diffusers"].unavailable_reason
    assert caps.default_backend == "classic" and pb.PRORES_422_HQ in caps.codecs


def test_a_job_that_was_running_at_three_server_deaths_fails_instead_of_looping(tmp_path):
    from server.jobstore import JobStore

    store = JobStore(str(tmp_path / "jobs.sqlite"))
    job, _ = store.create_job(pb.SubmitJobRequest(request_id="poison", operation=pb.REFINE), "A", "classic")
    for death in range(1, 4):
        assert store.claim_next(["classic"]) == job.job_id
        requeued, failed = store.requeue_interrupted()
        assert (requeued, failed) == (([job.job_id], []) if death < 3 else ([], [job.job_id]))
    final = store.get_job(job.job_id)
    assert final.state == pb.FAILED and final.error_code == "interrupted_too_often" and final.attempts == 3
