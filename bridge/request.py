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
from . import files
from .errors import TakeBridgeError
from .api import pb
from .client import new_request_id

OPTIONS_VERSION = 1


class RequestError(TakeBridgeError):
    """Options that cannot make a job; the message names the value and what to do."""

    code = "bad_request"


@dataclasses.dataclass
class Reference:
    """A reference image for the model: a storyboard frame, a style or a character sheet."""

    path: str
    role: str = "reference"


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
                  request_id: str = "") -> pb.SubmitJobRequest:
    """The SubmitJobRequest for one selection (a job timeline: bridge.timeline.job_timeline).

    Refuses here what the server would refuse later, naming the value: an unknown operation,
    codec or fallback, an extension of no frames, an inpaint without a mask file, a reference
    image that is not there.
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
    return request


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
