"""The committed generated code in bridge/api must be what proto/generate.py makes from the
.proto today: edit the .proto, run `make proto`, commit both."""
from __future__ import annotations

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_generated_code_matches_the_proto(tmp_path):
    spec = importlib.util.spec_from_file_location("generate", ROOT / "proto" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    written = generate.generate(tmp_path)
    assert {p.name for p in written} == {"generation_pb2.py", "generation_pb2.pyi", "generation_pb2_grpc.py"}
    stale = [p.name for p in written if p.read_text() != (ROOT / "bridge" / "api" / p.name).read_text()]
    assert not stale, f"bridge/api/{stale} no longer match proto/; run `make proto` and commit"
