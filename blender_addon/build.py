"""Build the installable extension zip: `make blender-extension` -> build/takebridge-<version>.zip.

Inside: the add-on's modules, blender_manifest.toml with its `wheels` list filled in, and
wheels/ with every dependency for Python 3.11 (Blender 4.2-5.0) and 3.13 (5.1+) on Linux x64,
Windows x64 and macOS arm64: grpcio, protobuf, opentimelineio, the OTIO adapter plugins,
pyaaf2, and TakeBridge's `bridge` package as the wheel `takebridge_bridge` (renamed, so it
cannot clash with another extension's modules). Blender installs wheels itself: nobody pips
into Blender's Python.

Downloading the dependency wheels needs the package registry (build time only; they are
cached in build/wheels). `--platform-only` builds a zip with just this machine's wheels.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "blender_addon"
BUILD = ROOT / "build"
PLATFORMS = {  # Blender platform -> pip platform tags
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux2014_x86_64", "manylinux_2_17_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_11_0_arm64", "macosx_12_0_arm64", "macosx_14_0_arm64", "macosx_11_0_universal2"],
}
PYTHONS = ("3.11", "3.13")
EDITOR_WHEELS = [line.strip() for line in (ROOT / "bridge" / "editor-wheels.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#")]          # the pins, stated once
BINARY = [pin for pin in EDITOR_WHEELS if not pin.startswith("typing-extensions")]
PURE = ["otio-cmx3600-adapter==1.0.0", "otio-fcp-adapter==1.0.0", "otio-fcpx-xml-adapter==1.0.0",
        "otio-aaf-adapter==2.0.0", "pyaaf2==1.7.1",
        *[pin for pin in EDITOR_WHEELS if pin.startswith("typing-extensions")]]   # grpcio imports typing_extensions
ADDON_FILES = ["__init__.py", "bridge_import.py", "compat.py", "compare.py", "contracts.py", "jobs.py", "operators.py",
               "props.py", "ui.py", "vse.py", "vse_takes.py", "blender_manifest.toml"]


def version() -> str:
    """TakeBridge's version, stated once in bridge/__init__.py; the built manifest is stamped with it."""
    match = re.search(r'^__version__ = "([^"]+)"', (ROOT / "bridge" / "__init__.py").read_text(), re.M)
    return match.group(1)


def bridge_wheel(dest: Path) -> Path:
    """`bridge` as the wheel takebridge_bridge (imports rewritten), built without setuptools."""
    ver = version()
    name = f"takebridge_bridge-{ver}-py3-none-any.whl"
    files: dict[str, bytes] = {}
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        text = path.read_text()
        text = re.sub(r"(^|\s)(from|import) bridge(\.|\s)", r"\1\2 takebridge_bridge\3", text, flags=re.M)
        files[f"takebridge_bridge/{path.relative_to(ROOT / 'bridge').as_posix()}"] = text.encode()
    dist = f"takebridge_bridge-{ver}.dist-info"
    files[f"{dist}/METADATA"] = (f"Metadata-Version: 2.1\nName: takebridge-bridge\nVersion: {ver}\n"
                                 f"Summary: TakeBridge timeline core and client, vendored for the Blender extension\n"
                                 f"Requires-Dist: grpcio\nRequires-Dist: protobuf\nRequires-Dist: opentimelineio\n"
                                 ).encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: takebridge-build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist}/top_level.txt"] = b"takebridge_bridge\n"
    record = []
    for arcname, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arcname},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / name
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as wheel:
        for arcname, data in files.items():
            wheel.writestr(arcname, data)
    return out


def download(cache: Path, platforms: dict, pythons: tuple) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", str(cache)]
    subprocess.run(pip + PURE, check=True)
    for tags in platforms.values():
        for python in pythons:
            cmd = pip + ["--python-version", python, "--implementation", "cp"]
            for tag in tags:
                cmd += ["--platform", tag]
            subprocess.run(cmd + BINARY, check=True)
    return sorted(cache.glob("*.whl"))


def this_platform() -> dict:
    import platform

    system, machine = platform.system(), platform.machine().lower()
    key = {"Linux": "linux-x64", "Windows": "windows-x64", "Darwin": "macos-arm64"}[system]
    if machine not in ("x86_64", "amd64", "arm64", "aarch64"):
        raise SystemExit(f"no Blender extension platform for {system} {machine}")
    return {key: PLATFORMS[key]}


def build(platform_only: bool = False, wheels_from: Path | None = None) -> Path:
    ver = version()
    stage = BUILD / "blender_extension"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "wheels").mkdir(parents=True)
    for name in ADDON_FILES:
        shutil.copy2(ADDON / name, stage / name)
    platforms = this_platform() if platform_only else PLATFORMS
    pythons = (f"{sys.version_info.major}.{sys.version_info.minor}",) if platform_only else PYTHONS
    wheels = sorted(wheels_from.glob("*.whl")) if wheels_from else download(BUILD / "wheels", platforms, pythons)
    for wheel in wheels:
        shutil.copy2(wheel, stage / "wheels" / wheel.name)
    bridge_wheel(stage / "wheels")
    names = sorted(p.name for p in (stage / "wheels").glob("*.whl"))
    manifest = (stage / "blender_manifest.toml").read_text()
    manifest = re.sub(r'^version = "[^"]*".*$', f'version = "{ver}"', manifest, flags=re.M)
    listing = "wheels = [\n" + "".join(f'  "./wheels/{n}",\n' for n in names) + "]"
    manifest = re.sub(r"^wheels = \[\]", listing, manifest, flags=re.M)
    if platform_only:
        manifest = re.sub(r"^platforms = .*$", f'platforms = ["{next(iter(platforms))}"]', manifest, flags=re.M)
    (stage / "blender_manifest.toml").write_text(manifest)
    out = BUILD / f"takebridge-{ver}.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(stage).as_posix())
    tmp = out.with_suffix(".zip.part")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform-only", action="store_true", help="only this machine's platform and Python")
    parser.add_argument("--wheels-from", type=Path, help="use the wheels in this folder instead of downloading")
    args = parser.parse_args(argv)
    out = build(args.platform_only, args.wheels_from)
    print(f"built {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
