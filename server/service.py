"""The gRPC Generation service: validates requests, queues jobs, streams their events, and
serves reviews and content-addressed media. Every refusal says what was wrong and what to do.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import grpc

from bridge.api import pb, pb_grpc
from server.errors import JobError
from server.jobstore import TERMINAL
from server.plan import make_plan
from server.takestore import write_json_atomic

log = logging.getLogger("takebridge.service")
CHUNK = 1 << 20


class GenerationService(pb_grpc.GenerationServicer):
    def __init__(self, runtime):
        self.rt = runtime

    def GetCapabilities(self, request, context):
        return self.rt.capabilities()

    def SubmitJob(self, request, context):
        if not request.request_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "request_id is empty; send a new UUID per request (resending it makes the submit idempotent)")
        existing = self.rt.store.job_for_request(request.request_id)
        if existing is not None:
            if not self.rt.store.same_request(existing.job_id, request):
                context.abort(grpc.StatusCode.ALREADY_EXISTS,
                              f"request_id {request.request_id} was already used for a different request "
                              f"(job {existing.job_id}); use a new request_id")
            return existing
        backend = request.backend or self.rt.default_backend
        if backend not in self.rt.backend_names():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"unknown backend {backend!r}; this server has {', '.join(self.rt.backend_names())}")
        reason = self.rt.unavailable_reason(backend)
        if reason:
            if request.contract.fallback == pb.CLASSIC and "classic" in self.rt.backends:
                log.info("request %s: backend %r unavailable (%s); its fallback policy runs it on classic",
                         request.request_id, backend, reason)
                backend = "classic"
            else:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"backend {backend!r} is not available: {reason}; set the shot contract's fallback "
                              f"to CLASSIC to run it on the CPU backend instead")
        if self.rt.budget_left() <= 0:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"the server's compute budget of {self.rt.limits.compute_budget_s:g} s is spent "
                          f"({self.rt.store.compute_seconds_used():.1f} s used); restart it with a larger "
                          f"--compute-budget to go on")
        try:
            plan = make_plan(request, self.rt.limits, self.rt.take_dir, seed=0)
        except JobError as err:
            log.info("refused request %s [%s]: %s", request.request_id, err.code, err)
            context.abort(err.status, str(err))
        job, created = self.rt.store.create_job(request, plan.shot, backend)
        if created:
            log.info("queued job %s: %s of shot %s (%d frames)", job.job_id, plan.op, plan.shot, plan.take_count)
            self.rt.wake_workers()
        return job

    def WatchJob(self, request, context):
        job = self._job(request.job_id, context)
        last = request.after_seq
        store = self.rt.store
        while context.is_active():
            events = store.events_after(job.job_id, last, request.include_previews)
            for event in events:
                last = event.seq
                yield event
            if store.get_job(job.job_id).state in TERMINAL and store.last_seq(job.job_id) <= last:
                return
            with store.changed:
                if store.last_seq(job.job_id) <= last:
                    store.changed.wait(timeout=1.0)
            if self.rt.stopping:
                # not a normal end: the job resumes at the next start, so the client retries
                context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down; watch again to resume")

    def CancelJob(self, request, context):
        job = self._job(request.job_id, context)
        if job.state == pb.CANCELLED:
            return job
        if job.state in (pb.SUCCEEDED, pb.FAILED):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"job {job.job_id} already {pb.JobState.Name(job.state).lower()}; nothing to cancel")
        self.rt.store.request_cancel(job.job_id)
        if job.state == pb.QUEUED and self.rt.store.cancel_if_queued(job.job_id):
            log.info("job %s cancelled while queued", job.job_id)
        else:
            self.rt.cancel_running(job.job_id)
        return self.rt.store.get_job(job.job_id)

    def GetJob(self, request, context):
        return self._job(request.job_id, context)

    def ListJobs(self, request, context):
        return pb.ListJobsResponse(jobs=self.rt.store.list_jobs(request.states, request.shot, request.limit))

    def ReviewTake(self, request, context):
        take = self.rt.store.get_take(request.take_id)
        if take is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no take {request.take_id!r} on this server")
        take.status = pb.APPROVED if request.approve else pb.REJECTED
        take.review_note, take.reviewer = request.note, request.reviewer
        self.rt.store.add_review(take.take_id, request.approve, request.note, request.reviewer)
        self.rt.store.update_take(take)
        manifest = Path(take.manifest_url)
        if manifest.exists():
            data = json.loads(manifest.read_text())
            data.setdefault("reviews", []).append({"approve": request.approve, "note": request.note,
                                                   "reviewer": request.reviewer})
            data["take"]["status"] = pb.TakeStatus.Name(take.status)
            write_json_atomic(manifest, data)
        log.info("take %s %s by %s: %s", take.take_id, "approved" if request.approve else "rejected",
                 request.reviewer or "someone", request.note)
        return take

    def UploadMedia(self, request_iterator, context):
        cas = self.rt.limits.cas_dir
        cas.mkdir(parents=True, exist_ok=True)
        digest, size, expected, filename = hashlib.sha256(), 0, "", ""
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=cas)
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in request_iterator:
                    expected = expected or chunk.sha256
                    filename = filename or chunk.filename
                    if chunk.offset != size:
                        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                      f"upload chunk at offset {chunk.offset}, expected {size}; send chunks in order")
                    size += len(chunk.data)
                    if size > self.rt.max_upload_bytes:
                        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                      f"upload is over {self.rt.max_upload_bytes} bytes; use a shared disk instead")
                    fh.write(chunk.data)
                    digest.update(chunk.data)
            actual = digest.hexdigest()
            if expected and expected != actual:
                context.abort(grpc.StatusCode.DATA_LOSS,
                              f"upload hashes to {actual}, not the announced {expected}; upload it again")
            name = os.path.basename(filename) or "media"
            folder = cas / actual
            present = folder.is_dir() and any(folder.iterdir())
            if not present:
                folder.mkdir(exist_ok=True)
                os.replace(tmp, folder / name)
            return pb.MediaObject(sha256=actual, url=f"cas:{actual}", size=size, already_present=present)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def DownloadMedia(self, request, context):
        which = request.WhichOneof("what")
        if which == "take_id":
            take = self.rt.store.get_take(request.take_id)
            if take is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"no take {request.take_id!r} on this server")
            path, digest = Path(take.media.url), take.media.sha256
            if not path.is_file():
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"take {take.take_id} is an image sequence or its media is gone ({path}); "
                              f"only movie takes can be downloaded")
        elif which == "sha256":
            folder = self.rt.limits.cas_dir / request.sha256
            files = sorted(folder.iterdir()) if folder.is_dir() else []
            if not files:
                context.abort(grpc.StatusCode.NOT_FOUND, f"no media with sha256 {request.sha256}")
            path, digest = files[0], request.sha256
        else:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "say which media: sha256 or take_id")
        size = path.stat().st_size
        step = request.chunk_size or CHUNK
        with open(path, "rb") as fh:
            offset = 0
            while True:
                data = fh.read(step)
                if not data:
                    break
                yield pb.MediaChunk(sha256=digest, filename=path.name if offset == 0 else "", offset=offset,
                                    data=data, total_size=size)
                offset += len(data)

    def _job(self, job_id: str, context) -> "pb.Job":
        job = self.rt.store.get_job(job_id) if job_id else None
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no job {job_id!r} on this server; list jobs with ListJobs")
        return job
