"""What the two Workspace > Scripts > Edit entries do, so the scripts themselves are three lines
(the checkout's resolve_scripts/*.py, and the ones `takebridge install-resolve` writes)."""
from __future__ import annotations

import os

from . import dialog, markers
from .launch import resolve_and_bmd


def server() -> str:
    return os.environ.get("TAKEBRIDGE_SERVER", "127.0.0.1:50151")


def show_dialog(namespace: dict) -> None:
    """TakeBridge: the dialog (Resolve Studio), or, where scripts have no UIManager, the note
    that says to use the marker mode."""
    resolve, bmd = resolve_and_bmd(namespace)
    why = dialog.show(resolve, bmd, server=server())
    if why:
        print(why)


def process_markers(namespace: dict) -> list[dict]:
    """TakeBridge Markers: every clip with a TakeBridge marker ('tb extend 24', 'tb refine 0.6',
    'tb inpaint /path/matte.mov') and every timeline marker 'tb generate 72 "prompt"' in a gap (a
    pre-vis shot there), markers coloured with the outcome; those that already made a take are
    skipped unless TAKEBRIDGE_REDO=1."""
    resolve, _ = resolve_and_bmd(namespace)
    results = markers.process(resolve, server=server(), redo=os.environ.get("TAKEBRIDGE_REDO") == "1")
    for result in results:
        print(f"{result['item']}: {result.get('take_id') or result.get('error', '')} -> {result['marker_colour']}")
    return results
