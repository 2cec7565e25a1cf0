"""What every command of the `takebridge` command line shares (the client commands here in
bridge/console/, the server's in server/cli*.py): the error that ends a command with
its exit code (bridge/errors.py's table), reading and writing timelines, and printing a result
as text or --json. The commands' modules import this, never each other."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import EXIT_BAD_INPUT, EXIT_JOB_FAILED, EXIT_NO_SERVER, EXIT_OK  # noqa: F401  (re-exported)
from ..interchange import InterchangeError
from ..interchange import read_timeline as read_any
from ..interchange import write_timeline as write_any
from ..selection import SelectionError

DEFAULT_ADDRESS = "127.0.0.1:50151"


class CliError(Exception):
    """Ends a command: the message for the user, and the exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


def read_timeline(path: Path):
    """Any supported timeline format (takes restored from a sidecar), or a clear CliError."""
    if not path.exists():
        raise CliError(f"timeline {path} not found")
    try:
        return read_any(path)
    except (InterchangeError, SelectionError) as err:
        raise CliError(str(err))


def write_timeline(timeline, path: Path) -> None:
    """Write in the format of the extension, atomically: a crash never leaves a half-written
    timeline under the real name."""
    try:
        write_any(timeline, path)
    except InterchangeError as err:
        raise CliError(str(err))


def emit(args, data: dict, text: str) -> None:
    """One JSON object with --json, else the text."""
    if args.json:
        print(json.dumps(data))
    else:
        print(text)
