"""The server's one path policy. Every name a request carries that becomes part of a path is
validated here, and every path the server reads or writes is checked here at the moment of use.

- A name from a request (upload file name, take id) must already be one safe path component:
  not empty, not `.`/`..`, no separator, no NUL or control character, at most
  MAX_COMPONENT_BYTES. A shot or clip name is free text, so the folder and file names made from
  it are *derived* (slug()), never joined raw.
- A digest is exactly 64 lowercase hex characters.
- Reads: the file is opened first (non-blocking, so a FIFO cannot stall the server), must be a
  regular file, and the path the kernel actually opened (after every symlink) must lie under an
  allowed root. The open file is what is read afterwards (`/proc/self/fd/N` on Linux), so a
  symlink swapped in after the check changes nothing: there is no check-then-use window.
- A path outside the allowed roots is refused before anything looks at it, with the same status
  and words whether it exists or not, so a refusal reveals nothing about files out there.
- The server deletes only inside its own staging folders (`.staging` under a take folder, the
  media store's upload temporaries); remove_staging() refuses anything else.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Iterator

MAX_COMPONENT_BYTES = 200   # room for "_v001.manifest.json" within the 255 bytes file systems allow
MAX_SLUG_CHARS = 80
MAX_NAME_BYTES = 255        # one path component, as file systems allow
MAX_PATH_BYTES = 4095
STAGING = ".staging"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_PROC_FD = Path("/proc/self/fd")


class PathError(ValueError):
    """A refused name or path; `code` is machine-readable (see server.errors.STATUS_OF)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def component(name, what: str) -> str:
    """`name` itself when it is one safe path component, else a PathError naming it."""
    if not isinstance(name, str):
        raise PathError("bad_name", f"{what} must be text, not {type(name).__name__} {name!r}")
    shown = name if len(name) <= 80 else name[:77] + "..."
    if name in ("", ".", ".."):
        raise PathError("bad_name", f"{what} {name!r} is not a file name; send a plain name like clip.mov")
    if "/" in name or "\\" in name:
        raise PathError("bad_name", f"{what} {shown!r} contains a path separator; send the file name only")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise PathError("bad_name", f"{what} {shown!r} contains a control character; rename it")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
        raise PathError("bad_name", f"{what} is {len(name.encode('utf-8', 'surrogatepass'))} bytes long, over the "
                                    f"limit of {MAX_COMPONENT_BYTES}; use a shorter name")
    return name


def slug(text, what: str = "shot name") -> str:
    """A folder/file name made from free text (a shot or clip name), safe on every OS: letters,
    digits, `.`, `_`, `-`; never empty, never `.`/`..`. Long names are cut and keep a short hash
    of the whole, so two long names that share a start stay apart."""
    if not isinstance(text, str):
        raise PathError("bad_name", f"{what} must be text, not {type(text).__name__} {text!r}")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    if len(name) > MAX_SLUG_CHARS:
        name = name[:MAX_SLUG_CHARS - 9].rstrip("._") + "-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")
                                                                              ).hexdigest()[:8]
    return name or "shot"


def digest(text, what: str = "sha256") -> str:
    if not isinstance(text, str) or not _DIGEST.fullmatch(text):
        shown = text if not isinstance(text, str) or len(text) <= 80 else text[:77] + "..."
        raise PathError("bad_digest", f"{what} {shown!r} is not a sha256 digest (64 lowercase hex characters)")
    return text


def is_under(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether the real `path` (symlinks resolved) is `root` or inside it (root is real)."""
    real, root = os.path.realpath(path), os.fspath(root)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


class Roots:
    """The folders a server may read media from and write takes to."""

    def __init__(self, roots: tuple[Path, ...]):
        self.roots = tuple(Path(os.path.realpath(r)) for r in roots)

    def __bool__(self) -> bool:
        return bool(self.roots)

    def contains(self, real: str) -> bool:
        return not self.roots or any(real == str(r) or real.startswith(str(r).rstrip(os.sep) + os.sep)
                                     for r in self.roots)

    def refusal(self, path, what: str) -> PathError:
        roots = ", ".join(str(r) for r in self.roots)
        return PathError("path_not_allowed",
                         f"{what} {path} is outside the folders this server may use ({roots}); move it there "
                         f"or start the server with --allow FOLDER")

    def check(self, path, what: str) -> Path:
        """The real path of `path` (symlinks resolved) when it lies under a root. Existence is not
        looked at, so the answer is the same for files that exist and files that do not."""
        if not isinstance(path, (str, os.PathLike)) or "\x00" in os.fspath(path):
            raise PathError("bad_name", f"{what} {str(path)[:80]!r} is not a path")
        text = os.fspath(path)
        if len(text.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
            raise PathError("bad_name", f"{what} is a path of {len(text)} characters, over the limit of "
                                        f"{MAX_PATH_BYTES} bytes")
        for part in Path(text).parts:
            if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
                raise PathError("bad_name", f"{what} has a name of {len(part)} characters ({part[:40]!r}...), over "
                                            f"the {MAX_NAME_BYTES} bytes file systems allow; shorten it")
        real = os.path.realpath(os.path.expanduser(text))
        if not self.contains(real):
            raise self.refusal(path, what)
        return Path(real)

    def open_regular(self, path, what: str) -> int:
        """An fd of `path` opened read-only, once it is known to be a regular file whose real
        location is under a root. The caller closes it."""
        self.check(path, what)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise PathError("media_missing", f"{what} {path} not found; relink it or copy the file back") from None
        except IsADirectoryError:
            raise PathError("not_a_file", f"{what} {path} is a folder, not a file") from None
        except OSError as err:
            raise PathError("media_unreadable", f"{what} {path} cannot be opened ({err.strerror}); check its "
                                                f"permissions") from None
        try:
            mode = os.fstat(fd).st_mode
            real = opened_path(fd, path)
            if not self.contains(real):   # swapped for a symlink after the check above
                raise self.refusal(path, what)
            if not stat.S_ISREG(mode):
                kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
                        "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                        "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
                raise PathError("not_a_file", f"{what} {path} is {kind}; only regular files are read")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def check_folder(self, path, what: str) -> Path:
        """A folder under a root (real path); a symlink in it pointing out is refused."""
        real = self.check(path, what)
        existing = real
        while not existing.exists() and existing != existing.parent:   # the nearest part that exists
            existing = existing.parent
        if not existing.is_dir():
            raise PathError("not_a_folder", f"{what} {path} cannot be a folder: {existing} is a file")
        return real


def opened_path(fd: int, fallback) -> str:
    """The real path of an open file: the kernel's own record where there is one (Linux)."""
    link = _PROC_FD / str(fd)
    try:
        return os.readlink(link)
    except OSError:
        return os.path.realpath(fallback)


# -- reading under a policy --------------------------------------------------------------------
# The server sets the policy for the thread of work it is doing (a request being planned, a job
# being run); tools run by a user on their own files (check, rerender) set none and read freely.
_policy: contextvars.ContextVar[Roots | None] = contextvars.ContextVar("takebridge_read_policy", default=None)


@contextlib.contextmanager
def reading_under(roots: Roots | None) -> Iterator[None]:
    token = _policy.set(roots)
    try:
        yield
    finally:
        _policy.reset(token)


@contextlib.contextmanager
def pinned(path, what: str = "media") -> Iterator[str]:
    """A path to hand to a reader (FFmpeg, OpenCV) for `path`: under a read policy, the file
    opened and checked (regular, under a root) and named by its fd, so the reader gets exactly
    the file that was checked; without a policy, `path` itself."""
    roots = _policy.get()
    if roots is None:
        yield os.fspath(path)
        return
    fd = roots.open_regular(path, what)
    try:
        yield str(_PROC_FD / str(fd)) if _PROC_FD.is_dir() else opened_path(fd, path)
    finally:
        os.close(fd)


def read_bytes(path, what: str = "file") -> bytes:
    with pinned(path, what) as real, open(real, "rb") as fh:
        return fh.read()


def check_listed(path, what: str = "media") -> None:
    """Under a read policy, refuse a path (a folder, or a file found by listing one) that is not
    under a root; used where a folder is listed rather than a file opened."""
    roots = _policy.get()
    if roots is not None:
        roots.check(path, what)


# -- deleting ------------------------------------------------------------------------------------
def remove_staging(path, staging_root) -> None:
    """Remove `path` (file or folder) only when it lies inside `staging_root`, a staging folder
    of the server's own (its last component `.staging`, or the media store's temporaries), checked
    on the real paths; a symlink is removed as a link, never followed."""
    path, staging_root = Path(path), Path(staging_root)
    if not os.path.lexists(path):
        return
    real_root = os.path.realpath(staging_root)
    real_parent = os.path.realpath(path.parent)
    inside = real_parent == real_root or real_parent.startswith(real_root.rstrip(os.sep) + os.sep)
    if not inside or path.name in ("", ".", ".."):
        raise PathError("path_not_allowed", f"refusing to delete {path}: it is not inside the staging folder "
                                            f"{staging_root}")
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
    else:
        shutil.rmtree(path)   # fd-based on Linux: does not follow symlinks inside


def sha256_of(path: Path) -> str:
    """Hash of a file, or of every file of a folder (image sequence) in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
