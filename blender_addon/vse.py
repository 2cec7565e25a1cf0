"""The VSE edit as OpenTimelineIO and back; the timeline logic itself lives in `bridge`.

Mapping (scene fps is the OTIO rate):
* every channel with movie or image strips -> a video track, bottom channel first; channel
  numbers kept in the track's `takebridge` metadata; gaps fill the holes from the scene start;
* a movie strip -> a clip named after the strip: source_range = (frame_final_start -
  frame_start, frame_final_duration), ExternalReference(absolute path, available_range =
  (0, frame_duration)); an image strip -> ImageSequenceReference (or one image);
* the take strips of a source (on the channels above it) -> more media references on the
  source's clip, keyed by take id, the unmuted one active: OTIO's own way of holding takes;
* a pre-vis shot Generate made (a placeholder Color strip marked `takebridge.previs`) -> a clip
  whose default media is a GeneratorReference of kind TakeBridgePrevis (bridge/previs.py's
  placeholder) and whose other references are its takes, with `previs` in its metadata;
* `global_start_time` = the scene's first frame.
Blender plays a movie frame for frame at the scene rate; a strip whose media runs at another
rate is exported at the scene rate and marked (`takebridge.fps_mismatch`), and generation on
it is refused with what to do.
"""
from __future__ import annotations

import json
import os
from fractions import Fraction

import bpy
import opentimelineio
from google.protobuf import json_format

from . import compat
from .bridge_import import tb
from .vse_takes import (TAKE_KEY, is_previs, is_take, new_previs_strip, place_take_strip,  # noqa: F401
                        previs_info, take_data, takes_of)   # (the take strips' own module)


def otio():
    return opentimelineio


def _rt(value, rate: Fraction):
    return otio().opentime.RationalTime(value, float(rate))


def _range(start, duration, rate: Fraction):
    return otio().opentime.TimeRange(_rt(start, rate), _rt(duration, rate))


def abspath(path: str) -> str:
    return os.path.normpath(bpy.path.abspath(path))


def media_strip_kind(strip) -> str | None:
    return {"MOVIE": "movie", "IMAGE": "image"}.get(strip.type)


def strip_fps(strip, scene) -> Fraction:
    if strip.type == "MOVIE" and getattr(strip, "fps", 0):
        return tb.timecode.exact_rate(strip.fps)
    return compat.scene_rate(scene)


def reference_of(strip, scene):
    """An OTIO media reference for a movie or image strip's whole content."""
    rate = compat.scene_rate(scene)
    available = _range(0, strip.frame_duration, rate)
    schema = otio().schema
    if strip.type == "MOVIE":
        ref = schema.ExternalReference(target_url=abspath(strip.filepath), available_range=available)
    else:
        directory = abspath(strip.directory)
        names = [e.filename for e in strip.elements]
        if len(names) > 1:
            prefix, padding, suffix, first = _sequence_pattern(names[0])
            ref = schema.ImageSequenceReference(target_url_base=directory.rstrip("/") + "/", name_prefix=prefix,
                                                name_suffix=suffix, start_frame=first, frame_step=1,
                                                rate=float(rate), frame_zero_padding=padding,
                                                available_range=available)
        else:
            ref = schema.ExternalReference(target_url=os.path.join(directory, names[0]), available_range=available)
    return ref


def _sequence_pattern(filename: str):
    """(prefix, padding, suffix, frame) of a numbered image's name (bridge/files.py)."""
    found = tb.files.numbered(filename)
    if found is None:
        return filename, 0, "", 0
    (prefix, padding, suffix), frame = found
    return prefix, padding, suffix, frame


def export_timeline(scene, *, channels_through: int = 0):
    """The scene's VSE edit as an OTIO Timeline, takes as references on their source clips.
    `channels_through`: every channel from 1 to it becomes a track, empty ones too, so track
    V<n> is channel n up to there (Generate names a channel, maybe an empty one)."""
    schema = otio().schema
    metadata = tb.metadata
    takes_mod = tb.takes
    rate = compat.scene_rate(scene)
    timeline = schema.Timeline(name=scene.name, global_start_time=_rt(scene.frame_start, rate))
    media = [s for s in compat.strips(scene) if (media_strip_kind(s) or is_previs(s)) and not is_take(s)]
    for channel in sorted({s.channel for s in media} | set(range(1, channels_through + 1))):
        track = schema.Track(name=compat.editor(scene).channels[channel].name or f"V{channel}")
        metadata.write(track, {"channel": channel})
        cursor = scene.frame_start
        for strip in sorted((s for s in media if s.channel == channel), key=lambda s: s.frame_final_start):
            if strip.frame_final_start > cursor:
                track.append(schema.Gap(source_range=_range(0, strip.frame_final_start - cursor, rate)))
            clip = schema.Clip(name=strip.name, source_range=_range(strip.frame_final_start - strip.frame_start,
                                                                     strip.frame_final_duration, rate))
            references = {schema.Clip.DEFAULT_MEDIA_KEY: _previs_reference(strip, rate) if is_previs(strip)
                          else reference_of(strip, scene)}
            active = schema.Clip.DEFAULT_MEDIA_KEY
            takes = takes_of(scene, strip.name)
            for take_strip in takes:
                data = take_data(take_strip)
                take = _take_message(data)
                references[data["take_id"]] = takes_mod.take_reference(take)
                if not take_strip.mute:
                    active = data["take_id"]
            clip_meta = {"shot": strip.get(TAKE_KEY, {}).get("shot", strip.name) if TAKE_KEY in strip.keys()
                         else strip.name, "takes": [take_data(t)["take_id"] for t in takes],
                         "blender": {"channel": channel, "frame_start": strip.frame_start}}
            if is_previs(strip):
                info = previs_info(strip)
                size = [int(v) for v in info.get("size", [])]
                clip_meta["previs"] = {"track": channel, **({"size": size} if len(size) == 2 else {})}
            if strip.type == "MOVIE" and strip_fps(strip, scene) != rate:
                clip_meta["fps_mismatch"] = {"media": str(strip_fps(strip, scene)), "scene": str(rate)}
            metadata.write(clip, clip_meta)
            clip.set_media_references(references, active)
            track.append(clip)
            cursor = strip.frame_final_end
        timeline.tracks.append(track)
    return timeline


def _previs_reference(strip, rate: Fraction):
    """A pre-vis shot's placeholder media: what bridge.previs.export_gap sends for a gap."""
    length = strip.frame_final_end - strip.frame_start
    return otio().schema.GeneratorReference(name=_shot_name(strip), generator_kind=tb.selection.PREVIS_KIND,
                                            available_range=_range(0, length, rate))


def _shot_name(strip) -> str:
    return str(strip[TAKE_KEY].get("shot") or strip.name) if TAKE_KEY in strip.keys() else strip.name


def _take_message(data: dict):
    pb = tb.api.pb
    stored = data.get("take", {})
    if isinstance(stored, str):
        stored = json.loads(stored)
    return json_format.ParseDict(stored, pb.Take(), ignore_unknown_fields=True)


def import_timeline(scene, timeline, *, base_channel: int = 1) -> list:
    """Build the VSE edit from an OTIO timeline (tracks -> channels from `base_channel`),
    takes as take strips above their source. Returns the source strips made."""
    schema = otio().schema
    timecode = tb.timecode
    rate = compat.scene_rate(scene)
    if timeline.global_start_time is not None:
        scene.frame_start = timecode.frames_of(timeline.global_start_time, rate)
    origin = scene.frame_start
    made = []
    takes_to_place = []
    for number, track in enumerate(timeline.video_tracks()):
        channel = base_channel + number * 1
        for index, item in enumerate(track):
            if not isinstance(item, schema.Clip):
                continue
            record = track.range_of_child_at_index(index)
            start = origin + timecode.frames_of(record.start_time, rate)
            duration = timecode.frames_of(record.duration, rate)
            if tb.previs.is_previs(item):     # a generated shot: a placeholder, its takes above it
                strip = new_previs_strip(scene, _shot_of(item), channel, start, start + duration, name=item.name)
            else:
                ref = item.media_references()[schema.Clip.DEFAULT_MEDIA_KEY]
                strip = _new_media_strip(scene, item.name, ref, channel, rate)
                offset = timecode.frames_of(item.source_range.start_time, rate) if item.source_range else 0
                if ref.available_range is not None:
                    offset -= timecode.frames_of(ref.available_range.start_time, rate)
                _place(strip, start - offset, start, start + duration)
            made.append(strip)
            for key, other in item.media_references().items():
                if key == schema.Clip.DEFAULT_MEDIA_KEY:
                    continue
                take = tb.takes.take_of_reference(other)
                if take is not None:
                    takes_to_place.append((strip, take, key == item.active_media_reference_key))
    for strip, take, active in takes_to_place:
        place_take_strip(scene, strip, take, activate=active)
    return made


def _shot_of(clip) -> str:
    try:
        return tb.metadata.read(clip).get("shot") or clip.name
    except tb.metadata.MetadataError:
        return clip.name


def _new_media_strip(scene, name, ref, channel, rate):
    schema = otio().schema
    coll = compat.strips(scene)
    if isinstance(ref, schema.ExternalReference):
        path = tb.selection.url_to_path(ref.target_url)
        if path.lower().endswith((".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff")):
            return coll.new_image(name=name, filepath=path, channel=channel, frame_start=scene.frame_start)
        return coll.new_movie(name=name, filepath=path, channel=channel, frame_start=scene.frame_start)
    if isinstance(ref, schema.ImageSequenceReference):
        first = ref.target_url_for_image_number(0)
        strip = coll.new_image(name=name, filepath=tb.selection.url_to_path(first), channel=channel,
                               frame_start=scene.frame_start)
        for number in range(1, ref.number_of_images_in_sequence()):
            strip.elements.append(os.path.basename(tb.selection.url_to_path(ref.target_url_for_image_number(number))))
        return strip
    strip = compat.new_effect(scene, name, "COLOR", channel, scene.frame_start, scene.frame_start + 1)
    strip["missing_reference"] = True
    return strip


def _place(strip, content_start: int, visible_start: int, visible_end: int) -> None:
    """Content frame 0 at `content_start`, visible from `visible_start` to `visible_end`."""
    channel = strip.channel
    strip.frame_start = content_start
    strip.frame_final_start = visible_start
    strip.frame_final_end = visible_end
    if strip.channel != channel:
        strip.channel = channel
