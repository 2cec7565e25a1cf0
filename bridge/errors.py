"""The one error root and the one table from error code to gRPC status and command-line exit code.

Every error TakeBridge raises on bad input (a timeline, a selection, a rate, an option, a
placement) is a TakeBridgeError: a machine-readable `code` and a message that names the value
and what to do. The server answers a code with STATUS[code]; the command line exits with
exit_code(code); nothing matches on message text.
"""
from __future__ import annotations

EXIT_OK, EXIT_JOB_FAILED, EXIT_BAD_INPUT, EXIT_NO_SERVER = 0, 1, 2, 3

# error code -> gRPC status name (bridge cannot import grpc everywhere it runs: the names are
# turned into grpc.StatusCode by the server and the client)
STATUS = {
    "malformed_otio": "INVALID_ARGUMENT",
    "unknown_clip": "NOT_FOUND",
    "ambiguous_clip": "INVALID_ARGUMENT",
    "no_source_range": "INVALID_ARGUMENT",
    "media_missing": "NOT_FOUND",
    "mask_missing": "NOT_FOUND",
    "media_unreadable": "INVALID_ARGUMENT",
    "range_outside_media": "INVALID_ARGUMENT",
    "mask_size_mismatch": "INVALID_ARGUMENT",
    "mask_too_short": "INVALID_ARGUMENT",
    "path_not_allowed": "PERMISSION_DENIED",
    "backend_unavailable": "FAILED_PRECONDITION",
    "too_many_frames": "INVALID_ARGUMENT",
    "bad_name": "INVALID_ARGUMENT",
    "bad_digest": "INVALID_ARGUMENT",
    "not_a_file": "INVALID_ARGUMENT",
    "not_a_folder": "INVALID_ARGUMENT",
    "bad_rate": "INVALID_ARGUMENT",
    "busy": "UNAVAILABLE",
    "unknown_color_space": "INVALID_ARGUMENT",
    "bad_color_config": "INVALID_ARGUMENT",
    "color_contradiction": "INVALID_ARGUMENT",
    "color_unavailable": "FAILED_PRECONDITION",
    "shutting_down": "UNAVAILABLE",
    "no_room": "FAILED_PRECONDITION",
    "server_unreachable": "UNAVAILABLE",
}
# gRPC status name -> exit code of the command line
_EXIT_OF_STATUS = {"UNAVAILABLE": EXIT_NO_SERVER, "DEADLINE_EXCEEDED": EXIT_NO_SERVER}


class TakeBridgeError(ValueError):
    """Bad input, with a machine-readable `code` and a message naming the value and what to do.

    Raised as TakeBridgeError(code, message), or by subclasses with a fixed `code` as
    Subclass(message)."""

    code = "bad_input"

    def __init__(self, *args: str):
        if len(args) == 2:
            self.code, message = args
        elif len(args) == 1:
            (message,) = args
        else:
            raise TypeError("TakeBridgeError(code, message) or TakeBridgeError(message)")
        super().__init__(message)


def status_name(code: str) -> str:
    """The gRPC status name a code is answered with (INVALID_ARGUMENT unless the table says)."""
    return STATUS.get(code, "INVALID_ARGUMENT")


def exit_code(code: str = "", status: str = "") -> int:
    """The command line's exit code for an error code, or for a gRPC status name a call failed with."""
    return _EXIT_OF_STATUS.get(status or status_name(code), EXIT_BAD_INPUT)
