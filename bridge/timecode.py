"""Rates and timecode: exact rational rates, SMPTE timecode strings, proto Rate conversion.

OTIO stores rates as floats; they are snapped back to the exact rational here, once.
"""
from __future__ import annotations

import re
from fractions import Fraction

import opentimelineio as otio

from .api import pb
from .errors import TakeBridgeError

# Rates editors and cameras use (the one table: server/media/probe.py snaps containers' rates to
# it too); a float read from OTIO or a container snaps to the nearest of these when it is within
# 0.01 %, otherwise to the closest fraction with a denominator <= 1001.
KNOWN_RATES = tuple(Fraction(r) for r in (
    "24000/1001", "24", "25", "30000/1001", "30", "48000/1001", "48", "50", "60000/1001", "60",
    "120000/1001", "120", "12", "15", "16", "100"))
DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))
DAY_SECONDS = 24 * 3600
MAX_RATE = 100_000   # frames per second; beyond any camera, and a bound for the arithmetic
MIN_RATE = Fraction(1, 1000)   # one frame in 1000 s: below this a "rate" is a mistake, not footage
_RATE_TEXT = re.compile(r"^\d{1,12}(\.\d{1,12})?(/\d{1,12})?$")
_TIMECODE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})([:;])(\d{2})$")


class RateError(TakeBridgeError):
    """A frame rate that cannot be used, with the value and what to do."""

    code = "bad_rate"


def exact_rate(rate) -> Fraction:
    """Fraction for a rate given as Fraction, int, float, "24000/1001", "23.976" or pb.Rate."""
    if isinstance(rate, pb.Rate):
        if rate.num <= 0 or rate.den <= 0:
            raise RateError(f"rate {rate.num}/{rate.den} is not positive; send e.g. 24000/1001")
        value = Fraction(rate.num, rate.den)
        if not MIN_RATE <= value <= MAX_RATE:
            raise RateError(f"rate {rate.num}/{rate.den} is outside {MIN_RATE}..{MAX_RATE} frames per second")
        return value
    if isinstance(rate, Fraction):
        value = rate
    elif isinstance(rate, str):
        if not _RATE_TEXT.match(rate.strip()):
            raise RateError(f"frame rate {rate[:40]!r} is not a number; write e.g. 25 or 24000/1001")
        try:
            value = Fraction(rate.strip())
        except (ValueError, ZeroDivisionError):
            raise RateError(f"frame rate {rate!r} is not a number; write e.g. 25 or 24000/1001") from None
    elif isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise RateError(f"frame rate {str(rate)[:40]!r} is not a number; write e.g. 25 or 24000/1001")
    else:
        try:
            value = Fraction(rate)
        except (ValueError, OverflowError):   # NaN, infinity
            raise RateError(f"frame rate {rate!r} is not a finite number; write e.g. 25 or 24000/1001") from None
    if value <= 0:
        raise RateError(f"frame rate {rate!r} must be positive")
    if value < MIN_RATE:
        raise RateError(f"frame rate {rate!r} is below {MIN_RATE} frames per second; check the clip's rate")
    if value > MAX_RATE:
        raise RateError(f"frame rate {rate!r} is above {MAX_RATE} frames per second")
    return snap_rate(value) or value.limit_denominator(1001)


def snap_rate(value: Fraction, within: Fraction = Fraction(1, 10000)) -> "Fraction | None":
    """The known rate `value` stands for (within that share of it), or None. Known rates sit at
    least 0.1 % apart, so a far closer match is the one meant (Matroska stores 60000/1001 as
    19001/317: whole nanoseconds a frame)."""
    for known in KNOWN_RATES:
        if abs(value - known) <= known * within:
            return known
    return None


def to_pb_rate(rate) -> "pb.Rate":
    r = exact_rate(rate)
    return pb.Rate(num=r.numerator, den=r.denominator)


def rate_text(rate) -> str:
    r = exact_rate(rate)
    return str(r.numerator) if r.denominator == 1 else f"{r.numerator}/{r.denominator}"


def has_timecode(rate) -> bool:
    """Whether frames at this rate can carry an SMPTE-style label: a whole number of frames a
    second (12, 15, 24, 25, 30...) or an NTSC rate (24000/1001, 30000/1001...). 26.78 or 29.966 fps
    (phones, surveillance) cannot: their frames are numbered and timed, never labelled."""
    value = exact_rate(rate)
    return value.denominator == 1 or (value * Fraction(1001, 1000)).denominator == 1


def is_drop_frame_rate(rate) -> bool:
    return exact_rate(rate) in DROP_FRAME_RATES


def frames_per_day(rate, drop_frame: bool | None = None) -> int:
    """Frames in 24 h of timecode (nominal rate for 1001 rates, as timecode counts them)."""
    r = exact_rate(rate)
    nominal = round(r)
    if drop_frame is None:
        drop_frame = is_drop_frame_rate(r)
    if drop_frame:
        # drop frame skips 2 (or 4) labels per minute except every tenth minute
        per_10min = nominal * 600 - (nominal // 30) * 2 * 9
        return per_10min * 6 * 24
    return nominal * DAY_SECONDS


def to_timecode(frame: int, rate, drop_frame: bool | None = None) -> str:
    """SMPTE timecode of an absolute frame number (wraps at 24 h, like a timecode track)."""
    r = exact_rate(rate)
    if drop_frame is None:
        drop_frame = is_drop_frame_rate(r)
    if drop_frame and not is_drop_frame_rate(r):
        raise RateError(f"drop-frame timecode needs 30000/1001 or 60000/1001, not {rate_text(r)}")
    frame %= frames_per_day(r, drop_frame)
    if drop_frame:
        return otio.opentime.to_timecode(otio.opentime.RationalTime(frame, float(r)), float(r), drop_frame)
    # non-drop labels count whole frames at the nominal rate (23.976 counts at 24, a camera's
    # odd 26.777 at 27, as a timecode track does); OTIO knows only the standard rates
    fps = round(r)
    seconds, frames = divmod(frame, fps)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{frames:02d}"


def from_timecode(timecode: str, rate) -> int:
    """Absolute frame number of a timecode ("01:00:00:00", drop frame "00:59:59;28").

    Refuses labels that do not exist: fields out of range, ';' at a rate without drop frame,
    and the labels drop-frame counting skips (00:01:00;00), which OTIO would quietly move.
    """
    r = exact_rate(rate)
    text = timecode.strip() if isinstance(timecode, str) else ""
    match = _TIMECODE.match(text)
    if match is None:
        raise RateError(f"timecode {timecode!r} is not HH:MM:SS:FF (or HH:MM:SS;FF for drop frame)")
    hours, minutes, seconds, separator, frames = match.groups()
    fps = round(r)
    if int(hours) > 23 or int(minutes) > 59 or int(seconds) > 59 or int(frames) >= fps:
        raise RateError(f"timecode {timecode!r} has a field out of range at {rate_text(r)} fps "
                        f"(hours < 24, minutes and seconds < 60, frames < {fps})")
    drop = separator == ";"
    if drop and not is_drop_frame_rate(r):
        raise RateError(f"timecode {timecode!r} is drop frame (';') but {rate_text(r)} fps has no drop-frame "
                        f"counting; write it with ':'")
    if not drop:   # whole frames at the nominal rate (see to_timecode)
        return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * fps + int(frames)
    frame = otio.opentime.from_timecode(text, float(r)).to_frames()
    if to_timecode(frame, r, drop) != text:
        raise RateError(f"timecode {timecode!r} does not exist in drop-frame counting at {rate_text(r)} fps, "
                        f"which skips labels 00 to {fps // 15 - 1:02d} at the start of every minute not "
                        f"divisible by 10")
    return frame


def shift_timecode(timecode: str, frames: int, rate, drop_frame: bool | None = None) -> str:
    """`timecode` moved by `frames` (negative moves earlier), wrapping around midnight;
    drop_frame=None keeps the counting the label already uses."""
    if drop_frame is None:
        drop_frame = ";" in timecode
    return to_timecode(from_timecode(timecode, rate) + frames, rate, drop_frame)


def rational_time(frame: int, rate) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(frame, float(exact_rate(rate)))


def frames_of(time: otio.opentime.RationalTime, rate=None) -> int:
    """Integer frame of an OTIO time, in its own rate or rescaled to `rate` (rounded)."""
    if rate is None:
        return round(time.value)
    return round(time.value_rescaled_to(float(exact_rate(rate))))
