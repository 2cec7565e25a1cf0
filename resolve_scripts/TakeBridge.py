"""Workspace > Scripts > Edit > TakeBridge: the dialog (Resolve Studio), or, where scripts have
no UIManager, the note that says to use the marker mode. (The checkout's copy: `takebridge
install-resolve` writes its own, pointing at the installed package.)"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(globals().get("__file__", "") or sys.argv[0] or ".")))
from takebridge_resolve import menu  # noqa: E402

menu.show_dialog(globals())
