"""Operators. Every one takes `server` (default: the panel's) and the job operators a `wait`
flag, so scripts and tests can run them blocking; from the UI they never block. Errors are
reported in Blender's UI with what to do, and every operator that changes strips pushes an
undo step."""

import getpass
import os

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty

from . import compare, compat, contracts, jobs, props, vse, vse_takes
from .bridge_import import tb


def _server(self, context) -> str:
    return self.server or context.scene.takebridge.server


class _FileSelect:
    """Operators that ask for a file first when run from the UI."""

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


def _failed(operator, err) -> set:
    operator.report({"ERROR"}, str(err))
    return {"CANCELLED"}


def _sources(self, context):
    scene = compat.sequencer_scene(context)
    if self.strip:
        return [vse_takes.find_source(scene, self.strip)]
    chosen = [s for s in compat.selected_strips(context)
              if (vse.media_strip_kind(s) or vse.is_previs(s)) and not vse.is_take(s)]
    if not chosen:
        raise vse_takes.TakeError("select a movie or image strip (or pass strip=NAME)")
    return chosen


class _JobOperator:
    bl_options = {"REGISTER", "UNDO"}
    server: StringProperty(name="Server", default="", description="host:port; empty = the panel's")
    wait: BoolProperty(name="Wait", default=False, description="block until the take is made (scripts, tests)")
    strip: StringProperty(name="Strip", default="", description="source strip name; empty = the selected strips")
    op = ""

    def params(self, context, scene, source) -> dict:
        return {}

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        try:
            results = jobs.submit_all(scene, _sources(self, context), self.op, server=_server(self, context),
                                      wait=self.wait, params_for=lambda source: self.params(context, scene, source))
        except (tb.errors.TakeBridgeError, tb.client.ClientError) as err:
            return _failed(self, err)
        return _reported(self, results)


def _reported(operator, results: list[dict]) -> set:
    """One line per result (a refused strip never drops the others); CANCELLED when all were refused."""
    for result in results:
        if result["state"] == "succeeded" and result.get("strip"):
            flags = f" — needs review: {'; '.join(result['flags'])}" if result.get("flags") else ""
            operator.report({"INFO"}, f"{result['take_id']} placed as {result['strip']} ({result['status']}){flags}")
        elif result["state"] == "queued":
            operator.report({"INFO"}, f"job {result['job_id']} queued; progress in the TakeBridge panel")
        else:
            operator.report({"ERROR"}, f"{result['item']} ({result['record_start']}): {result['state']}: "
                                       f"{result.get('error', '')}")
    if results and all(r["state"] == "refused" for r in results):
        return {"CANCELLED"}
    return {"FINISHED"}


class TAKEBRIDGE_OT_refine(_JobOperator, bpy.types.Operator):
    bl_idname = "takebridge.refine"
    bl_label = "Refine"
    bl_description = "Generate a refined take of the selected strip(s) (video-to-video)"
    op = "refine"


class TAKEBRIDGE_OT_extend(_JobOperator, bpy.types.Operator):
    bl_idname = "takebridge.extend"
    bl_label = "Extend"
    bl_description = "Generate frames past the strip's head or tail, as a take that shows beyond it"
    op = "extend"
    side: EnumProperty(name="Side", items=[("PANEL", "Panel's", ""), ("TAIL", "Tail", ""), ("HEAD", "Head", "")],
                       default="PANEL")
    frames: FloatProperty(name="Length", default=0.0, description="frames (or seconds, per the panel); 0 = panel's")

    def params(self, context, scene, source):
        settings = scene.takebridge
        amount = self.frames or settings.extend_amount
        if settings.extend_unit == "SECONDS" and not self.frames:
            amount = amount * float(compat.scene_rate(scene))
        side = settings.extend_side if self.side == "PANEL" else self.side
        return {"frames": int(round(amount)), "side": side}


class TAKEBRIDGE_OT_inpaint(_JobOperator, bpy.types.Operator):
    bl_idname = "takebridge.inpaint"
    bl_label = "Inpaint"
    bl_description = "Regenerate the masked region over time (mask: an image, movie or Mask strip)"
    op = "inpaint"
    mask: StringProperty(name="Mask strip", default="", description="empty = the panel's mask strip")

    def params(self, context, scene, source):
        return {"mask_path": jobs.mask_path_of(scene, self.mask or scene.takebridge.mask_strip, source)}


def _active_channel(scene) -> int:
    """The active strip's channel (a take's source's, for a take strip), else 1."""
    strip = getattr(compat.editor(scene), "active_strip", None)
    if strip is None:
        return 1
    if vse.is_take(strip):
        source = next((s for s in compat.strips_all(scene) if s.name == strip[vse.TAKE_KEY].get("source")), None)
        return int(source.channel) if source is not None else 1
    return int(strip.channel)


class TAKEBRIDGE_OT_generate(bpy.types.Operator):
    bl_idname = "takebridge.generate"
    bl_label = "Generate"
    bl_description = ("A pre-vis shot in the gap under the playhead (or the preview range, or frame_in..frame_out): "
                      "from the prompt, a board strip, or the neighbouring strips' frames; on a pre-vis shot, "
                      "another take of it")
    bl_options = {"REGISTER", "UNDO"}
    server: StringProperty(name="Server", default="", description="host:port; empty = the panel's")
    wait: BoolProperty(name="Wait", default=False, description="block until the take is made (scripts, tests)")
    channel: bpy.props.IntProperty(name="Channel", default=0, min=0, max=128,
                                   description="0 = the active strip's channel (1 without one)")
    frame_in: bpy.props.IntProperty(name="In", default=0, description="first frame of the shot")
    frame_out: bpy.props.IntProperty(name="Out", default=0, description="frame after its last; when not after "
                                                                         "frame_in, the panel's range is used")
    shot: StringProperty(name="Shot", default="", description="the shot's name; empty = the pre-vis shot's there, "
                                                              "else the panel's, else one named after the place")
    board: StringProperty(name="Board strip", default="", description="image or movie strip whose frame is the "
                                                                      "board; empty = the panel's")

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        settings = scene.takebridge
        channel = self.channel or _active_channel(scene)
        first = last = None
        if self.frame_out > self.frame_in:
            first, last = self.frame_in, self.frame_out
        elif settings.generate_range == "PREVIEW":
            if not scene.use_preview_range:
                return _failed(self, "Range is Preview range, but the scene has none: set one (Ctrl+Alt+P in the "
                                     "Sequencer) or choose Gap at playhead")
            first, last = scene.frame_preview_start, scene.frame_preview_end + 1
        try:
            choice = jobs.gap_choice(scene, channel, first=first, last=last, shot=self.shot,
                                     new_shot=settings.generate_shot)
            results = jobs.submit_generate(scene, [choice], server=_server(self, context), wait=self.wait,
                                           board=self.board or settings.board_strip)
        except (tb.errors.TakeBridgeError, tb.client.ClientError) as err:
            return _failed(self, err)
        return _reported(self, results)


def _draft_ids(self, context) -> list[str]:
    """The draft takes a Final from this draft is for: `take`; else the take `strip` shows; else
    the selected take strips (or the active strip, when it is a take)."""
    scene = compat.sequencer_scene(context)
    if self.take:
        data = vse_takes.find_take(scene, self.take)[vse.TAKE_KEY]
        if self.strip and data.get("source") != self.strip:
            raise vse_takes.TakeError(f"take {self.take!r} is a take of {data.get('source')!r}, not of {self.strip!r}")
        return [self.take]
    if self.strip:
        source = vse_takes.find_source(scene, self.strip)
        shown = [t for t in vse_takes.takes_of(scene, source.name) if not t.mute]
        if not shown:
            raise vse_takes.TakeError(f"strip {source.name!r} shows its original: activate its draft take, or pass "
                                      f"take=ID")
        return [shown[0][vse.TAKE_KEY]["take_id"]]
    chosen = [s for s in compat.selected_strips(context) if vse.is_take(s)]
    active = getattr(compat.editor(scene), "active_strip", None)
    if not chosen and active is not None and vse.is_take(active):
        chosen = [active]
    if not chosen:
        raise vse_takes.TakeError("select a draft take strip (or pass take=ID, or strip=NAME for the take it shows)")
    return [s[vse.TAKE_KEY]["take_id"] for s in chosen]


class TAKEBRIDGE_OT_final_from_draft(bpy.types.Operator):
    bl_idname = "takebridge.final_from_draft"
    bl_label = "Final from this draft"
    bl_description = ("Make the final of a draft take: the draft's own request and seed at the model's full steps, "
                      "placed as another take of the same strip and shown")
    bl_options = {"REGISTER", "UNDO"}
    server: StringProperty(name="Server", default="", description="host:port; empty = the panel's")
    wait: BoolProperty(name="Wait", default=False, description="block until the take is made (scripts, tests)")
    strip: StringProperty(name="Strip", default="", description="source strip name; with no take: the take it shows")
    take: StringProperty(name="Take", default="", description="the draft take's id; empty = the strip's shown take, "
                                                              "else the selected take strips")

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        try:
            results = jobs.final_from_draft(scene, _draft_ids(self, context), server=_server(self, context),
                                            wait=self.wait)
        except (tb.errors.TakeBridgeError, tb.client.ClientError) as err:
            return _failed(self, err)
        return _reported(self, results)


class TAKEBRIDGE_OT_cancel(bpy.types.Operator):
    bl_idname = "takebridge.cancel"
    bl_label = "Cancel job"
    job_id: StringProperty()

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        try:
            state = jobs.cancel(scene, self.job_id)
        except (jobs.JobError, tb.client.ClientError) as err:
            return _failed(self, err)
        self.report({"INFO"}, f"job {self.job_id}: {state}")
        return {"FINISHED"}


class TAKEBRIDGE_OT_take_activate(bpy.types.Operator):
    bl_idname = "takebridge.take_activate"
    bl_label = "Activate take"
    bl_description = "Show this take (the others, and the original, are muted); 'original' shows the source"
    bl_options = {"REGISTER", "UNDO"}
    strip: StringProperty(description="source strip")
    take_id: StringProperty(default="original")

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        try:
            vse_takes.activate_take(scene, vse_takes.find_source(scene, self.strip), self.take_id)
        except vse_takes.TakeError as err:
            return _failed(self, err)
        return {"FINISHED"}


class TAKEBRIDGE_OT_take_review(bpy.types.Operator):
    bl_idname = "takebridge.take_review"
    bl_label = "Review take"
    bl_description = "Approve or reject the take with a note; the server keeps it for the pilot report"
    bl_options = {"REGISTER", "UNDO"}
    take_id: StringProperty()
    approve: BoolProperty(default=True)
    note: StringProperty(default="")
    reviewer: StringProperty(default="")
    server: StringProperty(default="")

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        reviewer = self.reviewer or getpass.getuser()
        try:
            with jobs.client(_server(self, context), scene.takebridge.token) as c:
                take = c.review(self.take_id, self.approve, self.note or scene.takebridge.review_note, reviewer)
            status = tb.api.pb.TakeStatus.Name(take.status).lower()
            vse_takes.set_status(scene, self.take_id, status, take.review_note, reviewer)
        except (tb.client.ClientError, vse_takes.TakeError) as err:
            return _failed(self, err)
        self.report({"INFO"}, f"{self.take_id}: {status}")
        return {"FINISHED"}


class TAKEBRIDGE_OT_take_finalize(bpy.types.Operator):
    bl_idname = "takebridge.take_finalize"
    bl_label = "Finalize take"
    bl_description = "Make the take the strip's media (the original stays recoverable)"
    bl_options = {"REGISTER", "UNDO"}
    take_id: StringProperty()
    drop_others: BoolProperty(default=False)

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        try:
            source = vse_takes.finalize(scene, self.take_id, drop_others=self.drop_others)
        except vse_takes.TakeError as err:
            return _failed(self, err)
        self.report({"INFO"}, f"{source.name} now plays {self.take_id}; Restore Original brings the source back")
        return {"FINISHED"}


class TAKEBRIDGE_OT_restore_original(bpy.types.Operator):
    bl_idname = "takebridge.restore_original"
    bl_label = "Restore original"
    bl_options = {"REGISTER", "UNDO"}
    strip: StringProperty()

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        try:
            vse_takes.restore_original(scene, vse_takes.find_source(scene, self.strip))
        except vse_takes.TakeError as err:
            return _failed(self, err)
        return {"FINISHED"}


class TAKEBRIDGE_OT_take_delete(bpy.types.Operator):
    bl_idname = "takebridge.take_delete"
    bl_label = "Delete take strip"
    bl_options = {"REGISTER", "UNDO"}
    take_id: StringProperty()

    def execute(self, context):
        try:
            vse_takes.delete_take(compat.sequencer_scene(context), self.take_id)
        except vse_takes.TakeError as err:
            return _failed(self, err)
        return {"FINISHED"}


class TAKEBRIDGE_OT_compare(bpy.types.Operator):
    bl_idname = "takebridge.compare"
    bl_label = "Compare"
    bl_description = "A/B wipe or side by side of a take against the source (or another take); run again to clear"
    bl_options = {"REGISTER", "UNDO"}
    take_id: StringProperty()
    against: StringProperty(default="original", description="'original' or another take id")
    mode: EnumProperty(items=[("WIPE", "A/B wipe", ""), ("SIDE", "Side by side", ""), ("OFF", "Off", "")],
                       default="WIPE")

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        try:
            made = compare.set_compare(scene, self.take_id, self.against, self.mode)
        except vse_takes.TakeError as err:
            return _failed(self, err)
        self.report({"INFO"}, f"compare {self.mode.lower()}: {made}" if made else "compare cleared")
        return {"FINISHED"}


class TAKEBRIDGE_OT_export_otio(_FileSelect, bpy.types.Operator):
    bl_idname = "takebridge.export_otio"
    bl_label = "Export OTIO"
    bl_description = "Write the Sequencer edit with its takes (.otio, .otioz, .xml, .fcpxml, .aaf, .edl)"
    filepath: StringProperty(subtype="FILE_PATH")

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        try:
            report = tb.interchange.write_timeline(vse.export_timeline(scene), bpy.path.abspath(self.filepath))
        except (tb.interchange.InterchangeError, ValueError) as err:
            return _failed(self, err)
        self.report({"INFO"}, f"wrote {report['path']}")
        return {"FINISHED"}


class TAKEBRIDGE_OT_import_otio(_FileSelect, bpy.types.Operator):
    bl_idname = "takebridge.import_otio"
    bl_label = "Import OTIO"
    bl_options = {"REGISTER", "UNDO"}
    filepath: StringProperty(subtype="FILE_PATH")
    channel: bpy.props.IntProperty(default=1, min=1, max=128)

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        try:
            timeline = tb.interchange.read_timeline(bpy.path.abspath(self.filepath))
            made = vse.import_timeline(scene, timeline, base_channel=self.channel)
        except (ValueError, vse_takes.TakeError) as err:
            return _failed(self, err)
        self.report({"INFO"}, f"imported {len(made)} strip(s)")
        return {"FINISHED"}


class TAKEBRIDGE_OT_contract_load(_FileSelect, bpy.types.Operator):
    bl_idname = "takebridge.contract_load"
    bl_label = "Load Contract"
    bl_description = ("Set the panel from a shot contract (.toml or .json): prompt, seed, codec, camera...; its role, "
                      "purpose, characters, constraints, review and budget go with the next jobs")
    bl_options = {"REGISTER", "UNDO"}
    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.toml;*.json", options={"HIDDEN"})

    def execute(self, context):
        settings = compat.sequencer_scene(context).takebridge
        if not self.filepath:
            return _failed(self, "choose a contract file (.toml or .json) to load")
        try:
            said = contracts.load(settings, bpy.path.abspath(self.filepath))
        except tb.errors.TakeBridgeError as err:       # the file's fault, named; nothing was changed
            return _failed(self, err)
        self.report({"INFO"}, said)
        return {"FINISHED"}


class TAKEBRIDGE_OT_contract_save(_FileSelect, bpy.types.Operator):
    bl_idname = "takebridge.contract_save"
    bl_label = "Save Contract"
    bl_description = "Write the panel's options as a shot contract (.json), with the loaded contract's other fields"
    filepath: StringProperty(subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})
    check_existing: BoolProperty(default=True, options={"HIDDEN"})

    def invoke(self, context, event):
        if not self.filepath:
            loaded = compat.sequencer_scene(context).takebridge.contract_path
            self.filepath = os.path.splitext(loaded)[0] + ".json" if loaded else "//shot.json"
        return super().invoke(context, event)

    def execute(self, context):
        settings = compat.sequencer_scene(context).takebridge
        if not self.filepath:
            return _failed(self, "choose a file to save the contract to (.json)")
        try:
            saved = contracts.save(bpy.path.abspath(self.filepath), jobs.panel_options(settings), settings)
        except (tb.errors.TakeBridgeError, OSError) as err:
            return _failed(self, err)
        self.report({"INFO"}, f"saved the contract {saved}")
        return {"FINISHED"}


class TAKEBRIDGE_OT_contract_clear(bpy.types.Operator):
    bl_idname = "takebridge.contract_clear"
    bl_label = "Forget Contract Fields"
    bl_description = ("Stop sending the loaded contract's role, purpose, characters, constraints, review and budget "
                      "(the panel's own fields stay as they are)")
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = compat.sequencer_scene(context).takebridge
        settings.contract_extra, settings.contract_path = "", ""
        return {"FINISHED"}


class TAKEBRIDGE_OT_connect(bpy.types.Operator):
    bl_idname = "takebridge.connect"
    bl_label = "Connect"
    bl_description = "Ask the server what it can do (backends, device, models)"

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        settings = scene.takebridge
        try:
            with jobs.client(settings.server, settings.token) as c:
                caps = c.capabilities()
        except tb.client.ClientError as err:
            settings.status = f"unreachable: {err}"
            self.report({"ERROR"}, settings.status)
            return {"CANCELLED"}
        parts = [f"{b.name} ({b.device})" if b.available else f"{b.name}: {b.unavailable_reason}"
                 for b in caps.backends]
        settings.status = f"v{caps.server_version}: " + "; ".join(parts)
        reattached = jobs.reattach_all()
        self.report({"INFO"}, settings.status + (f"; reattached {reattached} job(s)" if reattached else ""))
        return {"FINISHED"}


class TAKEBRIDGE_OT_reference_add(_FileSelect, bpy.types.Operator):
    bl_idname = "takebridge.reference_add"
    bl_label = "Add reference image"
    bl_description = "A character, prop or style image the generative backend keeps consistent across shots"
    bl_options = {"REGISTER", "UNDO"}
    filepath: StringProperty(subtype="FILE_PATH")
    role: EnumProperty(items=props.REFERENCE_ROLES)

    def execute(self, context):
        if not os.path.isfile(bpy.path.abspath(self.filepath)):
            self.report({"ERROR"}, f"reference image {self.filepath} not found")
            return {"CANCELLED"}
        item = compat.sequencer_scene(context).takebridge.references.add()
        item.filepath, item.role = self.filepath, self.role
        return {"FINISHED"}


class TAKEBRIDGE_OT_reference_remove(bpy.types.Operator):
    bl_idname = "takebridge.reference_remove"
    bl_label = "Remove reference image"
    bl_options = {"REGISTER", "UNDO"}
    index: bpy.props.IntProperty()

    def execute(self, context):
        refs = compat.sequencer_scene(context).takebridge.references
        if 0 <= self.index < len(refs):
            refs.remove(self.index)
        return {"FINISHED"}


CLASSES = (TAKEBRIDGE_OT_reference_add, TAKEBRIDGE_OT_reference_remove, TAKEBRIDGE_OT_refine, TAKEBRIDGE_OT_extend, TAKEBRIDGE_OT_inpaint,
           TAKEBRIDGE_OT_generate, TAKEBRIDGE_OT_final_from_draft, TAKEBRIDGE_OT_cancel,
           TAKEBRIDGE_OT_take_activate, TAKEBRIDGE_OT_take_review, TAKEBRIDGE_OT_take_finalize,
           TAKEBRIDGE_OT_restore_original, TAKEBRIDGE_OT_take_delete, TAKEBRIDGE_OT_compare,
           TAKEBRIDGE_OT_export_otio, TAKEBRIDGE_OT_import_otio, TAKEBRIDGE_OT_contract_load,
           TAKEBRIDGE_OT_contract_save, TAKEBRIDGE_OT_contract_clear, TAKEBRIDGE_OT_connect)
