"""Workspace > Scripts > Edit > TakeBridge Markers: process every clip with a TakeBridge marker
('tb extend 24', 'tb refine 0.6', 'tb inpaint /path/matte.mov') and colour the markers with
the outcome (works in the free edition too). Markers that already made a take are skipped;
set TAKEBRIDGE_REDO=1 to make them again. (The checkout's copy: `takebridge install-resolve`
writes its own, pointing at the installed package.)"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(globals().get("__file__", "") or sys.argv[0] or ".")))
from takebridge_resolve import menu  # noqa: E402

menu.process_markers(globals())
