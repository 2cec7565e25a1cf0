"""The client commands that talk to a server: `submit` (the OTIO file as an editor, through
bridge/editor.py's loop), `takes`, `jobs`, `cancel` and `review`."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import opentimelineio as otio
from google.protobuf import json_format

from .. import editor, previs
from ..api import pb
from ..api.names import CODEC_CHOICES
from ..client import ClientError, GenerationClient
from ..contract import ContractError, apply_contract, find_library, read_contract, read_library, save_contract
from ..otio_file import OtioFileEditor
from ..request import JobOptions, Reference
from ..selection import SelectionError, absolutize_media, url_to_path
from ..takes import list_takes, set_status
from ..timeline import parse_point, select_clip, select_range, timeline_rate
from .base import (
    DEFAULT_ADDRESS,
    EXIT_BAD_INPUT,
    EXIT_JOB_FAILED,
    EXIT_NO_SERVER,
    EXIT_OK,
    CliError,
    emit,
    read_timeline,
    write_timeline,
)
from .progress_bar import ProgressBar


def add_parsers(sub) -> None:
    submit = sub.add_parser("submit", help="send a clip to the server and place the take on the timeline",
                            description="Export one clip of an OTIO timeline as a job, follow its progress and, "
                                        "with --wait, write the timeline with the new take on the clip "
                                        "(original kept under DEFAULT_MEDIA, take active).")
    submit.add_argument("--server", default=os.environ.get("TAKEBRIDGE_SERVER", DEFAULT_ADDRESS),
                        help=f"server address host:port (default {DEFAULT_ADDRESS})")
    submit.add_argument("--token", default=os.environ.get("TAKEBRIDGE_TOKEN", ""), help="bearer token")
    submit.add_argument("--op", required=True, choices=["refine", "extend", "inpaint", "generate"],
                        help="what to make: a new version of a clip (refine, inpaint), frames past its edge "
                             "(extend), or a new pre-vis shot in a gap (generate: --track, --in, --out-point)")
    submit.add_argument("--timeline", required=True, type=Path, help="input timeline (.otio)")
    submit.add_argument("--clip", help="name of the clip to work on (or give --track, --in and --out)")
    submit.add_argument("--track", type=int, help="video track number (V1 = 1): with --in/--out, a range; with "
                                                   "--clip, which clip of that name")
    submit.add_argument("--in", dest="in_point", help="range start: timeline timecode or frame (one job per clip)")
    submit.add_argument("--out-point", dest="out_point", help="range end, exclusive: timeline timecode or frame")
    submit.add_argument("--placement", choices=["gap", "ripple", "ripple-sync", "new-track"], default="gap",
                        help="extend: where the new frames go: consume the neighbouring gap (default, refuses "
                             "rather than overwrite), ripple the track, ripple every track in sync, or put the "
                             "extended take on a new track above")
    side = submit.add_mutually_exclusive_group()
    side.add_argument("--tail-frames", type=int, help="extend: frames to add after the clip's last frame")
    side.add_argument("--head-frames", type=int, help="extend: frames to add before the clip's first frame")
    submit.add_argument("--mask", type=Path, help="inpaint: movie, image sequence or still image of the clip's "
                                                  "size; white = regenerate")
    submit.add_argument("--strength", type=float, default=0.5, help="refine: 0 (unchanged) .. 1 (strongest)")
    gen = submit.add_argument_group("generate", "a pre-vis shot filling the gap --in..--out-point on --track (or "
                                    "the gap under --at); another Generate on the same range adds a take")
    gen.add_argument("--at", dest="at_point", help="generate: fill the whole gap under this point (the playhead)")
    gen.add_argument("--shot", default="", help="generate: the new shot's name (default previs_<track>_<timecode>)")
    gen.add_argument("--image", type=Path, help="generate: a storyboard still (or a movie, --image-frame N) as the "
                                                "first frame; the CPU animatic moves a camera over it")
    gen.add_argument("--image-frame", type=int, default=0, help="generate: which frame of --image (a movie)")
    gen.add_argument("--keyframes", choices=["auto", "none"], default="auto",
                     help="generate: auto = between two clips, the outgoing clip's last frame and the incoming "
                          "clip's first are the shot's first and last frames (a morph on the CPU)")
    gen.add_argument("--mode", choices=["auto", "text", "image", "keyframes", "references"], default="auto",
                     help="generate: what the shot is made from (auto: keyframes, else a board, else the prompt)")
    gen.add_argument("--camera", choices=["push-in", "pull-out", "pan-left", "pan-right", "tilt-up", "tilt-down",
                                          "static"], help="generate: the move over a board (default push-in)")
    gen.add_argument("--camera-amount", type=float, default=0.0,
                     help="generate: zoom or travel over the shot, 0..1 (default 0.15)")
    gen.add_argument("--size", help="generate: WIDTHxHEIGHT of the shot (default: an earlier take's, else the "
                                    "board's or the keyframes', else 1920x1080)")
    gen.add_argument("--burn-in", action="store_true", help="generate: mark every frame PRE-VIS")
    submit.add_argument("--tier", choices=["draft", "final"], default="",
                        help="generative backends: draft = the model's few-step tier for quick iteration (no CFG); "
                             "final (default) = full steps")
    submit.add_argument("--final-from", metavar="TAKE_ID",
                        help="make the final of a draft take on the timeline: its request again (same clip, seed and "
                             "contract) at the final tier; the final becomes another take of the same clip")
    submit.add_argument("--contract", type=Path, help="a shot contract file (JSON or TOML: prompt, characters, "
                                                      "constraints, review thresholds, seed, budget...; "
                                                      "docs/generate.md); options given here win over it")
    submit.add_argument("--characters", type=Path, help="the project's character library (default: "
                                                        "characters.toml or .json beside the timeline)")
    submit.add_argument("--save-contract", type=Path, help="also write this job's contract (JSON) here")
    submit.add_argument("--handles", type=int, default=0, help="extra source frames each side in the take")
    submit.add_argument("--prompt", default="", help="what the shot should show (generative backends)")
    submit.add_argument("--negative-prompt", default="", help="what it must not show (generative backends)")
    submit.add_argument("--seed", type=int, help="seed; the same seed reproduces the same take")
    submit.add_argument("--codec", choices=list(CODEC_CHOICES), default="prores",
                        help="take media: prores (ProRes 422 HQ .mov, default), lossless (FFV1 .mkv), "
                             "dnxhr (DNxHR .mov, matched to a DNxHR source), png (PNG sequence, 8/16-bit), "
                             "exr (OpenEXR sequence) or h264 (proxy .mp4)")
    submit.add_argument("--backend", default="", help="backend (default: the server's): classic or diffusers")
    submit.add_argument("--model", default="", help="diffusers: model id from the server's profile "
                                                    "(default: the first that does the operation)")
    submit.add_argument("--reference", action="append", default=[], metavar="[ROLE=]IMAGE",
                        help="reference image for the shot (character, prop, style), e.g. character=hero.png; "
                             "repeatable; generative backends that take them (Wan VACE) use them")
    submit.add_argument("--feather", type=int, default=0, help="inpaint: soft mask edge, pixels inside the mask")
    submit.add_argument("--fallback", choices=["fail", "degrade", "classic"], default="fail",
                        help="if the backend is unavailable or the job is over budget: fail (default), degrade "
                             "(lower resolution, stated), or run on the classic CPU backend")
    submit.add_argument("--max-compute-seconds", type=float, default=0.0, help="this job's compute budget")
    submit.add_argument("--take-dir", type=Path,
                        help="folder for the take (default: a 'takes' folder beside the timeline)")
    submit.add_argument("--out", type=Path, help="write the timeline with the take here (needs --wait)")
    submit.add_argument("--wait", action="store_true", help="follow the job to the end (progress bar)")
    submit.add_argument("--upload", action="store_true",
                        help="upload the media and mask to the server instead of sharing the disk")
    submit.add_argument("--json", action="store_true", help="print one JSON object with the outcome")

    takes = sub.add_parser("takes", help="list clips and their takes in a timeline",
                           description="List every clip's original and takes: id, operation, status, active.")
    takes.add_argument("timeline", type=Path)
    takes.add_argument("--json", action="store_true")

    jobs = sub.add_parser("jobs", help="list the server's jobs")
    jobs.add_argument("--server", default=os.environ.get("TAKEBRIDGE_SERVER", DEFAULT_ADDRESS))
    jobs.add_argument("--token", default=os.environ.get("TAKEBRIDGE_TOKEN", ""))
    jobs.add_argument("--limit", type=int, default=20)
    jobs.add_argument("--json", action="store_true")

    workers = sub.add_parser("workers", help="list the server's workers: where, devices, warm models, busy",
                             description="List the workers the server sends jobs to (its local worker, or its Ray "
                                         "workers and device groups): host, device, devices per job, memory a job "
                                         "may use, the models kept warm there, and whether a job runs now. A worker "
                                         "refused at start (versions that differ) says why.")
    workers.add_argument("--server", default=os.environ.get("TAKEBRIDGE_SERVER", DEFAULT_ADDRESS))
    workers.add_argument("--token", default=os.environ.get("TAKEBRIDGE_TOKEN", ""))
    workers.add_argument("--json", action="store_true")

    cancel = sub.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("job_id")
    cancel.add_argument("--server", default=os.environ.get("TAKEBRIDGE_SERVER", DEFAULT_ADDRESS))
    cancel.add_argument("--token", default=os.environ.get("TAKEBRIDGE_TOKEN", ""))
    cancel.add_argument("--json", action="store_true")

    review = sub.add_parser(
        "review", help="approve or reject a take (stored on the server, in the manifest and the timeline)",
        description="Approve or reject a take with a note. The server stores the review, sets the take's status "
                    "and appends it to the manifest; with --timeline the take's status and note are also set in "
                    "the OTIO (written to -o).")
    verdict = review.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--approve", action="store_true")
    verdict.add_argument("--reject", action="store_true")
    review.add_argument("take_id")
    review.add_argument("--note", default="", help="what was good or wrong (the report lists the notes)")
    review.add_argument("--reviewer", default=os.environ.get("USER", ""), help="who (default: $USER)")
    review.add_argument("--timeline", type=Path, help="also mark the take in this timeline ...")
    review.add_argument("-o", "--output", type=Path, help="... and write it here")
    review.add_argument("--server", default=os.environ.get("TAKEBRIDGE_SERVER", DEFAULT_ADDRESS))
    review.add_argument("--token", default=os.environ.get("TAKEBRIDGE_TOKEN", ""))
    review.add_argument("--json", action="store_true")


def cmd_submit(args) -> int:
    """The OTIO file as an editor (bridge/otio_file.py) through the one loop (bridge/editor.py):
    each chosen clip is refused (nothing sent), or submitted, followed and placed on its own."""


    if args.out and not args.wait:
        raise CliError("--out needs --wait: the take can only be placed once the job is done")
    timeline = read_timeline(args.timeline)
    absolutize_media(timeline, str(args.timeline.resolve().parent))
    if args.final_from:
        return _final_from(args, timeline)
    try:
        contract = read_contract(args.contract) if args.contract else {}
        library_path = args.characters or find_library(args.timeline.resolve().parent)
        library = read_library(library_path) if library_path else None
    except ContractError as err:
        raise CliError(str(err))
    try:
        if args.op == "generate":
            segments = [_gap_target(timeline, args, contract.get("constraints", {}).get("duration", 0))]
        elif args.clip:
            segments = [select_clip(timeline, args.clip, handles=args.handles, track_number=args.track)]
        elif args.track and args.in_point and args.out_point:
            segments = select_range(timeline, args.track, args.in_point, args.out_point, handles=args.handles)
            if not segments:
                raise CliError(f"the range {args.in_point}..{args.out_point} on V{args.track} holds only gaps; "
                               f"there is nothing to generate")
        else:
            raise CliError("say what to work on: --clip NAME, or --track N --in TC --out-point TC")
    except SelectionError as err:
        raise CliError(str(err))
    side, frames = "tail", 0
    if args.op == "extend":
        frames = args.tail_frames if args.tail_frames is not None else args.head_frames
        if frames is None:
            raise CliError("extend needs --tail-frames N or --head-frames N")
        side = "tail" if args.tail_frames is not None else "head"
    elif args.op == "inpaint" and args.mask is None:
        raise CliError("inpaint needs --mask (movie, image sequence or still; white = regenerate)")
    references = []
    for entry in args.reference:
        role, _, image = entry.rpartition("=")
        references.append(Reference(str(Path(image).resolve()), role or "reference"))
    options = JobOptions(op=args.op, strength=args.strength, frames=frames, side=side,
                         mask=str(args.mask.resolve()) if args.mask else "", feather=args.feather,
                         prompt=args.prompt, negative_prompt=args.negative_prompt, seed=args.seed, codec=args.codec,
                         backend=args.backend, model=args.model, fallback=args.fallback,
                         max_compute_seconds=args.max_compute_seconds, references=references,
                         take_dir=str((args.take_dir or args.timeline.resolve().parent / "takes").resolve()),
                         handles=args.handles, placement=args.placement, tier=args.tier)
    if args.op == "generate":
        _generate_options(options, args)
    if contract:
        options = _with_contract(options, contract)
    if args.save_contract:
        save_contract(args.save_contract, options)
    bars: dict = {}

    def on_progress(segment, view):
        if view.state == "running":
            if id(segment) not in bars:
                bars[id(segment)] = ProgressBar(f"{args.op} {segment.clip}", enabled=None if not args.json else False)
            bars[id(segment)].update(view.fraction, view.detail, view.eta_seconds)

    with GenerationClient(args.server, token=args.token) as client:
        def prepare(request, selection):
            if args.upload:
                _upload_media(client, selection, request)
                request.selection_otio = otio.adapters.write_to_string(selection, "otio_json")
        adapter = OtioFileEditor(timeline, segments, placement=args.placement, prepare=prepare,
                                 on_progress=on_progress, library=library)
        sent: list[str] = []
        try:
            results = editor.run(adapter, options, client, wait=args.wait, on_submit=sent.append)
        except KeyboardInterrupt:
            for job_id in sent:
                try:
                    client.cancel(job_id)
                except ClientError:
                    pass
            raise CliError(f"interrupted; job(s) {', '.join(sent) or 'none'} cancelled", EXIT_JOB_FAILED)
        finally:
            for bar in bars.values():
                bar.close()
    for result in results:
        result["status"] = result["state"]
    refused = [r for r in results if r["state"] == "refused"]
    if len(refused) == len(results):
        worst = refused[0]
        raise CliError("; ".join(f"{r['item']}: {r['error']}" for r in refused) if len(refused) > 1 else worst["error"],
                       EXIT_NO_SERVER if worst.get("code") == "server_unreachable" else EXIT_BAD_INPUT)
    if not args.wait:
        ids = [r["job_id"] for r in results if r.get("job_id")]
        payload = {"job_id": ids[0], "job_ids": ids, "status": "queued"}
        if refused:
            payload["refused"] = refused
        emit(args, payload, f"queued job(s) {', '.join(ids)}; follow them with `takebridge jobs --server {args.server}`"
              + "".join(f"\nrefused {r['item']}: {r['error']}" for r in refused))
        return EXIT_OK
    failed = any(r["state"] != "succeeded" for r in results)
    written = bool(args.out) and adapter.placed > 0
    if written:
        write_timeline(timeline, args.out)
    payload = results[0] if len(results) == 1 else {"status": "failed" if failed else "succeeded", "jobs": results}
    if args.out:
        payload = {**payload, "out": str(args.out) if written else None}
    lines = [f"take {r['take_id']} ({r['take_status']}): {r['frames']} frames from {r['start_timecode']} at "
             f"{r['media']}" + "".join(f"\n  flagged: {flag}" for flag in r["flags"])
             if r.get("take_id") and r["state"] == "succeeded"
             else (f"{r['item']} (V{r['track']} at {r['record_start']}): {r['status']}: "
                   f"{r.get('error') or 'no take made'}")
             for r in results]
    if written:
        lines.append(f"timeline with {adapter.placed} of {len(results)} take(s): {args.out}")
    elif args.out:
        lines.append(f"{args.out} was not written: no take was placed")
    emit(args, payload, "\n".join(lines))
    return EXIT_JOB_FAILED if failed else EXIT_OK


def _gap_target(timeline, args, duration: int = 0):
    """The gap a Generate fills: --track with --in/--out-point (or --in and the contract's
    duration), or the gap under --at."""
    if not args.track:
        raise CliError("generate needs --track N and the range: --in TC --out-point TC, or --at TC for the gap there")
    if args.at_point:
        first, last = previs.gap_under(timeline, args.track, args.at_point)
        return previs.find_gap(timeline, args.track, first, last, shot=args.shot)
    if args.in_point and not args.out_point and duration:
        first = parse_point(args.in_point, timeline_rate(timeline), what="--in")
        return previs.find_gap(timeline, args.track, first, first + int(duration), shot=args.shot)
    if not (args.in_point and args.out_point):
        raise CliError("generate needs the range: --in TC --out-point TC, or --at TC for the gap there")
    return previs.find_gap(timeline, args.track, args.in_point, args.out_point, shot=args.shot)


def _generate_options(options, args) -> None:
    options.mode = "" if args.mode == "auto" else args.mode
    options.image = str(args.image.resolve()) if args.image else ""
    options.image_frame = args.image_frame
    options.keyframes = args.keyframes if args.keyframes == "auto" else ""
    options.camera = (args.camera or "").replace("-", "_")
    options.camera_amount = args.camera_amount
    options.burn_in = args.burn_in
    if args.size:     # (else another take of a shot is made at the shot's size: OtioFileEditor)
        try:
            options.width, options.height = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise CliError(f"--size {args.size!r} is not WIDTHxHEIGHT (e.g. 1920x1080)") from None


def _final_from(args, timeline) -> int:
    """The final of a draft: the draft's own request (from its manifest) at the final tier, the
    same seed; placed as another take of the clip that holds the draft."""
    from ..request import RequestError, final_request
    from ..selection import find_clip
    from ..takes import place_take, take_of_reference

    rows = [r for r in list_takes(timeline) if r.take_id == args.final_from]
    if not rows:
        raise CliError(f"no take {args.final_from!r} on {args.timeline}; list them with `takebridge takes`")
    clip, _ = find_clip(timeline, rows[0].clip, track_number=rows[0].track, take_id=args.final_from)
    draft = take_of_reference(clip.media_references()[args.final_from])
    try:
        request, _ = final_request(draft.manifest_url, args.final_from)
    except RequestError as err:
        raise CliError(str(err))
    with GenerationClient(args.server, token=args.token) as client:
        job = client.submit(request)
        if not args.wait:
            emit(args, {"job_id": job.job_id, "status": "queued", "promoted_from": args.final_from},
                 f"queued job {job.job_id}: the final of {args.final_from}")
            return EXIT_OK
        bar = ProgressBar(f"final of {args.final_from}", enabled=None if not args.json else False)
        job = client.wait(job.job_id, on_event=lambda e: e.HasField("progress") and bar.update(
            e.progress.fraction, e.progress.stage, e.progress.eta_seconds))
        bar.close(pb.JobState.Name(job.state).lower())
    if job.state != pb.SUCCEEDED:
        raise CliError(f"the final of {args.final_from} failed: {job.error}", EXIT_JOB_FAILED)
    place_take(timeline, clip, job.take)
    if args.out:
        write_timeline(timeline, args.out)
    emit(args, {"status": "succeeded", "take_id": job.take.take_id, "promoted_from": args.final_from,
                "media": job.take.media.url, "manifest": job.take.manifest_url, "out": str(args.out) if args.out else None},
         f"take {job.take.take_id}: the final of draft {args.final_from}, same seed {request.contract.seed}"
         + (f"; wrote {args.out}" if args.out else ""))
    return EXIT_OK


def _with_contract(options, contract: dict):
    """The contract's fields, except where the command line gave its own (those win)."""
    defaults = JobOptions(op=options.op)
    merged = apply_contract(options, contract)
    for field in dataclasses.fields(JobOptions):
        mine = getattr(options, field.name)
        if field.name != "take_dir" and mine != getattr(defaults, field.name):
            setattr(merged, field.name, mine)
    return merged


def _upload_media(client, selection, request) -> None:
    """Replace local paths by content-addressed uploads (a server without the editor's disk)."""


    for clip in selection.find_clips():
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference):
            ref.target_url = client.upload(url_to_path(ref.target_url)).url
    if request.HasField("inpaint") and os.path.isfile(request.inpaint.mask_url):
        request.inpaint.mask_url = client.upload(request.inpaint.mask_url).url
    for frame in (request.generate.first, request.generate.last) if request.HasField("generate") else ():
        if frame.url and os.path.isfile(frame.url):
            frame.url = client.upload(frame.url).url


def cmd_takes(args) -> int:
    rows = list_takes(read_timeline(args.timeline))
    if args.json:
        print(json.dumps({"timeline": str(args.timeline), "takes": [dataclasses.asdict(r) for r in rows]}, indent=2))
        return EXIT_OK
    print(f"{'clip':<20} {'take':<22} {'op':<9} {'status':<13} active  media")
    for r in rows:
        print(f"{r.clip:<20} {(r.take_id or 'original'):<22} {r.operation:<9} {r.status:<13} "
              f"{'  *' if r.active else '':<7} {r.media}")
    return EXIT_OK


def cmd_jobs(args) -> int:
    with GenerationClient(args.server, token=args.token) as client:
        try:
            jobs = client.list_jobs(limit=args.limit)
        except ClientError as err:
            raise CliError(str(err), EXIT_NO_SERVER)
    if args.json:
        print(json.dumps({"jobs": [json_format.MessageToDict(j, preserving_proto_field_name=True) for j in jobs]},
                         indent=2))
        return EXIT_OK
    for j in jobs:
        print(f"{j.job_id}  {pb.JobState.Name(j.state).lower():<10} {pb.Operation.Name(j.operation).lower():<8} "
              f"{j.shot:<20} {j.progress.fraction * 100:5.1f}%  {j.take.take_id or j.error}")
    return EXIT_OK


def cmd_workers(args) -> int:
    with GenerationClient(args.server, token=args.token) as client:
        try:
            workers = client.capabilities().workers
        except ClientError as err:
            raise CliError(str(err), EXIT_NO_SERVER)
    if args.json:
        print(json.dumps({"workers": [json_format.MessageToDict(w, preserving_proto_field_name=True,
                                                                always_print_fields_with_no_presence=True)
                                      for w in workers]}, indent=2))
        return EXIT_OK
    for w in workers:
        memory = f"{w.memory_gb:g} GB" if w.memory_gb else "-"
        print(f"{w.name:<12} {w.host or '-':<14} {w.device:<10} x{w.devices or 1:<3} {memory:<8} "
              f"{'busy' if w.busy else 'idle':<5} warm: {', '.join(w.loaded_models) or '-'}")
    return EXIT_OK


def cmd_cancel(args) -> int:
    with GenerationClient(args.server, token=args.token) as client:
        try:
            job = client.cancel(args.job_id)
        except ClientError as err:
            raise CliError(str(err), err.exit_code)
    state = pb.JobState.Name(job.state).lower()
    emit(args, {"job_id": job.job_id, "status": state}, f"job {job.job_id}: {state}")
    return EXIT_OK


def cmd_review(args) -> int:
    if bool(args.timeline) != bool(args.output):
        raise CliError("--timeline and -o go together: the timeline to mark and where to write it")
    timeline = read_timeline(args.timeline) if args.timeline else None
    with GenerationClient(args.server, token=args.token) as client:
        try:
            take = client.review(args.take_id, args.approve, args.note, args.reviewer)
        except ClientError as err:
            raise CliError(str(err), err.exit_code)
    status = pb.TakeStatus.Name(take.status).lower()
    if timeline is not None:
        clip = _clip_with_take(timeline, args.take_id)
        try:
            set_status(timeline, clip, args.take_id, status, note=args.note, reviewer=args.reviewer)
        except SelectionError as err:
            raise CliError(f"the review is stored on the server but the timeline was not marked: {err}")
        write_timeline(timeline, args.output)
    data = {"take_id": take.take_id, "status": status, "note": take.review_note, "reviewer": take.reviewer,
            "timeline": str(args.output) if args.output else None}
    print(json.dumps(data) if args.json else
          f"{take.take_id}: {status} by {take.reviewer or 'someone'}" + (f" — {take.review_note}" if take.review_note
                                                                         else "")
          + (f"; marked in {args.output}" if args.output else ""))
    return EXIT_OK


def _clip_with_take(timeline, take_id: str) -> str:
    for clip in timeline.find_clips():
        if take_id in clip.media_references():
            return clip.name
    raise CliError(f"no clip in the timeline has take {take_id!r}; the review is stored on the server only")
