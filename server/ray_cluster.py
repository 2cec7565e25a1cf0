"""`takebridge serve --ray [local|auto|ADDRESS]`: join (or start) the Ray cluster, start its
workers (server.ray_workers; device groups, server.ray_parallel) and check them: the address
answers, the versions are the front's, a model's device group fits on a node. See docs/cluster.md."""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from server.errors import ConfigError
from server.ray_workers import JobActor, RayWorker

log = logging.getLogger("takebridge.ray")


def start(runtime, address: str, workers: int, models: str | None, device: str,
          memory_gb: float = 0.0, shared: bool = True) -> list[RayWorker]:
    """Join (or start, `local`) a Ray cluster, start the actors and their front threads. A model
    whose profile asks for several devices gets device groups (server.ray_parallel); one asking
    for more than the cluster's largest node has is refused here, with the numbers."""
    import ray

    generative = runtime.backends.get("diffusers")     # (the front read the profiles already)
    profiles = list(generative.profiles.values()) if generative is not None else []
    devices = max((p.devices for p in profiles), default=1)
    if len({p.devices for p in profiles if p.devices > 1}) > 1:
        raise ConfigError("the models ask for device groups of different sizes (" + ", ".join(
            f"{p.id}: {p.devices}" for p in profiles if p.devices > 1) + "); one server runs groups of one size: "
            "give them the same parallel.devices, or serve them from two servers")
    # a cluster of this machine runs this checkout; the nodes of another have TakeBridge installed
    local = {"PYTHONPATH": os.pathsep.join(p for p in (_root(), os.environ.get("PYTHONPATH", "")) if p)} \
        if address in ("", "local") else {}
    if not ray.is_initialized():
        if local:
            ray.init(num_cpus=max(1, workers * devices), include_dashboard=False, log_to_driver=False,
                     configure_logging=False, runtime_env={"env_vars": local})
        else:
            _check_reachable(address)
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except ConnectionError as err:
                raise ConfigError(f"--ray {address}: no Ray cluster found ({err}); start one with `ray start --head` "
                                  f"and give its address (docs/cluster.md); the server did not start") from None
    gpu = 1 if models and device.startswith("cuda") else 0
    # one CPU each, and its numeric libraries held to it before they load (their thread pools would
    # otherwise take every core, and two workers on two cores run no faster than one)
    threads = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    options = dict(num_cpus=1, num_gpus=gpu, max_restarts=-1, max_task_retries=0, max_concurrency=4,
                   runtime_env={"env_vars": {**threads, **local}})
    if devices > 1:
        from server import ray_parallel

        largest, node = ray_parallel.largest_node(device)
        split = {p.id for p in profiles if p.devices > 1}
        if devices > largest:
            ask = max(profiles, key=lambda p: p.devices)
            stop()
            raise ConfigError(f"model {ask.id} asks for {devices} {'GPUs' if gpu else 'CPUs'} for one job (its profile's "
                              f"parallel.devices) and the largest node of the Ray cluster has {largest} ({node}); "
                              f"lower parallel.devices or add a node with {devices}")
        fronts = ray_parallel.start_groups(runtime, ray.remote(**options)(ray_parallel.ShardActor), workers, devices,
                                           models, device, split, memory_gb, shared)
    else:
        remote = ray.remote(**options)(JobActor)
        fronts = [RayWorker(runtime, f"ray-{index}", remote.options(
            name=f"takebridge-worker-{index}-{os.getpid()}").remote(models, device), runtime.backends, memory_gb, shared)
            for index in range(workers)]
    ready = [f for f in fronts if _wait_placed(f, 60 if f is fronts[0] else 2)]    # one up before the first job...
    refused = [f for f in ready if not f.ready()]
    if ready and len(refused) == len(ready):
        reason = refused[0].refused
        stop()
        raise ConfigError(f"every Ray worker placed so far was refused: {reason}")
    log.info("Ray: %d worker(s) up on %s%s", len(ready) - len(refused), ray.get_runtime_context().gcs_address,
             f"; {len(fronts) - len(ready)} waiting for a node with room (they start when one joins)"
             if len(ready) < len(fronts) else "")
    return fronts


def _wait_placed(front: RayWorker, timeout: float) -> bool:
    import ray

    return bool(ray.wait([front._placed], timeout=timeout)[0]) if front._placed is not None else True


def _check_reachable(address: str) -> None:
    """A cluster address that answers, before Ray is asked (it retries an unreachable one for
    minutes); the server does not start half-way."""
    if address == "auto" or "://" in address:
        return     # (Ray finds "auto" itself, and says at once when there is none)
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray {address!r} is not HOST:PORT (the head's GCS address, e.g. 10.0.0.5:6379), "
                          f"'auto' or 'local'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as err:
        raise ConfigError(f"--ray {address}: no Ray cluster answers there ({err.strerror or err}); start its head "
                          f"with `ray start --head --port {port}` on {host}, or give the right address "
                          f"(docs/cluster.md); the server did not start") from None


def stop() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _root() -> str:
    return str(Path(__file__).resolve().parent.parent)
