"""Media I/O for takes: probe sources, read exact frame ranges and masks, write takes atomically.

Everything here speaks integer frames at exact rational rates; errors are MediaError with a code.
"""
from .decode import iter_frames, read_frames, read_mask, to_rgb
from .encode import CODECS, write_movie
from .errors import MediaError
from .probe import MediaInfo, probe
from .timecode import frames_to_timecode, shift_timecode, timecode_to_frames

__all__ = [
    "CODECS",
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
