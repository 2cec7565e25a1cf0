"""The one error the media layer raises: a machine-readable code plus a message a user can act on.

Codes: media_missing, media_unreadable, no_video_stream, range_outside_media, mask_size_mismatch,
bad_frames, bad_timecode, bad_rate, bad_destination, unsupported_codec, encode_failed.
"""
from __future__ import annotations


class MediaError(Exception):
    """A media file could not be read or written; `code` is for programs, the message for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code

    def __repr__(self) -> str:
        return f"MediaError({self.code!r}, {str(self)!r})"
