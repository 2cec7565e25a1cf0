"""Turn a SubmitJobRequest into a JobPlan: which media frames to read, what the take covers,
and every check a request must pass before it is queued (and again before it runs).
"""
from __future__ import annotations

import math
import os
import random
from fractions import Fraction
from pathlib import Path

import grpc

from bridge.api import pb
from bridge.timecode import from_timecode, has_timecode, is_drop_frame_rate, to_timecode
from server import bounds, color, paths
from server.errors import JobError, from_exception
from server.gates import thresholds_from
from server.media import MediaError, probe
from server.media.pixels import convertible

# (what a plan is lives in server.jobplan; callers import these names from here too)
from server.jobplan import (  # noqa: E402,F401
    CODECS,
    DEFAULT_CONTEXT_FRAMES,
    OP_NAMES,
    JobPlan,
    Limits,
    cas_object,
    resolve_media_url,
)
from server import generate  # noqa: E402


def make_plan(request: "pb.SubmitJobRequest", limits: Limits, default_take_dir: Path,
              seed: int | None = None) -> JobPlan:
    """Validate the request against the timeline, the media and the limits; raise JobError."""
    try:
        with paths.reading_under(limits.roots):   # every read below: regular files under the roots
            return _make_plan(request, limits, default_take_dir, seed)
    except (MediaError, ValueError) as exc:
        raise from_exception(exc) from None
    except OSError as exc:   # a path the OS refuses (too long, a loop of links, no permission)
        raise JobError("media_unreadable", f"{exc.filename or 'a path of the request'} cannot be used "
                                           f"({exc.strerror}); check the path") from None


def _make_plan(request, limits: Limits, default_take_dir: Path, seed) -> JobPlan:
    bounds.check_submit(request, limits.max_frames, limits.max_handles)
    if request.operation not in OP_NAMES:
        raise JobError("bad_operation", f"operation {request.operation} is not one of REFINE, EXTEND, INPAINT, "
                                        f"GENERATE")
    op = OP_NAMES[request.operation]
    params = request.WhichOneof("params")  # the oneof's field names are the operation names
    if params not in (None, op):
        raise JobError("bad_params", f"a {op} job takes {op} parameters, not {params}")
    if not request.selection_otio:
        raise JobError("malformed_otio", "the request has no selection_otio; export the selection with "
                       "bridge.timeline.export_selection")
    selection = limits.read_selection(request.selection_otio)
    paths.slug(selection.shot)
    # Frame counts before any per-frame work: a hostile rate or duration costs nothing.
    if selection.source_duration <= 0:
        raise JobError("range_outside_media", f"clip {selection.clip_name!r} has {selection.source_duration} "
                                              f"frames; select at least one")
    max_frames = limits.max_frames
    if selection.source_duration > max_frames:
        raise JobError("too_many_frames", f"clip {selection.clip_name!r} selects {selection.source_duration} "
                                          f"frames, over the limit of {max_frames}; select a shorter range")
    if selection.handles > limits.max_handles:
        raise JobError("bad_handles", f"handles {selection.handles} exceed the server limit of "
                                      f"{limits.max_handles} frames")
    if op == "generate":
        if selection.media.kind != "previs":
            raise JobError("range_not_empty", f"clip {selection.clip_name!r} has media of its own: Generate fills a "
                                              f"gap or a pre-vis shot (bridge.previs.export_gap); choose an empty "
                                              f"range")
        return finish_plan(generate.plan_generate(request, selection, limits), limits, default_take_dir, seed, 0)
    if selection.media.kind == "previs":
        raise JobError("media_missing", f"clip {selection.clip_name!r} is an empty pre-vis placeholder: there is "
                                        f"nothing to {op} yet; Generate a take of it first")
    media_path = str(limits.check_path(resolve_media_url(selection.media.path, limits.cas_dir), "media"))
    if not os.path.exists(media_path if selection.media.kind == "movie" else os.path.dirname(media_path)):
        raise JobError("media_missing", f"media of clip {selection.clip_name!r} not found: {selection.media.path}; "
                       f"relink the clip or copy the media back", grpc.StatusCode.NOT_FOUND)
    media = probe(media_path, rate=selection.media.rate)
    if not convertible(media.pix_fmt):
        raise JobError("unsupported_pixel_format", f"media of clip {selection.clip_name!r} ({media.path.name}) stores "
                                                   f"{media.pix_fmt} pictures, which cannot be read at their depth "
                                                   f"here; transcode it to ProRes 4444 or FFV1 and relink the clip")
    if media.interlaced:
        raise JobError("interlaced_source", f"media of clip {selection.clip_name!r} ({media.path.name}) is interlaced; "
                                            f"generation works on whole frames. Deinterlace it first (e.g. ffmpeg "
                                            f"-vf bwdif=mode=send_frame) and relink the clip to the result")
    rate = selection.rate
    if rate / media.rate > 64 or media.rate / rate > 64:
        raise JobError("bad_rate", f"clip {selection.clip_name!r} runs at {float(rate):g} fps over media at "
                                   f"{float(media.rate):g} fps; a rate change over 64x is not a clip, check the "
                                   f"clip's rate")
    origin = selection.media.available_start if selection.media.available_start is not None else 0

    def media_index(frame: int) -> int:
        """Nearest media frame of a clip source frame (exact when the rates agree)."""
        seconds = Fraction(frame) / rate - Fraction(origin) / selection.media.rate
        return math.floor(seconds * media.rate + Fraction(1, 2))

    first, last = media_index(selection.source_start), media_index(selection.source_end - 1)
    if first < 0 or last >= media.frame_count or selection.source_duration <= 0:
        raise JobError("range_outside_media",
                       f"clip {selection.clip_name!r} uses source frames {selection.source_start}.."
                       f"{selection.source_end - 1} (media frames {first}..{last}) but {media.path} has "
                       f"{media.frame_count} frames (0..{media.frame_count - 1}); trim the clip to its media")
    handles = selection.handles

    plan = JobPlan(request=request, op=op, selection=selection, media=media, rate=rate,
                   read_start=selection.source_start, media_indices=[], take_start=selection.source_start,
                   take_count=selection.source_duration, head_handles=0, tail_handles=0)
    # Handles are clamped to the media: the backend may use them and the editor can trim into them.
    head = selection.head_handles if selection.head_handles >= 0 else handles
    tail = selection.tail_handles if selection.tail_handles >= 0 else handles
    plan.head_handles = min(head, first)
    plan.tail_handles = min(tail, media.frame_count - 1 - last)
    if op == "extend":
        _plan_extend(plan, request.extend, limits)
    elif op == "refine":
        strength = request.refine.strength if request.HasField("refine") else 0.5
        if not 0.0 <= strength <= 1.0:
            raise JobError("bad_strength", f"refine strength {strength:g} is outside 0..1")
        plan.strength = strength
    else:
        _plan_inpaint(plan, request.inpaint if request.HasField("inpaint") else None, limits)
    plan.read_start = selection.source_start - plan.head_handles
    read_end = selection.source_end + plan.tail_handles
    plan.media_indices = [media_index(f) for f in range(plan.read_start, read_end)]
    if plan.extend_side == "head":
        plan.take_start = plan.read_start - plan.extend_frames
    else:
        plan.take_start = plan.read_start
    plan.take_count = plan.read_count + plan.extend_frames
    return finish_plan(plan, limits, default_take_dir, seed, origin)


def finish_plan(plan: JobPlan, limits: Limits, default_take_dir: Path, seed, origin: int) -> JobPlan:
    """What every operation checks the same way: the contract's reference images, thresholds,
    frame limits and output, the seed and the take's timecode."""
    request, media = plan.request, plan.media
    plan.tier = "draft" if request.tier == pb.TIER_DRAFT else "final"
    plan.feather = request.contract.constraints.mask_feather_px
    for ref in request.contract.reference_images:
        path = str(limits.check_path(resolve_media_url(ref.url, limits.cas_dir), "reference image"))
        if not os.path.isfile(path):
            raise JobError("media_missing", f"reference image {ref.name or ref.role or ''} {ref.url} not found",
                           grpc.StatusCode.NOT_FOUND)
        os.close(limits.roots.open_regular(path, "reference image"))
        plan.reference_paths.append(path)
    _check_characters(request.contract, plan.reference_paths)
    try:
        thresholds_from(request.contract.review.thresholds)
    except ValueError as err:
        raise JobError("bad_threshold", str(err)) from None
    contract = request.contract
    max_frames = min(limits.max_frames, contract.constraints.max_frames or limits.max_frames,
                     contract.budget.max_frames or limits.max_frames)
    if plan.take_count > max_frames:
        raise JobError("too_many_frames", f"the take would have {plan.take_count} frames, over the limit of "
                       f"{max_frames}; select a shorter range")
    plan.codec = contract.output.codec or pb.PRORES_422_HQ
    if plan.codec not in CODECS:
        raise JobError("bad_codec", f"codec {contract.output.codec} is not one of "
                       f"{', '.join(pb.Codec.Name(c) for c in CODECS)}")
    if plan.codec == pb.H264_PROXY and (media.width % 2 or media.height % 2):
        raise JobError("bad_codec", f"H.264 needs even sizes and the media is {media.width}x{media.height}; "
                       f"choose PRORES_422_HQ, DNXHR or FFV1")
    if plan.codec == pb.DNXHR and (media.width < 256 or media.height < 120):
        raise JobError("bad_codec", f"DNxHR needs at least 256x120 and the media is {media.width}x{media.height}; "
                       f"choose PRORES_422_HQ or FFV1")
    take_dir = contract.output.take_dir or str(default_take_dir)
    plan.take_dir = limits.roots.check_folder(take_dir, "take folder")
    plan.color = color.resolve(contract.color.input_space, contract.color.config, media.color.transfer)
    plan.seed = contract.seed if contract.HasField("seed") else (seed if seed is not None else random.randrange(2**31))
    plan.start_timecode, plan.drop_frame = _take_timecode(plan, origin)
    return plan


def _check_characters(contract, reference_paths: list[str]) -> None:
    """Each cited character's hash must match its name, description and images as they are now:
    the manifest then records exactly which character the shot was asked for."""
    from bridge.contract import character_hash

    for character in contract.characters:
        images = [path for ref, path in zip(contract.reference_images, reference_paths)
                  if ref.role == "character" and ref.name == character.name]
        if not images:
            raise JobError("bad_character", f"character {character.name!r} has no images among the reference "
                                            f"images (role 'character', name {character.name!r})")
        found = character_hash(character.name, character.description, [paths.sha256_of(Path(p)) for p in images])
        if found != character.sha256:
            raise JobError("bad_character", f"character {character.name!r} does not match its hash: its images or "
                                            f"description changed since the request was made; send it again")


def _plan_extend(plan: JobPlan, params: "pb.ExtendParams", limits: Limits) -> None:
    if params.frames <= 0:
        raise JobError("bad_frames", f"extend needs frames > 0, not {params.frames}")
    if params.frames > limits.max_extend_frames:
        raise JobError("bad_frames", f"extending by {params.frames} frames is over the server limit of "
                       f"{limits.max_extend_frames}")
    plan.extend_side = "head" if params.side == pb.HEAD else "tail"
    plan.extend_frames = params.frames
    # The extended edge is new material: no handles on that side.
    if plan.extend_side == "head":
        plan.head_handles = 0
    else:
        plan.tail_handles = 0


def _plan_inpaint(plan: JobPlan, params, limits: Limits) -> None:
    if params is None or not params.mask_url:
        raise JobError("mask_missing", "inpaint needs a mask (white = regenerate): a movie, image sequence or "
                       "still image of the clip's size", grpc.StatusCode.INVALID_ARGUMENT)
    mask_path = resolve_media_url(params.mask_url, limits.cas_dir)
    mask_path = str(limits.check_path(mask_path, "mask"))   # before existence: refusals reveal nothing
    if not os.path.exists(mask_path) and not os.path.isdir(os.path.dirname(mask_path) or "."):
        raise JobError("mask_missing", f"mask {params.mask_url} not found", grpc.StatusCode.NOT_FOUND)
    try:
        mask = probe(mask_path, rate=plan.rate)
    except MediaError as exc:
        if exc.code == "media_missing":
            raise JobError("mask_missing", str(exc), grpc.StatusCode.NOT_FOUND) from None
        raise
    if mask.size != plan.media.size:
        raise JobError("mask_size_mismatch", f"mask {mask_path} is {mask.width}x{mask.height} but clip "
                       f"{plan.selection.clip_name!r} is {plan.media.width}x{plan.media.height}; "
                       f"render the mask at the clip's size")
    still = mask.frame_count == 1 and not mask.is_sequence
    if not still and mask.frame_count < plan.selection.source_duration:
        raise JobError("mask_too_short", f"mask {mask_path} has {mask.frame_count} frames but clip "
                       f"{plan.selection.clip_name!r} is {plan.selection.source_duration} frames; its frame 0 "
                       f"is the clip's first frame")
    plan.mask_path, plan.mask_invert, plan.mask_grow = mask_path, params.invert, params.grow_pixels


def _take_timecode(plan: JobPlan, origin: int) -> tuple[str, bool]:
    """Timecode of the take's first frame: the media's own timecode numbering when it has one,
    else the OTIO reference's (timecode-absolute) numbering; none at all when the media has no
    timecode and the take starts before that numbering's 00:00:00:00 (a head extension of
    media counted from 0), rather than a label on the day before (plan.timecode_note says so)."""
    drop = plan.media.drop_frame if plan.media.start_timecode else is_drop_frame_rate(plan.rate)
    if not has_timecode(plan.rate):
        seconds = float(Fraction(plan.take_start) / plan.rate)
        plan.timecode_note = (f"no timecode: {float(plan.rate):.6g} fps has no SMPTE timecode (not a whole number of "
                              f"frames a second); the take's first frame is the media's frame {plan.take_start}, "
                              f"{seconds:.3f} s in")
        return "", False
    if plan.media.start_timecode:
        base = from_timecode(plan.media.start_timecode, plan.rate) - origin
    else:
        base = 0
        if plan.take_start < 0:
            plan.timecode_note = (f"no timecode: the media has none and the take starts {-plan.take_start} "
                                  f"frame(s) before its frame 0, which would label it on the day before")
            return "", drop
    return to_timecode(base + plan.take_start, plan.rate, drop), drop
