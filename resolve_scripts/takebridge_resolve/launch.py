"""Finding `resolve` (and the UIDispatcher module) from a Workspace script or an external
Python."""
from __future__ import annotations


def resolve_and_bmd(namespace: dict):
    """(resolve, bmd): the injected globals inside Resolve, else DaVinciResolveScript."""
    resolve = namespace.get("resolve")
    bmd = namespace.get("bmd")
    if resolve is None and namespace.get("app") is not None:
        resolve = namespace["app"].GetResolve()
    if resolve is None:
        try:
            import DaVinciResolveScript as bmd  # external Python; see the README for the env vars
        except ImportError:
            raise SystemExit("cannot find Resolve: run this from Workspace > Scripts, or set RESOLVE_SCRIPT_API, "
                             "RESOLVE_SCRIPT_LIB and PYTHONPATH as the README says") from None
        resolve = bmd.scriptapp("Resolve")
    return resolve, bmd
