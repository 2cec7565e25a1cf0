"""gRPC client of the generation server, for add-ons, scripts and the CLI.

watch() follows a job's events and, after a dropped connection or a server restart, resumes
from the last event it saw, so a caller never loses or repeats an event.
"""
from __future__ import annotations

import hashlib
import os
import time
import uuid
from typing import Callable, Iterator, Optional

import grpc

from . import files
from .api import pb, pb_grpc
from .errors import exit_code

TERMINAL_STATES = (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED)
CHUNK_SIZE = 1 << 20
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class ClientError(RuntimeError):
    """A call failed; the message is the server's (or why the server could not be reached)."""

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None):
        super().__init__(message)
        self.code = code

    @property
    def exit_code(self) -> int:
        """The command line's exit code for this failure (bridge/errors.py's table)."""
        return exit_code(status=self.code.name if self.code is not None else "")


def new_request_id() -> str:
    return uuid.uuid4().hex


class GenerationClient:
    def __init__(self, address: str, *, token: str = "", root_certificates: bytes | None = None,
                 connect_timeout: float = 10.0):
        self.address = address
        self.connect_timeout = connect_timeout
        options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
        if root_certificates is not None:
            creds = grpc.ssl_channel_credentials(root_certificates)
            if token:
                creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
            self._channel = grpc.secure_channel(address, creds, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token and root_certificates is None else ()
        self.stub = pb_grpc.GenerationStub(self._channel)
        self._connected = False

    def _ensure_connected(self) -> None:
        """Wait up to connect_timeout for the server, once; a clear error when nobody answers
        (instead of a call that hangs until its own deadline)."""
        if self._connected:
            return
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.connect_timeout)
        except grpc.FutureTimeoutError:
            raise ClientError(f"cannot reach the TakeBridge server at {self.address} (no answer within "
                              f"{self.connect_timeout:g} s); start it with `takebridge serve` or check the address",
                              grpc.StatusCode.UNAVAILABLE) from None
        self._connected = True

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- unary calls -------------------------------------------------------------------------
    def _call(self, method, request, timeout: float = 30.0):
        self._ensure_connected()
        try:
            return method(request, timeout=timeout, metadata=self._metadata, wait_for_ready=True)
        except grpc.RpcError as err:
            raise ClientError(_describe(err, self.address), err.code()) from None

    def capabilities(self) -> "pb.Capabilities":
        return self._call(self.stub.GetCapabilities, pb.GetCapabilitiesRequest(), timeout=self.connect_timeout)

    def submit(self, request: "pb.SubmitJobRequest") -> "pb.Job":
        if not request.request_id:
            request.request_id = new_request_id()
        return self._call(self.stub.SubmitJob, request)

    def get_job(self, job_id: str) -> "pb.Job":
        return self._call(self.stub.GetJob, pb.GetJobRequest(job_id=job_id))

    def list_jobs(self, **kwargs) -> list["pb.Job"]:
        return list(self._call(self.stub.ListJobs, pb.ListJobsRequest(**kwargs)).jobs)

    def cancel(self, job_id: str) -> "pb.Job":
        return self._call(self.stub.CancelJob, pb.CancelJobRequest(job_id=job_id))

    def review(self, take_id: str, approve: bool, note: str = "", reviewer: str = "") -> "pb.Take":
        return self._call(self.stub.ReviewTake, pb.ReviewTakeRequest(
            take_id=take_id, approve=approve, note=note, reviewer=reviewer or os.environ.get("USER", "")))

    # -- progress ----------------------------------------------------------------------------
    def watch(self, job_id: str, *, after_seq: int = 0, include_previews: bool = False,
              reconnect_timeout: float = 60.0) -> Iterator["pb.JobEvent"]:
        """Yield the job's events until it ends; reconnect and resume on a dropped stream."""
        last = after_seq
        down_since = None
        while True:
            request = pb.WatchJobRequest(job_id=job_id, after_seq=last, include_previews=include_previews)
            try:
                # no wait_for_ready: a server that is down answers UNAVAILABLE at once and the
                # loop below decides how long to keep trying
                for event in self.stub.WatchJob(request, metadata=self._metadata):
                    down_since = None
                    last = event.seq
                    yield event
                return  # the server ends the stream once the job is over
            except grpc.RpcError as err:
                if err.code() not in RETRYABLE:
                    raise ClientError(_describe(err, self.address), err.code()) from None
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > reconnect_timeout:
                    raise ClientError(f"lost the server at {self.address} for over {reconnect_timeout:.0f} s "
                                      f"while following job {job_id}; it is still in the server's store — "
                                      f"watch it again when the server is back", err.code()) from None
                time.sleep(0.5)

    def wait(self, job_id: str, on_event: Callable[["pb.JobEvent"], None] | None = None,
             **watch_args) -> "pb.Job":
        for event in self.watch(job_id, **watch_args):
            if on_event:
                on_event(event)
        return self.get_job(job_id)

    # -- media transfer ----------------------------------------------------------------------
    def upload(self, path: str) -> "pb.MediaObject":
        """Send a file to the server's content-addressed store; returns its "cas:" url."""
        digest = _sha256_file(path)
        size = os.path.getsize(path)

        def chunks():
            with open(path, "rb") as fh:
                offset = 0
                while True:
                    data = fh.read(CHUNK_SIZE)
                    if not data and offset:
                        return
                    yield pb.MediaChunk(sha256=digest, filename=os.path.basename(path) if offset == 0 else "",
                                        offset=offset, data=data, total_size=size)
                    offset += len(data)
                    if not data:
                        return
        try:
            return self.stub.UploadMedia(chunks(), metadata=self._metadata, timeout=600, wait_for_ready=True)
        except grpc.RpcError as err:
            raise ClientError(_describe(err, self.address), err.code()) from None

    def download(self, dest: str, *, sha256: str = "", take_id: str = "") -> str:
        """Fetch media by hash or a take's media into `dest` (atomic; verified against sha256)."""
        request = pb.DownloadMediaRequest(sha256=sha256) if sha256 else pb.DownloadMediaRequest(take_id=take_id)
        digest = hashlib.sha256()
        expected = ""
        try:
            with files.replacing(dest) as tmp, open(tmp, "wb") as fh:   # a failed download leaves nothing
                for chunk in self.stub.DownloadMedia(request, metadata=self._metadata, timeout=600):
                    expected = expected or chunk.sha256
                    fh.write(chunk.data)
                    digest.update(chunk.data)
                fh.flush()
                if expected and digest.hexdigest() != expected:
                    raise ClientError(f"download of {sha256 or take_id} was corrupted (sha256 mismatch); try again")
        except grpc.RpcError as err:
            raise ClientError(_describe(err, self.address), err.code()) from None
        return dest


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(err: grpc.RpcError, address: str) -> str:
    if err.code() == grpc.StatusCode.UNAVAILABLE:
        return (f"cannot reach the TakeBridge server at {address} ({err.details()}); "
                f"start it with `takebridge serve` or check the address")
    return f"{err.code().name}: {err.details()}"
