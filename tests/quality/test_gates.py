"""Quality gates on a labelled set the test builds itself: every planted defect is flagged by
the gate meant for it, good takes are (almost) never flagged; and the server turns gates into
take status with the reasons."""
from __future__ import annotations

from collections import Counter

import grpc
import pytest

from bridge.api import pb
from bridge.client import ClientError
from server import gates

from conftest import make_timeline, submit_request
from support.labelled_takes import RATE, H, W, good_cases, planted_cases

CATCHES = {"seam": "seam", "flicker": "flicker", "mask_bleed": "mask_outside", "missing_frame": "conformance",
           "upscale": "real_resolution"}


def _evaluate(case):
    expected = gates.Expected(frames=case.expected_frames, rate=RATE, size=(W, H), timecode=None)
    actual = gates.Actual(frames=len(case.take), rate=RATE, size=(case.take.shape[2], case.take.shape[1]),
                          timecode=None)
    return gates.evaluate(case.op, case.source, case.take, mask=case.mask, extend_side=case.extend_side,
                          extend_frames=case.extend_frames, expected=expected, actual=actual)


def test_gates_flag_every_planted_defect_and_at_most_one_good_take_in_ten(capsys):
    good = good_cases()
    planted = planted_cases(good)
    table = Counter()
    missed, wrong_gate, false_flags = [], [], []
    for case in good + planted:
        results = _evaluate(case)
        flagged = {g.name for g in results if g.flagged}
        truth = "defect" if case.defect else "good"
        table[(truth, "flagged" if flagged else "passed")] += 1
        if case.defect and not flagged:
            missed.append(case.name)
        if case.defect and CATCHES[case.defect] not in flagged:
            wrong_gate.append(f"{case.name}: {sorted(flagged)}")
        if not case.defect and flagged:
            false_flags.append(f"{case.name}: {[g.reason() for g in results if g.flagged]}")
    by_defect = Counter(c.defect for c in planted)
    with capsys.disabled():
        print(f"\n\ngate confusion table ({len(good)} good takes, {len(planted)} with planted defects: "
              f"{dict(by_defect)})")
        print(f"{'':>14} {'flagged':>8} {'passed':>8}")
        for truth in ("defect", "good"):
            print(f"{truth:>14} {table[(truth, 'flagged')]:>8} {table[(truth, 'passed')]:>8}")
    assert not missed, f"planted defects not flagged: {missed}"
    assert not wrong_gate, f"defects caught by another gate than theirs: {wrong_gate}"
    assert len(false_flags) * 10 <= len(good), f"good takes flagged: {false_flags}"
    assert len(good) >= 10 and len(planted) >= 25


def test_a_gate_reports_value_threshold_and_verdict_and_takes_contract_thresholds():
    case = next(c for c in good_cases() if c.op == "extend")
    seam = next(g for g in _evaluate(case) if g.name == "seam")
    assert seam.verdict == "pass" and 0.5 < seam.value < 1.5 and seam.threshold == 3.0
    strict = gates.evaluate(case.op, case.source, case.take, extend_side=case.extend_side,
                            extend_frames=case.extend_frames, thresholds={"seam": 0.5})
    seam = next(g for g in strict if g.name == "seam")
    assert seam.verdict == "flag" and seam.threshold == 0.5 and "x > 0.5x" in seam.detail
    with pytest.raises(ValueError, match="review threshold 'sharpness' is not a gate"):
        gates.thresholds_from({"sharpness": 1.0})


def test_a_stated_upscale_is_flagged_with_both_sizes():
    case = good_cases()[-1]

    def real_resolution(generated_size):
        return next(g for g in gates.evaluate(case.op, case.source, case.take, extend_side=case.extend_side,
                                              extend_frames=case.extend_frames, generated_size=generated_size)
                    if g.name == "real_resolution")
    gate = real_resolution((W // 2, H // 2))
    assert gate.flagged and gate.detail == f"generated at {W // 2}x{H // 2} and upscaled to {W}x{H} (25% of the " \
                                          f"delivered pixels)"
    mild = real_resolution((W * 3 // 4, H * 3 // 4))
    assert not mild.flagged and "upscaled" in mild.detail and mild.value == pytest.approx(0.5625, abs=0.01)


def test_the_server_marks_takes_ok_or_needs_review_with_the_reasons(server, write_media, tmp_path):
    from server.samples import pan_clip

    client, _runtime = server
    media = write_media("pan", pan_clip(24, 48, 64, 1.5), timecode="01:00:00:00")
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=24, clip_in=0, clip_frames=16)
    job = client.wait(client.submit(submit_request(timeline, "A", "extend", frames=6)).job_id)
    assert job.take.status == pb.OK and list(job.take.flags) == []
    strict = submit_request(timeline, "A", "extend", frames=6)
    strict.contract.review.thresholds["seam"] = 0.2
    job = client.wait(client.submit(strict).job_id)
    assert job.take.status == pb.NEEDS_REVIEW
    assert len(job.take.flags) == 1 and job.take.flags[0].startswith("seam: jump")
    bad = submit_request(timeline, "A", "extend", frames=6)
    bad.contract.review.thresholds["beauty"] = 1.0
    with pytest.raises(ClientError, match="review threshold 'beauty' is not a gate; gates: seam,") as err:
        client.submit(bad)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT


def _metered(case):
    """The same gates measured frame by frame, as the server does while a take streams."""
    meter = gates.GateMeter(case.op, len(case.source), len(case.take), extend_side=case.extend_side,
                            extend_frames=case.extend_frames, with_mask=case.mask is not None)
    for i, frame in enumerate(case.source):
        meter.add_source(i, frame)
    offset = case.extend_frames if case.op == "extend" and case.extend_side == "head" else 0
    for i, frame in enumerate(case.take):
        s = i - offset
        inside = case.op != "extend" or 0 <= s < len(case.source)
        source = case.source[s] if inside and 0 <= s < len(case.source) else None
        mask = case.mask[s] if case.mask is not None and source is not None and s < len(case.mask) else None
        meter.add_take(i, frame, source, mask)
    expected = gates.Expected(frames=case.expected_frames, rate=RATE, size=(W, H), timecode=None)
    actual = gates.Actual(frames=len(case.take), rate=RATE, size=(case.take.shape[2], case.take.shape[1]),
                          timecode=None)
    return meter.finish(expected=expected, actual=actual, delivered_size=(case.take.shape[2], case.take.shape[1]))


def test_gates_measured_while_streaming_equal_the_gates_on_whole_arrays():
    good = good_cases()
    compared = 0
    for case in good + planted_cases(good):
        if case.mask is not None and len(case.take) != len(case.mask):
            continue   # a take missing a frame has no frame-by-frame mask pairing
        whole = {g.name: g for g in _evaluate(case)}
        streamed = {g.name: g for g in _metered(case)}
        assert set(whole) == set(streamed), case.name
        for name, gate in whole.items():
            other = streamed[name]
            assert gate.verdict == other.verdict, (case.name, name, gate.detail, other.detail)
            if gate.value is not None:
                assert other.value == pytest.approx(gate.value, rel=1e-6, abs=1e-9), (case.name, name)
        compared += 1
    assert compared >= 40
