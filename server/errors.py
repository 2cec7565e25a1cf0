"""Errors a job or a request can end with: a machine-readable code, a message the user can act
on, and the gRPC status the service answers with."""
from __future__ import annotations

import grpc


class JobError(Exception):
    def __init__(self, code: str, message: str, status: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT):
        super().__init__(message)
        self.code = code
        self.status = status


# error code -> gRPC status, for errors raised by bridge/ and server.media
STATUS_OF = {
    "malformed_otio": grpc.StatusCode.INVALID_ARGUMENT,
    "unknown_clip": grpc.StatusCode.NOT_FOUND,
    "ambiguous_clip": grpc.StatusCode.INVALID_ARGUMENT,
    "no_source_range": grpc.StatusCode.INVALID_ARGUMENT,
    "media_missing": grpc.StatusCode.NOT_FOUND,
    "mask_missing": grpc.StatusCode.NOT_FOUND,
    "media_unreadable": grpc.StatusCode.INVALID_ARGUMENT,
    "range_outside_media": grpc.StatusCode.INVALID_ARGUMENT,
    "mask_size_mismatch": grpc.StatusCode.INVALID_ARGUMENT,
    "mask_too_short": grpc.StatusCode.INVALID_ARGUMENT,
    "path_not_allowed": grpc.StatusCode.PERMISSION_DENIED,
    "backend_unavailable": grpc.StatusCode.FAILED_PRECONDITION,
    "too_many_frames": grpc.StatusCode.INVALID_ARGUMENT,
    "bad_name": grpc.StatusCode.INVALID_ARGUMENT,
    "bad_digest": grpc.StatusCode.INVALID_ARGUMENT,
    "not_a_file": grpc.StatusCode.INVALID_ARGUMENT,
    "not_a_folder": grpc.StatusCode.INVALID_ARGUMENT,
    "bad_rate": grpc.StatusCode.INVALID_ARGUMENT,
    "busy": grpc.StatusCode.UNAVAILABLE,
    "unknown_color_space": grpc.StatusCode.INVALID_ARGUMENT,
    "bad_color_config": grpc.StatusCode.INVALID_ARGUMENT,
    "color_contradiction": grpc.StatusCode.INVALID_ARGUMENT,
    "color_unavailable": grpc.StatusCode.FAILED_PRECONDITION,
    "shutting_down": grpc.StatusCode.UNAVAILABLE,
}


def from_exception(exc: Exception) -> JobError:
    """Wrap a bridge SelectionError / media MediaError (anything with .code) as a JobError."""
    if isinstance(exc, JobError):
        return exc
    code = getattr(exc, "code", None) or "bad_input"
    return JobError(code, str(exc), STATUS_OF.get(code, grpc.StatusCode.INVALID_ARGUMENT))
