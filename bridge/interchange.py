"""Timelines in and out of editing formats, takes kept.

OTIO (.otio) holds takes natively (Clip.2 media references). `.otioz` bundles the timeline
with its media, takes included. EDL, FCP 7 XML, FCPXML and AAF hold one piece of media per
clip: they get the active take, and a sidecar ``<file>.takebridge.json`` keeps every clip's
references, active take, source range and TakeBridge metadata; reading the file back with
its sidecar beside it restores them, matching clips by track and record range.

`resolve_shape()` writes OTIO the way DaVinci Resolve's importer accepts it: Clip.2 with
DEFAULT_MEDIA, `available_range` on every reference, bare paths, a global start time and
`Resolve_OTIO` metadata, source ranges in the media's timecode-absolute frames.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Callable

import opentimelineio as otio

from . import fcpxml, files, metadata
from .errors import TakeBridgeError
from .selection import parse_timeline, url_to_path
from .timecode import exact_rate, frames_of, rate_text
from .timeline import timeline_rate

SIDECAR_SUFFIX = ".takebridge.json"
SIDECAR_SCHEMA = 1
ADAPTERS = {".otio": "otio_json", ".json": "otio_json", ".otioz": "otioz", ".edl": "cmx_3600",
            ".xml": "fcp_xml", ".fcpxml": "fcpx_xml", ".aaf": "AAF"}
SINGLE_REFERENCE = {"cmx_3600", "fcp_xml", "fcpx_xml", "AAF"}
URL_FORMATS = {"fcp_xml", "fcpx_xml"}      # FCP 7 pathurl and FCPXML src are file:// URLs; EDL and AAF paths
ORIGINAL = otio.schema.Clip.DEFAULT_MEDIA_KEY

# probe(path) -> (first frame number from the media's start timecode, frame count, rate)
Probe = Callable[[str], tuple]


class InterchangeError(TakeBridgeError):
    """A timeline that cannot be read or written in the asked format, and what to do."""

    code = "bad_timeline_file"


def adapter_for(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in ADAPTERS:
        raise InterchangeError(f"{path}: unknown timeline format {suffix or '(no extension)'!r}; use one of "
                               f"{', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[suffix]


def sidecar_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


# ------------------------------------------------------------------------------- reading

def read_timeline(path: Path, *, rate=None) -> otio.schema.Timeline:
    """Read any supported format; restores takes from a sidecar beside single-media formats.

    `rate` is for EDL, which does not state one: else the sidecar's, else the lowest standard
    rate its timecodes fit (edl_rate).
    """
    path = Path(path)
    adapter = adapter_for(path)
    sidecar = _load_sidecar(path) if adapter in SINGLE_REFERENCE else None
    options = {}
    if adapter == "cmx_3600":
        text = path.read_text(errors="replace")
        _check_edl_dissolves(text, path)
        chosen = rate or (sidecar or {}).get("timeline_rate") or edl_rate(text, path)
        options["rate"] = float(exact_rate(chosen))
    if adapter == "otio_json":
        return parse_timeline(path.read_text(), str(path))
    try:
        if adapter == "otioz":
            timeline = _read_otioz(path)
        elif adapter == "fcpx_xml":
            timeline = fcpxml.read(path.read_text())
        else:
            timeline = otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)
    except InterchangeError:
        raise
    except Exception as exc:  # adapters raise their own exception types
        raise InterchangeError(f"cannot read {path} as {adapter}: {_one_line(exc)}") from None
    if isinstance(timeline, otio.schema.SerializableCollection):
        timelines = [t for t in timeline.find_children(descended_from_type=otio.schema.Timeline)] or list(timeline)
        if not timelines or not isinstance(timelines[0], otio.schema.Timeline):
            raise InterchangeError(f"{path} holds no timeline")
        timeline = timelines[0]
    if adapter == "cmx_3600":
        _normalise_edl(timeline, sidecar)
    if sidecar is not None:
        restore_from_sidecar(timeline, sidecar)
    return timeline


_EDL_TIMECODE = re.compile(r"\b\d{2}:\d{2}:\d{2}([:;.,])(\d{2})\b")


def edl_rate(text: str, path="the EDL") -> Fraction:
    """The rate an EDL's timecodes were written at, which CMX 3600 never states: the lowest
    standard rate whose frame field holds every timecode's frames (24 up to :23, 25 at :24, 30
    up to :29, then 48, 50, 60), NTSC (29.97, 59.94) when the EDL says drop frame. A 24 fps
    EDL whose frames never pass :23 reads at 24, as before; pass the rate when it is another."""
    fields = _EDL_TIMECODE.findall(text)
    drop = "FCM: DROP FRAME" in text.upper() or any(sep in ";," for sep, _ in fields)
    highest = max((int(frames) for _, frames in fields), default=0)
    rates = (Fraction(30000, 1001), Fraction(60000, 1001)) if drop else \
        (Fraction(24), Fraction(25), Fraction(30), Fraction(48), Fraction(50), Fraction(60))
    for candidate in rates:
        if highest < candidate:
            return candidate
    raise InterchangeError(f"{path}: timecodes count up to frame {highest}, more than any standard rate has; pass "
                           f"the EDL's rate (--rate)")


_EDL_EVENT = re.compile(r"^(\d{3,})\s+\S+\s+\S+\s+(C|D|W\d+)\b", re.M)


def _check_edl_dissolves(text: str, path) -> None:
    """A dissolve (D) event goes from the clip on the cut line just before it, which carries the
    same event number; without that line no reader can tell what it dissolves from."""
    previous = None
    for number, kind in _EDL_EVENT.findall(text):
        if kind != "C" and previous != number:
            raise InterchangeError(f"{path}: event {number} is a {'dissolve' if kind == 'D' else 'wipe'} without "
                                   f"the cut line that opens it (a line '{number} ... C' with the outgoing clip must "
                                   f"come first); fix the event or export the EDL again")
        previous = number


def _one_line(exc: Exception) -> str:
    """An adapter's error (some run to fifteen lines) as one line, at most 300 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _read_otioz(path: Path) -> otio.schema.Timeline:
    """Extract the bundle beside itself (<name>.media/) and point the references there."""
    target = path.with_name(path.stem + ".otioz.d")
    with zipfile.ZipFile(path) as bundle:
        names = bundle.namelist()
        if "content.otio" not in names:
            raise InterchangeError(f"{path} is not an OTIO bundle (no content.otio inside)")
        for name in names:
            dest = (target / name).resolve()
            if not str(dest).startswith(str(target.resolve()) + os.sep):
                raise InterchangeError(f"{path}: refusing bundle entry {name!r} outside the bundle folder")
        bundle.extractall(target)
    timeline = otio.adapters.read_from_file(str(target / "content.otio"), adapter_name="otio_json")
    for clip in timeline.find_clips():
        references = clip.media_references()
        for ref in references.values():
            if isinstance(ref, otio.schema.ExternalReference) and ref.target_url.startswith("media/"):
                ref.target_url = str(target / ref.target_url)
            elif isinstance(ref, otio.schema.ImageSequenceReference) and ref.target_url_base.startswith("media/"):
                ref.target_url_base = str(target / ref.target_url_base) + "/"
        clip.set_media_references(references, clip.active_media_reference_key)
    return timeline


def _normalise_edl(timeline: otio.schema.Timeline, sidecar: dict | None) -> None:
    """The EDL reader puts the first event's record timecode in the track's source range as a
    negative offset. Make it the timeline's global start (the sidecar's, when there is one;
    the difference is a leading gap) as every other format does."""
    for track in timeline.tracks:
        if track.source_range is None or track.source_range.start_time.value >= 0:
            continue
        first = -track.source_range.start_time
        track.source_range = None
        start = first
        if sidecar and sidecar.get("global_start") is not None:
            start = otio.opentime.RationalTime(sidecar["global_start"], first.rate)
        if timeline.global_start_time is None:
            timeline.global_start_time = start
        lead = first - timeline.global_start_time
        if lead.value > 0:
            track.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=lead)))


# ------------------------------------------------------------------------------- writing

def write_timeline(timeline: otio.schema.Timeline, path: Path, *, resolve: bool = False,
                   probe: Probe | None = None, track: int | None = None) -> dict:
    """Write `timeline` in the format of `path`'s extension, atomically; returns a report
    {format, path, sidecar, takes_in_sidecar, warnings}. `track` (from 1) writes that video track
    alone, as Resolve and Premiere export an EDL per track."""
    path = Path(path)
    adapter = adapter_for(path)
    warnings: list[str] = []
    if track is not None:
        timeline = track_only(timeline, track, warnings)
    report = {"format": adapter, "path": str(path), "sidecar": None, "takes_in_sidecar": 0, "warnings": warnings}
    out = timeline.deepcopy()
    if resolve:
        if adapter != "otio_json":
            raise InterchangeError("--resolve shapes .otio files only; write OUT.otio")
        out = resolve_shape(out, probe=probe, warnings=warnings)
        report["format"] = "otio_json (Resolve)"
    auditions = {}
    if adapter in SINGLE_REFERENCE:
        sidecar = make_sidecar(timeline)
        report["takes_in_sidecar"] = sum(len(c["references"]) - 1 for c in sidecar["clips"])
        if adapter == "fcpx_xml":   # Final Cut holds takes itself, as auditions
            auditions = fcpxml.mark_auditions(out, _written_url)
            report["auditions"] = len(auditions)
        out = flatten(out, adapter, probe=probe, warnings=warnings)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {}
    if adapter == "cmx_3600":
        rate = _timeline_rate(out)
        options = {"rate": float(rate), "reelname_len": None}
        if out.global_start_time is not None:  # the writer counts record timecode from 0 otherwise
            for track in out.video_tracks():
                track.source_range = otio.opentime.TimeRange(-out.global_start_time, track.duration())
    elif adapter == "AAF":
        options = {"use_empty_mob_ids": True}
    if adapter == "otioz":
        _write_otioz(out, path, warnings)
    elif adapter == "fcpx_xml":
        text = fcpxml.write(out, auditions)
        _atomic(path, lambda tmp: Path(tmp).write_text(text))
    else:
        fixes = {"AAF": _aaf_nested_lengths, "fcp_xml": _fcp7_files_by_range}.get(adapter, contextlib.nullcontext)
        with fixes():
            _atomic(path, lambda tmp: otio.adapters.write_to_file(out, tmp, adapter_name=adapter, **options))
    if adapter in SINGLE_REFERENCE:
        side = sidecar_path(path)
        _atomic(side, lambda tmp: Path(tmp).write_text(json.dumps(sidecar, indent=1)))
        report["sidecar"] = str(side)
    return report


@contextlib.contextmanager
def _fcp7_files_by_range():
    """OpenTimelineIO's FCP 7 XML writer writes one <file> per URL: Premiere exports one file
    element per clip when clips use different parts of a file (each with its own range and
    start timecode), and the writer kept the first one's timecode for all of them, so every
    other clip came back with other source frames. While it writes, a file is the same file
    only when its URL and its range agree."""
    adapter = otio.adapters.from_name("fcp_xml").module()
    same_url = vars(adapter).get("_backreference_for_item")
    if same_url is None:
        yield
        return

    def by_url_and_range(item, tag, br_map):
        if not isinstance(item, otio.schema.ExternalReference) or item.available_range is None:
            return same_url(item, tag, br_map)
        url, held = item.target_url, item.available_range
        item.target_url = f"{url}\x00{held.start_time.value}/{held.start_time.rate}+{held.duration.value}"
        try:                  # (only the identity is keyed on it; the element is built from the real URL)
            return same_url(item, tag, br_map)
        finally:
            item.target_url = url
    adapter._backreference_for_item = by_url_and_range
    try:
        yield
    finally:
        adapter._backreference_for_item = same_url


@contextlib.contextmanager
def _aaf_nested_lengths():
    """OpenTimelineIO's AAF writer gives a nested sequence (a Stack, written as a Submaster
    OperationGroup) the sum of its tracks' lengths, though they play in parallel: read back,
    a 12-frame nested sequence of two tracks ran 24 frames and pushed the rest of the cut.
    While it writes, the group's length is the stack's own duration."""
    adapter = getattr(otio.adapters.from_name("AAF").module(), "aaf_writer", None)
    transcriber = getattr(adapter, "_TrackTranscriber", None)
    summing = vars(transcriber).get("aaf_operation_group") if transcriber is not None else None
    if summing is None:
        yield
        return

    def parallel(self, otio_stack):
        group = summing(self, otio_stack)
        longest = max((segment.length for segment in group.segments), default=0)
        own = otio_stack.duration().rescaled_to(self.edit_rate).value
        group.length = min(longest, round(own)) if own > 0 else longest
        return group
    transcriber.aaf_operation_group = parallel
    try:
        yield
    finally:
        transcriber.aaf_operation_group = summing


def track_only(timeline: otio.schema.Timeline, number: int, warnings: list[str] | None = None) -> otio.schema.Timeline:
    """A copy holding video track `number` (from 1) alone: what a per-track EDL holds."""
    video = list(timeline.video_tracks())
    if not 1 <= number <= len(video):
        raise InterchangeError(f"the timeline has video tracks V1..V{len(video)}, not V{number}")
    copy = timeline.deepcopy()
    keep = list(copy.video_tracks())[number - 1]
    dropped = [t for t in copy.tracks if t is not keep]
    for other in dropped:
        copy.tracks.remove(other)
    if warnings is not None and any(t.kind == otio.schema.TrackKind.Audio for t in timeline.tracks):
        warnings.append(f"V{number} written alone: the audio tracks are not in this file")
    return copy


def _atomic(path: Path, write: Callable[[str], object]) -> None:
    """bridge/files.py's replacing(), with the adapters' own errors named."""
    try:
        with files.replacing(path, suffix=path.suffix) as tmp:   # adapters pick the format by suffix
            write(tmp)
    except InterchangeError:
        raise
    except Exception as exc:  # adapters raise their own exception types
        raise InterchangeError(f"cannot write {path}: {_one_line(exc)}") from None


def _write_otioz(timeline: otio.schema.Timeline, path: Path, warnings: list[str]) -> None:
    """A zip with content.otio and every referenced file (all takes, not just the active one)
    under media/, the references rewritten to those relative paths."""
    files: dict[str, str] = {}
    for clip in timeline.find_clips():
        references = clip.media_references()
        for ref in references.values():
            for source in _reference_files(ref):
                if not os.path.isfile(source):
                    warnings.append(f"{clip.name}: {source} is missing; the bundle references it without the file")
                    continue
                name = files.setdefault(source, _bundle_name(source, files))
                if isinstance(ref, otio.schema.ExternalReference):
                    ref.target_url = name
            if isinstance(ref, otio.schema.ImageSequenceReference) and _reference_files(ref):
                folder = files.get(_reference_files(ref)[0], "")
                ref.target_url_base = os.path.dirname(folder) + "/" if folder else ref.target_url_base
        clip.set_media_references(references, clip.active_media_reference_key)

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, "w") as bundle:
            bundle.writestr("version.txt", "1.0.0")
            bundle.writestr("content.otio", otio.adapters.write_to_string(timeline, "otio_json"),
                            compress_type=zipfile.ZIP_DEFLATED)
            for source, name in files.items():
                bundle.write(source, name, compress_type=zipfile.ZIP_STORED)
    _atomic(path, write)


def _reference_files(ref) -> list[str]:
    if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
        return [url_to_path(ref.target_url)]
    if isinstance(ref, otio.schema.ImageSequenceReference):
        folder = url_to_path(ref.target_url_base.rstrip("/"))
        return [os.path.join(folder, f"{ref.name_prefix}{ref.start_frame + i * ref.frame_step:0{ref.frame_zero_padding}d}"
                             f"{ref.name_suffix}") for i in range(ref.number_of_images_in_sequence())]
    return []


def _bundle_name(source: str, taken: dict) -> str:
    """media/<basename>, as OTIO's own bundles lay it out (an image sequence keeps its folder);
    a clashing name gets a numbered folder."""
    used = set(taken.values())
    base = os.path.basename(source)
    if any(os.path.dirname(k) == os.path.dirname(source) and k != source for k in taken) and \
            not source.lower().endswith((".mov", ".mp4", ".mkv", ".mxf")):
        base = os.path.basename(os.path.dirname(source)) + "/" + base
    name, counter = f"media/{base}", 1
    while name in used:
        counter += 1
        name = f"media/{counter}/{base}"
    return name


# --------------------------------------------------------------------- single-media formats

def flatten(timeline: otio.schema.Timeline, adapter: str, *, probe: Probe | None = None,
            warnings: list[str] | None = None) -> otio.schema.Timeline:
    """A copy for formats with one reference per clip: the active reference only, bare paths,
    no TakeBridge metadata (the sidecar has it), an available range on every reference."""
    warnings = warnings if warnings is not None else []
    rate = _timeline_rate(timeline)
    video = list(timeline.video_tracks())
    if adapter in ("cmx_3600", "fcp_xml") and not otio.opentime.RationalTime.is_valid_timecode_rate(float(rate)):
        what = "a CMX 3600 EDL counts" if adapter == "cmx_3600" else "FCP 7 XML stamps its sequence with"
        raise InterchangeError(f"this timeline runs at {float(rate):.6g} fps, which has no SMPTE timecode, and {what} "
                               f"SMPTE timecode: write .otio or .aaf (they keep any rate), or conform the timeline "
                               f"to 24, 25 or 30 fps")
    if adapter == "cmx_3600" and not video:
        raise InterchangeError("this timeline has no video track (audio only), and a CMX 3600 EDL is written for "
                               "one video track; TakeBridge's takes are video: write .otio, .xml or .aaf to keep "
                               "the audio edit")
    if adapter == "cmx_3600" and len(video) > 1:
        raise InterchangeError(f"a CMX 3600 EDL holds one video track and this timeline has {len(video)}: write "
                               f"one with `timeline convert IN OUT.edl --track N`, one per track with "
                               f"--all-tracks, or write .xml, .fcpxml, .aaf or .otio")
    if adapter == "fcpx_xml":
        # OTIO's FCPXML writer drops transitions and miscounts the clip after one; write cuts
        for track in timeline.video_tracks():
            for transition in [i for i in track if isinstance(i, otio.schema.Transition)]:
                track.remove(transition)
                warnings.append("FCPXML as written by OpenTimelineIO cannot hold transitions: written as cuts; "
                                "the sidecar restores them on re-import")
    if adapter == "cmx_3600":
        _edl_dissolves(timeline, warnings)
        for track in timeline.video_tracks():
            for nested in [i for i in track if isinstance(i, otio.schema.Stack)]:
                warnings.append(f"the nested sequence {nested.name!r} on {track.name or 'its track'} is not in "
                                f"the EDL (an EDL lists clips, not sequences): flatten it in the editor first, or "
                                f"write .xml, .aaf or .otio")
    if adapter == "AAF":
        for transition in timeline.find_children(descended_from_type=otio.schema.Transition):
            transition.metadata["AAF"] = _aaf_dissolve(transition)
    for clip in timeline.find_clips():
        ref = clip.media_reference
        showing_take = clip.active_media_reference_key not in (ORIGINAL, "original")
        if adapter in ("fcpx_xml", "cmx_3600") and clip.source_range is not None \
                and exact_rate(clip.source_range.start_time.rate) != rate:
            warnings.append(f"clip {clip.name!r} runs at {rate_text(clip.source_range.start_time.rate)} fps on a "
                            f"{rate_text(rate)} fps timeline; {adapter} rounds its source frames, the sidecar "
                            f"restores them exactly")
            if adapter == "cmx_3600":  # an EDL event's source and record durations must agree
                _conform_to(clip, rate)
                ref = clip.media_reference
        if adapter == "AAF" and clip.source_range is not None and exact_rate(clip.source_range.start_time.rate) != rate:
            raise InterchangeError(
                f"clip {clip.name!r} runs at {rate_text(clip.source_range.start_time.rate)} fps on a "
                f"{rate_text(rate)} fps timeline; AAF needs every clip at the timeline rate: conform it, or write "
                f".xml, .fcpxml or .otio")
        if isinstance(ref, otio.schema.ImageSequenceReference) and adapter != "otio_json":
            warnings.append(f"clip {clip.name!r}: its active take is an image sequence, which "
                            f"{adapter} cannot reference; the first image is written")
            ref = otio.schema.ExternalReference(_reference_files(ref)[0] if ref.number_of_images_in_sequence()
                                                else "", ref.available_range)
        # a copy of every kind of reference (missing, generator, external...): the clip's own is
        # freed with its old reference map, and handing it back to the clip is a use after free
        ref = ref.deepcopy() if ref is not None else otio.schema.MissingReference()
        if isinstance(ref, otio.schema.ExternalReference):
            written = ref.target_url
            ref.target_url = url_to_path(ref.target_url)
            _ensure_available_range(clip, ref, probe, warnings)
            if adapter in URL_FORMATS:   # as the application writes them: the file's own URL kept as it was
                ref.target_url = _written_url(written)
            if adapter == "fcp_xml":
                _timecode_rate(clip, ref)
        clip.set_media_references({ORIGINAL: ref}, ORIGINAL)
        if adapter == "cmx_3600":
            _edl_reel(clip, ref)
        if adapter == "AAF":
            _aaf_unc_path(clip, ref)
            if showing_take:   # the take is other media: its own mob, not the original's (the first of those wins)
                for key in ("MobID", "SourceID"):
                    clip.metadata.get("AAF", {}).pop(key, None)
            media = ref.available_range if isinstance(ref, otio.schema.ExternalReference) else None
            if media is not None and exact_rate(media.start_time.rate) != rate:
                raise InterchangeError(
                    f"clip {clip.name!r}: its media runs at {float(exact_rate(media.start_time.rate)):.5g} fps on a "
                    f"{float(rate):.5g} fps sequence, and OpenTimelineIO's AAF writer needs media at the sequence "
                    f"rate: write .xml (FCP 7 XML keeps mixed rates) or .otio, or conform the media")
        clip.metadata.pop(metadata.KEY, None)
        ref.metadata.pop(metadata.KEY, None)
    return timeline


def _aaf_unc_path(clip, ref) -> None:
    """Avid keeps a clip's media path in its UserComments ("UNC Path"), and OpenTimelineIO's AAF
    reader prefers it to the mob's own: point it at the active take (else the file alone, without
    its sidecar, plays the original again)."""
    aaf = clip.metadata.get("AAF")
    comments = aaf.get("UserComments") if aaf is not None else None
    if comments is None or "UNC Path" not in comments:
        return
    path = url_to_path(ref.target_url) if isinstance(ref, otio.schema.ExternalReference) else ""
    if path:
        comments["UNC Path"] = path


def _written_url(url: str) -> str:
    """A reference's URL as FCP 7 XML and FCPXML hold it: a URL the file had stays as it was, a
    local path becomes a file:// URL."""
    return url if "://" in url else _file_url(url_to_path(url))


def _file_url(path: str) -> str:
    """A local path as the file:// URL FCP 7 and Final Cut Pro write (relative paths stay as they are)."""
    return Path(path).as_uri() if path and os.path.isabs(path) else path


def _edl_dissolves(timeline, warnings: list[str]) -> None:
    """An EDL dissolve counts the incoming clip's source from before its first frame; where the
    clip starts at source frame 0 that would be a negative timecode, which no EDL can hold: that
    dissolve is written as a cut (warned; the sidecar restores it)."""
    for track in timeline.video_tracks():
        for transition in [i for i in track if isinstance(i, otio.schema.Transition)]:
            index = track.index(transition)
            incoming = track[index + 1] if index + 1 < len(track) else None
            if isinstance(incoming, (otio.schema.Clip, otio.schema.Gap)) and incoming.source_range is not None and \
                    incoming.source_range.start_time.to_seconds() - transition.in_offset.to_seconds() < -1e-9:
                track.remove(transition)
                what = repr(incoming.name) if isinstance(incoming, otio.schema.Clip) else "black"
                warnings.append(f"the dissolve into {what} would start before its first source frame "
                                f"(a negative timecode no EDL can hold): written as a cut; the sidecar restores it")


def _edl_reel(clip, ref) -> None:
    """A reel name an EDL reader can parse back: the clip's own when it has one, AX (an unknown
    source, as the EDL had it) for offline media, else the file's name without its extension and
    with anything but letters, digits and _ made _. (A clip name with a space as reel breaks
    the event line for every reader.)"""
    cmx = dict(clip.metadata.get("cmx_3600", {}))
    if cmx.get("reel"):
        return
    if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
        stem = os.path.splitext(os.path.basename(ref.target_url.replace("\\", "/")))[0]
        cmx["reel"] = re.sub(r"[^A-Za-z0-9_]", "_", stem) or "AX"
    else:
        cmx["reel"] = "AX"
    clip.metadata["cmx_3600"] = cmx


SMPTE_RATES = tuple(Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001",
                                          "60"))


def _timecode_rate(clip, ref) -> None:
    """FCP 7 XML writes a timecode for every file, and SMPTE timecode exists at a few rates only:
    media at another rate (12, 15, 16 fps...) has its range counted at the smallest timecode rate
    that is a whole multiple of its own (15 -> 30: every frame keeps its time exactly). Where there
    is none (26.78 fps), the refusal names the clip and what to do."""
    available = ref.available_range
    if available is None or otio.opentime.RationalTime.is_valid_timecode_rate(available.start_time.rate):
        return
    rate = exact_rate(available.start_time.rate)
    target = next((r for r in SMPTE_RATES if (r / rate).denominator == 1), None)
    if target is None:
        raise InterchangeError(f"clip {clip.name!r}: its media runs at {float(rate):.6g} fps, which has no SMPTE "
                               f"timecode and is no whole fraction of a rate that has; FCP 7 XML cannot hold it. "
                               f"Write .otio or .fcpxml, or conform the media")
    ref.available_range = otio.opentime.TimeRange(available.start_time.rescaled_to(float(target)),
                                                  available.duration.rescaled_to(float(target)))


def _conform_to(clip, rate) -> None:
    """Express a clip (and its active reference's range) in timeline frames, as an EDL event."""
    src = clip.source_range
    start = int(src.start_time.value_rescaled_to(float(rate)))
    duration = round(src.duration.value_rescaled_to(float(rate)))
    clip.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(start, float(rate)),
                                                otio.opentime.RationalTime(duration, float(rate)))
    ref = clip.media_reference
    if ref is not None and ref.available_range is not None:
        avail = ref.available_range
        a_start = int(avail.start_time.value_rescaled_to(float(rate)))
        a_end = max(round(avail.end_time_exclusive().value_rescaled_to(float(rate))), start + duration)
        ref.available_range = otio.opentime.TimeRange(otio.opentime.RationalTime(a_start, float(rate)),
                                                      otio.opentime.RationalTime(a_end - a_start, float(rate)))


def _aaf_dissolve(transition) -> dict:
    """What the AAF writer needs to write a transition: a video dissolve operation."""
    return {"PointList": [{"Value": 0.0, "Time": 0.0}, {"Value": 1.0, "Time": 1.0}],
            "CutPoint": int(round(transition.in_offset.value)),
            "OperationGroup": {"Operation": {
                "Identification": "0c3bea40-fc05-11d2-8a29-0050040ef7d2", "Name": "Video Dissolve",
                "Description": "Video Dissolve", "IsTimeWarp": False, "Bypass": 1, "NumberInputs": 2,
                "OperationCategory": "OperationCategory_Effect", "DataDefinition": {"Name": "Picture"}}}}


def _ensure_available_range(clip, ref, probe, warnings) -> None:
    if ref.available_range is not None:
        return
    if probe is not None and ref.target_url and os.path.exists(ref.target_url):
        start, count, media_rate = probe(ref.target_url)
        ref.available_range = otio.opentime.TimeRange(otio.opentime.RationalTime(start, float(media_rate)),
                                                      otio.opentime.RationalTime(count, float(media_rate)))
        return
    if clip.source_range is not None:
        ref.available_range = clip.source_range
        warnings.append(f"clip {clip.name!r}: {ref.target_url or 'its media'} has no available range and could not "
                        f"be probed; its source range stands in")


def make_sidecar(timeline: otio.schema.Timeline) -> dict:
    """Everything a single-media format loses: per clip, keyed by track and record range."""
    rate = _timeline_rate(timeline)
    clips, transitions, tracks = [], [], []
    for number, track in enumerate(timeline.video_tracks(), start=1):
        tracks.append({"track": number, "name": track.name,
                       "clips": sum(1 for i in track if isinstance(i, otio.schema.Clip)),
                       "frames": frames_of(track.duration(), rate) if len(track) else 0})
        clip_count = 0
        for index, item in enumerate(track):
            if isinstance(item, otio.schema.Transition):
                transitions.append({"track": number, "after_clip": clip_count - 1, "name": item.name,
                                    "type": item.transition_type, "in": frames_of(item.in_offset, rate),
                                    "out": frames_of(item.out_offset, rate)})
            if not isinstance(item, otio.schema.Clip):
                continue
            clip_count += 1
            rec = track.range_of_child_at_index(index)
            clips.append({
                "track": number, "name": item.name,
                "record_start": frames_of(rec.start_time, rate), "record_duration": frames_of(rec.duration, rate),
                "references": sorted(item.media_references()), "active": item.active_media_reference_key,
                "clip": json.loads(otio.adapters.write_to_string(item, "otio_json")),
            })
    start = timeline.global_start_time
    return {"schema": SIDECAR_SCHEMA, "kind": "takebridge-sidecar", "timeline": timeline.name,
            "timeline_rate": rate_text(rate), "global_start": frames_of(start, rate) if start is not None else None,
            "tracks": tracks, "clips": clips, "transitions": transitions}


def _load_sidecar(path: Path) -> dict | None:
    side = sidecar_path(path)
    if not side.exists():
        return None
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise InterchangeError(f"sidecar {side} is unreadable ({exc}); move it away to read {path.name} "
                               f"without its takes") from None
    if data.get("kind") != "takebridge-sidecar" or not isinstance(data.get("clips"), list):
        raise InterchangeError(f"{side} is not a TakeBridge sidecar")
    if data.get("schema", 0) > SIDECAR_SCHEMA:
        raise InterchangeError(f"sidecar {side} has schema {data['schema']}, newer than this TakeBridge reads "
                               f"({SIDECAR_SCHEMA}); update TakeBridge")
    return data


def restore_from_sidecar(timeline: otio.schema.Timeline, sidecar: dict) -> dict:
    """Put back what a single-media format lost: every clip's references, active take, source
    range, metadata, effects (speed changes, freezes) and markers, the transitions, track names
    and the start timecode.

    Clips match by video track and record range; where a format moved cuts (an EDL writes a
    dissolve as a cut point move) the clips of a track match in order when the names agree.
    Returns {restored, unmatched, missing}.
    """
    rate = exact_rate(sidecar.get("timeline_rate") or _timeline_rate(timeline))
    if timeline.global_start_time is None and sidecar.get("global_start") is not None:
        timeline.global_start_time = otio.opentime.RationalTime(sidecar["global_start"], float(rate))
    _restore_empty_tracks(timeline, sidecar.get("tracks", []), rate)
    video = list(timeline.video_tracks())
    for entry in sidecar.get("tracks", []):
        if entry["track"] <= len(video):
            video[entry["track"] - 1].name = entry["name"]
    by_place = {(c["track"], c["record_start"], c["record_duration"]): c for c in sidecar["clips"]}
    pairs, unmatched = [], []
    for number, track in enumerate(video, start=1):
        clips = [(i, item) for i, item in enumerate(track) if isinstance(item, otio.schema.Clip)]
        stored_clips = [c for c in sidecar["clips"] if c["track"] == number]
        placed = []
        for index, item in clips:
            rec = track.range_of_child_at_index(index)
            placed.append(by_place.get((number, frames_of(rec.start_time, rate), frames_of(rec.duration, rate))))
        if any(p is None for p in placed) and len(stored_clips) == len(clips) and \
                all(c["name"] == item.name for c, (_, item) in zip(stored_clips, clips)):
            placed = stored_clips  # same clips in the same order: the format moved a cut
        for (index, item), entry in zip(clips, placed):
            if entry is None:
                unmatched.append(item.name)
            else:
                pairs.append((item, entry))
    for item, entry in pairs:
        by_place.pop((entry["track"], entry["record_start"], entry["record_duration"]), None)
        stored = otio.adapters.read_from_string(json.dumps(entry["clip"]), "otio_json")
        item.name = stored.name
        item.source_range = stored.source_range
        item.set_media_references(stored.media_references(), stored.active_media_reference_key)
        for name, value in stored.metadata.items():
            item.metadata[name] = value
        if stored.effects and not item.effects:   # speed changes and freezes the format's writer dropped
            for effect in stored.effects:
                item.effects.append(effect.deepcopy())
        if stored.markers and not item.markers:   # markers (the AAF writer writes none)
            for marker in stored.markers:
                item.markers.append(marker.deepcopy())
    _restore_transitions(video, sidecar.get("transitions", []), rate)
    return {"restored": len(pairs), "unmatched": unmatched, "missing": [c["name"] for c in by_place.values()]}


def _restore_empty_tracks(timeline, tracks: list[dict], rate) -> None:
    """Formats drop video tracks without clips (AAF does); put them back where they were so
    the other tracks keep their numbers."""
    video = list(timeline.video_tracks())
    if len(video) >= len(tracks) or len(video) != sum(1 for t in tracks if t.get("clips", 1)):
        return
    stack = timeline.tracks
    for entry in tracks:
        if entry.get("clips", 1):
            continue
        empty = otio.schema.Track(name=entry["name"], kind=otio.schema.TrackKind.Video)
        if entry.get("frames"):
            empty.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                duration=otio.opentime.RationalTime(entry["frames"], float(rate)))))
        video = list(timeline.video_tracks())
        position = entry["track"] - 1
        if position < len(video):
            stack.insert(list(stack).index(video[position]), empty)
        else:
            stack.append(empty)


def _restore_transitions(video, transitions, rate) -> None:
    for entry in transitions:
        if entry["track"] > len(video) or entry["after_clip"] < 0:
            continue
        track = video[entry["track"] - 1]
        clips = [i for i, item in enumerate(track) if isinstance(item, otio.schema.Clip)]
        if entry["after_clip"] + 1 >= len(clips):
            continue
        left, right = clips[entry["after_clip"]], clips[entry["after_clip"] + 1]
        if right != left + 1 and not (right == left + 2 and isinstance(track[left + 1], otio.schema.Transition)):
            continue  # something else sits between them now: leave the cut as it is
        in_offset = otio.opentime.RationalTime(entry["in"], float(rate))
        out_offset = otio.opentime.RationalTime(entry["out"], float(rate))
        if right == left + 2:
            transition = track[left + 1]
            transition.in_offset, transition.out_offset = in_offset, out_offset
            transition.transition_type = entry["type"] or transition.transition_type
        else:
            track.insert(right, otio.schema.Transition(name=entry["name"], transition_type=entry["type"],
                                                       in_offset=in_offset, out_offset=out_offset))


# ---------------------------------------------------------------------------- Resolve shape

def resolve_shape(timeline: otio.schema.Timeline, *, probe: Probe | None = None,
                  warnings: list[str] | None = None) -> otio.schema.Timeline:
    """A copy shaped for Resolve's OTIO importer (see the module text). Media whose available
    range starts at 0 but carries a start timecode is moved to timecode-absolute frames when
    `probe` can read it."""
    warnings = warnings if warnings is not None else []
    out = timeline.deepcopy()
    rate = _timeline_rate(out)
    if out.global_start_time is None:
        out.global_start_time = otio.opentime.RationalTime(0, float(rate))
    out.metadata["Resolve_OTIO"] = {"Resolve OTIO Meta Version": "1.0"}
    for track in out.tracks:
        if track.kind == otio.schema.TrackKind.Audio:
            track.metadata["Resolve_OTIO"] = {"Audio Type": "Stereo", "Locked": False, "SoloOn": False}
        else:
            track.metadata["Resolve_OTIO"] = {"Locked": False}
    for clip in out.find_clips():
        references = clip.media_references()
        shift = 0
        for key, ref in references.items():
            if isinstance(ref, otio.schema.ImageSequenceReference):
                warnings.append(f"clip {clip.name!r}: reference {key!r} is an image sequence, which Resolve's OTIO "
                                f"import is reported to ignore; deliver that take as a movie")
                continue
            if not isinstance(ref, otio.schema.ExternalReference):
                warnings.append(f"clip {clip.name!r}: reference {key!r} has no media; Resolve shows it offline")
                continue
            ref.target_url = url_to_path(ref.target_url)
            had_range = ref.available_range is not None
            _ensure_available_range(clip, ref, probe, warnings)
            if key == ORIGINAL and had_range and probe is not None and os.path.exists(ref.target_url):
                start, _count, media_rate = probe(ref.target_url)
                current = frames_of(ref.available_range.start_time, media_rate)
                if current == 0 and start:
                    shift = start
                    ref.available_range = otio.opentime.TimeRange(
                        otio.opentime.RationalTime(start, ref.available_range.start_time.rate),
                        ref.available_range.duration)
        if shift and clip.source_range is not None:
            src = clip.source_range
            clip.source_range = otio.opentime.TimeRange(
                otio.opentime.RationalTime(src.start_time.value + shift, src.start_time.rate), src.duration)
            for key, ref in references.items():
                if key != ORIGINAL and ref.available_range is not None:
                    avail = ref.available_range
                    ref.available_range = otio.opentime.TimeRange(
                        otio.opentime.RationalTime(avail.start_time.value + shift, avail.start_time.rate),
                        avail.duration)
        clip.set_media_references(references, clip.active_media_reference_key)
        clip.enabled = True
        clip.metadata.setdefault("Resolve_OTIO", {})
    return out


def _timeline_rate(timeline: otio.schema.Timeline):
    return timeline_rate(timeline)
