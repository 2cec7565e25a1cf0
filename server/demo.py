"""`takebridge demo`: sample footage, a three-shot timeline, a real server process, and refine,
inpaint and extend through gRPC, then a pre-vis shot generated after the cut from a storyboard
board (a push-in animatic, marked PRE-VIS); leaves demo.otio, the takes and a contact sheet."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio

from bridge import previs
from bridge.api import pb
from bridge.client import GenerationClient
from bridge.console.progress_bar import ProgressBar
from bridge.request import JobOptions, build_request
from bridge.takes import place_take
from bridge.timecode import from_timecode, rational_time
from bridge.timeline import export_selection
from server.contact_sheet import contact_sheet
from server.media import read_frames, write_movie
from server.samples import demo_scene

RATE = Fraction(24000, 1001)
START_TC = "01:00:00:00"


def run_demo(args) -> int:
    out: Path = args.out.resolve()
    media_dir = out / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    shot = max(12, args.frames // 3)
    say = (lambda *_: None) if args.json else print
    started = time.monotonic()

    say(f"1/4 making {3 * shot} frames of sample footage at {args.width}x{args.height}, {RATE} fps ...")
    frames, masks = demo_scene(3 * shot, args.height, args.width, seed=0)
    source = write_movie(frames, media_dir / "plate.mov", codec="prores", rate=RATE, start_timecode=START_TC).path
    # a matte for the inpaint shot: its frame 0 is that clip's first frame
    matte = write_movie(np.repeat(masks[shot:2 * shot, ..., None], 3, axis=3).astype(np.uint8) * 255,
                        media_dir / "sh020_matte.mkv", codec="ffv1", rate=RATE).path
    timeline = _timeline(source, shot)
    board = media_dir / "sh040_board.png"      # a storyboard still for the pre-vis shot
    import cv2
    cv2.imwrite(str(board), cv2.cvtColor(frames[-1], cv2.COLOR_RGB2BGR))
    otio.adapters.write_to_file(timeline, str(out / "edit.otio"))

    say("2/4 starting the TakeBridge server (classic CPU backend) ...")
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "--log-level", "warning", "serve", "--port", "0",
                               "--store", str(out / "store"), "--json"], stdout=subprocess.PIPE, text=True)
    try:
        address = json.loads(server.stdout.readline())["address"]
        say(f"    listening on {address}")
        common = dict(seed=1, codec=getattr(args, "codec", "prores"), take_dir=str(out / "takes"))
        jobs = [("sh010", JobOptions(op="refine", strength=0.8, **common)),
                ("sh020", JobOptions(op="inpaint", mask=str(matte), **common)),
                ("sh030", JobOptions(op="extend", side="tail", frames=shot, **common))]
        say("3/4 generating takes through gRPC ...")
        results = []
        with GenerationClient(address) as client:
            for clip, options in jobs:
                op = options.op
                request = build_request(export_selection(timeline, clip), options, client="takebridge-demo")
                job = client.submit(request)
                bar = ProgressBar(f"    {op:<8}{clip}", enabled=False if args.json else None)
                job = client.wait(job.job_id, on_event=lambda e, bar=bar: e.HasField("progress") and bar.update(
                    e.progress.fraction, e.progress.stage, e.progress.eta_seconds))
                bar.close(pb.JobState.Name(job.state).lower())
                if job.state != pb.SUCCEEDED:
                    raise SystemExit(f"demo: the {op} job failed: {job.error}")
                place_take(timeline, clip, job.take)
                results.append((clip, op, job))
                say(f"    {op:<8}{clip}: take {job.take.take_id}, {job.take.media.frame_count} frames from "
                    f"{job.take.media.start_timecode}")
            # Generate: a pre-vis shot after the cut (the extension filled the gap), from the board
            end = from_timecode(START_TC, RATE) + 4 * shot
            target = previs.find_gap(timeline, 1, end, end + shot, shot="sh040")
            options = JobOptions(op="generate", image=str(board), camera="push_in", camera_amount=0.2, burn_in=True,
                                 prompt="the street at dusk, slow push in", **common)
            job = client.wait(client.submit(build_request(previs.export_gap(timeline, target), options,
                                                          client="takebridge-demo")).job_id)
            if job.state != pb.SUCCEEDED:
                raise SystemExit(f"demo: the generate job failed: {job.error}")
            previs.place_generated(timeline, target, job.take)
            results.append(("sh040", "generate", job))
            say(f"    generate sh040: take {job.take.take_id}, {job.take.media.frame_count} frames (a push-in animatic "
                f"over the board, marked PRE-VIS)")
    finally:
        server.terminate()
        server.wait(timeout=30)

    say("4/4 writing demo.otio and the contact sheet ...")
    otio.adapters.write_to_file(timeline, str(out / "demo.otio"))
    rows, summary = [], []
    for clip, op, job in results:
        take = read_frames(job.take.media.url, 0, job.take.media.frame_count)
        expected = shot + (job.take.generated_frames if op == "extend" else 0)
        if len(take) != expected:
            raise SystemExit(f"demo: take {job.take.take_id} decodes to {len(take)} frames, expected {expected}")
        if op == "generate":
            rows += [(f"{clip} board", frames[-1:].repeat(len(take), axis=0)), (f"{clip} pre-vis {job.take.take_id}",
                                                                               take)]
        else:
            offset = {"sh010": 0, "sh020": shot, "sh030": 2 * shot}[clip]
            rows += [(f"{clip} source", frames[offset:offset + shot]), (f"{clip} {op} {job.take.take_id}", take)]
        summary.append({"clip": clip, "operation": op, "take_id": job.take.take_id, "frames": len(take),
                        "media": job.take.media.url, "manifest": job.take.manifest_url,
                        "start_timecode": job.take.media.start_timecode})
    sheet = contact_sheet(rows, out / "contact_sheet.png", columns=6, thumb_width=240)
    report = {"status": "ok", "timeline": str(out / "demo.otio"), "contact_sheet": str(sheet),
              "takes": summary, "seconds": round(time.monotonic() - started, 1)}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"\nDone in {report['seconds']} s.\n  timeline with takes: {report['timeline']}\n"
              f"  contact sheet:       {sheet}\n  takes:               {out / 'takes'}\n"
              f"List them with: takebridge takes {report['timeline']}")
    return 0


def _timeline(source: Path, shot: int) -> otio.schema.Timeline:
    """Three shots cut from the plate, the last followed by a gap the extension will fill."""
    start = from_timecode(START_TC, RATE)
    total = 3 * shot
    timeline = otio.schema.Timeline("TakeBridge demo", global_start_time=rational_time(start, RATE))
    track = otio.schema.Track("V1")
    for index, name in enumerate(("sh010", "sh020", "sh030")):
        ref = otio.schema.ExternalReference(str(source), otio.opentime.TimeRange(rational_time(start, RATE),
                                                                                  rational_time(total, RATE)))
        track.append(otio.schema.Clip(name, ref, otio.opentime.TimeRange(rational_time(start + index * shot, RATE),
                                                                         rational_time(shot, RATE))))
    track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=rational_time(shot, RATE))))
    timeline.tracks.append(track)
    return timeline
