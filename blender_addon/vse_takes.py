"""Takes as strips: each take sits on its own channel above its source, frame-exact with the
source range (and past it for an extension), named `<shot>_<op>_v003`, with take id, job id,
manifest, status and flags as custom properties. The active take is the one unmuted
(muting them all shows the original); switching is a mute flip, instant.

A pre-vis shot (Generate, in a gap) is a placeholder Color strip filling the gap exactly, named
after the shot and marked `takebridge.previs`; its takes sit above it like any source's, and
muting them all shows the placeholder (a generated shot has no original footage).

Takes follow their source: a depsgraph handler moves a source's takes by however far the
source moved (Blender's strip connections only exist from 5.2; this works on every version).
"""
from __future__ import annotations

import json
import os

import bpy
from google.protobuf import json_format

from . import compat
from .bridge_import import tb

OPS = {1: "refine", 2: "extend", 3: "inpaint", 4: "generate"}
TAKE_KEY = "takebridge"        # the custom property a take strip keeps its take in
PREVIS_COLOR = (0.18, 0.16, 0.22)   # a pre-vis shot's placeholder: what shows when none of its takes is active


def is_take(strip) -> bool:
    return TAKE_KEY in strip.keys() and "take_id" in strip[TAKE_KEY]


def is_previs(strip) -> bool:
    """A pre-vis shot Generate made (its placeholder strip in the gap; its takes sit above it)."""
    return TAKE_KEY in strip.keys() and "previs" in strip[TAKE_KEY] and "take_id" not in strip[TAKE_KEY]


def new_previs_strip(scene, shot: str, channel: int, start: int, end: int, *, name: str = ""):
    """The strip a Generate job fills: a placeholder (a Color strip) exactly over frames
    [start, end) of `channel`, named after the shot and marked pre-vis (`takebridge.previs`);
    its takes become take strips above it like any source's."""
    strip = compat.new_effect(scene, (name or shot)[:63] or "previs", "COLOR", channel, start, end)
    if (strip.frame_final_start, strip.frame_final_end) != (start, end):
        strip.frame_final_start, strip.frame_final_end = start, end
    if strip.channel != channel:
        strip.channel = channel
    strip.color = PREVIS_COLOR
    strip[TAKE_KEY] = {"shot": shot, "previs": {"track": channel}}
    return strip


def previs_info(strip) -> dict:
    """The pre-vis strip's {"track": channel, "size": [w, h]} (size once a take set it)."""
    if not is_previs(strip):
        return {}
    return {k: _plain(v) for k, v in strip[TAKE_KEY]["previs"].items()}


def drop_empty_previs(scene, name: str) -> bool:
    """Remove a pre-vis placeholder that never got a take (its only job failed or was cancelled)."""
    strip = next((s for s in compat.strips_all(scene) if s.name == name and is_previs(s)), None)
    if strip is None or takes_of(scene, name):
        return False
    compat.strips(scene).remove(strip)
    return True


def take_data(strip) -> dict:
    return {k: _plain(v) for k, v in strip[TAKE_KEY].items()} if is_take(strip) else {}


def _plain(value):
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "to_list"):
        return value.to_list()
    return value


def takes_of(scene, source_name: str) -> list:
    """Take strips of a source strip, by version."""
    found = [s for s in compat.strips_all(scene) if is_take(s) and s[TAKE_KEY].get("source") == source_name]
    return sorted(found, key=lambda s: (int(s[TAKE_KEY].get("version", 0)), s.name))



class TakeError(tb.errors.TakeBridgeError):
    """A take that cannot be placed or switched, and what to do."""

    code = "blender_take"


def _take_dict(take) -> dict:
    return json_format.MessageToDict(take, preserving_proto_field_name=True)


def free_channel(scene, start: int, end: int, above: int) -> int:
    """The lowest channel above `above` with nothing between start and end."""
    busy = {}
    for strip in compat.strips_all(scene):
        if strip.frame_final_start < end and strip.frame_final_end > start:
            busy.setdefault(strip.channel, True)
    channel = above + 1
    while busy.get(channel):
        channel += 1
    if channel > 128:
        raise TakeError(f"no free channel above {above} for a take between frames {start} and {end}")
    return channel


def place_take_strip(scene, source, take, *, activate: bool = True):
    """A strip for `take` (pb.Take) on a free channel above `source`; returns it.

    Take content frame 0 is source frame take.source_range.start_frame, so it lines up with
    the source frame for frame whatever handles it carries; an extension shows past the
    source's head or tail by its generated frames."""
    if take.media.codec == tb.api.pb.PNG_SEQUENCE or "%" in take.media.url:
        raise TakeError(f"take {take.take_id} is an image sequence; make takes as movies (ProRes, FFV1, H.264) "
                        f"for the Sequencer")
    if not os.path.exists(take.media.url):
        raise TakeError(f"take {take.take_id} media {take.media.url} is not on this machine; was the server's take "
                        f"folder shared? (takes are written beside the .blend by default)")
    pb = tb.api.pb
    start, end = int(source.frame_final_start), int(source.frame_final_end)
    extending = take.operation == pb.EXTEND and take.generated_frames > 0
    window = tb.window.take_window(
        start, end - start, start - int(round(source.frame_start)), take.source_range.start_frame,
        side="head" if take.extend_side == pb.HEAD else "tail", frames=take.generated_frames if extending else 0,
        take_frames=take.source_range.frame_count)
    (visible_start, visible_end), content_start = window.record, window.record[0] - window.media[0]
    channel = free_channel(scene, visible_start, visible_end, source.channel)
    op = OPS.get(take.operation, "take")
    name = f"{take.shot or source.name}_{op}_v{take.version:03d}"[:62]
    strip = compat.strips(scene).new_movie(name=name, filepath=take.media.url, channel=channel,
                                           frame_start=content_start)
    strip.frame_final_start = visible_start
    strip.frame_final_end = visible_end
    if strip.channel != channel:
        strip.channel = channel
    strip[TAKE_KEY] = {
        "take_id": take.take_id, "job_id": take.job_id, "manifest": take.manifest_url,
        "status": pb.TakeStatus.Name(take.status).lower(), "op": op, "version": take.version,
        "source": source.name, "shot": take.shot or source.name, "flags": list(take.flags),
        "anchor": float(source.frame_start), "tier": tier_name(take.tier), "promoted_from": take.promoted_from,
        "take": json.dumps(_take_dict(take))}
    if is_previs(source):      # a take of a generated shot: the shot keeps its size for the next takes
        strip[TAKE_KEY]["previs"] = True
        source[TAKE_KEY]["previs"]["size"] = [int(take.media.width), int(take.media.height)]
    ed = compat.editor(scene)
    if not ed.channels[channel].name or ed.channels[channel].name.startswith("Channel"):
        ed.channels[channel].name = f"takes: {source.name}"[:63]
    if activate:
        activate_take(scene, source, take.take_id)
    else:
        strip.mute = True
    return strip


def take_data_full(strip) -> dict:
    """The strip's take properties with the stored pb.Take decoded."""
    data = take_data(strip)
    if isinstance(data.get("take"), str):
        data["take"] = json.loads(data["take"])
    return data


def tier_name(tier: int) -> str:
    """A pb.Tier as the panel shows it: "draft", or "final" (unspecified is final)."""
    return "draft" if tier == tb.api.pb.TIER_DRAFT else "final"


def take_message(strip):
    """The pb.Take a take strip keeps (its `take` property)."""
    stored = take_data(strip).get("take", {})
    if isinstance(stored, str):
        stored = json.loads(stored)
    return json_format.ParseDict(stored, tb.api.pb.Take(), ignore_unknown_fields=True)


def tier_of(strip) -> str:
    """A take strip's tier, "draft" or "final" (strips placed before tiers were kept: from its take)."""
    tier = strip[TAKE_KEY].get("tier")
    return str(tier) if tier else tier_name(take_message(strip).tier)


def find_source(scene, name: str):
    for strip in compat.strips_all(scene):
        if strip.name == name and not is_take(strip):
            return strip
    raise TakeError(f"no source strip named {name!r} in scene {scene.name!r}")


def find_take(scene, take_id: str):
    for strip in compat.strips_all(scene):
        if is_take(strip) and strip[TAKE_KEY]["take_id"] == take_id:
            return strip
    raise TakeError(f"no take strip for {take_id!r} in scene {scene.name!r}; list them in the TakeBridge panel")


def activate_take(scene, source, take_id: str) -> None:
    """Unmute `take_id` (or mute every take for "original"), mute the source's other takes."""
    takes = takes_of(scene, source.name)
    if take_id != "original" and not any(t[TAKE_KEY]["take_id"] == take_id for t in takes):
        known = ", ".join(t[TAKE_KEY]["take_id"] for t in takes) or "none"
        raise TakeError(f"strip {source.name!r} has no take {take_id!r}; it has {known}")
    for strip in takes:
        strip.mute = strip[TAKE_KEY]["take_id"] != take_id


def set_status(scene, take_id: str, status: str, note: str = "", reviewer: str = "") -> None:
    strip = find_take(scene, take_id)
    data = strip[TAKE_KEY]
    data["status"] = status
    if note:
        data["note"] = note
    if reviewer:
        data["reviewer"] = reviewer


def delete_take(scene, take_id: str) -> None:
    """Remove a take strip (its media stays on disk)."""
    strip = find_take(scene, take_id)
    compat.strips(scene).remove(strip)


def finalize(scene, take_id: str, *, drop_others: bool = False):
    """The take becomes the source strip's media; the original path and placement are kept
    on the strip (`takebridge_original`) so `restore_original` brings them back. The take
    strip is removed (other takes stay unless drop_others)."""
    take_strip = find_take(scene, take_id)
    data = take_data_full(take_strip)
    source = find_source(scene, data["source"])
    if source.type != "MOVIE":
        raise TakeError(f"finalize replaces a movie strip's media; {source.name!r} is a {source.type} strip")
    if "takebridge_original" not in source.keys():
        source["takebridge_original"] = {"filepath": source.filepath, "frame_start": float(source.frame_start),
                                         "frame_final_start": source.frame_final_start,
                                         "frame_final_end": source.frame_final_end}
    start, end = take_strip.frame_final_start, take_strip.frame_final_end
    channel = source.channel
    source.filepath = bpy.path.relpath(take_strip.filepath) if bpy.data.filepath else take_strip.filepath
    source.frame_start = take_strip.frame_start
    source.frame_final_start = start
    source.frame_final_end = end
    if source.channel != channel:
        source.channel = channel
    source["takebridge_finalized"] = take_id
    compat.strips(scene).remove(take_strip)
    for other in takes_of(scene, source.name):
        if drop_others:
            compat.strips(scene).remove(other)
        else:
            other.mute = True
    return source


def restore_original(scene, source) -> None:
    original = source.get("takebridge_original")
    if original is None:
        raise TakeError(f"strip {source.name!r} was not finalized; nothing to restore")
    channel = source.channel
    source.filepath = original["filepath"]
    source.frame_start = original["frame_start"]
    source.frame_final_start = original["frame_final_start"]
    source.frame_final_end = original["frame_final_end"]
    if source.channel != channel:
        source.channel = channel
    del source["takebridge_original"]
    source.pop("takebridge_finalized", None)


def follow_sources(scene) -> int:
    """Move every take by however far its source moved since it was placed; returns how many
    moved. Registered as a depsgraph handler; safe to call any time."""
    moved = 0
    sources = {s.name: s for s in compat.strips_all(scene) if not is_take(s)}
    for strip in [s for s in compat.strips_all(scene) if is_take(s)]:
        data = strip[TAKE_KEY]
        source = sources.get(data.get("source"))
        if source is None:
            continue
        delta = float(source.frame_start) - float(data.get("anchor", source.frame_start))
        if abs(delta) >= 1:
            channel = strip.channel
            strip.frame_start += int(round(delta))
            if strip.channel != channel:
                strip.channel = channel
            data["anchor"] = float(data.get("anchor", 0)) + int(round(delta))
            moved += 1
    return moved
