"""Files, once: the atomic write every writer uses (a crash leaves the old file or the new one,
never half of one), and the one parser of image-sequence names (printf patterns such as
shot.%04d.exr, and numbered files such as shot.0101.exr)."""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

PRINTF = re.compile(r"^(?P<prefix>.*?)%(?:0(?P<padding>\d+))?d(?P<suffix>.*)$")
NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<digits>\d+)(?P<suffix>\.[A-Za-z][A-Za-z0-9]*)$")
FILE_MODE = 0o644          # mkstemp makes 0600; what we write is as readable as the media beside it


class Pattern(NamedTuple):
    """A file name split around its frame number: prefix, zero padding (0: none), suffix."""

    prefix: str
    padding: int
    suffix: str

    def name(self, frame: int) -> str:
        return f"{self.prefix}{frame:0{self.padding}d}{self.suffix}"

    @property
    def printf(self) -> str:
        return f"{self.prefix}%0{self.padding}d{self.suffix}" if self.padding else f"{self.prefix}%d{self.suffix}"


def printf_pattern(name: str) -> Optional[Pattern]:
    """`name` (a file name, no folder) as a printf pattern (shot.%04d.png), or None if it is not one."""
    match = PRINTF.match(name)
    if match is None:
        return None
    return Pattern(match["prefix"], int(match["padding"] or 0), match["suffix"])


def numbered(name: str) -> Optional[tuple[Pattern, int]]:
    """A numbered file name (shot.0101.png) as its pattern and frame number, or None."""
    match = NUMBERED.match(name)
    if match is None:
        return None
    digits = match["digits"]
    return Pattern(match["prefix"], len(digits), match["suffix"]), int(digits)


def is_pattern(path: str) -> bool:
    """Whether the last part of `path` names an image sequence (printf %d, or #### padding)."""
    name = os.path.basename(str(path))
    return printf_pattern(name) is not None or "#" in name


@contextlib.contextmanager
def replacing(path, *, suffix: str = "", mode: int = FILE_MODE) -> Iterator[str]:
    """Yield a temporary path beside `path` to write; on success it replaces `path` in one rename
    (made readable by `mode`), on any failure it is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".partial", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def write_atomic(path, data: "bytes | str") -> None:
    """Write `data` to `path` atomically, synced to disk before the rename."""
    with replacing(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
