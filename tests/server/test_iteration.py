"""Controlled iteration end to end: `check` on files, `rerender --verify` bit-exact, reviews
through the server into the manifest and the timeline, and a pilot report whose figures match
a hand count on a store the test makes."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from bridge.api import pb
from bridge.client import ClientError
from bridge.interchange import read_timeline, write_timeline
from bridge.takes import place_take
from server.app import ServerConfig, build_server, shutdown
from server.cli import main
from server.media import write_movie
from server.report import build_report, percentile
from server.samples import moving_object_clip, pan_clip

from conftest import make_timeline, submit_request
from support.labelled_takes import good_cases, planted_cases


def run(capsys, *argv) -> tuple[int, dict]:
    code = main(["--log-level", "error", *map(str, argv), "--json"])
    out = capsys.readouterr().out.strip()
    return code, json.loads(out) if out else {}


@pytest.fixture
def served(tmp_path):
    grpc_server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store"))
    from bridge.client import GenerationClient

    client = GenerationClient(f"127.0.0.1:{port}")
    yield client, f"127.0.0.1:{port}", tmp_path / "store"
    client.close()
    shutdown(grpc_server, runtime, grace=0.5)


@pytest.mark.parametrize("defect", ["", "seam", "flicker", "missing_frame", "upscale", "mask_bleed"])
def test_check_on_files_flags_planted_defects(capsys, tmp_path, defect):
    """The labelled cases written as lossless movies with timecode and checked by the CLI."""
    good = good_cases()
    cases = [c for c in planted_cases(good) if c.defect == defect] if defect else good
    case = next(c for c in cases if c.op == ("inpaint" if defect in ("mask_bleed",) else "extend"))
    rate = Fraction(24)
    source = write_movie(case.source, tmp_path / "source.mkv", codec="ffv1", rate=rate,
                         start_timecode="01:00:00:00").path
    tc = "00:59:59:16" if case.extend_side == "head" and case.op == "extend" else "01:00:00:00"
    take = write_movie(case.take, tmp_path / "take.mkv", codec="ffv1", rate=rate, start_timecode=tc).path
    argv = ["check", "--op", case.op, "--source", source, "--take", take]
    if case.op == "inpaint":
        argv += ["--mask", write_movie(np.repeat(case.mask[..., None] * np.uint8(255), 3, axis=-1),
                                       tmp_path / "mask.mkv", codec="ffv1", rate=rate).path]
    if case.op == "extend":
        argv += ["--frames", case.extend_frames, "--side", case.extend_side]
    code, data = run(capsys, *argv)
    flagged = {g["name"] for g in data["gates"] if g["verdict"] == "flag"}
    if not defect:
        assert code == 0 and data["status"] == "ok" and not flagged
    else:
        expected = {"seam": "seam", "flicker": "flicker", "missing_frame": "conformance",
                    "upscale": "real_resolution", "mask_bleed": "mask_outside"}[defect]
        assert code == 1 and data["status"] == "needs_review" and expected in flagged, data["reasons"]


def test_rerender_verify_reproduces_classic_takes_bit_exactly(capsys, served, write_media, tmp_path):
    client, _address, _store = served
    frames, masks, _ = moving_object_clip(12, 48, 64, seed=2)
    media = write_media("obj", frames, timecode="01:00:00:00")
    mask = write_movie(np.repeat(masks[..., None] * np.uint8(255), 3, axis=-1), tmp_path / "m.mkv", codec="ffv1",
                       rate=Fraction(24)).path
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=12, clip_in=0, clip_frames=12)
    for op, params in (("inpaint", {"mask": mask}), ("refine", {"strength": 0.7}), ("extend", {"frames": 4})):
        job = client.wait(client.submit(submit_request(timeline, "A", op, codec=pb.PRORES_422_HQ, **params)).job_id)
        assert job.state == pb.SUCCEEDED
        code, data = run(capsys, "rerender", job.take.manifest_url, "--verify", "--out", tmp_path / f"rr_{op}")
        assert code == 0 and data["verdict"] == "identical", data
        assert data["verify"]["frames"] == job.take.media.frame_count and data["inputs_changed"] == []
    # a changed input is reported and fails the verification
    write_media("obj", frames[::-1].copy(), timecode="01:00:00:00")
    code, data = run(capsys, "rerender", job.take.manifest_url, "--verify", "--out", tmp_path / "rr_changed")
    assert code == 1 and data["inputs_changed"] and "is not the same file any more" in data["inputs_changed"][0]
    assert data["verdict"] == "different" and data["verify"]["frames_differing"] > 0


def test_review_is_stored_on_the_server_in_the_manifest_and_the_timeline(capsys, served, write_media, tmp_path):
    client, address, _store = served
    media = write_media("pan", pan_clip(12, 48, 64, 1.0), timecode="01:00:00:00")
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=12, clip_in=0, clip_frames=12)
    job = client.wait(client.submit(submit_request(timeline, "A", "refine")).job_id)
    place_take(timeline, "A", job.take)
    write_timeline(timeline, tmp_path / "cut.otio")
    code, data = run(capsys, "review", job.take.take_id, "--reject", "--note", "edges ring", "--reviewer", "mo",
                     "--server", address, "--timeline", tmp_path / "cut.otio", "-o", tmp_path / "reviewed.otio")
    assert code == 0 and data["status"] == "rejected"
    manifest = json.loads(open(job.take.manifest_url).read())
    assert manifest["reviews"] == [{"approve": False, "note": "edges ring", "reviewer": "mo"}]
    assert manifest["take"]["status"] == "REJECTED"
    clip = next(c for c in read_timeline(tmp_path / "reviewed.otio").find_clips())
    stored = clip.media_references()[job.take.take_id].metadata["takebridge"]["take"]
    assert stored["status"] == "REJECTED" and stored["review_note"] == "edges ring" and stored["reviewer"] == "mo"
    code, data = run(capsys, "review", "nope_v001", "--approve", "--server", address)
    assert code == 2 and "no take 'nope_v001'" in data["error"]


def test_report_figures_match_a_hand_count(capsys, served, write_media, tmp_path):
    client, _address, store = served
    media = write_media("pan", pan_clip(16, 48, 64, 1.5), timecode="01:00:00:00")
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=16, clip_in=0, clip_frames=12)
    made = {}

    def make(name, op, strict=False, **params):
        request = submit_request(timeline, "A", op, **params)
        if strict:
            request.contract.review.thresholds["real_resolution"] = 100.0  # every take flags (less detail than 100x)
        job = client.wait(client.submit(request).job_id)
        assert job.state == pb.SUCCEEDED
        made[name] = job.take
        return job.take

    make("r1", "refine")
    make("r2", "refine", strict=True)
    make("r3", "refine")
    make("e1", "extend", frames=3)
    make("e2", "extend", strict=True, frames=3)
    assert [made[k].status for k in ("r1", "r2", "e2")] == [pb.OK, pb.NEEDS_REVIEW, pb.NEEDS_REVIEW]
    client.review(made["r1"].take_id, True, "clean", "ana")          # unflagged, approved
    client.review(made["r2"].take_id, True, "fine to me", "ana")     # flagged, approved anyway
    client.review(made["r3"].take_id, True, "", "bo")                # unflagged: approved, then rejected
    client.review(made["r3"].take_id, False, "grain pumps on second look", "bo")
    client.review(made["e2"].take_id, False, "seam", "ana")          # flagged, rejected
    # e1: never reviewed
    failed = submit_request(timeline, "A", "extend", frames=3)
    failed.contract.budget.max_frames = 2                             # refused at submit, not a job
    with pytest.raises(ClientError, match="over the limit of 2"):
        client.submit(failed)

    report = build_report(store)
    overall, refine, extend = report["overall"], report["operations"]["refine"], report["operations"]["extend"]
    assert (overall["takes"], refine["takes"], extend["takes"], report["operations"]["inpaint"]["takes"]) == (5, 3, 2, 0)
    assert overall["flagged"] == 2 and overall["flags_by_reason"] == {"real_resolution": 2}
    assert (overall["reviewed"], overall["approved"], overall["rejected"], overall["unreviewed"]) == (4, 2, 2, 1)
    assert overall["approval_rate"] == 0.5 and overall["rejection_rate"] == 0.5
    assert (refine["approved"], refine["rejected"], refine["approval_rate"]) == (2, 1, round(2 / 3, 3))
    assert overall["approved_despite_flags"] == 1 and refine["approved_despite_flags"] == 1
    assert overall["missed_escalations"] == 1 and extend["missed_escalations"] == 0
    assert overall["delivered_resolution"] == {"64x48": 5} and overall["upscaled"] == 0
    manifests = [json.loads(open(t.manifest_url).read()) for t in made.values()]
    compute = sorted(sum(m["timings_seconds"].values()) for m in manifests)
    assert overall["latency_seconds"]["compute"]["median"] == pytest.approx(compute[2], abs=0.002)
    assert overall["latency_seconds"]["compute"]["p95"] == pytest.approx(percentile(compute, 95), abs=0.002)
    assert overall["compute_seconds"] == pytest.approx(sum(compute), abs=0.01)
    waits = sorted(m["queue_wait_seconds"] for m in manifests)
    assert overall["latency_seconds"]["queue_wait"]["median"] == pytest.approx(waits[2], abs=0.002)
    assert [n["note"] for n in report["notes"]] == ["clean", "fine to me", "grain pumps on second look", "seam"]
    assert report["jobs"]["succeeded"] == 5
    # the CLI prints the same figures, and the HTML has its plots
    code, data = run(capsys, "report", "--store", store, "--html", tmp_path / "report.html")
    assert code == 0 and data["overall"]["approved_despite_flags"] == 1
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 3 and "grain pumps on second look" in page
    code, data = run(capsys, "report", "--store", store, "--since", "2999-01-01")
    assert code == 0 and data["overall"]["takes"] == 0
    code, data = run(capsys, "report", "--store", tmp_path / "nowhere")
    assert code == 2 and "no TakeBridge store" in data["error"]
