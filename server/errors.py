"""Errors a job or a request can end with: a machine-readable code, a message the user can act
on, and the gRPC status the service answers with."""
from __future__ import annotations

import grpc

from bridge.errors import STATUS


class JobError(Exception):
    def __init__(self, code: str, message: str, status: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT):
        super().__init__(message)
        self.code = code
        self.status = status


# error code -> gRPC status, for errors raised by bridge/ and server.media (bridge/errors.py's table)
STATUS_OF = {code: getattr(grpc.StatusCode, name) for code, name in STATUS.items()}


def from_exception(exc: Exception) -> JobError:
    """Wrap a bridge SelectionError / media MediaError (anything with .code) as a JobError."""
    if isinstance(exc, JobError):
        return exc
    code = getattr(exc, "code", None) or "bad_input"
    return JobError(code, str(exc), STATUS_OF.get(code, grpc.StatusCode.INVALID_ARGUMENT))


class ConfigError(ValueError):
    """The server's configuration cannot work (a flag, a profile, a cluster); said before it starts."""
