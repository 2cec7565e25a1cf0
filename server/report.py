"""`takebridge report`: the pilot report, from a server's store (read-only).

Per operation and overall: takes made, the resolution really delivered, latency (queue wait,
compute, total; median and p95), compute seconds, gate flags by reason, review outcomes and
rates, how often a flagged take was approved anyway (a possible wrong escalation: the gate
cried wolf), how often an unflagged take was rejected (a missed escalation: the gate should
have caught it), failed and cancelled jobs by reason, and the reviewers' notes.

Definitions (the test counts them by hand the same way):
* a take's review outcome is its latest review; "reviewed" = has at least one review;
* approval rate = approved / reviewed, rejection rate = rejected / reviewed;
* flagged = its gates flagged it when it was made (status needs_review at creation);
* approved_despite_flags = flagged and latest review approves;
* missed_escalations = not flagged and any review rejects it (incl. approved, later rejected).
"""
from __future__ import annotations

import datetime as dt
import html
import json
import math
import sqlite3
from collections import Counter
from pathlib import Path

from bridge.api import pb
from server.jobstore import DB_NAME

OPERATIONS = ("refine", "extend", "inpaint", "generate")


class ReportError(ValueError):
    pass


def parse_since(text: str | None) -> int:
    """ms since the epoch of a date (YYYY-MM-DD) or ISO time; 0 without one."""
    if not text:
        return 0
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(f"--since {text!r} is not a date; write 2026-11-24 or 2026-11-24T09:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp() * 1000)


def _connect(store: Path) -> sqlite3.Connection:
    path = Path(store) / DB_NAME
    if not path.exists():
        raise ReportError(f"no TakeBridge store at {store} (no {DB_NAME}); pass the folder given to "
                          f"`takebridge serve --store`")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def build_report(store: Path, since: str | None = None, timelines: list[Path] = ()) -> dict:
    """The report of a store; `timelines` (the project's cuts) add the pre-vis count: shots
    Generate made, and how many real footage has replaced (bridge.previs.replace_previs)."""
    since_ms = parse_since(since)
    db = _connect(store)
    try:
        # stores made before a column existed are read as they are (the report never writes)
        metrics = "metrics" if _has_column(db, "takes", "metrics") else "'{}'"
        compute = "compute_ms" if _has_column(db, "jobs", "compute_ms") else "0"
        takes = db.execute(f"SELECT take_id, take, created_ms, {metrics} FROM takes WHERE created_ms >= ? "
                           "ORDER BY created_ms", (since_ms,)).fetchall()
        reviews = db.execute("SELECT take_id, approve, note, reviewer, time_ms FROM reviews ORDER BY time_ms, rowid"
                             ).fetchall()
        jobs = db.execute(f"SELECT operation, state, error_code, {compute} FROM jobs WHERE created_ms >= ?",
                          (since_ms,)).fetchall()
    finally:
        db.close()
    by_take: dict[str, list] = {}
    for take_id, approve, note, reviewer, time_ms in reviews:
        by_take.setdefault(take_id, []).append({"approve": bool(approve), "note": note, "reviewer": reviewer,
                                                "time_ms": time_ms})
    rows = []
    for take_id, blob, created_ms, metrics in takes:
        take = pb.Take.FromString(blob)
        m = json.loads(metrics or "{}") or _metrics_from_manifest(take)
        history = by_take.get(take_id, [])
        rows.append({
            "take_id": take_id, "op": m.get("operation") or pb.Operation.Name(take.operation).lower(),
            "created_ms": created_ms, "flagged": m.get("status_at_creation") == "needs_review" or bool(take.flags),
            "flags": m.get("flagged_gates", [f.split(":")[0] for f in take.flags]),
            "generated": tuple(m.get("generated", (take.media.width, take.media.height))),
            "delivered": tuple(m.get("delivered", (take.media.width, take.media.height))),
            "queue_wait_s": m.get("queue_wait_s"), "compute_s": m.get("compute_s"), "total_s": m.get("total_s"),
            "reviews": history, "generate": m.get("generate"), "tier": m.get("tier") or "final",
            "promoted_from": m.get("promoted_from") or "",
        })
    report = {"store": str(store), "since": since, "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(
        timespec="seconds"), "overall": _summary(rows), "operations": {}}
    for op in OPERATIONS:
        report["operations"][op] = _summary([r for r in rows if r["op"] == op])
    job_ops = {v: k.lower() for k, v in pb.Operation.items()}
    failures = Counter()
    for operation, state, error_code, compute_ms in jobs:
        if state in (pb.FAILED, pb.CANCELLED):
            failures[(job_ops.get(operation, "?"), pb.JobState.Name(state).lower(), error_code or "cancelled")] += 1
    report["jobs"] = {
        "total": len(jobs),
        "succeeded": sum(1 for j in jobs if j[1] == pb.SUCCEEDED),
        "failed": sum(1 for j in jobs if j[1] == pb.FAILED),
        "cancelled": sum(1 for j in jobs if j[1] == pb.CANCELLED),
        "compute_seconds_all_attempts": round(sum(j[3] for j in jobs) / 1000, 3),
        "failures": [{"operation": op, "state": state, "reason": reason, "count": n}
                     for (op, state, reason), n in sorted(failures.items())],
    }
    report["notes"] = [{"take_id": r["take_id"], "operation": r["op"], **{k: v for k, v in rev.items()
                                                                         if k != "time_ms"},
                        "time": dt.datetime.fromtimestamp(rev["time_ms"] / 1000, dt.timezone.utc).isoformat(
                            timespec="seconds")}
                       for r in rows for rev in r["reviews"] if rev["note"]]
    made = Counter(f"{r['generate'].get('mode')} ({r['generate'].get('kind')})" for r in rows if r.get("generate"))
    report["generate_by_mode"] = dict(sorted(made.items()))
    report["tiers"] = {"draft": sum(r["tier"] == "draft" for r in rows), "final": sum(r["tier"] != "draft" for r in rows),
                       "finals_from_drafts": sum(bool(r["promoted_from"]) for r in rows),
                       "drafts_promoted": len({r["promoted_from"] for r in rows if r["promoted_from"]})}
    report["previs"] = _previs(timelines) if timelines else None
    return report


def _previs(timelines: list[Path]) -> dict:
    from bridge.interchange import InterchangeError, read_timeline
    from bridge.previs import previs_summary

    total = {"timelines": [], "shots": 0, "replaced": 0, "takes": 0, "replaced_shots": [], "open_shots": []}
    for path in timelines:
        try:
            summary = previs_summary(read_timeline(Path(path)))
        except InterchangeError as err:
            raise ReportError(str(err)) from None
        total["timelines"].append(str(path))
        for key in ("shots", "replaced", "takes"):
            total[key] += summary[key]
        total["replaced_shots"] += summary["replaced_shots"]
        total["open_shots"] += summary["open_shots"]
    return total


def _has_column(db, table: str, column: str) -> bool:
    return any(row[1] == column for row in db.execute(f"PRAGMA table_info({table})"))


def _metrics_from_manifest(take) -> dict:
    """The same figures from a take's manifest, for takes recorded before the store kept them."""
    try:
        data = json.loads(Path(take.manifest_url).read_text())
    except (OSError, ValueError):
        return {}
    resolution = data.get("resolution", {})
    generated, delivered = resolution.get("generated", {}), resolution.get("delivered", {})
    job = data.get("job", {})
    return {"operation": data.get("operation"), "generated": [generated.get("width"), generated.get("height")],
            "delivered": [delivered.get("width"), delivered.get("height")],
            "queue_wait_s": data.get("queue_wait_seconds"),
            "compute_s": round(sum(data.get("timings_seconds", {}).values()), 3),
            "total_s": None if not job else round((take.created_unix_ms - job.get("created_unix_ms", 0)) / 1000, 3),
            "flagged_gates": [g["name"] for g in data.get("gates", []) if g.get("verdict") == "flag"],
            "status_at_creation": "needs_review" if take.flags else "ok"}


def _summary(rows: list[dict]) -> dict:
    reviewed = [r for r in rows if r["reviews"]]
    approved = [r for r in reviewed if r["reviews"][-1]["approve"]]
    rejected = [r for r in reviewed if not r["reviews"][-1]["approve"]]
    flagged = [r for r in rows if r["flagged"]]
    resolution = Counter(f"{r['delivered'][0]}x{r['delivered'][1]}" for r in rows)
    upscaled = [r for r in rows if tuple(r["generated"]) != tuple(r["delivered"])]

    def stats(key):
        values = [r[key] for r in rows if r[key] is not None]
        return {"median": _round(percentile(values, 50)), "p95": _round(percentile(values, 95)), "n": len(values)}

    return {
        "takes": len(rows),
        "delivered_resolution": dict(sorted(resolution.items())),
        "upscaled": len(upscaled),
        "native": len(rows) - len(upscaled),
        "latency_seconds": {"queue_wait": stats("queue_wait_s"), "compute": stats("compute_s"),
                            "total": stats("total_s")},
        "compute_seconds": _round(sum(r["compute_s"] or 0 for r in rows)),
        "flagged": len(flagged),
        "flags_by_reason": dict(sorted(Counter(f for r in rows for f in r["flags"]).items())),
        "reviewed": len(reviewed),
        "approved": len(approved),
        "rejected": len(rejected),
        "approval_rate": _round(len(approved) / len(reviewed)) if reviewed else None,
        "rejection_rate": _round(len(rejected) / len(reviewed)) if reviewed else None,
        "approved_despite_flags": len([r for r in approved if r["flagged"]]),
        "missed_escalations": len([r for r in rows if not r["flagged"]
                                   and any(not rev["approve"] for rev in r["reviews"])]),
        "unreviewed": len(rows) - len(reviewed),
    }


def _round(value):
    return None if value is None else round(value, 3)


# ------------------------------------------------------------------------------------ text

def to_text(report: dict) -> str:
    lines = [f"TakeBridge pilot report — {report['store']}" + (f" since {report['since']}" if report["since"] else ""),
             ""]
    header = f"{'':<26}{'overall':>10}" + "".join(f"{op:>10}" for op in OPERATIONS)
    lines.append(header)
    sections = [report["overall"]] + [report["operations"][op] for op in OPERATIONS]

    def row(label, get):
        lines.append(f"{label:<26}" + "".join(f"{_fmt(get(s)):>10}" for s in sections))

    row("takes", lambda s: s["takes"])
    row("native / upscaled", lambda s: f"{s['native']}/{s['upscaled']}")
    for key in ("queue_wait", "compute", "total"):
        row(f"{key} s (median)", lambda s, k=key: s["latency_seconds"][k]["median"])
        row(f"{key} s (p95)", lambda s, k=key: s["latency_seconds"][k]["p95"])
    row("compute s (sum)", lambda s: s["compute_seconds"])
    row("flagged by gates", lambda s: s["flagged"])
    row("reviewed", lambda s: s["reviewed"])
    row("approved", lambda s: s["approved"])
    row("rejected", lambda s: s["rejected"])
    row("approval rate", lambda s: s["approval_rate"])
    row("approved despite flags", lambda s: s["approved_despite_flags"])
    row("missed escalations", lambda s: s["missed_escalations"])
    lines.append("")
    flags = report["overall"]["flags_by_reason"]
    lines.append("gate flags: " + (", ".join(f"{k} {v}" for k, v in flags.items()) or "none"))
    lines.append("resolution delivered: " + (", ".join(f"{k} x{v}" for k, v in
                                                     report["overall"]["delivered_resolution"].items()) or "-"))
    jobs = report["jobs"]
    lines.append(f"jobs: {jobs['total']} ({jobs['succeeded']} succeeded, {jobs['failed']} failed, "
                 f"{jobs['cancelled']} cancelled); compute over all attempts {jobs['compute_seconds_all_attempts']} s")
    for f in jobs["failures"]:
        lines.append(f"  {f['operation']} {f['state']}: {f['reason']} x{f['count']}")
    tiers = report.get("tiers") or {}
    if tiers.get("draft"):
        lines.append(f"tiers: {tiers['draft']} draft take(s), {tiers['final']} final; {tiers['finals_from_drafts']} "
                     f"final(s) made from {tiers['drafts_promoted']} draft(s)")
    if report.get("generate_by_mode"):
        lines.append("generated shots by mode (what made them): " + ", ".join(
            f"{k} x{v}" for k, v in report["generate_by_mode"].items()))
    if report.get("previs"):
        previs = report["previs"]
        lines.append(f"pre-vis shots: {previs['shots']} on {len(previs['timelines'])} timeline(s), "
                     f"{previs['replaced']} replaced by footage, {previs['shots'] - previs['replaced']} still pre-vis "
                     f"({previs['takes']} takes kept)")
    if report["notes"]:
        lines.append("")
        lines.append("reviewers' notes:")
        for note in report["notes"]:
            verdict = "approved" if note["approve"] else "rejected"
            lines.append(f"  {note['take_id']} {verdict} by {note['reviewer'] or 'someone'}: {note['note']}")
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 1000 else f"{value:.0f}"
    return str(value)


# ------------------------------------------------------------------------------------ HTML

def to_html(report: dict) -> str:
    """One self-contained page: tables and inline SVG plots (no scripts, no network)."""
    ops = ["overall", *OPERATIONS]
    sections = {"overall": report["overall"], **report["operations"]}
    latency = _grouped_bars(
        "Latency (seconds): median and p95", ops,
        [(f"{key} {stat}", [sections[op]["latency_seconds"][key][stat] or 0 for op in ops])
         for key in ("queue_wait", "compute", "total") for stat in ("median", "p95")])
    outcomes = _grouped_bars("Review outcomes (takes)", ops,
                             [(name, [sections[op][name] for op in ops])
                              for name in ("approved", "rejected", "unreviewed", "flagged")])
    flags = report["overall"]["flags_by_reason"]
    flag_plot = _grouped_bars("Gate flags by reason", list(flags) or ["none"], [("takes", list(flags.values()) or [0])])
    table = "".join(
        f"<tr><th>{html.escape(label)}</th>" + "".join(f"<td>{html.escape(_fmt(get(sections[op])))}</td>"
                                                    for op in ops) + "</tr>"
        for label, get in [
            ("takes", lambda s: s["takes"]), ("native / upscaled", lambda s: f"{s['native']}/{s['upscaled']}"),
            ("queue wait s, median / p95", lambda s: f"{_fmt(s['latency_seconds']['queue_wait']['median'])} / "
                                                     f"{_fmt(s['latency_seconds']['queue_wait']['p95'])}"),
            ("compute s, median / p95", lambda s: f"{_fmt(s['latency_seconds']['compute']['median'])} / "
                                                  f"{_fmt(s['latency_seconds']['compute']['p95'])}"),
            ("total s, median / p95", lambda s: f"{_fmt(s['latency_seconds']['total']['median'])} / "
                                               f"{_fmt(s['latency_seconds']['total']['p95'])}"),
            ("compute s (sum)", lambda s: s["compute_seconds"]), ("flagged", lambda s: s["flagged"]),
            ("reviewed", lambda s: s["reviewed"]), ("approval rate", lambda s: s["approval_rate"]),
            ("rejection rate", lambda s: s["rejection_rate"]),
            ("approved despite flags", lambda s: s["approved_despite_flags"]),
            ("missed escalations", lambda s: s["missed_escalations"])])
    notes = "".join(f"<li><b>{html.escape(n['take_id'])}</b> {'approved' if n['approve'] else 'rejected'} by "
                    f"{html.escape(n['reviewer'] or 'someone')} ({html.escape(n['time'])}): {html.escape(n['note'])}</li>"
                    for n in report["notes"]) or "<li>none</li>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>TakeBridge pilot report</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}th{{text-align:left;background:#f4f4f4}}
svg{{margin:1em 0;background:#fafafa}}</style></head><body>
<h1>TakeBridge pilot report</h1><p>store {html.escape(report['store'])}{' since ' + html.escape(report['since'])
    if report['since'] else ''} · made {html.escape(report['generated_at'])}</p>
<table><tr><th></th>{''.join(f'<th>{op}</th>' for op in ops)}</tr>{table}</table>
{latency}{outcomes}{flag_plot}
<h2>Reviewers' notes</h2><ul>{notes}</ul>
<p>Jobs: {report['jobs']['total']} ({report['jobs']['succeeded']} succeeded, {report['jobs']['failed']} failed,
{report['jobs']['cancelled']} cancelled).</p></body></html>"""


PALETTE = ["#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d", "#e15759", "#b07aa1"]


def _grouped_bars(title: str, groups: list[str], series: list[tuple[str, list[float]]]) -> str:
    width, height, left, bottom = 900, 260, 50, 40
    top = max([v for _, values in series for v in values] + [1e-9])
    group_w = (width - left - 10) / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, len(series))
    parts = [f'<svg width="{width}" height="{height + 40}" role="img"><title>{html.escape(title)}</title>',
             f'<text x="{left}" y="16" font-weight="bold">{html.escape(title)}</text>']
    for g, group in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        for s, (name, values) in enumerate(series):
            value = values[g] if g < len(values) else 0
            h = (height - bottom - 30) * value / top
            x = x0 + s * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar_w * 0.9:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[s % len(PALETTE)]}"><title>{html.escape(name)}: {_fmt(value)}</title></rect>')
        parts.append(f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                     f'{html.escape(group)}</text>')
    for s, (name, _) in enumerate(series):
        parts.append(f'<rect x="{left + s * 110}" y="{height + 8}" width="10" height="10" '
                     f'fill="{PALETTE[s % len(PALETTE)]}"/><text x="{left + s * 110 + 14}" y="{height + 17}" '
                     f'font-size="11">{html.escape(name)}</text>')
    parts.append(f'<text x="4" y="{height - bottom}" font-size="11">0</text>'
                 f'<text x="4" y="40" font-size="11">{_fmt(top)}</text></svg>')
    return "".join(parts)
