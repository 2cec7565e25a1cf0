"""TakeBridge inside DaVinci Resolve: every entry point takes the `resolve` object first, so
the same code runs from Workspace > Scripts, from an external Python with
DaVinciResolveScript, and in tests (against tests/support/resolve_standin.py).

Round trip: Timeline.Export(EXPORT_OTIO) -> bridge cuts the selected range -> the server makes
the take -> its media is imported into a "TakeBridge" media-pool bin -> added to the item as a
take in the Take Selector and selected (never FinalizeTake unless asked). Resolve's return
values are not trusted where they are documented to lie: GetTakesCount() decides whether a
take was added, and tracks are re-listed after AppendToTimeline.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field

import opentimelineio as otio

from .bridge_import import tb

BIN_NAME = "TakeBridge"
TRACK_NAME = "TakeBridge"
META_KEY = "takebridge"


class ResolveError(tb.errors.TakeBridgeError):
    """Something the editor can fix, said so."""


def has(obj, name: str) -> bool:
    """Capability probe: hasattr() is always True on Resolve objects; dir() is not."""
    return name in dir(obj)


@dataclass
class Context:
    resolve: object
    project: object
    timeline: object
    media_pool: object

    @property
    def start_frame(self) -> int:
        return int(self.timeline.GetStartFrame())


def context(resolve) -> Context:
    if resolve is None:
        raise ResolveError("no Resolve: run this from Workspace > Scripts, or start Resolve and enable "
                           "Preferences > General > External scripting")
    project = resolve.GetProjectManager().GetCurrentProject()
    if project is None:
        raise ResolveError("no project is open in Resolve")
    timeline = project.GetCurrentTimeline()
    if timeline is None:
        raise ResolveError("no timeline is open; open one on the Edit page")
    if has(resolve, "GetCurrentPage") and resolve.GetCurrentPage() not in ("edit", "cut"):
        resolve.OpenPage("edit")
    return Context(resolve, project, timeline, project.GetMediaPool())


# ------------------------------------------------------------------------------- selection

def video_items(timeline) -> list:
    items = []
    for index in range(1, int(timeline.GetTrackCount("video")) + 1):
        items += list(timeline.GetItemListInTrack("video", index) or [])
    return items


def mark_range(timeline) -> tuple[int, int] | None:
    """The timeline's In/Out marks as absolute frames [in, out) (Resolve's out is inclusive
    and both are offsets from the timeline start), or None."""
    if not has(timeline, "GetMarkInOut"):
        return None
    marks = (timeline.GetMarkInOut() or {}).get("video") or {}
    if "in" not in marks or "out" not in marks:
        return None
    start = int(timeline.GetStartFrame())
    return start + int(marks["in"]), start + int(marks["out"]) + 1


def selected_items(timeline) -> list:
    """The selected clips (GetSelectedClips, Resolve 21.0.4+), else the clip under the
    playhead; narrowed to those touching the In/Out marks when they are set."""
    items = []
    if has(timeline, "GetSelectedClips"):
        items = [i for i in (timeline.GetSelectedClips() or []) if i.GetMediaPoolItem() is not None]
    if not items:
        current = timeline.GetCurrentVideoItem() if has(timeline, "GetCurrentVideoItem") else None
        items = [current] if current is not None and current.GetMediaPoolItem() is not None else []
    marks = mark_range(timeline)
    if marks:
        items = [i for i in items if int(i.GetStart()) < marks[1] and int(i.GetEnd()) > marks[0]]
    if not items:
        raise ResolveError("select a clip on a video track (or park the playhead on one)"
                           + (" inside the In/Out range" if marks else ""))
    return items


# ---------------------------------------------------------------------------- OTIO round trip

def export_otio(ctx: Context, folder: str | None = None):
    """The whole timeline as OTIO through Resolve's own exporter (EXPORT_OTIO, Resolve 18.5+)."""

    if folder is None:   # a private folder, gone afterwards
        with tempfile.TemporaryDirectory(prefix="takebridge-resolve-") as scratch:
            return export_otio(ctx, scratch)
    path = os.path.join(folder, "timeline.otio")
    export_type = getattr(ctx.resolve, "EXPORT_OTIO", None)
    if export_type is None or not ctx.timeline.Export(path, export_type, ctx.resolve.EXPORT_NONE):
        raise ResolveError("Resolve did not export the timeline as OTIO (needs DaVinci Resolve 18.5 or newer)")
    return otio.adapters.read_from_file(path, adapter_name="otio_json")


@dataclass
class Target:
    """One timeline item and what bridge sees of it."""
    item: object
    track_index: int                  # 1-based, as Resolve counts
    clip_name: str
    segment: object                   # bridge.timeline.Segment
    timeline_otio: object = field(repr=False, default=None)


def target_for(ctx: Context, timeline_otio, item, *, handles: int = 0) -> Target:
    """Find the item's clip in the exported OTIO by track and record start, cut to the marks."""
    kind, track_index = item.GetTrackTypeAndIndex() if has(item, "GetTrackTypeAndIndex") else ("video", 1)
    timeline_mod = tb.timeline
    record = int(item.GetStart()) - ctx.start_frame
    track = list(timeline_otio.video_tracks())[int(track_index) - 1]
    rate = timeline_mod.timeline_rate(timeline_otio)
    clip, position = None, -1
    for index, child in enumerate(track):
        if child.schema_name() == "Clip" and timeline_mod.record_range(track, index, rate)[0] == record:
            clip, position = child, index
            break
    if clip is None:
        raise ResolveError(f"could not find {item.GetName()!r} (V{track_index} at {timecode_of(ctx, int(item.GetStart()))}) "
                           f"in Resolve's "
                           f"OTIO export; is the clip on a video track?")
    marks = mark_range(ctx.timeline)
    origin = timeline_mod.global_start(timeline_otio)
    if marks and (marks[0] > int(item.GetStart()) or marks[1] < int(item.GetEnd())):
        first, last = max(marks[0], int(item.GetStart())), min(marks[1], int(item.GetEnd()))
        segments = timeline_mod.select_range(timeline_otio, int(track_index), first - ctx.start_frame + origin,
                                             last - ctx.start_frame + origin, handles=handles)
        segment = next(s for s in segments if s.item_index == position)
    else:   # by position: the same source cut in twice has one name twice
        segment = timeline_mod.select_item(timeline_otio, int(track_index), position, handles=handles)
    return Target(item=item, track_index=int(track_index), clip_name=clip.name, segment=segment,
                  timeline_otio=timeline_otio)


@dataclass
class Options(tb.request.JobOptions):
    """The editor-neutral job options (bridge/request.py), and the shot contract file they came
    from ("" = none): a characters.toml (or .json) beside it is the character library."""

    contract_file: str = ""


def read_contract(path: str) -> dict:
    """A shot contract file (bridge/contract.py checks every value's type and range, naming it),
    so a bad file is refused here and not halfway through a job."""
    return tb.contract.read_contract(path)


def library_for(options: Options):
    """The character library for options that cite characters (None when none are cited): the
    characters.toml (or .json) beside their contract file, read now (its images' hashes are the
    ones sent). Refused, saying where it was looked for, when there is none."""
    if not options.characters:
        return None
    folder = os.path.dirname(os.path.abspath(options.contract_file)) if getattr(options, "contract_file", "") else ""
    found = tb.contract.find_library(folder) if folder else None
    if found is None:
        raise ResolveError(f"the shot cites character(s) {', '.join(options.characters)} but there is no character "
                           f"library: put characters.toml beside the shot contract"
                           + (f" (in {folder})" if folder else " and load the contract"))
    return tb.contract.read_library(found)


def build_request(target: Target, options: Options):
    selection = tb.timeline.job_timeline(target.timeline_otio, target.segment)
    clip = next(iter(selection.find_clips()))
    meta = tb.metadata.read(clip)
    meta.setdefault("shot", os.path.splitext(target.clip_name)[0])   # Resolve names clips after their files
    tb.metadata.write(clip, meta)
    try:
        return tb.request.build_request(selection, options, client="takebridge-resolve", library=library_for(options))
    except tb.request.RequestError as err:
        raise ResolveError(str(err)) from None


# ---------------------------------------------------------------------------- placing takes

def takebridge_bin(ctx: Context):
    root = ctx.media_pool.GetRootFolder()
    for folder in root.GetSubFolderList() or []:
        if folder.GetName() == BIN_NAME:
            return folder
    folder = ctx.media_pool.AddSubFolder(root, BIN_NAME)
    if folder is None:
        raise ResolveError(f"could not make the {BIN_NAME!r} bin in the media pool")
    return folder


def import_take_media(ctx: Context, take, meta: dict | None = None) -> object:
    """The take's media as a media-pool item in the TakeBridge bin, tagged with its ids (or
    with `meta`, take_meta's and more)."""
    previous = ctx.media_pool.GetCurrentFolder()
    ctx.media_pool.SetCurrentFolder(takebridge_bin(ctx))
    try:
        items = ctx.media_pool.ImportMedia([take.media.url]) or []
    finally:
        if previous is not None:
            ctx.media_pool.SetCurrentFolder(previous)
    if not items:
        raise ResolveError(f"Resolve did not import the take media {take.media.url}")
    mpi = items[0]
    write_meta(mpi, meta if meta is not None else take_meta(take))
    return mpi


def take_meta(take) -> dict:
    pb = tb.api.pb
    return {"take_id": take.take_id, "job_id": take.job_id, "manifest": take.manifest_url,
            "status": pb.TakeStatus.Name(take.status).lower(), "flags": list(take.flags), "version": take.version,
            "op": pb.Operation.Name(take.operation).lower(), "tier": tier_name(take.tier),
            "promoted_from": take.promoted_from}


def tier_name(tier: int) -> str:
    """A pb.Tier as the dialog shows it: "draft", or "final" (unspecified is final)."""
    return "draft" if tier == tb.api.pb.TIER_DRAFT else "final"


def write_meta(mpi, data: dict) -> None:
    """On the media-pool item: third-party metadata (19.0.2+), else the Comments field."""
    text = json.dumps(data)
    if has(mpi, "SetThirdPartyMetadata"):
        mpi.SetThirdPartyMetadata(META_KEY, text)
    else:
        mpi.SetMetadata("Comments", f"{META_KEY}:{text}")


def read_meta(mpi) -> dict:
    if mpi is None:
        return {}
    if has(mpi, "GetThirdPartyMetadata"):
        text = (mpi.GetThirdPartyMetadata(META_KEY) or "")
    else:
        comment = mpi.GetMetadata("Comments") or ""
        text = comment[len(META_KEY) + 1:] if comment.startswith(META_KEY + ":") else ""
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def add_take(ctx: Context, target: Target, take, mpi) -> int:
    """Add the take to the item's Take Selector and select it; returns its 1-based index.

    The take media starts at source frame take.source_range.start_frame; the item shows the
    segment's source frames, so the take's range starts `head handles` frames in."""
    first = target.segment.source_start - take.source_range.start_frame
    return _add_to_take_selector(target.item, mpi, first, first + target.segment.source_duration)


def _add_to_take_selector(item, mpi, first: int, last: int) -> int:
    """AddTake(mpi, first, last) (source frames from the media's head, `last` exclusive) and
    select it; returns its 1-based index."""
    before = int(item.GetTakesCount())
    item.AddTake(mpi, first, last)                          # its return value is unreliable: count instead
    after = int(item.GetTakesCount())
    expected = before + 1 if before else 2                  # the original becomes take 1
    if after != expected:
        raise ResolveError(f"Resolve did not add the take to {item.GetName()!r} (takes {before} -> {after}); "
                           f"the media is in the {BIN_NAME} bin")
    if not item.SelectTakeByIndex(after) or int(item.GetSelectedTakeIndex()) != after:
        raise ResolveError(f"the take was added to {item.GetName()!r} but Resolve did not select it")
    return after


def place_extension(ctx: Context, target: Target, take, mpi, placement: str) -> dict:
    """An extended take cannot lengthen an item in the Take Selector: put it in the following
    (or preceding) gap on the item's track, or on a TakeBridge track above, then re-list the
    track to confirm what Resolve really did."""
    pb = tb.api.pb
    item, n = target.item, take.generated_frames
    head = take.extend_side == pb.HEAD
    media_first = target.segment.source_start - take.source_range.start_frame   # source part in the take
    if placement == "gap":
        track = target.track_index
        record, _ = _extension_span(item, n, head)
        first, last = (media_first - n, media_first) if head else (media_first + target.segment.source_duration,
                                                                    media_first + target.segment.source_duration + n)
        _check_gap(ctx, track, record, record + n, item)
    elif placement == "track":
        track = _takebridge_track(ctx)
        record = int(item.GetStart()) - (n if head else 0)
        first = media_first - (n if head else 0)
        last = first + target.segment.source_duration + n
    else:
        raise ResolveError(f"placement {placement!r} is not 'gap' or 'track'")
    return _append_and_confirm(ctx, mpi, take, track, record, first, last)


def place_overlay(ctx: Context, target: Target, take, mpi) -> dict:
    """A take of part of an item, on the TakeBridge track over exactly the marked frames."""
    track = _takebridge_track(ctx)
    record = ctx.start_frame + target.segment.record_start
    first = target.segment.source_start - take.source_range.start_frame
    last = first + target.segment.source_duration
    return _append_and_confirm(ctx, mpi, take, track, record, first, last)


def _append_and_confirm(ctx: Context, mpi, take, track: int, record: int, first: int, last: int) -> dict:
    """AppendToTimeline, then re-list the track: Resolve drops an overlapping clip silently,
    and its returned items cannot be trusted."""
    ctx.media_pool.AppendToTimeline([{"mediaPoolItem": mpi, "startFrame": first, "endFrame": last,
                                      "trackIndex": track, "recordFrame": record, "mediaType": 1}])
    placed = [i for i in ctx.timeline.GetItemListInTrack("video", track) or []
              if i.GetMediaPoolItem() is not None and read_meta(i.GetMediaPoolItem()).get("take_id") == take.take_id
              and int(i.GetStart()) == record]
    if not placed:
        raise ResolveError(f"Resolve did not place the take on V{track} at frame {record} (something overlaps it "
                           f"there); the take is in the {BIN_NAME} bin")
    return {"track": track, "start": int(placed[0].GetStart()), "duration": int(placed[0].GetDuration()),
            "expected_duration": last - first}


def _check_gap(ctx, track: int, start: int, end: int, item, *, gap: bool = True) -> None:
    """bridge/window.py decides: the new frames start..end must not overlap another item on the
    track (gap placement) nor start before the timeline."""
    window = tb.window
    others = [window.Span(int(o.GetStart()), int(o.GetEnd()), o.GetName())
              for o in (ctx.timeline.GetItemListInTrack("video", track) or []) if gap
              and o.GetUniqueId() != item.GetUniqueId()]
    side = "head" if end <= int(item.GetStart()) else "tail"
    window.check_room(item.GetName(), (start, end), side, others, floor=int(ctx.timeline.GetStartFrame()),
                      label=lambda frame: timecode_of(ctx, frame), track=f" on V{track}",
                      instead="use the TakeBridge track placement" if gap else "extend the other side")


def _takebridge_track(ctx) -> int:
    count = int(ctx.timeline.GetTrackCount("video"))
    for index in range(1, count + 1):
        if ctx.timeline.GetTrackName("video", index) == TRACK_NAME:
            return index
    if not ctx.timeline.AddTrack("video"):
        raise ResolveError(f"Resolve did not add a video track for the {TRACK_NAME} track")
    index = int(ctx.timeline.GetTrackCount("video"))
    ctx.timeline.SetTrackName("video", index, TRACK_NAME)
    return index


# ---------------------------------------------------------------------------------- the job

class ResolveEditor:
    """Resolve as an editor (bridge/editor.py's protocol): items found by track and record start
    in Resolve's own OTIO export, refused before anything is sent when they cannot work, and
    their takes added to the Take Selector or placed beside them."""

    def __init__(self, ctx: Context, items, *, progress=None, finalize: bool = False):
        self.ctx, self.items, self.progress_cb, self.finalize = ctx, list(items), progress, finalize
        self.timeline_otio = export_otio(ctx)
        self.targets: dict = {}

    def clips(self) -> list:
        return self.items

    def describe(self, item) -> dict:
        _, track = item.GetTrackTypeAndIndex() if has(item, "GetTrackTypeAndIndex") else ("video", 1)
        return {"item": item.GetName(), "track": int(track), "record_start": timecode_of(self.ctx, int(item.GetStart()))}

    def request(self, item, options: Options):
        target = target_for(self.ctx, self.timeline_otio, item, handles=options.handles)
        check_room(self.ctx, target, options)
        self.targets[id(item)] = target
        return build_request(target, options)

    def apply(self, item, take, options: Options) -> dict:
        return place(self.ctx, self.targets[id(item)], take, options, finalize=self.finalize)

    def progress(self, item, view) -> None:
        if self.progress_cb is not None and view.state == "running":
            self.progress_cb(item.GetName(), view.fraction, view.detail)


def run(resolve, options: Options, *, server: str = "127.0.0.1:50151", token: str = "", items=None,
        progress=None, finalize: bool = False, on_submit=None) -> list[dict]:
    """Generate a take for each selected item (or `items`), wait for it and place it; one result
    per item, in order (bridge/editor.py's loop). An item that cannot be done (no room for its
    extension, no mask...) is refused before anything is sent for it, and the others still run;
    only when every item is refused does this raise. `progress(item_name, fraction, text)` is
    called as jobs run, `on_submit(job_id)` as each is submitted (the dialog cancels only those)."""
    ctx = context(resolve)
    adapter = ResolveEditor(ctx, items if items is not None else selected_items(ctx.timeline),
                            progress=progress, finalize=finalize)
    with tb.client.GenerationClient(server, token=token) as client:
        results = tb.editor.run(adapter, options, client, on_submit=on_submit)
    return _unless_all_refused(results)


def _unless_all_refused(results: list[dict]) -> list[dict]:
    refusals = [f"{r['item']} at {r['record_start']}: {r['error']}" for r in results if r["state"] == "refused"]
    if refusals and len(refusals) == len(results):
        raise ResolveError("; ".join(refusals) if len(refusals) > 1 else str(results[0]["error"]))
    return results


def place(ctx: Context, target: Target, take, options: Options, *, finalize: bool = False) -> dict:
    """A finished take into the timeline: an extension beside the item or on the TakeBridge
    track, a range inside an item over it, a whole item into its Take Selector."""
    mpi = import_take_media(ctx, take)
    placed = take_meta(take)
    if options.op == "extend":
        placed["placement"] = place_extension(ctx, target, take, mpi, options.placement)
    elif not target.segment.whole_clip:
        # the Take Selector swaps whole items: a range inside a clip goes above it
        placed["placement"] = place_overlay(ctx, target, take, mpi)
    else:
        placed["take_index"] = add_take(ctx, target, take, mpi)
        if finalize:
            target.item.FinalizeTake()
    return placed


def check_room(ctx: Context, target: Target, options: Options) -> None:
    """Refuse, before the job is sent, an extension with no room where it would be placed."""
    if options.op != "extend":
        return
    if options.placement not in ("gap", "track"):
        raise ResolveError(f"placement {options.placement!r} is not 'gap' or 'track'")
    item = target.item
    start, end = _extension_span(item, int(options.frames), options.side == "head")
    _check_gap(ctx, target.track_index, start, end, item, gap=options.placement == "gap")


def _extension_span(item, frames: int, head: bool) -> tuple[int, int]:
    """The record frames an extension of `item` takes (bridge/window.py; absolute frames)."""
    start = int(item.GetStart())
    return tb.window.extension_span(start, int(item.GetEnd()) - start, "head" if head else "tail", frames)


def timecode_of(ctx: Context, frame: int) -> str:
    """A Resolve timeline frame number as its timecode (Resolve counts frames from 00:00:00:00)."""
    timecode = tb.timecode
    rate = ctx.timeline.GetSetting("timelineFrameRate") if has(ctx.timeline, "GetSetting") else ""
    try:
        return timecode.to_timecode(frame, timecode.exact_rate(float(rate or 24)))
    except ValueError:
        return f"frame {frame}"


# ------------------------------------------------------------------------------ Generate

@dataclass
class Shot:
    """A Generate as the user asked for it: video track `track` (from 1) and absolute Resolve
    frames [first, last); `last` None: the whole gap at `first` (a marker's frame); `first` None:
    the playhead (the In/Out range when it holds the playhead, else the gap there). `name` is the
    shot's ("" = one made from the track and timecode, or the pre-vis shot's already there).
    `what` names a point in refusals ("the marker", "the playhead"): a point must be in a gap
    (or on a pre-vis shot), not on a clip; `length_hint` says how to give a
    length where no gap ends; `spill`: frames that are not free on `track` (they run into the
    next clip) go on the TakeBridge track instead."""

    track: int = 1
    first: int | None = None
    last: int | None = None
    name: str = ""
    what: str = ""
    length_hint: str = ""
    spill: bool = False


def previs_meta(item) -> dict:
    """The TakeBridge metadata of the take a pre-vis item (one Generate made) shows; {} for others."""
    meta = read_meta(item.GetMediaPoolItem())
    return meta if meta.get("op") == "generate" else {}


def previs_view(ctx: Context):
    """The timeline as OTIO (Resolve's own export, as the other operations read it), with the
    items Generate made marked as pre-vis clips (shot, track, size): the export carries no
    TakeBridge metadata, and bridge.previs must tell a pre-vis shot (another take goes on it)
    from a clip in the way."""
    view = export_otio(ctx)
    timeline_mod = tb.timeline
    rate = timeline_mod.timeline_rate(view)
    for number, track in enumerate(view.video_tracks(), start=1):
        made = {}
        for item in ctx.timeline.GetItemListInTrack("video", number) or []:
            meta = previs_meta(item)
            if meta:
                made[int(item.GetStart()) - ctx.start_frame] = meta
        if not made:
            continue
        for index, child in enumerate(track):
            meta = made.get(timeline_mod.record_range(track, index, rate)[0]) if isinstance(
                child, otio.schema.Clip) else None
            if not meta:
                continue
            info = {"track": number}
            size = meta.get("size")
            if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
                info["size"] = size
            tb.metadata.write(child, {**tb.metadata.read(child), "shot": meta.get("shot") or child.name,
                                      "previs": info})
    return view


def timeline_size(ctx: Context) -> tuple[int, int] | None:
    """The timeline's picture size (its settings), the size a pre-vis shot is made at."""
    if not has(ctx.timeline, "GetSetting"):
        return None
    try:
        width = int(ctx.timeline.GetSetting("timelineResolutionWidth") or 0)
        height = int(ctx.timeline.GetSetting("timelineResolutionHeight") or 0)
    except (TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None


class GapEditor:
    """Resolve as an editor for Generate (bridge/editor.py's protocol): each "clip" is a Shot,
    checked by bridge.previs.find_gap on the timeline's OTIO (refused, naming the clip in the
    way, before anything is sent) and sent as its gap with the neighbouring clips' frames as
    keyframes; its take becomes a new item filling exactly the gap (ImportMedia into the
    TakeBridge bin, AppendToTimeline at the gap's record frame), or another take in the Take
    Selector of the pre-vis item already there."""

    def __init__(self, ctx: Context, shots, *, progress=None):
        self.ctx, self.progress_cb = ctx, progress
        self.view = previs_view(ctx)
        self.rate = tb.timeline.timeline_rate(self.view)
        self.origin = tb.timeline.global_start(self.view)
        self.targets: dict = {}
        self.new_track = 0    # the TakeBridge track's number in the view while Resolve has none yet
        self.shots = [self._at_playhead(shot) if shot.first is None else shot for shot in shots]

    # Resolve frames are absolute (they include the start timecode); the view's are from its
    # global start: both name a frame by its offset from the timeline's first
    def _view_frame(self, frame: int) -> int:
        return frame - self.ctx.start_frame + self.origin

    def _resolve_frame(self, frame: int) -> int:
        return frame - self.origin + self.ctx.start_frame

    def _at_playhead(self, shot: Shot) -> Shot:
        text = self.ctx.timeline.GetCurrentTimecode() if has(self.ctx.timeline, "GetCurrentTimecode") else ""
        if not text:
            raise ResolveError("Resolve did not say where the playhead is (Timeline.GetCurrentTimecode): open the "
                               "timeline on the Edit page")
        try:
            frame = tb.timecode.from_timecode(text, self.rate)
        except ValueError as err:
            raise ResolveError(f"cannot read the playhead {text!r}: {err}") from None
        marks = mark_range(self.ctx.timeline)
        if marks and marks[0] <= frame < marks[1]:    # the In/Out range around the playhead
            return dataclasses.replace(shot, first=marks[0], last=marks[1])
        return dataclasses.replace(shot, first=frame, last=None, what=shot.what or "the playhead",
                                   length_hint=shot.length_hint or "set In and Out marks around the playhead for "
                                                                   "the shot's length")

    def clips(self) -> list:
        return self.shots

    def describe(self, shot: Shot) -> dict:
        return {"item": shot.name or f"gap on V{shot.track}", "track": shot.track,
                "record_start": timecode_of(self.ctx, shot.first)}

    def target(self, shot: Shot):
        """The GapTarget for a shot, or a refusal naming what is in the way."""
        previs, selection_error = tb.previs, tb.selection.SelectionError
        first, last = shot.first, shot.last
        if shot.what:     # a point: it must be in a gap (or on a pre-vis shot), not on a clip
            clip = _clip_at(self.view, shot.track, self._view_frame(first))
            if clip is not None and not previs.is_previs(clip):
                raise ResolveError(f"{shot.what} ({timecode_of(self.ctx, first)}) is on clip {clip.name!r} on "
                                   f"V{shot.track}, not in a gap: move it into a gap (or onto a pre-vis shot)")
        if last is None:
            try:
                gap_first, gap_last = previs.gap_under(self.view, shot.track, self._view_frame(first))
            except selection_error as err:
                if err.code != "no_gap":
                    raise
                raise ResolveError(f"{shot.what or timecode_of(self.ctx, first)} is past the end of V{shot.track}: "
                                   f"there is no gap to fill there; "
                                   f"{shot.length_hint or 'give the shot a length'}") from None
            first, last = self._resolve_frame(gap_first), self._resolve_frame(gap_last)
        try:
            return previs.find_gap(self.view, shot.track, self._view_frame(first), self._view_frame(last),
                                   shot=shot.name)
        except selection_error as err:
            if not (shot.spill and err.code == "range_not_empty"):
                raise
            track = self._spill_track()
            if track == shot.track:
                raise
            try:
                return previs.find_gap(self.view, track, self._view_frame(first), self._view_frame(last),
                                       shot=shot.name)
            except selection_error as other:
                raise ResolveError(f"{err}; and the {TRACK_NAME} track V{track} has no room either: {other}") from None

    def _spill_track(self) -> int:
        """The TakeBridge track's number; while Resolve has none, an empty track in the view
        (Resolve gets it when the shot is placed: nothing changes before a take exists)."""
        count = int(self.ctx.timeline.GetTrackCount("video"))
        for index in range(1, count + 1):
            if self.ctx.timeline.GetTrackName("video", index) == TRACK_NAME:
                return index
        if not self.new_track:
            self.view.tracks.append(otio.schema.Track(name=TRACK_NAME, kind=otio.schema.TrackKind.Video))
            self.new_track = len(list(self.view.video_tracks()))
        return self.new_track

    def request(self, shot: Shot, options: Options):
        target = self.target(shot)
        self.targets[id(shot)] = target
        if not options.width and not options.height:
            # another take of a shot is made at its size; a new shot at the timeline's
            size = target.size or timeline_size(self.ctx)
            if size:
                options = dataclasses.replace(options, width=size[0], height=size[1])
        selection = tb.previs.export_gap(self.view, target)
        try:
            return tb.request.build_request(selection, options, client="takebridge-resolve",
                                            keyframes=target.keyframes, library=library_for(options))
        except tb.request.RequestError as err:
            raise ResolveError(str(err)) from None

    def apply(self, shot: Shot, take, options: Options) -> dict:
        target = self.targets[id(shot)]
        return place_generated(self.ctx, target, take,
                               new_track=bool(self.new_track) and target.track_number == self.new_track)

    def progress(self, shot: Shot, view) -> None:
        if self.progress_cb is not None and view.state == "running":
            target = self.targets.get(id(shot))
            self.progress_cb(target.shot if target is not None else shot.name, view.fraction, view.detail)


def _clip_at(view, track_number: int, frame: int):
    """The clip on the view's video track at `frame` (the view's frames), None in a gap or past the end."""
    timeline_mod = tb.timeline
    track = timeline_mod.video_track(view, track_number)
    rate = timeline_mod.timeline_rate(view)
    origin = timeline_mod.global_start(view)
    for index, child in enumerate(track):
        if isinstance(child, otio.schema.Transition):
            continue
        start, duration = timeline_mod.record_range(track, index, rate)
        if start <= frame - origin < start + duration:
            return child if isinstance(child, otio.schema.Clip) else None
    return None


def generate(resolve, options: Options, *, server: str = "127.0.0.1:50151", token: str = "", shots=None,
             track: int = 1, progress=None, on_submit=None) -> list[dict]:
    """Generate: a pre-vis shot in each of `shots` (Shot), by default the gap at the playhead on
    video track `track` (or the In/Out range around the playhead). One result per shot, in order,
    as run() gives: a shot that cannot be made (a clip in the way, no gap at the point) is refused
    before anything is sent, naming the clip; only when every shot is refused does this raise."""
    ctx = context(resolve)
    options = dataclasses.replace(options, op="generate")
    adapter = GapEditor(ctx, shots if shots is not None else [Shot(track=int(track))], progress=progress)
    with tb.client.GenerationClient(server, token=token) as client:
        results = tb.editor.run(adapter, options, client, on_submit=on_submit)
    return _unless_all_refused(results)


def place_generated(ctx: Context, target, take, *, new_track: bool = False) -> dict:
    """A Generate take into the timeline: a new item filling exactly the gap's record frames on
    its track (on the TakeBridge track, made now, when `new_track`), or, over the pre-vis item
    an earlier Generate made there, another take in its Take Selector, selected. The take's
    media-pool item carries its ids, its shot and its size (takes_of, switch_take, review and
    the next Generate read them)."""
    count = target.count
    rate = tb.timecode.exact_rate(take.source_range.rate)
    if take.source_range.frame_count != count or rate != target.rate:
        raise ResolveError(f"take {take.take_id} has {take.source_range.frame_count} frames at "
                           f"{tb.timecode.rate_text(rate)} fps; the gap is {count} at "
                           f"{tb.timecode.rate_text(target.rate)}")
    meta = {**take_meta(take), "shot": take.shot or target.shot, "size": [int(take.media.width),
                                                                           int(take.media.height)]}
    mpi = import_take_media(ctx, take, meta)
    record = ctx.start_frame + target.record_start
    placed = {**meta, "item": meta["shot"]}
    if target.placeholder is not None:
        items = [i for i in ctx.timeline.GetItemListInTrack("video", target.track_number) or []
                 if int(i.GetStart()) == record and previs_meta(i)]
        if not items:
            raise ResolveError(f"the pre-vis shot {target.shot!r} is no longer at {timecode_of(ctx, record)} on "
                               f"V{target.track_number}; the take is in the {BIN_NAME} bin")
        item = items[0]
        placed["take_index"] = _add_to_take_selector(item, mpi, 0, count)
        placed["placement"] = {"track": target.track_number, "start": int(item.GetStart()),
                               "duration": int(item.GetDuration()), "expected_duration": count}
    else:
        track = _takebridge_track(ctx) if new_track else target.track_number
        # the take's media holds exactly the shot's frames: source frames 0..count (exclusive end)
        placed["placement"] = _append_and_confirm(ctx, mpi, take, track, record, 0, count)
    return placed


# ------------------------------------------------------------------------------ take list

def takes_of(item) -> list[dict]:
    """The item's Take Selector, 1-based, with TakeBridge metadata where a take has it. An item
    TakeBridge made itself (a Generate shot, an extension in a gap) is its one take until a
    second one opens its Take Selector: take 1, shown."""
    rows = []
    if _own_take(item):
        mpi, left = item.GetMediaPoolItem(), int(item.GetLeftOffset())
        return [{"index": 1, "name": mpi.GetName(), "selected": True, "start": left,
                 "end": left + int(item.GetDuration()), **read_meta(mpi)}]
    selected = int(item.GetSelectedTakeIndex()) if has(item, "GetSelectedTakeIndex") else 0
    for index in range(1, int(item.GetTakesCount()) + 1):
        take = item.GetTakeByIndex(index) or {}
        mpi = take.get("mediaPoolItem")
        rows.append({"index": index, "name": mpi.GetName() if mpi is not None else "", "selected": index == selected,
                     "start": take.get("startFrame"), "end": take.get("endFrame"), **read_meta(mpi)})
    return rows


def _own_take(item) -> bool:
    """An item outside a Take Selector whose media TakeBridge made (Resolve counts 0 takes)."""
    return int(item.GetTakesCount()) == 0 and bool(read_meta(item.GetMediaPoolItem()).get("take_id"))


def _take_media(item, index: int):
    """The media-pool item of take `index` (1-based), None when there is no such take."""
    if index == 1 and _own_take(item):
        return item.GetMediaPoolItem()
    return (item.GetTakeByIndex(index) or {}).get("mediaPoolItem")


def switch_take(item, index: int) -> None:
    own = _own_take(item)
    count = 1 if own else int(item.GetTakesCount())
    if not 1 <= index <= count:
        raise ResolveError(f"{item.GetName()!r} has takes 1..{count}, not {index}")
    if own:
        return          # its one take, already shown
    item.SelectTakeByIndex(index)
    if int(item.GetSelectedTakeIndex()) != index:
        raise ResolveError(f"Resolve did not select take {index} of {item.GetName()!r}")


def review(item, index: int, approve: bool, note: str, *, server: str, reviewer: str = "", token: str = "") -> dict:
    """Approve or reject a take: sent to the server (manifest, pilot report), status kept on
    its media-pool item."""
    take = _take_media(item, index)
    meta = read_meta(take)
    if not meta.get("take_id"):
        raise ResolveError(f"take {index} of {item.GetName()!r} was not made by TakeBridge")
    pb = tb.api.pb
    with tb.client.GenerationClient(server, token=token) as client:
        reviewed = client.review(meta["take_id"], approve, note, reviewer)
    meta.update(status=pb.TakeStatus.Name(reviewed.status).lower(), note=note, reviewer=reviewed.reviewer)
    write_meta(take, meta)
    return meta


# ------------------------------------------------------------------- final from this draft

class FinalEditor:
    """"Final from this draft" as an editor (bridge/editor.py's protocol): the one clip is the
    item whose Take Selector holds the draft (take `row`, takes_of's); its request is the draft's
    own (from its manifest) at the final tier with the draft's seed, promoted from it (the server
    checks it made that draft); the final goes into the item's Take Selector over the frames the
    draft shows there, selected. A take that is not a TakeBridge draft, or whose manifest cannot be
    read, is refused before anything is sent."""

    def __init__(self, ctx: Context, item, row: dict, *, progress=None):
        self.ctx, self.item, self.row, self.progress_cb = ctx, item, row, progress
        self.draft_start = 0      # the draft's first source frame: where its media starts

    def clips(self) -> list:
        return [self.item]

    def describe(self, item) -> dict:
        _, track = item.GetTrackTypeAndIndex() if has(item, "GetTrackTypeAndIndex") else ("video", 1)
        return {"item": item.GetName(), "track": int(track), "promoted_from": self.row.get("take_id", ""),
                "record_start": timecode_of(self.ctx, int(item.GetStart()))}

    def request(self, item, options):
        row = self.row
        take_id = row.get("take_id")
        if not take_id:
            raise ResolveError(f"take {row['index']} of {item.GetName()!r} was not made by TakeBridge; a final is made "
                               f"from a TakeBridge draft")
        if row.get("tier", "draft") != "draft":
            raise ResolveError(f"take {row['index']} of {item.GetName()!r} ({take_id}) is not a draft (it is a "
                               f"{row['tier']} take); a final is made from a draft: make one with Draft checked")
        request, manifest = tb.request.final_request(row.get("manifest", ""), take_id)   # (refuses a non-draft)
        self.draft_start = int(((manifest.get("take") or {}).get("source_range") or {}).get("start_frame") or 0)
        return request

    def apply(self, item, take, options) -> dict:
        meta = take_meta(take)
        if "shot" in self.row or "size" in self.row:     # a pre-vis shot's: its shot and size go on
            meta.update(shot=take.shot or self.row.get("shot", ""), size=[int(take.media.width),
                                                                          int(take.media.height)])
        mpi = import_take_media(self.ctx, take, meta)
        # the same frames the draft shows, in the final's media (the same source range, unless moved)
        first = int(self.row["start"] or 0) + self.draft_start - int(take.source_range.start_frame)
        return {**meta, "take_index": _add_to_take_selector(item, mpi, first, first + int(item.GetDuration()))}

    def progress(self, item, view) -> None:
        if self.progress_cb is not None and view.state == "running":
            self.progress_cb(item.GetName(), view.fraction, view.detail)


def final_from_draft(resolve, item, take, *, server: str = "127.0.0.1:50151", token: str = "", progress=None,
                     on_submit=None) -> dict:
    """The final of a draft take of `item`: `take` is its 1-based index in the Take Selector (as
    takes_of lists it) or its take id. The draft's request and seed at the model's full steps,
    waited for, and added to the item's Take Selector as another take, selected. Returns the
    result (bridge/editor.py's: take_id, take_index, promoted_from...); raises ResolveError when
    the take is not a TakeBridge draft (nothing is sent)."""
    ctx = context(resolve)
    rows = takes_of(item)
    by_id = isinstance(take, str) and not take.isdigit()
    row = next((r for r in rows if (r.get("take_id") == take if by_id else r["index"] == int(take))), None)
    if row is None:
        known = ", ".join(f"{r['index']} ({r.get('take_id') or r['name']})" for r in rows) or "none"
        raise ResolveError(f"{item.GetName()!r} has no take {take!r}; its takes: {known}")
    adapter = FinalEditor(ctx, item, row, progress=progress)
    with tb.client.GenerationClient(server, token=token) as client:
        (result,) = _unless_all_refused(tb.editor.run(adapter, None, client, on_submit=on_submit))
    return result


def finalize(item) -> None:
    """Collapse the Take Selector to the selected take (only when the editor asks)."""
    if not item.FinalizeTake():
        raise ResolveError(f"Resolve did not finalize the take of {item.GetName()!r}")
