"""What an editor asks the server for: versioned job options, and the one request builder.

Every editor (Blender, Resolve, the OTIO-file command line) keeps its options as a `JobOptions`
(saved as `to_dict()`, read back with `from_dict`, older versions migrated forward) and turns a
selection into a request with `build_request`. Nothing else builds a SubmitJobRequest.
"""
from __future__ import annotations

import dataclasses
import os
import urllib.parse
from typing import Optional

import opentimelineio as otio

from .api import names
from . import contract as contract_module
from .contract import Reference  # noqa: F401  (editors import it from here)
from . import files
from .errors import TakeBridgeError
from .api import pb
from .client import new_request_id

OPTIONS_VERSION = 1


class RequestError(TakeBridgeError):
    """Options that cannot make a job; the message names the value and what to do."""

    code = "bad_request"


@dataclasses.dataclass
class JobOptions:
    """The choices behind a job, editor-neutral. Lengths are in frames of the timeline's rate."""

    op: str = "refine"
    strength: float = 0.5                # refine
    frames: int = 24                     # extend
    side: str = "tail"                   # extend: "tail" or "head"
    mask: str = ""                       # inpaint: a matte file (white = regenerate)
    feather: int = 0                     # inpaint: soft mask edge, pixels inside the mask
    prompt: str = ""
    negative_prompt: str = ""
    seed: Optional[int] = None           # None: the server picks one (and records it)
    codec: str = "prores"                # a name users type (names.CODEC_CHOICES) or the API's
    backend: str = ""                    # "" = the server's default
    model: str = ""
    fallback: str = "fail"               # names.FALLBACKS
    max_compute_seconds: float = 0.0     # 0 = no budget
    references: list[Reference] = dataclasses.field(default_factory=list)
    take_dir: str = ""                   # "" = the server's default
    handles: int = 0                     # frames of source either side sent as context
    placement: str = "gap"               # extend: "gap" (the following gap) or "track" (a track above)
    mode: str = ""                       # generate: names.GENERATE_MODES, "" = from what is given
    image: str = ""                      # generate: a storyboard still (or a movie: image_frame is its frame)
    image_frame: int = 0
    keyframes: str = "auto"              # generate: "auto" = the neighbouring clips' frames when both touch the gap
    camera: str = ""                     # generate: names.CAMERA_MOVES, "" = push in on a board
    camera_amount: float = 0.0           # generate: 0 = 0.15 (15 % zoom or travel)
    width: int = 0                       # generate: the shot's size; 0 = the board's (else 1920x1080)
    height: int = 0
    burn_in: bool = False                # generate: mark the frames PRE-VIS
    # the shot contract beyond the prompt (bridge/contract.py reads and writes them as files)
    role: str = ""
    purpose: str = ""
    characters: list[str] = dataclasses.field(default_factory=list)   # names in the character library
    must_not_change: list[str] = dataclasses.field(default_factory=list)
    keep_head_frames: int = 0
    keep_tail_frames: int = 0
    duration: int = 0                    # generate: the shot's length in frames when no range is given
    max_frames: int = 0                  # refuse a longer job; 0 = the server's limit
    thresholds: dict = dataclasses.field(default_factory=dict)        # gate name -> threshold
    tier: str = ""                       # generative backends: "draft" (few steps) or "final" ("" = final)
    promoted_from: str = ""              # "final from this draft": the draft take's id

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["version"] = OPTIONS_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "JobOptions":
        """Options saved by any version; older names are carried forward, unknown keys ignored."""
        data = dict(data)
        version = int(data.pop("version", 0))
        if version > OPTIONS_VERSION:
            raise RequestError(f"these options were saved by a newer TakeBridge (options version {version}, this "
                               f"one reads up to {OPTIONS_VERSION}): update TakeBridge")
        if version == 0:   # before options were versioned: Blender's panel and Resolve's dialog names
            for old, new in (("operation", "op"), ("mask_path", "mask"), ("feather_px", "feather")):
                if old in data and new not in data:
                    data[new] = data.pop(old)
            if isinstance(data.get("side"), str):
                data["side"] = data["side"].lower()
        fields = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in fields}
        kept["references"] = [r if isinstance(r, Reference) else Reference(**r) for r in kept.get("references", [])]
        return cls(**kept)


def build_request(selection: otio.schema.Timeline, options: JobOptions, *, client: str,
                  request_id: str = "", keyframes=None, library=None) -> pb.SubmitJobRequest:
    """The SubmitJobRequest for one selection (a job timeline: bridge.timeline.job_timeline).

    Refuses here what the server would refuse later, naming the value: an unknown operation,
    codec or fallback, an extension of no frames, an inpaint without a mask file, a reference
    image that is not there. `keyframes` (generate): the (first, last) frames of the clips either
    side of the gap (bridge.previs.FrameSource), used when options.keyframes is "auto".
    `library`: the project's characters (bridge.contract.read_library), for options.characters.
    """
    try:
        operation = names.operation_value(options.op)
        codec = names.codec_value(options.codec)
        fallback = names.fallback_value(options.fallback)
    except ValueError as err:
        raise RequestError(str(err)) from None
    request = pb.SubmitJobRequest(request_id=request_id or new_request_id(), operation=operation,
                                  selection_otio=otio.adapters.write_to_string(selection, "otio_json"),
                                  backend=options.backend, model=options.model, client=client)
    if options.op == "refine":
        if not 0.0 <= float(options.strength) <= 1.0:
            raise RequestError(f"refine strength {options.strength} is outside 0..1 (0 = untouched, 1 = strongest)")
        request.refine.strength = float(options.strength)
    elif options.op == "extend":
        if int(options.frames) <= 0:
            raise RequestError(f"an extension needs at least 1 frame, not {options.frames}")
        try:
            request.extend.side = names.side_value(options.side)
        except ValueError as err:
            raise RequestError(str(err)) from None
        request.extend.frames = int(options.frames)
    elif options.op == "inpaint":
        request.inpaint.mask_url = _local_file(options.mask, "mask file", "inpaint needs a mask file (a movie, "
                                                             "image sequence or still; white = regenerate)")
    elif options.op == "generate":
        _generate_params(request.generate, options, keyframes)
    if options.tier not in ("", "draft", "final"):
        raise RequestError(f"tier {options.tier!r} is not draft or final")
    request.tier = {"draft": pb.TIER_DRAFT, "final": pb.TIER_FINAL}.get(options.tier, pb.TIER_UNSPECIFIED)
    request.promoted_from = options.promoted_from
    contract = request.contract
    contract.prompt, contract.negative_prompt = options.prompt, options.negative_prompt
    if options.seed is not None:
        contract.seed = int(options.seed)
    contract.fallback = fallback
    contract.budget.max_compute_seconds = float(options.max_compute_seconds)
    contract.constraints.mask_feather_px = int(options.feather)
    contract.output.codec = codec
    if options.take_dir:
        contract.output.take_dir = options.take_dir
    for ref in options.references:
        path = _local_file(ref.path, "reference image", "a reference image needs a file (a still image)")
        contract.reference_images.add(url=path, role=ref.role or "reference",
                                      name=os.path.splitext(os.path.basename(path))[0])
    contract.role, contract.purpose = options.role, options.purpose
    contract.must_not_change.extend(options.must_not_change)
    contract.constraints.keep_head_frames = int(options.keep_head_frames)
    contract.constraints.keep_tail_frames = int(options.keep_tail_frames)
    contract.constraints.max_frames = int(options.max_frames)
    for name, value in options.thresholds.items():
        contract.review.thresholds[str(name)] = float(value)
    characters = contract_module.resolve_characters(options.characters, library)
    for character in characters:
        for image in character.images:
            contract.reference_images.add(url=image, role="character", name=character.name)
        contract.characters.add(name=character.name, description=character.description, sha256=character.sha256())
    contract.prompt = contract_module.prompt_with(contract.prompt, characters)
    return request


def final_request(manifest_path: str, draft_id: str) -> tuple["pb.SubmitJobRequest", dict]:
    """"Final from this draft": the draft take's own request (from its manifest) again, at the
    final tier, with the same seed, recorded as promoted from the draft; (request, manifest).
    Refused, naming the take, when its manifest cannot be read or is not a draft's."""
    import json

    from google.protobuf import json_format

    try:
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as err:
        raise RequestError(f"the manifest of {draft_id} ({manifest_path}) cannot be read: {err}; is the server's take "
                           f"folder on this machine?") from None
    if (manifest.get("tier") or {}).get("tier") != "draft":
        raise RequestError(f"take {draft_id} is not a draft (its manifest says {manifest.get('tier')}); a final is made "
                           f"from a draft")
    request = json_format.ParseDict(manifest["request"], pb.SubmitJobRequest(), ignore_unknown_fields=True)
    request.request_id, request.tier, request.promoted_from = new_request_id(), pb.TIER_FINAL, draft_id
    request.contract.seed = int(manifest["seed"])
    return request, manifest


def _generate_params(params: "pb.GenerateParams", options: JobOptions, keyframes) -> None:
    try:
        params.mode = names.generate_mode_value(options.mode)
        params.camera = names.camera_value(options.camera)
    except ValueError as err:
        raise RequestError(str(err)) from None
    if not 0.0 <= float(options.camera_amount) <= 1.0:
        raise RequestError(f"camera amount {options.camera_amount} is outside 0..1 (0.15 = 15 % of the picture)")
    if (int(options.width) > 0) != (int(options.height) > 0) or int(options.width) < 0 or int(options.height) < 0:
        raise RequestError(f"give the shot's width and height together, not {options.width}x{options.height}")
    params.camera_amount, params.width, params.height = float(options.camera_amount), int(options.width), \
        int(options.height)
    params.burn_in = bool(options.burn_in)
    mode = params.mode
    if options.image:
        params.first.url = _local_file(options.image, "board image", "give a still image (PNG, JPEG) or a movie")
        params.first.frame = int(options.image_frame)
        if mode == pb.GENERATE_MODE_UNSPECIFIED:
            params.mode = pb.IMAGE
    elif options.keyframes == "auto" and keyframes is not None and mode in (pb.GENERATE_MODE_UNSPECIFIED,
                                                                            pb.KEYFRAMES):
        first, last = keyframes
        params.first.url, params.first.frame = first.path, first.frame
        params.last.url, params.last.frame = last.path, last.frame
    elif mode == pb.KEYFRAMES:
        raise RequestError("keyframes mode needs a clip on each side of the gap (their frames are the keyframes); "
                           "the gap has none on at least one side: give --image for a board, or a prompt")
    elif mode == pb.IMAGE:
        raise RequestError("image mode needs a board: give --image FILE (a still, or a movie and --image-frame N)")


def _local_file(path: str, what: str, missing: str) -> str:
    """An absolute path for a file the server will read; URLs the server resolves (cas:) pass."""
    if not path:
        raise RequestError(missing)
    scheme = urllib.parse.urlsplit(path).scheme
    if len(scheme) > 1 and scheme != "file":   # not a Windows drive letter
        return path
    local = urllib.parse.urlsplit(path).path if scheme == "file" else path
    if not os.path.exists(local):
        if not (files.is_pattern(local) and os.path.isdir(os.path.dirname(local) or ".")):   # a sequence's pattern
            raise RequestError(f"{what} {path} not found: {missing}")
    return os.path.abspath(local)
