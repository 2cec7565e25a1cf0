"""Jobs on Ray: `takebridge serve --ray [local|auto|ADDRESS]`.

The gRPC server the editors talk to stays as it is: the same API, the same SQLite job store on
the machine it runs on (the only writer of job state), the same plans and take commits. What
moves is the work between the plan and the take: it runs in **Ray actors** (Ray Core, not Ray
Serve: a job is a long, stateful, cancellable piece of work with progress, on a worker that
keeps its pipelines warm — an actor is exactly that; Serve's request/response replicas and
autoscaling fit neither the progress stream nor the front's ownership of job state).

- One actor per CPU slot (`--ray-workers N`, the classic backend; a diffusers actor also
  declares `num_gpus=1`). It keeps its backends, so a model stays loaded between jobs.
- The front runs one thread per actor (server.worker.Worker with its execution sent to the
  actor): it claims a job from the store, makes the plan, sends plan and staging folder to its
  actor, polls the actor for progress and previews (turned into the job's events exactly as a
  local run's), forwards a cancel, and commits the take when the actor hands back its result.
  Media by path: the actor reads the sources and writes the staged take where the front told
  it (a shared disk: the same machine, or a studio NAS mounted alike), under the same roots.
- A worker killed mid-job: the front sees the actor die, puts the job back in the queue
  (attempts counted; the poison-job guard fails it after 3), and Ray restarts the actor; the
  job runs again on whichever worker is free, and its take is committed once, by the front.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

from server.backends.base import Cancelled
from server.worker import Worker, WorkerLost, loaded_models

log = logging.getLogger("takebridge.ray")
POLL_S = 0.2


class JobActor:
    """What runs on a Ray worker: the backends, and the jobs the front sends (one at a time)."""

    def __init__(self, models: str | None = None, device: str = "cpu"):
        import cv2
        import ray

        from server.backends.classic import ClassicBackend

        # a worker uses the CPUs Ray gave it, not every core of the machine: its neighbours' too
        self.cpus = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
        cv2.setNumThreads(self.cpus)
        os.environ["OMP_NUM_THREADS"] = str(self.cpus)
        from server.media.pixels import THREADS_ENV
        os.environ[THREADS_ENV] = str(self.cpus)   # FFmpeg's decoders and scalers too

        import server.generate  # noqa: F401  (warm: the first job does not pay for the imports)
        import server.runner  # noqa: F401

        self.backends = {"classic": ClassicBackend()}
        if models:
            from server.backends.diffusers.backend import DiffusersBackend
            from server.backends.diffusers.loading import read_profiles

            self.backends["diffusers"] = DiffusersBackend(read_profiles(models), device)
        self.reports: dict[str, list] = {}
        self.cancels: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def where(self) -> dict:
        """This worker's process, host and Ray node (the manifest records them)."""
        import ray

        return {"host": socket.gethostname(), "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
                "cpus": self.cpus}

    def run(self, job_id: str, plan, backend_name: str, staging):
        """Run a plan (server.runner / server.generate) here; returns its RunResult."""
        from server import color
        from server.generate import run_generate
        from server.runner import run_plan

        from bridge.api import pb

        if isinstance(plan.request, bytes):
            plan.request = pb.SubmitJobRequest.FromString(plan.request)
        cancel = self.cancels.setdefault(job_id, threading.Event())
        self.reports[job_id] = []

        def report(stage, step, total, preview):
            with self.lock:
                self.reports[job_id].append((stage, step, total, preview))
        contract = plan.request.contract
        if contract.color.input_space:   # (colour processors are made here, not shipped)
            plan.color = color.resolve(contract.color.input_space, contract.color.config, plan.media.color.transfer)
        run = run_generate if plan.op == "generate" else run_plan
        try:
            result = run(plan, self.backends[backend_name], staging, report, cancel)
        finally:
            self.cancels.pop(job_id, None)
        result.info["worker"] = self.where()
        return result

    def versions(self) -> dict:
        return versions()

    def holding(self, digests: list[str]) -> list[str]:
        """Which media objects this worker's cache keeps (the front does not send those)."""
        from server import ray_media

        return ray_media.WorkerCache().holding(digests)

    def status(self) -> dict:
        """Device, warm models and whether a job runs here (for the capabilities)."""
        device = getattr(self.backends.get("diffusers"), "device", "cpu")
        return {**self.where(), "device": device, "loaded_models": loaded_models(self.backends), "busy": bool(self.cancels),
                "backends": sorted(self.backends)}

    def run_shipped(self, job_id: str, plan, backend_name: str, files: list):
        """run() for a worker that does not share the front's disk: the job's inputs come as
        objects of the front's media store (server.ray_media: a source's range, a sequence's
        frames, whole stills and masks), each taken from this worker's cache or fetched and
        checked against its digest; the plan is pointed at them, and the encoded take goes back
        as bytes (a file, or a folder's files)."""
        import shutil

        import ray

        from server import ray_media

        cache = ray_media.WorkerCache()
        work = cache.work_folder(f"takebridge-{job_id}-")
        try:
            try:
                local, records = ray_media.receive(files, work, cache, ray.get)
            except ray_media.Evicted as gone:   # evicted since the front asked: it sends everything again
                return None, str(gone)
            ray_media.local_plan(plan, local)
            result = self.run(job_id, plan, backend_name, work / "staging" / job_id)
            staged = Path(result.staged)
            payload = ({p.name: p.read_bytes() for p in sorted(staged.iterdir())} if staged.is_dir()
                       else staged.read_bytes())
            out = sum(len(v) for v in payload.values()) if isinstance(payload, dict) else len(payload)
            result.info["media_transfer"] = ray_media.transfer(records, out)
            return result, payload
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def drain(self, job_id: str) -> list:
        """The progress reports since the last drain (previews included)."""
        with self.lock:
            out, self.reports[job_id] = self.reports.get(job_id, []), []
        return out

    def cancel(self, job_id: str) -> None:
        self.cancels.setdefault(job_id, threading.Event()).set()


class RayWorker(Worker):
    """A front thread whose jobs execute on one Ray actor (see the module text)."""

    def __init__(self, runtime, name: str, actor, backends: dict, memory_gb: float = 0.0, shared: bool = True):
        super().__init__(runtime, name, backends)
        self.actor, self.memory_gb, self.shared = actor, memory_gb, shared
        self.warm: set[str] = set()   # models its actor has loaded (from the results it sent back)
        self._placed = actor.where.remote()   # done once Ray has placed the actor (a node with room)
        self.refused = ""                     # why it is not used (versions that differ from the front's)

    def where(self, backend) -> str:
        return f"Ray worker {self.device} ({backend.device})"

    def ready(self) -> bool:
        """Whether the actor is up: one waiting for a node with room (one to join the cluster)
        claims nothing, so queued work waits for the workers that can run it. Once placed, its
        versions are checked against the front's: a worker whose differ is refused (never used)."""
        import ray

        if self.refused:
            return False
        if self._placed is None:
            return True
        done, _ = ray.wait([self._placed], timeout=0)
        if not done:
            return False
        self._placed = None
        self.refused = _version_mismatch(self.actors())
        if self.refused:
            log.error("Ray worker %s refused: %s", self.device, self.refused)
            for actor in self.actors():
                ray.kill(actor, no_restart=True)
        return not self.refused

    def actors(self) -> list:
        """The Ray actors behind this front thread (one; a device group's ranks)."""
        return [self.actor]

    def accept(self, backend: str, request) -> bool:
        """Placement: a generative job goes to a worker that has its model loaded; this worker
        passes it over while another one that has it is free (and takes it otherwise). A worker
        not placed yet takes nothing."""
        if not self.ready():
            return False
        if backend != "diffusers":
            return True
        model = self._model_of(request)
        if not model or model in self.warm:
            return True
        return not any(isinstance(w, RayWorker) and w is not self and not w.cancels and model in w.warm
                       for w in self.runtime.workers)

    def _model_of(self, request) -> str:
        generative = self.runtime.backends.get("diffusers")
        if generative is None:
            return request.model
        from server.plan import OP_NAMES
        try:
            return generative.model_for(OP_NAMES.get(request.operation, ""), request.model).id
        except Exception:   # an unknown model: the job fails where it runs, with the reason
            return request.model

    def info(self) -> dict:
        import ray

        if self.refused:
            return {"name": self.device, "host": "", "device": f"refused: {self.refused}", "memory_gb": self.memory_gb,
                    "loaded_models": [], "busy": False, "backends": [], "devices": len(self.actors())}
        try:
            status = ray.get(self.actor.status.remote(), timeout=2)
        except Exception as err:   # a worker restarting: listed as such
            return {"name": self.device, "host": "", "device": f"unavailable ({type(err).__name__})",
                    "memory_gb": self.memory_gb, "loaded_models": [], "busy": False, "backends": [],
                    "devices": len(self.actors())}
        return {"name": self.device, "host": status["host"], "device": status["device"],
                "memory_gb": self.memory_gb, "loaded_models": status["loaded_models"],
                "busy": bool(self.cancels), "backends": status["backends"], "devices": len(self.actors())}

    def _execute(self, job_id, plan, backend, staging, reporter, cancel):
        result = self._follow(job_id, self._send(job_id, plan, backend.name, staging, ask=True), reporter, cancel)
        if not self.shared and result[0] is None:   # an object its cache had is gone since: everything is sent
            log.info("job %s: worker %s no longer had %s; sending it", job_id, self.device, result[1])
            result = self._follow(job_id, self._send(job_id, plan, backend.name, staging), reporter, cancel)
        return self._taken(result, staging)

    def _send(self, job_id, plan, backend_name: str, staging, ask: bool = False):
        """Start the job on the actor: by path (shared disk), or with its inputs sent (none)."""
        if self.shared:
            return self.actor.run.remote(job_id, _shippable(plan), backend_name, staging)
        return self.actor.run_shipped.remote(job_id, _shippable(plan), backend_name, shipped_inputs(self, plan, ask))

    def _taken(self, result, staging):
        """The actor's result as the front commits it: a take sent back is written into the
        job's staging folder; the model it used is warm there now."""
        if not self.shared:
            result = _received(result, staging)
        if result.info.get("model"):
            self.warm.add(result.info["model"])
        return result

    def _follow(self, job_id, pending, reporter, cancel, peers=()):
        """Wait for the actor's result, relaying its progress and previews and a cancel; a
        worker that dies is WorkerLost. `peers`: the other ranks' calls of a device group
        (server.ray_parallel), checked as it goes (one failing fails the job at once)."""
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        cancelled = False
        try:
            while True:
                done, _ = ray.wait([pending], timeout=POLL_S)
                for stage, step, total, preview in ray.get(self.actor.drain.remote(job_id)):
                    reporter(stage, step, total, preview)
                if cancel.is_set() and not cancelled:
                    self._cancel_running(job_id)
                    cancelled = True
                for peer in ray.wait(list(peers), num_returns=len(peers), timeout=0)[0] if peers else ():
                    ray.get(peer)      # a peer that failed raises here; one that finished waits for the lead
                if done:
                    return ray.get(pending)
        except (ActorDiedError, ActorUnavailableError, RayActorError) as err:
            self._lost()
            if cancelled:     # (a device group is stopped by ending its processes)
                raise Cancelled() from None
            raise WorkerLost(f"Ray worker {self.device} died ({type(err).__name__})") from None

    def _cancel_running(self, job_id: str) -> None:
        self.actor.cancel.remote(job_id)

    def _lost(self) -> None:
        self.warm.clear()     # Ray restarts the actor with nothing loaded


def _input_files(plan) -> list:
    """Every input a plan reads, and which of its frames (server.ray_media.Need): the source media
    (the range read; a sequence's frame files), a mask (a sequence: the clip's frames), reference
    images, Generate's boards (a sequence: the frame used)."""
    from server.ray_media import Need

    def sequence(path: str) -> bool:   # as server.media.probe tells one
        return "%" in Path(path).name or Path(path).is_dir()

    needs = []
    if plan.op != "generate":
        media, first, last = plan.media, min(plan.media_indices), max(plan.media_indices)
        if media.is_sequence:
            needs.append(Need("source", str(media.path), list(range(first, last + 1)), True, media))
        elif media.frame_count == 1:
            needs.append(Need("source", str(media.path), why="a still image"))
        else:
            needs.append(Need("source", str(media.path), (first, last), False, media))
    if plan.mask_path:
        frames = list(range(plan.selection.source_duration)) if sequence(plan.mask_path) else None
        needs.append(Need("mask", plan.mask_path, frames, frames is not None))
    needs += [Need("reference", path) for path in plan.reference_paths]
    for board in plan.generate.get("frames", []):
        needs.append(Need("frame", board["path"], [board["frame"]], True) if sequence(board["path"])
                     else Need("frame", board["path"]))
    return needs


def shipped_inputs(worker, plan, ask: bool = False) -> list[dict]:
    """What a worker without the front's disk is sent for a plan: each input's objects in the
    front's media store (server.ray_media.ship), put in Ray's object store. The refs sit inside
    a list, so Ray does not fetch them before the call: the worker fetches only what its cache
    lacks. `ask`: the worker is asked first which objects its cache keeps, and those are not put
    at all (ref None: no read of the file, no copy in the front's object store)."""
    import ray

    from server import paths, ray_media

    limits = worker.runtime.limits
    with paths.reading_under(limits.roots):
        shipped = ray_media.ship(_input_files(plan), limits.cas_dir)
    held = set()
    if ask:
        try:
            held = set(ray.get(worker.actor.holding.remote([o["digest"] for i in shipped for o in i["objects"]]),
                               timeout=30))
        except Exception as err:   # (a worker that cannot say is sent everything)
            log.info("worker %s did not say what its cache keeps (%s); sending everything", worker.device, err)
    for item in shipped:
        for obj in item["objects"]:
            file = obj.pop("file")
            obj["ref"] = None if obj["digest"] in held else ray.put(Path(file).read_bytes())
    return shipped


def _received(shipped, staging: Path):
    """The take a worker sent back, written into the job's staging folder on the front."""
    result, payload = shipped
    name = Path(result.staged).name
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / name
    if isinstance(payload, dict):
        target.mkdir(exist_ok=True)
        for file, data in payload.items():
            (target / file).write_bytes(data)
    else:
        target.write_bytes(payload)
    result.staged = target
    return result


def _shippable(plan):
    """The plan as it travels (colour processors are rebuilt on the worker)."""
    import copy

    shipped = copy.copy(plan)
    shipped.color = None
    shipped.request = plan.request.SerializeToString()   # (protobuf messages do not pickle)
    return shipped


def _version_mismatch(actors: list) -> str:
    """'' when every actor runs the front's versions; else what differs, both sides named."""
    import ray

    mine = versions()
    for theirs in ray.get([actor.versions.remote() for actor in actors], timeout=60):
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if differ:
            return ("its versions differ from this server's: " +
                    ", ".join(f"{k} {theirs.get(k, 'not installed')} on the worker and {mine.get(k, 'not installed')} "
                              f"here" for k in differ) + "; install the same versions on every node")
    return ""


def versions() -> dict[str, str]:
    """What must match between the front and its workers: TakeBridge, Python and the libraries
    that make the pixels (a take made with other versions is not the one its manifest says)."""
    import sys

    import bridge
    from server.takestore import library_versions

    versions = library_versions()
    # the code running, where it is loaded, not the first package metadata on the path
    for name, module in (("grpcio", "grpc"), ("protobuf", "google.protobuf"), ("numpy", "numpy"), ("av", "av"),
                         ("torch", "torch"), ("diffusers", "diffusers"), ("transformers", "transformers")):
        loaded = getattr(sys.modules.get(module), "__version__", None)
        if loaded and name in versions:
            versions[name] = str(loaded)
    return {**versions, "takebridge": bridge.__version__}
