"""`takebridge install-resolve` from an installed takebridge wheel (not the checkout), and the
installed package alone: Resolve's Python with nothing on its path but the install folder (and the
stand-in for Resolve, tests/support/resolve_standin.py) imports everything and runs the marker script.
The wheels for Resolve's Python are downloaded by the command (the package index, offline here)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.media import probe

from support import contract
from support.servers import module_server as server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, runpy, sys
facts, media, edit, server = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
import os
os.environ["TAKEBRIDGE_SERVER"] = server
import resolve_standin
from types import SimpleNamespace
from fractions import Fraction
resolve_standin.MEDIA_FACTS[media] = SimpleNamespace(**{**facts, "rate": Fraction(facts["rate"])})
resolve = resolve_standin.Resolve()
item = resolve.import_and_place(media, 1, 0, 4, 24)
item.AddMarker(2, "Blue", "gen", "tb refine 0.4", 1)
for run in range(2):   # twice: the second run finds the marker processed and skips it
    runpy.run_path(edit + "/TakeBridge Markers.py", init_globals={"resolve": resolve})
import grpc, google.protobuf, opentimelineio, takebridge_core, takebridge_resolve, typing_extensions
print(json.dumps({"takes": item.GetTakesCount(), "marker": item.GetMarkers()[2],
                  "modules": {m.__name__: m.__file__ for m in (grpc, google.protobuf, opentimelineio,
                                                               takebridge_core, takebridge_resolve, typing_extensions)},
                  "bare_bridge": "bridge" in sys.modules, "server": "server" in sys.modules}))
"""


def test_install_resolve_from_the_wheel_and_the_installed_folder_alone_runs_the_markers(server, tmp_path):
    import importlib.util

    wheel_dir, site = tmp_path / "dist", tmp_path / "site"
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []   # else pip fetches it
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation,
                    "-w", str(wheel_dir), str(REPO)], check=True, capture_output=True)
    (wheel,) = wheel_dir.glob("takebridge-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    edit, lib = tmp_path / "Resolve" / "Scripts" / "Edit", tmp_path / "TakeBridge"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "server.cli", "install-resolve", "--dest", str(edit), "--lib", str(lib),
                           "--python", sys.executable, "--json"], cwd=tmp_path, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["ok"] and data["from"] == str(site), data            # the wheel's code, not the checkout's
    assert sorted(p.name for p in edit.iterdir()) == ["TakeBridge Markers.py", "TakeBridge.py"]
    assert {p.name for p in lib.iterdir()} == {"takebridge_resolve", "takebridge_core", "site-packages", "INSTALLED.json"}
    assert not (lib / "bridge").exists() and not (edit / "bridge").exists()
    pins = [w.split("==")[0].replace("-", "_") for w in data["wheels"]]
    assert sorted(n.split("-")[0] for n in data["installed_wheels"]) == sorted(pins)

    # Resolve's Python with only the installed folder (and the stand-in for Resolve) on its path
    media = contract.media(tmp_path / "media")["A"]
    info = probe(media)
    facts = {"start_timecode": info.start_timecode, "rate": str(info.rate), "frame_count": info.frame_count,
             "width": info.width, "height": info.height}
    standin = tmp_path / "standin"
    standin.mkdir()
    shutil.copy2(REPO / "tests" / "support" / "resolve_standin.py", standin)
    # PyAV for the stand-in's own media reading comes last: what our code imports must come from the lib
    import av
    path = [str(lib / "site-packages"), str(lib), str(standin), str(Path(av.__file__).parent.parent)]
    child = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {path!r}\n" + CHILD,
                            json.dumps(facts), media, str(edit), server], capture_output=True, text=True, cwd=tmp_path,
                           timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["takes"] == 2 and result["marker"]["color"] in ("Green", "Yellow")
    assert result["marker"]["customData"].startswith("takebridge:")
    assert all(f.startswith(str(lib)) for f in result["modules"].values()), result["modules"]
    assert not result["bare_bridge"] and not result["server"]
