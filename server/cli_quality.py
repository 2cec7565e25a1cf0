"""`takebridge check | rerender | report`: controlled iteration from the command line (review, a
client command, is in bridge/console/jobs.py).

Exit codes as everywhere: 0 fine, 1 the take needs review / differs / was not made, 2 bad
input, 3 no server.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from bridge.console.base import (
    EXIT_JOB_FAILED,
    EXIT_OK,
    CliError,
)
from bridge.console.progress_bar import ProgressBar
from server.check import CheckError, check_media
from server.errors import JobError
from server.media import MediaError
from server.report import ReportError, build_report, to_html, to_text
from server.rerender import RerenderError, rerender
from server.takestore import write_text_atomic


def add_parsers(sub) -> None:
    check = sub.add_parser(
        "check", help="run the quality gates on any source and take (exit 1 if a gate flags it)",
        description="Run the server's quality gates (seam, mask fidelity, flicker, conformance, real resolution) "
                    "on a source and a take on disk, made by TakeBridge or anything else. Frames line up by "
                    "timecode when both files have one. Exit 0: every gate passes; 1: needs review.")
    check.add_argument("--op", required=True, choices=["refine", "extend", "inpaint"])
    check.add_argument("--source", required=True, type=Path, help="the source range as a movie or image sequence")
    check.add_argument("--take", required=True, type=Path, help="the take to audit")
    check.add_argument("--mask", type=Path, help="inpaint: the mask the take was made with (white = regenerated)")
    check.add_argument("--side", choices=["head", "tail"], help="extend: which end was extended (default: from "
                                                                "the timecodes)")
    check.add_argument("--frames", type=int, help="extend: how many frames were asked for (checks the count)")
    check.add_argument("--expect-frames", type=int, help="the take's expected frame count, if not the source's")
    check.add_argument("--threshold", action="append", default=[], metavar="GATE=VALUE",
                       help="override a gate threshold, e.g. seam=2.5 (repeatable)")
    check.add_argument("--json", action="store_true")

    rerender = sub.add_parser(
        "rerender", help="make a take again from its manifest; --verify compares the pixels",
        description="Re-run a take from its manifest on this machine, without a server: same request, seed, "
                    "backend and inputs (their sha256 is checked first). With --verify the new take is compared "
                    "with the stored one pixel by pixel: exit 0 if identical, 1 if not (the difference and what "
                    "changed, e.g. device or library versions, are reported).")
    rerender.add_argument("manifest", type=Path, help="<take>.manifest.json beside the take")
    rerender.add_argument("--out", type=Path, help="folder for the re-rendered take (default: a temp folder)")
    rerender.add_argument("--verify", action="store_true", help="compare with the stored take")
    rerender.add_argument("--models", type=Path, help="diffusers takes: the model profile that describes the take's "
                                                      "model (default: the catalog and the Hugging Face cache)")
    rerender.add_argument("--device", default="auto", help="diffusers takes: auto, cuda or cpu")
    rerender.add_argument("--json", action="store_true")

    report = sub.add_parser(
        "report", help="the pilot report: takes, latency, gate flags, review outcomes, notes",
        description="Summarise a server's store: per operation and overall, takes made, resolution delivered, "
                    "latency (queue wait, compute, total: median and p95), compute seconds, gate flags by reason, "
                    "approval and rejection rates, flagged takes approved anyway, unflagged takes rejected, "
                    "failed jobs and the reviewers' notes. --html writes a page with plots.")
    report.add_argument("--store", type=Path, default=Path(os.environ.get("TAKEBRIDGE_STORE", "takebridge_store")),
                        help="the server's --store folder (default ./takebridge_store)")
    report.add_argument("--since", help="only takes made from this date (2026-11-24 or 2026-11-24T09:00, UTC)")
    report.add_argument("--html", type=Path, help="also write an HTML page with plots here")
    report.add_argument("--timeline", type=Path, action="append", default=[],
                        help="a cut of the project (any format; repeat for several): counts the pre-vis shots "
                             "Generate made and how many footage has replaced")
    report.add_argument("--json", action="store_true")


def cmd_check(args) -> int:
    thresholds = _thresholds(args.threshold)
    try:
        result = check_media(args.op, str(args.source), str(args.take), mask_path=str(args.mask) if args.mask else None,
                             side=args.side, frames=args.frames, expect_frames=args.expect_frames,
                             thresholds=thresholds)
    except (CheckError, MediaError, ValueError) as err:
        raise CliError(str(err))
    data = result.as_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"{args.op} take {args.take} against {args.source}:")
        for gate in result.gates:
            mark = {"pass": "ok  ", "flag": "FLAG", "n/a": " -  "}[gate.verdict]
            value = "-" if gate.value is None else f"{gate.value:.4g}"
            print(f"  {mark} {gate.name:<16} {value:>9}  (threshold {gate.threshold:g})  {gate.detail}")
        print(f"status: {data['status']}" + (f" — {'; '.join(data['reasons'])}" if data["reasons"] else ""))
        count = next((g for g in result.gates if g.name == "conformance" and g.flagged and "frames, asked" in g.detail),
                     None)
        if count is not None and args.expect_frames is None:
            print("note: the frame count asked is the source file's, from the take's first frame on; if the source "
                  "is a longer plate than the take's range, pass --expect-frames N")
    return EXIT_JOB_FAILED if data["status"] != "ok" else EXIT_OK


def _thresholds(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise CliError(f"--threshold {pair!r} is not GATE=NUMBER, e.g. seam=2.5") from None
    return out


def cmd_rerender(args) -> int:
    bar = ProgressBar(f"rerender {args.manifest.name}", enabled=None if not args.json else False)
    try:
        report = rerender(args.manifest, out_dir=args.out, verify=args.verify, models=args.models, device=args.device,
                          progress=lambda stage, step, total, _preview: bar.update(
                              step / total if total else 1.0, f"{stage} {step}/{total}", -1))
    except (RerenderError, JobError, MediaError, ValueError) as err:
        bar.close("failed")
        raise CliError(str(err))
    bar.close("done")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"re-rendered {report['take_id']} -> {report['rerender']} (backend {report['backend']}, "
              f"seed {report['seed']}, device then {report['device_then']}, now {report['device_now']})")
        for line in report["inputs_changed"]:
            print(f"  input changed: {line}")
        for line in report["versions_changed"]:
            print(f"  version changed: {line}")
        for line in report.get("determinism_changed", []):
            print(f"  setting changed (bit-exactness not expected): {line}")
        if args.verify:
            v = report["verify"]
            if v["identical"]:
                print(f"identical: all {v['frames']} frames match the stored take pixel for pixel"
                      + (" (and the file byte for byte)" if report.get("file_identical") else ""))
            else:
                psnr = "inf" if v["psnr_db"] is None else f"{v['psnr_db']:.1f} dB"
                print(f"DIFFERENT: {v['frames_differing']} of {v['frames']} frames differ, max {v['max_difference']} "
                      f"levels, mean {v['mean_difference']:.3f}, PSNR {psnr}")
    if args.verify and (not report["verify"]["identical"] or report["inputs_changed"]):
        return EXIT_JOB_FAILED
    return EXIT_OK


def cmd_report(args) -> int:
    try:
        report = build_report(args.store, args.since, args.timeline)
    except ReportError as err:
        raise CliError(str(err))
    if args.html:
        write_text_atomic(args.html, to_html(report))
    if args.json:
        print(json.dumps({**report, "html": str(args.html) if args.html else None}, indent=2))
    else:
        print(to_text(report))
        if args.html:
            print(f"\nHTML report with plots: {args.html}")
    return EXIT_OK


COMMANDS = {"check": cmd_check, "rerender": cmd_rerender, "report": cmd_report}
