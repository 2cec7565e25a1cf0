"""The gRPC Generation service (grpc.aio): validates requests, queues jobs, streams their events,
and serves reviews and content-addressed media. Every refusal says what was wrong and what to do.

Threads: the service runs on one asyncio event loop. Blocking work (the job store, planning a
request, media files) runs in two bounded thread pools: one for calls (GetJob, SubmitJob, ...)
and one for event streams, so open WatchJob streams hold no thread while they wait and cannot
starve the calls. Every request is untrusted: bounds first (server.bounds), then names and paths
through server.paths, and any refusal is a status naming the field and the value; an unexpected
error is logged once with its traceback and answered INTERNAL, never UNKNOWN.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor

import grpc

from bridge.api import pb, pb_grpc
from server import bounds, cas, paths, policies, review
from server.errors import STATUS_OF, JobError, from_exception
from server.jobstore import TERMINAL, RequestConflict
from server.plan import make_plan

log = logging.getLogger("takebridge.service")
WATCH_POLL_S = 1.0


def _status_error(exc: Exception) -> JobError | None:
    """The JobError a refusal maps to; None for an unexpected exception (a bug)."""
    if isinstance(exc, RequestConflict):
        return JobError("request_conflict", str(exc), grpc.StatusCode.ALREADY_EXISTS)
    if isinstance(exc, JobError):
        return exc
    if isinstance(exc, ValueError) and getattr(exc, "code", None):   # SelectionError, MediaError, PathError
        error = from_exception(exc)
        error.status = STATUS_OF.get(error.code, grpc.StatusCode.INVALID_ARGUMENT)
        return error
    return None


async def _refuse(context, method: str, exc: Exception):
    error = _status_error(exc)
    if error is None:
        log.error("%s: internal error:\n%s", method, traceback.format_exc())
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method} ({type(exc).__name__}); the "
                                                      f"server log has the details")
    log.info("%s refused [%s]: %s", method, error.code, error)
    await context.abort(error.status, str(error))


def _unary(method):
    """Turn refusals raised by a unary handler into their status."""
    @functools.wraps(method)
    async def handler(self, request, context):
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _refuse(context, method.__name__, exc)
    return handler


def _streaming(method):
    """The same for a response-streaming handler (an async generator)."""
    @functools.wraps(method)
    async def handler(self, request, context):
        try:
            async for item in method(self, request, context):
                yield item
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:
            await _refuse(context, method.__name__, exc)
    return handler


class GenerationService(pb_grpc.GenerationServicer):
    def __init__(self, runtime, *, call_threads: int = 8, stream_threads: int = 4):
        self.rt = runtime
        self.calls = ThreadPoolExecutor(call_threads, thread_name_prefix="takebridge-call")
        self.streams = ThreadPoolExecutor(stream_threads, thread_name_prefix="takebridge-stream")
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- plumbing ----------------------------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake this loop's watchers whenever the store records an event (from any thread)."""
        self._loop = loop
        self.rt.store.add_listener(lambda job_id: loop.call_soon_threadsafe(self._wake, job_id))

    def _wake(self, job_id: str) -> None:
        for event in self._watchers.get(job_id, ()):
            event.set()

    def wake_all(self) -> None:
        for events in self._watchers.values():
            for event in events:
                event.set()

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.calls, functools.partial(fn, *args))

    async def _stream(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.streams, functools.partial(fn, *args))

    def close(self) -> None:
        self.calls.shutdown(wait=False, cancel_futures=True)
        self.streams.shutdown(wait=False, cancel_futures=True)

    # -- calls -------------------------------------------------------------------------------
    @_unary
    async def GetCapabilities(self, request, context):
        return self.rt.capabilities()

    @_unary
    async def SubmitJob(self, request, context):
        return await self._call(self._submit, request, _client_key(request, context.peer()))

    def _submit(self, request: "pb.SubmitJobRequest", client: str = "") -> "pb.Job":
        if not request.request_id:
            raise JobError("bad_request_id", "request_id is empty; send a new UUID per request (resending it makes "
                                             "the submit idempotent)")
        bounds.check_submit(request, self.rt.limits.max_frames, self.rt.limits.max_handles)
        existing = self.rt.store.job_for_request(request.request_id)
        if existing is not None:
            if not self.rt.store.same_request(existing.job_id, request):
                raise RequestConflict(request.request_id, existing.job_id)
            return existing
        if request.promoted_from:
            self._check_promotion(request)
        backend = policies.backend_for(self.rt, request)   # decided once, stored with the job
        plan = make_plan(request, self.rt.limits, self.rt.take_dir, seed=0)
        self.rt.check_capacity(plan, backend)
        job, created = self.rt.store.create_job(request, plan.shot, backend, client)   # one transaction decides
        if created:
            log.info("queued job %s: %s of shot %r (%d frames)", job.job_id, plan.op, plan.shot, plan.take_count)
            self.rt.wake_workers()
        return job

    def _check_promotion(self, request: "pb.SubmitJobRequest") -> None:
        """"final from this draft": the draft must be a draft take of this server, the job final."""
        draft = self.rt.store.get_take(request.promoted_from)
        if draft is None:
            raise JobError("unknown_take", f"no take {request.promoted_from!r} on this server to make a final from",
                           grpc.StatusCode.NOT_FOUND)
        if draft.tier != pb.TIER_DRAFT:
            raise JobError("not_a_draft", f"take {draft.take_id} is not a draft (it is "
                                          f"{pb.Tier.Name(draft.tier).lower().replace('tier_', '') or 'final'}); a "
                                          f"final is made from a draft")
        if request.tier == pb.TIER_DRAFT:
            raise JobError("bad_tier", f"a take made from draft {draft.take_id} is the final tier; do not ask for "
                                       f"TIER_DRAFT")

    @_unary
    async def CancelJob(self, request, context):
        return await self._call(self._cancel, request.job_id)

    def _cancel(self, job_id: str) -> "pb.Job":
        job = self._job(job_id)
        if job.state == pb.CANCELLED:
            return job
        if job.state in (pb.SUCCEEDED, pb.FAILED):
            raise JobError("job_finished", f"job {job.job_id} already {pb.JobState.Name(job.state).lower()}; "
                                           f"nothing to cancel", grpc.StatusCode.FAILED_PRECONDITION)
        self.rt.store.request_cancel(job.job_id)
        if job.state == pb.QUEUED and self.rt.store.cancel_if_queued(job.job_id):
            log.info("job %s cancelled while queued", job.job_id)
        else:
            self.rt.cancel_running(job.job_id)
        return self.rt.store.get_job(job.job_id)

    @_unary
    async def GetJob(self, request, context):
        return await self._call(self._job, request.job_id)

    @_unary
    async def ListJobs(self, request, context):
        limit = bounds.check_list(request)
        jobs = await self._call(self.rt.store.list_jobs, list(request.states), request.shot, limit)
        return pb.ListJobsResponse(jobs=jobs)

    @_unary
    async def ReviewTake(self, request, context):
        bounds.check_review(request)
        return await self._call(review.review_take, self.rt, request)

    # -- event streams -----------------------------------------------------------------------
    @_streaming
    async def WatchJob(self, request, context):
        job = await self._stream(self._job, request.job_id)
        if request.after_seq < 0:
            raise JobError("out_of_range", f"after_seq is {request.after_seq}; give 0 or the last seq you saw")
        last = request.after_seq
        wake = asyncio.Event()
        self._watchers.setdefault(job.job_id, set()).add(wake)
        try:
            while True:
                wake.clear()
                events, done = await self._stream(self._events, job.job_id, last, request.include_previews)
                for event in events:
                    last = event.seq
                    yield event
                if done and not events:
                    return
                if self.rt.stopping:
                    # not a normal end: the job resumes at the next start, so the client retries
                    raise JobError("shutting_down", "the server is shutting down; watch again to resume",
                                   grpc.StatusCode.UNAVAILABLE)
                if events:
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), WATCH_POLL_S)
                except asyncio.TimeoutError:
                    pass
        finally:
            watchers = self._watchers.get(job.job_id)
            if watchers is not None:
                watchers.discard(wake)
                if not watchers:
                    self._watchers.pop(job.job_id, None)

    def _events(self, job_id: str, after: int, previews: bool) -> tuple[list, bool]:
        """(events after `after`, whether the job has ended and nothing after them remains)."""
        store = self.rt.store
        events = store.events_after(job_id, after, previews, limit=256)
        last = events[-1].seq if events else after
        done = store.get_job(job_id).state in TERMINAL and store.last_seq(job_id) <= last
        return events, done

    # -- media -------------------------------------------------------------------------------
    async def UploadMedia(self, request_iterator, context):
        try:
            return await self._upload(request_iterator)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _refuse(context, "UploadMedia", exc)

    async def _upload(self, request_iterator) -> "pb.MediaObject":
        cas_dir = self.rt.limits.cas_dir
        cas_dir.mkdir(parents=True, exist_ok=True)
        temp_root = cas_dir / paths.STAGING
        temp_root.mkdir(exist_ok=True)
        digest, size, expected, filename, first = hashlib.sha256(), 0, "", "", True
        fd, tmp = tempfile.mkstemp(prefix="upload-", dir=temp_root)
        fh = os.fdopen(fd, "wb")
        try:
            async for chunk in request_iterator:
                if first:   # name and digest come with the first chunk; checked before any byte is kept
                    first = False
                    expected, filename = chunk.sha256, chunk.filename or "media"
                    paths.component(filename, "upload file name")
                    if expected:
                        paths.digest(expected, "announced sha256")
                if chunk.offset != size:
                    raise JobError("bad_offset", f"upload chunk at offset {chunk.offset}, expected {size}; send "
                                                 f"chunks in order")
                size += len(chunk.data)
                if size > self.rt.max_upload_bytes:
                    raise JobError("upload_too_large", f"upload is over {self.rt.max_upload_bytes} bytes; use a "
                                                       f"shared disk instead", grpc.StatusCode.RESOURCE_EXHAUSTED)
                await self._call(fh.write, chunk.data)
                digest.update(chunk.data)
            if first:
                raise JobError("empty_upload", "the upload sent no chunks; send the file's bytes")
            await self._call(fh.close)
            actual = digest.hexdigest()
            if expected and expected != actual:
                raise JobError("hash_mismatch", f"upload hashes to {actual}, not the announced {expected}; upload "
                                                f"it again", grpc.StatusCode.DATA_LOSS)
            present = await self._call(cas.store_upload, self.rt.limits.cas_dir, tmp, actual, filename)
            return pb.MediaObject(sha256=actual, url=f"cas:{actual}", size=size, already_present=present)
        finally:
            if not fh.closed:
                fh.close()
            if os.path.lexists(tmp):
                paths.remove_staging(tmp, temp_root)

    @_streaming
    async def DownloadMedia(self, request, context):
        step = bounds.check_chunk_size(request.chunk_size)
        path, digest = await self._call(cas.download_target, self.rt, request)
        fd = await self._call(cas.open_download, self.rt, path)
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            offset = 0
            while True:
                data = await self._call(fh.read, step)
                if not data:
                    break
                yield pb.MediaChunk(sha256=digest, filename=path.name if offset == 0 else "", offset=offset,
                                    data=data, total_size=size)
                offset += len(data)

    def _job(self, job_id: str) -> "pb.Job":
        bounds.check_id(job_id, "job_id")
        job = self.rt.store.get_job(job_id) if job_id else None
        if job is None:
            raise JobError("unknown_job", f"no job {job_id[:128]!r} on this server; list jobs with ListJobs",
                           grpc.StatusCode.NOT_FOUND)
        return job


def _client_key(request: "pb.SubmitJobRequest", peer: str) -> str:
    """Who asks, for taking queued jobs in turn: the editor application and the machine (the
    peer's address without its port: one editor's connections share it)."""
    host = peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer
    return f"{request.client[:64]}@{host}"
