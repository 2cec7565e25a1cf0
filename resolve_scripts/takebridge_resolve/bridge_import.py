"""The TakeBridge core: vendored as `takebridge_core` beside this package by `takebridge
install-resolve` (its own name: nothing bare like `bridge` in Resolve's Python), the checkout's
or installed `bridge` otherwise (development, tests)."""
from __future__ import annotations

import importlib

try:
    importlib.import_module("takebridge_core")
    NAME = "takebridge_core"
except ImportError:
    NAME = "bridge"


def sub(name: str):
    """A core submodule: sub("client"), sub("api")."""
    return importlib.import_module(f"{NAME}.{name}")
