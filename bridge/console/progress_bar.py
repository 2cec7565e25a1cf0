"""A one-line terminal progress bar for waits (job progress, demo steps); silent when stderr is
not a terminal unless asked, so logs and --json output stay clean."""
from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, label: str, *, stream=None, enabled: bool | None = None, width: int = 28):
        self.label, self.width = label, width
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._last_line = ""
        self._started = time.monotonic()

    def update(self, fraction: float, detail: str = "", eta_seconds: float = -1.0) -> None:
        if not self.enabled:
            return
        fraction = max(0.0, min(1.0, fraction))
        filled = int(round(self.width * fraction))
        eta = f" ETA {eta_seconds:4.0f}s" if eta_seconds >= 0 else ""
        line = f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}% {detail}{eta}"
        if line != self._last_line:
            self.stream.write(line.ljust(len(self._last_line)))
            self.stream.flush()
            self._last_line = line

    def close(self, message: str = "") -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self._started
        self.stream.write(f"\r{self.label} {message} ({elapsed:.1f}s)".ljust(len(self._last_line)) + "\n")
        self.stream.flush()
