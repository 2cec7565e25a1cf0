"""Timecode for media I/O: bridge.timecode's labels and frame counts, with MediaError codes.

One implementation lives in bridge/ (editor-agnostic); this room only maps its errors.
"""
from __future__ import annotations

from fractions import Fraction

from bridge import timecode as _tc

from .errors import MediaError

DROP_FRAME_RATES = _tc.DROP_FRAME_RATES


def is_drop_frame(timecode: str) -> bool:
    """True when the label uses the drop-frame ';' separator before the frames field."""
    return ";" in timecode


def timecode_to_frames(timecode: str, rate: Fraction | int) -> int:
    """Frame count since 00:00:00:00 of `timecode` ("01:00:00:00", or "00:59:59;28" drop-frame)."""
    try:
        return _tc.from_timecode(timecode, rate)
    except _tc.RateError as err:
        raise MediaError("bad_timecode", str(err)) from None


def frames_to_timecode(frames: int, rate: Fraction | int, drop_frame: bool = False) -> str:
    """The label of frame `frames` counted from 00:00:00:00, within one 24-hour day."""
    if not isinstance(frames, int) or frames < 0:
        raise MediaError("bad_timecode", f"frame count {frames!r} must be a whole number >= 0")
    day = _tc.frames_per_day(rate, drop_frame)
    if frames >= day:
        raise MediaError("bad_timecode", f"frame {frames} is past 23:59:59 at {rate} fps ({day} frames a day); "
                                         f"use shift_timecode to wrap around midnight")
    try:
        return _tc.to_timecode(frames, rate, drop_frame)
    except _tc.RateError as err:
        raise MediaError("bad_timecode", str(err)) from None


def shift_timecode(timecode: str, frames: int, rate: Fraction | int, drop_frame: bool | None = None) -> str:
    """`timecode` moved by `frames` (negative moves earlier), wrapping around midnight."""
    try:
        return _tc.shift_timecode(timecode, frames, rate, drop_frame)
    except _tc.RateError as err:
        raise MediaError("bad_timecode", str(err)) from None
