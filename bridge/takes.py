"""Takes on clips: a returned take becomes another media reference on the same OTIO clip.

The original stays under DEFAULT_MEDIA; the take's reference is keyed by its take id and made
active. An extension lengthens the clip's source range into a following (or preceding) gap and
refuses, naming the neighbour, rather than overwrite another clip.
"""
from __future__ import annotations

import dataclasses
import os
import re

import opentimelineio as otio
from google.protobuf import json_format

from bridge import metadata
from bridge.api import pb
from bridge.selection import SelectionError, find_clip
from bridge.timecode import exact_rate, frames_of, rational_time

ORIGINAL = otio.schema.Clip.DEFAULT_MEDIA_KEY
STATUS_NAMES = {v: k.lower() for k, v in pb.TakeStatus.items()}
OP_NAMES = {v: k.lower() for k, v in pb.Operation.items()}


class PlacementError(SelectionError):
    """Placing a take would change something the editor did not ask to change."""


@dataclasses.dataclass(frozen=True)
class TakeListing:
    clip: str
    key: str
    take_id: str
    operation: str
    status: str
    version: int
    active: bool
    media: str


def check_extension_room(timeline: otio.schema.Timeline, clip_name: str, side: str, frames: int) -> None:
    """Raise PlacementError unless `frames` more frames fit at the clip's `side` without
    overwriting a neighbour (a gap is consumed; the end of the track is free)."""
    clip, track = find_clip(timeline, clip_name)
    _room(clip, track, side, frames)


def _room(clip, track, side: str, frames: int):
    """(neighbour gap or None) after checking the room; raises PlacementError."""
    if side not in ("head", "tail"):
        raise PlacementError("bad_side", f"extension side must be 'head' or 'tail', not {side!r}")
    if frames <= 0:
        raise PlacementError("bad_frames", f"an extension needs at least 1 frame, not {frames}")
    index = track.index(clip)
    neighbour_index = index + 1 if side == "tail" else index - 1
    if side == "tail" and neighbour_index >= len(track):
        return None  # the end of the track: the track just gets longer
    if side == "head" and neighbour_index < 0:
        raise PlacementError(
            "no_room", f"clip {clip.name!r} starts its track, so a head extension of {frames} frames "
            f"would move every clip after it; put a gap of {frames} frames before it first")
    neighbour = track[neighbour_index]
    rate = clip.source_range.start_time.rate
    if isinstance(neighbour, otio.schema.Gap):
        available = frames_of(neighbour.duration(), rate)
        if available >= frames:
            return neighbour
        step = 1 if side == "tail" else -1
        beyond = neighbour_index + step
        if not 0 <= beyond < len(track):
            if side == "tail":
                return neighbour  # a trailing gap: consume it, the track gets longer
            raise PlacementError(
                "no_room", f"a head extension of {frames} frames needs {frames - available} more frames "
                f"before {clip.name!r} than the gap that starts the track has ({available}); "
                f"lengthen that gap first")
        blocker = repr(track[beyond].name)
        raise PlacementError(
            "no_room", f"extending {clip.name!r} by {frames} frames at the {side} would overwrite "
            f"{blocker}: the gap there is only {available} frames. Extend by at most "
            f"{available} frames, or move {blocker} by {frames - available} frames first")
    what = "transition" if isinstance(neighbour, otio.schema.Transition) else "clip"
    raise PlacementError(
        "no_room", f"extending {clip.name!r} by {frames} frames at the {side} would overwrite the "
        f"{what} {neighbour.name!r} right next to it; leave a gap of {frames} frames there first")


def place_take(timeline: otio.schema.Timeline, clip_name: str, take: "pb.Take", *, activate: bool = True) -> otio.schema.Clip:
    """Add `take` to the clip as another media reference (keyed by take id), active by default.

    For an extension the clip's source range grows by take.generated_frames at the take's
    side, consuming the neighbouring gap; the original range is kept in the clip metadata.
    """
    clip, track = find_clip(timeline, clip_name)
    if not take.take_id:
        raise PlacementError("bad_take", "the take has no take_id; was the job finished?")
    references = clip.media_references()
    if take.take_id in references:
        raise PlacementError("duplicate_take", f"clip {clip_name!r} already has take {take.take_id!r}")
    gap = None
    extending = take.operation == pb.EXTEND and take.generated_frames > 0
    if extending:
        side = "head" if take.extend_side == pb.HEAD else "tail"
        gap = _room(clip, track, side, take.generated_frames)
    references[take.take_id] = take_reference(take)
    clip_meta = metadata.read(clip)
    clip_meta.setdefault("shot", take.shot or clip.name)
    clip_meta.setdefault("takes", [])
    clip_meta["takes"].append(take.take_id)
    if extending:
        clip_meta.setdefault("original_source_range", _range_dict(clip.source_range))
        _lengthen(clip, gap, track, side, take.generated_frames)
    metadata.write(clip, clip_meta)
    clip.set_media_references(references, take.take_id if activate else clip.active_media_reference_key)
    return clip


def take_reference(take: "pb.Take") -> otio.core.MediaReference:
    """An OTIO reference to the take's media with available_range = the take's source range."""
    rate = exact_rate(take.source_range.rate)
    available = otio.opentime.TimeRange(rational_time(take.source_range.start_frame, rate),
                                        rational_time(take.source_range.frame_count, rate))
    url = take.media.url
    if take.media.codec == pb.PNG_SEQUENCE:
        folder, prefix, padding, suffix = _split_pattern(url)
        ref = otio.schema.ImageSequenceReference(
            target_url_base=folder + "/", name_prefix=prefix, name_suffix=suffix,
            start_frame=take.source_range.start_frame, frame_step=1, rate=float(rate),
            frame_zero_padding=padding, available_range=available)
    else:
        ref = otio.schema.ExternalReference(target_url=url, available_range=available)
    ref.name = take.take_id
    metadata.write(ref, {"take": json_format.MessageToDict(take, preserving_proto_field_name=True)})
    return ref


def take_of_reference(ref) -> "pb.Take | None":
    data = metadata.read(ref).get("take")
    if not data:
        return None
    return json_format.ParseDict(data, pb.Take(), ignore_unknown_fields=True)


def list_takes(timeline: otio.schema.Timeline) -> list[TakeListing]:
    """Every clip's references, original first, in the order the takes were added."""
    rows = []
    for track in timeline.video_tracks():
        for clip in track:
            if not isinstance(clip, otio.schema.Clip):
                continue
            references = clip.media_references()
            order = [ORIGINAL] + [k for k in metadata.read(clip).get("takes", []) if k in references]
            order += [k for k in references if k not in order]
            for key in order:
                if key not in references:
                    continue
                ref = references[key]
                take = take_of_reference(ref)
                rows.append(TakeListing(
                    clip=clip.name, key=key,
                    take_id=take.take_id if take else "",
                    operation=OP_NAMES.get(take.operation, "") if take else "original",
                    status=STATUS_NAMES.get(take.status, "") if take else "",
                    version=take.version if take else 0,
                    active=key == clip.active_media_reference_key,
                    media=_reference_path(ref)))
    return rows


def _lengthen(clip, gap, track, side: str, frames: int) -> None:
    rate = clip.source_range.start_time.rate
    extra = otio.opentime.RationalTime(frames, rate)
    start = clip.source_range.start_time - extra if side == "head" else clip.source_range.start_time
    clip.source_range = otio.opentime.TimeRange(start, clip.source_range.duration + extra)
    if gap is None:
        return
    remaining = gap.duration() - extra.rescaled_to(gap.duration().rate)
    if remaining.value <= 0:
        track.remove(gap)
    else:
        gap.source_range = otio.opentime.TimeRange(gap.source_range.start_time, remaining)


def _range_dict(r: otio.opentime.TimeRange) -> dict:
    return {"start_frame": frames_of(r.start_time), "frame_count": frames_of(r.duration),
            "rate": str(exact_rate(r.start_time.rate))}


def _split_pattern(pattern: str) -> tuple[str, str, int, str]:
    folder, name = os.path.split(pattern)
    match = re.fullmatch(r"(.*?)%0(\d+)d(.*)", name)
    if not match:
        raise PlacementError("bad_take", f"image sequence {pattern!r} is not a printf pattern like name.%06d.png")
    return folder, match.group(1), int(match.group(2)), match.group(3)


def _reference_path(ref) -> str:
    if isinstance(ref, otio.schema.ExternalReference):
        return ref.target_url
    if isinstance(ref, otio.schema.ImageSequenceReference):
        return ref.target_url_base + ref.name_prefix + f"%0{ref.frame_zero_padding}d" + ref.name_suffix
    return ""
