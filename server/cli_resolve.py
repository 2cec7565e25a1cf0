"""`takebridge install-resolve`: install the Resolve scripts as a self-contained package, like
the Blender extension, from whatever installed `takebridge` (a wheel, or a checkout).

Into its own folder (--lib, per user) go the scripts' package (`takebridge_resolve`), the core
vendored under its own name (`takebridge_core`: nothing bare like `bridge` in Resolve's Python)
and, unpacked, the wheels of grpcio, protobuf, opentimelineio and typing-extensions for the
Python Resolve uses (its version and platform, asked of it), pinned in bridge/editor-wheels.txt.
Nothing is pip-installed into that Python. Resolve's Scripts/Edit folder gets only the two menu
entries, which put that folder first on the path and call the package.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import bridge
from bridge import files
from bridge.console.base import EXIT_JOB_FAILED, EXIT_OK, CliError

CHECKOUT = Path(__file__).resolve().parent.parent / "resolve_scripts"

NEEDS = ["takebridge_resolve.core", "takebridge_resolve.markers", "takebridge_core.client", "grpc",
         "google.protobuf", "opentimelineio"]
MENU = {"TakeBridge.py": ("show_dialog", "the dialog (Resolve Studio), or the note that says to use the markers"),
        "TakeBridge Markers.py": ("process_markers", "every clip with a TakeBridge marker; markers coloured "
                                                     "with the outcome")}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


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


def lib_folder(system: str | None = None) -> Path:
    """Where the package lives, out of Resolve's Scripts tree (Resolve lists every .py there)."""
    system = system or platform.system()
    home = Path.home()
    if system == "Darwin":
        return home / "Library/Application Support/TakeBridge/resolve"
    if system == "Windows":
        return Path(os.environ.get("APPDATA", home / "AppData/Roaming")) / "TakeBridge/resolve"
    return Path(os.environ.get("XDG_DATA_HOME", home / ".local/share")) / "takebridge/resolve"


def scripts_package() -> Path:
    """The installed `takebridge_resolve` package (from the wheel), or the checkout's."""
    try:
        import takebridge_resolve  # shipped in the wheel; a checkout has it under resolve_scripts/
    except ImportError:
        if (CHECKOUT / "takebridge_resolve").is_dir():
            return CHECKOUT / "takebridge_resolve"
        raise CliError("this takebridge has no Resolve scripts (takebridge_resolve); reinstall it") from None
    return Path(takebridge_resolve.__file__).parent


def editor_wheels() -> list[str]:
    """The pins the editors' copies use (bridge/editor-wheels.txt, shipped inside `bridge`)."""
    text = (Path(bridge.__file__).parent / "editor-wheels.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "install-resolve", help="install the DaVinci Resolve scripts as a self-contained package",
        description="Install TakeBridge for DaVinci Resolve: the scripts' package, the TakeBridge core (as "
                    "takebridge_core) and the wheels of grpcio, protobuf and opentimelineio for the Python Resolve "
                    "uses go into their own folder (--lib); 'TakeBridge' and 'TakeBridge Markers' go to Resolve's "
                    "Workspace > Scripts > Edit folder. Nothing is installed into Resolve's Python. The wheels are "
                    "downloaded for that Python's version and platform, or taken from --wheels.")
    parser.add_argument("--dest", type=Path, help=f"Resolve's Scripts/Edit folder (default: {scripts_folder()})")
    parser.add_argument("--lib", type=Path, help=f"the package's own folder (default: {lib_folder()})")
    parser.add_argument("--python", default="python" if platform.system() == "Windows" else "python3",
                        help="the Python Resolve uses (default: python3 on PATH): the wheels are chosen for it")
    parser.add_argument("--wheels", type=Path, help="a folder of wheels to take them from (offline installs)")
    parser.add_argument("--print", dest="dry_run", action="store_true", help="only say what it would do")
    parser.add_argument("--json", action="store_true")


def run(args) -> int:
    dest, lib = args.dest or scripts_folder(), args.lib or lib_folder()
    target = python_facts(args.python)
    data = {"dest": str(dest), "lib": str(lib), "python": args.python, "from": str(Path(bridge.__file__).parent.parent),
            "version": bridge.__version__, "wheels": editor_wheels(), **target}
    if target["problem"] or args.dry_run:
        _say(args, {**data, "ok": not target["problem"], "copied": []},
             target["problem"] or f"would install TakeBridge {bridge.__version__} for Python {target['python_version']} "
                                  f"into {lib}, and its menu entries into {dest}")
        return EXIT_JOB_FAILED if target["problem"] else EXIT_OK
    wheels = _wheels(args.wheels, target, Path(tempfile.mkdtemp(prefix="takebridge-wheels-")))
    _install(lib, wheels)
    copied = [str(lib)]
    dest.mkdir(parents=True, exist_ok=True)
    for name, (entry, what) in MENU.items():
        files.write_atomic(dest / name, _menu_script(lib, entry, what))
        copied.append(str(dest / name))
    check = check_python(args.python, lib)
    data.update(copied=copied, installed_wheels=sorted(w.name for w in wheels), **check)
    _say(args, data, f"installed TakeBridge {bridge.__version__} into {lib} and its menu entries into {dest}\n" + (
        f"{args.python} imports it: Workspace > Scripts > Edit > TakeBridge (restart Resolve if it was open)"
        if check["ok"] else f"but {check['problem']}"))
    return EXIT_OK if check["ok"] else EXIT_JOB_FAILED


def python_facts(python: str) -> dict:
    """The version and platform tags of the Python Resolve uses, asked of it."""
    code = ("import json, sys, sysconfig\nprint(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
            "'full': sys.version.split()[0], 'platform': sysconfig.get_platform()}))")
    try:
        proc = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"problem": f"cannot run {python} ({exc}); pass --python with the Python Resolve uses",
                "python_version": ""}
    if proc.returncode != 0:
        return {"problem": f"{python} failed: {proc.stderr.strip()[-300:]}", "python_version": ""}
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"problem": "", "python_version": info["full"], "python_tag": info["version"],
            "platform_tags": _platform_tags(info["platform"])}


def _platform_tags(plat: str) -> list[str]:
    """pip --platform tags for a sysconfig platform (linux-x86_64, macosx-11.0-arm64, win-amd64)."""
    if plat.startswith("linux"):
        machine = plat.split("-", 1)[1].replace("-", "_")
        return [f"manylinux_2_28_{machine}", f"manylinux2014_{machine}", f"manylinux_2_17_{machine}",
                f"linux_{machine}"]
    if plat.startswith("macosx"):
        _, release, machine = plat.split("-")
        major = int(release.split(".")[0])
        return [f"macosx_{v}_0_{m}" for v in range(max(major, 11), 16) for m in (machine, "universal2")]
    return [plat.replace("-", "_").replace(".", "_")]


def _wheels(folder: Path | None, target: dict, download_to: Path) -> list[Path]:
    """The pinned wheels for the target Python: from `folder`, or downloaded (pip, binary only)."""
    pins = editor_wheels()
    if folder is None:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--dest", str(download_to), "--python-version", target["python_tag"], "--implementation", "cp"]
        for tag in target["platform_tags"]:
            cmd += ["--platform", tag]
        proc = subprocess.run(cmd + pins, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CliError(f"cannot download {', '.join(pins)} for Python {target['python_tag']} "
                           f"({proc.stderr.strip()[-400:]}); download them elsewhere and pass --wheels")
        folder = download_to
    chosen = []
    for pin in pins:
        name, version = pin.split("==")
        fits = [w for w in sorted(Path(folder).glob("*.whl"))
                if w.name.split("-")[:2] == [_normal(name), version] and _fits(w.name, target)]
        if not fits:
            raise CliError(f"no wheel of {pin} for Python {target['python_tag']} on {target['platform_tags'][0]} in "
                           f"{folder}; download it (pip download --only-binary=:all: {pin}) or pass another --wheels")
        chosen.append(fits[0])
    return chosen


def _normal(name: str) -> str:
    """A distribution name as wheel file names spell it (typing-extensions -> typing_extensions)."""
    return name.lower().replace("-", "_").replace(".", "_")


def _fits(name: str, target: dict) -> bool:
    """Whether a wheel's tags fit the target Python (pure wheels fit any)."""
    python_tags, abi, plat = name[:-4].split("-")[-3:]
    if plat == "any":
        return True
    want = int(target["python_tag"].replace(".", ""))
    made_for = [int(t[2:]) for t in python_tags.split(".") if t.startswith("cp") and t[2:].isdigit()]
    python_ok = want in made_for or (abi == "abi3" and any(v <= want for v in made_for))
    return python_ok and any(p in plat.split(".") for p in target["platform_tags"])


def _install(lib: Path, wheels: list[Path]) -> None:
    """The package into `lib`, built beside it and swapped in whole: a failed install leaves the
    old one working."""
    lib.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{lib.name}.", dir=lib.parent))
    try:
        shutil.copytree(scripts_package(), stage / "takebridge_resolve", ignore=_IGNORE)
        shutil.copytree(Path(bridge.__file__).parent, stage / "takebridge_core", ignore=_IGNORE)
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(stage / "site-packages")
        (stage / "INSTALLED.json").write_text(json.dumps({"version": bridge.__version__,
                                                          "wheels": [w.name for w in wheels]}, indent=1))
        old = lib.with_name(f".{lib.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if lib.exists():
            os.replace(lib, old)
        os.replace(stage, lib)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _menu_script(lib: Path, entry: str, what: str) -> str:
    return (f'"""Workspace > Scripts > Edit: TakeBridge {bridge.__version__}, {what}.\n'
            f'Written by `takebridge install-resolve`; the package is in {lib}."""\n'
            f"import sys\n\n"
            f"LIB = {str(lib)!r}\n"
            f"for _path in (LIB + {os.sep + 'site-packages'!r}, LIB):\n"
            f"    if _path not in sys.path:\n"
            f"        sys.path.insert(0, _path)\n"
            f"from takebridge_resolve import menu  # noqa: E402\n\n"
            f"menu.{entry}(globals())\n")


def check_python(python: str, lib: Path) -> dict:
    """Whether the Python Resolve uses imports the installed package with nothing else on its path."""
    code = ("import importlib, json, sys\nsys.path[:0] = [%r, %r]\nmissing = []\nfor name in %r:\n    try:\n"
            "        importlib.import_module(name)\n    except Exception as exc:\n"
            "        missing.append(f'{name} ({exc})')\nprint(json.dumps({'missing': missing}))"
            % (str(lib / "site-packages"), str(lib), NEEDS))
    try:
        proc = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "problem": f"cannot run {python} ({exc}); pass --python with the Python Resolve uses"}
    if proc.returncode != 0:
        return {"ok": False, "problem": f"{python} failed: {proc.stderr.strip()[-300:]}"}
    missing = json.loads(proc.stdout.strip().splitlines()[-1])["missing"]
    if missing:
        return {"ok": False, "problem": f"{python} cannot import {'; '.join(missing)} from {lib}"}
    return {"ok": True, "problem": ""}


def _say(args, data: dict, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)
