"""Crash points for the kill-at-every-stage tests.

`point(name)` does nothing unless the environment variable TAKEBRIDGE_CRASH_AT names that point
(comma-separated names allowed); then the server process sends itself SIGKILL right there, as an
operator's `kill -9` or the OOM killer would. The tests start a real `takebridge serve` with it
set, then restart the server without it and check what the store holds. Nothing in normal
operation sets the variable.
"""
from __future__ import annotations

import os
import signal

ENV = "TAKEBRIDGE_CRASH_AT"
POINTS = ("job_started", "decoded", "generated", "encoded", "take_reserved", "media_moved", "manifest_written",
          "take_recorded")


def point(name: str) -> None:
    wanted = os.environ.get(ENV)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
