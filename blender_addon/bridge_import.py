"""The TakeBridge core, as `tb`: `tb.timeline`, `tb.api.pb`. Vendored as `takebridge_bridge`
in the built extension (a unique name, so no clash with other extensions' modules), the
repository's `bridge` in development; this is the one place that knows which."""
from __future__ import annotations

import importlib
import types

try:
    importlib.import_module("takebridge_bridge")
    NAME = "takebridge_bridge"
except ImportError:  # running from the repository (tests, development)
    NAME = "bridge"

MODULES = ('api', 'client', 'contract', 'editor', 'errors', 'files', 'interchange', 'metadata', 'previs', 'progress', 'request', 'selection', 'takes', 'timecode', 'timeline', 'window')
tb = types.SimpleNamespace(name=NAME, **{module: importlib.import_module(f"{NAME}.{module}") for module in MODULES})
