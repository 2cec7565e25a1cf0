"""bridge.progress: the one fold of job events into what an editor shows."""
from __future__ import annotations

from bridge.api import pb
from bridge.progress import JobView, apply_event, apply_job, outcome


def _event(seq, state=pb.RUNNING, **kind) -> pb.JobEvent:
    return pb.JobEvent(seq=seq, job_id="j1", state=state, **kind)


def test_a_job_s_events_fold_into_state_progress_preview_and_take():
    take = pb.Take(take_id="t7", status=pb.NEEDS_REVIEW, seed=5, flags=["flicker: ..."],
                   media=pb.MediaInfo(url="/takes/a.mov", frame_count=24, start_timecode="01:00:00:00"))
    events = [_event(1, pb.QUEUED, queued=pb.Queued(position=2)),
              _event(2, started=pb.Started(backend="classic", device="cpu", attempt=1)),
              _event(3, progress=pb.Progress(stage="generate", step=3, total=24, fraction=0.2, eta_seconds=9.5)),
              _event(4, preview=pb.Preview(frame=3, jpeg=b"\xff\xd8jpeg")),
              _event(5, pb.SUCCEEDED, take_ready=take)]
    views = [JobView("j1")]
    for event in events:
        views.append(apply_event(views[-1], event))
    queued, started, running, preview, ready = views[1:]
    assert (queued.state, queued.detail) == ("queued", "queued (position 2)")
    assert (started.state, started.detail) == ("running", "on classic (cpu)")
    assert (running.detail, running.fraction, running.eta_seconds) == ("generate 3/24", 0.2, 9.5)
    assert (preview.preview_jpeg, preview.preview_frame, preview.detail) == (b"\xff\xd8jpeg", 3, "generate 3/24")
    assert (ready.state, ready.done, ready.fraction, ready.take.take_id, ready.last_seq) == ("succeeded", True, 1.0,
                                                                                             "t7", 5)
    assert outcome(ready) == {"job_id": "j1", "take_id": "t7", "status": "succeeded", "take_status": "needs_review",
                              "media": "/takes/a.mov", "manifest": "", "frames": 24,
                              "start_timecode": "01:00:00:00", "seed": 5, "flags": ["flicker: ..."]}
    assert views[0] == JobView("j1")   # nothing is changed in place


def test_a_replayed_event_changes_nothing_and_failures_keep_their_code():
    view = apply_event(JobView("j1"), _event(3, progress=pb.Progress(stage="decode", step=1, total=2, fraction=0.5)))
    assert apply_event(view, _event(2, progress=pb.Progress(stage="old", fraction=0.1))) is view
    failed = apply_event(view, _event(4, pb.FAILED, failed=pb.Failure(code="media_missing", message="a.mov is gone")))
    assert (failed.state, failed.error_code, failed.detail, failed.done) == ("failed", "media_missing",
                                                                             "a.mov is gone", True)
    assert outcome(failed) == {"job_id": "j1", "status": "failed", "error": "a.mov is gone",
                               "error_code": "media_missing"}
    cancelled = apply_event(view, _event(4, pb.CANCELLED, cancelled=pb.Cancelled(reason="")))
    assert (cancelled.state, cancelled.detail) == ("cancelled", "cancelled")


def test_the_job_read_at_the_end_settles_the_view():
    job = pb.Job(job_id="j1", state=pb.FAILED, error="out of memory", error_code="resource_exhausted")
    view = apply_job(JobView("j1", state="running", fraction=0.4), job)
    assert (view.state, view.error_code, view.fraction) == ("failed", "resource_exhausted", 0.4)
    done = apply_job(JobView("j1"), pb.Job(job_id="j1", state=pb.SUCCEEDED, take=pb.Take(take_id="t1", status=pb.OK)))
    assert (done.state, done.take.take_id, done.detail) == ("succeeded", "t1", "take t1 (ok)")
