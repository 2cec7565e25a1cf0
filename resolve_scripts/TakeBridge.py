"""Workspace > Scripts > Edit > TakeBridge: the dialog (Resolve Studio), or, where scripts have
no UIManager, the note that says to use the marker mode."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(globals().get("__file__", "") or sys.argv[0] or "."))
sys.path.insert(0, HERE)

from takebridge_resolve import dialog  # noqa: E402
from takebridge_resolve.launch import resolve_and_bmd  # noqa: E402

_resolve, _bmd = resolve_and_bmd(globals())
_why = dialog.show(_resolve, _bmd, server=os.environ.get("TAKEBRIDGE_SERVER", "127.0.0.1:50151"))
if _why:
    print(_why)
