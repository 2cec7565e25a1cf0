"""Generate the Python gRPC code for proto/takebridge/v1 into bridge/api/.

Run `python proto/generate.py` after editing a .proto; tests/test_proto_codegen.py fails when
the committed code no longer matches. protoc writes absolute imports (`from takebridge.v1
import ...`); they are rewritten to the package the code lives in.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTOS = ["takebridge/v1/generation.proto"]


def generate(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Write the generated modules into out_dir (flat); return their paths."""
    from grpc_tools import protoc
    import grpc_tools

    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = ["protoc", f"-I{PROTO_DIR}", f"-I{include}",
                f"--python_out={tmp}", f"--grpc_python_out={tmp}", f"--pyi_out={tmp}", *PROTOS]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed on " + ", ".join(PROTOS))
        written = []
        for src in sorted(pathlib.Path(tmp).rglob("*.py*")):
            text = src.read_text()
            # relative: bridge/ imports itself relatively, so it can be vendored under any name
            text = re.sub(r"^from takebridge\.v1 import", "from . import", text, flags=re.M)
            dst = out_dir / src.name
            dst.write_text(text)
            written.append(dst)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bridge" / "api")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in generate(args.out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
