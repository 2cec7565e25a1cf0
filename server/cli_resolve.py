"""`takebridge install-resolve`: put the Resolve scripts where Resolve lists them and check
that Resolve's Python can import what they need."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = ["TakeBridge.py", "TakeBridge Markers.py"]
PACKAGES = {"takebridge_resolve": REPO / "resolve_scripts" / "takebridge_resolve", "bridge": REPO / "bridge"}
NEEDS = ["grpc", "google.protobuf", "opentimelineio"]
PIP_NAMES = "grpcio protobuf opentimelineio otio-cmx3600-adapter otio-fcp-adapter otio-aaf-adapter"


def scripts_folder(system: str | None = None) -> Path:
    """The per-user Workspace > Scripts > Edit folder of DaVinci Resolve on this OS."""
    system = system or platform.system()
    home = Path.home()
    if system == "Darwin":
        return home / "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Edit"
    if system == "Windows":
        return Path(os.environ.get("APPDATA", home / "AppData/Roaming")) / \
            "Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Edit"
    return home / ".local/share/DaVinciResolve/Fusion/Scripts/Edit"


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "install-resolve", help="copy the DaVinci Resolve scripts to Resolve's Scripts folder and check its Python",
        description="Copy 'TakeBridge' and 'TakeBridge Markers' (Workspace > Scripts > Edit) with their modules to "
                    "Resolve's per-user Scripts folder, then check that the Python Resolve uses can import grpc, "
                    "protobuf and opentimelineio (Resolve runs scripts with the system's Python).")
    parser.add_argument("--dest", type=Path, help=f"folder to copy to (default: {scripts_folder()})")
    parser.add_argument("--python", default="python" if platform.system() == "Windows" else "python3",
                        help="the Python Resolve uses (default: python3 on PATH)")
    parser.add_argument("--print", dest="dry_run", action="store_true", help="only say where it would copy")
    parser.add_argument("--json", action="store_true")


def run(args) -> int:
    from server.cli_base import EXIT_JOB_FAILED, EXIT_OK

    dest = args.dest or scripts_folder()
    copied = []
    if not args.dry_run:
        dest.mkdir(parents=True, exist_ok=True)
        for name in SCRIPTS:
            shutil.copy2(REPO / "resolve_scripts" / name, dest / name)
            copied.append(str(dest / name))
        for name, source in PACKAGES.items():
            target = dest / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            copied.append(str(target))
    check = check_python(args.python)
    data = {"dest": str(dest), "copied": copied, "python": args.python, **check}
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(("would copy" if args.dry_run else "copied") + f" the TakeBridge scripts to {dest}")
        if check["ok"]:
            print(f"{args.python} can import {', '.join(NEEDS)}: Resolve will find them "
                  f"(Workspace > Scripts > Edit > TakeBridge; restart Resolve if it was open)")
        else:
            print(f"{args.python}: {check['problem']}\ninstall them for that Python: {args.python} -m pip install "
                  f"{PIP_NAMES}")
    return EXIT_OK if check["ok"] else EXIT_JOB_FAILED


def check_python(python: str) -> dict:
    code = ("import importlib, json, sys\nmissing = []\nfor name in %r:\n    try:\n        importlib.import_module(name)\n"
            "    except Exception as exc:\n        missing.append(f'{name} ({exc})')\n"
            "print(json.dumps({'version': sys.version.split()[0], 'missing': missing}))" % (NEEDS,))
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "problem": f"cannot run {python} ({exc}); pass --python with the Python Resolve uses"}
    if proc.returncode != 0:
        return {"ok": False, "problem": f"{python} failed: {proc.stderr.strip()[-300:]}"}
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if info["missing"]:
        return {"ok": False, "python_version": info["version"],
                "problem": f"Python {info['version']} cannot import {'; '.join(info['missing'])}"}
    return {"ok": True, "python_version": info["version"], "problem": ""}
