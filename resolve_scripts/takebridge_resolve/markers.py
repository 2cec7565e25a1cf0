"""Marker-driven mode, for the free edition (no UIManager since 19.1): put a marker on a clip
with a note such as

    tb extend 24            tb extend 12 head track
    tb refine 0.6           tb inpaint /path/to/matte.mov

run "TakeBridge Markers" once, and every marked clip is processed; each marker's colour then
says what happened — Green: take made and selected, Yellow: made but a quality gate flagged
it, Red: failed (the note says why) — and its note gets the take id. Running it again skips
the markers that already made a take (their note and custom data say so), unless asked to redo;
failed ones are tried again."""
from __future__ import annotations

import shlex

from .core import Options, ResolveError, context, run, video_items

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
    op, args = words[1].lower(), words[2:]
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
    raise ResolveError(f"marker {note!r}: {op!r} is not extend, refine or inpaint")


def marked_items(timeline) -> list[tuple[object, int, dict, Options]]:
    """(item, marker frame, marker, options) for every TakeBridge marker on a video clip;
    markers on the timeline over a clip count for that clip."""
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
        at = start + int(frame)
        under = [i for i in items if int(i.GetStart()) <= at < int(i.GetEnd())]
        if under:
            found.append((under[-1], None, {**marker, "timeline_frame": frame}, options))
    return found


def _parse_marker(marker: dict) -> Options | None:
    for text in (marker.get("note", ""), marker.get("name", "")):
        try:
            options = parse(text)
        except (ResolveError, ValueError):
            return Options(op="invalid", prompt=text)
        if options is not None:
            return options
    return None


def process(resolve, *, server: str = "127.0.0.1:50151", token: str = "", take_dir: str = "",
            redo: bool = False) -> list[dict]:
    """Run every marked clip; recolour each marker with its outcome. A marker that already made
    a take is skipped (reported as such) unless `redo`."""
    ctx = context(resolve)
    results = []
    for item, frame, marker, options in marked_items(ctx.timeline):
        note = marker.get("note", "").split(OUTCOME)[0]
        made = made_take(marker)
        if made and not redo:
            results.append({"item": item.GetName(), "state": "skipped", "take_id": made,
                            "marker_colour": marker.get("color", ""),
                            "error": f"already made take {made}; run with redo to make another"})
            continue
        if options.op == "invalid":
            outcome = {"item": item.GetName(), "state": "failed", "error": f"cannot read marker {options.prompt!r}"}
        else:
            options.take_dir = take_dir
            try:
                (outcome,) = run(resolve, options, server=server, token=token, items=[item])
            except (ResolveError, ValueError) as err:
                outcome = {"item": item.GetName(), "state": "failed", "error": str(err)}
            except Exception as err:  # a client error: report on the marker, go on with the others
                outcome = {"item": item.GetName(), "state": "failed", "error": str(err)}
        status = "failed" if outcome.get("state") != "succeeded" else outcome.get("status", "ok")
        colour = COLOURS.get(status, "Green")
        detail = outcome.get("take_id") or outcome.get("error", "")
        _recolour(ctx.timeline, item, frame, marker, colour, f"{note}{OUTCOME}{status}: {detail}"[:500],
                  f"{DATA}{status}:{outcome.get('take_id', '')}")
        results.append({**outcome, "marker_colour": colour})
    return results


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
