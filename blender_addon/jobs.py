"""Jobs without freezing Blender: submit, then a background thread reads the job's event
stream and a main-thread timer applies what it read (progress, ETA, preview, the take strip).
Jobs are kept in the scene, so they reattach by job id after the .blend is reopened, and the
client resumes the stream after a server restart.

Blender data is only touched on the main thread (operators, the timer); threads only talk
gRPC and fill a queue.
"""
from __future__ import annotations

import os
import queue
import random
import tempfile
import threading

import bpy

from . import compat, vse, vse_takes
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
    if not settings.seed_lock:
        settings.seed = random.randint(0, 2 ** 31 - 1)
    request_module = tb.request
    options = request_module.JobOptions(
        op=op, strength=settings.strength, frames=frames, side=side.lower(), mask=mask_path, feather=settings.feather,
        prompt=settings.prompt, negative_prompt=settings.negative_prompt, seed=settings.seed, codec=settings.codec,
        backend=settings.backend, model=settings.model, take_dir=take_dir(settings), handles=settings.handles,
        references=[request_module.Reference(bpy.path.abspath(ref.filepath), ref.role)
                    for ref in settings.references if ref.filepath])
    try:
        return request_module.build_request(selection, options, client="takebridge-blender")
    except request_module.RequestError as err:
        raise JobError(str(err)) from None


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
        item = _job_item(self.scene, take.job_id)
        strip = vse_takes.place_take_strip(self.scene, source, take)
        if item is not None:
            item.take_id, item.placed, item.state, item.progress = take.take_id, True, "succeeded", 1.0
        pb = tb.api.pb
        return {"take_id": take.take_id, "strip": strip.name, "status": pb.TakeStatus.Name(take.status).lower(),
                "flags": list(take.flags)}

    def progress(self, source, view) -> None:
        pass


def submit_all(scene, sources, op: str, *, server: str, wait: bool, params_for=lambda source: {}) -> list[dict]:
    """One job per source strip through bridge/editor.py's loop: one result per strip (a refused
    or failed strip never drops the others). With wait=True each is followed to its end and its
    take placed; otherwise a background watcher follows each and the timer places it."""
    settings = scene.takebridge
    adapter = BlenderEditor(scene, sources, op, server, params_for)
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
    return results


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
