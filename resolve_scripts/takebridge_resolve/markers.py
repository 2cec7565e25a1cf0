"""Marker-driven mode, for the free edition (no UIManager since 19.1): put a marker on a clip
with a note such as

    tb extend 24            tb extend 12 head track
    tb refine 0.6           tb inpaint /path/to/matte.mov
    tb refine 0.6 draft     (any marker: `draft` asks for the model's few-step draft tier)

or, for Generate, a timeline marker in a gap:

    tb generate 72 "harbour at dawn"        tb generate "harbour at dawn" camera=push_in burn-in

(72 frames from the marker's frame; without a number the marker's own duration when it has one,
else the whole gap it is in; V2 for another track than V1, shot=NAME, mode=, camera=, amount=,
image=; a marker on a clip is refused naming it, frames that run into the next clip go on the
TakeBridge track; a `tb generate` marker on a pre-vis shot makes another take of it).
Any marker may name a shot contract, `contract=/full/path/shot.toml`: its fields go with the job
except where the marker's own words say otherwise (its duration is a generated shot's length;
a characters.toml beside it is the character library). Then
run "TakeBridge Markers" once, and every marked clip is processed; each marker's colour then
says what happened — Green: take made and selected, Yellow: made but a quality gate flagged
it, Red: failed (the note says why) — and its note gets the take id. Running it again skips
the markers that already made a take (their note and custom data say so), unless asked to redo;
failed ones are tried again."""
from __future__ import annotations

import dataclasses
import os
import re
import shlex

from .bridge_import import tb
from .core import (Options, ResolveError, Shot, context, generate, has, previs_meta, read_contract, run,
                   timecode_of, video_items)

PREFIX = "tb"
COLOURS = {"ok": "Green", "needs_review": "Yellow", "failed": "Red"}
OUTCOME = " -> "           # what a processed marker's note has after the command
DATA = "takebridge:"       # a processed marker's customData: takebridge:<status>:<take id>
MADE = ("ok", "needs_review")


def parse(note: str) -> Options | None:
    """Options from a marker note, None when it is not a TakeBridge marker."""
    try:
        words = shlex.split((note or "").split(OUTCOME)[0])
    except ValueError:
        return None
    if len(words) < 2 or words[0].lower() != PREFIX:
        return None
    op, (args, contract_file) = words[1].lower(), _contract_word(words[2:])
    args, tier = _tier_word(note, args)
    options = _parse_words(note, op, args)
    options.tier = tier
    return _with_contract(options, contract_file) if contract_file else options


def _tier_word(note: str, args: list[str]) -> tuple[list[str], str]:
    """The words without `draft` (or `tier=draft|final`), and the tier they ask ("" = final)."""
    rest, tier = [], ""
    for word in args:
        key, eq, value = word.partition("=")
        if word.lower() == "draft":
            tier = "draft"
        elif eq and key.lower() == "tier":
            if value.lower() not in ("draft", "final"):
                raise ResolveError(f"marker {note!r}: tier={value} is not draft or final")
            tier = value.lower()
        else:
            rest.append(word)
    return rest, tier


def _contract_word(args: list[str]) -> tuple[list[str], str]:
    """The words without `contract=PATH`, and PATH ("" = none)."""
    rest, path = [], ""
    for word in args:
        key, eq, value = word.partition("=")
        if eq and key.lower() == "contract":
            path = value
        else:
            rest.append(word)
    return rest, path


def _with_contract(options: Options, path: str) -> Options:
    """The contract's fields, except where the marker's words gave their own (those win)."""
    path = os.path.expanduser(path)
    if not os.path.isabs(path):
        raise ResolveError(f"contract={path}: give the contract file's full path (Resolve has no project folder)")
    merged = tb.contract.apply_contract(options, read_contract(path))
    defaults = Options(op=options.op)
    for field in dataclasses.fields(Options):
        mine = getattr(options, field.name)
        if mine != getattr(defaults, field.name):
            setattr(merged, field.name, mine)
    merged.contract_file = path
    return merged


def _parse_words(note: str, op: str, args: list[str]) -> Options:
    if op == "extend":
        options = Options(op="extend", frames=int(args[0]) if args else 24)
        for word in args[1:]:
            if word in ("head", "tail"):
                options.side = word
            elif word in ("gap", "track"):
                options.placement = word
        return options
    if op == "refine":
        return Options(op="refine", strength=float(args[0]) if args else 0.5)
    if op == "inpaint":
        return Options(op="inpaint", mask=args[0] if args else "")
    if op == "generate":
        return _generate_words(note, args)[0]
    raise ResolveError(f"marker {note!r}: {op!r} is not extend, refine, inpaint or generate")


_TRACK = re.compile(r"^[vV](\d+)$")
_SETTINGS = {"mode": "mode", "camera": "camera", "amount": "camera_amount", "image": "image"}


def _generate_words(note: str, args: list[str]) -> tuple[Options, int, str]:
    """(options, video track, shot name) of `tb generate [N] [prompt...] [V2] [shot=NAME]
    [mode=M] [camera=C] [amount=A] [image=FILE] [burn-in]`."""
    options, track, shot, prompt = Options(op="generate"), 1, "", []
    for word in args:
        key, eq, value = word.partition("=")
        if word.isdigit() and not prompt and not options.duration:
            options.duration = int(word)
            if options.duration <= 0:
                raise ResolveError(f"marker {note!r}: a shot needs at least 1 frame")
        elif _TRACK.match(word):
            track = int(_TRACK.match(word).group(1))
        elif eq and key.lower() == "track":
            track = int(value)
        elif eq and key.lower() == "shot":
            shot = value
        elif eq and key.lower() in _SETTINGS:
            field = _SETTINGS[key.lower()]
            setattr(options, field, float(value) if field == "camera_amount" else
                    value.replace("-", "_") if field == "camera" else value)
        elif word.lower() in ("burn-in", "burnin", "burn_in"):
            options.burn_in = True
        else:
            prompt.append(word)
    options.prompt = " ".join(prompt)
    if options.mode == "auto":
        options.mode = ""
    return options, track, shot


def generate_place(note: str) -> tuple[int, str]:
    """The video track and shot name a `tb generate` marker note asks for."""
    words = shlex.split((note or "").split(OUTCOME)[0])
    _, track, shot = _generate_words(note, _tier_word(note, _contract_word(words[2:])[0])[0])
    return track, shot


def marked_items(timeline) -> list[tuple[object, int, dict, Options]]:
    """(item, marker frame, marker, options) for every TakeBridge marker on a video clip;
    markers on the timeline over a clip count for that clip; `tb generate` markers on the
    timeline count for the place they are at (item None: a gap, or a clip they are refused on),
    and so do unreadable ones in a gap."""
    found = []
    items = video_items(timeline)
    for item in items:
        for frame, marker in (item.GetMarkers() or {}).items():
            options = _parse_marker(marker)
            if options is not None:
                found.append((item, frame, marker, options))
    start = int(timeline.GetStartFrame())
    for frame, marker in (timeline.GetMarkers() or {}).items():
        options = _parse_marker(marker)
        if options is None:
            continue
        if options.op == "generate":
            found.append((None, None, {**marker, "timeline_frame": frame}, options))
            continue
        at = start + int(frame)
        under = [i for i in items if int(i.GetStart()) <= at < int(i.GetEnd())]
        if under:
            found.append((under[-1], None, {**marker, "timeline_frame": frame}, options))
        elif options.op == "invalid":     # unreadable, in a gap: it turns red there, saying why
            found.append((None, None, {**marker, "timeline_frame": frame}, options))
    return found


def _parse_marker(marker: dict) -> Options | None:
    for text in (marker.get("note", ""), marker.get("name", "")):
        try:
            options = parse(text)
        except (tb.errors.TakeBridgeError, ValueError) as err:   # (purpose: why, for the marker's note)
            return Options(op="invalid", prompt=text, purpose=str(err))
        if options is not None:
            return options
    return None


def _command(marker: dict) -> str:
    """The marker's TakeBridge command: its note, else its name."""
    note = marker.get("note", "")
    try:
        return note if parse(note) is not None else marker.get("name", "")
    except (tb.errors.TakeBridgeError, ValueError):
        return note


def process(resolve, *, server: str = "127.0.0.1:50151", token: str = "", take_dir: str = "",
            redo: bool = False) -> list[dict]:
    """Run every marked clip; recolour each marker with its outcome. A marker that already made
    a take is skipped (reported as such) unless `redo`."""
    ctx = context(resolve)
    results = []
    for item, frame, marker, options in marked_items(ctx.timeline):
        note = marker.get("note", "").split(OUTCOME)[0]
        name = item.GetName() if item is not None else \
            f"marker at {timecode_of(ctx, ctx.start_frame + int(marker['timeline_frame']))}"
        made = made_take(marker)
        if made and not redo:
            results.append({"item": name, "state": "skipped", "take_id": made,
                            "marker_colour": marker.get("color", ""),
                            "error": f"already made take {made}; run with redo to make another"})
            continue
        if options.op == "invalid":
            outcome = {"item": name, "state": "failed", "error": f"cannot read marker {options.prompt!r}"
                                                                  + (f": {options.purpose}" if options.purpose else "")}
        else:
            options.take_dir = take_dir or options.take_dir
            try:
                if options.op == "generate":
                    (outcome,) = generate(resolve, options, server=server, token=token,
                                          shots=[_marker_shot(ctx, item, marker, options)])
                else:
                    (outcome,) = run(resolve, options, server=server, token=token, items=[item])
            except (ResolveError, ValueError) as err:
                outcome = {"item": name, "state": "failed", "error": str(err)}
            except Exception as err:  # a client error: report on the marker, go on with the others
                outcome = {"item": name, "state": "failed", "error": str(err)}
        status = "failed" if outcome.get("state") != "succeeded" else outcome.get("status", "ok")
        colour = COLOURS.get(status, "Green")
        detail = outcome.get("take_id") or outcome.get("error", "")
        _recolour(ctx.timeline, item, frame, marker, colour, f"{note}{OUTCOME}{status}: {detail}"[:500],
                  f"{DATA}{status}:{outcome.get('take_id', '')}")
        results.append({**outcome, "marker_colour": colour})
    return results


def _marker_shot(ctx, item, marker: dict, options: Options) -> Shot:
    """Where a `tb generate` marker's shot goes. On the timeline: N frames from the marker's
    frame (else its duration when it has one, else the whole gap it is in) on V1 (or the track
    the note names), spilling onto the TakeBridge track when they run into the next clip. On a
    pre-vis item: another take over exactly that item; on another clip: refused."""
    track, shot = generate_place(_command(marker))
    if item is not None:
        if not previs_meta(item):
            raise ResolveError(f"'tb generate' goes on a timeline marker in a gap (or on a pre-vis shot), not on "
                               f"clip {item.GetName()!r}")
        if has(item, "GetTrackTypeAndIndex"):
            track = int(item.GetTrackTypeAndIndex()[1])
        return Shot(track=track, first=int(item.GetStart()), last=int(item.GetEnd()), name=shot)
    at = ctx.start_frame + int(marker["timeline_frame"])
    count = int(options.duration)
    if not count and int(marker.get("duration") or 1) > 1:    # a marker with a length: the shot's
        count = int(marker["duration"])
    return Shot(track=track, first=at, last=at + count if count else None, name=shot, what="the marker",
                length_hint='give the shot\'s length: tb generate N "prompt"', spill=True)


def made_take(marker: dict) -> str:
    """The take id a processed marker made ("" when it made none): from its custom data, or
    from its note for markers whose custom data was lost."""
    data = str(marker.get("customData", ""))
    if data.startswith(DATA):
        status, _, take_id = data[len(DATA):].partition(":")
        return take_id if status in MADE and take_id else ""
    _, _, outcome = str(marker.get("note", "")).partition(OUTCOME)
    status, _, take_id = outcome.partition(": ")
    return take_id.strip() if status.strip() in MADE else ""


def _recolour(timeline, item, frame, marker, colour: str, note: str, data: str) -> None:
    owner, at = (item, frame) if frame is not None else (timeline, marker["timeline_frame"])
    owner.DeleteMarkerAtFrame(at)
    owner.AddMarker(at, colour, marker.get("name", "TakeBridge"), note, int(marker.get("duration", 1)), data)
