"""The one table between the API's enum values and the names people and files use."""
from __future__ import annotations

from .generation_pb2 import CameraMove, Codec, ExtendSide, FallbackPolicy, GenerateMode, JobState, Operation, TakeStatus

# lower-case names, as typed on command lines, stored in manifests and shown in editors
OPERATIONS = ("refine", "extend", "inpaint", "generate")
GENERATE_MODES = ("text", "image", "keyframes", "references")     # "" / "auto": from what is given
CAMERA_MOVES = ("static", "push_in", "pull_out", "pan_left", "pan_right", "tilt_up", "tilt_down")
SIDES = ("tail", "head")
FALLBACKS = ("fail", "degrade", "classic")
# what users type (`--codec lossless`) -> the API's Codec name
CODEC_CHOICES = {"prores": "PRORES_422_HQ", "lossless": "FFV1", "png": "PNG_SEQUENCE", "h264": "H264_PROXY",
                 "exr": "EXR_SEQUENCE", "dnxhr": "DNXHR"}


def operation_value(name: str) -> int:
    """'refine' -> Operation.REFINE; a ValueError naming the choices otherwise."""
    return _value(Operation, name, OPERATIONS, "operation")


def operation_name(value: int) -> str:
    """Operation.REFINE -> 'refine'."""
    return Operation.Name(value).lower()


def side_value(name: str) -> int:
    return _value(ExtendSide, name, SIDES, "extension side")


def generate_mode_value(name: str) -> int:
    """'image' -> GenerateMode.IMAGE; '' or 'auto' -> unspecified (the server infers it)."""
    if str(name).strip().lower() in ("", "auto"):
        return GenerateMode.GENERATE_MODE_UNSPECIFIED
    return _value(GenerateMode, name, GENERATE_MODES, "generate mode")


def camera_value(name: str) -> int:
    """'push_in' (or 'push-in') -> CameraMove.PUSH_IN; '' -> unspecified (the server's default)."""
    key = str(name).strip().lower().replace("-", "_")
    if key in ("", "auto"):
        return CameraMove.CAMERA_MOVE_UNSPECIFIED
    return _value(CameraMove, key, CAMERA_MOVES, "camera move")


def fallback_value(name: str) -> int:
    return _value(FallbackPolicy, name, FALLBACKS, "fallback")


def codec_value(name: str) -> int:
    """A codec by the name users type ('lossless') or the API's ('FFV1')."""
    api_name = CODEC_CHOICES.get(name.lower(), name.upper())
    if api_name not in Codec.keys() or api_name == "CODEC_UNSPECIFIED":
        raise ValueError(f"codec {name!r} is not one of {', '.join(CODEC_CHOICES)} "
                         f"(or {', '.join(CODEC_CHOICES.values())})")
    return Codec.Value(api_name)


def state_name(value: int) -> str:
    return JobState.Name(value).lower()


def status_name(value: int) -> str:
    return TakeStatus.Name(value).lower()


def _value(enum, name: str, choices: tuple[str, ...], what: str) -> int:
    key = str(name).strip().lower()
    if key not in choices:
        raise ValueError(f"{what} {name!r} is not one of {', '.join(choices)}")
    return enum.Value(key.upper())
