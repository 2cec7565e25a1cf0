"""`takebridge rerender MANIFEST [--verify]`: make a take again from its manifest, here, with
no server, and say whether it came out the same.

The manifest holds the request as submitted (selection, parameters, contract), the seed the
take used, the backend and device, the input media with their sha256 and the library
versions. Re-rendering checks the inputs are still the same bytes, runs the same planner and
backend, and, with --verify, compares the new take with the stored one pixel by pixel:
identical on the same backend and device (the classic backend is deterministic), otherwise
the difference is measured and the reasons it may differ (device, versions) are listed.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
from google.protobuf import json_format

from bridge.api import pb
from server.backends.classic import ClassicBackend
from server.media import iter_frames, probe
from server.plan import Limits, make_plan
from server.generate import run_generate
from server.runner import run_plan
from server.takestore import TakeStore
from server.takestore import library_versions, sha256_of


class RerenderError(ValueError):
    pass


@dataclasses.dataclass
class Comparison:
    identical: bool
    frames: int
    frames_differing: int
    max_difference: int
    mean_difference: float
    psnr_db: float | None


def load_manifest(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RerenderError(f"manifest {path} not found") from None
    except ValueError as exc:
        raise RerenderError(f"{path} is not a TakeBridge manifest (not JSON: {exc})") from None
    if "takebridge_manifest" not in data or "request" not in data:
        raise RerenderError(f"{path} is not a TakeBridge take manifest (no request recorded)")
    return data


def rerender(manifest_path: Path, *, out_dir: Path | None = None, verify: bool = False,
             progress=None, models: Path | None = None, device: str = "auto") -> dict:
    manifest = load_manifest(manifest_path)
    inputs = manifest.get("inputs") or {"media": {"path": manifest["source"]["media"],
                                                  "sha256": manifest["source"].get("media_sha256")}}
    changed = []
    for name, value in inputs.items():
        for entry in (value if isinstance(value, list) else [value]):   # (a generated shot lists its frames)
            if not entry:
                continue
            now = _hash_of(Path(entry["path"]))
            if entry.get("sha256") and now != entry["sha256"]:
                changed.append(f"{entry.get('which', name)} {entry['path']} is not the same file any more (sha256 "
                               f"{now and now[:12]} vs {entry['sha256'][:12]} when the take was made)")
    backend_name = manifest["backend"]["name"]
    if backend_name == "classic":
        backend = ClassicBackend()
    elif backend_name == "diffusers":
        backend = _diffusers_for(manifest, models, device)
    else:
        raise RerenderError(f"the take was made by the {backend_name!r} backend, which is not available here "
                            f"(available: classic, diffusers)")
    request = json_format.ParseDict(manifest["request"], pb.SubmitJobRequest(), ignore_unknown_fields=True)
    request.contract.seed = int(manifest["seed"])
    take_info = manifest["take"]
    out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="takebridge-rerender-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    request.contract.output.take_dir = str(out_dir)
    limits = Limits(max_frames=100_000, max_extend_frames=100_000, max_handles=100_000)
    plan = make_plan(request, limits, out_dir, seed=int(manifest["seed"]))
    if plan.op == "generate":     # its slate and burn-in state the take it was
        plan.generate["take_label"] = take_info["take_id"]
    staging = out_dir / f".rerender-{take_info['take_id']}"
    run = run_generate if plan.op == "generate" else run_plan
    result = run(plan, backend, staging, progress or (lambda *a: None), threading.Event())
    dest = out_dir / f"{take_info['take_id']}_rerender{result.staged.suffix}"
    if dest.exists():
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
    shutil.move(str(result.staged), dest)
    shutil.rmtree(staging, ignore_errors=True)
    report = {
        "manifest": str(manifest_path), "take_id": take_info["take_id"], "rerender": str(dest),
        "backend": backend_name, "device_then": manifest["backend"].get("device"), "device_now": backend.device,
        "seed": int(manifest["seed"]), "inputs_changed": changed,
        "versions_changed": _version_changes(manifest.get("versions", {})),
        "gates": [g.as_dict() for g in result.gates],
        # what changes the bits (generative backends): which of those settings differ now
        "determinism_changed": _determinism_changes(manifest.get("determinism"), result.info.get("determinism")),
        "weights_changed": bool(manifest["backend"].get("weights_sha256")) and
        manifest["backend"].get("weights_sha256") != result.info.get("weights_sha256", manifest["backend"].get(
            "weights_sha256")),
    }
    if verify:
        original = take_info["media"]["url"]
        comparison = compare_media(original, str(dest))
        report["verify"] = dataclasses.asdict(comparison)
        report["verdict"] = "identical" if comparison.identical else "different"
        if dest.is_file() and Path(original).is_file():
            report["file_identical"] = sha256_of(dest) == sha256_of(Path(original))
    return report


def _diffusers_for(manifest: dict, models: Path | None, device: str):
    """The diffusers backend with the model the take was made by: from a profile (--models),
    else the catalog and the Hugging Face cache."""
    import importlib.util

    if any(importlib.util.find_spec(n) is None for n in ("torch", "diffusers")):
        raise RerenderError("the take was made by the diffusers backend; install takebridge[diffusers] to re-render it")
    from server.backends.diffusers import catalog
    from server.backends.diffusers.backend import DiffusersBackend
    from server.backends.diffusers.loading import ModelError, read_profiles

    model = manifest["backend"].get("model") or ""
    try:
        profiles = read_profiles(models) if models else [catalog.resolve(model)]
    except ModelError as err:
        raise RerenderError(f"the take was made by model {model!r}: {err}") from None
    if model not in {p.id for p in profiles}:
        raise RerenderError(f"the take was made by model {model!r}, which {models or 'the catalog'} does not have")
    if device == "auto":
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return DiffusersBackend(profiles, device)


def _determinism_changes(then: dict | None, now: dict | None) -> list[str]:
    if not then or not now:
        return []
    return [f"{key}: {then.get(key)!r} -> {now.get(key)!r}" for key in sorted(set(then) | set(now))
            if then.get(key) != now.get(key)]


def compare_media(a: str, b: str) -> Comparison:
    """Decode both and compare every pixel (frame counts must match to be identical)."""
    info_a, info_b = probe(a), probe(b)
    frames = differing = max_diff = 0
    total_sq = total_abs = 0.0
    pixels = 0
    for fa, fb in zip(iter_frames(a, rate=info_a.rate), iter_frames(b, rate=info_b.rate)):
        frames += 1
        if fa.shape != fb.shape:
            differing += 1
            max_diff = 255
            continue
        diff = np.abs(fa.astype(np.int16) - fb.astype(np.int16))
        if diff.any():
            differing += 1
            max_diff = max(max_diff, int(diff.max()))
        total_abs += float(diff.sum())
        total_sq += float((diff.astype(np.float64) ** 2).sum())
        pixels += diff.size
    count_mismatch = info_a.frame_count != info_b.frame_count
    mse = total_sq / pixels if pixels else 0.0
    psnr = None if mse == 0 else float(10 * np.log10(255 ** 2 / mse))
    return Comparison(identical=not differing and not count_mismatch, frames=frames,
                      frames_differing=differing + abs(info_a.frame_count - info_b.frame_count),
                      max_difference=max_diff, mean_difference=total_abs / pixels if pixels else 0.0, psnr_db=psnr)


def _hash_of(path: Path) -> str | None:
    if "%" in path.name:
        return TakeStore.sequence_hash(path)
    return sha256_of(path) if path.is_file() or path.is_dir() else None


def _version_changes(then: dict) -> list[str]:
    now = library_versions()
    return [f"{name} {then.get(name)} -> {now.get(name)}" for name in sorted(set(then) | set(now))
            if then.get(name) != now.get(name)]
