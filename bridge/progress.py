"""What an editor shows of a job: its events folded, purely, into one view."""
from __future__ import annotations

import dataclasses
from typing import Optional

from .api import names
from .api import pb

FINAL = ("succeeded", "failed", "cancelled")


@dataclasses.dataclass(frozen=True)
class JobView:
    """A job as an editor shows it: state, what it is doing, how far, what came of it.

    `state` is the job's (queued, running, succeeded, failed, cancelled); `message` the line
    an editor prints under it; `take` the finished take (succeeded only).
    """

    job_id: str
    state: str = "queued"
    stage: str = ""
    step: int = 0
    total: int = 0
    fraction: float = 0.0
    eta_seconds: float = -1.0          # < 0: unknown
    message: str = ""
    preview_jpeg: bytes = b""
    preview_frame: int = -1
    last_seq: int = 0                  # the newest event folded in: resume the stream after it
    error: str = ""
    error_code: str = ""
    take: Optional[pb.Take] = None

    @property
    def done(self) -> bool:
        return self.state in FINAL

    @property
    def detail(self) -> str:
        """'generate 3/24' while running, the message otherwise."""
        if self.state == "running" and self.stage:
            return f"{self.stage} {self.step}/{self.total}" if self.total else self.stage
        return self.message


def apply_event(view: JobView, event: pb.JobEvent) -> JobView:
    """The view after one event; events at or before `view.last_seq` change nothing."""
    if event.seq and event.seq <= view.last_seq:
        return view
    change: dict = {"last_seq": max(view.last_seq, int(event.seq))}
    kind = event.WhichOneof("kind")
    if kind == "queued":
        change.update(state="queued", message=f"queued (position {event.queued.position})")
    elif kind == "started":
        attempt = f", attempt {event.started.attempt}" if event.started.attempt > 1 else ""
        change.update(state="running", message=f"on {event.started.backend} ({event.started.device}{attempt})")
    elif kind == "progress":
        p = event.progress
        change.update(state="running", stage=p.stage, step=p.step, total=p.total, fraction=float(p.fraction),
                      eta_seconds=float(p.eta_seconds))
    elif kind == "preview" and event.preview.jpeg:
        change.update(preview_jpeg=bytes(event.preview.jpeg), preview_frame=int(event.preview.frame))
    elif kind == "take_ready":
        change.update(take=event.take_ready, fraction=1.0, eta_seconds=0.0)
    elif kind == "failed":
        change.update(state="failed", error=event.failed.message, error_code=event.failed.code,
                      message=event.failed.message)
    elif kind == "cancelled":
        change.update(state="cancelled", message=event.cancelled.reason or "cancelled")
    if event.state and kind not in ("failed", "cancelled"):
        state = names.state_name(event.state)
        if state in FINAL:
            change["state"] = state
    return dataclasses.replace(view, **change)


def apply_job(view: JobView, job: pb.Job) -> JobView:
    """The view once the job itself has been read (GetJob, or the end of a wait)."""
    state = names.state_name(job.state)
    change: dict = {"state": state}
    if state == "succeeded":
        change.update(take=job.take, fraction=1.0, eta_seconds=0.0,
                      message=f"take {job.take.take_id} ({names.status_name(job.take.status)})")
    elif state in ("failed", "cancelled"):
        change.update(error=job.error, error_code=job.error_code, message=job.error or state)
    return dataclasses.replace(view, **change)


def outcome(view: JobView) -> dict:
    """A finished job as a plain dict (what command lines print with --json)."""
    if view.state != "succeeded" or view.take is None:
        return {"job_id": view.job_id, "status": view.state, "error": view.error, "error_code": view.error_code}
    take = view.take
    return {"job_id": view.job_id, "take_id": take.take_id, "status": view.state,
            "take_status": names.status_name(take.status), "media": take.media.url,
            "manifest": take.manifest_url, "frames": take.media.frame_count,
            "start_timecode": take.media.start_timecode, "seed": take.seed, "flags": list(take.flags)}
