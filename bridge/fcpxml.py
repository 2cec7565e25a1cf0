"""Final Cut Pro's FCPXML through OpenTimelineIO's adapter, with what the adapter lacks.

- **Exact rates.** The adapter reads a format's rate as int(24000 / 1001) = 23 and writes a
  frame duration for whole rates only; while it runs, rates and frame durations are exact.
- **media-rep** (FCPXML 1.9 and later): an asset names its file in a ``<media-rep
  kind="original-media" src=...>`` child, not in a ``src`` attribute; the adapter saw no file
  and made every clip offline. The original media's src (else the first media-rep's) is read.
- **Auditions**, Final Cut's own container of takes: the first element is the pick, the
  others are alternatives. A clip with takes is written as an ``<audition>`` (the active
  take is the pick, one alternative per other take, each on its own asset) and an audition is
  read back as one clip whose media references are its takes. Each element carries its
  take's key in ``<metadata><md key="com.takebridge.take" .../>``; an audition Final Cut wrote
  has none: its pick reads as the clip's default media, the alternatives by their names.
  OTIO gives one source range to all of a clip's references, so an alternative is read at the
  pick's source range (TakeBridge's takes share their source's frame numbers; a Final Cut
  alternative trimmed elsewhere is read at the pick's in-point).
"""
from __future__ import annotations

import contextlib
import math
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from fractions import Fraction

import opentimelineio as otio

from .timecode import exact_rate

TAKE_KEY = "com.takebridge.take"
DEFAULT_MEDIA = otio.schema.Clip.DEFAULT_MEDIA_KEY
_CLIP_TAGS = ("clip", "asset-clip", "ref-clip", "sync-clip", "mc-clip", "video", "title", "audio")
_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n'


@dataclass
class Take:
    """One of a clip's media references, as an audition holds it."""

    key: str
    url: str
    available: otio.opentime.TimeRange | None


@dataclass
class Audition:
    name: str                     # the clip's own name
    pick: str                     # the active reference's key
    alternatives: list[Take] = field(default_factory=list)


# ------------------------------------------------------------------------- the adapter

def module():
    """The FCPXML adapter's module, found through OTIO's plugin (None if it cannot be loaded)."""
    try:
        return otio.adapters.from_name("fcpx_xml").module()
    except Exception:    # the plugin is missing or failed to load: the read reports it
        return None


def frame_duration(rate) -> str:
    """A rate as FCPXML's frame duration: 24000/1001 -> "1001/24000s", 25 -> "1/25s"."""
    exact = Fraction(float(rate)).limit_denominator(100_000)
    return f"{exact.denominator}/{exact.numerator}s"


def seconds(frames, rate) -> str:
    """Frames at `rate` as FCPXML's rational seconds ("0s", "1001/24000s", "2s")."""
    return _seconds_of(Fraction(frames) / exact_rate(rate))


def _seconds_of(value: Fraction) -> str:
    if value == 0:
        return "0s"
    return f"{value.numerator}s" if value.denominator == 1 else f"{value.numerator}/{value.denominator}s"


def parse_seconds(text: str | None) -> Fraction:
    """FCPXML's time ("1001/24000s", "5s", "3600s") as exact seconds; absent is 0."""
    if not text:
        return Fraction(0)
    value = text.strip().rstrip("s")
    top, _, bottom = value.partition("/")
    return Fraction(int(top), int(bottom or 1))


def frames_in(text: str | None, rate) -> int:
    """FCPXML's time at `rate` as whole frames, counted exactly ("1001/24000s" at 24000/1001 is
    1; a value a float would put at 59.9999 frames is 60)."""
    if not text or text == "0s":
        return 0
    exact = parse_seconds(text) * Fraction(float(rate)).limit_denominator(100_000)
    return math.floor(exact + Fraction(1, 1000))


def _element_rate(adapter_writer, element, default_format_id) -> float | int:
    """The rate of an element the writer placed, exactly (the adapter's own returns int(rate))."""
    format_id = default_format_id
    if element.tag == "ref-clip":
        format_id = adapter_writer._media_by_id(element.get("ref")).find("./sequence").get("format")
    elif element.tag in ("clip", "asset-clip"):
        holder = element if element.tag == "asset-clip" else \
            (element.find("./gap/audio") if element.find("./gap") is not None else element.find("./video"))
        format_id = adapter_writer._asset_by_id(holder.get("ref")).get("format")
    found = adapter_writer.resource_element.find(f"./format[@id='{format_id}']")
    return _plain(1 / parse_seconds(found.get("frameDuration")))


def _plain(rate: Fraction) -> float | int:
    return int(rate) if rate.denominator == 1 else float(rate)


@contextlib.contextmanager
def exact_rates():
    """While the adapter reads or writes, its rates, frame counts and frame durations are exact
    (whole rates stay whole). It counted a format's rate as int(24000 / 1001) = 23, so NTSC
    projects (most Final Cut projects: 23.976, 29.97, 59.94) were read at 23, 29 or 59 fps, clips
    a frame or more short and gaps between them; counted time by float truncation (29/25s at 25
    fps was 28 frames); placed connected clips at the truncated rate; and wrote a frame
    duration for whole rates only."""
    adapter = module()
    reader, writer = getattr(adapter, "FcpxXml", None), getattr(adapter, "FcpxOtio", None)
    patches = [(reader, "_format_frame_rate", lambda self, format_id: _plain(
                    1 / parse_seconds(self._format_by_id(format_id).get("frameDuration")))),
               (reader, "_number_of_frames", lambda self, value, format_id: frames_in(
                   value, 1 / parse_seconds(self._format_by_id(format_id).get("frameDuration")))),
               (adapter, "to_rational_time", lambda value, fps: otio.opentime.RationalTime(frames_in(value, fps),
                                                                                              float(fps))),
               (writer, "_framerate_to_frame_duration", staticmethod(frame_duration)),
               (writer, "_frame_rate_from_element", _element_rate)]
    if any(owner is None or name not in vars(owner) for owner, name, _ in patches):
        yield        # another version of the adapter: its own counting
        return
    saved = [(owner, name, vars(owner)[name]) for owner, name, _ in patches]
    for owner, name, replacement in patches:
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


# ------------------------------------------------------------------------------ reading

def read(text: str) -> otio.core.SerializableObject:
    """An FCPXML document as OTIO (a Timeline, or a collection of them), auditions as takes,
    each project's start timecode as its timeline's global start."""
    prepared, auditions, starts = _prepare(text)
    with exact_rates():
        result = otio.adapters.read_from_string(prepared, "fcpx_xml")
    timelines = [result] if isinstance(result, otio.schema.Timeline) else \
        list(result.find_children(descended_from_type=otio.schema.Timeline))
    for timeline in timelines:
        if timeline.name in starts:
            timeline.global_start_time = starts[timeline.name]
    if auditions:
        for clip in result.find_clips():
            audition = auditions.get(clip.name)
            if audition is not None:
                _as_takes(clip, audition)
    return result


def _prepare(text: str) -> tuple[str, dict[str, Audition], dict[str, otio.opentime.RationalTime]]:
    """The document the adapter can read: every asset with a src, every audition replaced by
    its pick (named with a token, to find it again), the alternatives kept aside, and each
    project's storyline counted from 0 (returned: its start timecode, by project name)."""
    root = ET.fromstring(text.encode())
    rates = {f.get("id"): _rate_of_format(f) for f in root.iter("format")}
    starts = {}
    for project in root.iter("project"):
        sequence = project.find("sequence")
        start = parse_seconds(sequence.get("tcStart")) if sequence is not None else 0
        rate = rates.get(sequence.get("format")) if sequence is not None else None
        if not start or rate is None:
            continue
        # the adapter ignores tcStart and counts the storyline from 0: an hour of gap at 01:00:00:00
        for item in sequence.findall("./spine/*"):
            if item.get("offset") is not None:
                item.set("offset", _seconds_of(parse_seconds(item.get("offset")) - start))
        frames = start * rate
        starts[project.get("name") or ""] = otio.opentime.RationalTime(
            round(frames), float(rate) if rate.denominator != 1 else int(rate))
    for asset in root.iter("asset"):
        if not asset.get("src"):
            reps = asset.findall("media-rep")
            originals = [r for r in reps if r.get("kind", "original-media") == "original-media"]
            chosen = (originals or reps or [None])[0]     # (an element without children is falsy)
            if chosen is not None and chosen.get("src"):
                asset.set("src", chosen.get("src"))
    assets = {a.get("id"): a for a in root.iter("asset")}
    parents = {child: parent for parent in root.iter() for child in parent}
    auditions: dict[str, Audition] = {}
    for number, element in enumerate(list(root.iter("audition")), start=1):
        members = [c for c in element if c.tag in _CLIP_TAGS]
        parent = parents.get(element)
        if not members or parent is None:
            continue
        pick, others = members[0], members[1:]
        token = f"{_token_prefix()}{number}"
        taken: set[str] = set()
        pick_key = _unique(_take_key(pick) or DEFAULT_MEDIA, taken)
        audition = Audition(name=pick.get("name") or "", pick=pick_key)
        for other in others:
            url, available = _media_of(other, assets, rates)
            if url:
                audition.alternatives.append(Take(_unique(_take_key(other) or other.get("name") or "take", taken),
                                                  url, available))
        auditions[token] = audition
        pick.set("name", token)
        if element.get("offset") is not None:
            pick.set("offset", element.get("offset"))
        if element.get("lane") is not None:
            pick.set("lane", element.get("lane"))
        index = list(parent).index(element)
        parent.remove(element)
        parent.insert(index, pick)
        for key, value in parents.items():      # the pick's parent is now the audition's
            if value is element:
                parents[key] = parent
    if not auditions and not starts and "media-rep" not in text:
        return text, {}, {}
    return _HEADER + ET.tostring(root, encoding="unicode"), auditions, starts


def _as_takes(clip: otio.schema.Clip, audition: Audition) -> None:
    clip.name = audition.name
    references = {audition.pick: clip.media_reference}
    for take in audition.alternatives:
        references[take.key] = otio.schema.ExternalReference(target_url=take.url, available_range=take.available)
    clip.set_media_references(references, audition.pick)


def _token_prefix() -> str:
    """A name no clip has, to find a clip again after the adapter has read or written it."""
    return f"takebridge-audition-{uuid.uuid4().hex}-"


def _take_key(element) -> str | None:
    for md in element.findall("./metadata/md"):
        if md.get("key") == TAKE_KEY and md.get("value"):
            return md.get("value")
    return None


def _unique(key: str, taken: set[str]) -> str:
    candidate, counter = key, 1
    while candidate in taken:
        counter += 1
        candidate = f"{key}-{counter}"
    taken.add(candidate)
    return candidate


def _rate_of_format(element) -> Fraction | None:
    duration = parse_seconds(element.get("frameDuration"))
    return 1 / duration if duration else None


def _media_of(element, assets, rates) -> tuple[str, otio.opentime.TimeRange | None]:
    """An audition member's file and the range its asset holds, at the asset's rate."""
    ref = element.get("ref") if element.tag == "asset-clip" else None
    if ref is None:
        video = element.find(".//video")
        ref = video.get("ref") if video is not None else element.get("ref")
    asset = assets.get(ref)
    if asset is None or not asset.get("src"):
        return "", None
    rate = rates.get(asset.get("format")) or rates.get(element.get("format"))
    if rate is None:
        return asset.get("src"), None
    start = parse_seconds(asset.get("start")) * rate
    duration = parse_seconds(asset.get("duration")) * rate
    fps = float(rate) if rate.denominator != 1 else int(rate)
    return asset.get("src"), otio.opentime.TimeRange(otio.opentime.RationalTime(round(start), fps),
                                                     otio.opentime.RationalTime(round(duration), fps))


# ------------------------------------------------------------------------------ writing

def mark_auditions(timeline: otio.schema.Timeline, url_of) -> dict[str, Audition]:
    """Before the timeline is flattened to its active references: each video clip with takes
    (more than one reference holding a file) gets a token name; returns what each token's
    audition holds. `url_of(url)` gives a URL as the file will hold it."""
    auditions: dict[str, Audition] = {}
    prefix = _token_prefix()
    for track in timeline.video_tracks():
        for clip in track.find_clips(shallow_search=False):
            references = clip.media_references()
            active = clip.active_media_reference_key
            others = [Take(key, url_of(ref.target_url), ref.available_range or clip.source_range)
                      for key, ref in sorted(references.items())
                      if key != active and isinstance(ref, otio.schema.ExternalReference) and ref.target_url]
            if not others:
                continue
            token = f"{prefix}{len(auditions) + 1}"
            auditions[token] = Audition(name=clip.name, pick=active, alternatives=others)
            clip.name = token
    return auditions


def write(timeline: otio.schema.Timeline, auditions: dict[str, Audition]) -> str:
    """The adapter's document for the flattened `timeline`, each marked clip as an audition."""
    with exact_rates():
        text = otio.adapters.write_to_string(timeline, "fcpx_xml")
    start = timeline.global_start_time
    if not auditions and not (start is not None and start.value):
        return text
    root = ET.fromstring(text.encode())
    if start is not None and start.value:   # the adapter writes no start timecode: the storyline from it
        origin = Fraction(int(round(start.value))) / exact_rate(start.rate)
        for sequence in root.findall("./project/sequence") + root.findall(".//event/project/sequence"):
            sequence.set("tcStart", _seconds_of(origin))
            sequence.set("tcFormat", "NDF")
            for item in sequence.findall("./spine/*"):
                if item.get("offset") is not None:
                    item.set("offset", _seconds_of(parse_seconds(item.get("offset")) + origin))
    resources = root.find("resources")
    parents = {child: parent for parent in root.iter() for child in parent}
    for element in list(root.iter()):
        audition = auditions.get(element.get("name", ""))
        if audition is None:
            continue
        element.set("name", audition.name)
        parent = parents.get(element)
        if element.tag != "clip" or parent is None or parent.tag not in ("spine", "gap", "clip", "asset-clip",
                                                                         "ref-clip"):
            continue          # an asset or the event's browser clip: named back, no more
        _audition_for(element, parent, audition, resources)
    _drop_repeated_browser_clips(root)
    ET.indent(root, space="    ")
    return _HEADER + ET.tostring(root, encoding="unicode") + "\n"


def _audition_for(element, parent, audition: Audition, resources) -> None:
    attributes = {"offset": element.get("offset", "0s")}
    if element.get("lane") is not None:
        attributes["lane"] = element.attrib.pop("lane")
    holder = ET.Element("audition", attributes)
    index = list(parent).index(element)
    parent.remove(element)
    parent.insert(index, holder)
    _tag_take(element, audition.pick)
    holder.append(element)
    video = element.find("video")
    for take in audition.alternatives:
        alternative = ET.Element("clip", {k: v for k, v in element.attrib.items()
                                          if k in ("offset", "duration", "start", "tcFormat", "format")})
        alternative.set("name", audition.name if take.key == DEFAULT_MEDIA else take.key)
        ET.SubElement(alternative, "video", {"offset": video.get("offset", "0s") if video is not None else "0s",
                                             "ref": _asset_for(take, resources),
                                             "duration": seconds(take.available.duration.value,
                                                                 take.available.duration.rate)
                                             if take.available is not None else element.get("duration", "0s")})
        _tag_take(alternative, take.key)
        holder.append(alternative)


def _tag_take(element, key: str) -> None:
    meta = element.find("metadata")
    if meta is None:
        meta = ET.SubElement(element, "metadata")
    ET.SubElement(meta, "md", {"key": TAKE_KEY, "value": key})


def _asset_for(take: Take, resources) -> str:
    """The id of the asset holding `take`'s file (an existing one with that src, or a new one)."""
    for asset in resources.iter("asset"):
        if asset.get("src") == take.url:
            return asset.get("id")
    attributes = {"name": take.key, "src": take.url, "hasVideo": "1", "hasAudio": "0"}
    if take.available is not None:
        rate = take.available.start_time.rate
        attributes["format"] = _format_for(rate, resources)
        attributes["start"] = seconds(take.available.start_time.value, rate)
        attributes["duration"] = seconds(take.available.duration.value, take.available.duration.rate)
    asset_id = _next_id(resources)
    ET.SubElement(resources, "asset", {"id": asset_id, **attributes})
    return asset_id


def _format_for(rate, resources) -> str:
    wanted = parse_seconds(frame_duration(rate))
    for element in resources.iter("format"):
        if element.get("frameDuration") and parse_seconds(element.get("frameDuration")) == wanted:
            return element.get("id")
    format_id = _next_id(resources)
    ET.SubElement(resources, "format", {"id": format_id, "frameDuration": frame_duration(rate), "name": ""})
    return format_id


def _next_id(resources) -> str:
    """The next free resource id (the adapter numbers them r1, r2...)."""
    used = [int(m[1]) for e in resources.iter() if (m := re.fullmatch(r"r(\d+)", e.get("id", "")))]
    return f"r{max(used, default=0) + 1}"


def _drop_repeated_browser_clips(root) -> None:
    """The adapter lists each clip name once in the event's browser; named back, a clip with
    takes and another of the same name would be listed twice."""
    seen = set()
    for holder in [root, *root.iter("event")]:
        for element in list(holder):
            if element.tag != "asset-clip":
                continue
            key = (element.get("name"), element.get("ref"))
            if key in seen:
                holder.remove(element)
            seen.add(key)


