"""One job on several devices: a device group of Ray workers (`serve --ray` with a model whose
profile says `"parallel": {"devices": N, "method": "ulysses" | "ring"}`).

- **A group** is N Ray actors in one placement group, packed on one node (N bundles of one GPU,
  or of one CPU on a CPU cluster), joined in one torch.distributed process group (NCCL on GPUs,
  gloo on CPUs). The front talks to rank 0 as to any worker: progress, previews, the result.
- **A split job** runs on every rank with the same plan, inputs and seed. Each rank loads the
  model with its transformer's attention split over the group (diffusers' context parallelism,
  server.backends.diffusers.loading.apply_parallel): each computes its share of the sequence and
  they exchange what attention needs. Rank 0's take is the job's; the other ranks' copies are
  made in a folder of their own and deleted.
- **A job of another model** (classic, or a one-device model) runs on rank 0 alone.
- **Cancel, or a rank lost:** the ranks of a split job wait on each other in every attention
  layer, so one rank cannot stop alone. The group is stopped whole: its processes are ended,
  which frees every device at once, and Ray starts them again; the group is joined again before
  its next split job (whose model loads again).
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from server.ray_workers import JobActor, RayWorker, _shippable, shipped_inputs
from server.worker import WorkerLost

log = logging.getLogger("takebridge.ray")
JOIN_TIMEOUT_S = 120


class ShardActor(JobActor):
    """A worker of a device group: a JobActor that can join the group's process group."""

    rank = 0

    def address(self) -> tuple[str, int]:
        """Where rank 0 meets the others: this node's address and a free port."""
        import ray

        with socket.socket() as probe:
            probe.bind(("", 0))
            port = probe.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def join(self, address: str, port: int, rank: int, world: int) -> int:
        """Join the group (blocks until every rank has); pipelines loaded before belong to none."""
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        device = getattr(self.backends.get("diffusers"), "device", "cpu")
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", init_method=f"tcp://{address}:{port}",
                                rank=rank, world_size=world, timeout=timedelta(minutes=10))
        self.rank = rank
        if "diffusers" in self.backends:
            self.backends["diffusers"].cache.clear()
        return os.getpid()

    def run_peer(self, job_id: str, plan, backend_name: str, files: dict | None = None) -> dict:
        """A split job on a rank other than 0: the same run, its take made aside and deleted."""
        if files is not None:
            result, _ = self.run_shipped(job_id, plan, backend_name, files)
            return {"rank": self.rank, **result.info["worker"]}
        work = Path(tempfile.mkdtemp(prefix=f"takebridge-{job_id}-rank{self.rank}-"))
        try:
            result = self.run(job_id, plan, backend_name, work / job_id)
            return {"rank": self.rank, **result.info["worker"]}
        finally:
            shutil.rmtree(work, ignore_errors=True)


class GroupWorker(RayWorker):
    """The front's thread for a device group (see the module text): rank 0 is its actor."""

    def __init__(self, runtime, name: str, ranks: list, group, backends: dict, split_models: set[str],
                 memory_gb: float = 0.0, shared: bool = True):
        super().__init__(runtime, name, ranks[0], backends, memory_gb, shared)
        self.ranks, self.group, self.split_models = ranks, group, split_models
        self.joined = False
        self._placed = group.ready()      # the whole group placed, not rank 0 alone

    def actors(self) -> list:
        return list(self.ranks)

    def where(self, backend) -> str:
        return f"Ray device group {self.device} ({len(self.ranks)} x {backend.device})"

    def _execute(self, job_id, plan, backend, staging, reporter, cancel):
        if backend.name != "diffusers" or self._model_of(plan.request) not in self.split_models:
            return super()._execute(job_id, plan, backend, staging, reporter, cancel)
        import ray

        self._join()
        shipped = _shippable(plan)
        if self.shared:
            pending = self.actor.run.remote(job_id, shipped, backend.name, staging)
            peers = [rank.run_peer.remote(job_id, shipped, backend.name) for rank in self.ranks[1:]]
        else:   # (every rank is sent the same inputs: none is left out by asking one rank's cache)
            files = shipped_inputs(self, plan)
            pending = self.actor.run_shipped.remote(job_id, shipped, backend.name, files)
            peers = [rank.run_peer.remote(job_id, shipped, backend.name, files) for rank in self.ranks[1:]]
        try:
            result = self._follow(job_id, pending, reporter, cancel, peers)
            others = ray.get(peers)
        except BaseException:
            self._stop_group()      # the others wait on the one that stopped: end them all
            raise
        result = self._taken(result, staging)
        result.info["worker"] = {**result.info["worker"], "group": [
            {key: rank.get(key) for key in ("rank", "host", "pid", "node")}
            for rank in ({"rank": 0, **result.info["worker"]}, *others)]}
        return result

    def _join(self) -> None:
        """Form the process group (first split job, and after the group was stopped)."""
        if self.joined:
            return
        import ray
        from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

        end = time.monotonic() + JOIN_TIMEOUT_S
        try:
            for rank in self.ranks:        # each (re)started: one Ray is restarting answers "unavailable"
                while True:
                    try:
                        ray.get(rank.where.remote(), timeout=max(1.0, end - time.monotonic()))
                        break
                    except ActorUnavailableError:
                        if time.monotonic() > end:
                            raise
                        time.sleep(0.2)
            address, port = ray.get(self.ranks[0].address.remote())
            pids = ray.get([rank.join.remote(address, port, index, len(self.ranks))
                            for index, rank in enumerate(self.ranks)], timeout=JOIN_TIMEOUT_S)
        except (RayActorError, GetTimeoutError) as err:
            self._stop_group()
            raise WorkerLost(f"device group {self.device} could not join ({type(err).__name__})") from None
        log.info("device group %s joined at %s:%d (processes %s)", self.device, address, port, pids)
        self.warm.clear()
        self.joined = True

    def _cancel_running(self, job_id: str) -> None:
        self._stop_group()

    def _lost(self) -> None:
        super()._lost()
        self._stop_group()

    def _stop_group(self) -> None:
        import ray

        for rank in self.ranks:
            try:
                ray.kill(rank, no_restart=False)    # Ray starts it again, in its bundle
            except Exception:   # already gone
                pass
        self.joined = False
        self.warm.clear()


def largest_node(device: str) -> tuple[int, str]:
    """(devices, node address) of the cluster's node with the most GPUs (CPUs on a CPU cluster)."""
    import ray

    kind = "GPU" if device.startswith("cuda") else "CPU"
    best = (0, "")
    for node in ray.nodes():
        if node.get("Alive"):
            best = max(best, (int(node.get("Resources", {}).get(kind, 0)), node.get("NodeManagerAddress", "")))
    return best


def start_groups(runtime, remote, count: int, devices: int, models: str, device: str, split_models: set[str],
                 memory_gb: float, shared: bool) -> list[GroupWorker]:
    """`count` device groups of `devices` workers each (placement groups packed on one node)."""
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundle = {"CPU": 1, **({"GPU": 1} if device.startswith("cuda") else {})}
    workers = []
    for index in range(count):
        group = placement_group([bundle] * devices, strategy="STRICT_PACK", name=f"takebridge-group-{index}-{os.getpid()}")
        ranks = [remote.options(name=f"takebridge-group-{index}-rank-{rank}-{os.getpid()}",
                                scheduling_strategy=PlacementGroupSchedulingStrategy(group, rank))
                 .remote(models, device) for rank in range(devices)]
        workers.append(GroupWorker(runtime, f"ray-group-{index}", ranks, group, runtime.backends, split_models,
                                   memory_gb, shared))
    return workers
