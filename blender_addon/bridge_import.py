"""The bridge package: vendored as `takebridge_bridge` in the built extension (a unique name,
so no clash with other extensions' modules), the repository's `bridge` in development."""
from __future__ import annotations

import importlib

try:
    bridge = importlib.import_module("takebridge_bridge")
    NAME = "takebridge_bridge"
except ImportError:  # running from the repository (tests, development)
    bridge = importlib.import_module("bridge")
    NAME = "bridge"


def sub(name: str):
    """A bridge submodule: sub("takes"), sub("api")."""
    return importlib.import_module(f"{NAME}.{name}")
