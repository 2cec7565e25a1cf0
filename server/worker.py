"""One worker thread per device: claims queued jobs from the store, runs them, and turns what
happens into job events (progress with ETA, previews, take ready, failed, cancelled).
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import traceback

import cv2
import numpy as np

from bridge.api import pb
from server.backends.base import Backend, BackendError, Cancelled
from server.errors import JobError, from_exception
from server.jobstore import JobStore
from server.media import MediaError
from server.generate import run_generate
from server.plan import make_plan
from server.runner import STAGE_WEIGHTS, run_plan
from server import faults, paths
from server.takestore import remove_staging, staging_dir

log = logging.getLogger("takebridge.worker")
PROGRESS_INTERVAL_S = 0.25
PREVIEW_INTERVAL_S = 1.0
PREVIEW_WIDTH = 256


def loaded_models(backends: dict) -> list[str]:
    """The models the backends keep loaded (warm) right now."""
    return [model for backend in backends.values() if getattr(backend, "cache", None) is not None
            for model in backend.cache.loaded()]


class WorkerLost(Exception):
    """The process running a job went away (a Ray worker killed): the job goes back to the queue."""


def seed_for(job_id: str) -> int:
    """The seed of a job that did not ask for one: fixed by the job id, so a job resumed after a
    restart renders the same pixels."""
    return int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


class Worker(threading.Thread):
    def __init__(self, runtime, device: str, backends: dict[str, Backend]):
        super().__init__(name=f"takebridge-worker-{device}", daemon=True)
        self.runtime = runtime
        self.device = device
        self.backends = backends
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.cancels: dict[str, threading.Event] = {}

    @property
    def store(self) -> JobStore:
        return self.runtime.store

    accept = None   # every job of its backends (server.ray_workers prefers the worker with the model warm)

    def where(self, backend) -> str:
        """Where a job runs, as the started event and the log say it."""
        return backend.device

    def info(self) -> dict:
        """This worker for the capabilities: where, what, warm models, busy."""
        import socket

        return {"name": self.device, "host": socket.gethostname(), "device": self.device, "memory_gb": 0.0,
                "loaded_models": loaded_models(self.backends), "busy": bool(self.cancels), "backends": sorted(self.backends), "devices": 1}

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        for event in list(self.cancels.values()):
            event.set()

    def cancel(self, job_id: str) -> bool:
        event = self.cancels.get(job_id)
        if event is None:
            return False
        event.set()
        return True

    def run(self) -> None:
        """Claim and run jobs until stopped. Nothing a job does ends this loop: a job that
        raises anything is failed with the reason, and the next one runs."""
        while not self.stopping.is_set():
            job_id = None
            try:
                job_id = self.store.claim_next(self.backends, self.accept)
                if job_id is None:
                    self.wake.wait(0.5)
                    self.wake.clear()
                    continue
                self.run_job(job_id)
            except Exception as exc:  # a bug outside a job's own handling; keep serving
                log.error("worker %s: unexpected error%s:\n%s", self.name, f" on job {job_id}" if job_id else "",
                          traceback.format_exc())
                if job_id is not None:
                    try:
                        self._fail(job_id, "internal", f"internal error ({type(exc).__name__}); the server log "
                                                       f"has the details")
                    except Exception:
                        log.error("could not mark job %s failed:\n%s", job_id, traceback.format_exc())
                time.sleep(0.1)   # a store that keeps failing must not spin the CPU

    def run_job(self, job_id: str) -> None:
        cancel = threading.Event()
        self.cancels[job_id] = cancel
        if self.store.cancel_requested(job_id):
            cancel.set()
        job = self.store.get_job(job_id)
        backend = self.backends[job.backend]
        adopted = self.runtime.takes.adopt(job_id)
        if adopted is not None:   # an earlier attempt made the take, then the server died
            self.cancels.pop(job_id, None)
            self.store.finish(job_id, pb.SUCCEEDED, take_id=adopted.take_id, event=pb.JobEvent(take_ready=adopted))
            log.info("job %s: adopted take %s that an interrupted attempt had completed", job_id, adopted.take_id)
            try:
                self.runtime.takes.remove_staging_of(job_id)
            except Exception as exc:
                log.warning("job %s: staging folder not removed (%s)", job_id, exc)
            return
        self.store.append_event(job_id, pb.JobEvent(started=pb.Started(
            backend=backend.name, device=self.where(backend), attempt=job.attempts)))
        log.info("job %s started: %s of shot %r on %s (attempt %d)", job_id,
                 pb.Operation.Name(job.operation).lower(), job.shot, self.where(backend), job.attempts)
        faults.point("job_started")
        plan = None
        compute_started = time.monotonic()
        budget_hit = threading.Event()
        timer = None
        budget, which = float("inf"), ""
        try:
            request = self.store.request_of(job_id)
            plan = make_plan(request, self.runtime.limits, self.runtime.take_dir, seed=seed_for(job_id))
            budget, which = self._budget(request)
            self._apply_policies(request, plan, backend, budget, which)
            if plan.op == "generate":   # its slate and burn-in state the take it will be
                plan.generate["take_label"] = self.runtime.takes.reserve_early(job, plan)
            reporter = _Reporter(self.store, job_id)
            if budget != float("inf"):
                timer = threading.Timer(max(0.0, budget), lambda: (budget_hit.set(), cancel.set()))
                timer.daemon = True
                timer.start()
            result = self._execute(job_id, plan, backend, staging_dir(plan, job_id), reporter, cancel)
            if cancel.is_set():
                raise Cancelled()
            take = self.runtime.takes.commit(job, plan, result, backend.name,
                                             result.info.get("model") or request.model)
            self.store.finish(job_id, pb.SUCCEEDED, take_id=take.take_id,
                              event=pb.JobEvent(take_ready=take))
            log.info("job %s done: take %s (%d frames) at %s", job_id, take.take_id, take.media.frame_count,
                     take.media.url)
        except WorkerLost as lost:
            self._requeue(job_id, job.attempts, str(lost))
        except Cancelled:
            if budget_hit.is_set():
                self._fail(job_id, "over_budget",
                           f"stopped after {time.monotonic() - compute_started:.1f} s of compute, over {which} of "
                           f"{budget:.3g} s; nothing was kept. Select fewer frames or raise the budget")
                return
            if self.stopping.is_set():
                log.info("job %s interrupted by shutdown; it resumes at the next start", job_id)
                return
            self.store.finish(job_id, pb.CANCELLED, event=pb.JobEvent(cancelled=pb.Cancelled(
                reason="cancelled by the user")))
            log.info("job %s cancelled", job_id)
        except (JobError, MediaError, BackendError, ValueError) as exc:
            error = from_exception(exc)
            self._fail(job_id, error.code, str(error))
        except OSError as exc:   # the disk, not a bug: full, read-only, a path the OS refuses
            self._fail(job_id, "io_error", f"{exc.strerror or exc} ({exc.filename or 'the take folder'}); free "
                                           f"space or check the take folder, then submit again")
        except Exception as exc:  # a bug: fail the job, keep the server up, log the traceback
            log.error("job %s crashed:\n%s", job_id, traceback.format_exc())
            self._fail(job_id, "internal", f"internal error ({type(exc).__name__}: {exc}); the server log "
                                           f"has the details")
        finally:
            # each step on its own: a failing one must neither skip the others nor escape
            if timer is not None:
                timer.cancel()
            self.cancels.pop(job_id, None)
            try:
                self.store.add_compute(job_id, time.monotonic() - compute_started)
            except Exception:
                log.error("job %s: compute time not recorded:\n%s", job_id, traceback.format_exc())
            if plan is not None:
                try:
                    remove_staging(plan, job_id)
                except Exception as exc:
                    log.warning("job %s: staging folder not removed (%s)", job_id, exc)

    def _execute(self, job_id: str, plan, backend, staging, reporter, cancel):
        """Run the plan (here, in this process; server.ray_workers sends it to a Ray actor)."""
        with paths.reading_under(self.runtime.limits.roots):
            run = run_generate if plan.op == "generate" else run_plan   # (no source frames: its own pipeline)
            return run(plan, backend, staging, reporter, cancel)

    def _requeue(self, job_id: str, attempts: int, why: str) -> None:
        """The job's worker went away: queued again for another, unless it has now taken down
        a worker at each of its last attempts (the poison-job guard)."""
        from server.jobstore import MAX_ATTEMPTS

        if attempts >= MAX_ATTEMPTS:
            self._fail(job_id, "worker_lost_too_often", f"{why}, at each of its {attempts} attempts; it may be what "
                                                        f"kills the worker. Check the worker's log, then submit again")
            return
        self.store.requeue(job_id)
        log.warning("job %s: %s; queued again (attempt %d was lost)", job_id, why, attempts)
        self.runtime.wake_workers()

    def _budget(self, request) -> tuple[float, str]:
        """(seconds this job may compute, which budget that is)."""
        job_budget = request.contract.budget.max_compute_seconds or float("inf")
        server_left = self.runtime.budget_left()
        if server_left < job_budget:
            return server_left, "what is left of the server's compute budget"
        return job_budget, "the job's compute budget"

    def _apply_policies(self, request, plan, backend, budget: float, which: str) -> None:
        """Fallbacks the request allows, decided before any compute is spent; each is
        recorded in the plan (and so in the manifest and the fallback gate)."""
        if request.backend and request.backend != backend.name:
            plan.fallbacks.append(f"backend {request.backend!r} is not available here: ran on {backend.name!r} "
                                  f"(fallback policy CLASSIC)")
        estimate = self._estimate(backend, plan)
        if estimate <= budget:
            return
        size = f"{plan.media.width}x{plan.media.height}"
        if request.contract.fallback == pb.DEGRADE and hasattr(backend, "estimate_seconds") \
                and self._estimate(backend, plan, steps_scale=0.5) <= budget:
            plan.steps_scale = 0.5
            plan.fallbacks.append(
                f"estimated {estimate:.3g} s of compute is over {which} of {budget:.3g} s: half the denoising "
                f"steps (fallback policy DEGRADE)")
            return
        if request.contract.fallback == pb.DEGRADE and estimate * 0.25 <= budget:
            plan.scale = 0.5
            plan.fallbacks.append(
                f"estimated {estimate:.3g} s of compute at {size} is over {which} of {budget:.3g} s: processed at "
                f"half resolution and upscaled (fallback policy DEGRADE)")
            return
        hint = "" if request.contract.fallback == pb.DEGRADE else ", or allow the DEGRADE fallback"
        raise JobError("over_budget", f"estimated {estimate:.3g} s of compute for {plan.read_count + plan.extend_frames} "
                                      f"frames at {size} is over {which} of {budget:.3g} s; select fewer frames, "
                                      f"raise the budget{hint}")

    def _estimate(self, backend, plan, steps_scale: float = 1.0) -> float:
        if hasattr(backend, "estimate_seconds"):  # generative backends know their models' cost
            return backend.estimate_seconds(plan.op, round(plan.media.width * plan.scale),
                                            round(plan.media.height * plan.scale), plan.read_count + plan.extend_frames,
                                            plan.request.model, steps_scale)
        return self.runtime.limits.estimate_seconds(backend.name, plan)

    def _fail(self, job_id: str, code: str, message: str) -> None:
        if self.stopping.is_set():
            return  # shutting down: leave the job RUNNING so the next start picks it up again
        self.store.finish(job_id, pb.FAILED, error=message, error_code=code,
                          event=pb.JobEvent(failed=pb.Failure(code=code, message=message)))
        log.warning("job %s failed [%s]: %s", job_id, code, message)


class _Reporter:
    """Backend/stage progress -> throttled progress events with ETA, and small previews."""

    def __init__(self, store: JobStore, job_id: str):
        self.store, self.job_id = store, job_id
        self.started = time.monotonic()
        self.last_progress = self.last_preview = 0.0
        self.done_weight = 0.0
        self.stage = ""

    def __call__(self, stage: str, step: int, total: int, preview) -> None:
        if stage != self.stage:
            if self.stage:
                self.done_weight += STAGE_WEIGHTS.get(self.stage, 0.0)
            self.stage = stage
        now = time.monotonic()
        fraction = min(1.0, self.done_weight + STAGE_WEIGHTS.get(stage, 0.0) * (step / total if total else 1.0))
        if now - self.last_progress >= PROGRESS_INTERVAL_S or step in (0, total):
            self.last_progress = now
            elapsed = now - self.started
            eta = elapsed * (1 - fraction) / fraction if fraction > 0.02 else -1.0
            progress = pb.Progress(stage=stage, step=step, total=total, fraction=fraction, eta_seconds=eta)
            self.store.set_progress(self.job_id, progress)
            self.store.append_event(self.job_id, pb.JobEvent(progress=progress))
        if preview is not None and now - self.last_preview >= PREVIEW_INTERVAL_S:
            self.last_preview = now
            self.store.append_event(self.job_id, pb.JobEvent(preview=_preview(preview, step)))


def _preview(frame: np.ndarray, step: int) -> "pb.Preview":
    height = max(1, round(frame.shape[0] * PREVIEW_WIDTH / frame.shape[1]))
    small = cv2.resize(frame, (PREVIEW_WIDTH, height), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return pb.Preview(frame=max(0, step - 1), jpeg=jpeg.tobytes() if ok else b"", width=PREVIEW_WIDTH, height=height)
