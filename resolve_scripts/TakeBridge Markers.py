"""Workspace > Scripts > Edit > TakeBridge Markers: process every clip with a TakeBridge marker
('tb extend 24', 'tb refine 0.6', 'tb inpaint /path/matte.mov') and colour the markers with
the outcome (works in the free edition too). Markers that already made a take are skipped;
set TAKEBRIDGE_REDO=1 to make them again."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(globals().get("__file__", "") or sys.argv[0] or "."))
sys.path.insert(0, HERE)

from takebridge_resolve import markers  # noqa: E402
from takebridge_resolve.launch import resolve_and_bmd  # noqa: E402

_resolve, _ = resolve_and_bmd(globals())
for _result in markers.process(_resolve, server=os.environ.get("TAKEBRIDGE_SERVER", "127.0.0.1:50151"),
                               redo=os.environ.get("TAKEBRIDGE_REDO") == "1"):
    print(f"{_result['item']}: {_result.get('take_id') or _result.get('error', '')} -> {_result['marker_colour']}")
