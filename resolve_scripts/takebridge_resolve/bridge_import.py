"""The TakeBridge core, as `tb`: `tb.client`, `tb.api.pb`. Vendored as `takebridge_core` beside
this package by `takebridge install-resolve` (its own name: nothing bare like `bridge` in
Resolve's Python), the checkout's or installed `bridge` otherwise (development, tests); this is
the one place that knows which."""
from __future__ import annotations

import importlib
import types

try:
    importlib.import_module("takebridge_core")
    NAME = "takebridge_core"
except ImportError:
    NAME = "bridge"

MODULES = ('api', 'client', 'contract', 'editor', 'errors', 'files', 'interchange', 'metadata', 'previs', 'progress', 'request', 'selection', 'takes', 'timecode', 'timeline', 'window')
tb = types.SimpleNamespace(name=NAME, **{module: importlib.import_module(f"{NAME}.{module}") for module in MODULES})
