"""What a job is and what running it makes: the JobPlan a request becomes (server.plan checks
and builds it; server.generate for GENERATE), the limits it is checked against, and the
RunResult a run leaves for the take store. Below server.plan, server.runner and
server.generate, so they can share these without importing each other.
"""
from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path
from typing import Callable

import grpc

from bridge.api import pb
from bridge.selection import Selection
from server import paths
from server.errors import JobError
from server.media import MediaInfo
from server.otio_guard import read_in_process

OP_NAMES = {pb.REFINE: "refine", pb.EXTEND: "extend", pb.INPAINT: "inpaint", pb.GENERATE: "generate"}
CODECS = {  # codec -> (media.encode name, file suffix; "" = a folder)
    pb.PRORES_422_HQ: ("prores", ".mov"),
    pb.FFV1: ("ffv1", ".mkv"),
    pb.PNG_SEQUENCE: ("png", ""),
    pb.H264_PROXY: ("h264", ".mp4"),
    pb.EXR_SEQUENCE: ("exr", ""),
    pb.DNXHR: ("dnxhr", ".mov"),
}
DEFAULT_CONTEXT_FRAMES = 16


@dataclasses.dataclass
class Limits:
    """Server-side limits and the places it may read and write."""

    max_frames: int = 1000
    max_handles: int = 48
    max_extend_frames: int = 500
    allowed_roots: tuple[Path, ...] = ()
    cas_dir: Path = Path("media")   # where UploadMedia keeps objects ("cas:<sha256>" urls)
    compute_budget_s: float = 0.0   # the server's compute budget over all jobs (0: none)
    # estimated compute cost, seconds per megapixel-frame, per backend and operation (classic:
    # measured by bench/bench_classic.py on a 2-core VM, rounded up)
    costs: dict = dataclasses.field(default_factory=lambda: {
        "classic": {"refine": 0.12, "extend": 0.03, "inpaint": 0.03, "generate": 0.02}})
    # selection_otio text -> Selection; the server reads untrusted selections in a child process
    # (server.otio_guard.SelectionReader), tools on a user's own files in process
    read_selection: Callable[[str], Selection] = read_in_process

    @property
    def roots(self) -> paths.Roots:
        return paths.Roots(self.allowed_roots)

    def estimate_seconds(self, backend: str, plan: "JobPlan") -> float:
        """Expected compute seconds of a plan (used to decide before spending it)."""
        per = self.costs.get(backend, {}).get(plan.op, 0.0)
        megapixels = plan.media.width * plan.media.height * plan.scale ** 2 / 1e6
        return per * megapixels * (plan.read_count + plan.extend_frames)

    def check_path(self, path: str, what: str) -> Path:
        """The real path of `path` when it lies under an allowed root (existence not looked at)."""
        return self.roots.check(path, what)


@dataclasses.dataclass
class JobPlan:
    request: "pb.SubmitJobRequest"
    op: str
    selection: Selection
    media: MediaInfo
    rate: Fraction                  # the take's rate: the clip's source rate
    read_start: int                 # first source frame read (clip source coordinates)
    media_indices: list[int]        # media frame index of every frame read
    take_start: int                 # take source range, clip source coordinates
    take_count: int
    head_handles: int
    tail_handles: int
    extend_side: str = ""
    extend_frames: int = 0
    strength: float = 0.5
    mask_path: str = ""
    mask_first: int = 0             # mask frame of the first frame read
    mask_invert: bool = False
    mask_grow: int = 0
    mask_grid: tuple = (1, 1)      # the chroma grid the mask was aligned to (2, 1 for 4:2:2)
    color: object = None           # server.color.ColorTransform when the contract states a colour space
    codec: int = pb.PRORES_422_HQ
    take_dir: Path = Path(".")
    seed: int = 0
    start_timecode: str = ""
    timecode_note: str = ""        # why the take has no timecode, when it has none
    drop_frame: bool = False
    scale: float = 1.0              # < 1: processed smaller and upscaled (the DEGRADE fallback)
    feather: int = 0                # inpaint: soft edge inside the mask, pixels
    steps_scale: float = 1.0        # generative backends: share of the denoising steps (DEGRADE)
    reference_paths: list = dataclasses.field(default_factory=list)  # contract reference images
    fallbacks: list = dataclasses.field(default_factory=list)   # what happened instead of what was asked
    generate: dict = dataclasses.field(default_factory=dict)    # GENERATE: mode, camera, keyframes (server.generate)
    tier: str = "final"             # asked: "draft" (a model's few-step tier) or "final"

    @property
    def read_count(self) -> int:
        return len(self.media_indices)

    @property
    def selected_start(self) -> int:
        """First frame the selection asked for (an extension's new head frames included)."""
        start = self.selection.source_start
        return start - self.extend_frames if self.extend_side == "head" else start

    @property
    def selected_count(self) -> int:
        return self.selection.source_duration + self.extend_frames

    @property
    def shot(self) -> str:
        return self.selection.shot


@dataclasses.dataclass
class RunResult:
    staged: Path                 # the encoded take, in the staging folder
    media: MediaInfo
    timings: dict[str, float]    # seconds per stage
    generated_size: tuple[int, int]
    delivered_size: tuple[int, int]
    fallbacks: list[str]
    gates: list = dataclasses.field(default_factory=list)   # server.gates.Gate, in order
    device: str = "cpu"
    info: dict = dataclasses.field(default_factory=dict)    # what the backend reported (model, fps, generator)
    pixels: dict = dataclasses.field(default_factory=dict)  # depth, delivery format, colour, untouched frames


def resolve_media_url(url: str, cas_dir: Path) -> str:
    """'cas:<sha256>' (after UploadMedia) -> the stored file's path; other urls unchanged."""
    if not url.startswith("cas:"):
        return url
    return str(cas_object(cas_dir, paths.digest(url[4:], "media url cas: digest")))


def cas_object(cas_dir: Path, digest: str) -> Path:
    """The stored file of an uploaded object: the one regular file (not a link) in its folder."""
    folder = cas_dir / paths.digest(digest)
    files = []
    if folder.is_dir() and not folder.is_symlink():
        files = sorted(p for p in folder.iterdir() if not p.is_symlink() and p.is_file())
    if not files or not paths.is_under(files[0], os.path.realpath(cas_dir)):
        raise JobError("media_missing", f"no uploaded media with sha256 {digest}; upload it first",
                       grpc.StatusCode.NOT_FOUND)
    return files[0]
