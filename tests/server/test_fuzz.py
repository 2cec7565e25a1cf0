"""Fuzzing every RPC with bad input (hypothesis): each answer is a clear status, never UNKNOWN or
INTERNAL, never a hang; the server stays up, logs no traceback for bad input, and every job it
accepted ends (SUCCEEDED, FAILED with a code and a message, or CANCELLED) in bounded time.

1. OTIO JSON mutations of a valid selection: nodes replaced by other JSON values (path tricks,
   huge and non-finite numbers, wrong OTIO_SCHEMA names, other subtrees), keys deleted,
   subtrees duplicated, raw text payloads (arrays nested 10,000 deep, 5,000-digit numbers,
   NaN, lone surrogate escapes), and raw text mutations (truncation, inserted bytes).
2. Proto field fuzzing of every RPC through the generated stub, raw wire bytes included (an
   int64 seed of 2**64-1, out-of-range enum values, unknown fields).
3. Afterwards: every job in ListJobs reaches a terminal state within a bounded wait.

One server (real gRPC on loopback, its own store) serves the whole module, so the jobs the
fuzzing gets accepted pile up and are all checked at the end.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import time
import uuid
from fractions import Fraction

import cv2
import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from bridge.api import pb, pb_grpc
from bridge.client import ClientError, GenerationClient
from server.app import ServerConfig, build_server, shutdown
from server.media import write_movie
from server.samples import pan_clip

from conftest import make_timeline, submit_request

SC = grpc.StatusCode
CLEAR = {SC.OK, SC.INVALID_ARGUMENT, SC.NOT_FOUND, SC.FAILED_PRECONDITION, SC.PERMISSION_DENIED,
         SC.ALREADY_EXISTS, SC.RESOURCE_EXHAUSTED, SC.OUT_OF_RANGE}
BOUNDS = {SC.INVALID_ARGUMENT, SC.OUT_OF_RANGE}   # a field outside its documented bound
TERMINAL = (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED)
CALL_TIMEOUT = 20.0     # any call slower than this on loopback counts as a hang
JOB_WAIT_S = 30.0       # an accepted job (a few small frames) must end within this
END_WAIT_S = 60.0       # every accepted job must end within this after the fuzzing
FRAMES, HEIGHT, WIDTH = 12, 32, 48
INT32 = (-2**31, -1, 0, 1, 2**31 - 1)


def choices(values: list):
    """sampled_from without the values in the strategy's repr (some are 100,000 characters)."""
    return st.integers(0, len(values) - 1).map(lambda index: values[index])


def one_of_now(values: list):
    """One of `values`, a list that grows while the module runs (jobs, takes): drawn as an index,
    so replaying an example draws the same way (sampled_from would not)."""
    return st.integers(0, 2**16).map(lambda index: values[index % len(values)])


def fuzz_settings(examples: int):
    examples = max(1, round(examples * float(os.environ.get("TAKEBRIDGE_FUZZ_SCALE", "1"))))  # deeper runs
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


# -- the server, its media and what the fuzzing collects -------------------------------------------
class _Recorder(logging.Handler):
    """Every record of the takebridge loggers for the server's whole life (jobs run between tests too)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.bad: list[str] = []

    def emit(self, record):
        text = record.getMessage()
        if record.levelno >= logging.ERROR or record.exc_info or "Traceback" in text:
            self.bad.append(f"{record.name} {record.levelname}: {text[:2000]}")


def wait_ended(client: GenerationClient, job: "pb.Job") -> "pb.Job":
    """Wait (bounded) for an accepted job to end; it must end clearly."""
    deadline = time.monotonic() + JOB_WAIT_S
    while job.state not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.02)
        job = client.get_job(job.job_id)
    assert job.state in TERMINAL, f"job {job.job_id} still {pb.JobState.Name(job.state)} after {JOB_WAIT_S:g} s"
    if job.state == pb.FAILED:
        assert job.error_code and job.error, f"job {job.job_id} failed without a code and a message"
        assert job.error_code != "internal", f"job {job.job_id} hit a server bug: {job.error}"
    return job


def server_errors(records) -> list[str]:
    """ERROR records and tracebacks of the server's loggers (takebridge, and grpc's own, which
    logs an exception a handler let escape)."""
    return [f"{r.name} {r.levelname}: {r.getMessage()[:2000]}" for r in records
            if r.name.startswith(("takebridge", "grpc")) and
            (r.levelno >= logging.ERROR or r.exc_info or "Traceback" in r.getMessage())]


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.media = write_movie(pan_clip(FRAMES, HEIGHT, WIDTH, 1.0), tmp / "src.mkv", codec="ffv1",
                                 rate=Fraction(24), start_timecode="01:00:00:00").path
        self.mask = tmp / "mask.png"
        cv2.imwrite(str(self.mask), np.full((HEIGHT, WIDTH, 3), 255, np.uint8))
        self.small_mask = tmp / "small.png"
        cv2.imwrite(str(self.small_mask), np.full((8, 8, 3), 255, np.uint8))
        # clip: media frames 2..7 of 0..11, so nudged ranges and handles can still fit the media
        self.timeline = make_timeline(self.media, rate=24, media_start=86400, media_frames=FRAMES, clip_in=2,
                                      clip_frames=6, gap_after=3, next_clip=4)
        self.take_dir = tmp / "takes_here"
        # special files a url may point at: a FIFO (a read would block), a link out of the allowed
        # folders, a folder named like a movie, an empty "movie"
        (tmp / "link.png").symlink_to("/etc/passwd")
        (tmp / "folder.mkv").mkdir()
        (tmp / "empty.mkv").write_bytes(b"")
        self.special = [str(tmp / n) for n in ("link.png", "folder.mkv", "empty.mkv")]
        if hasattr(os, "mkfifo"):
            for name in ("fifo.png", "fifo.mkv"):
                os.mkfifo(tmp / name)
                self.special.append(str(tmp / name))
        self.server, self.runtime, self.port = build_server(ServerConfig(port=0, store=tmp / "store"))
        self.client = GenerationClient(f"127.0.0.1:{self.port}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = pb_grpc.GenerationStub(self.channel)
        # SubmitJob with the request as wire bytes, for values the Python message refuses to hold
        self.raw_submit = self.channel.unary_unary("/takebridge.v1.Generation/SubmitJob",
                                                   request_serializer=None, response_deserializer=pb.Job.FromString)
        self.accepted: set[str] = set()
        self.mask_digest = self.client.upload(str(self.mask)).sha256
        job = self.client.submit(self.template("refine"))
        done = self.client.wait(job.job_id)
        assert done.state == pb.SUCCEEDED, done.error
        self.take_id, self.take_sha = done.take.take_id, done.take.media.sha256
        self.accepted.add(job.job_id)

    def template(self, op: str) -> "pb.SubmitJobRequest":
        params = {"refine": {}, "extend": {"frames": 2}, "inpaint": {"mask": self.mask}}[op]
        request = submit_request(self.timeline, "A", op, handles=2, **params)
        request.request_id = uuid.uuid4().hex
        return request

    def ended(self, job: "pb.Job") -> "pb.Job":
        self.accepted.add(job.job_id)
        return wait_ended(self.client, job)

    def takes(self) -> dict[str, str]:
        """take id -> media sha256 of every take so far (the fuzzing makes some, of every codec)."""
        jobs = self.client.list_jobs(states=[pb.SUCCEEDED], limit=1000)
        return {j.take.take_id: j.take.media.sha256 for j in jobs if j.take.take_id}

    def job_ids(self) -> list[str]:
        return sorted(self.accepted)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    recorder = _Recorder()
    logger = logging.getLogger("takebridge")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(recorder)
    environment = Env(tmp_path_factory.mktemp("fuzz"))
    environment.recorder = recorder
    yield environment
    environment.channel.close()
    environment.client.close()
    shutdown(environment.server, environment.runtime, grace=0.5)
    logger.removeHandler(recorder)
    logger.setLevel(old_level)


class Checker:
    """The status rule, checked per example: clear status, server up, no traceback logged."""

    def __init__(self, env, caplog):
        self.env, self.caplog = env, caplog
        caplog.set_level(logging.INFO, logger="takebridge")
        self.mark = 0

    def start(self) -> None:
        self.mark = len(self.caplog.records)

    def status(self, fn, *args, **kwargs) -> tuple[object, SC]:
        """(response or None, status code) of one call; the code must be a clear one."""
        try:
            return fn(*args, timeout=CALL_TIMEOUT, **kwargs), SC.OK
        except grpc.RpcError as err:
            return None, self.refusal(err.code(), err.details())

    def refusal(self, code: SC, details: str, also=()) -> SC:
        assert code in CLEAR or code in also, f"unclear status {code.name}: {details}"
        assert details, f"{code.name} without a message"
        return code

    def stream(self, call) -> tuple[list, SC]:
        items = []
        try:
            for item in call:
                items.append(item)
            return items, SC.OK
        except grpc.RpcError as err:
            return items, self.refusal(err.code(), err.details())

    def finish(self) -> None:
        assert self.env.client.capabilities().server_version, "the server must still answer"
        bad = server_errors(self.caplog.records[self.mark:])
        assert not bad, "the server logged an error for bad input:\n" + "\n".join(bad)


@pytest.fixture
def check(env, caplog):
    return Checker(env, caplog)


# -- 1. OTIO JSON mutations -------------------------------------------------------------------------
SCHEMA_NAMES = ["Track.1", "Clip.99", "Clip.1", "Clip.2", "Clip.0", "Clip", "Clip.", "Clip.x", "Clip.1.1", "clip.1",
                "Stack.1", "Timeline.1", "Gap.1", "Transition.1", "ExternalReference.1", "ImageSequenceReference.1",
                "MissingReference.1", "GeneratorReference.1", "RationalTime.1", "TimeRange.1", "Marker.2",
                "LinearTimeWarp.1", "FreezeFrame.1", "Effect.1", "Color.1", "Box2d.1", "V2d.1",
                "SerializableCollection.1", "SerializableObjectWithMetadata.1", "UnknownSchema.1", "", ".1",
                "Track.-1", "Track.1e3", "Track.٣"]
NASTY_STRINGS = ["../x", "../../../../../../etc/passwd", "/etc/passwd", "/etc/shadow", "/dev/zero", "/dev/urandom",
                 "/proc/self/mem", "/proc/self/fd/0", "/", ".", "..", "", "~", "~root/../etc/passwd",
                 "NaN", "nan", "Infinity", "-Infinity", "1e999", "-1", "0x10", "a\x00b", "\x00", "\n", "\u202e",
                 "cas:", "cas:../../etc/passwd", "cas:" + "0" * 64, "cas:" + "g" * 64, "file:///etc/passwd",
                 "C:\\Windows\\win.ini", "\\\\server\\share\\x.mov", "DEFAULT_MEDIA", "Video", "Audio",
                 "A", "B", "takebridge", "24000/1001", "0.0000001", "1/100000", "0", "-24", "1e-300"]
SPECIAL_NUMBERS = [0, -0.0, 1, -1, 0.5, 3.5, 4, 4.0, 24, 24.0, 23.976, 1000.0, 1000.1, 86400, 86403, 86404.0,
                   -86400, 1e-300, 5e-324, 1e12, 1e12 + 1, 1e15, 1e16, 1e308, 2**31 - 1, 2**31, 2**53 + 1, 2**63,
                   2**64, 10**400, -10**400, float("nan"), float("inf"), float("-inf")]
# text spliced in place of a node after json.dumps: what json.dumps cannot write
RAW_PAYLOADS = ["[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000, "1" + "0" * 5000,
                "-" + "9" * 5000, "1e400", "-1e400", "1.5e-400", "NaN", "-Infinity", '"\\ud800"', '"\\udc80x"',
                '"\\u0000"', '"a\\u0000b"', "-0", "[]", "{}", "null", "true", '{"OTIO_SCHEMA": null}',
                '{"OTIO_SCHEMA": 1}', '{"OTIO_SCHEMA": ["Clip.1"]}', '{"OTIO_SCHEMA": "Clip.1", "OTIO_SCHEMA": 5}']
SENTINEL = "@@takebridge-fuzz-payload@@"

numbers = st.one_of(choices(SPECIAL_NUMBERS), st.integers(), st.floats())
near_numbers = st.sampled_from([0, 1, 2, 3, 5, 6, 8, 11, 12, 13, 24, 25, 23.976, 48, 0.5, 2.5, 86400, 86401,
                                86402, 86405, 86410, 86411, 86412, 86400.5, -1, 1e-3])
long_text = st.sampled_from([("x", 70_000), ("é", 300), ("/", 5000)]).map(lambda r: r[0] * r[1])
nasty_text = st.one_of(st.sampled_from(NASTY_STRINGS), long_text, st.text(max_size=12))
scalars = st.one_of(st.none(), st.booleans(), numbers, nasty_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(["OTIO_SCHEMA", "name", "children", "value", "rate",
                                                   "media_reference", "metadata", "source_range"]),
                                  st.text(max_size=6)), inner, max_size=4),
        st.builds(lambda schema, rest: {"OTIO_SCHEMA": schema, **rest}, st.sampled_from(SCHEMA_NAMES),
                  st.dictionaries(st.sampled_from(["name", "children", "tracks", "value", "rate", "start_time",
                                                   "duration", "target_url", "media_references", "metadata",
                                                   "active_media_reference_key", "kind", "source_range"]),
                                  inner, max_size=4))),
    max_leaves=12)
MUTATIONS = ["replace", "replace", "schema", "number", "near", "near", "string", "delete", "duplicate", "graft",
             "payload"]
TEXT_MUTATIONS = ["none", "none", "none", "truncate", "insert", "delete", "flip"]


def _nodes(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _nodes(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _nodes(child, path + (index,))


def _get(root, path):
    for key in path:
        root = root[key]
    return root


def _put(root, path, value):
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


def _mutate(data, draw, strings) -> tuple[object, list[str]]:
    """Apply one drawn mutation to the JSON tree; (new tree, raw payloads for sentinels)."""
    payloads = []
    kind = draw(st.sampled_from(MUTATIONS))
    all_nodes = list(_nodes(data))
    paths = [p for p, _ in all_nodes]
    if kind == "replace":
        data = _put(data, draw(st.sampled_from(paths)), draw(json_values))
    elif kind == "schema":
        schemas = [p for p, v in all_nodes if isinstance(v, dict) and "OTIO_SCHEMA" in v]
        if schemas:
            _get(data, draw(st.sampled_from(schemas)))["OTIO_SCHEMA"] = draw(st.sampled_from(SCHEMA_NAMES))
    elif kind in ("number", "near", "string"):   # near: a plausible number, so the selection may still read
        leaf = str if kind == "string" else (int, float)
        leaves = [p for p, v in all_nodes if p and isinstance(v, leaf) and not isinstance(v, bool)]
        if leaves:
            value = {"number": numbers, "near": near_numbers, "string": strings}[kind]
            data = _put(data, draw(st.sampled_from(leaves)), draw(value))
    elif kind == "delete":
        keyed = [p for p, v in all_nodes if isinstance(v, dict) and v]
        if keyed:
            node = _get(data, draw(st.sampled_from(keyed)))
            del node[draw(st.sampled_from(sorted(node)))]
    elif kind == "duplicate":
        copied = copy.deepcopy(_get(data, draw(st.sampled_from(paths))))
        containers = [p for p, v in all_nodes if isinstance(v, (dict, list))]
        if not containers:
            return data, payloads
        target = _get(data, draw(st.sampled_from(containers)))
        if isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), copied)
        else:
            target[draw(st.one_of(st.sampled_from(sorted(target) or ["x"]), st.text(max_size=6)))] = copied
    elif kind == "graft":   # one subtree where another belongs: a Track where a Clip is, ...
        source = copy.deepcopy(_get(data, draw(st.sampled_from(paths))))
        data = _put(data, draw(st.sampled_from(paths)), source)
    else:
        payloads.append(draw(choices(RAW_PAYLOADS)))
        data = _put(data, draw(st.sampled_from(paths)), SENTINEL)
    return data, payloads


def _text_mutation(text: str, draw) -> str:
    kind = draw(st.sampled_from(TEXT_MUTATIONS))
    if kind == "none" or not text:
        return text
    at = draw(st.integers(0, len(text)))
    if kind == "truncate":
        return text[:at]
    if kind == "insert":
        inserted = draw(st.one_of(st.text(max_size=8), st.binary(max_size=8).map(lambda b: b.decode("latin-1")),
                                  st.sampled_from(["{", "}", "[", "]", '"', ",", ":", "\\", "\x00", "NaN", "\\u"])))
        return text[:at] + inserted + text[at:]
    if kind == "delete":
        return text[:at] + text[at + draw(st.integers(1, 64)):]
    return text[:at] + draw(st.characters()) + text[at + 1:]


@fuzz_settings(150)
@given(data=st.data())
def test_mutated_selection_otio_gets_a_clear_answer(env, check, data):
    check.start()
    request = env.template(data.draw(st.sampled_from(["refine", "refine", "extend", "inpaint"]), label="op"))
    tree = json.loads(request.selection_otio)
    payloads = []
    strings = st.one_of(nasty_text, st.sampled_from(env.special + [str(env.mask), str(env.tmp), str(env.media.parent),
                                                                   str(env.tmp / "store" / "jobs.db"),
                                                                   str(env.tmp / ("x" * 300))]))
    for _ in range(data.draw(st.sampled_from([1, 1, 1, 2, 3, 4]), label="mutations")):
        tree, more = _mutate(tree, data.draw, strings)
        payloads += more
    text = json.dumps(tree, allow_nan=True)
    for payload in payloads:
        text = text.replace(json.dumps(SENTINEL), payload, 1)
    text = _text_mutation(text, data.draw)
    note(f"selection_otio ({len(text)} chars): {text[:3000]}")
    request.selection_otio = text
    request.request_id = uuid.uuid4().hex
    try:
        job = env.client.submit(request)
    except ClientError as err:
        event(f"answer {check.refusal(err.code, str(err)).name}")
    else:
        event("answer OK")
        assert job.job_id and job.request_id == request.request_id
        job = env.ended(job)
        event(f"job {pb.JobState.Name(job.state)} {job.error_code}".strip())
    check.finish()


# -- 2. proto fields of every RPC ----------------------------------------------------------------------
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + (_varint(len(payload)) + payload if wire == 2 else payload)


RAW_EXTRAS = {   # wire bytes appended to a SubmitJobRequest (last value wins, messages merge)
    "seed 2**64-1": _field(20, 2, _field(7, 0, _varint(2**64 - 1))),
    "seed 2**63": _field(20, 2, _field(7, 0, _varint(2**63))),
    "operation 2**64-1": _field(2, 0, _varint(2**64 - 1)),
    "operation 2**40": _field(2, 0, _varint(2**40)),
    "codec 2**64-1": _field(20, 2, _field(5, 2, _field(1, 0, _varint(2**64 - 1)))),
    "fallback 7": _field(20, 2, _field(8, 0, _varint(7))),
    "extend.frames 2**40+3": _field(11, 2, _field(2, 0, _varint(2**40 + 3))),
    "grow_pixels 2**64-1": _field(12, 2, _field(3, 0, _varint(2**64 - 1))),
    "budget.max_compute_seconds nan": _field(20, 2, _field(9, 2, _field(2, 1, b"\x00\x00\x00\x00\x00\x00\xf8\x7f"))),
    "strength nan": _field(10, 2, _field(1, 5, b"\x00\x00\xc0\x7f")),
    "unknown varint field 99": _field(99, 0, _varint(12345)),
    "unknown bytes field 1000": _field(1000, 2, b"\xff\xfe\x00garbage"),
    "unknown field in contract": _field(20, 2, _field(77, 2, b"\x01\x02")),
}
ints = st.one_of(st.sampled_from(INT32 + (4, 8, 16, 64, 65, 256, 257, 500, 501, 1000, 1001)),
                 st.integers(-2**31, 2**31 - 1))
floats = st.one_of(st.sampled_from([0.0, -0.0, 0.5, 1.0, 1.0000001, -1e-9, 1e-45, 2.0, 1e30, 604800.0, 604801.0,
                                    float("nan"), float("inf"), float("-inf")]), st.floats(width=32))
enum_values = st.sampled_from([0, 1, 2, 3, 4, 5, 99, -1, 2**31 - 1, -2**31])
texts = st.one_of(choices(["", "a\x00b", "\x00", "../x", "x" * 129, "x" * 300, "x" * 8193, "é" * 5000]),
                  st.text(max_size=30))


def _urls(env):
    """Media, mask and reference image urls: real files, special files, path tricks."""
    return st.one_of(choices([
        *env.special, str(env.mask), str(env.small_mask), str(env.media), str(env.tmp), f"cas:{env.mask_digest}",
        f"cas:{env.mask_digest.upper()}", "cas:../../etc/passwd", "cas:" + "g" * 64, "cas:" + "0" * 64, "cas:",
        "cas:" + env.mask_digest + "/../x", "../x", "../../../../etc/passwd", "/etc/passwd", "/dev/zero",
        "/proc/self/mem", str(env.tmp / "nothing.png"), str(env.tmp / "store" / "jobs.db"), "", "a\x00b",
        "/" + "x" * 5000, "~/nothing.png", str(env.tmp / ("x" * 300)), "x" * 300]), texts)


def _take_dirs(env):
    # never a folder outside this test's tmp that the server could really write to
    return choices(["", str(env.take_dir), str(env.take_dir / "deeper" / "still"), str(env.media), str(env.mask),
                    str(env.media / "below_a_file"), str(env.tmp / ("x" * 300)), *env.special, "/etc", "/",
                    "/proc/self", "..", "../../..", "a\x00b", "/" + "x" * 5000,
                    str(env.tmp) + "/../../../../../../etc"])


def _set(path: str):
    """A setter of the dotted field `path` of a SubmitJobRequest."""
    *parents, name = path.split(".")

    def setter(request, value):
        message = request
        for parent in parents:
            message = getattr(message, parent)
        if name == "thresholds":
            message.thresholds.update(value)
        elif name == "seed" and value is None:
            message.ClearField("seed")
        else:
            setattr(message, name, value)
    return setter


def _fields(env) -> dict:
    """field -> strategy of its values (valid ones included, so some requests run)."""
    return {
        "request_id": st.one_of(texts, st.just("fuzz-fixed-request-id")),
        "operation": enum_values,
        "refine.strength": floats,
        "extend.side": enum_values,
        "extend.frames": ints,
        "extend.context_frames": ints,
        "inpaint.mask_url": _urls(env),
        "inpaint.invert": st.booleans(),
        "inpaint.grow_pixels": ints,
        "contract.prompt": texts,
        "contract.negative_prompt": texts,
        "contract.constraints.max_frames": ints,
        "contract.constraints.keep_head_frames": ints,
        "contract.constraints.keep_tail_frames": ints,
        "contract.constraints.mask_feather_px": ints,
        "contract.output.codec": enum_values,
        "contract.output.bit_depth": ints,
        "contract.output.take_dir": _take_dirs(env),
        "contract.review.thresholds": st.one_of(st.dictionaries(texts, st.floats(), max_size=3),
                                                st.just({f"g{i}": 0.5 for i in range(40)})),
        "contract.seed": st.one_of(st.none(), st.sampled_from([0, 1, 2**53 - 1, 2**53, 2**63 - 1, -1, -2**63])),
        "contract.fallback": enum_values,
        "contract.budget.max_frames": ints,
        "contract.budget.max_compute_seconds": floats,
        "generate.mode": enum_values,
        "generate.first.url": _urls(env),
        "generate.first.frame": st.one_of(ints, st.sampled_from([2**40, -2**40])),
        "generate.last.url": _urls(env),
        "generate.camera": enum_values,
        "generate.camera_amount": floats,
        "generate.width": ints,
        "generate.height": ints,
        "generate.burn_in": st.booleans(),
        "contract.role": texts,
        "contract.purpose": texts,
        "backend": st.sampled_from(["", "classic", "diffusers", "nope", "../x", "x" * 200, "a\x00b"]),
        "model": texts,
        "client": texts,
    }


@st.composite
def submit_requests(draw, env):
    """(wire bytes, what was changed) of a SubmitJobRequest: a valid template with a few fields
    changed, maybe reference images added and raw wire fields appended."""
    request = env.template(draw(st.sampled_from(["refine", "extend", "inpaint"])))
    fields = _fields(env)
    done = []
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
        value = draw(fields[name])
        _set(name)(request, value)   # setting a oneof member (refine.strength, ...) switches the params
        done.append(f"{name}={value!r:.200}")
    if draw(st.integers(0, 5)) == 0:
        request.ClearField(request.WhichOneof("params") or "refine")
        done.append("no params")
    if draw(st.integers(0, 5)) == 0:
        for _ in range(draw(st.sampled_from([1, 2, 16, 17, 40]))):
            request.contract.reference_images.add(url=draw(_urls(env)), role=draw(texts), name=draw(texts))
        done.append(f"{len(request.contract.reference_images)} reference images")
    raw = request.SerializeToString()
    for name in draw(st.lists(st.sampled_from(sorted(RAW_EXTRAS)), max_size=2, unique=True)):
        raw += RAW_EXTRAS[name]
        done.append(f"raw {name}")
    return raw, done


def _out_of_bounds(request: "pb.SubmitJobRequest") -> list[str]:
    """Fields outside the bounds the API documents (server.bounds): each must be refused."""
    c = request.contract
    why = []
    if not request.request_id or len(request.request_id) > 128 or "\x00" in request.request_id:
        why.append("request_id")
    if request.HasField("refine") and not 0.0 <= request.refine.strength <= 1.0:   # nan included
        why.append("strength")
    if request.HasField("inpaint") and not 0 <= request.inpaint.grow_pixels <= 256:
        why.append("grow_pixels")
    if not 0 <= c.constraints.mask_feather_px <= 64:
        why.append("mask_feather_px")
    if any(len(t) > 8192 or "\x00" in t for t in (c.prompt, c.negative_prompt)):
        why.append("prompt")
    if len(c.reference_images) > 16:
        why.append("reference_images")
    if any(not math.isfinite(v) for v in c.review.thresholds.values()) or len(c.review.thresholds) > 32:
        why.append("thresholds")
    if c.HasField("seed") and not 0 <= c.seed <= 2**53 - 1:
        why.append("seed")
    if not (math.isfinite(c.budget.max_compute_seconds) and 0 <= c.budget.max_compute_seconds <= 7 * 24 * 3600):
        why.append("max_compute_seconds")
    if c.fallback not in pb.FallbackPolicy.values():
        why.append("fallback")
    if len(c.role) > 128 or "\x00" in c.role or len(c.purpose) > 8192 or "\x00" in c.purpose:
        why.append("role/purpose")
    if request.HasField("generate"):
        g = request.generate
        if not (0 <= g.width <= 8192 and 0 <= g.height <= 8192):
            why.append("generate size")
        if not (0 <= g.first.frame <= 10**9 and 0 <= g.last.frame <= 10**9):
            why.append("generate frame")
        if not 0.0 <= g.camera_amount <= 1.0:   # nan included
            why.append("camera_amount")
        if any(len(u) > 4096 or "\x00" in u for u in (g.first.url, g.last.url)):
            why.append("generate url")
    return why


def _never_accepted(request: "pb.SubmitJobRequest") -> list[str]:
    """Requests no server may queue (any clear refusal will do)."""
    why = _out_of_bounds(request)
    # (GENERATE is an operation, but these templates select a clip with media of its own, and
    # Generate fills only gaps and pre-vis shots)
    if request.operation not in (pb.REFINE, pb.EXTEND, pb.INPAINT):
        why.append("operation")
    if request.contract.output.codec not in (0, pb.PRORES_422_HQ, pb.FFV1, pb.PNG_SEQUENCE, pb.H264_PROXY):
        why.append("codec")
    # a backend this server knows but cannot run is accepted when the contract's fallback says to
    # run it on classic (server/policies.py); any other backend is refused
    runs_on_classic = request.backend == "diffusers" and request.contract.fallback == pb.CLASSIC
    if request.backend not in ("", "classic") and not runs_on_classic:
        why.append("backend")
    if request.operation == pb.EXTEND and request.HasField("extend") and not 0 < request.extend.frames <= 500:
        why.append("extend.frames")
    return why


@fuzz_settings(60)
@given(data=st.data())
def test_submit_fields_get_a_clear_answer(env, check, data):
    check.start()
    raw, done = data.draw(submit_requests(env), label="request")
    request = pb.SubmitJobRequest.FromString(raw)   # what the server decodes
    note(f"changed: {done}")
    job, code = check.status(env.raw_submit, raw)
    event(f"answer {code.name}")
    if _out_of_bounds(request):
        assert code in BOUNDS, f"{_out_of_bounds(request)} out of bounds, answered {code.name}"
    if _never_accepted(request):
        assert code != SC.OK, f"{_never_accepted(request)}: accepted as job {job.job_id}"
    if code == SC.OK:
        assert job.job_id and job.request_id == request.request_id
        job = env.ended(job)
        event(f"job {pb.JobState.Name(job.state)} {job.error_code}".strip())
    check.finish()


JOB_IDS = st.one_of(choices(["", "../", "../../etc/passwd", "/etc/passwd", "a\x00b", "\x00", "x" * 256,
                                     "x" * 257, "x" * 100_000, "%s%s%n", "' OR '1'='1", "*", "job_*", "é" * 200]),
                    st.text(max_size=40))


@fuzz_settings(30)
@given(data=st.data())
def test_job_ids_get_a_clear_answer(env, check, data):
    """GetJob, CancelJob and WatchJob on hostile ids, on the jobs so far and on a job submitted
    just now (so a cancel may catch it queued or running)."""
    check.start()
    job_id = data.draw(st.one_of(JOB_IDS, one_of_now(env.job_ids()), st.just("<new>")), label="job_id")
    if job_id == "<new>":
        request = env.template(data.draw(st.sampled_from(["refine", "extend", "inpaint"]), label="op"))
        job_id = env.client.submit(request).job_id
        env.accepted.add(job_id)
    after = data.draw(st.sampled_from([0, 0, 1, 3, -1, 2**63 - 1, -2**63]), label="after_seq")
    if data.draw(st.booleans(), label="cancel"):
        job, code = check.status(env.stub.CancelJob, pb.CancelJobRequest(job_id=job_id))
        event(f"cancel {code.name}")
        if code == SC.OK:
            assert job.job_id == job_id and job.state in (pb.QUEUED, pb.RUNNING, pb.CANCELLED)
    _, get_code = check.status(env.stub.GetJob, pb.GetJobRequest(job_id=job_id))
    events, code = check.stream(env.stub.WatchJob(pb.WatchJobRequest(job_id=job_id, after_seq=after,
                                                                     include_previews=data.draw(st.booleans())),
                                                  timeout=CALL_TIMEOUT))
    event(f"watch {code.name}")
    if code == SC.OK:   # the stream ends when the job has: its last event is terminal
        assert get_code == SC.OK and all(e.job_id == job_id and e.seq > after for e in events)
        assert [e.seq for e in events] == sorted({e.seq for e in events})
        assert after > 0 or events[-1].state in TERMINAL
    if after < 0 and get_code == SC.OK:
        assert code in BOUNDS, f"after_seq {after} answered {code.name}"
    check.finish()


@fuzz_settings(20)
@given(data=st.data(), approve=st.booleans(),
       note_text=st.one_of(choices(["", "ok", "x" * 8192, "x" * 8193, "x" * 100_000, "a\x00b"]),
                           st.text(max_size=40)),
       reviewer=st.sampled_from(["", "ed", "x" * 256, "x" * 257, "a\x00b"]))
def test_review_take_gets_a_clear_answer(env, check, data, approve, note_text, reviewer):
    check.start()
    take_id = data.draw(st.one_of(JOB_IDS, one_of_now(sorted(env.takes()))), label="take_id")
    take, code = check.status(env.stub.ReviewTake, pb.ReviewTakeRequest(take_id=take_id, approve=approve,
                                                                        note=note_text, reviewer=reviewer))
    if len(note_text) > 8192:
        assert code == SC.INVALID_ARGUMENT, f"a note of {len(note_text)} chars answered {code.name}"
    if len(reviewer) > 256 or "\x00" in note_text + reviewer:
        assert code in BOUNDS
    if code == SC.OK:
        assert take.take_id == take_id and take.status == (pb.APPROVED if approve else pb.REJECTED)
        assert take.review_note == note_text
    check.finish()


@fuzz_settings(15)
@given(limit=st.one_of(st.sampled_from([0, 1, 1000, 1001, -1, 2**31 - 1, -2**31]), st.integers(-2**31, 2**31 - 1)),
       states=st.lists(enum_values, max_size=4), shot=st.one_of(texts, st.sampled_from(["A", "story", "%", "*"])))
def test_list_jobs_gets_a_clear_answer(env, check, limit, states, shot):
    check.start()
    response, code = check.status(env.stub.ListJobs, pb.ListJobsRequest(limit=limit, states=states, shot=shot))
    if not 0 <= limit <= 1000 or any(s not in pb.JobState.values() for s in states):
        assert code in BOUNDS, f"limit {limit}, states {states}: answered {code.name}"
    if code == SC.OK:
        assert len(response.jobs) <= (limit or 100)
        assert not states or all(j.state in states for j in response.jobs)
    check.finish()


@fuzz_settings(20)
@given(data=st.data())
def test_download_media_gets_a_clear_answer(env, check, data):
    check.start()
    what = data.draw(st.sampled_from(["sha256", "take_id", "none"]), label="what")
    request = pb.DownloadMediaRequest(chunk_size=data.draw(st.one_of(
        st.sampled_from([0, 1, 4095, 4096, 4 << 20, (4 << 20) + 1, -1, 2**31 - 1, -2**31]), ints), label="chunk"))
    expected = None
    if what == "sha256":
        request.sha256 = data.draw(st.one_of(st.sampled_from([
            env.mask_digest, env.mask_digest.upper(), env.take_sha, "0" * 64, "g" * 64, "../../etc/passwd",
            "/etc/passwd", str(env.mask), "", "a" * 65, "a" * 63, env.mask_digest + "\x00", env.mask_digest + "/..",
            "../" + env.mask_digest, "é" * 64]), st.text(max_size=70)), label="sha256")
        expected = request.sha256 if request.sha256 == env.mask_digest else None
    elif what == "take_id":
        takes = env.takes()
        request.take_id = data.draw(st.one_of(JOB_IDS, one_of_now(sorted(takes))), label="take_id")
        expected = takes.get(request.take_id)
    chunks, code = check.stream(env.stub.DownloadMedia(request, timeout=CALL_TIMEOUT))
    size = request.chunk_size or 1 << 20
    if not 4096 <= size <= 4 << 20 or expected is None:
        assert code != SC.OK, "served media it should not have"
    if code == SC.OK:
        body = b"".join(c.data for c in chunks)
        assert hashlib.sha256(body).hexdigest() == expected == chunks[0].sha256
        assert all(len(c.data) <= size for c in chunks)
    check.finish()


UPLOAD_NAMES = ["..", ".", "a/b", "a\\b", "/etc/passwd", "../x", "x" * 300, "é" * 150, "", "ok.bin", "a\x00b", "\n",
                "CON", ".staging", " ", "x" * 200, "x" * 201]


@fuzz_settings(20)
@given(data=st.data())
def test_upload_media_gets_a_clear_answer(env, check, data):
    check.start()
    blobs = data.draw(st.lists(st.binary(max_size=64), max_size=3), label="chunks")
    digest = hashlib.sha256(b"".join(blobs)).hexdigest()
    announced = data.draw(st.sampled_from(["", digest, digest.upper(), "0" * 64, "g" * 64, "../../etc/passwd",
                                           digest[:-1], "x" * 1000]), label="sha256")
    name = data.draw(st.one_of(st.sampled_from(UPLOAD_NAMES), st.text(max_size=20)), label="filename")
    chunks, offset, offsets_ok = [], 0, True
    for index, blob in enumerate(blobs):
        at = data.draw(st.one_of(st.just(offset), st.sampled_from([-1, 1, 2**63 - 1, -2**63, offset + 1])),
                       label="offset")
        offsets_ok &= at == offset
        chunks.append(pb.MediaChunk(sha256=announced if index == 0 else "", filename=name if index == 0 else "",
                                    offset=at, data=blob, total_size=data.draw(st.sampled_from([0, -1, 2**63 - 1]))))
        offset += len(blob)
    mismatch = announced not in ("", digest) and len(announced) == 64 and all(c in "0123456789abcdef"
                                                                              for c in announced)
    try:
        obj, code = env.stub.UploadMedia(iter(chunks), timeout=CALL_TIMEOUT), SC.OK
    except grpc.RpcError as err:
        # an announced digest the bytes do not match: DATA_LOSS is the documented answer there
        obj, code = None, check.refusal(err.code(), err.details(), also=(SC.DATA_LOSS,) if mismatch else ())
    if not chunks or not offsets_ok or announced not in ("", digest):
        assert code != SC.OK, "stored an upload it should have refused"
    if code == SC.OK:
        assert obj.sha256 == digest and obj.url == f"cas:{digest}" and obj.size == offset
        back, back_code = check.stream(env.stub.DownloadMedia(pb.DownloadMediaRequest(sha256=digest),
                                                              timeout=CALL_TIMEOUT))
        assert back_code == SC.OK and b"".join(c.data for c in back) == b"".join(blobs)
    check.finish()


# -- cases the fuzzing found, kept as small tests ---------------------------------------------------------
def test_null_selection_metadata_gets_a_clear_answer(env, check):
    """Every takebridge.selection metadata value (and the objects holding them) set to null: once
    answered INTERNAL (TypeError comparing None) for "handles": null."""
    template = json.loads(env.template("refine").selection_otio)
    keys = [("metadata", "takebridge"), ("metadata", "takebridge", "selection")]
    keys += [("metadata", "takebridge", "selection", key) for key in template["metadata"]["takebridge"]["selection"]]
    for path in keys:
        check.start()
        request = env.template("refine")
        request.selection_otio = json.dumps(_put(copy.deepcopy(template), path, None))
        try:
            env.ended(env.client.submit(request))
        except ClientError as err:
            check.refusal(err.code, str(err))
        check.finish()


# -- 3. every accepted job ends ---------------------------------------------------------------------------
def test_every_accepted_job_ends(env):
    deadline = time.monotonic() + END_WAIT_S
    while True:
        jobs = env.client.list_jobs(limit=1000)
        running = [j for j in jobs if j.state not in TERMINAL]
        if not running or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not running, f"{len(running)} jobs still not ended after {END_WAIT_S:g} s: " + ", ".join(
        f"{j.job_id} {pb.JobState.Name(j.state)}" for j in running[:10])
    listed = {j.job_id for j in jobs}
    assert env.accepted <= listed, f"accepted jobs missing from ListJobs: {sorted(env.accepted - listed)[:10]}"
    for job in jobs:
        if job.state == pb.FAILED:
            assert job.error_code and job.error, f"job {job.job_id} failed without a code and a message"
            assert job.error_code != "internal", f"job {job.job_id} hit a server bug: {job.error}"
        if job.state == pb.SUCCEEDED:
            assert job.take.take_id and job.take.media.sha256
    assert not env.recorder.bad, "the server logged errors during the fuzzing:\n" + "\n".join(env.recorder.bad[:10])
    assert env.client.capabilities().server_version
    print(f"{len(jobs)} jobs: " + ", ".join(f"{pb.JobState.Name(s)} {sum(j.state == s for j in jobs)}"
                                            for s in TERMINAL))


# -- what the fuzzing found, kept as small regression tests on servers of their own (after the check
# above: its log recorder listens to every takebridge logger). Each was a bug when found, fixed in the
# server while this file was written. ------------------------------------------------------------------
@pytest.fixture
def small_timeline(write_media):
    media = write_media("src", pan_clip(4, 32, 48, 1.0))
    return make_timeline(media, rate=24, media_start=86400, media_frames=4, clip_in=0, clip_frames=4)


@pytest.mark.parametrize("name", ["a file", "below a file", "a long name"])
def test_take_dir_that_cannot_be_a_folder_is_refused(server, small_timeline, tmp_path, caplog, name):
    """Was: accepted (plan checked take_dir with check_path only), then the worker crashed in
    runner.run_plan (staging.mkdir: NotADirectoryError, OSError ENAMETOOLONG), logged a traceback
    and failed the job with error_code 'internal'."""
    client, _ = server
    caplog.set_level(logging.INFO, logger="takebridge")
    a_file = tmp_path / "not_a_folder.txt"
    a_file.write_text("not a folder")
    take_dir = {"a file": a_file, "below a file": a_file / "takes", "a long name": tmp_path / ("x" * 300)}[name]
    request = submit_request(small_timeline, "A", "refine")
    request.contract.output.take_dir = str(take_dir)
    try:
        job = client.submit(request)
    except ClientError as err:   # the best answer: refused at once
        assert err.code in BOUNDS, str(err)
    else:
        wait_ended(client, job)   # else: a clear failure of the job, without a traceback
    assert client.capabilities().server_version
    assert not server_errors(caplog.records), "\n".join(server_errors(caplog.records))


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_mask_url_with_a_long_name_is_refused(server, small_timeline, tmp_path, caplog, where):
    """Was INTERNAL with a traceback: server/media/probe.py probe() called Path.is_dir(), which
    raises OSError ENAMETOOLONG for a name over 255 bytes, and make_plan caught only MediaError
    and ValueError."""
    client, _ = server
    caplog.set_level(logging.INFO, logger="takebridge")
    mask = "x" * 300 if where == "relative" else str(tmp_path / ("x" * 300))
    with pytest.raises(ClientError) as err:
        client.submit(submit_request(small_timeline, "A", "inpaint", mask=mask))
    assert client.capabilities().server_version
    assert not server_errors(caplog.records), "\n".join(server_errors(caplog.records))
    assert err.value.code in (SC.INVALID_ARGUMENT, SC.NOT_FOUND), str(err.value)


@pytest.mark.parametrize("rate", [1e-7, 1e-300, 5e-324])
@pytest.mark.parametrize("where", ["source_range", "available_range"])
def test_tiny_clip_rate_is_refused(server, small_timeline, caplog, where, rate):
    """Was INTERNAL with a traceback: a rate in (0, 1/2002) passed otio_guard (0 < rate), then
    bridge.timecode.exact_rate rounded it to 0 after its positivity check (limit_denominator)
    and server/plan.py divided by it (media.rate / rate; media_index): ZeroDivisionError."""
    client, _ = server
    caplog.set_level(logging.INFO, logger="takebridge")
    request = submit_request(small_timeline, "A", "refine")
    tree = json.loads(request.selection_otio)
    clip = tree["tracks"]["children"][0]["children"][0]
    if where == "source_range":
        clip["source_range"]["start_time"]["rate"] = rate
    else:
        clip["media_references"]["DEFAULT_MEDIA"]["available_range"]["start_time"]["rate"] = rate
    request.selection_otio = json.dumps(tree)
    with pytest.raises(ClientError) as err:
        client.submit(request)
    assert client.capabilities().server_version
    assert not server_errors(caplog.records), "\n".join(server_errors(caplog.records))
    assert err.value.code == SC.INVALID_ARGUMENT, str(err.value)


@pytest.mark.parametrize("where", ["global_start_time.rate", "source_range.start_time.value"])
def test_integer_beyond_float_range_is_refused(server, small_timeline, caplog, where):
    """Was INTERNAL with a traceback: otio_guard._Walker.field called math.isfinite() on a JSON
    integer like 10**400, which raises OverflowError."""
    client, _ = server
    caplog.set_level(logging.INFO, logger="takebridge")
    request = submit_request(small_timeline, "A", "refine")
    tree = json.loads(request.selection_otio)
    if where == "global_start_time.rate":
        tree["global_start_time"]["rate"] = 10**400
    else:
        tree["tracks"]["children"][0]["children"][0]["source_range"]["start_time"]["value"] = 10**400
    request.selection_otio = json.dumps(tree)
    with pytest.raises(ClientError) as err:
        client.submit(request)
    assert client.capabilities().server_version
    assert not server_errors(caplog.records), "\n".join(server_errors(caplog.records))
    assert err.value.code == SC.INVALID_ARGUMENT, str(err.value)


@pytest.mark.parametrize("method, wire", [
    ("SubmitJob", b"\x0a\x02\xff\xfe"),         # request_id: invalid UTF-8
    ("SubmitJob", b"\x1a\x05ab"),               # selection_otio: length past the end
    ("GetJob", b"\x0a\x02\xc3\x28"),            # job_id: invalid UTF-8
    ("ListJobs", b"\xff\xff\xff"),              # not a message at all
    ("WatchJob", b"\x0a\x01\x80"),              # job_id: invalid UTF-8
    ("DownloadMedia", b"\x0a\x40" + b"\xff" * 64),  # sha256: invalid UTF-8
    ("UploadMedia", b"\x12\x02\xe2\x82"),        # filename: cut inside a character
    ("UploadMedia", b"\x22\x05ab"),             # data: length past the end
])
def test_undecodable_request_is_invalid_argument(server, caplog, method, wire):
    """Was UNKNOWN ("Unexpected <class DecodeError>"): grpc.aio's own answer when the request
    bytes do not deserialize."""
    client, _ = server
    caplog.set_level(logging.INFO, logger="takebridge")
    with grpc.insecure_channel(client.address) as channel:
        name = f"/takebridge.v1.Generation/{method}"
        with pytest.raises(grpc.RpcError) as err:
            if method == "UploadMedia":
                channel.stream_unary(name, request_serializer=None, response_deserializer=None)(
                    iter([wire]), timeout=CALL_TIMEOUT)
            elif method in ("WatchJob", "DownloadMedia"):
                list(channel.unary_stream(name, request_serializer=None, response_deserializer=None)(
                    wire, timeout=CALL_TIMEOUT))
            else:
                channel.unary_unary(name, request_serializer=None, response_deserializer=None)(
                    wire, timeout=CALL_TIMEOUT)
    assert client.capabilities().server_version
    assert not server_errors(caplog.records)
    assert err.value.code() == SC.INVALID_ARGUMENT, f"{err.value.code().name}: {err.value.details()}"
