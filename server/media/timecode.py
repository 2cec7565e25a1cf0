"""SMPTE timecode labels <-> integer frame counts at exact rational rates.

Built on opentimelineio.opentime; this room adds validation, 24-hour wrap and clear errors.
"""
from __future__ import annotations

import re
from fractions import Fraction

from opentimelineio import opentime

from .errors import MediaError

# Drop-frame counting only exists at the NTSC rates; everywhere else ';' is a typo.
DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))

_TIMECODE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})([:;])(\d{2})$")


def _checked_rate(rate: Fraction | int) -> Fraction:
    rate = Fraction(rate)
    # OTIO only takes a float; it snaps 23.976... back to the exact NTSC rate internally.
    if not opentime.RationalTime.is_valid_timecode_rate(float(rate)):
        raise MediaError(
            "bad_rate",
            f"rate {rate} fps has no SMPTE timecode; use one of 24000/1001, 24, 25, 30000/1001, "
            "30, 48000/1001, 48, 50, 60000/1001 or 60",
        )
    return rate


def nominal_fps(rate: Fraction | int) -> int:
    """Frames per timecode second: 24 for 24000/1001, 30 for 30000/1001, 25 for 25."""
    return round(_checked_rate(rate))


def is_drop_frame(timecode: str) -> bool:
    """True when the label uses the drop-frame ';' separator before the frames field."""
    return ";" in timecode


def frames_per_day(rate: Fraction | int, drop_frame: bool) -> int:
    """How many frames one 24-hour timecode day holds (2,589,408 at 30000/1001 drop-frame)."""
    fps = nominal_fps(rate)
    if not drop_frame:
        return 24 * 3600 * fps
    # Drop-frame skips fps/15 labels every minute except each tenth: 2 at 29.97, 4 at 59.94.
    dropped_per_minute = fps // 15
    return 24 * 3600 * fps - dropped_per_minute * (24 * 60 - 24 * 6)


def timecode_to_frames(timecode: str, rate: Fraction | int) -> int:
    """Frame count since 00:00:00:00 of `timecode` ("01:00:00:00", or "00:59:59;28" drop-frame)."""
    rate = _checked_rate(rate)
    label = timecode.strip() if isinstance(timecode, str) else ""
    match = _TIMECODE.match(label)
    if match is None:
        raise MediaError(
            "bad_timecode",
            f"timecode {timecode!r} is not HH:MM:SS:FF (or HH:MM:SS;FF for drop-frame)",
        )
    hours, minutes, seconds, separator, frames = match.groups()
    fps = round(rate)
    if int(hours) > 23 or int(minutes) > 59 or int(seconds) > 59 or int(frames) >= fps:
        raise MediaError(
            "bad_timecode",
            f"timecode {timecode!r} has a field out of range at {rate} fps "
            f"(hours < 24, minutes and seconds < 60, frames < {fps})",
        )
    if separator == ";" and rate not in DROP_FRAME_RATES:
        raise MediaError(
            "bad_timecode",
            f"timecode {timecode!r} is drop-frame (';') but {rate} fps has no drop-frame "
            "counting; write it with ':'",
        )
    frame_count = int(opentime.from_timecode(label, float(rate)).value)
    # OTIO quietly maps labels that drop-frame skips (00:01:00;00) onto a neighbour; refuse them.
    if frames_to_timecode(frame_count, rate, separator == ";") != label:
        raise MediaError(
            "bad_timecode",
            f"timecode {timecode!r} does not exist in drop-frame counting at {rate} fps, which "
            f"skips labels 00 to {fps // 15 - 1:02d} at the start of every minute not divisible by 10",
        )
    return frame_count


def frames_to_timecode(frames: int, rate: Fraction | int, drop_frame: bool = False) -> str:
    """The timecode label of frame `frames` counted from 00:00:00:00, within one 24-hour day."""
    rate = _checked_rate(rate)
    if drop_frame and rate not in DROP_FRAME_RATES:
        raise MediaError(
            "bad_timecode",
            f"drop-frame timecode only exists at 30000/1001 and 60000/1001 fps, not {rate}; "
            "pass drop_frame=False",
        )
    if not isinstance(frames, int) or frames < 0:
        raise MediaError("bad_timecode", f"frame count {frames!r} must be a whole number >= 0")
    # OTIO would silently wrap a second day onto the first; a label past 23:59:59 is a caller bug.
    day = frames_per_day(rate, drop_frame)
    if frames >= day:
        raise MediaError(
            "bad_timecode",
            f"frame {frames} is past 23:59:59 at {rate} fps ({day} frames a day); "
            "use shift_timecode to wrap around midnight",
        )
    return opentime.to_timecode(opentime.RationalTime(frames, float(rate)), float(rate), drop_frame)


def shift_timecode(timecode: str, frames: int, rate: Fraction | int, drop_frame: bool | None = None) -> str:
    """`timecode` moved by `frames` (negative moves earlier), wrapping around midnight.

    drop_frame=None keeps the counting the label already uses.
    """
    if drop_frame is None:
        drop_frame = is_drop_frame(timecode)
    day = frames_per_day(rate, drop_frame)
    return frames_to_timecode((timecode_to_frames(timecode, rate) + frames) % day, rate, drop_frame)

