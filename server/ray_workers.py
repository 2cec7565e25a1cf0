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

    def status(self) -> dict:
        """Device, warm models and whether a job runs here (for the capabilities)."""
        device = getattr(self.backends.get("diffusers"), "device", "cpu")
        return {**self.where(), "device": device, "loaded_models": loaded_models(self.backends), "busy": bool(self.cancels),
                "backends": sorted(self.backends)}

    def run_shipped(self, job_id: str, plan, backend_name: str, files: dict):
        """run() for a worker that does not share the front's disk: the job's input files come
        in the object store (path -> bytes), are written to a folder of this worker, the plan
        is pointed at them, and the encoded take goes back as bytes (a file, or a folder's files)."""
        import shutil
        import tempfile
        from pathlib import Path

        import ray

        work = Path(tempfile.mkdtemp(prefix=f"takebridge-{job_id}-"))
        try:
            local = {}
            for index, (path, ref) in enumerate(files.items()):
                target = work / "in" / str(index) / Path(path).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(ray.get(ref) if isinstance(ref, ray.ObjectRef) else ref)
                local[path] = str(target)
            _point_at(plan, local)
            result = self.run(job_id, plan, backend_name, work / "staging" / job_id)
            staged = Path(result.staged)
            payload = ({p.name: p.read_bytes() for p in sorted(staged.iterdir())} if staged.is_dir()
                       else staged.read_bytes())
            result.info["media_transfer"] = {"shipped_in_bytes": sum(len(ray.get(r)) if isinstance(r, ray.ObjectRef)
                                                                     else len(r) for r in files.values()),
                                             "shipped_out_bytes": sum(len(v) for v in payload.values())
                                             if isinstance(payload, dict) else len(payload)}
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

    def where(self, backend) -> str:
        return f"Ray worker {self.device} ({backend.device})"

    def ready(self) -> bool:
        """Whether the actor is up: one waiting for a node with room (one to join the cluster)
        claims nothing, so queued work waits for the workers that can run it."""
        import ray

        if self._placed is None:
            return True
        done, _ = ray.wait([self._placed], timeout=0)
        if done:
            self._placed = None
        return bool(done)

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

        try:
            status = ray.get(self.actor.status.remote(), timeout=2)
        except Exception as err:   # a worker restarting: listed as such
            return {"name": self.device, "host": "", "device": f"unavailable ({type(err).__name__})",
                    "memory_gb": self.memory_gb, "loaded_models": [], "busy": False, "backends": []}
        return {"name": self.device, "host": status["host"], "device": status["device"],
                "memory_gb": self.memory_gb, "loaded_models": status["loaded_models"],
                "busy": bool(self.cancels), "backends": status["backends"]}

    def _execute(self, job_id, plan, backend, staging, reporter, cancel):
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        if self.shared:
            pending = self.actor.run.remote(job_id, _shippable(plan), backend.name, staging)
        else:   # no shared disk: the inputs travel in Ray's object store, the take comes back as bytes
            files = {path: ray.put(Path(path).read_bytes()) for path in _input_files(plan)}
            pending = self.actor.run_shipped.remote(job_id, _shippable(plan), backend.name, files)
        cancelled = False
        try:
            while True:
                done, _ = ray.wait([pending], timeout=POLL_S)
                for stage, step, total, preview in ray.get(self.actor.drain.remote(job_id)):
                    reporter(stage, step, total, preview)
                if cancel.is_set() and not cancelled:
                    self.actor.cancel.remote(job_id)
                    cancelled = True
                if done:
                    result = ray.get(pending)
                    if not self.shared:
                        result = _received(result, staging)
                    if result.info.get("model"):
                        self.warm.add(result.info["model"])
                    return result
        except (ActorDiedError, ActorUnavailableError, RayActorError) as err:
            self.warm.clear()     # Ray restarts the actor with nothing loaded
            raise WorkerLost(f"Ray worker {self.device} died ({type(err).__name__})") from None


def _input_files(plan) -> list[str]:
    """Every file a plan reads: the source media, a mask, reference images, Generate's frames."""
    from server.errors import JobError

    paths = [str(plan.media.path)] if plan.op != "generate" else []
    paths += [plan.mask_path] if plan.mask_path else []
    paths += list(plan.reference_paths) + [f["path"] for f in plan.generate.get("frames", [])]
    for path in paths:
        if "%" in Path(path).name or not Path(path).is_file():
            raise JobError("not_shippable", f"{path} is an image sequence or not a file: a worker without the front's disk is "
                                f"sent movies and stills only; put image sequences on storage the workers share")
    return list(dict.fromkeys(paths))


def _point_at(plan, local: dict) -> None:
    """The plan's input paths as a worker without the front's disk has them."""
    from dataclasses import replace

    if plan.op != "generate":
        plan.media = replace(plan.media, path=Path(local[str(plan.media.path)]))
    if plan.mask_path:
        plan.mask_path = local[plan.mask_path]
    plan.reference_paths = [local[p] for p in plan.reference_paths]
    if plan.generate.get("frames"):
        plan.generate = {**plan.generate, "frames": [{**f, "path": local[f["path"]]} for f in plan.generate["frames"]]}


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


def start(runtime, address: str, workers: int, models: str | None, device: str,
          memory_gb: float = 0.0, shared: bool = True) -> list[RayWorker]:
    """Join (or start, `local`) a Ray cluster, start the actors and their front threads."""
    import ray

    if not ray.is_initialized():
        if address in ("", "local"):
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                     configure_logging=False, runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                         p for p in (_root(), os.environ.get("PYTHONPATH", "")) if p)}})
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    gpu = 1 if models and device.startswith("cuda") else 0
    # one CPU each, and its numeric libraries held to it before they load (their thread pools would
    # otherwise take every core, and two workers on two cores run no faster than one)
    threads = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    remote = ray.remote(num_cpus=1, num_gpus=gpu, max_restarts=-1, max_task_retries=0, max_concurrency=4,
                        runtime_env={"env_vars": threads})(JobActor)
    backends = {name: backend for name, backend in runtime.backends.items()}
    threads = []
    for index in range(workers):
        actor = remote.options(name=f"takebridge-worker-{index}-{os.getpid()}").remote(models, device)
        threads.append(RayWorker(runtime, f"ray-{index}", actor, backends, memory_gb, shared))
    refs = [t.actor.where.remote() for t in threads]
    ray.wait(refs, num_returns=1, timeout=60)              # one up before the first job...
    ready, waiting = ray.wait(refs, num_returns=len(refs), timeout=2)   # ...the rest as nodes have room
    log.info("Ray: %d worker(s) up on %s%s", len(ready), ray.get_runtime_context().gcs_address,
             f"; {len(waiting)} waiting for a node with room (they start when one joins)" if waiting else "")
    return threads


def _root() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent)


def stop() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


