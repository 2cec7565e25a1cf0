"""Server assembly: the runtime (store, workers, limits, backends) and the gRPC server around it,
with health checking, reflection, loopback by default and TLS + token for anything else.
"""
from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import ipaddress
import logging
import os
import tempfile
import threading
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

import bridge
from bridge.api import names, pb, pb_grpc
from server.allocator import fix_mmap_threshold
from server.backends.classic import ClassicBackend
from server.backends.diffusers.backend import DiffusersBackend
from server.backends.diffusers import catalog
from server.backends.diffusers.loading import ModelError, read_profiles
from server.errors import ConfigError, JobError  # noqa: F401  (ConfigError: server.app.ConfigError for callers)
from server.jobstore import DB_NAME, JobStore
from server.otio_guard import SelectionReader
from server.plan import CODECS, Limits
from server.service import GenerationService
from server.takestore import TakeStore, library_versions
from server.worker import Worker

log = logging.getLogger("takebridge.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Generation"].full_name
OP_ENUM = {name: names.operation_value(name) for name in names.OPERATIONS}
# what an unavailable backend would offer: the diffusers backend has no Generate pipelines yet
UNAVAILABLE_OPERATIONS = ("refine", "extend", "inpaint")
MAX_MESSAGE_BYTES = 16 << 20      # a 4 MiB selection or a 4 MiB upload chunk, with room to spare
MAX_CONCURRENT_RPCS = 1024        # beyond this a call is refused RESOURCE_EXHAUSTED, not queued forever


@dataclasses.dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50151
    store: Path = Path("takebridge_store")
    backend: str = "classic"
    allow: tuple[Path, ...] = ()          # folders media may be read from / takes written to
    tls_cert: Path | None = None
    tls_key: Path | None = None
    token: str = ""
    max_frames: int = 1000
    max_upload_bytes: int = 8 << 30
    compute_budget: float = 0.0           # seconds of compute for all jobs together (0: no limit)
    models: Path | None = None            # model profile (JSON) for the diffusers backend
    model: tuple[str, ...] = ()           # catalog models by name (server.backends.diffusers.catalog)
    model_dir: Path | None = None         # the weights' folder for a single --model (else the HF cache)
    deterministic: bool = False           # torch's deterministic settings for the diffusers backend (slower)
    ray: str | None = None                # run jobs on Ray: "local" (a cluster of this process), "auto" or an address
    ray_workers: int = 2                  # Ray actors (CPU slots) the front sends jobs to
    ray_worker_memory_gb: float = 0.0     # what one Ray worker may use for a job (0: its device's; CPU: no limit)
    ray_shared_storage: bool = True       # False: workers do not see the front's disk (inputs and takes travel)
    device: str = "auto"                  # diffusers device: auto (cuda if there is one), cuda, cpu


def _diffusers_backend(config: ServerConfig):
    """(the diffusers backend, None) when a model profile is given and torch + diffusers are
    installed, else (None, why not)."""
    if config.models is None and not config.model:
        return None, ("no model: start the server with --model ID (takebridge models list) or --models "
                      "PROFILE.json (see docs/models.md)")

    missing = [name for name in ("torch", "diffusers", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        return None, f"{', '.join(missing)} not installed; install takebridge[diffusers]"
    import torch

    try:
        profiles = read_profiles(config.models) if config.models is not None else []
        if config.model_dir is not None and len(config.model) != 1:
            raise ConfigError("--model-dir holds one model's weights: give exactly one --model with it")
        named = {p.id for p in profiles}     # a profile's entry of the same id wins over the catalog
        profiles += [catalog.resolve(model_id, model_dir=config.model_dir) for model_id in config.model
                     if model_id not in named]
    except ModelError as err:
        raise ConfigError(str(err)) from None
    if config.deterministic:
        from server.backends.diffusers.loading import set_deterministic
        set_deterministic()
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: this machine has no CUDA GPU; use --device cpu (slow) or auto")
    return DiffusersBackend(profiles, device), ""


def default_allowed_roots(store: Path) -> tuple[Path, ...]:
    """Without --allow: the user's home, the temp folder, the working folder and the store."""
    roots = {Path.home(), Path(tempfile.gettempdir()), Path.cwd(), store}
    return tuple(sorted({Path(os.path.realpath(r)) for r in roots}))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Runtime:
    """Everything the service and the workers share."""

    def __init__(self, config: ServerConfig):
        self.config = config
        config.store.mkdir(parents=True, exist_ok=True)
        self.store_dir = Path(os.path.realpath(config.store))
        self.take_dir = self.store_dir / "takes"
        allowed = tuple(Path(os.path.realpath(a)) for a in config.allow) or default_allowed_roots(self.store_dir)
        if self.store_dir not in allowed and not any(r in self.store_dir.parents for r in allowed):
            allowed += (self.store_dir,)
        # untrusted selections are read in child processes: an OTIO crash cannot end the server
        self.selection_reader = SelectionReader()
        self.limits = Limits(max_frames=config.max_frames, allowed_roots=allowed, cas_dir=self.store_dir / "media",
                             compute_budget_s=config.compute_budget, read_selection=self.selection_reader)
        self.max_upload_bytes = config.max_upload_bytes
        self.store = JobStore(str(self.store_dir / DB_NAME))
        self.backends = {"classic": ClassicBackend()}
        self.unavailable = {}
        generative, reason = _diffusers_backend(config)
        if generative is not None:
            self.backends["diffusers"] = generative
        else:
            self.unavailable["diffusers"] = reason
        if config.backend not in self.backends:
            raise ConfigError(f"backend {config.backend!r} is not available here; choose one of "
                              f"{', '.join(self.backends)}" + (f" ({reason})" if config.backend == "diffusers" else ""))
        self.default_backend = config.backend
        self.takes = TakeStore(self.store, device="cpu")
        by_device: dict[str, dict] = {}
        for name, backend in self.backends.items():   # one worker per device, one job at a time on it
            by_device.setdefault(backend.device, {})[name] = backend
        if config.ray is not None:
            from server import ray_cluster
            self.workers = ray_cluster.start(self, config.ray, config.ray_workers,
                                             str(config.models) if config.models else None, config.device,
                                             config.ray_worker_memory_gb, config.ray_shared_storage)
        else:
            self.workers = [Worker(self, device, backends) for device, backends in by_device.items()]
        self.stopping = False

    def start(self) -> list[str]:
        resumed, failed = self.store.requeue_interrupted()
        for job_id in resumed:
            log.info("job %s was running when the server stopped; queued again", job_id)
        for job_id in failed:
            log.warning("job %s was running at each of the last server stops; marked failed", job_id)
        for worker in self.workers:
            worker.start()
        return resumed

    def stop(self) -> None:
        self.stopping = True
        for worker in self.workers:
            worker.stop()
        for worker in self.workers:
            if worker.ident is not None:
                worker.join(timeout=10)
        self.selection_reader.close()
        self.store.close()
        if self.config.ray is not None:
            from server import ray_cluster
            ray_cluster.stop()

    def wake_workers(self) -> None:
        for worker in self.workers:
            worker.wake.set()

    def cancel_running(self, job_id: str) -> None:
        for worker in self.workers:
            worker.cancel(job_id)

    def budget_left(self) -> float:
        """Seconds of the server-wide compute budget left (inf without one)."""
        if not self.limits.compute_budget_s:
            return float("inf")
        return self.limits.compute_budget_s - self.store.compute_seconds_used()

    def backend_names(self) -> list[str]:
        return [*self.backends, *self.unavailable]

    def unavailable_reason(self, name: str) -> str:
        return self.unavailable.get(name, "")

    def capabilities(self) -> "pb.Capabilities":
        caps = pb.Capabilities(
            server_version=bridge.__version__, api_version="takebridge.v1", default_backend=self.default_backend,
            codecs=list(CODECS), max_frames=self.limits.max_frames, max_handles=self.limits.max_handles,
            versions=library_versions(), allowed_media_roots=[str(r) for r in self.limits.allowed_roots],
            max_upload_bytes=self.max_upload_bytes)
        for name, backend in self.backends.items():
            caps.backends.add(name=name, available=True, device=backend.device,
                              operations=[OP_ENUM[o] for o in backend.operations()])
        for name, reason in self.unavailable.items():
            caps.backends.add(name=name, available=False, unavailable_reason=reason,
                              operations=[OP_ENUM[o] for o in UNAVAILABLE_OPERATIONS])
        for worker in self.workers:
            caps.workers.add(**worker.info())
        return caps

    def check_capacity(self, plan, backend_name: str) -> None:
        """Refuse at submit a generative job no worker could ever run, with the numbers."""
        generative = self.backends.get(backend_name)
        limit = self.config.ray_worker_memory_gb if self.config.ray is not None else 0.0
        if backend_name != "diffusers" or generative is None or not limit:
            return
        from server.backends.diffusers import conform
        try:
            profile = generative.model_for(plan.op, plan.request.model)
        except Exception as err:   # an unknown model: refused now, with the backend's own words
            raise JobError(getattr(err, "code", "unknown_model"), str(err)) from None
        size = conform.model_size(plan.media.width, plan.media.height, tuple(profile.native_size),
                                  profile.size_multiple)
        frames = min(profile.max_frames, plan.take_count)
        need = generative.memory_estimate_gb(profile, size, frames)
        if need > limit:
            raise JobError("no_worker_fits", f"model {profile.id} needs about {need:.2f} GB at {size[0]}x{size[1]} x "
                                             f"{frames} frames and the largest worker has {limit:.2f} GB; select "
                                             f"fewer frames, a smaller model, or add a worker with more memory")


class _TokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without `authorization: Bearer <token>` (health checks stay open)."""

    def __init__(self, token: str):
        self.expected = f"Bearer {token}"

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if details.method.startswith("/grpc.health.v1.Health/") or handler is None:
            return handler
        if dict(details.invocation_metadata).get("authorization") == self.expected:
            return handler
        return _denying(handler)


def _denying(handler):
    """A handler of the same kind as `handler` that answers UNAUTHENTICATED."""
    async def deny(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token; pass the server's --token")

    async def deny_stream(request, context):
        await deny(request, context)
        yield  # pragma: no cover - never reached: abort raises

    kinds = {(False, False): grpc.unary_unary_rpc_method_handler, (True, False): grpc.stream_unary_rpc_method_handler,
             (False, True): grpc.unary_stream_rpc_method_handler, (True, True): grpc.stream_stream_rpc_method_handler}
    make = kinds[(handler.request_streaming, handler.response_streaming)]
    return make(deny_stream if handler.response_streaming else deny,
                request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)


def check_security(config: ServerConfig) -> None:
    if is_loopback(config.host):
        return
    missing = [name for name, value in (("--tls-cert", config.tls_cert), ("--tls-key", config.tls_key),
                                        ("--token", config.token)) if not value]
    if missing:
        raise ConfigError(f"refusing to listen on {config.host}, which is not loopback, without "
                          f"{', '.join(missing)}: anyone on the network could read your media. Use "
                          f"--host 127.0.0.1, or give TLS and a token")


class _Undecodable:
    """What a request that is not a valid message deserializes to (then refused by _DecodeGuard)."""

    def __init__(self, error: Exception):
        self.error = error


def _tolerant(deserializer):
    def parse(data: bytes):
        try:
            return deserializer(data)
        except Exception as err:   # DecodeError, bad UTF-8 in a string field, ...
            return _Undecodable(err)
    return parse


async def _refuse_undecodable(context, request) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"the request is not a valid takebridge.v1 message ({str(request.error)[:200]}); send it "
                        f"with the generated stubs (bridge.client)")


class _DecodeGuard(grpc.aio.ServerInterceptor):
    """Requests whose bytes are not a valid message are answered INVALID_ARGUMENT (grpc.aio's
    own answer to a failed deserialization is UNKNOWN)."""

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or not details.method.startswith(f"/{SERVICE_NAME}/"):
            return handler
        parse = _tolerant(handler.request_deserializer)
        common = dict(request_deserializer=parse, response_serializer=handler.response_serializer)
        if handler.unary_unary:
            behaviour = handler.unary_unary

            async def unary(request, context):
                if isinstance(request, _Undecodable):
                    await _refuse_undecodable(context, request)
                return await behaviour(request, context)
            return grpc.unary_unary_rpc_method_handler(unary, **common)
        if handler.unary_stream:
            behaviour_stream = handler.unary_stream

            async def unary_stream(request, context):
                if isinstance(request, _Undecodable):
                    await _refuse_undecodable(context, request)
                async for item in behaviour_stream(request, context):
                    yield item
            return grpc.unary_stream_rpc_method_handler(unary_stream, **common)
        if handler.stream_unary:
            behaviour_upload = handler.stream_unary

            async def stream_unary(requests, context):
                async def checked():
                    async for request in requests:
                        if isinstance(request, _Undecodable):
                            await _refuse_undecodable(context, request)
                        yield request
                return await behaviour_upload(checked(), context)
            return grpc.stream_unary_rpc_method_handler(stream_unary, **common)
        return handler


class GrpcServer:
    """The grpc.aio server on an event loop of its own (a thread), so the server can be started
    and stopped from plain code: the CLI, tests, an editor add-on's helper."""

    def __init__(self, runtime: "Runtime", config: ServerConfig):
        self.runtime, self.config = runtime, config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="takebridge-grpc", daemon=True)
        self.thread.start()
        self.service = GenerationService(runtime)
        self.server: grpc.aio.Server | None = None

    def start(self) -> int:
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()

    async def _start(self) -> int:
        config = self.config
        interceptors = ([_TokenInterceptor(config.token)] if config.token else []) + [_DecodeGuard()]
        self.server = grpc.aio.server(interceptors=interceptors, maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
                                      options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                               ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
        self.service.attach(self.loop)
        pb_grpc.add_GenerationServicer_to_server(self.service, self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.server)
        address = f"{config.host}:{config.port}" if ":" not in config.host else f"[{config.host}]:{config.port}"
        try:
            if config.tls_cert:
                creds = grpc.ssl_server_credentials([(Path(config.tls_key).read_bytes(),
                                                      Path(config.tls_cert).read_bytes())])
                port = self.server.add_secure_port(address, creds)
            else:
                port = self.server.add_insecure_port(address)
        except RuntimeError:
            port = 0
        if port == 0:
            raise ConfigError(f"cannot listen on {address}: the port is in use or the address is not local; "
                              f"choose another --port")
        await self.server.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return port

    def stop(self, grace: float) -> None:
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.service.wake_all)
            asyncio.run_coroutine_threadsafe(self.server.stop(grace), self.loop).result(timeout=grace + 10)
        self.service.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def build_server(config: ServerConfig) -> tuple[GrpcServer, Runtime, int]:
    """A started gRPC server and its runtime; port 0 picks a free port (returned)."""
    check_security(config)
    fix_mmap_threshold()   # frame buffers go back to the system when freed: memory stays flat
    runtime = Runtime(config)
    server = GrpcServer(runtime, config)
    try:
        port = server.start()
    except BaseException:
        server.stop(0)
        runtime.stop()
        raise
    runtime.start()
    return server, runtime, port


def shutdown(server: GrpcServer, runtime: Runtime, grace: float = 2.0) -> None:
    runtime.stopping = True
    server.stop(grace)
    runtime.stop()
