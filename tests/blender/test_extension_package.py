"""The built extension (`make blender-extension`): its manifest passes Blender's own
validator, Blender's extension installer installs and enables it, and its wheels import in
Blender's Python (3.11 here) on their own."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bpy

REPO = Path(__file__).resolve().parents[2]
ZIPS = sorted(glob.glob(str(REPO / "build" / "takebridge-*.zip")))
pytestmark = pytest.mark.skipif(not ZIPS, reason="build the extension first: make blender-extension")
BL_PKG = Path(bpy.__file__).resolve().parents[2] / "addons_core" / "bl_pkg"   # bpy/<ver>/scripts/modules/bpy

INSTALL = r"""
import json, sys, importlib, bpy
result = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
mod = importlib.import_module("bl_ext.user_default.takebridge")
repo = [r for r in bpy.context.preferences.extensions.repos if r.module == "user_default"][0]
print(json.dumps({"result": sorted(result), "module": mod.__file__, "repo": repo.directory,
                  "operators": [op for op in dir(bpy.ops.takebridge)]}))
import os
os._exit(0)
"""

ISOLATED = r"""
import sys
sys.path[:0] = [sys.argv[1]]
import grpc, google.protobuf, opentimelineio, takebridge_bridge
from takebridge_bridge.client import GenerationClient
from takebridge_bridge.takes import place_take
import opentimelineio.adapters as adapters
print(grpc.__file__, opentimelineio.__file__, takebridge_bridge.__file__, len(adapters.available_adapter_names()))
"""


def test_the_manifest_passes_blenders_validator():
    cli = BL_PKG / "cli" / "blender_ext.py"
    proc = subprocess.run([sys.executable, str(cli), "validate", ZIPS[-1]], capture_output=True, text=True)
    assert proc.returncode == 0 and "Success" in proc.stdout, proc.stdout + proc.stderr
    # stamped with the one version (bridge/__init__.py), like the wheels pyproject names
    import re
    import tomllib
    import zipfile

    import bridge

    with zipfile.ZipFile(ZIPS[-1]) as archive:
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
        wheels = [n for n in archive.namelist() if n.startswith("wheels/")]
    assert manifest["version"] == bridge.__version__ and ZIPS[-1].endswith(f"takebridge-{bridge.__version__}.zip")
    pins = [p for p in (REPO / "bridge" / "editor-wheels.txt").read_text().split() if "==" in p]
    for pin in pins:
        name, version = pin.replace("-", "_").split("==")
        assert any(re.match(rf"wheels/{name}-{re.escape(version)}-", w) for w in wheels), (pin, wheels)


def test_blenders_installer_installs_and_enables_it_and_its_wheels_import(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config")}
    proc = subprocess.run([sys.executable, "-c", INSTALL, ZIPS[-1]], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data["result"] == ["FINISHED"] and data["module"].startswith(str(tmp_path))
    for name in ("refine", "extend", "inpaint", "cancel", "take_activate", "take_review", "take_finalize", "compare"):
        assert name in data["operators"]
    site = next(Path(data["repo"]).parent.glob(".local/lib/python3*/site-packages"))
    for package in ("grpc", "google/protobuf", "opentimelineio", "takebridge_bridge", "otio_fcp_adapter", "aaf2"):
        assert (site / package).is_dir(), f"{package} was not installed from the bundled wheels"
    # the bundled wheels alone (no venv site-packages) are enough for the add-on's imports
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", ISOLATED, str(site)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(site) in proc.stdout.split()[0] and str(site) in proc.stdout.split()[2]
    assert int(proc.stdout.split()[-1]) >= 6, "the OTIO adapter plugins are registered from the wheels"
