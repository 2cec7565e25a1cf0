"""The Sequencer sidebar panel "TakeBridge" and its take list."""
from __future__ import annotations

import bpy

from . import compat, contracts, jobs, vse, vse_takes
from .vse import TAKE_KEY


def _source(context):
    strip = getattr(context, "active_strip", None) or getattr(context, "active_sequence_strip", None)
    if strip is None:
        return None
    if vse.is_take(strip):
        name = strip[TAKE_KEY].get("source")
        return next((s for s in compat.strips_all(compat.sequencer_scene(context)) if s.name == name), None)
    return strip if vse.media_strip_kind(strip) or vse.is_previs(strip) else None


def _tier_label(take) -> str:
    """" draft" for a draft take, " final" for the final made from one; nothing for the others."""
    if vse_takes.tier_of(take) == "draft":
        return " draft"
    return " final" if take[TAKE_KEY].get("promoted_from") else ""


class TAKEBRIDGE_UL_takes(bpy.types.UIList):
    """The selected source's take strips (filtered from the editor's strips)."""

    source_name = ""

    def filter_items(self, context, data, propname):
        strips = getattr(data, propname)
        wanted = TAKEBRIDGE_UL_takes.source_name
        flags = [self.bitflag_filter_item if vse.is_take(s) and s[TAKE_KEY].get("source") == wanted else 0
                 for s in strips]
        order = sorted(range(len(strips)), key=lambda i: (flags[i] == 0,
                                                          int(strips[i][TAKE_KEY].get("version", 0)) if flags[i] else 0))
        return flags, [order.index(i) for i in range(len(strips))]

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0):
        info = item[TAKE_KEY]
        row = layout.row(align=True)
        row.label(text=f"v{int(info.get('version', 0)):03d} {info.get('op', '')}{_tier_label(item)}",
                  icon="HIDE_OFF" if not item.mute else "HIDE_ON")
        status = info.get("status", "")
        flags = list(info.get("flags", []))
        row.label(text=status + (f" ⚑{len(flags)}" if flags else ""),
                  icon={"approved": "CHECKMARK", "rejected": "CANCEL", "needs_review": "ERROR"}.get(status, "NONE"))


class TAKEBRIDGE_PT_panel(bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "TakeBridge"
    bl_label = "TakeBridge"

    def draw(self, context):
        scene = compat.sequencer_scene(context)
        settings = scene.takebridge
        layout = self.layout
        box = layout.box()
        row = box.row(align=True)
        row.prop(settings, "server", text="")
        row.operator("takebridge.connect", text="", icon="FILE_REFRESH")
        box.label(text=settings.status)

        source = _source(context)
        shot = layout.box()
        row = shot.row(align=True)
        row.operator("takebridge.contract_load", text="Load Contract", icon="FILEBROWSER")
        row.operator("takebridge.contract_save", text="Save Contract", icon="FILE_TICK")
        if settings.contract_path or settings.contract_extra:
            row = shot.row(align=True)
            row.label(text=f"Contract: {bpy.path.basename(settings.contract_path) or '(loaded)'}")
            row.operator("takebridge.contract_clear", text="", icon="X")
            for line in contracts.describe(settings):
                shot.label(text=line)
        col = layout.column(align=True)
        col.prop(settings, "prompt")
        col.prop(settings, "negative_prompt")
        row = col.row(align=True)
        row.prop(settings, "seed")
        row.prop(settings, "seed_lock", text="", icon="LOCKED" if settings.seed_lock else "UNLOCKED")
        refs = col.box()
        row = refs.row()
        row.label(text=f"Reference images: {len(settings.references)}")
        row.operator("takebridge.reference_add", text="", icon="ADD")
        for index, ref in enumerate(settings.references):
            line = refs.row(align=True)
            line.prop(ref, "role", text="")
            line.label(text=bpy.path.basename(ref.filepath))
            line.operator("takebridge.reference_remove", text="", icon="X").index = index
        col.prop(settings, "backend")
        row = col.row(align=True)
        row.prop(settings, "model")
        row.prop(settings, "draft", toggle=True)
        col.prop(settings, "codec")
        col.prop(settings, "fallback")
        col.prop(settings, "handles")

        ops = layout.box()
        ops.label(text=f"Strip: {source.name}" if source else "Select a movie or image strip")
        row = ops.row(align=True)
        row.prop(settings, "strength")
        row.operator("takebridge.refine")
        row = ops.row(align=True)
        row.prop(settings, "extend_side", text="")
        row.prop(settings, "extend_amount", text="")
        row.prop(settings, "extend_unit", text="")
        row.operator("takebridge.extend")
        row = ops.row(align=True)
        row.prop_search(settings, "mask_strip", compat.editor(scene), "strips" if hasattr(compat.editor(scene), "strips")
                        else "sequences", text="Mask")
        row.prop(settings, "feather")
        row.operator("takebridge.inpaint")

        gen = layout.box()
        again = source is not None and vse.is_previs(source) and settings.generate_range == "GAP" and \
            source.frame_final_start <= scene.frame_current < source.frame_final_end
        gen.label(text=f"Generate another take of {source.name}" if again else "Generate a pre-vis shot")
        gen.prop(settings, "generate_shot")
        gen.prop(settings, "generate_range", text="")
        row = gen.row(align=True)
        row.prop(settings, "generate_mode", text="")
        row.prop(settings, "generate_camera", text="")
        row.prop(settings, "generate_camera_amount")
        gen.prop_search(settings, "board_strip", compat.editor(scene), "strips" if hasattr(compat.editor(scene), "strips")
                        else "sequences", text="Board")
        row = gen.row(align=True)
        row.prop(settings, "generate_burn_in")
        row.operator("takebridge.generate", icon="SEQUENCE")

        for item in settings.jobs:
            if item.state in jobs.TERMINAL and item.placed:
                continue
            row = layout.row(align=True)
            row.progress(factor=item.progress, text=f"{item.op} {item.source}: {item.state} {item.stage}"
                         + (f" ~{item.eta:.0f}s" if item.eta >= 0 else "")) if hasattr(row, "progress") else \
                row.label(text=f"{item.op} {item.source}: {item.state} {item.progress * 100:.0f}%")
            cancel = row.operator("takebridge.cancel", text="", icon="X")
            cancel.job_id = item.job_id
            icon = jobs.preview_icon(item.job_id)
            if icon:
                layout.template_icon(icon_value=icon, scale=6.0)
            if item.message:
                layout.label(text=item.message)

        if source is not None:
            takes = vse.takes_of(scene, source.name)
            layout.label(text=f"Takes of {source.name}: {len(takes)}")
            TAKEBRIDGE_UL_takes.source_name = source.name
            editor = compat.editor(scene)
            layout.template_list("TAKEBRIDGE_UL_takes", "", editor,
                                 "strips_all" if hasattr(editor, "strips_all") else "sequences_all",
                                 settings, "take_index", rows=3)
            for take in takes:
                info = take[TAKE_KEY]
                row = layout.row(align=True)
                activate = row.operator("takebridge.take_activate",
                                        text=f"v{int(info['version']):03d} {info['op']}{_tier_label(take)}",
                                        depress=not take.mute)
                activate.strip, activate.take_id = source.name, info["take_id"]
                row.label(text=info.get("status", ""))
                approve = row.operator("takebridge.take_review", text="", icon="CHECKMARK")
                approve.take_id, approve.approve = info["take_id"], True
                reject = row.operator("takebridge.take_review", text="", icon="CANCEL")
                reject.take_id, reject.approve = info["take_id"], False
                compare = row.operator("takebridge.compare", text="", icon="SPLITSCREEN")
                compare.take_id, compare.mode = info["take_id"], settings.compare_mode
                final = row.operator("takebridge.take_finalize", text="", icon="PINNED")
                final.take_id = info["take_id"]
                delete = row.operator("takebridge.take_delete", text="", icon="TRASH")
                delete.take_id = info["take_id"]
                if vse_takes.tier_of(take) == "draft":      # the same request and seed at full steps
                    promote = layout.row().operator("takebridge.final_from_draft", text="Final from this draft",
                                                    icon="RENDER_RESULT")
                    promote.strip, promote.take = source.name, info["take_id"]
                for flag in list(info.get("flags", [])):
                    layout.label(text=f"  ⚑ {flag}")
            row = layout.row(align=True)
            original = row.operator("takebridge.take_activate", text="Original")
            original.strip, original.take_id = source.name, "original"
            row.prop(settings, "compare_mode", text="")
            layout.prop(settings, "review_note")


CLASSES = (TAKEBRIDGE_UL_takes, TAKEBRIDGE_PT_panel)
