"""Jobs without freezing Blender: submit, then a background thread reads the job's event
stream and a main-thread timer applies what it read (progress, ETA, preview, the take strip).
Jobs are kept in the scene, so they reattach by job id after the .blend is reopened, and the
client resumes the stream after a server restart.

Blender data is only touched on the main thread (operators, the timer); threads only talk
gRPC and fill a queue.
"""
from __future__ import annotations

import dataclasses
import os
import queue
import random
import tempfile
import threading

import bpy

from . import compat, contracts, vse, vse_takes
from .bridge_import import tb

TIMER_INTERVAL = 0.2
_events: "queue.Queue[tuple[str, str, object]]" = queue.Queue()
_watchers: dict[str, threading.Thread] = {}
_previews: dict[str, bytes] = {}          # job id -> latest preview JPEG
TERMINAL = ("succeeded", "failed", "cancelled")


class JobError(tb.errors.TakeBridgeError):
    """A strip that cannot make a job (refused before anything is sent), or a job call that failed."""

    code = "blender_refused"


def client(address: str, token: str = ""):
    return tb.client.GenerationClient(address, token=token, connect_timeout=5.0)


def take_dir(settings) -> str:
    """Where takes go: the panel's folder (default //takes, beside the .blend); for an unsaved
    file with a relative folder, a temp folder."""
    folder = settings.take_dir or "//takes"
    if folder.startswith("//"):
        if not bpy.data.filepath:
            return os.path.join(tempfile.gettempdir(), "takebridge_takes")
        folder = bpy.path.abspath(folder)
    return os.path.normpath(folder)


def build_request(scene, source, op: str, settings, *, frames: int = 0, side: str = "TAIL", mask_path: str = ""):
    """The SubmitJobRequest for one strip; refuses what the server would refuse, earlier."""
    timeline = vse.export_timeline(scene)
    try:
        segment = tb.timeline.select_clip(timeline, source.name, handles=settings.handles)
    except tb.selection.SelectionError as err:
        raise JobError(str(err)) from None
    clip = tb.selection.find_clip(timeline, source.name)[0]
    mismatch = tb.metadata.read(clip).get("fps_mismatch")
    if mismatch:
        raise JobError(f"{source.name!r} is {mismatch['media']} fps media on a {mismatch['scene']} fps scene: Blender "
                       f"plays it frame for frame, so its timing is not the media's. Conform the media or set the "
                       f"scene rate to {mismatch['media']}")
    selection = tb.timeline.job_timeline(timeline, segment)
    if op == "inpaint" and not mask_path:
        raise JobError("inpaint needs a mask: choose a mask strip (image, movie or Mask) in the TakeBridge panel")
    options = job_options(settings, op, strength=settings.strength, frames=frames, side=side.lower(), mask=mask_path,
                          feather=settings.feather, handles=settings.handles)
    try:
        return tb.request.build_request(selection, options, client=CLIENT, library=contracts.library_for(options))
    except tb.request.RequestError as err:
        raise JobError(str(err)) from None


CLIENT = "takebridge-blender"


def panel_options(settings, op: str = "refine"):
    """The panel's options as bridge JobOptions (prompt, seed, codec, fallback, backend, references,
    Generate's mode and camera...) with the loaded contract's fields the panel has no widget for
    (role, purpose, characters, constraints, review, budget: contracts.py). An unlocked seed is
    None here: what Save Contract writes."""
    request_module = tb.request
    options = request_module.JobOptions(
        op=op, prompt=settings.prompt, negative_prompt=settings.negative_prompt,
        seed=settings.seed if settings.seed_lock else None, codec=settings.codec, fallback=settings.fallback,
        backend=settings.backend, model=settings.model, take_dir=take_dir(settings),
        references=[request_module.Reference(bpy.path.abspath(ref.filepath), ref.role)
                    for ref in settings.references if ref.filepath],
        mode=_enum_choice(settings.generate_mode), camera=_enum_choice(settings.generate_camera),
        camera_amount=settings.generate_camera_amount, burn_in=settings.generate_burn_in)
    options = tb.contract.apply_contract(options, contracts.kept(settings))
    options.tier = "draft" if settings.draft else ""     # (no contract field: the panel's toggle)
    return options


def job_options(settings, op: str, **choices):
    """The panel's options for a job (panel_options) with the operation's own `choices`. An
    unlocked seed is drawn anew."""
    if not settings.seed_lock:
        settings.seed = random.randint(0, 2 ** 31 - 1)
    return dataclasses.replace(panel_options(settings, op), seed=settings.seed, **choices)


class BlenderEditor:
    """Blender's Sequencer as an editor (bridge/editor.py's protocol). Clips are source strips (a
    strip's name is unique in its scene; its channel and frames say where it is); each is refused
    before anything is sent when it cannot work (no mask, a rate mismatch, no free channel for
    an extension), and its take becomes a strip on a free channel above it. `params_for(strip)`
    gives the operation's per-strip parameters (frames and side, or the mask it renders)."""

    def __init__(self, scene, sources, op: str, server: str, params_for=lambda source: {}):
        self.scene, self.sources, self.op, self.server, self.params_for = scene, list(sources), op, server, params_for
        self._current = None

    def clips(self) -> list:
        return self.sources

    def describe(self, source) -> dict:
        rate = compat.scene_rate(self.scene)
        return {"item": source.name, "track": int(source.channel),
                "record_start": tb.timecode.to_timecode(int(source.frame_final_start), rate)}

    def request(self, source, options):
        params = dict(self.params_for(source))
        request = build_request(self.scene, source, self.op, self.scene.takebridge, **params)
        if self.op == "extend":        # room for the new frames, and a channel for the take: before sending
            self._check_room(source, params.get("side", "TAIL").lower(), int(params.get("frames", 0)))
        self._current = source
        return request

    def _check_room(self, source, side: str, frames: int) -> None:
        """The take strip goes on a channel above, but its new frames would cover whatever follows
        (or precedes) the source on its own channel when it plays: the same room rule as the
        other editors (bridge/window.py), with Blender's frames and the scene's timecode."""
        window = tb.window
        start, end = int(source.frame_final_start), int(source.frame_final_end)
        new = window.extension_span(start, end - start, side, frames)
        others = [window.Span(int(s.frame_final_start), int(s.frame_final_end), s.name)
                  for s in compat.strips_all(self.scene)
                  if s.channel == source.channel and s.name != source.name and not vse.is_take(s)]
        rate = compat.scene_rate(self.scene)
        window.check_room(source.name, new, side, others, track=f" on channel {source.channel}",
                          label=lambda frame: f"frame {frame} ({tb.timecode.to_timecode(frame, rate)})",
                          instead="put the strip on a channel of its own")
        vse_takes.free_channel(self.scene, min(new[0], start), max(new[1], end), source.channel)

    def submitted(self, job_id: str) -> None:
        """on_submit: the job joins the scene's job list (the panel, reattaching after a reopen)."""
        item = self.scene.takebridge.jobs.add()
        item.job_id, item.server, item.source, item.op = job_id, self.server, self._current.name, self.op
        item.state = "queued"

    def apply(self, source, take, options) -> dict:
        return _place(self.scene, source, take)

    def progress(self, source, view) -> None:
        pass


def _place(scene, source, take) -> dict:
    """A finished take as a strip above its source (a strip, or a pre-vis shot's placeholder)."""
    item = _job_item(scene, take.job_id)
    strip = vse_takes.place_take_strip(scene, source, take)
    if item is not None:
        item.take_id, item.placed, item.state, item.progress = take.take_id, True, "succeeded", 1.0
    pb = tb.api.pb
    return {"take_id": take.take_id, "strip": strip.name, "status": pb.TakeStatus.Name(take.status).lower(),
            "flags": list(take.flags)}


def submit_all(scene, sources, op: str, *, server: str, wait: bool, params_for=lambda source: {}) -> list[dict]:
    """One job per source strip through bridge/editor.py's loop: one result per strip (a refused
    or failed strip never drops the others). With wait=True each is followed to its end and its
    take placed; otherwise a background watcher follows each and the timer places it."""
    return _run(scene, BlenderEditor(scene, sources, op, server, params_for), server, wait)


def _run(scene, adapter, server: str, wait: bool) -> list[dict]:
    settings = scene.takebridge
    with client(server, settings.token) as c:
        results = tb.editor.run(adapter, None, c, wait=wait, on_submit=adapter.submitted)
    for result in results:
        item = _job_item(scene, result["job_id"]) if result.get("job_id") else None
        if item is None:
            continue
        if not wait:
            watch(scene.name, item.job_id, server, settings.token, 0)
        elif result["state"] != "succeeded":
            item.state, item.message = result["state"], result.get("error", "")
            _drop_unused_previs(scene, item)
    return results


# -- Final from this draft ----------------------------------------------------------------------

class FinalEditor(BlenderEditor):
    """"Final from this draft" through the editor protocol: each clip is a draft take (its id);
    its request is the draft's own (from its manifest) at the final tier with the draft's seed,
    promoted from it (the server checks it made that draft); the final goes on the draft's source
    strip as another take, shown. A take that is not a draft, or whose manifest cannot be read,
    is refused before anything is sent."""

    def __init__(self, scene, take_ids, server: str):
        super().__init__(scene, take_ids, "final", server)
        self._op = ""

    def _source_of(self, take_id: str):
        return vse_takes.find_source(self.scene, vse_takes.find_take(self.scene, take_id)[vse.TAKE_KEY]["source"])

    def describe(self, take_id: str) -> dict:
        return {**super().describe(self._source_of(take_id)), "promoted_from": take_id}

    def request(self, take_id: str, options):
        pb = tb.api.pb
        strip = vse_takes.find_take(self.scene, take_id)
        draft = vse_takes.take_message(strip)
        if draft.tier != pb.TIER_DRAFT:
            raise JobError(f"take {take_id} is not a draft (it is a {vse_takes.tier_name(draft.tier)} take); a final "
                           f"is made from a draft: make one with Draft on in the TakeBridge panel")
        manifest_path = draft.manifest_url or vse_takes.take_data(strip).get("manifest", "")
        request, _ = tb.request.final_request(manifest_path, take_id)   # (a RequestError refuses the take)
        self._current, self._op = self._source_of(take_id), str(strip[vse.TAKE_KEY].get("op", "refine"))
        return request

    def submitted(self, job_id: str) -> None:
        item = self.scene.takebridge.jobs.add()
        item.job_id, item.server, item.source, item.op = job_id, self.server, self._current.name, self._op
        item.state = "queued"

    def apply(self, take_id: str, take, options) -> dict:
        return {**_place(self.scene, self._source_of(take_id), take), "promoted_from": take_id}


def final_from_draft(scene, take_ids, *, server: str, wait: bool) -> list[dict]:
    """The final of each draft take in `take_ids` (FinalEditor), one result per take; placed as
    another take of the draft's strip, shown (now with `wait`, else by the timer)."""
    for take_id in take_ids:         # an unknown take is named before anything is sent
        vse_takes.find_source(scene, vse_takes.find_take(scene, take_id)[vse.TAKE_KEY]["source"])
    return _run(scene, FinalEditor(scene, take_ids, server), server, wait)


# -- Generate: a pre-vis shot in a gap of a channel ---------------------------------------------

@dataclasses.dataclass
class GapChoice:
    """Where a Generate goes: Blender frames [first, last) of `channel`, and the shot's name ("" =
    the pre-vis strip's shot there, else one named after the place). `strip` is the pre-vis
    strip the take goes on once the job is sent (made then, or the one already there)."""

    channel: int
    first: int
    last: int
    shot: str = ""
    strip: str = ""
    new_shot: str = ""      # a name for a new shot only (the panel's): a pre-vis shot there keeps its own


def _in_blender(message: str, channel: int) -> str:
    """bridge.previs's words in the Sequencer's: channels, not tracks; the panel, not flags."""
    return (message.replace(f"V{channel}", f"channel {channel}")
            .replace("give --in and --out-point for the shot's length",
                     "set a preview range and Generate over it (Range: Preview range in the TakeBridge panel)")
            .replace("give --in and --out-point", "Generate over a preview range"))


def gap_choice(scene, channel: int, *, first=None, last=None, shot: str = "", new_shot: str = "") -> GapChoice:
    """The range [first, last) of `channel`, or (without one) the gap under the playhead there:
    from the strip before it to the strip after it, or the pre-vis shot the playhead is in; past
    the channel's last strip, the loaded contract's duration from the playhead. Refused when the
    playhead is inside another strip, or past the last strip without a contract duration.
    `shot` names the shot in any case; `new_shot` only a new one."""
    if channel < 1:
        raise JobError(f"channel {channel}: channels count from 1")
    if first is None or last is None:
        timeline = vse.export_timeline(scene, channels_through=channel)
        try:
            first, last = tb.previs.gap_under(timeline, channel, int(scene.frame_current))
        except tb.selection.SelectionError as err:
            duration = int(contracts.kept(scene.takebridge).get("constraints", {}).get("duration") or 0)
            if err.code != "no_gap" or duration <= 0:
                raise tb.selection.SelectionError(err.code, _in_blender(str(err), channel)) from None
            # past the channel's last strip: the loaded contract's duration from the playhead
            first, last = int(scene.frame_current), int(scene.frame_current) + duration
    return GapChoice(int(channel), int(first), int(last), shot, new_shot=new_shot)


def board_of(scene, name: str) -> tuple[str, int]:
    """A storyboard still for Generate from a strip: (file, frame in it): an image strip's image
    at its first visible frame, a movie strip's file and that frame's number."""
    if not name:
        return "", 0
    strip = next((s for s in compat.strips_all(scene) if s.name == name), None)
    if strip is None:
        raise JobError(f"board strip {name!r} not found")
    offset = max(0, int(strip.frame_final_start - strip.frame_start))
    if strip.type == "MOVIE":
        return vse.abspath(strip.filepath), offset
    if strip.type == "IMAGE":
        element = strip.elements[min(offset, len(strip.elements) - 1)]
        return os.path.join(vse.abspath(strip.directory), element.filename), 0
    raise JobError(f"board strip {name!r} is a {strip.type} strip; use an image or movie strip")


def _enum_choice(value: str) -> str:
    return "" if value in ("", "AUTO") else value.lower()


class GenerateEditor(BlenderEditor):
    """Gaps of the Sequencer as the editor protocol's clips (bridge/otio_file.py's GapTarget
    shape): each is checked (bridge.previs.find_gap on the scene's edit, then any Blender strip
    the edit leaves out) and refused before anything is sent; when its job is sent, a pre-vis
    placeholder strip fills the gap exactly (or the one there is kept: another take of its shot),
    and the take goes on it as a take strip above, like any source's."""

    def __init__(self, scene, choices, server: str, board: str = ""):
        super().__init__(scene, choices, "generate", server)
        self.board = board

    def describe(self, choice) -> dict:
        rate = compat.scene_rate(self.scene)
        return {"item": choice.shot or choice.strip or "new shot", "track": choice.channel,
                "frames": choice.last - choice.first, "record_start": tb.timecode.to_timecode(choice.first, rate)}

    def request(self, choice, options):
        scene, settings = self.scene, self.scene.takebridge
        timeline = vse.export_timeline(scene, channels_through=choice.channel)   # V<n> is channel n
        try:
            target = tb.previs.find_gap(timeline, choice.channel, choice.first, choice.last, shot=choice.shot)
        except tb.selection.SelectionError as err:
            raise tb.selection.SelectionError(err.code, _in_blender(str(err), choice.channel)) from None
        placeholder = target.placeholder.name if target.placeholder is not None else ""
        if not placeholder and not choice.shot and choice.new_shot:
            target.shot = choice.new_shot
        self._check_channel(choice, placeholder)
        choices = {"keyframes": "auto"}
        image, image_frame = board_of(scene, self.board)
        if image:          # (else the contract's board image, if it gives one)
            choices.update(image=image, image_frame=image_frame)
        # another take of a shot is made at its size; a new one at the contract's, else the scene's
        width, height = target.size or contracts.size(settings) or (int(scene.render.resolution_x),
                                                                    int(scene.render.resolution_y))
        options = job_options(settings, "generate", width=width, height=height, **choices)
        try:
            request = tb.request.build_request(tb.previs.export_gap(timeline, target), options, client=CLIENT,
                                               keyframes=target.keyframes, library=contracts.library_for(options))
        except tb.request.RequestError as err:
            raise JobError(str(err)) from None
        choice.shot, choice.strip = target.shot, placeholder
        self._current = choice
        return request

    def _check_channel(self, choice, placeholder: str) -> None:
        """What the edit leaves out (effect, text, sound and take strips) may be in the gap too."""
        rate = compat.scene_rate(self.scene)
        for strip in compat.strips(self.scene):
            if strip.channel == choice.channel and strip.name != placeholder and \
                    strip.frame_final_start < choice.last and strip.frame_final_end > choice.first:
                what = f"a take of {strip[vse.TAKE_KEY].get('source')!r}" if vse.is_take(strip) else \
                    f"a {strip.type.lower()} strip"
                raise JobError(f"frames {choice.first}-{choice.last} ({tb.timecode.to_timecode(choice.first, rate)}-"
                               f"{tb.timecode.to_timecode(choice.last, rate)}) of channel {choice.channel} are not "
                               f"empty: strip {strip.name!r} ({what}) plays frames {strip.frame_final_start}-"
                               f"{strip.frame_final_end}; choose a gap or another channel, or move it first")

    def submitted(self, job_id: str) -> None:
        """The job is sent: its shot's strip fills the gap now (where the take will show)."""
        choice = self._current
        if not choice.strip:
            strip = vse_takes.new_previs_strip(self.scene, choice.shot, choice.channel, choice.first, choice.last)
            choice.strip = strip.name
        item = self.scene.takebridge.jobs.add()
        item.job_id, item.server, item.source, item.op = job_id, self.server, choice.strip, self.op
        item.state = "queued"

    def apply(self, choice, take, options) -> dict:
        return _place(self.scene, vse_takes.find_source(self.scene, choice.strip), take)


def submit_generate(scene, choices, *, server: str, wait: bool, board: str = "") -> list[dict]:
    """One Generate job per gap (GapChoice) through bridge/editor.py's loop, as submit_all does for
    strips: a refused gap sends nothing and changes nothing; a sent one gets its pre-vis strip, and
    its take is placed on it (now, or by the timer)."""
    return _run(scene, GenerateEditor(scene, choices, server, board), server, wait)


def _drop_unused_previs(scene, item) -> None:
    """A pre-vis strip made for a job that ended without a take goes again, unless it has takes
    or another job still works on it."""
    if item.op != "generate":
        return
    if any(other.source == item.source and other.job_id != item.job_id and other.state not in TERMINAL
           for other in scene.takebridge.jobs):
        return
    vse_takes.drop_empty_previs(scene, item.source)


def _finish(scene, item, job) -> dict:
    pb = tb.api.pb
    item.state = pb.JobState.Name(job.state).lower()
    item.progress = 1.0 if job.state == pb.SUCCEEDED else item.progress
    item.message = job.error
    result = {"job_id": job.job_id, "state": item.state, "error": job.error}
    if job.state == pb.SUCCEEDED and not item.placed:
        item.take_id = job.take.take_id
        source = vse_takes.find_source(scene, item.source)
        strip = vse_takes.place_take_strip(scene, source, job.take)
        item.placed = True
        result.update(take_id=job.take.take_id, strip=strip.name, status=pb.TakeStatus.Name(job.take.status).lower(),
                      flags=list(job.take.flags))
    elif job.state != pb.SUCCEEDED:
        _drop_unused_previs(scene, item)
    return result


def watch(scene_name: str, job_id: str, server: str, token: str, after_seq: int) -> None:
    """Read the job's events in a background thread; the timer applies them."""
    if job_id in _watchers and _watchers[job_id].is_alive():
        return

    def run():
        try:
            with client(server, token) as c:
                for event in c.watch(job_id, after_seq=after_seq, include_previews=True, reconnect_timeout=120):
                    _events.put((scene_name, job_id, event))
                _events.put((scene_name, job_id, c.get_job(job_id)))
        except Exception as exc:  # reported in the panel; the job stays on the server
            _events.put((scene_name, job_id, exc))

    thread = threading.Thread(target=run, name=f"takebridge-watch-{job_id}", daemon=True)
    _watchers[job_id] = thread
    thread.start()
    if not bpy.app.timers.is_registered(apply_events):
        bpy.app.timers.register(apply_events, first_interval=TIMER_INTERVAL, persistent=True)


def apply_events():
    """Main thread: apply what the watchers read. Returns the next interval (None to stop)."""
    pb = tb.api.pb
    changed = False
    while True:
        try:
            scene_name, job_id, payload = _events.get_nowait()
        except queue.Empty:
            break
        scene = bpy.data.scenes.get(scene_name)
        item = _job_item(scene, job_id) if scene else None
        if item is None:
            continue
        changed = True
        if isinstance(payload, Exception):
            item.message = f"lost the server: {payload}; it reattaches when the server is back (reopen or refresh)"
            continue
        if isinstance(payload, pb.Job):
            if payload.state in (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED):
                try:
                    _finish(scene, item, payload)
                except vse_takes.TakeError as err:
                    item.message = str(err)
            continue
        progress = tb.progress
        before = progress.JobView(job_id, state=item.state, stage=item.stage, fraction=item.progress,
                                  eta_seconds=item.eta, message=item.message, last_seq=item.last_seq)
        view = progress.apply_event(before, payload)
        item.last_seq, item.state, item.stage = view.last_seq, view.state, view.stage
        item.progress, item.eta, item.message = view.fraction, view.eta_seconds, view.message
        if view.preview_jpeg:
            _previews[job_id] = view.preview_jpeg
    if changed:
        _redraw()
    busy = any(t.is_alive() for t in _watchers.values()) or not _events.empty()
    return TIMER_INTERVAL if busy else None


def _job_item(scene, job_id: str):
    for item in scene.takebridge.jobs:
        if item.job_id == job_id:
            return item
    return None


def reattach_all() -> int:
    """Watch again every unfinished (or finished but unplaced) job of every scene."""
    count = 0
    for scene in bpy.data.scenes:
        settings = getattr(scene, "takebridge", None)
        if settings is None:
            continue
        for item in settings.jobs:
            if item.state not in TERMINAL or (item.state == "succeeded" and not item.placed):
                watch(scene.name, item.job_id, item.server, settings.token, 0 if not item.placed else item.last_seq)
                count += 1
    return count


def cancel(scene, job_id: str) -> str:
    pb = tb.api.pb
    item = _job_item(scene, job_id)
    if item is None:
        raise JobError(f"no job {job_id!r} in this scene")
    with client(item.server, scene.takebridge.token) as c:
        job = c.cancel(job_id)
    return pb.JobState.Name(job.state).lower()


_icons = None             # bpy.utils.previews collection, made on first use


def preview_icon(job_id: str) -> int:
    """An icon id for the job's latest preview frame (0 when there is none yet)."""
    global _icons
    data = _previews.get(job_id)
    if not data:
        return 0
    import bpy.utils.previews

    if _icons is None:
        _icons = bpy.utils.previews.new()
    path = os.path.join(tempfile.gettempdir(), f"takebridge-preview-{job_id}.jpg")
    with open(path, "wb") as fh:
        fh.write(data)
    icon = _icons.load(job_id, path, "IMAGE", force_reload=True) if job_id not in _icons else _icons[job_id]
    if job_id in _icons:
        icon.reload()
    return icon.icon_id


def release_icons() -> None:
    global _icons
    if _icons is not None:
        import bpy.utils.previews

        bpy.utils.previews.remove(_icons)
        _icons = None


def _redraw():
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "SEQUENCE_EDITOR":
                area.tag_redraw()


def mask_path_of(scene, name: str, source) -> str:
    """A mask file for the server from a strip: an image or movie strip's file; a Blender Mask
    strip is rendered to a PNG sequence over the source's frames first."""
    if not name:
        return ""
    strip = next((s for s in compat.strips_all(scene) if s.name == name), None)
    if strip is None:
        raise JobError(f"mask strip {name!r} not found")
    if strip.type == "MOVIE":
        return vse.abspath(strip.filepath)
    if strip.type == "IMAGE":
        if len(strip.elements) == 1:
            return os.path.join(vse.abspath(strip.directory), strip.elements[0].filename)
        return vse.abspath(strip.directory)
    if strip.type == "MASK":
        return render_mask(scene, strip, source)
    raise JobError(f"mask strip {name!r} is a {strip.type} strip; use an image, movie or Mask strip")


def render_mask(scene, mask_strip, source) -> str:
    """Render a Mask strip alone over the source's visible frames to a PNG sequence."""
    folder = tempfile.mkdtemp(prefix="takebridge-mask-")
    muted = {s.name: s.mute for s in compat.strips_all(scene)}
    saved = (scene.frame_start, scene.frame_end, scene.render.filepath, scene.render.image_settings.file_format,
             scene.render.use_sequencer, scene.view_settings.view_transform)
    try:
        for strip in compat.strips_all(scene):
            strip.mute = strip != mask_strip
        scene.frame_start, scene.frame_end = source.frame_final_start, source.frame_final_end - 1
        scene.render.filepath = os.path.join(folder, "mask_")
        scene.render.image_settings.file_format = "PNG"
        scene.render.use_sequencer = True
        scene.view_settings.view_transform = "Standard"   # white stays 255
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        for strip in compat.strips_all(scene):
            strip.mute = muted.get(strip.name, strip.mute)
        (scene.frame_start, scene.frame_end, scene.render.filepath, scene.render.image_settings.file_format,
         scene.render.use_sequencer, scene.view_settings.view_transform) = saved
    files = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
    if not files:
        raise JobError(f"rendering mask strip {mask_strip.name!r} produced no frames")
    return folder
