"""The media the server keeps and serves: content-addressed uploads (cas:<sha256>, for editors
without a shared disk) and the files of takes it wrote. Every path is checked on the file
actually opened (no symlink swapped in after the check)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc

from server import bounds, paths
from server.errors import JobError
from server.plan import cas_object

log = logging.getLogger("takebridge.service")


def store_upload(cas: Path, tmp: str, actual: str, filename: str) -> bool:
    """Keep an uploaded file under its digest; True when it was there already."""
    try:
        cas_object(cas, actual)
        return True
    except JobError:
        pass
    folder = cas / actual
    folder.mkdir(exist_ok=True)
    os.replace(tmp, folder / filename)
    return False


def download_target(rt, request) -> tuple[Path, str]:
    which = request.WhichOneof("what")
    if which == "take_id":
        bounds.check_id(request.take_id, "take_id")
        take = rt.store.get_take(request.take_id)
        if take is None:
            raise JobError("unknown_take", f"no take {request.take_id[:128]!r} on this server",
                           grpc.StatusCode.NOT_FOUND)
        path = take_file(rt, take.media.url, take.take_id)
        if path is None or not path.is_file():
            raise JobError("not_a_file", f"take {take.take_id} is an image sequence or its media is gone; only "
                                         f"movie takes can be downloaded", grpc.StatusCode.FAILED_PRECONDITION)
        return path, take.media.sha256
    if which == "sha256":
        digest = paths.digest(request.sha256, "sha256")
        return cas_object(rt.limits.cas_dir, digest), digest
    raise JobError("bad_request", "say which media: sha256 or take_id")

def open_download(rt, path: Path) -> int:
    """An fd of a file the server may send: a regular file under the media store or the
    take folders, checked on the file actually opened (no symlink swap after the check)."""
    roots = paths.Roots((rt.limits.cas_dir, rt.take_dir, *take_roots(rt)))
    return roots.open_regular(path, "media")

def take_roots(rt) -> tuple[Path, ...]:
    return tuple(Path(d) for d in rt.store.take_dirs())

def take_file(rt, url: str, take_id: str) -> Path | None:
    """A take's file (media or manifest) when it lies under a take folder the server wrote;
    None when the record points anywhere else."""
    roots = paths.Roots((rt.take_dir, *take_roots(rt)))
    try:
        return roots.check(url, f"take {take_id} file")
    except paths.PathError:
        log.warning("take %s: recorded path %s is outside the take folders; not touched", take_id, url)
        return None
