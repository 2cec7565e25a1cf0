"""The one small protocol every backend implements: run(op, frames, spec, progress, cancel).

Frames are numpy arrays (N, H, W, 3) RGB in timeline order: uint8, or uint16 (0..65535) for
deep sources when the backend says it takes them (`deep = True`; others get 8 bits). A backend
returns frames of the same size and depth; the server's conform/composite step turns them into
the take. A backend that can work over a bounded window of frames also offers stream() (see
StreamingBackend): the server then never holds a whole range in memory.
"""
from __future__ import annotations

import dataclasses
import threading
from fractions import Fraction
from typing import Callable, Optional, Protocol

import numpy as np

OPERATIONS = ("refine", "extend", "inpaint", "generate")


class Cancelled(Exception):
    """Raised by a backend that saw the cancel flag; the job ends CANCELLED, not FAILED."""


class BackendError(Exception):
    """A failure the user can act on; `code` is machine-readable, the message says what to do."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass
class Spec:
    """What the backend is asked to do, beyond the frames themselves."""

    op: str                                  # one of OPERATIONS
    rate: Fraction                           # frames per second of `frames`
    seed: int = 0
    # refine
    strength: float = 0.5                    # 0 = unchanged .. 1 = strongest
    # extend
    extend_side: str = "tail"                # "tail" | "head"
    extend_frames: int = 0                   # frames to generate
    # inpaint: (N, H, W) bool, True = regenerate; same N as frames
    mask: Optional[np.ndarray] = None
    # generative backends only
    prompt: str = ""
    negative_prompt: str = ""
    model: str = ""
    reference_images: list = dataclasses.field(default_factory=list)  # (H, W, 3) uint8 RGB each
    steps_scale: float = 1.0                 # generative backends: share of the profile's steps (DEGRADE)
    color: object = None                     # generative backends: server.color.ColorTransform, or None
    # generate: mode ("text" | "image" | "keyframes" | "references"), camera, camera_amount, frames,
    # width, height, shot, take, duration; `frames` given to run() are the keyframes (0, 1 or 2)
    generate: dict = dataclasses.field(default_factory=dict)
    scratch: object = None                   # a folder the backend may write work files in (the job's staging)
    tier: str = "final"                      # generative backends: "draft" = the model's few-step tier
    # filled by the backend: what it really did (model, generated size/fps, generator) for the manifest
    info: dict = dataclasses.field(default_factory=dict)


# progress(done, total, preview) — preview is an RGB frame (H, W, 3) uint8 or None.
ProgressFn = Callable[[int, int, Optional[np.ndarray]], None]


class Backend(Protocol):
    name: str
    device: str

    def operations(self) -> tuple[str, ...]: ...

    def run(self, op: str, frames: np.ndarray, spec: Spec, progress: ProgressFn,
            cancel: threading.Event) -> np.ndarray:
        """Return generated frames.

        refine / inpaint: (N, H, W, 3), one per input frame.
        extend: (spec.extend_frames, H, W, 3), the new frames only, in timeline order
        (for a head extension: the frames that come before frames[0], earliest first).
        generate: `frames` are the keyframes at the shot's size (none, the board, or first and
        last); returns (spec.generate["frames"], height, width, 3) uint8, and says in
        spec.info["kind"] ("animatic", "slate" or "model") and ["made"] what it made.
        Must check `cancel.is_set()` at least once per frame and raise Cancelled.
        Same frames + same spec (incl. seed) -> identical output.
        """
        ...


class StreamingBackend(Backend, Protocol):
    def stream(self, op: str, frames, masks, spec: Spec, progress: ProgressFn, cancel: threading.Event,
               total: int):
        """Like run() for refine and inpaint, over iterators: `frames` yields the N input frames
        one by one, `masks` (inpaint) their masks; yields the N output frames in order, holding
        only a bounded window of frames. `total` is N."""
        ...

    def extend_context(self) -> int:
        """How many frames at the extended edge run("extend", ...) needs (fewer is fine)."""
        ...
