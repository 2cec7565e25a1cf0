"""A real TakeBridge server process for tests, and the command line run as a user runs it."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TAKEBRIDGE = [sys.executable, "-m", "server.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store: Path, port: int, *, models: Path | None = None) -> tuple[subprocess.Popen, str]:
    """A server process; with `models` (a models.json profile) its default backend is diffusers,
    serving them on the CPU."""
    extra = ["--models", str(models), "--device", "cpu", "--backend", "diffusers"] if models is not None else []
    proc = subprocess.Popen([*TAKEBRIDGE, "--log-level", "warning", "serve", "--port", str(port),
                             "--store", str(store), *extra, "--json"], stdout=subprocess.PIPE, text=True, env=ENV)
    line = proc.stdout.readline()
    assert line, "the server printed no address"
    return proc, json.loads(line)["address"]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def cli(*args, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([*TAKEBRIDGE, *args], capture_output=True, text=True, env=ENV, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """One real server process for a test module; its address (tests import it as `server`)."""
    proc, address = start_server(tmp_path_factory.mktemp("store"), free_port())
    yield address
    proc.terminate()
    proc.wait(timeout=20)


def tiny_models(folder: Path) -> Path:
    """Tiny random diffusers pipelines built offline (`takebridge models make-tiny`); their profile."""
    made = cli("models", "make-tiny", str(folder), "--json")
    return Path(json.loads(made.stdout.strip().splitlines()[-1])["profile"])


@pytest.fixture(scope="module")
def diffusers_server(tmp_path_factory):
    """One real server process for a test module whose default backend is diffusers on tiny
    pipelines (CPU): drafts and finals; its address."""
    proc, address = start_server(tmp_path_factory.mktemp("store"), free_port(),
                                 models=tiny_models(tmp_path_factory.mktemp("models")))
    yield address
    stop(proc)
