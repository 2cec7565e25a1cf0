"""Untrusted OpenTimelineIO from a request, read so that it cannot take the server down.

Two layers:
1. validate(): a pure-Python pass over the JSON before OpenTimelineIO sees it: size, nesting
   depth, node count, and the shape of every object the selection may contain (an allow-list
   of schemas, each slot holding the kind of object OTIO expects there, every number finite
   and in range). OTIO's C++ reader trusts the types it is handed in places (a Clip where a
   Stack belongs, a Track inside a media reference map); this pass refuses all of that with a
   message naming where in the document it is.
2. SelectionReader: what passed is parsed by OTIO in a child process, and only the plain
   Selection comes back. Whatever still goes wrong in OTIO's C++ layer (a crash, a hang) ends
   that child, not the server: the request is refused and a fresh child takes the next one.
"""
from __future__ import annotations

import json
import logging
import math
import multiprocessing
import queue
import threading

from bridge.selection import Selection, SelectionError, parse_timeline, read_selection

log = logging.getLogger("takebridge.otio_guard")

MAX_DEPTH = 48            # a selection nests ~10 deep (timeline, stack, track, clip, refs, range, time)
MAX_NODES = 200_000
MAX_STRING = 1 << 16
MAX_RATE = 1000.0         # frames per second
MIN_RATE = 0.001          # one frame in 1000 s
MAX_TIME_VALUE = 1e12     # frames (over 1,000 years at 24 fps)
PARSE_TIMEOUT_S = 10.0

_ITEM = ("Clip", "Gap", "Transition", "Track", "Stack")
_REFERENCE = ("ExternalReference", "ImageSequenceReference", "MissingReference", "GeneratorReference")
_EFFECT = ("Effect", "LinearTimeWarp", "FreezeFrame", "TimeEffect")
_COMPOSABLE_FIELDS = {"name": "str", "metadata": "metadata", "source_range": "TimeRange?", "effects": "effects",
                      "markers": "markers", "enabled": "bool", "color": "Color?"}
# schema family -> (allowed versions, field -> kind). Kinds: str, bool, int, number, rate,
# metadata, a schema family (with "?" when null is allowed), lists and maps of them.
SCHEMAS = {
    "Timeline": ((1,), {"name": "str", "metadata": "metadata", "global_start_time": "RationalTime?",
                        "tracks": "Stack"}),
    "Stack": ((1,), {**_COMPOSABLE_FIELDS, "children": "items"}),
    "Track": ((1,), {**_COMPOSABLE_FIELDS, "children": "items", "kind": "str"}),
    "Clip": ((1, 2), {**_COMPOSABLE_FIELDS, "media_reference": "reference?", "media_references": "references",
                      "active_media_reference_key": "str"}),
    "Gap": ((1,), dict(_COMPOSABLE_FIELDS)),
    "Transition": ((1,), {"name": "str", "metadata": "metadata", "transition_type": "str",
                          "in_offset": "RationalTime", "out_offset": "RationalTime"}),
    "ExternalReference": ((1,), {"name": "str", "metadata": "metadata", "available_range": "TimeRange?",
                                 "available_image_bounds": "Box2d?", "target_url": "str"}),
    "ImageSequenceReference": ((1,), {"name": "str", "metadata": "metadata", "available_range": "TimeRange?",
                                      "available_image_bounds": "Box2d?", "target_url_base": "str",
                                      "name_prefix": "str", "name_suffix": "str", "start_frame": "int",
                                      "frame_step": "int", "rate": "rate", "frame_zero_padding": "int",
                                      "missing_frame_policy": "str"}),
    "MissingReference": ((1,), {"name": "str", "metadata": "metadata", "available_range": "TimeRange?",
                                "available_image_bounds": "Box2d?"}),
    "GeneratorReference": ((1,), {"name": "str", "metadata": "metadata", "available_range": "TimeRange?",
                                  "available_image_bounds": "Box2d?", "generator_kind": "str",
                                  "parameters": "metadata"}),
    "Effect": ((1,), {"name": "str", "metadata": "metadata", "effect_name": "str", "enabled": "bool"}),
    "TimeEffect": ((1,), {"name": "str", "metadata": "metadata", "effect_name": "str", "enabled": "bool"}),
    "LinearTimeWarp": ((1,), {"name": "str", "metadata": "metadata", "effect_name": "str", "enabled": "bool",
                              "time_scalar": "number"}),
    "FreezeFrame": ((1,), {"name": "str", "metadata": "metadata", "effect_name": "str", "enabled": "bool",
                           "time_scalar": "number"}),
    "Marker": ((1, 2), {"name": "str", "metadata": "metadata", "marked_range": "TimeRange", "color": "str",
                        "comment": "str"}),
    "RationalTime": ((1,), {"value": "time", "rate": "rate"}),
    "TimeRange": ((1,), {"start_time": "RationalTime", "duration": "RationalTime"}),
    "Color": ((1,), {"name": "str", "r": "number", "g": "number", "b": "number", "a": "number"}),
    "Box2d": ((1,), {"min": "V2d", "max": "V2d"}),
    "V2d": ((1,), {"x": "number", "y": "number"}),
}
_REQUIRED = {"RationalTime": ("value", "rate"), "TimeRange": ("start_time", "duration"), "Timeline": ("tracks",)}
_GROUPS = {"item": _ITEM, "reference": _REFERENCE, "effect": _EFFECT}
# plain OTIO values allowed inside metadata (Resolve and the AAF reader write times there)
_IN_METADATA = ("RationalTime", "TimeRange")


class Invalid(SelectionError):
    def __init__(self, where: str, message: str):
        super().__init__("malformed_otio", f"selection_otio{where}: {message}")


def validate(text: str) -> dict:
    """The selection JSON as Python data when it has the shape a selection may have; Invalid
    (a SelectionError, code malformed_otio) naming the place and the problem otherwise."""
    if not isinstance(text, str):
        raise Invalid("", "must be OTIO JSON text")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise Invalid("", f"nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as err:
        raise Invalid("", f"is not valid OpenTimelineIO JSON ({err}); export the selection again") from None
    _Walker().object(data, "", "Timeline")
    return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


class _Walker:
    def __init__(self):
        self.nodes = 0

    def _count(self, where: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Invalid(where, f"has over {MAX_NODES} values; send only the selected clip")
        if depth > MAX_DEPTH:
            raise Invalid(where, f"nests deeper than {MAX_DEPTH} levels")

    def object(self, value, where: str, kind: str, depth: int = 0) -> None:
        """`value` must be an OTIO object of schema family `kind` (or of a group: item, ...)."""
        self._count(where, depth)
        families = _GROUPS.get(kind, (kind,))
        if not isinstance(value, dict) or not isinstance(value.get("OTIO_SCHEMA"), str):
            raise Invalid(where, f"must be a {' or '.join(families)} object, not {_kind_of(value)}")
        family, _, version = value["OTIO_SCHEMA"].partition(".")
        if family not in families:
            raise Invalid(where, f"holds a {value['OTIO_SCHEMA'][:80]!r} where a {' or '.join(families)} belongs")
        versions, fields = SCHEMAS[family]
        if not version.isdigit() or int(version) not in versions:
            raise Invalid(where, f"schema {value['OTIO_SCHEMA'][:80]!r} is not a version this server reads "
                                 f"({', '.join(f'{family}.{v}' for v in versions)})")
        for name in _REQUIRED.get(family, ()):
            if name not in value:
                raise Invalid(where, f"{family} has no {name!r}")
        for key, item in value.items():
            if key == "OTIO_SCHEMA":
                continue
            spot = f"{where}.{key}"
            field_kind = fields.get(key)
            if field_kind is None:   # a field of a newer OTIO: plain values only
                self.plain(item, spot, depth + 1, allow_otio=False)
            else:
                self.field(item, spot, field_kind, depth + 1)
        if family == "Clip":
            refs = value.get("media_references")
            key = value.get("active_media_reference_key")
            if isinstance(refs, dict) and refs and key is not None and key not in refs:
                raise Invalid(where, f"active_media_reference_key {key[:80]!r} names no media reference "
                                     f"(there are {', '.join(repr(k[:40]) for k in list(refs)[:10])})")

    def field(self, value, where: str, kind: str, depth: int) -> None:
        optional = kind.endswith("?")
        kind = kind.rstrip("?")
        if value is None and optional:
            return
        if kind == "str":
            if not isinstance(value, str):
                raise Invalid(where, f"must be text, not {_kind_of(value)}")
            if len(value) > MAX_STRING:
                raise Invalid(where, f"is {len(value)} characters, over {MAX_STRING}")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise Invalid(where, f"must be true or false, not {_kind_of(value)}")
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**31 - 1:
                raise Invalid(where, f"must be an integer within 32 bits, not {_shown(value)}")
        elif kind in ("number", "time", "rate"):
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63:
                raise Invalid(where, f"is an integer of {len(str(abs(value)))} digits, beyond any usable number")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise Invalid(where, f"must be a finite number, not {_shown(value)}")
            if kind == "rate" and not MIN_RATE <= value <= MAX_RATE:
                raise Invalid(where, f"rate {value!r} is outside {MIN_RATE:g}..{MAX_RATE:g} frames per second")
            if kind == "time" and abs(value) > MAX_TIME_VALUE:
                raise Invalid(where, f"time {value!r} is beyond {MAX_TIME_VALUE:g} frames")
            if kind == "number" and abs(value) > 1e15:
                raise Invalid(where, f"{value!r} is out of range")
        elif kind == "metadata":
            if not isinstance(value, dict):
                raise Invalid(where, f"must be an object, not {_kind_of(value)}")
            self.plain(value, where, depth, allow_otio=True)
        elif kind == "items":
            self._list(value, where, depth, "item")
        elif kind == "effects":
            self._list(value, where, depth, "effect")
        elif kind == "markers":
            self._list(value, where, depth, "Marker")
        elif kind == "references":
            if not isinstance(value, dict):
                raise Invalid(where, f"must be an object of media references, not {_kind_of(value)}")
            for key, ref in value.items():
                if len(key) > 256:
                    raise Invalid(where, "has a media reference key over 256 characters")
                self.object(ref, f"{where}[{key[:40]!r}]", "reference", depth + 1)
        else:
            self.object(value, where, kind, depth)

    def _list(self, value, where: str, depth: int, kind: str) -> None:
        if not isinstance(value, list):
            raise Invalid(where, f"must be a list, not {_kind_of(value)}")
        for index, item in enumerate(value):
            self.object(item, f"{where}[{index}]", kind, depth + 1)

    def plain(self, value, where: str, depth: int, allow_otio: bool) -> None:
        """Plain JSON (metadata); OTIO times and ranges allowed where allow_otio."""
        stack = [(value, where, depth)]
        while stack:
            item, spot, level = stack.pop()
            self._count(spot, level)
            if isinstance(item, dict):
                schema = item.get("OTIO_SCHEMA")
                if schema is not None:
                    family = schema.partition(".")[0] if isinstance(schema, str) else ""
                    if not allow_otio or family not in _IN_METADATA:
                        raise Invalid(spot, f"holds an OTIO object {str(schema)[:80]!r} where plain values belong")
                    self.object(item, spot, family, level)
                    continue
                for key, child in item.items():
                    stack.append((child, f"{spot}.{key[:40]}", level + 1))
            elif isinstance(item, list):
                for index, child in enumerate(item):
                    stack.append((child, f"{spot}[{index}]", level + 1))
            elif isinstance(item, float) and not math.isfinite(item):
                raise Invalid(spot, "is not a finite number")
            elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > 2**63 - 1:
                raise Invalid(spot, "is an integer beyond 64 bits")
            elif isinstance(item, str) and len(item) > MAX_STRING:
                raise Invalid(spot, f"is {len(item)} characters, over {MAX_STRING}")


def _kind_of(value) -> str:
    if isinstance(value, dict):
        schema = value.get("OTIO_SCHEMA")
        return f"a {str(schema)[:80]!r} object" if schema else "a plain object"
    return {list: "a list", str: "text", bool: "a boolean", type(None): "null", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_in_process(text: str) -> Selection:
    """Validate, then parse with OTIO here (tools on a user's own files; the child's body)."""
    validate(text)
    return read_selection(parse_timeline(text, "selection_otio"))


# -- the child process ---------------------------------------------------------------------------
def _child_main(conn) -> None:
    while True:
        try:
            text = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", read_selection(parse_timeline(text, "selection_otio"))))
        except SelectionError as err:
            conn.send(("refused", err.code, str(err)))
        except Exception as err:  # OTIO raising something unexpected: still the input's fault
            conn.send(("refused", "malformed_otio", f"selection_otio cannot be read ({type(err).__name__}: "
                                                    f"{str(err)[:300]})"))


class _Child:
    def __init__(self, context):
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_child_main, args=(child_conn,), daemon=True,
                                       name="takebridge-otio-reader")
        self.process.start()
        child_conn.close()

    def ask(self, text: str, timeout: float):
        self.conn.send(text)
        if not self.conn.poll(timeout):
            raise TimeoutError
        return self.conn.recv()

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.join(timeout=5)
        finally:
            self.conn.close()


class SelectionReader:
    """Reads selections in child processes (`size` of them, started on first use)."""

    def __init__(self, size: int = 2, timeout: float = PARSE_TIMEOUT_S):
        self.size, self.timeout = size, timeout
        # forkserver: children fork from a small clean process with OTIO already imported (fast,
        # and never a fork of the threaded server)
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["server.otio_guard"])
        self._idle: queue.LifoQueue[_Child] = queue.LifoQueue()
        self._started = 0
        self._lock = threading.Lock()
        self._closed = False
        self.crashes = 0

    def __call__(self, text: str) -> Selection:
        validate(text)
        child = self._take()
        try:
            answer = child.ask(text, self.timeout)
        except TimeoutError:
            self._replace(child, f"took over {self.timeout:g} s")
            raise SelectionError("malformed_otio", f"selection_otio took over {self.timeout:g} s to read and was "
                                                   f"abandoned; export the selection again") from None
        except (EOFError, OSError, BrokenPipeError):
            code = child.process.exitcode
            self._replace(child, f"ended with exit code {code}")
            raise SelectionError("malformed_otio", "selection_otio crashed the OpenTimelineIO reader (the "
                                                   "server is fine); export the selection again with "
                                                   "bridge.timeline.export_selection") from None
        self._idle.put(child)
        if answer[0] == "ok":
            return answer[1]
        raise SelectionError(answer[1], answer[2])

    def _take(self) -> _Child:
        with self._lock:
            if self._closed:
                raise SelectionError("shutting_down", "the server is shutting down")
            if self._idle.empty() and self._started < self.size:
                self._started += 1
                return _Child(self._context)
        try:
            return self._idle.get(timeout=self.timeout)
        except queue.Empty:
            raise SelectionError("busy", "every selection reader is busy; submit again") from None

    def _replace(self, child: _Child, why: str) -> None:
        self.crashes += 1
        log.warning("the OTIO reader child %s on a request's selection; it was replaced", why)
        child.kill()
        with self._lock:
            self._started -= 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                return
            child.kill()
