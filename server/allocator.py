"""Keep the server's memory flat over long jobs.

glibc's malloc raises its mmap threshold on its own (up to 32 MiB) once a large block has been
freed; frame-sized buffers (a few MB each) then come from the heap instead of their own
mappings, and the heap fragments and grows with a job's length. Measured with
bench/bench_memory.py on a 1080p inpaint: 1.72 GB at 150 frames and growing, against a flat
1.42 / 1.43 GB at 150 / 300 frames with the threshold fixed. A fixed threshold returns every
frame buffer to the system when it is freed.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("takebridge.server")
M_MMAP_THRESHOLD = -3          # mallopt parameter (glibc malloc.h)
FRAME_BUFFER_THRESHOLD = 1 << 20


def fix_mmap_threshold(size: int = FRAME_BUFFER_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at `size` bytes; False (and nothing done) elsewhere."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        done = bool(libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(size)))
    except (OSError, AttributeError):
        return False
    if done:
        log.debug("malloc mmap threshold fixed at %d bytes", size)
    return done
