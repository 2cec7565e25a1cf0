"""Bounds on every field a client sends, checked before any work is done on a request.

Each bound is here, in one table per message, so a reviewer can see them all at once; the
service checks them first, and a refusal names the field, the value and the allowed range.
"""
from __future__ import annotations

import math

from bridge.api import pb
from server.errors import JobError

MAX_SELECTION_BYTES = 4 << 20      # an OTIO selection of one clip is a few KiB; 4 MiB is generous
MAX_SEED = 2**53 - 1               # exact in JSON numbers, so manifests and scripts keep it exactly
MAX_GROW_PIXELS = 256              # mask dilation; each pixel costs a dilation pass per frame
MAX_FEATHER_PIXELS = 64
MAX_REFERENCE_IMAGES = 16
MAX_THRESHOLDS = 32
MAX_NOTE_CHARS = 8192              # a reviewer's note; stored, listed and sent back with every take
MAX_REVIEWER_CHARS = 256
MAX_GENERATE_SIZE = 8192      # pixels a side of a generated shot (8K)
MAX_PROMPT_CHARS = 8192
MAX_ID_CHARS = 128                 # request ids, job ids, take ids, backend and model names
MAX_PATH_CHARS = 4096
MAX_LIST_LIMIT = 1000
MIN_CHUNK, MAX_CHUNK = 4 << 10, 4 << 20
MAX_COMPUTE_SECONDS = 7 * 24 * 3600.0


def _text(value: str, field: str, limit: int) -> None:
    if len(value) > limit:
        raise JobError("field_too_long", f"{field} is {len(value)} characters long, over the limit of {limit}; "
                                         f"shorten it")
    if "\x00" in value:
        raise JobError("bad_text", f"{field} contains a NUL character; remove it")


def _count(value: int, field: str, low: int, high: int, hint: str = "") -> None:
    if not low <= value <= high:
        raise JobError("out_of_range", f"{field} is {value}, outside {low}..{high}{hint}")


def check_submit(request: "pb.SubmitJobRequest", max_frames: int, max_handles: int) -> None:
    """Every field of a SubmitJobRequest within its bound (the timeline's own numbers are
    checked where the selection is read: bridge.selection and server.otio_guard)."""
    _text(request.request_id, "request_id", MAX_ID_CHARS)
    if any(ord(c) < 32 for c in request.request_id):
        raise JobError("bad_text", "request_id contains control characters; send a UUID")
    if len(request.selection_otio.encode("utf-8", "surrogatepass")) > MAX_SELECTION_BYTES:
        raise JobError("field_too_long", f"selection_otio is {len(request.selection_otio.encode())} bytes, over "
                                         f"the limit of {MAX_SELECTION_BYTES}; send only the selected clip "
                                         f"(bridge.timeline.export_selection)")
    _text(request.backend, "backend", MAX_ID_CHARS)
    _text(request.model, "model", MAX_ID_CHARS * 2)
    _text(request.client, "client", MAX_ID_CHARS * 2)
    if request.HasField("refine"):
        strength = request.refine.strength
        if not math.isfinite(strength) or not 0.0 <= strength <= 1.0:
            raise JobError("bad_strength", f"refine strength {strength:g} is outside 0..1")
    if request.HasField("extend"):
        _count(request.extend.context_frames, "extend.context_frames", 0, max_frames)
    if request.HasField("inpaint"):
        _text(request.inpaint.mask_url, "inpaint.mask_url", MAX_PATH_CHARS)
        _count(request.inpaint.grow_pixels, "inpaint.grow_pixels", 0, MAX_GROW_PIXELS,
               " pixels; grow the mask in the editor for more")
    if request.HasField("generate"):
        params = request.generate
        for which in ("first", "last"):
            _text(getattr(params, which).url, f"generate.{which}.url", MAX_PATH_CHARS)
            _count(getattr(params, which).frame, f"generate.{which}.frame", 0, 10**9)
        _count(params.width, "generate.width", 0, MAX_GENERATE_SIZE)
        _count(params.height, "generate.height", 0, MAX_GENERATE_SIZE)
        if not math.isfinite(params.camera_amount) or not 0.0 <= params.camera_amount <= 1.0:
            raise JobError("bad_camera", f"generate.camera_amount {params.camera_amount:g} is outside 0..1 (0.15 = "
                                         f"15 % of the picture)")
    if request.tier not in pb.Tier.values():
        raise JobError("bad_tier", f"tier {request.tier} is not one of {', '.join(pb.Tier.keys())}")
    _text(request.promoted_from, "promoted_from", MAX_ID_CHARS)
    contract = request.contract
    _text(contract.prompt, "contract.prompt", MAX_PROMPT_CHARS)
    _text(contract.negative_prompt, "contract.negative_prompt", MAX_PROMPT_CHARS)
    if len(contract.reference_images) > MAX_REFERENCE_IMAGES:
        raise JobError("out_of_range", f"{len(contract.reference_images)} reference images, over the limit of "
                                       f"{MAX_REFERENCE_IMAGES}")
    for index, ref in enumerate(contract.reference_images):
        _text(ref.url, f"contract.reference_images[{index}].url", MAX_PATH_CHARS)
        _text(ref.role, f"contract.reference_images[{index}].role", MAX_ID_CHARS)
        _text(ref.name, f"contract.reference_images[{index}].name", MAX_ID_CHARS * 2)
    _text(contract.role, "contract.role", MAX_ID_CHARS)
    _text(contract.purpose, "contract.purpose", MAX_PROMPT_CHARS)
    if len(contract.characters) > MAX_REFERENCE_IMAGES or len(contract.must_not_change) > MAX_THRESHOLDS:
        raise JobError("out_of_range", f"{len(contract.characters)} characters and {len(contract.must_not_change)} "
                                       f"must-not-change notes, over the limits of {MAX_REFERENCE_IMAGES} and "
                                       f"{MAX_THRESHOLDS}")
    for index, character in enumerate(contract.characters):
        _text(character.name, f"contract.characters[{index}].name", MAX_ID_CHARS)
        _text(character.description, f"contract.characters[{index}].description", MAX_PROMPT_CHARS)
        _text(character.sha256, f"contract.characters[{index}].sha256", 64)
    for index, note in enumerate(contract.must_not_change):
        _text(note, f"contract.must_not_change[{index}]", MAX_PROMPT_CHARS)
    constraints = contract.constraints
    _count(constraints.max_frames, "contract.constraints.max_frames", 0, 2**31 - 1)
    _count(constraints.keep_head_frames, "contract.constraints.keep_head_frames", 0, max_frames)
    _count(constraints.keep_tail_frames, "contract.constraints.keep_tail_frames", 0, max_frames)
    _count(constraints.mask_feather_px, "contract.constraints.mask_feather_px", 0, MAX_FEATHER_PIXELS,
           " pixels")
    _count(contract.output.bit_depth, "contract.output.bit_depth", 0, 32)
    _text(contract.color.input_space, "contract.color.input_space", MAX_ID_CHARS * 2)
    _text(contract.color.config, "contract.color.config", MAX_ID_CHARS * 2)
    _text(contract.output.take_dir, "contract.output.take_dir", MAX_PATH_CHARS)
    if len(contract.review.thresholds) > MAX_THRESHOLDS:
        raise JobError("out_of_range", f"{len(contract.review.thresholds)} gate thresholds, over the limit of "
                                       f"{MAX_THRESHOLDS}")
    for name, value in contract.review.thresholds.items():
        _text(name, "contract.review.thresholds key", MAX_ID_CHARS)
        if not math.isfinite(value):
            raise JobError("bad_threshold", f"threshold {name!r} is {value}; give a finite number")
    if contract.HasField("seed"):
        _count(contract.seed, "contract.seed", 0, MAX_SEED, " (leave it unset for a random seed)")
    _count(contract.budget.max_frames, "contract.budget.max_frames", 0, 2**31 - 1)
    seconds = contract.budget.max_compute_seconds
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_COMPUTE_SECONDS:
        raise JobError("out_of_range", f"contract.budget.max_compute_seconds is {seconds:g}, outside "
                                       f"0..{MAX_COMPUTE_SECONDS:g} (0 = no limit)")
    if contract.fallback not in pb.FallbackPolicy.values():
        raise JobError("out_of_range", f"contract.fallback {contract.fallback} is not a fallback policy "
                                       f"(FAIL, DEGRADE, CLASSIC)")


def check_review(request: "pb.ReviewTakeRequest") -> None:
    _text(request.take_id, "take_id", MAX_ID_CHARS * 2)
    _text(request.note, "note", MAX_NOTE_CHARS)
    _text(request.reviewer, "reviewer", MAX_REVIEWER_CHARS)


def check_list(request: "pb.ListJobsRequest") -> int:
    """The row limit of a ListJobs request (0 = 100)."""
    _count(request.limit, "limit", 0, MAX_LIST_LIMIT)
    _text(request.shot, "shot", MAX_PATH_CHARS)
    for state in request.states:
        if state not in pb.JobState.values():
            raise JobError("out_of_range", f"states holds {state}, not a job state")
    return request.limit or 100


def check_chunk_size(size: int) -> int:
    if size == 0:
        return 1 << 20
    _count(size, "chunk_size", MIN_CHUNK, MAX_CHUNK, " bytes (0 = 1 MiB)")
    return size


def check_id(value: str, field: str) -> None:
    _text(value, field, MAX_ID_CHARS * 2)
