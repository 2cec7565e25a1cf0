"""The bridge package: installed beside the scripts by `takebridge install-resolve` (or the
repository's, in development and tests)."""
from __future__ import annotations

import importlib


def sub(name: str):
    return importlib.import_module(f"bridge.{name}")
