"""Blender 4.2 LTS -> 5.x differences in one place (Sequence -> Strip, sequencer_scene,
new_effect's length, strip connections)."""
from __future__ import annotations

from fractions import Fraction

import bpy


def version() -> tuple[int, int, int]:
    return tuple(bpy.app.version)


def sequencer_scene(context=None):
    """The scene the Sequencer edits: 5.0+ `context.sequencer_scene` (None in a fresh
    headless session), else the context scene."""
    context = context or bpy.context
    scene = getattr(context, "sequencer_scene", None)
    return scene or context.scene


def editor(scene):
    return scene.sequence_editor or scene.sequence_editor_create()


def strips(scene):
    """Top-level strips (4.4+ `strips`, 4.2 `sequences`). Never `a or b`: an empty
    collection is falsy."""
    ed = editor(scene)
    return ed.strips if hasattr(ed, "strips") else ed.sequences


def strips_all(scene):
    ed = editor(scene)
    return ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all


def selected_strips(context):
    for name in ("selected_strips", "selected_sequences"):
        value = getattr(context, name, None)
        if value is not None:
            return list(value)
    return [s for s in strips_all(sequencer_scene(context)) if s.select]


def new_effect(scene, name: str, kind: str, channel: int, start: int, end: int, input1=None, input2=None):
    coll = strips(scene)
    if version() >= (5, 0, 0):
        return coll.new_effect(name=name, type=kind, channel=channel, frame_start=start, length=end - start,
                               input1=input1, input2=input2)
    if version() >= (4, 4, 0):
        return coll.new_effect(name=name, type=kind, channel=channel, frame_start=start, frame_end=end,
                               input1=input1, input2=input2)
    return coll.new_effect(name=name, type=kind, channel=channel, frame_start=start, frame_end=end,
                           seq1=input1, seq2=input2)


def scene_rate(scene):
    """Exact scene fps as a Fraction (29.97 = 30000/1001)."""

    return Fraction(scene.render.fps) / Fraction(scene.render.fps_base).limit_denominator(1001)


def has_connections() -> bool:
    """Strip connections (5.2+) keep takes with their source natively."""
    return hasattr(bpy.types, "Strip") and hasattr(bpy.types.Strip, "connections")
