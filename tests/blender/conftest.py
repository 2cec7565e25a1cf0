"""Blender tests: the real `bpy` module (its own virtual environment, Python 3.11), headless,
against a real TakeBridge server process started from the main environment. Run by
`make test-blender` (`pytest --confcutdir tests/blender tests/blender` in .venv-bpy50 and
.venv-bpy45); the main test run skips this folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SERVER_PYTHON = os.environ.get("TAKEBRIDGE_SERVER_PYTHON", str(REPO / ".venv" / "bin" / "python"))
W, H, RATE = 64, 48, 24


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A real server process (classic backend) on a free loopback port."""
    store = tmp_path_factory.mktemp("store")
    proc = subprocess.Popen([SERVER_PYTHON, "-m", "server.cli", "--log-level", "warning", "serve", "--port", "0",
                             "--store", str(store), "--json"], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    assert line, f"the server did not start ({SERVER_PYTHON})"
    yield json.loads(line)["address"]
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="session")
def diffusers_server(tmp_path_factory):
    """A real server process with the diffusers backend on tiny random pipelines (built offline by
    `takebridge models make-tiny` in the main environment: torch is not in this one), on the CPU."""
    models = tmp_path_factory.mktemp("models")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    made = subprocess.run([SERVER_PYTHON, "-m", "server.cli", "models", "make-tiny", str(models), "--json"], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=300)
    assert made.returncode == 0, f"make-tiny failed ({SERVER_PYTHON}): {made.stderr[-2000:]}"
    profile = json.loads(made.stdout.strip().splitlines()[-1])["profile"]
    proc = subprocess.Popen([SERVER_PYTHON, "-m", "server.cli", "--log-level", "warning", "serve", "--port", "0",
                             "--store", str(tmp_path_factory.mktemp("store")), "--models", profile, "--device", "cpu",
                             "--json"], cwd=REPO, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    assert line, f"the diffusers server did not start ({SERVER_PYTHON})"
    yield json.loads(line)["address"]
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="session")
def addon():
    import blender_addon

    blender_addon.register()
    yield blender_addon
    blender_addon.unregister()  # 4.5 hangs at exit with operators still registered


def write_movie(path: Path, frames: np.ndarray, rate=RATE, timecode="01:00:00:00") -> str:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=Fraction(rate))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        stream.metadata["timecode"] = timecode
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def clip_frames(n: int, seed: int = 0, square=True) -> tuple[np.ndarray, np.ndarray]:
    """A textured pan with a bright square crossing it, and the square's mask."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(40, 200, (H, W + n, 3), dtype=np.uint8)
    frames = np.stack([texture[:, i:i + W] for i in range(n)]).copy()
    masks = np.zeros((n, H, W), bool)
    if square:
        for i in range(n):
            x = 8 + i
            frames[i, 16:32, x:x + 16] = 250
            masks[i, 12:36, x - 4:x + 20] = True
    return frames, masks


@pytest.fixture
def scene(addon, tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.render.fps, sc.render.fps_base = RATE, 1
    sc.render.resolution_x, sc.render.resolution_y = W, H
    sc.render.resolution_percentage = 100
    sc.frame_start, sc.frame_end = 1, 60
    sc.takebridge.codec = "FFV1"
    sc.takebridge.take_dir = str(tmp_path / "takes")
    return sc


def draw_panel(scene, active) -> list:
    """The panel's draw with a stand-in layout (headless Blender has no window to draw in): what
    it asked to show, as (UILayout call, args, kwargs) with the real API's names."""
    from blender_addon import ui

    calls = []

    class Layout:
        def __getattr__(self, name):
            def record(*args, **kwargs):
                calls.append((name, args, kwargs))
                return Layout()
            return record

        def __setattr__(self, name, value):
            calls.append(("set", name, value))

    class Context:
        active_strip = active
        sequencer_scene = scene

    ui.TAKEBRIDGE_PT_panel.draw(type("P", (), {"layout": Layout()})(), Context())
    return calls
