"""`takebridge timeline ...`: ranges, takes and format conversion on timeline files, no server.

Every command reads a timeline file and, when it changes anything, writes a new one (-o),
atomically; the input is never modified unless -o names it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from .. import metadata
from ..interchange import InterchangeError, read_timeline, write_timeline
from ..selection import SelectionError, find_clip
from ..takes import activate, delete_take, finalize, list_takes, set_status
from ..timecode import from_timecode
from ..previs import REPLACED_TRACK, replace_previs
from ..timeline import clip_at, export_range, parse_point, range_jobs, timeline_rate
from .base import CliError

FORMAT_HELP = (".otio (OpenTimelineIO, takes included), .otioz (OTIO bundle with its media), .edl (CMX 3600), "
               ".xml (FCP 7 XML), .fcpxml (Final Cut Pro X), .aaf (Avid AAF); EDL, XML, FCPXML and AAF hold "
               "only the active take and get a .takebridge.json sidecar that brings the others back")


def add_parser(sub) -> None:
    timeline = sub.add_parser(
        "timeline", help="select ranges, switch and finalize takes, convert between editing formats",
        description="Work on timeline files without a server: export a range as jobs, list, activate, review, "
                    "delete and finalize takes, and convert between OTIO, EDL, FCP XML, FCPXML and AAF with the "
                    "takes kept. Formats: " + FORMAT_HELP + ".")
    tsub = timeline.add_subparsers(dest="timeline_command", required=True, metavar="ACTION")

    export = tsub.add_parser(
        "export-range", help="write the part of a track between in and out as RANGE.otio (one job per clip)",
        description="Trim video track N to [in, out) and write it with one job selection per clip segment. "
                    "In and out are timeline timecode (01:00:10:00, drop frame 00:59:59;28) or absolute frame "
                    "numbers, and include the timeline's start timecode; out is exclusive, as in an EDL.")
    export.add_argument("timeline", type=Path, help="input timeline (any format above)")
    export.add_argument("--track", type=int, required=True, help="video track number, V1 = 1")
    export.add_argument("--in", dest="in_point", required=True, help="first frame (timecode or frame number)")
    export.add_argument("--out", dest="out_point", required=True, help="frame after the last one (exclusive)")
    export.add_argument("--handles", type=int, default=0,
                        help="extra source frames each side of every segment, clamped to the media (default 0)")
    export.add_argument("-o", "--output", type=Path, required=True, help="RANGE.otio to write")
    _common(export)

    takes = tsub.add_parser("takes", help="list every clip's original and takes",
                            description="List clips with their takes: id, operation, review status, which one is "
                                        "active, and whether it still covers the frames the clip uses.")
    takes.add_argument("timeline", type=Path)
    _common(takes)

    for name, text in (("activate", "make a take (or 'original') the clip's active media"),
                       ("finalize", "make a take the clip's own media, original kept as 'original'"),
                       ("delete", "remove a take from the clip (its files stay on disk)"),
                       ("status", "set a take's review status")):
        action = tsub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        action.add_argument("timeline", type=Path)
        action.add_argument("--clip", help="clip name (or --track N --at TC, for names that repeat)")
        action.add_argument("--take", required=True, help="take id (e.g. sh010_v002), or 'original'")
        action.add_argument("--track", type=int, help="video track number, when several clips share the name")
        action.add_argument("--at", metavar="TC", help="with --track: the clip playing at this timeline timecode "
                                                       "(or frame), whatever its name")
        if name == "finalize":
            action.add_argument("--drop-others", action="store_true", help="remove the other takes from the clip")
        if name == "status":
            action.add_argument("--set", dest="status", required=True,
                                choices=["draft", "needs_review", "ok", "approved", "rejected"])
            action.add_argument("--note", default="", help="reviewer's note")
            action.add_argument("--reviewer", default="", help="who reviewed it")
        action.add_argument("-o", "--output", type=Path, required=True, help="timeline to write")
        _common(action)

    replace = tsub.add_parser(
        "replace-previs", help="cut real footage in over a pre-vis shot; the shot and its takes are kept",
        description="The footage arrives: it replaces the pre-vis shot frame for frame on its track, and the "
                    "shot, with all its takes, moves to a disabled track 'TakeBridge pre-vis (replaced)' at the "
                    "same place (kept in the project, out of the picture). `takebridge report --timeline` counts "
                    "pre-vis shots replaced.")
    replace.add_argument("timeline", type=Path)
    replace.add_argument("--clip", help="the pre-vis shot's name (or --track N --at TC)")
    replace.add_argument("--track", type=int, help="video track number")
    replace.add_argument("--at", metavar="TC", help="with --track: the shot playing at this timecode (or frame)")
    replace.add_argument("--media", type=Path, required=True, help="the footage (a movie or image sequence)")
    replace.add_argument("--source-in", help="first frame of the footage to use: its timecode or frame number "
                                             "(default: its first frame)")
    replace.add_argument("-o", "--output", type=Path, required=True, help="timeline to write")
    _common(replace)

    convert = tsub.add_parser("convert", help="convert a timeline between formats, takes kept",
                              description="Convert IN to OUT; formats come from the extensions: " + FORMAT_HELP
                                          + ". Reading such a file back restores the takes from its sidecar.")
    convert.add_argument("input", type=Path)
    convert.add_argument("output", type=Path)
    per_track = convert.add_mutually_exclusive_group()
    per_track.add_argument("--track", type=int, help="write video track N alone (an EDL holds one track)")
    per_track.add_argument("--all-tracks", action="store_true",
                           help="write one file per video track: OUT_V1.edl, OUT_V2.edl... (as Resolve and "
                                "Premiere export EDLs)")
    convert.add_argument("--resolve", action="store_true",
                         help="write .otio in the shape DaVinci Resolve's importer accepts (bare paths, available "
                              "range on every reference, timecode-absolute source ranges)")
    _common(convert)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", help="frame rate for formats that do not state one (EDL), e.g. 24000/1001 "
                                       "(default: the sidecar's, else the lowest standard rate the timecodes fit)")
    parser.add_argument("--json", action="store_true", help="print one JSON object for scripts")


def run(args) -> int:
    try:
        return ACTIONS[args.timeline_command](args)
    except (SelectionError, InterchangeError) as err:
        raise CliError(str(err))


def _read(args, path: Path):
    if not path.exists():
        raise CliError(f"timeline {path} not found")
    return read_timeline(path, rate=args.rate)


def _write(args, timeline, path: Path, **options) -> dict:
    return write_timeline(timeline, path, probe=_probe, **options)


# how media is read (the server's reader, server.media.probe): set by the `takebridge` entry point,
# so the core does not depend on the server; a client-only install refuses what needs it
MEDIA_PROBE = None


def _probe(path: str):
    """Media facts for the Resolve shape: (first frame from the start timecode, frames, rate)."""
    if MEDIA_PROBE is None:
        raise CliError(f"reading {path} needs TakeBridge's media reader, which comes with the server; "
                       f"run this where `takebridge serve` is installed")
    info = MEDIA_PROBE(path)
    start = from_timecode(info.start_timecode, info.rate) if info.start_timecode else 0
    return start, info.frame_count, info.rate


def cmd_export_range(args) -> int:
    timeline = _read(args, args.timeline)
    result = export_range(timeline, args.track, args.in_point, args.out_point, handles=args.handles)
    _write(args, result, args.output)

    info = metadata.read(result)["range"]
    jobs = range_jobs(result)
    _emit(args, {"output": str(args.output), "track": args.track, "in": info["in_timecode"],
                 "out": info["out_timecode"], "frames": info["out"] - info["in"],
                 "segments": info["segments"], "jobs": len(jobs)},
          "\n".join([f"{args.output}: V{args.track} {info['in_timecode']}..{info['out_timecode']} "
                     f"({info['out'] - info['in']} frames), {len(jobs)} job(s)"]
                    + [f"  {s['clip']:<20} record +{s['record_start']} ({s['record_duration']} frames)  source "
                       f"{s['source_start']}..{s['source_start'] + s['source_duration'] - 1} @ {s['rate']}  "
                       f"handles {s['head_handles']}/{s['tail_handles']}" for s in info["segments"]]))
    return 0


def cmd_takes(args) -> int:
    rows = list_takes(_read(args, args.timeline))
    if args.json:
        print(json.dumps({"timeline": str(args.timeline), "takes": [dataclasses.asdict(r) for r in rows]}, indent=2))
        return 0
    print(f"{'track':<6}{'clip':<18} {'take':<22} {'op':<9} {'status':<13} active  covers  media")
    for r in rows:
        print(f"V{r.track:<5}{r.clip:<18} {(r.take_id or r.key if r.key != 'DEFAULT_MEDIA' else r.take_id or 'original'):<22} "
              f"{r.operation:<9} {r.status:<13} {'  *' if r.active else '':<7} {'yes' if r.covers else 'NO':<7} "
              f"{r.media}")
    return 0


def _take_action(args, verb: str, change) -> int:
    timeline = _read(args, args.timeline)
    clip = change(timeline)
    _write(args, timeline, args.output)
    _emit(args, {"output": str(args.output), "clip": clip.name, "take": args.take, "action": verb,
                 "active": clip.active_media_reference_key},
          f"{verb} {args.take} on {clip.name}; active: {clip.active_media_reference_key}; wrote {args.output}")
    return 0


def _which(args, timeline):
    """The clip an action names: by its place (--track N --at TC) or by name (--clip)."""
    if args.at is not None:
        return clip_at(timeline, args.track or 1, args.at)
    if not args.clip:
        raise CliError("say which clip: --clip NAME, or --track N --at TC")
    return args.clip


def cmd_activate(args) -> int:
    return _take_action(args, "activated", lambda tl: activate(tl, _which(args, tl), args.take,
                                                               track_number=args.track))


def cmd_finalize(args) -> int:
    return _take_action(args, "finalized", lambda tl: finalize(tl, _which(args, tl), args.take,
                                                               drop_others=args.drop_others, track_number=args.track))


def cmd_delete(args) -> int:
    return _take_action(args, "deleted", lambda tl: delete_take(tl, _which(args, tl), args.take,
                                                                track_number=args.track))


def cmd_status(args) -> int:
    def change(tl):
        which = _which(args, tl)
        set_status(tl, which, args.take, args.status, note=args.note, reviewer=args.reviewer,
                   track_number=args.track)
        return which if not isinstance(which, str) else find_clip(tl, which, track_number=args.track,
                                                                   take_id=args.take)[0]

    return _take_action(args, f"marked {args.status}:", change)


def cmd_convert(args) -> int:
    timeline = _read(args, args.input)
    if args.all_tracks:
        count = len(list(timeline.video_tracks()))
        outputs = [(args.output.with_name(f"{args.output.stem}_V{n}{args.output.suffix}"), n) for n in range(1, count + 1)]
    else:
        outputs = [(args.output, args.track)]
    reports, lines = [], []
    for output, track in outputs:
        report = _write(args, timeline, output, resolve=args.resolve, track=track)
        text = f"wrote {output} ({report['format']}{f', V{track}' if track else ''})"
        if report.get("auditions"):
            text += f", the takes of {report['auditions']} clip(s) as Final Cut auditions"
        if report.get("sidecar"):
            held = "metadata and effects" if report.get("auditions") else \
                f"{report['takes_in_sidecar']} take(s) the format cannot hold"
            text += f" and {report['sidecar']} ({held})"
        lines += [text] + [f"warning: {warning}" for warning in report.get("warnings", [])]
        reports.append({**report, "track": track})
    data = {"input": str(args.input), **reports[0]} if len(reports) == 1 else {"input": str(args.input), "files": reports}
    _emit(args, data, "\n".join(lines))
    return 0


def _emit(args, data: dict, text: str) -> None:
    print(json.dumps(data) if args.json else text)


def cmd_replace_previs(args) -> int:
    timeline = _read(args, args.timeline)
    which = _which(args, timeline)
    shot = which if not isinstance(which, str) else find_clip(timeline, which, track_number=args.track)[0]
    media = str(args.media.resolve())
    first, frames, media_rate = _probe(media)
    source_in = first if args.source_in is None else parse_point(args.source_in, media_rate, what="--source-in")
    rate = timeline_rate(timeline)
    count = round(shot.duration().rescaled_to(float(rate)).value)
    needed = round(Fraction(count) * media_rate / rate)
    if not first <= source_in or source_in + needed > first + frames:
        raise CliError(f"{args.media} holds frames {first}..{first + frames - 1}; the shot needs {needed} from "
                       f"{source_in}: give another --source-in or longer footage")
    fps = float(media_rate)
    footage = otio.schema.Clip(
        name=args.media.stem, source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(source_in, fps),
                                                                   otio.opentime.RationalTime(needed, fps)),
        media_reference=otio.schema.ExternalReference(target_url=media, available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(first, fps), otio.opentime.RationalTime(frames, fps))))
    replace_previs(timeline, shot, footage)
    _write(args, timeline, args.output)
    _emit(args, {"output": str(args.output), "shot": shot.name, "footage": media, "source_in": source_in,
                 "frames": needed, "kept_on": REPLACED_TRACK, "takes_kept": len(shot.media_references())},
          f"{args.media.name} replaces pre-vis shot {shot.name} ({count} frames from {source_in}); the shot and its "
          f"{len(shot.media_references())} take(s) are kept on '{REPLACED_TRACK}'; wrote {args.output}")
    return 0


ACTIONS = {"export-range": cmd_export_range, "takes": cmd_takes, "activate": cmd_activate,
           "finalize": cmd_finalize, "delete": cmd_delete, "status": cmd_status, "convert": cmd_convert,
           "replace-previs": cmd_replace_previs}
