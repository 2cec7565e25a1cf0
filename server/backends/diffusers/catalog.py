"""The models TakeBridge knows by name, and where their weights are.

`takebridge serve --backend diffusers --model wan2.1-vace-1.3b` needs no profile file: the
catalog says what the model does (operations, native size, fps, frame rule, steps, memory) and
which Hugging Face repository holds it; the weights are found in the Hugging Face cache
(`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`: `models--ORG--NAME/
snapshots/REVISION/`) or in a folder given with `--model-dir`. `takebridge models pull ID`
downloads them (safetensors and configs only; resumable; hashes checked). A profile file
(`--models`) still overrides everything, and `TAKEBRIDGE_CATALOG` (a JSON file of more entries,
in the same form) adds a studio's own models.

Revisions: an entry's `revision` is a branch or a commit. Pulling records the commit the
branch pointed at (the Hugging Face cache's own `refs/`), and loading uses exactly that
snapshot; `models list` shows it. The manifest of every take records the weights' hash.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from .loading import PIPELINES, ModelError, ModelProfile

# only what the pipelines load: configs, tokenizers, safetensors (never pickles, never code)
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*", "spiece*"]


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    id: str
    repo: str                      # Hugging Face repository "org/name"
    revision: str                  # branch or commit
    pipeline: str
    operations: tuple[str, ...]
    native_size: tuple[int, int]
    native_fps: float
    frame_rule: str
    max_frames: int
    steps: int
    guidance_scale: float
    memory_gb: float               # resident, bf16, at the native size (estimate; the GPU run refines it)
    licence: str
    size_multiple: int = 16
    dtype: str = "bfloat16"
    vae_dtype: str = "float32"
    note: str = ""
    # the draft tier: fewer steps, no classifier-free guidance (a step-distillation LoRA is not wired yet)
    draft: dict = dataclasses.field(default_factory=lambda: {"steps": 8, "guidance_scale": 1.0})

    def profile(self, folder: Path, weights_sha256: str = "") -> ModelProfile:
        return ModelProfile(id=self.id, pipeline=self.pipeline, folder=Path(folder), operations=self.operations,
                            native_size=self.native_size, size_multiple=self.size_multiple,
                            native_fps=self.native_fps, frame_rule=self.frame_rule, max_frames=self.max_frames,
                            steps=self.steps, guidance_scale=self.guidance_scale, dtype=self.dtype,
                            vae_dtype=self.vae_dtype, memory_gb=self.memory_gb, weights_sha256=weights_sha256,
                            draft=dict(self.draft))


_WAN_LICENCE = "Apache-2.0 (Wan-AI); generated content is the user's responsibility under the licence's terms"
_LTX_LICENCE = "Lightricks' LTX-Video licence (the repository's LICENSE): check its terms for commercial use"

CATALOG: dict[str, CatalogEntry] = {e.id: e for e in (
    CatalogEntry("wan2.1-vace-1.3b", "Wan-AI/Wan2.1-VACE-1.3B-diffusers", "main", "wan_vace",
                 ("inpaint", "extend", "generate"), (832, 480), 16, "4k+1", 81, 30, 5.0, 12.0, _WAN_LICENCE),
    CatalogEntry("wan2.1-vace-14b", "Wan-AI/Wan2.1-VACE-14B-diffusers", "main", "wan_vace",
                 ("inpaint", "extend", "generate"), (1280, 720), 16, "4k+1", 81, 30, 5.0, 40.0, _WAN_LICENCE),
    CatalogEntry("wan2.1-t2v-1.3b", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "main", "wan_t2v",
                 ("generate",), (832, 480), 16, "4k+1", 81, 30, 5.0, 10.0, _WAN_LICENCE),
    CatalogEntry("wan2.1-v2v-1.3b", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "main", "wan_v2v",
                 ("refine",), (832, 480), 16, "4k+1", 81, 30, 5.0, 10.0, _WAN_LICENCE,
                 note="the text-to-video weights, loaded as video-to-video"),
    CatalogEntry("wan2.1-i2v-14b-480p", "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", "main", "wan_i2v",
                 ("generate",), (832, 480), 16, "4k+1", 81, 40, 5.0, 40.0, _WAN_LICENCE),
    CatalogEntry("wan2.1-flf2v-14b-720p", "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers", "main", "wan_flf2v",
                 ("generate",), (1280, 720), 16, "4k+1", 81, 40, 5.0, 40.0, _WAN_LICENCE),
    CatalogEntry("wan2.2-ti2v-5b", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", "main", "wan_t2v",
                 ("generate",), (1280, 704), 24, "4k+1", 121, 50, 5.0, 24.0, _WAN_LICENCE, size_multiple=32,
                 note="text-to-video here (its image-to-video path is not wired yet)"),
    CatalogEntry("ltx-video-0.9.5", "Lightricks/LTX-Video-0.9.5", "main", "ltx_condition",
                 ("refine", "extend", "generate"), (768, 512), 24, "8k+1", 121, 30, 3.0, 18.0, _LTX_LICENCE,
                 size_multiple=32, vae_dtype="bfloat16"),
)}


def catalog() -> dict[str, CatalogEntry]:
    """The built-in catalog plus the entries of TAKEBRIDGE_CATALOG (a JSON file), if set."""
    entries = dict(CATALOG)
    extra = os.environ.get("TAKEBRIDGE_CATALOG")
    if extra:
        entries.update(read_catalog(Path(extra)))
    return entries


def read_catalog(path: Path) -> dict[str, CatalogEntry]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelError("bad_catalog", f"model catalog {path} cannot be read: {exc}") from None
    entries = {}
    for item in data.get("models", []):
        try:
            entry = CatalogEntry(**{**item, "operations": tuple(item["operations"]),
                                    "native_size": tuple(item["native_size"])})
        except (KeyError, TypeError) as exc:
            raise ModelError("bad_catalog", f"model catalog {path}: entry {item.get('id', '?')!r} is incomplete "
                                            f"or has an unknown field ({exc})") from None
        if entry.pipeline not in PIPELINES:
            raise ModelError("bad_catalog", f"model catalog {path}: {entry.id!r} has pipeline {entry.pipeline!r}, "
                                            f"not one of {', '.join(PIPELINES)}")
        entries[entry.id] = entry
    return entries


def entry(model_id: str) -> CatalogEntry:
    known = catalog()
    if model_id not in known:
        raise ModelError("unknown_model", f"no model {model_id!r} in the catalog; known: {', '.join(sorted(known))} "
                                          f"(or describe it in a profile: --models PROFILE.json)")
    return known[model_id]


def hub_cache() -> Path:
    """Where Hugging Face keeps downloaded repositories."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    return home / "hub"


def repo_folder(repo: str, cache: Path | None = None) -> Path:
    return (cache or hub_cache()) / f"models--{repo.replace('/', '--')}"


def installed_snapshot(item: CatalogEntry, cache: Path | None = None) -> Path | None:
    """The snapshot folder of the entry's revision in the cache (a commit, or what a branch
    points at in refs/), when it is there."""
    folder = repo_folder(item.repo, cache)
    revision = item.revision
    ref = folder / "refs" / revision
    if ref.is_file():
        revision = ref.read_text().strip()
    snapshot = folder / "snapshots" / revision
    return snapshot if (snapshot / "model_index.json").is_file() else None


def resolve(model_id: str, *, model_dir: Path | None = None, cache: Path | None = None) -> ModelProfile:
    """The profile of a catalog model whose weights are installed (in `model_dir`, else the
    Hugging Face cache); refused with the pull command when they are not."""
    item = entry(model_id)
    folder = Path(model_dir) if model_dir else installed_snapshot(item, cache)
    if folder is None or not (folder / "model_index.json").is_file():
        where = model_dir or repo_folder(item.repo, cache)
        raise ModelError("model_missing", f"model {model_id!r} is not installed (looked in {where}); get it with "
                                          f"`takebridge models pull {model_id}` (about {item.memory_gb:.0f} GB of "
                                          f"weights), or give its folder with --model-dir")
    return item.profile(folder, snapshot_identity(folder))


def snapshot_identity(folder: Path) -> str:
    """The weights' hash for the manifest: from the blob names of a Hugging Face snapshot (each
    is its file's SHA-256, checked at pull), else over the safetensors' contents."""
    files = sorted(Path(folder).rglob("*.safetensors"))
    blobs = [(str(f.relative_to(folder)), f.resolve().name) for f in files]
    if blobs and all(len(name) == 64 for _, name in blobs):
        return hashlib.sha256("\n".join(f"{rel} {name}" for rel, name in blobs).encode()).hexdigest()
    from .loading import weights_hash
    return weights_hash(Path(folder))


def verify_snapshot(folder: Path) -> list[str]:
    """Files of a Hugging Face snapshot whose content does not match the hash the cache names
    them by (large files are stored as blobs named by their SHA-256); [] when all match."""
    bad = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_symlink() and not path.is_file():
            continue
        target = path.resolve()
        name = target.name
        if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
            digest = hashlib.sha256()
            with open(target, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != name:
                bad.append(str(path.relative_to(folder)))
    return bad


def pull_plan(model_id: str, cache: Path | None = None) -> dict:
    """What `models pull` will fetch: repository, revision, files, destination."""
    item = entry(model_id)
    return {"id": item.id, "repo": item.repo, "revision": item.revision, "allow_patterns": list(ALLOW_PATTERNS),
            "cache": str(cache or hub_cache()), "destination": str(repo_folder(item.repo, cache)),
            "installed": installed_snapshot(item, cache) is not None, "memory_gb": item.memory_gb,
            "licence": item.licence}


def pull(model_id: str, cache: Path | None = None) -> Path:
    """Download the entry's safetensors and configs at its revision into the Hugging Face cache
    (resumable: what is there is kept), then check every file against its hash. Returns the snapshot."""
    from huggingface_hub import snapshot_download

    item = entry(model_id)
    try:
        folder = Path(snapshot_download(item.repo, revision=item.revision, allow_patterns=ALLOW_PATTERNS,
                                        cache_dir=str(cache) if cache else None))
    except Exception as exc:   # offline, a missing repo, a gated one: one line, the cache left as it was
        raise ModelError("pull_failed", f"cannot download {item.repo} ({item.revision}) for {model_id!r}: "
                                        f"{' '.join(str(exc).split())[:240]}") from None
    bad = verify_snapshot(folder)
    if bad:
        raise ModelError("bad_weights", f"{model_id!r}: {bad[0]} does not match its hash"
                                        f"{f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''}; run the pull "
                                        f"again to fetch it anew")
    return folder
