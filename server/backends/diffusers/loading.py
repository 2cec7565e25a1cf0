"""Model profiles and safe loading of diffusers pipelines from local folders.

A profile file (JSON) lists the models a server may use:

    {"schema": 1, "models": [{
        "id": "wan-vace-1.3b", "pipeline": "wan_vace", "folder": "/models/Wan2.1-VACE-1.3B-diffusers",
        "operations": ["inpaint", "extend"], "native_size": [832, 480], "size_multiple": 16,
        "native_fps": 16, "frame_rule": "4k+1", "max_frames": 81, "steps": 30, "guidance_scale": 5.0,
        "dtype": "bfloat16", "vae_dtype": "float32", "memory_gb": 24,
        "weights_sha256": "...", "speed": {"attention_backend": "_native_cudnn", "compile": true,
                                           "cache": {"kind": "first_block", "threshold": 0.05}}}]}

Folders are relative to the profile file. Loading is local only (`local_files_only`),
safetensors only (`use_safetensors`); a folder holding a pickle checkpoint (.bin, .pt, .pth,
.ckpt, .pkl) or code (.py, `auto_map`, a custom pipeline class) is refused before anything is
read. Pipelines stay loaded between jobs and the least recently used are unloaded when
another needs the memory.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from ..base import BackendError

log = logging.getLogger("takebridge.models")

PIPELINES = {  # profile name -> diffusers class
    "wan_vace": "WanVACEPipeline",
    "wan_v2v": "WanVideoToVideoPipeline",
    "wan_t2v": "WanPipeline",                  # text-to-video (Generate from a prompt)
    "wan_i2v": "WanImageToVideoPipeline",      # image-to-video (Generate from a board)
    "wan_flf2v": "WanImageToVideoPipeline",    # first-last-frame-to-video (Generate between two shots)
    "ltx_condition": "LTXConditionPipeline",
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
CODE_SUFFIXES = (".py", ".pyc", ".so")
FRAME_RULES = {"4k+1": 4, "8k+1": 8}


class ModelError(BackendError):
    """A model that cannot be used, and what to do about it (a job using it fails with `code`)."""


@dataclasses.dataclass
class ModelProfile:
    id: str
    pipeline: str
    folder: Path
    operations: tuple[str, ...]
    native_size: tuple[int, int]          # (width, height) the model was trained at
    size_multiple: int                    # width and height must be multiples of this
    native_fps: float
    frame_rule: str                       # "4k+1" | "8k+1"
    max_frames: int                       # longest chunk the model takes
    steps: int = 30
    guidance_scale: float = 5.0
    dtype: str = "bfloat16"
    vae_dtype: str = "float32"
    memory_gb: float = 0.0                # resident estimate with the profile's options
    weights_sha256: str = ""
    speed: dict = dataclasses.field(default_factory=dict)
    overlap_frames: int = 8               # frames shared by consecutive chunks of a long range
    cost_per_megapixel_frame_step: float = 0.0   # compute estimate for budgets (seconds; 0 = unknown)
    # the draft tier: few steps, no CFG ({"steps": 4, "guidance_scale": 1.0}); {} = no draft tier
    draft: dict = dataclasses.field(default_factory=dict)
    # one job on several devices: {"devices": N, "method": "ulysses" | "ring"} (context parallelism
    # of the transformer, diffusers' own; run by a group of N Ray workers, docs/cluster.md); {} = one device
    parallel: dict = dataclasses.field(default_factory=dict)

    @property
    def devices(self) -> int:
        """Devices one job of this model runs on (1 without `parallel`)."""
        return int(self.parallel.get("devices", 1)) if self.parallel else 1

    @property
    def frame_step(self) -> int:
        return FRAME_RULES[self.frame_rule]


def read_profiles(path: Path) -> list[ModelProfile]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError("no_profile", f"model profile {path} not found; make one (see docs/models.md) or "
                                       f"`takebridge models make-tiny DIR` for test models") from None
    except ValueError as exc:
        raise ModelError("bad_profile", f"model profile {path} is not JSON: {exc}") from None
    profiles = []
    for entry in data.get("models", []):
        try:
            entry = dict(entry)
            folder = Path(os.path.expanduser(entry.pop("folder")))
            entry.pop("note", None)
            profile = ModelProfile(folder=folder if folder.is_absolute() else path.parent / folder, **{
                **entry, "operations": tuple(entry["operations"]), "native_size": tuple(entry["native_size"])})
        except (KeyError, TypeError) as exc:
            raise ModelError("bad_profile", f"model profile {path}: entry {entry.get('id', '?')!r} is incomplete "
                                            f"or has an unknown field ({exc})") from None
        if profile.pipeline not in PIPELINES:
            raise ModelError("bad_profile", f"model {profile.id!r}: pipeline {profile.pipeline!r} is not one of "
                                            f"{', '.join(PIPELINES)}")
        if profile.frame_rule not in FRAME_RULES:
            raise ModelError("bad_profile", f"model {profile.id!r}: frame_rule {profile.frame_rule!r} is not "
                                            f"4k+1 or 8k+1")
        check_parallel(profile)
        profiles.append(profile)
    return profiles


PARALLEL_METHODS = ("ulysses", "ring")


def check_parallel(profile: ModelProfile) -> None:
    """A profile's `parallel` section, refused with what to write when it is not usable."""
    spec = profile.parallel
    if not spec:
        return
    devices, method = spec.get("devices"), spec.get("method", "ulysses")
    if not isinstance(devices, int) or isinstance(devices, bool) or not 1 <= devices <= 64:
        raise ModelError("bad_profile", f"model {profile.id!r}: parallel.devices {devices!r} is not a whole number "
                                        f"from 1 to 64 (the devices one job runs on)")
    if method not in PARALLEL_METHODS:
        raise ModelError("bad_profile", f"model {profile.id!r}: parallel.method {method!r} is not ulysses or ring")
    if set(spec) - {"devices", "method"}:
        raise ModelError("bad_profile", f"model {profile.id!r}: parallel has unknown field(s) "
                                        f"{', '.join(sorted(set(spec) - {'devices', 'method'}))}; it takes devices "
                                        f"and method")
    if profile.pipeline not in CONTEXT_PARALLEL_PIPELINES:
        raise ModelError("bad_profile", f"model {profile.id!r}: pipeline {profile.pipeline} has no context-parallel "
                                        f"plan here; parallel works for {', '.join(CONTEXT_PARALLEL_PIPELINES)}")


def check_folder(profile: ModelProfile) -> None:
    """Refuse, before reading a byte of it, a model folder with pickle checkpoints or code."""
    folder = profile.folder
    if not folder.is_dir():
        raise ModelError("model_missing", f"model {profile.id!r}: folder {folder} not found; download the weights "
                                          f"there or fix the profile")
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise ModelError("unsafe_weights", f"model {profile.id!r}: {path.relative_to(folder)} is a pickle "
                                               f"checkpoint, which can run code when loaded; TakeBridge loads "
                                               f"safetensors only — convert it or remove it")
        if path.suffix.lower() in CODE_SUFFIXES:
            raise ModelError("remote_code", f"model {profile.id!r}: {path.relative_to(folder)} is code shipped with "
                                            f"the model; TakeBridge never runs model code — remove it")
        if path.name.endswith(".json") and path.stat().st_size < 1_000_000:
            try:
                data = json.loads(path.read_text())
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(data, dict) and "auto_map" in data:
                raise ModelError("remote_code", f"model {profile.id!r}: {path.relative_to(folder)} asks for custom "
                                                f"code (auto_map); TakeBridge never runs model code")
            if path.name == "model_index.json":
                expected = PIPELINES[profile.pipeline]
                if data.get("_class_name") != expected:
                    raise ModelError("wrong_pipeline", f"model {profile.id!r}: {folder} holds a "
                                                       f"{data.get('_class_name')!r}, the profile says {expected}")
                for name, value in data.items():
                    if isinstance(value, list) and value and value[0] not in (None, "diffusers", "transformers"):
                        raise ModelError("remote_code", f"model {profile.id!r}: component {name!r} comes from "
                                                        f"{value[0]!r}, not diffusers or transformers")
    if not any(folder.rglob("*.safetensors")):
        raise ModelError("unsafe_weights", f"model {profile.id!r}: no .safetensors weights in {folder}")


def weights_hash(folder: Path) -> str:
    """sha256 over every safetensors file (path and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*.safetensors")):
        digest.update(str(path.relative_to(folder)).encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def verify(profile: ModelProfile) -> dict:
    """Safety checks and the weights hash against the profile's; never raises for a mismatch."""
    try:
        check_folder(profile)
    except ModelError as err:
        return {"id": profile.id, "ok": False, "problem": str(err), "code": err.code}
    actual = weights_hash(profile.folder)
    ok = not profile.weights_sha256 or actual == profile.weights_sha256
    return {"id": profile.id, "ok": ok, "weights_sha256": actual,
            "problem": "" if ok else f"weights changed: sha256 {actual[:12]}…, profile says "
                                     f"{profile.weights_sha256[:12]}…"}


def _dtype(name: str):
    import torch

    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]
    except KeyError:
        raise ModelError("bad_profile", f"dtype {name!r} is not bfloat16, float16 or float32") from None


def load_pipeline(profile: ModelProfile, device: str):
    """The profile's pipeline from its local folder (checked first), on `device`."""
    import diffusers

    check_folder(profile)
    cls = getattr(diffusers, PIPELINES[profile.pipeline])
    dtype = _dtype(profile.dtype)
    pipe = cls.from_pretrained(str(profile.folder), dtype=dtype, local_files_only=True,
                               use_safetensors=True)
    if profile.vae_dtype != profile.dtype:
        pipe.vae.to(_dtype(profile.vae_dtype))
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    pipe.takebridge_speed = apply_speed_options(pipe, profile, device)   # what was switched on, for manifests
    pipe.takebridge_parallel = apply_parallel(pipe, profile, device)
    return pipe


# pipelines whose transformer has a context-parallel plan in diffusers (`_cp_plan`): the Wan pipelines on
# WanTransformer3DModel (the tests run wan_v2v split). VACE's transformer has no plan; LTX's has one
# that has not run split here, so it is not offered.
CONTEXT_PARALLEL_PIPELINES = ("wan_v2v", "wan_t2v", "wan_i2v", "wan_flf2v")


def apply_parallel(pipe, profile: ModelProfile, device: str) -> dict:
    """Split the transformer's attention over the process group this worker is in (diffusers'
    context parallelism: Ulysses or ring attention over `parallel.devices` ranks). Every rank
    runs the same call with the same inputs and seed; each computes its share of the sequence.
    Outside a group (a local server, a one-device worker) the model runs whole on this device.
    Returns what was applied, for the manifest."""
    if profile.devices < 2:
        return {}
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        log.info("model %s asks for %d devices but this worker is not in a group: it runs on one", profile.id,
                 profile.devices)
        return {"devices": 1, "asked": profile.devices, "note": "not in a device group: ran on one device"}
    world = dist.get_world_size()
    if world != profile.devices:
        raise ModelError("wrong_group", f"model {profile.id!r} asks for {profile.devices} devices and this worker's "
                                        f"group has {world}; give the model a group of its own size")
    heads = getattr(pipe.transformer.config, "num_attention_heads", None)
    method = profile.parallel.get("method", "ulysses")
    if method == "ulysses" and heads and heads % world:
        raise ModelError("bad_profile", f"model {profile.id!r}: Ulysses attention splits the {heads} attention heads "
                                        f"over {world} devices, which needs a number of devices that divides {heads}; "
                                        f"use method ring or parallel.devices dividing {heads}")
    from diffusers import ContextParallelConfig

    config = ContextParallelConfig(**{f"{method}_degree": world})
    if device.startswith("cuda"):
        pipe.transformer.enable_parallelism(config=config)
    else:
        # diffusers places rank r on accelerator r % count, and a CPU process counts none; its
        # mesh itself is fine on the CPU (gloo). One device per process, said for that call only.
        count = torch.accelerator.device_count
        torch.accelerator.device_count = lambda: 1
        try:
            pipe.transformer.enable_parallelism(config=config)
        finally:
            torch.accelerator.device_count = count
    return {"devices": world, "method": method, "rank": dist.get_rank(), "backend": dist.get_backend()}


def apply_speed_options(pipe, profile: ModelProfile, device: str) -> list[str]:
    """Switches from the profile's `speed` section; returns what was applied."""
    applied = []
    speed = profile.speed or {}
    backend = speed.get("attention_backend")
    if backend:
        if profile.pipeline == "ltx_condition":  # cross-attention has a mask: self-attention only
            for block in pipe.transformer.transformer_blocks:
                block.attn1.set_attention_backend(backend)
        else:
            pipe.transformer.set_attention_backend(backend)
        applied.append(f"attention {backend}")
    cache = speed.get("cache")
    if cache:
        from diffusers import FirstBlockCacheConfig, TaylorSeerCacheConfig

        kind = cache.get("kind")
        if profile.pipeline == "wan_v2v":
            raise ModelError("bad_profile", f"model {profile.id!r}: cache hooks need a cache context that "
                                            f"WanVideoToVideoPipeline does not open; remove speed.cache")
        config = {"first_block": lambda: FirstBlockCacheConfig(threshold=cache.get("threshold", 0.05)),
                  "taylorseer": lambda: TaylorSeerCacheConfig(cache_interval=cache.get("interval", 5))}.get(kind)
        if config is None:
            raise ModelError("bad_profile", f"model {profile.id!r}: cache kind {kind!r} is not first_block or "
                                            f"taylorseer")
        pipe.transformer.enable_cache(config())
        applied.append(f"cache {kind}")
    if speed.get("vae_tiling"):
        pipe.vae.enable_tiling()
        applied.append("vae tiling")
    if speed.get("group_offload") and device.startswith("cuda"):
        import torch

        pipe.transformer.enable_group_offload(onload_device=torch.device(device), offload_type="block_level",
                                              num_blocks_per_group=int(speed.get("group_offload")), use_stream=True)
        applied.append("group offload")
    if speed.get("compile") and device.startswith("cuda"):
        pipe.transformer.compile_repeated_blocks(fullgraph=True)
        applied.append("regional compile")
    return applied


class PipelineCache:
    """Loaded pipelines kept warm between jobs, least recently used unloaded first when the
    next one would not fit in `budget_gb` (the profiles' memory estimates)."""

    def __init__(self, device: str, budget_gb: float):
        self.device = device
        self.budget_gb = budget_gb
        self._loaded: OrderedDict[str, tuple[ModelProfile, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, profile: ModelProfile):
        with self._lock:
            if profile.id in self._loaded:
                self._loaded.move_to_end(profile.id)
                return self._loaded[profile.id][1]
            while self._loaded and self.used_gb() + profile.memory_gb > self.budget_gb:
                old_id, _ = self._loaded.popitem(last=False)
                log.info("unloaded model %s to make room for %s", old_id, profile.id)
                free_device_memory(self.device)
            log.info("loading model %s from %s", profile.id, profile.folder)
            pipe = load_pipeline(profile, self.device)
            self._loaded[profile.id] = (profile, pipe)
            return pipe

    def used_gb(self) -> float:
        return sum(p.memory_gb for p, _ in self._loaded.values())

    def loaded(self) -> list[str]:
        return list(self._loaded)

    def clear(self) -> None:
        with self._lock:
            self._loaded.clear()
            free_device_memory(self.device)


DETERMINISTIC_WORKSPACE = ":4096:8"   # cuBLAS workspace that makes its GEMMs repeatable (CUDA docs)


def set_deterministic() -> list[str]:
    """What `takebridge serve --deterministic` switches on, before any CUDA work: deterministic
    algorithms (an op without one fails rather than varies), cuDNN deterministic and not
    benchmarking, no TF32, cuBLAS' fixed workspace. Slower (typically 10-30 %); returned as
    stated in every manifest."""
    import torch

    os.environ["CUBLAS_WORKSPACE_CONFIG"] = DETERMINISTIC_WORKSPACE
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return ["deterministic algorithms", "cudnn deterministic, no benchmark", "no TF32",
            f"CUBLAS_WORKSPACE_CONFIG={DETERMINISTIC_WORKSPACE}"]


def determinism_of(pipe, profile: ModelProfile, device: str) -> dict:
    """Everything that changes the bits a pipeline makes on this machine (the manifest records
    it; `rerender --verify` says which of these differ when a re-render is not bit-exact)."""
    import torch

    cuda = device.startswith("cuda") and torch.cuda.is_available()
    speed = profile.speed or {}
    return {
        "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device": torch.cuda.get_device_name(torch.device(device)) if cuda else "cpu",
        "dtype": profile.dtype, "vae_dtype": profile.vae_dtype,
        "attention_backend": speed.get("attention_backend") or "default (scaled_dot_product_attention)",
        "compile": bool(speed.get("compile")) and cuda, "cache": speed.get("cache") or None,
        "quantization": speed.get("quantization") or None, "vae_tiling": bool(speed.get("vae_tiling")),
        "group_offload": speed.get("group_offload") or None,
        "speed_applied": list(getattr(pipe, "takebridge_speed", []) or []),
        "parallel": {k: v for k, v in (getattr(pipe, "takebridge_parallel", None) or {}).items() if k != "rank"} or None,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "tf32": {"matmul": bool(torch.backends.cuda.matmul.allow_tf32), "cudnn": bool(torch.backends.cudnn.allow_tf32)},
        "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def free_device_memory(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
