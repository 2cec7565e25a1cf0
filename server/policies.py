"""What the server decides once, when a job is submitted, and stores with the job: which backend
runs it (the request's, the server's default, or classic when the shot contract's fallback
policy says so and the asked one is unavailable), and whether the compute budget has room.
Workers never decide these again."""
from __future__ import annotations

import logging

import grpc

from bridge.api import pb
from server.errors import JobError

log = logging.getLogger("takebridge.service")


def backend_for(rt, request: "pb.SubmitJobRequest") -> str:
    """The backend that will run the request, or a JobError saying why none can (no such
    backend; unavailable without a CLASSIC fallback; the compute budget spent)."""
    backend = request.backend or rt.default_backend
    if backend not in rt.backend_names():
        raise JobError("unknown_backend", f"unknown backend {backend[:64]!r}; this server has "
                                          f"{', '.join(rt.backend_names())}")
    reason = rt.unavailable_reason(backend)
    if reason:
        if request.contract.fallback == pb.CLASSIC and "classic" in rt.backends:
            log.info("request %s: backend %r unavailable (%s); its fallback policy runs it on classic",
                     request.request_id, backend, reason)
            backend = "classic"
        else:
            raise JobError("backend_unavailable", f"backend {backend!r} is not available: {reason}; set the "
                                                  f"shot contract's fallback to CLASSIC to run it on the CPU "
                                                  f"backend instead", grpc.StatusCode.FAILED_PRECONDITION)
    if rt.budget_left() <= 0:
        raise JobError("budget_spent", f"the server's compute budget of {rt.limits.compute_budget_s:g} s "
                                       f"is spent ({rt.store.compute_seconds_used():.1f} s used); restart "
                                       f"it with a larger --compute-budget to go on",
                       grpc.StatusCode.RESOURCE_EXHAUSTED)
    return backend
