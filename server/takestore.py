"""The take store: versioned takes per shot (<shot>_v001, _v002, ...) with their media and a
JSON manifest that records how each take was made. A take is complete once its manifest exists.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
import threading
from importlib import metadata as importlib_metadata
from pathlib import Path

from google.protobuf import json_format

from bridge import files
from bridge.api import pb
from bridge.timecode import to_pb_rate
from server import faults, paths
from server.paths import sha256_of  # noqa: F401  (callers import it from here too)
from server.gates import status_and_flags
from server.jobstore import JobStore, now_ms
from server.media.probe import find_sequence
from server.jobplan import CODECS, JobPlan, RunResult

MANIFEST_SCHEMA = 1
MANIFEST_SUFFIX = ".manifest.json"
LIBRARIES = ("takebridge", "opentimelineio", "grpcio", "protobuf", "numpy", "opencv-contrib-python-headless", "av",
             "torch", "diffusers", "transformers")


def safe_name(shot: str) -> str:
    """A shot name usable as a folder and file name on every OS (server.paths.slug)."""
    return paths.slug(shot)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    try:
        import av
        versions["ffmpeg"] = ".".join(str(p) for p in av.library_versions.get("libavcodec", ()))
        versions["ffmpeg"] = "libavcodec " + versions["ffmpeg"]
    except Exception:  # informational only
        pass
    return versions


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that a crash leaves either the old file or the new one
    (bridge/files.py's write_atomic)."""
    files.write_atomic(path, text)


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def staging_root(plan: JobPlan) -> Path:
    """The shot's staging folder: the only place under a take folder the server deletes in."""
    return plan.take_dir / safe_name(plan.shot) / paths.STAGING


def staging_dir(plan: JobPlan, job_id: str) -> Path:
    return staging_root(plan) / paths.component(job_id, "job id")


def remove_staging(plan: JobPlan, job_id: str) -> None:
    paths.remove_staging(staging_dir(plan, job_id), staging_root(plan))


class TakeStore:
    def __init__(self, jobs: JobStore, device: str):
        self.jobs = jobs
        self.device = device
        self._commit_lock = threading.Lock()  # versions are allocated under it

    @staticmethod
    def sequence_hash(pattern: Path) -> str | None:
        """sha256 of an image sequence's frames in order (None when there is none)."""
        sequence = find_sequence(pattern)
        if sequence is None:
            return None
        digest = hashlib.sha256()
        for index in range(sequence.frame_count):
            digest.update(sequence.frame_path(index).read_bytes())
        return digest.hexdigest()

    def source_hash(self, path: Path) -> str | None:
        """sha256 of a source movie, read once per (path, size, mtime) rather than once per
        take; for an image sequence (a printf pattern) the hash of its frames in order."""
        if "%" in path.name:
            return self.sequence_hash(path)
        if path.is_dir():  # an image sequence given as its folder
            return sha256_of(path)
        if not path.is_file():
            return None
        stat = path.stat()
        cached = self.jobs.cached_hash(str(path), stat.st_size, stat.st_mtime_ns)
        if cached is None:
            cached = sha256_of(path)
            self.jobs.remember_hash(str(path), stat.st_size, stat.st_mtime_ns, cached)
        return cached

    def next_version(self, shot_dir: Path, shot: str) -> int:
        """The first version not taken in the database (recorded or reserved) nor by anything
        with that version's name on disk (a take, or media a crashed job left)."""
        slug = safe_name(shot)
        used = self.jobs.versions_in_use(slug)
        prefix = f"{slug}_v"
        if shot_dir.is_dir():
            for entry in shot_dir.iterdir():
                if not entry.name.startswith(prefix):
                    continue
                number = re.match(r"\d+", entry.name[len(prefix):])
                if number:
                    used.add(int(number.group()))
        version = 1
        while version in used:
            version += 1
        return version

    def remove_staging_of(self, job_id: str) -> None:
        """Remove the staging folder an interrupted attempt of a job left (its take adopted)."""
        intended = self.jobs.intended_take(job_id)
        if intended:
            root = Path(intended["take_dir"]) / intended["slug"] / paths.STAGING
            paths.remove_staging(root / paths.component(job_id, "job id"), root)

    def adopt(self, job_id: str) -> "pb.Take | None":
        """The take a job already made, when an earlier attempt of it got that far before the
        server died: recorded in the database, or complete on disk (media + a manifest naming
        this job, media hash as recorded). None when the job has no complete take yet."""
        recorded = self.jobs.take_of_job(job_id)
        if recorded is not None:
            return recorded
        intended = self.jobs.intended_take(job_id)
        if not intended:
            return None
        take = self._complete_on_disk(job_id, intended)
        if take is not None:
            self.jobs.add_take(intended["take_dir"], take, intended.get("metrics") or {})
        return take

    @staticmethod
    def _complete_on_disk(job_id: str, intended: dict) -> "pb.Take | None":
        manifest = Path(intended["manifest"])
        if not manifest.is_file():
            return None
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            take = json_format.ParseDict(data["take"], pb.Take(), ignore_unknown_fields=True)
        except (OSError, ValueError, KeyError, json_format.ParseError):
            return None
        if take.job_id != job_id or take.take_id != intended["take_id"]:
            return None
        media = Path(intended["media"])
        if not media.exists() or sha256_of(media) != take.media.sha256:
            return None
        return take

    def _reserve(self, job: "pb.Job", plan: JobPlan, shot_dir: Path, suffix: str) -> dict:
        """The job's take name: the one reserved by an earlier attempt, else the next free
        version, recorded in the job store before any media moves."""
        intended = self.jobs.intended_take(job.job_id)
        if intended and intended.get("slug") == safe_name(plan.shot) and intended.get("suffix") == suffix:
            return intended
        slug = safe_name(plan.shot)
        version = self.next_version(shot_dir, plan.shot)
        take_id = f"{slug}_v{version:03d}"
        intended = {"take_id": take_id, "version": version, "slug": slug, "suffix": suffix,
                    "take_dir": str(plan.take_dir), "media": str(shot_dir / f"{take_id}{suffix}"),
                    "manifest": str(shot_dir / f"{take_id}{MANIFEST_SUFFIX}")}
        self.jobs.set_intended_take(job.job_id, intended)
        return intended

    def reserve_early(self, job: "pb.Job", plan: JobPlan) -> str:
        """Reserve the take's name before it is made (a slate or burn-in that states its take
        must state the one it will be committed as); commit() then uses the same name."""
        shot_dir = plan.take_dir / safe_name(plan.shot)
        with self._commit_lock:
            return self._reserve(job, plan, shot_dir, CODECS[plan.codec][1])["take_id"]

    def commit(self, job: "pb.Job", plan: JobPlan, result: RunResult, backend: str, model: str) -> "pb.Take":
        """Move the staged media to its versioned name, write the manifest, record the take.

        Its status is NEEDS_REVIEW with the reasons when a quality gate flagged it, else OK;
        approval is left to a person (ReviewTake)."""
        verdict, reasons = status_and_flags(result.gates)
        status = pb.NEEDS_REVIEW if verdict == "needs_review" else pb.OK
        shot_dir = plan.take_dir / safe_name(plan.shot)
        roots = paths.Roots((plan.take_dir,))
        with self._commit_lock:
            adopted = self.adopt(job.job_id)
            if adopted is not None:
                return adopted
            shot_dir.mkdir(parents=True, exist_ok=True)
            roots.check_folder(shot_dir, "take folder")   # a symlink planted there cannot lead out
            intended = self._reserve(job, plan, shot_dir, result.staged.suffix)
            faults.point("take_reserved")
            version, take_id = intended["version"], intended["take_id"]
            media_path = self._move_media(result.staged, shot_dir, take_id, staging_root(plan))
            faults.point("media_moved")
            url = str(media_path)
            if media_path.is_dir():
                url = str(media_path / next(p.name for p in sorted(media_path.iterdir())
                                            if p.suffix in (".png", ".exr")))
                url = re.sub(r"(\d+)(\.(png|exr))$", lambda m: f"%0{len(m.group(1))}d{m.group(2)}", url)
            info = result.media
            take = pb.Take(
                take_id=take_id, job_id=job.job_id, shot=plan.shot, version=version, operation=job.operation,
                status=status, manifest_url=str(shot_dir / f"{take_id}{MANIFEST_SUFFIX}"),
                source_range=pb.FrameRange(start_frame=plan.take_start, frame_count=plan.take_count,
                                           rate=to_pb_rate(plan.rate)),
                selected_range=pb.FrameRange(start_frame=plan.selected_start, frame_count=plan.selected_count,
                                             rate=to_pb_rate(plan.rate)),
                generated_frames=plan.extend_frames, created_unix_ms=now_ms(), seed=plan.seed,
                backend=backend, model=model, flags=reasons,
                extend_side={"head": pb.HEAD, "tail": pb.TAIL}.get(plan.extend_side, pb.EXTEND_SIDE_UNSPECIFIED),
                tier=pb.TIER_DRAFT if (result.info.get("tier") or {}).get("tier") == "draft" else pb.TIER_FINAL,
                promoted_from=plan.request.promoted_from,
                media=pb.MediaInfo(url=url, codec=plan.codec, width=info.width, height=info.height,
                                   rate=to_pb_rate(info.rate), frame_count=info.frame_count,
                                   start_timecode=info.start_timecode or "", drop_frame=info.drop_frame,
                                   pixel_format=info.pix_fmt, sha256=sha256_of(media_path)))
            metrics = self.metrics(job, plan, result, take)
            write_json_atomic(Path(take.manifest_url), self.manifest(job, plan, result, take))
            faults.point("manifest_written")
            self.jobs.set_intended_take(job.job_id, {**intended, "metrics": metrics})
            self.jobs.add_take(str(plan.take_dir), take, metrics)
            faults.point("take_recorded")
        return take

    @staticmethod
    def _move_media(staged: Path, shot_dir: Path, take_id: str, staging: Path) -> Path:
        dest = shot_dir / f"{take_id}{staged.suffix}"
        if os.path.lexists(dest):
            # this job's own reserved name, left by an attempt that died before its manifest:
            # incomplete. It goes back into staging (the only place anything is deleted).
            os.replace(dest, staged.parent / f"incomplete-{take_id}{staged.suffix}")
        if staged.is_dir():
            # image sequence: rename the frames to the take id, then the folder
            for frame in sorted(staged.iterdir()):
                frame.rename(staged / frame.name.replace(staged.name, take_id, 1))
        os.replace(staged, dest)
        return dest

    def _generate_inputs(self, plan: JobPlan) -> dict:
        """A generated shot's inputs: its board or keyframes (file, frame, hash), no source media."""
        return {"media": None, "mask": None,
                "frames": [{"which": f["which"], "path": f["path"], "frame": f["frame"],
                            "sha256": self.source_hash(Path(f["path"]))} for f in plan.generate.get("frames", [])]}

    @staticmethod
    def metrics(job: "pb.Job", plan: JobPlan, result: RunResult, take: "pb.Take") -> dict:
        """What the pilot report counts, per take."""
        queue = max(0, job.started_unix_ms - job.created_unix_ms) / 1000
        return {"operation": plan.op, "backend": take.backend, "frames": take.media.frame_count,
                "generated": list(result.generated_size), "delivered": [take.media.width, take.media.height],
                "queue_wait_s": round(queue, 3), "compute_s": round(sum(result.timings.values()), 3),
                "total_s": round(max(0, now_ms() - job.created_unix_ms) / 1000, 3),
                "flagged_gates": [g.name for g in result.gates if g.flagged], "fallbacks": list(result.fallbacks),
                "status_at_creation": pb.TakeStatus.Name(take.status).lower(),
                **({"generate": {"mode": plan.generate.get("mode"), "kind": result.info.get("kind")}}
                   if plan.op == "generate" else {}),
                "tier": pb.Tier.Name(take.tier).lower().replace("tier_", ""), "promoted_from": take.promoted_from}

    def manifest(self, job: "pb.Job", plan: JobPlan, result: RunResult, take: "pb.Take") -> dict:
        request = json_format.MessageToDict(plan.request, preserving_proto_field_name=True)
        sel = plan.selection
        return {
            "takebridge_manifest": MANIFEST_SCHEMA,
            "take": json_format.MessageToDict(take, preserving_proto_field_name=True),
            "job": {"job_id": job.job_id, "request_id": job.request_id, "attempts": job.attempts,
                    "created_unix_ms": job.created_unix_ms, "started_unix_ms": job.started_unix_ms},
            "request": request,
            "operation": plan.op,
            "parameters": {"strength": plan.strength if plan.op == "refine" else None,
                           "extend_side": plan.extend_side or None, "extend_frames": plan.extend_frames,
                           "mask": plan.mask_path or None, "mask_invert": plan.mask_invert,
                           "mask_grow_pixels": plan.mask_grow},
            "seed": plan.seed,
            # what turns the seed into numbers: the classic backend draws none (it is
            # deterministic given its inputs); generative backends name their generator here
            "generator": result.info.get("generator") or "none (deterministic)",
            "backend": {"name": take.backend, "model": take.model, "device": result.device or self.device,
                        "weights_sha256": result.info.get("weights_sha256") or None},
            # where it ran, when it ran on a Ray worker: host, process, node (and what travelled to it)
            "worker": result.info.get("worker"),
            "media_transfer": result.info.get("media_transfer"),
            # what changes the bits on a GPU: versions, attention, compile, caches, quantisation, flags
            "determinism": result.info.get("determinism"),
            # draft or final: asked and made (the classic backend has one tier), steps, guidance
            "tier": {"asked": plan.tier, **(result.info.get("tier") or {"tier": "final"}),
                     "promoted_from": plan.request.promoted_from or None},
            "inputs": self._generate_inputs(plan) if plan.op == "generate" else {
                "media": {"path": str(plan.media.path), "sha256": self.source_hash(Path(plan.media.path))},
                "mask": ({"path": str(plan.mask_path), "sha256": self.source_hash(Path(plan.mask_path))}
                         if plan.mask_path else None),
            },
            "generate": ({k: v for k, v in plan.generate.items() if k != "frames"} | {
                "kind": result.info.get("kind"), "made": result.info.get("made")} if plan.op == "generate" else None),
            "source": {"clip": sel.clip_name, "shot": sel.shot, "media": None, "record_start": sel.record_start,
                       "timeline_rate": str(sel.timeline_rate), "frames": plan.take_count,
                       "take_timecode": plan.start_timecode or None,
                       "take_timecode_note": plan.timecode_note or None} if plan.op == "generate" else {
                "clip": sel.clip_name, "shot": sel.shot, "media": str(plan.media.path),
                "media_sha256": self.source_hash(Path(plan.media.path)),
                "media_rate": str(plan.media.rate), "media_frames": plan.media.frame_count,
                "media_timecode": plan.media.start_timecode,
                "take_timecode": plan.start_timecode or None,
                "take_timecode_note": plan.timecode_note or None,
                "source_range": {"start_frame": sel.source_start, "frame_count": sel.source_duration,
                                 "rate": str(sel.rate)},
                "handles": {"head": plan.head_handles, "tail": plan.tail_handles},
                "record_start": sel.record_start, "timeline_rate": str(sel.timeline_rate),
                "media_frames_read": [min(plan.media_indices), max(plan.media_indices)],
            },
            "resolution": {
                "generated": {"width": result.generated_size[0], "height": result.generated_size[1],
                              "rate": str(result.info.get("generated_fps") or plan.rate)},
                "delivered": {"width": take.media.width, "height": take.media.height, "rate": str(plan.rate)},
                "upscaled": result.generated_size != result.delivered_size,
                "processing_bit_depth": result.pixels.get("processing_bit_depth", 8),
                "source_bit_depth": plan.media.bit_depth,
                "delivered_bit_depth": result.media.bit_depth,
            },
            # how the pixels were kept: working depth, the take's format and colour tags (matched
            # to the source), which frames are the source's own samples and which were encoded
            "pixels": result.pixels,
            # an extension's hindcast: how carrying the motion on did on the shot's own last frames
            "extend": result.info.get("extend") if plan.op == "extend" else None,
            "fallbacks": list(result.fallbacks),
            "gates": [g.as_dict() for g in result.gates],
            "timings_seconds": {k: round(v, 4) for k, v in result.timings.items()},
            "queue_wait_seconds": round(max(0, job.started_unix_ms - job.created_unix_ms) / 1000, 3),
            "versions": library_versions(),
            "host": {"platform": platform.platform(), "machine": platform.machine(), "python": sys.version.split()[0]},
        }
