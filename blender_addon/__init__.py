"""TakeBridge for Blender's Video Sequence Editor: Refine, Extend and Inpaint selected strips
on a TakeBridge server, and Generate a pre-vis shot in a gap (a placeholder strip filling it);
the results come back as takes on channels above their source (or shot).

An extension (blender_manifest.toml); its dependencies ship as wheels inside it."""
from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from . import compat, jobs, operators, props, ui, vse_takes

_following = False


@persistent
def _follow_sources(scene, depsgraph=None):
    """Keep takes with their source when the editor moves it."""
    global _following
    if _following or scene is None or getattr(scene, "sequence_editor", None) is None:
        return
    _following = True
    try:
        vse_takes.follow_sources(scene)
    finally:
        _following = False


@persistent
def _reattach(*_args):
    jobs.reattach_all()


def register():
    props.register()
    for cls in (*operators.CLASSES, *ui.CLASSES):
        bpy.utils.register_class(cls)
    bpy.app.handlers.depsgraph_update_post.append(_follow_sources)
    bpy.app.handlers.load_post.append(_reattach)


def unregister():
    for handler, fn in ((bpy.app.handlers.depsgraph_update_post, _follow_sources),
                        (bpy.app.handlers.load_post, _reattach)):
        if fn in handler:
            handler.remove(fn)
    if bpy.app.timers.is_registered(jobs.apply_events):
        bpy.app.timers.unregister(jobs.apply_events)
    jobs.release_icons()
    for cls in reversed((*operators.CLASSES, *ui.CLASSES)):
        bpy.utils.unregister_class(cls)
    props.unregister()


__all__ = ["register", "unregister", "compat"]
