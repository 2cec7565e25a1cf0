"""Media I/O for takes: probe sources, read exact frame ranges and masks, write takes atomically.

Everything here speaks integer frames at exact rational rates; errors are MediaError with a code.
"""
from .decode import iter_frames, iter_pictures, read_frames, read_mask, to_rgb
from .encode import CODECS, Delivery, delivery_for, write_movie
from .pixels import ColorTags, Native
from .errors import MediaError
from .probe import MediaInfo, probe
from .timecode import frames_to_timecode, shift_timecode, timecode_to_frames

__all__ = [
    "CODECS",
    "ColorTags",
    "Delivery",
    "Native",
    "delivery_for",
    "iter_pictures",
    "MediaError",
    "MediaInfo",
    "frames_to_timecode",
    "iter_frames",
    "probe",
    "read_frames",
    "read_mask",
    "shift_timecode",
    "timecode_to_frames",
    "to_rgb",
    "write_movie",
]
