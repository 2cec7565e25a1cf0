"""A stand-in for DaVinci Resolve's scripting API, for tests only (Resolve cannot run here).

It implements the objects and calls TakeBridge's Resolve scripts use, in their documented
shapes (shared/reference/editor_apis.md, section A): absolute timeline frames that include
the start timecode, 1-based track and take indices, GetTakeByIndex dicts, Timeline.Export with
the live EXPORT_OTIO enum writing Resolve-shaped OTIO (Clip.2, DEFAULT_MEDIA, available_range
from the media's start timecode, bare paths, global_start_time, Resolve_OTIO metadata), and
the documented quirks: hasattr() is True for anything (capabilities must be probed with
dir()), AddTake's return value is unreliable (False while the take is added), AppendToTimeline
silently drops a clip that overlaps another, imports go to the current media-pool folder,
GetSelectedClips only exists from 21.0.4, MediaPoolItem.SetName from 20.2, the playhead
(Get/SetCurrentTimecode) is answered on the Cut, Edit, Color, Fairlight and Deliver pages only,
timeline markers' frameId counts from the timeline's start. Media facts come from the real files (PyAV).
Resolve Studio's Fusion().UIManager and the `bmd` module's UIDispatcher are here too (the free
edition has no UIManager for scripts): widgets with their properties, a ComboBox's
CurrentIndex and CurrentText kept together as Qt keeps them, `window.On.<ID>.<Event>` handlers,
and a RunLoop in which a test's `user(window)` acts on the dialog before it is closed.
It is not Resolve: behaviours listed as unverified in editor_apis.md section D follow the
documented reading and need checking on a real Resolve.
"""
from __future__ import annotations

import itertools
import json
import os
import types
from fractions import Fraction

import opentimelineio as otio

try:
    from bridge.timecode import from_timecode, to_timecode
except ImportError:   # run beside an installed Resolve package alone (tests/editors/test_resolve_install.py)
    from takebridge_core.timecode import from_timecode, to_timecode

# path -> media facts (start_timecode, rate, frame_count, width, height), for a process that
# cannot read media (the installed Resolve package alone, without PyAV); others are probed
MEDIA_FACTS: dict = {}


def _facts(path: str):
    if path in MEDIA_FACTS:
        return MEDIA_FACTS[path]
    try:
        from server.media import probe
    except ImportError:   # beside the installed Resolve package alone: read the file with PyAV itself
        return _av_facts(path)
    return probe(path)


def _av_facts(path: str):
    import types

    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        count = sum(1 for packet in container.demux(stream) if packet.size)
        timecode = stream.metadata.get("timecode") or container.metadata.get("timecode")
        return types.SimpleNamespace(start_timecode=timecode, rate=Fraction(stream.average_rate), frame_count=count,
                                     width=stream.codec_context.width, height=stream.codec_context.height)

_ids = itertools.count(1)


class _API:
    """hasattr() on Resolve objects is always True: unknown names are callables returning None."""

    _since: dict = {}       # method -> first version that has it

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None

    def __dir__(self):
        version = getattr(self, "_version", (99,))
        return [n for n in type(self).__dict__ if not n.startswith("_")
                and version >= self._since.get(n, (0,))] + [n for n in dir(_API) if not n.startswith("_")]


class MediaPoolItem(_API):
    _since = {"GetThirdPartyMetadata": (19, 0, 2), "SetThirdPartyMetadata": (19, 0, 2), "SetName": (20, 2, 0)}

    def __init__(self, path: str, version):
        info = _facts(path)
        self._version = version
        self.path, self.info = path, info
        self.name = os.path.basename(path)
        self.uid = f"mpi-{next(_ids)}"
        self.start_tc = from_timecode(info.start_timecode, info.rate) if info.start_timecode else 0
        self.meta: dict = {}
        self.third: dict = {}

    def GetName(self):
        return self.name

    def SetName(self, name):
        """MediaPoolItem.SetName (20.2+): timeline items show the clip's name, so they follow."""
        if not name:
            return False
        self.name = str(name)
        return True

    def GetUniqueId(self):
        return self.uid

    def GetClipProperty(self, name=None):
        props = {"File Path": self.path, "File Name": self.name, "Clip Name": self.name, "Frames": str(self.info.frame_count),
                 "FPS": float(self.info.rate), "Start TC": self.info.start_timecode or "00:00:00:00",
                 "Start": "0", "End": str(self.info.frame_count - 1),
                 "Resolution": f"{self.info.width}x{self.info.height}", "Type": "Video"}
        return props if name is None else props.get(name, "")

    def GetMetadata(self, key=None):
        return dict(self.meta) if key is None else self.meta.get(key, "")

    def SetMetadata(self, key, value=None):
        self.meta[key] = value
        return True

    def GetThirdPartyMetadata(self, key=None):
        return dict(self.third) if key is None else self.third.get(key, "")

    def SetThirdPartyMetadata(self, key, value):
        self.third[key] = value
        return True


class Folder(_API):
    def __init__(self, name):
        self.name, self.clips, self.subfolders = name, [], []

    def GetName(self):
        return self.name

    def GetClipList(self):
        return list(self.clips)

    def GetSubFolderList(self):
        return list(self.subfolders)


class TimelineItem(_API):
    _since = {"GetTrackTypeAndIndex": (19, 0, 0)}

    def __init__(self, timeline, mpi, track: int, start: int, left: int, duration: int):
        self._version = timeline._version
        self.timeline, self.track = timeline, track
        self.start, self.left, self.duration = start, left, duration
        self.uid = f"item-{next(_ids)}"
        self.takes = [{"mediaPoolItem": mpi, "startFrame": left, "endFrame": left + duration}]
        self.selected = 1
        self.in_take_selector = False
        self.markers: dict = {}
        self.add_take_calls = 0

    # -- placement
    def GetName(self):
        return self.GetMediaPoolItem().GetName()

    def GetUniqueId(self):
        return self.uid

    def GetStart(self, subframe_precision=False):
        return self.start

    def GetEnd(self, subframe_precision=False):
        return self.start + self.duration          # exclusive (GetStart + GetDuration)

    def GetDuration(self, subframe_precision=False):
        return self.duration

    def GetLeftOffset(self, subframe_precision=False):
        return self.takes[self.selected - 1]["startFrame"]

    def GetMediaPoolItem(self):
        return self.takes[self.selected - 1]["mediaPoolItem"]

    def GetTrackTypeAndIndex(self):
        return ["video", self.track]

    # -- Take Selector (1-based)
    def AddTake(self, mpi, startFrame=None, endFrame=None):
        start = 0 if startFrame is None else int(startFrame)
        end = int(mpi.info.frame_count) if endFrame is None else int(endFrame)   # exclusive
        if end - start != self.duration:
            return False  # a take must cover the item's length
        self.takes.append({"mediaPoolItem": mpi, "startFrame": start, "endFrame": end})
        self.in_take_selector = True
        self.add_take_calls += 1
        return self.add_take_calls > 1   # documented quirk: False although the take was added

    def GetTakesCount(self):
        return len(self.takes) if self.in_take_selector else 0

    def GetSelectedTakeIndex(self):
        return self.selected if self.in_take_selector else 0

    def GetTakeByIndex(self, index):
        if not self.in_take_selector or not 1 <= index <= len(self.takes):
            return None
        return dict(self.takes[index - 1])

    def SelectTakeByIndex(self, index):
        if not self.in_take_selector or not 1 <= index <= len(self.takes):
            return False
        self.selected = index
        return True

    def DeleteTakeByIndex(self, index):
        if not self.in_take_selector or not 1 <= index <= len(self.takes) or len(self.takes) == 1:
            return False
        del self.takes[index - 1]
        self.selected = min(self.selected, len(self.takes))
        return True

    def FinalizeTake(self):
        if not self.in_take_selector:
            return False
        self.takes = [self.takes[self.selected - 1]]
        self.selected, self.in_take_selector = 1, False
        return True

    # -- markers: frameId = offset from the item's start
    def GetMarkers(self):
        return {k: dict(v) for k, v in self.markers.items()}

    def AddMarker(self, frameId, color, name, note, duration, customData=""):
        if frameId in self.markers:
            return False
        self.markers[frameId] = {"color": color, "name": name, "note": note, "duration": duration,
                                 "customData": customData}
        return True

    def DeleteMarkerAtFrame(self, frameNum):
        return self.markers.pop(frameNum, None) is not None


class Timeline(_API):
    _since = {"GetSelectedClips": (21, 0, 4), "GetMarkInOut": (19, 1, 0)}

    def __init__(self, resolve, name: str, rate: Fraction, start_tc: str):
        self._version = resolve._version
        self.resolve, self.name, self.rate = resolve, name, Fraction(rate)
        self.start = from_timecode(start_tc, rate)
        self.tracks: dict[int, list] = {1: []}
        self.track_names = {1: "Video 1"}
        self.selected: list = []
        self.playhead = self.start
        self.marks: dict = {}
        self.markers: dict = {}
        self.settings: dict = {}

    def GetName(self):
        return self.name

    def GetStartFrame(self):
        return self.start

    def GetEndFrame(self):
        return max([i.GetEnd() for items in self.tracks.values() for i in items] + [self.start])

    def GetSetting(self, name):
        # settings are strings; those never set (the picture size here) answer "" in this stand-in
        return {"timelineFrameRate": str(float(self.rate)), **self.settings}.get(name, "")

    def SetSetting(self, name, value):
        if name == "timelineFrameRate":     # fixed once the timeline has media (editor_apis.md A8)
            return False
        self.settings[name] = str(value)
        return True

    def GetTrackCount(self, kind):
        return len(self.tracks) if kind == "video" else 0

    def GetItemListInTrack(self, kind, index):
        return sorted(self.tracks.get(index, []), key=lambda i: i.start) if kind == "video" else []

    def AddTrack(self, kind, sub=None):
        index = len(self.tracks) + 1
        self.tracks[index], self.track_names[index] = [], f"Video {index}"
        return True

    def GetTrackName(self, kind, index):
        return self.track_names.get(index, "")

    def SetTrackName(self, kind, index, name):
        self.track_names[index] = name
        return True

    def GetSelectedClips(self):
        return list(self.selected)

    def GetCurrentVideoItem(self):
        for index in sorted(self.tracks, reverse=True):
            for item in self.tracks[index]:
                if item.start <= self.playhead < item.GetEnd():
                    return item
        return None

    # -- the playhead: documented for the Cut, Edit, Color, Fairlight and Deliver pages only; on
    # the others this stand-in answers "" / False (what Resolve does there is not documented)
    _PLAYHEAD_PAGES = ("cut", "edit", "color", "fairlight", "deliver")

    def GetCurrentTimecode(self):
        if self.resolve.page not in self._PLAYHEAD_PAGES:
            return ""
        return to_timecode(self.playhead, self.rate)

    def SetCurrentTimecode(self, timecode):
        if self.resolve.page not in self._PLAYHEAD_PAGES:
            return False
        try:
            self.playhead = from_timecode(timecode, self.rate)
        except ValueError:
            return False
        return True

    def GetMarkInOut(self):
        return {"video": dict(self.marks)} if self.marks else {}

    def SetMarkInOut(self, mark_in, mark_out, type="all"):
        self.marks = {"in": mark_in, "out": mark_out}     # offsets from the start; out inclusive
        return True

    def GetMarkers(self):
        return {k: dict(v) for k, v in self.markers.items()}

    def AddMarker(self, frameId, color, name, note, duration, customData=""):
        self.markers[frameId] = {"color": color, "name": name, "note": note, "duration": duration,
                                 "customData": customData}
        return True

    def DeleteMarkerAtFrame(self, frameNum):
        return self.markers.pop(frameNum, None) is not None

    # -- building (what an editor does with the mouse)
    def place(self, mpi, track: int, record: int, left: int, duration: int) -> "TimelineItem | None":
        """Put `duration` frames of mpi from source frame `left` at absolute frame `record`;
        like AppendToTimeline, an overlap on the track drops it silently."""
        items = self.tracks.setdefault(track, [])
        if any(i.start < record + duration and i.GetEnd() > record for i in items):
            return None
        item = TimelineItem(self, mpi, track, record, left, duration)
        items.append(item)
        return item

    def Export(self, path, export_type, export_subtype=None):
        if export_type != Resolve.EXPORT_OTIO:      # must be the live enum, not a string
            return False
        rate = float(self.rate)
        tl = otio.schema.Timeline(name=self.name, global_start_time=otio.opentime.RationalTime(self.start, rate))
        tl.metadata["Resolve_OTIO"] = {"Resolve OTIO Meta Version": "1.0"}
        for index in sorted(self.tracks):
            track = otio.schema.Track(name=self.track_names[index], kind=otio.schema.TrackKind.Video)
            track.metadata["Resolve_OTIO"] = {"Locked": False}
            cursor = self.start
            for item in self.GetItemListInTrack("video", index):
                if item.start > cursor:
                    track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                        duration=otio.opentime.RationalTime(item.start - cursor, rate))))
                mpi = item.GetMediaPoolItem()
                available = otio.opentime.TimeRange(otio.opentime.RationalTime(mpi.start_tc, rate),
                                                    otio.opentime.RationalTime(mpi.info.frame_count, rate))
                ref = otio.schema.ExternalReference(target_url=mpi.path, available_range=available)
                clip = otio.schema.Clip(name=mpi.GetName(), source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(mpi.start_tc + item.GetLeftOffset(), rate),
                    otio.opentime.RationalTime(item.duration, rate)))
                clip.set_media_references({"DEFAULT_MEDIA": ref}, "DEFAULT_MEDIA")
                clip.metadata["Resolve_OTIO"] = {"Link Group ID": 1, "Channels": []}
                track.append(clip)
                cursor = item.GetEnd()
            tl.tracks.append(track)
        otio.adapters.write_to_file(tl, path, adapter_name="otio_json")
        return True


class MediaPool(_API):
    def __init__(self, resolve):
        self._version = resolve._version
        self.resolve = resolve
        self.root = Folder("Master")
        self.current = self.root

    def GetRootFolder(self):
        return self.root

    def AddSubFolder(self, folder, name):
        sub = Folder(name)
        folder.subfolders.append(sub)
        return sub

    def GetCurrentFolder(self):
        return self.current

    def SetCurrentFolder(self, folder):
        self.current = folder
        return True

    def ImportMedia(self, paths):
        items = []
        for path in paths:
            if not os.path.exists(path):
                continue
            item = MediaPoolItem(path, self._version)
            self.current.clips.append(item)     # always the CURRENT folder
            items.append(item)
        return items

    def AppendToTimeline(self, infos):
        timeline = self.resolve.project.timeline
        placed = []
        for info in infos:
            track = int(info.get("trackIndex", 1))
            if track not in timeline.tracks:
                continue                         # the track must exist
            start, end = int(info["startFrame"]), int(info["endFrame"])   # exclusive end
            record = int(info.get("recordFrame", timeline.GetEndFrame()))
            item = timeline.place(info["mediaPoolItem"], track, record, start, end - start)
            placed.append(item if item is not None else TimelineItem(timeline, info["mediaPoolItem"], track, 0, 0, 0))
        return placed


class Project(_API):
    def __init__(self, resolve, timeline):
        self._version = resolve._version
        self.timeline = timeline
        self.pool = MediaPool(resolve)

    def GetMediaPool(self):
        return self.pool

    def GetCurrentTimeline(self):
        return self.timeline


class ProjectManager(_API):
    def __init__(self, project):
        self.project = project

    def GetCurrentProject(self):
        return self.project


class Resolve(_API):
    EXPORT_OTIO = 14
    EXPORT_NONE = 0

    def __init__(self, *, rate=Fraction(24), start_tc="01:00:00:00", version=(21, 0, 4, 5),
                 product="DaVinci Resolve Studio"):
        self._version = tuple(version)
        self.product = product
        self.page = "edit"
        self.project = Project(self, Timeline(self, "Edit", rate, start_tc))

    @property
    def timeline(self) -> Timeline:
        return self.project.timeline

    def GetProjectManager(self):
        return ProjectManager(self.project)

    def GetProductName(self):
        return self.product

    def GetVersion(self):
        return list(self._version)

    def GetCurrentPage(self):
        return self.page

    def Fusion(self):
        return Fusion(self)

    def OpenPage(self, name):
        self.page = name
        return True

    def import_and_place(self, path: str, track: int, record_offset: int, left: int, duration: int) -> TimelineItem:
        """Test helper: what the editor does by hand (import + edit onto the timeline)."""
        (mpi,) = self.project.pool.ImportMedia([path])
        item = self.timeline.place(mpi, track, self.timeline.start + record_offset, left, duration)
        assert item is not None
        return item


def to_tc(frame, rate) -> str:
    return to_timecode(frame, rate)


# --------------------------------------------------------------- UIManager (Resolve Studio)

class Fusion(_API):
    """resolve.Fusion(): its UIManager only in the Studio edition (the free one lost it for
    scripts in 19.1)."""

    def __init__(self, resolve):
        self.UIManager = UIManager() if "Studio" in resolve.product else None


class UIWidget:
    """A UIManager element (Label, LineEdit, SpinBox, ComboBox, CheckBox, Button, Tree, groups)
    with its properties as attributes. A ComboBox keeps CurrentIndex and CurrentText together as
    Qt does: the first item added is current, and a CurrentText it does not hold changes nothing.
    A Tree keeps its rows (NewItem, AddTopLevelItem, Clear, CurrentItem)."""

    def __init__(self, kind: str, props: dict | None = None, children=()):
        self.__dict__.update(kind=kind, children=list(children), choices=[], rows=[], current=None)
        if kind == "ComboBox":
            self.__dict__.update(CurrentIndex=-1, CurrentText="")
        for key, value in (props or {}).items():
            setattr(self, key, value)

    def __setattr__(self, name, value):
        if self.kind == "ComboBox" and name == "CurrentIndex":
            index = int(value)
            self.__dict__.update(CurrentIndex=index,
                                 CurrentText=self.choices[index] if 0 <= index < len(self.choices) else "")
            return
        if self.kind == "ComboBox" and name == "CurrentText":
            if value in self.choices:
                self.__dict__.update(CurrentIndex=self.choices.index(value), CurrentText=value)
            return
        self.__dict__[name] = value

    def AddItem(self, text):
        self.choices.append(text)
        if len(self.choices) == 1:
            self.CurrentIndex = 0

    def Clear(self):
        self.rows.clear()

    def NewItem(self):
        return types.SimpleNamespace(Text={})

    def AddTopLevelItem(self, row):
        self.rows.append(row)

    def CurrentItem(self):
        return self.current


class UIManager:
    """fusion.UIManager: ui.Label({...}), ui.HGroup([...]), ui.VGroup({...}, [...])."""

    def __getattr__(self, kind):
        if kind.startswith("_"):
            raise AttributeError(kind)

        def make(*args):
            props = next((a for a in args if isinstance(a, dict)), {})
            children = next((a for a in args if isinstance(a, (list, tuple))), [])
            return UIWidget(kind, props, children)
        return make


class UIWindow:
    """dispatcher.AddWindow(props, children): GetItems() maps every ID to its widget; handlers
    are set as window.On.<ID>.<Event> = fn. Test helpers: click(ID), fire(ID, event)."""

    def __init__(self, dispatcher, props: dict, children):
        self.dispatcher = dispatcher
        self.root = UIWidget("Window", props, children if isinstance(children, (list, tuple)) else [children])
        self.On = _Handlers()
        self.shown = False

    def GetItems(self) -> dict:
        found, todo = {}, [self.root]
        while todo:
            widget = todo.pop()
            if getattr(widget, "ID", None):
                found[widget.ID] = widget
            todo.extend(widget.children)
        return found

    def Show(self):
        self.shown = True

    def Hide(self):
        self.shown = False

    def fire(self, widget_id: str, event: str) -> None:
        handler = getattr(getattr(self.On, widget_id), event, None)
        if handler is not None:
            handler({"who": widget_id, "what": event})

    def click(self, widget_id: str) -> None:
        self.fire(widget_id, "Clicked")


class _Handlers:
    def __init__(self):
        self.__dict__["_by_id"] = {}

    def __getattr__(self, widget_id):
        return self._by_id.setdefault(widget_id, types.SimpleNamespace())


class UIDispatcher:
    def __init__(self, ui, user):
        self.ui, self.user, self.windows, self.running = ui, user, [], False

    def AddWindow(self, props, children):
        window = UIWindow(self, props, children)
        self.windows.append(window)
        return window

    def RunLoop(self):
        """The person at the dialog: `user(window)` for each shown window, then its close button."""
        self.running = True
        for window in self.windows:
            if window.shown and self.user is not None:
                self.user(window)
            window.fire(window.root.ID, "Close")
        self.running = False

    def ExitLoop(self):
        self.running = False


class Bmd:
    """The `bmd` module Resolve hands scripts (UIDispatcher); `user(window)` acts on each dialog
    while its loop runs."""

    def __init__(self, user=None):
        self.user = user

    def UIDispatcher(self, ui):
        return UIDispatcher(ui, self.user)


__all__ = ["Bmd", "Resolve", "json"]
