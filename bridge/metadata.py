"""The `takebridge` metadata stored on OTIO clips and media references, versioned.

Readers accept every older schema version and migrate it forward (like JobParams.from_dict in
krita-ai-diffusion); writers always write the current one.
"""
from __future__ import annotations

import copy

from .errors import TakeBridgeError

KEY = "takebridge"
SCHEMA_VERSION = 1


class MetadataError(TakeBridgeError):
    """TakeBridge metadata on a clip that cannot be read (a newer schema, or not a mapping)."""

    code = "bad_metadata"


def _migrate(data: dict) -> dict:
    version = data.get("schema", 1)
    if not isinstance(version, int) or version < 1:
        raise MetadataError(f"takebridge metadata has schema {version!r}; expected an integer >= 1")
    if version > SCHEMA_VERSION:
        raise MetadataError(
            f"takebridge metadata has schema {version}, newer than this TakeBridge understands "
            f"({SCHEMA_VERSION}); update TakeBridge to read it")
    # Versions > 1 add their forward migrations here, one step at a time.
    data["schema"] = SCHEMA_VERSION
    return data


def read(obj) -> dict:
    """A plain-dict copy of obj.metadata["takebridge"] (empty dict if absent), migrated."""
    raw = obj.metadata.get(KEY)
    if raw is None:
        return {}
    data = _plain(raw)
    if not isinstance(data, dict):
        raise MetadataError(f"{getattr(obj, 'name', '') or type(obj).__name__}: metadata[{KEY!r}] must be an "
                            f"object, not {type(data).__name__}; export the timeline again with TakeBridge")
    return _migrate(copy.deepcopy(data))


def write(obj, data: dict) -> None:
    obj.metadata[KEY] = {**_plain(data), "schema": SCHEMA_VERSION}


def _plain(value):
    """OTIO AnyDictionary/AnyVector -> dict/list, recursively."""
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "AnyVector":
        return [_plain(v) for v in value]
    return value
