"""Selections: a clip on an OTIO timeline becomes the input of a job, and back.

bridge.timeline.export_selection() is what an editor add-on sends; read_selection() is what the server reads.
Source ranges stay in the media reference's own time coordinates (timecode-absolute when the
reference's available range is), so a take lines up with the clip however it is trimmed.
"""
from __future__ import annotations

import dataclasses
import math
import os
import urllib.parse
from fractions import Fraction

import opentimelineio as otio

from . import metadata
from .errors import TakeBridgeError
from .timecode import exact_rate, frames_of


PREVIS_KIND = "TakeBridgePrevis"   # a GeneratorReference of this kind: the place of a shot Generate makes


class SelectionError(TakeBridgeError):
    """The timeline or the selection cannot be used; `code` is machine-readable."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message)


@dataclasses.dataclass(frozen=True)
class MediaSource:
    """Where the clip's active media is and how its frames are numbered."""

    kind: str                      # "movie" | "sequence" | "previs" (a gap Generate fills: no media)
    path: str                      # file path, or printf pattern for a sequence
    available_start: int | None    # first frame of the reference's available range, if stated
    available_duration: int | None
    rate: Fraction                 # rate of the reference's available range or the clip
    sequence_start: int = 0        # number of the first image of a sequence


@dataclasses.dataclass(frozen=True)
class Selection:
    """A job's input: the clip, its media and its source range, all in integer frames."""

    clip_name: str
    shot: str
    media: MediaSource
    source_start: int              # clip.source_range start, in `rate` frames
    source_duration: int
    rate: Fraction                 # the clip's source range rate
    handles: int                   # the most asked for on either side
    record_start: int              # clip's first frame on the track (timeline-local)
    timeline_rate: Fraction
    head_handles: int = -1         # per side when the selection states them (-1: `handles`)
    tail_handles: int = -1

    @property
    def source_end(self) -> int:
        return self.source_start + self.source_duration


def parse_timeline(text: str, where: str = "the request") -> otio.schema.Timeline:
    """OTIO JSON text -> Timeline, or a SelectionError that says what is wrong."""
    try:
        obj = otio.adapters.read_from_string(text, "otio_json")
    except Exception as exc:  # OTIO raises several exception types for bad JSON
        raise SelectionError("malformed_otio", f"{where} is not valid OpenTimelineIO JSON: {exc}") from None
    if not isinstance(obj, otio.schema.Timeline):
        raise SelectionError("malformed_otio",
                             f"{where} holds a {obj.schema_name()}, not a Timeline; export the whole timeline")
    return obj


def find_clip(timeline: otio.schema.Timeline, name: str, *, track_number: int | None = None,
              take_id: str | None = None) -> tuple[otio.schema.Clip, otio.schema.Track]:
    """The one video clip called `name` (on video track `track_number`, counted from 1, and
    holding take `take_id`, when given), with its track; a clear error when not exactly one."""
    found = []
    tracks = list(timeline.video_tracks())
    for number, track in enumerate(tracks, start=1):
        if track_number is not None and number != track_number:
            continue
        for item in track:
            if isinstance(item, otio.schema.Clip) and item.name == name:
                if take_id is None or take_id in item.media_references():
                    found.append((item, track))
    if not found:
        if take_id is not None and any(isinstance(i, otio.schema.Clip) and i.name == name
                                       for t in tracks for i in t):
            raise SelectionError("unknown_take", f"clip {name!r} has no take {take_id!r}; list its takes with "
                                                 f"`takebridge timeline takes`")
        names = sorted({c.name for t in tracks for c in t if isinstance(c, otio.schema.Clip)})
        shown = ", ".join(repr(n) for n in names[:20]) or "none"
        where = f" on V{track_number}" if track_number is not None else ""
        raise SelectionError("unknown_clip", f"no video clip named {name!r}{where} on the timeline; clips: {shown}")
    if len(found) > 1:
        where = (f"choose by position instead: --track {track_number} --in TC --out-point TC over the one you mean"
                 if track_number is not None else "name the track (--track N), or choose by position (--track N "
                                                  "--in TC --out-point TC)")
        raise SelectionError("ambiguous_clip", f"{len(found)} video clips are named {name!r}"
                                               f"{f' on V{track_number}' if track_number is not None else ''}; "
                                               f"{where}")
    return found[0]


def speed_of(clip: otio.schema.Clip) -> Fraction:
    """How fast the clip plays its media: the product of its time warps' scalars (a freeze frame
    is one at 0); 1 without any."""
    speed = Fraction(1)
    for effect in clip.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp):   # FreezeFrame is a LinearTimeWarp at 0
            scalar = float(effect.time_scalar)
            if not math.isfinite(scalar):
                raise SelectionError("malformed_otio", f"clip {clip.name!r}: time warp {scalar!r} is not a number")
            speed *= Fraction(scalar).limit_denominator(10_000)
    return speed


def played_range(clip: otio.schema.Clip) -> tuple[int, int]:
    """(first source frame, count) of the media the clip really plays, in its source rate: the
    source range (which counts record frames at 100 %) scaled by its speed, one frame for a
    freeze. A take of a speed-changed clip covers these frames at the source rate, and the clip
    keeps its effect. Reversed clips are refused: their frames run the other way."""
    rate = exact_rate(clip.source_range.start_time.rate)
    start, duration = frames_of(clip.source_range.start_time), frames_of(clip.source_range.duration, rate)
    speed = speed_of(clip)
    if speed < 0:
        raise SelectionError("reversed_clip", f"clip {clip.name!r} plays its media backwards ({float(speed):g}x); "
                                              f"TakeBridge makes takes of forward clips: render the reverse in the "
                                              f"editor first, or take the clip without its effect")
    if speed == 1:
        return start, duration
    return start, (1 if speed == 0 else max(1, math.ceil(duration * speed)))


def read_selection(timeline: otio.schema.Timeline, clip_name: str = "") -> Selection:
    """What the server needs from a selection sub-timeline (or any timeline plus a clip name).

    Everything read here may come from a hostile request: every value is type- and range-checked
    and a bad one is a SelectionError naming it."""
    try:
        info = metadata.read(timeline).get("selection", {})
    except metadata.MetadataError as err:
        raise SelectionError("malformed_otio", str(err)) from None
    if not isinstance(info, dict):
        raise SelectionError("malformed_otio", "the timeline's takebridge.selection metadata must be an object")
    name = clip_name or _text_field(info, "clip", "")
    if not name:
        clips = [c for t in timeline.video_tracks() for c in t if isinstance(c, otio.schema.Clip)]
        if len(clips) != 1:
            raise SelectionError("unknown_clip",
                                 f"the selection holds {len(clips)} clips and names none; send one clip or name it")
        name = clips[0].name
    clip, _track = find_clip(timeline, name)
    if clip.source_range is None:
        raise SelectionError("no_source_range", f"clip {name!r} has no source range; trim it on the timeline first")
    try:
        rate = exact_rate(clip.source_range.start_time.rate)
        timeline_rate = (exact_rate(info["timeline_rate"]) if "timeline_rate" in info
                         else _timeline_rate(timeline, clip))
    except ValueError as err:
        raise SelectionError("bad_rate", f"clip {name!r}: {err}") from None
    record_start = _int_field(info, "record_start", None, -MAX_FRAME, MAX_FRAME)
    if record_start is None:
        record_start = frames_of(clip.range_in_parent().start_time, timeline_rate)
    try:
        shot = metadata.read(clip).get("shot") or name
    except metadata.MetadataError as err:
        raise SelectionError("malformed_otio", str(err)) from None
    if not isinstance(shot, str):
        raise SelectionError("malformed_otio", f"clip {name!r}: its takebridge shot name must be text, not "
                                               f"{type(shot).__name__} {shot!r}")
    start, duration = clip.source_range.start_time.value, clip.source_range.duration.value
    for what, value in (("start", start), ("duration", duration)):
        if not math.isfinite(value) or abs(value) > MAX_FRAME:
            raise SelectionError("malformed_otio", f"clip {name!r}: source range {what} {value!r} is not a "
                                                   f"usable frame number")
    handles = _int_field(info, "handles", 0, 0, MAX_HANDLES)
    played_start, played = played_range(clip)   # the frames it plays: a speed change scales them
    return Selection(
        clip_name=name,
        shot=shot,
        media=media_source(clip),
        source_start=played_start,
        source_duration=played,
        rate=rate,
        handles=handles,
        record_start=int(record_start),
        timeline_rate=timeline_rate,
        head_handles=_int_field(info, "head_handles", handles, 0, MAX_HANDLES),
        tail_handles=_int_field(info, "tail_handles", handles, 0, MAX_HANDLES),
    )


MAX_FRAME = 10**12      # frame numbers beyond this are refused rather than computed with
MAX_HANDLES = 10_000    # a sanity bound; the server's own limit is much lower


def _int_field(info: dict, key: str, default, low: int, high: int):
    value = info.get(key)
    if value is None:   # absent or null: the default
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or not low <= value <= high:
        raise SelectionError("malformed_otio", f"selection metadata {key!r} is {str(value)[:40]!r}; it must be a "
                                               f"whole number in {low}..{high}")
    return int(value)


def _text_field(info: dict, key: str, default: str) -> str:
    value = info.get(key, default)
    if not isinstance(value, str):
        raise SelectionError("malformed_otio", f"selection metadata {key!r} must be text, not "
                                               f"{type(value).__name__}")
    return value


def media_source(clip: otio.schema.Clip) -> MediaSource:
    """The clip's active media reference as a path (or pattern) and its frame numbering."""
    ref = clip.media_reference
    avail = ref.available_range if ref is not None else None
    rate = exact_rate(avail.start_time.rate) if avail else exact_rate(clip.source_range.start_time.rate)
    start = frames_of(avail.start_time) if avail else None
    duration = frames_of(avail.duration) if avail else None
    if isinstance(ref, otio.schema.ExternalReference):
        return MediaSource("movie", url_to_path(ref.target_url), start, duration, rate)
    if isinstance(ref, otio.schema.ImageSequenceReference):
        pattern = (url_to_path(ref.target_url_base.rstrip("/")) + "/" + ref.name_prefix
                   + f"%0{ref.frame_zero_padding}d" + ref.name_suffix)
        return MediaSource("sequence", pattern, start, duration, rate, sequence_start=ref.start_frame)
    if isinstance(ref, otio.schema.GeneratorReference) and ref.generator_kind == PREVIS_KIND:
        return MediaSource("previs", "", start, duration, rate)
    kind = ref.schema_name() if ref is not None else "no reference"
    raise SelectionError("media_missing",
                         f"clip {clip.name!r} has no usable media ({kind}); relink it to a movie or image sequence")


def url_to_path(url: str) -> str:
    """file:// URL or bare path (as Resolve writes them) -> local path."""
    if url.startswith("file://"):
        parsed = urllib.parse.urlparse(url)
        return urllib.parse.unquote(parsed.path)
    return os.path.expanduser(url)


def _timeline_rate(timeline: otio.schema.Timeline, clip: otio.schema.Clip) -> Fraction:
    if timeline.global_start_time is not None:
        return exact_rate(timeline.global_start_time.rate)
    return exact_rate(clip.source_range.start_time.rate if clip.source_range else clip.duration().rate)


def absolutize_media(timeline: otio.schema.Timeline, base_dir: str) -> None:
    """Make relative media paths absolute against the timeline file's folder, so a server with
    another working folder reads the same files."""
    for clip in timeline.find_clips():
        references = clip.media_references()
        for ref in references.values():
            if isinstance(ref, otio.schema.ExternalReference) and ref.target_url and "://" not in ref.target_url:
                if not os.path.isabs(os.path.expanduser(ref.target_url)):
                    ref.target_url = os.path.normpath(os.path.join(base_dir, ref.target_url))
            elif isinstance(ref, otio.schema.ImageSequenceReference) and "://" not in ref.target_url_base:
                if not os.path.isabs(os.path.expanduser(ref.target_url_base)):
                    ref.target_url_base = os.path.normpath(os.path.join(base_dir, ref.target_url_base)) + "/"
        clip.set_media_references(references, clip.active_media_reference_key)
