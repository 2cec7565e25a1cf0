"""Media for Ray workers that do not share the front's disk (`serve --ray --ray-no-shared-storage`).

The front puts what a job reads into its content-addressed media store (`cas_dir/<sha256>/<name>`,
the store UploadMedia fills), as little of it as the job needs:

- **a movie source: its range.** Only the GOPs the plan reads, cut by stream copy (cut_range:
  no re-encode, so the pictures and any packet the take copies are the source's own), from the
  keyframe at or before the first frame read (k0) to the last. The cut is checked before it is
  trusted (check_cut: the facts that matter, every packet's frame index, the first and last frames
  decoded from both); when anything differs, or the container cannot be written again, the whole
  file travels instead and the manifest says why. Only the video stream is cut: a take copies no
  audio and takes its timecode from the plan (the front's MediaInfo), never from the source's tracks.
- **an image sequence:** each frame file the job reads, one object each.
- **stills, masks, reference images, Generate's boards:** the whole file (a mask is read by clip
  offset, not by media frame: it is kept whole).

A worker keeps what it received in a bounded cache by digest (WorkerCache), checks every object
it fetches against its digest, and fetches only what it lacks: a second job on the same range
(an editor iterating on a shot) moves nothing for its source. The plan it runs points at its own
copies, with the media frame indices moved by the cut's first frame (local_plan).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import grpc

from server import paths
from server.errors import JobError

CACHE_ENV = "TAKEBRIDGE_WORKER_CACHE"            # the worker's cache folder
CACHE_LIMIT_ENV = "TAKEBRIDGE_WORKER_CACHE_GB"   # its size limit, gigabytes
DEFAULT_CACHE_GB = 20.0
LEFTOVER_AGE_S = 24 * 3600   # a partial download or job folder this old is a killed worker's leftover
RANGE, WHOLE, FRAMES = "range", "whole file", "sequence frames"
_MEMO_SIZE = 256   # files hashed and ranges cut, remembered by the front (path, size, mtime)
_memo_lock = threading.Lock()   # (the front's worker threads ship at the same time)


@dataclasses.dataclass
class Need:
    """One input a plan reads: its role, the front's path, and which media frames of it are read
    (a movie source: (first, last); a sequence: the frames; None: the whole file)."""
    role: str                 # "source", "mask", "reference", "frame"
    path: str
    frames: object = None
    sequence: bool = False
    info: object = None       # the source's MediaInfo (a range is checked against it)
    why: str = ""             # why it travels whole, when that is known before


# -- the front ------------------------------------------------------------------------------------
def ship(needs: list[Need], cas_dir: Path) -> list[dict]:
    """Each need as it travels: its objects in the front's media store ({digest, name, size,
    file}), how the worker lays them out (name, offset, frame_count) and its manifest record."""
    cas_dir = Path(cas_dir)
    merged: dict[str, Need] = {}
    for need in needs:   # one file read twice (two boards of one sequence) travels once
        known = merged.setdefault(need.path, need)
        if known is not need and need.sequence:
            known.frames = sorted(set(known.frames) | set(need.frames))
    return [_ship_one(need, cas_dir) for need in merged.values()]


def _ship_one(need: Need, cas_dir: Path) -> dict:
    if need.sequence:
        return _ship_frames(need, cas_dir)
    if need.role == "source" and need.frames is not None:
        return _ship_range(need, cas_dir)
    why = need.why or {"mask": "a mask is read by clip offset, not by media frame", "reference": "a reference image",
                        "frame": "a Generate board or keyframe"}.get(need.role, "asked whole")
    return _ship_whole(need, cas_dir, why)


def _ship_whole(need: Need, cas_dir: Path, why: str) -> dict:
    path = Path(need.path)
    digest, stored = store_file(cas_dir, path)
    size, name = stored.stat().st_size, _stored_name(path.name)   # (the worker's copy is named as the front's)
    return {"path": need.path, "name": name, "offset": 0, "frame_count": None,
            "objects": [{"digest": digest, "name": name, "size": size, "file": str(stored)}],
            "record": {"role": need.role, "path": need.path, "shipped": WHOLE, "why": why, "digest": digest,
                       "bytes": size}}


def _ship_range(need: Need, cas_dir: Path) -> dict:
    """A movie source's range as a verified cut in the media store, or the whole file with why."""
    info, (first, last) = need.info, need.frames
    whole = Path(need.path).stat().st_size
    try:
        cut = cut_into_store(info, first, last, cas_dir)
    except CutRefused as refused:
        shipped = _ship_whole(need, cas_dir, str(refused))
        shipped["record"]["read"] = [first, last]
        return shipped
    return {"path": need.path, "name": cut.name, "offset": cut.first, "frame_count": cut.count,
            "objects": [{"digest": cut.digest, "name": cut.name, "size": cut.size, "file": str(cut.file)}],
            "record": {"role": need.role, "path": need.path, "shipped": RANGE, "digest": cut.digest,
                       "bytes": cut.size, "frames": [cut.first, cut.first + cut.count - 1], "read": [first, last],
                       "of": info.frame_count, "file_bytes": whole}}


def _ship_frames(need: Need, cas_dir: Path) -> dict:
    """The frame files of an image sequence the job reads, each its own object, laid out on the
    worker under the same names: its local frame 0 is media frame `offset`."""
    from server.media.probe import find_sequence

    sequence = find_sequence(need.path)
    frames = sorted(set(need.frames))
    objects = []
    for index in frames:
        file = sequence.frame_path(index)
        if not file.is_file():
            raise JobError("media_missing", f"frame {index} of image sequence {need.path} is missing ({file}); "
                                            f"re-render the gap or trim the range around it", grpc.StatusCode.NOT_FOUND)
        digest, stored = store_file(cas_dir, file)
        objects.append({"digest": digest, "name": file.name, "size": stored.stat().st_size, "file": str(stored)})
    name = sequence.pattern.name if "%" in Path(need.path).name else ""   # a folder stays a folder
    listing = "".join(f"{o['name']}:{o['digest']}\n" for o in objects).encode()
    return {"path": need.path, "name": name, "offset": frames[0], "frame_count": frames[-1] - frames[0] + 1,
            "objects": objects,
            "record": {"role": need.role, "path": need.path, "shipped": FRAMES, "frames": [frames[0], frames[-1]],
                       "of": sequence.frame_count, "files": len(objects),
                       "digest": hashlib.sha256(listing).hexdigest(), "bytes": sum(o["size"] for o in objects)}}


_hashed: dict[tuple, str] = {}


def store_file(cas_dir: Path, path: Path) -> tuple[str, Path]:
    """(digest, stored path) of a whole file in the media store: copied in atomically (hashed as
    it is copied, so the digest is of the bytes stored), found by its digest afterwards (the digest
    of an unchanged file is remembered, so it is not read again)."""
    from server.plan import cas_object

    path = Path(path)
    stat = path.stat()
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key in _hashed:
        with contextlib.suppress(JobError):
            return _hashed[key], cas_object(cas_dir, _hashed[key])
    temp = _temp(cas_dir, path.suffix)
    try:
        digest = _copy_hashed(path, temp)
        _remember(_hashed, key, digest)
        with contextlib.suppress(JobError):
            return digest, cas_object(cas_dir, digest)
        return digest, _keep(cas_dir, temp, digest, _stored_name(path.name))
    finally:
        temp.unlink(missing_ok=True)


def _copy_hashed(source: Path, dest: Path) -> str:
    digest = hashlib.sha256()
    with paths.pinned(source) as readable, open(readable, "rb") as read, open(dest, "wb") as write:
        for block in iter(lambda: read.read(1 << 20), b""):
            digest.update(block)
            write.write(block)
    return digest.hexdigest()


def _stored_name(name: str) -> str:
    """A file's name as the media store keeps it (a name too long for one is shortened)."""
    try:
        return paths.component(name, "media file name")
    except paths.PathError:
        return paths.slug(Path(name).stem, "media file name") + Path(name).suffix[:16]


def _keep(cas_dir: Path, temp: Path, digest: str, name: str) -> Path:
    """`temp` kept in the media store under its digest (moved there in one rename)."""
    from server.cas import store_upload
    from server.plan import cas_object

    store_upload(cas_dir, str(temp), digest, paths.component(name, "media file name"))
    return cas_object(cas_dir, digest)


def _temp(cas_dir: Path, suffix: str) -> Path:
    """A new name in the media store's temporaries (the same disk: kept by one rename)."""
    folder = Path(cas_dir) / paths.STAGING
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"ship-{uuid.uuid4().hex}{suffix}"


def _remember(memo: dict, key, value) -> None:
    with _memo_lock:
        memo[key] = value
        while len(memo) > _MEMO_SIZE:
            memo.pop(next(iter(memo)))


# -- cutting a range ------------------------------------------------------------------------------
class CutRefused(Exception):
    """A range that cannot travel as a cut; the text says why (the manifest records it).
    `retry`: another container may hold it."""

    def __init__(self, why: str, retry: bool = False):
        super().__init__(why)
        self.retry = retry


@dataclasses.dataclass(frozen=True)
class Cut:
    """A stored cut: media frames first .. first+count-1 of the source, in `file`."""
    file: Path
    digest: str
    first: int
    count: int
    size: int

    @property
    def name(self) -> str:
        return self.file.name


_cuts: dict[tuple, Cut] = {}


def cut_into_store(info, first: int, last: int, cas_dir: Path) -> Cut:
    """Frames first..last of the movie `info` describes, as a checked cut in the media store
    (the same range of the same file: the same bytes, so the same digest). CutRefused says why not."""
    source = Path(info.path)
    stat = source.stat()
    key = (os.path.realpath(source), stat.st_size, stat.st_mtime_ns, first, last)
    known = _cuts.get(key)
    if isinstance(known, CutRefused):
        raise CutRefused(str(known))
    if known is not None and known.file.is_file():
        return known
    try:
        cut = _new_cut(info, first, last, cas_dir, stat.st_size)
    except CutRefused as refused:
        _remember(_cuts, key, refused)
        raise
    _remember(_cuts, key, cut)
    return cut


def _new_cut(info, first: int, last: int, cas_dir: Path, whole: int) -> Cut:
    from server.plan import cas_object

    source = Path(info.path)
    if first <= 0 and last >= info.frame_count - 1:
        raise CutRefused("the range reads every frame of the file")
    temp, made, suffix = _cut_checked(info, first, last, cas_dir)
    size = temp.stat().st_size
    if size >= whole:
        temp.unlink(missing_ok=True)
        raise CutRefused(f"the GOPs of frames {first}..{last} are the whole file ({size} bytes)")
    digest = paths.sha256_of(temp)
    name = f"{paths.slug(source.stem, 'media name')}.{made.first}-{made.first + made.count - 1}{suffix}"
    try:
        cas_object(cas_dir, digest)
        temp.unlink()
    except JobError:
        _keep(cas_dir, temp, digest, name)
    return Cut(cas_object(cas_dir, digest), digest, made.first, made.count, size)


def _cut_checked(info, first: int, last: int, cas_dir: Path) -> tuple[Path, "_Made", str]:
    """(file, what it holds, suffix) of a checked cut: in the source's container, else Matroska."""
    import av

    from server.media import MediaError

    reasons = []
    for suffix in dict.fromkeys((Path(info.path).suffix.lower() or ".mkv", ".mkv")):
        temp = _temp(cas_dir, suffix)
        try:
            try:
                made = cut_range(info, first, last, temp)
                check_cut(info, temp, made, first, last)
            except (MediaError, av.FFmpegError) as error:   # read back, the cut is not what it should be
                raise CutRefused(f"the cut cannot be read back ({error})", retry=True) from None
            return temp, made, suffix
        except CutRefused as refused:
            temp.unlink(missing_ok=True)
            if not refused.retry:
                raise
            reasons.append(f"as {suffix}: {refused}")
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    raise CutRefused("; ".join(reasons))


@dataclasses.dataclass
class _Made:
    first: int            # k0: the keyframe's media frame
    count: int            # frames k0.. the cut holds, without a gap
    indices: list         # the media frame of each packet written, in decode order


def cut_range(info, first: int, last: int, dest: Path) -> _Made:
    """Write the source's video packets that frames first..last need into `dest` (its suffix
    picks the container), by stream copy: from the keyframe at or before `first` (k0), in decode
    order, until every frame k0..last and every frame between has come (an open GOP's leading
    pictures, shown before k0, are left out). Timestamps are moved so k0 is shown at 0; written
    bit-exact, so the same range makes the same bytes. The source is read from a seek near `first`
    (backing off as decode does when the seek lands late), not from its start, and its packets
    stream into the cut once k0 is sure (held meanwhile: at most a GOP)."""
    import itertools

    from server.media.probe import open_media, video_stream

    backoff = 0
    while True:
        seek_index = max(first - backoff, 0)
        with open_media(Path(info.path)) as container:
            stream = video_stream(container, Path(info.path))
            origin = stream.start_time or 0
            if seek_index > 0:
                target = origin + int(Fraction(seek_index) / info.rate / stream.time_base)
                container.seek(target, stream=stream, backward=True, any_frame=False)
            packets = _packets_for(container, stream, info.rate, first, last, seek_index == 0)
            try:
                start = next(packets)
            except _SeekedPast:
                backoff = max(2 * backoff, round(info.rate))
                continue
            indices = _mux(stream, itertools.chain([start], packets), dest)
            return _Made(indices[0], len(set(indices)), indices)


class _SeekedPast(Exception):
    """The read began after the keyframe a cut starts from: seek further back."""


def _packets_for(container, stream, rate: Fraction, first: int, last: int, from_start: bool) -> Iterator:
    """(packet, media frame it shows) in decode order, from the keyframe at or before `first`
    through `last` (see cut_range)."""
    origin = stream.start_time or 0
    held, seen, k0, shown, sure = [], set(), None, -1, False
    for packet in container.demux(stream):
        if not packet.size:
            continue
        if packet.pts is None:
            raise CutRefused("its packets carry no timestamps, so the frames of a cut cannot be placed")
        index = round((packet.pts - origin) * stream.time_base * rate)
        if not sure and packet.is_keyframe and index <= first and (k0 is None or index > k0):
            held, seen, k0, shown = [], set(), index, index    # a later start: the GOPs before are not needed
        if k0 is None:
            if index >= first and not from_start:
                raise _SeekedPast()
            continue
        if index < k0:
            continue   # a leading picture of an open GOP (shown before k0)
        held.append((packet, index))
        seen.add(index)
        shown = max(shown, index)
        sure = sure or index >= first   # no keyframe shown before `first` comes after this one
        if sure:
            yield from held
            held = []
        if shown >= last and len(seen) == shown - k0 + 1:
            return
    if k0 is None:
        raise CutRefused(f"no keyframe at or before frame {first}")
    raise CutRefused(f"its packets do not show every frame {k0}..{max(last, shown)} without a gap")


def _mux(template, packets: Iterator, dest: Path) -> list[int]:
    """Stream-copy (packet, index) pairs into `dest`; the media frame of each packet written."""
    import av

    indices, shift = [], None
    try:
        with av.open(str(dest), "w", options={"fflags": "+bitexact"}) as out:
            stream = out.add_stream_from_template(template)
            for packet, index in packets:
                shift = packet.pts if shift is None else shift
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
                packet.stream = stream
                out.mux(packet)
                indices.append(index)
    except (av.FFmpegError, ValueError, TypeError) as error:
        raise CutRefused(f"{dest.suffix} cannot hold its packets again ({error})", retry=True) from None
    return indices


def check_cut(info, cut_file: Path, made: _Made, first: int, last: int) -> None:
    """CutRefused unless the cut is the source's range: the same picture facts and rate, each
    packet at its frame moved by k0, and frames `first` and `last` decoded identical from both."""
    import numpy as np

    from server.media.decode import iter_pictures
    from server.media.probe import open_media, probe, video_stream

    got = probe(cut_file)
    for fact in ("width", "height", "pix_fmt", "bit_depth", "color", "sample_aspect", "interlaced", "has_alpha", "rate"):
        if getattr(got, fact) != getattr(info, fact):
            raise CutRefused(f"the cut reads as {fact} {getattr(got, fact)}, the source as {getattr(info, fact)}",
                              retry=True)
    if got.frame_count < made.count:
        raise CutRefused(f"the cut reads as {got.frame_count} frames, not {made.count}", retry=True)
    with open_media(cut_file) as container:
        stream = video_stream(container, cut_file)
        origin = stream.start_time or 0
        placed = [round((p.pts - origin) * stream.time_base * got.rate) for p in container.demux(stream)
                  if p.size and p.pts is not None]
    if placed != [i - made.first for i in made.indices]:
        raise CutRefused("the cut's packets land on other frames than the source's", retry=True)
    for index in sorted({first, last}):
        ours = next(iter_pictures(info.path, index, 1, rate=info.rate, depth=16))
        theirs = next(iter_pictures(cut_file, index - made.first, 1, rate=info.rate, depth=16))
        same = np.array_equal(ours[0], theirs[0]) and all(
            np.array_equal(a, b) for a, b in zip(ours[1].planes, theirs[1].planes))
        if not same:
            raise CutRefused(f"frame {index} decodes differently from the cut", retry=True)


# -- the worker -----------------------------------------------------------------------------------
class Evicted(Exception):
    """An object the front did not send (the cache said it had it) is gone from the cache."""


class WorkerCache:
    """A worker's media by digest (`folder/<sha256>`), bounded: beyond `limit_bytes` the least
    recently used objects go. Objects are checked against their digest before they are kept and
    written atomically; processes of one machine share it (a lock file orders them)."""

    def __init__(self, folder: Path | str | None = None, limit_bytes: int | None = None):
        self.folder = Path(folder or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "takebridge" / "worker-media")
        self.limit = cache_limit() if limit_bytes is None else int(limit_bytes)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sweep()

    def sweep(self, older_than_s: float = LEFTOVER_AGE_S) -> list[Path]:
        """Remove what a worker killed mid-job left: partial downloads and job folders not
        touched for `older_than_s` (a day: far longer than any job, so never a running one's)."""
        import time

        cutoff, gone = time.time() - older_than_s, []
        jobs = self.folder / ".jobs"
        candidates = [p for p in self.folder.glob(".*.partial")] + (list(jobs.iterdir()) if jobs.is_dir() else [])
        for path in candidates:
            with contextlib.suppress(FileNotFoundError):
                if path.lstat().st_mtime >= cutoff:
                    continue
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                gone.append(path)
        return gone

    def work_folder(self, prefix: str) -> Path:
        """A job's own folder beside the cache (same disk: its inputs are hard links)."""
        jobs = self.folder / ".jobs"
        jobs.mkdir(exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=jobs))

    def fetch_into(self, obj: dict, target: Path, get: Callable[[object], bytes]) -> int:
        """Put object `obj` ({digest, name, size, ref}) at `target`: from the cache, or fetched
        with get(ref), checked and kept. Returns the bytes fetched (0: it was cached)."""
        digest = paths.digest(obj["digest"], "media object digest")
        kept = self.folder / digest
        with self._locked():
            if kept.is_file():
                os.utime(kept)     # used now: last in line to go
                _link_or_copy(kept, target)
                return 0
        if obj.get("ref") is None:     # the front sent none: this cache said it had it
            raise Evicted(digest)
        data = get(obj["ref"])
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest or len(data) != obj["size"]:
            raise JobError("media_corrupt", f"{obj['name']} arrived as {len(data)} bytes with sha256 {actual}, not the "
                                            f"{obj['size']} bytes of {digest} the front sent; nothing was kept. Submit "
                                            f"the job again; if it repeats, check the front's media store",
                           grpc.StatusCode.DATA_LOSS)
        temp = self.folder / f".{digest}.{uuid.uuid4().hex[:8]}.partial"
        try:
            temp.write_bytes(data)
            with self._locked():
                os.replace(temp, kept)
                _link_or_copy(kept, target)
                self._evict()
        finally:
            temp.unlink(missing_ok=True)
        return len(data)

    def holding(self, digests: list[str]) -> list[str]:
        """Which of `digests` this cache keeps (each touched: last in line to be evicted)."""
        held = []
        with self._locked():
            for digest in digests:
                kept = self.folder / paths.digest(digest, "media object digest")
                if kept.is_file():
                    os.utime(kept)
                    held.append(digest)
        return held

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last used, bytes, path) of every object kept."""
        found = []
        for path in self.folder.iterdir():
            if len(path.name) == 64 and not path.name.startswith("."):
                with contextlib.suppress(FileNotFoundError):
                    stat = path.stat()
                    found.append((stat.st_mtime, stat.st_size, path))
        return sorted(found)

    def _evict(self) -> None:
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.limit:
                break
            path.unlink(missing_ok=True)
            total -= size

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:   # (no POSIX locks: one worker process per cache folder)
            yield
            return
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def cache_limit() -> int:
    """The worker cache's limit in bytes: $TAKEBRIDGE_WORKER_CACHE_GB, else 20 GB."""
    text = os.environ.get(CACHE_LIMIT_ENV, "").strip()
    try:
        gigabytes = float(text) if text else DEFAULT_CACHE_GB
    except ValueError:
        gigabytes = -1.0
    if not gigabytes >= 0:
        raise JobError("bad_config", f"{CACHE_LIMIT_ENV}={text!r} is not a size in gigabytes; set it to a number "
                                     f"such as {DEFAULT_CACHE_GB:g} on the worker")
    return int(gigabytes * 1e9)


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def receive(inputs: list[dict], work: Path, cache: WorkerCache, get: Callable[[object], bytes]) -> tuple[dict, list]:
    """Lay out each shipped input in `work` from the cache (fetching what it lacks). Returns
    (front path -> {"path", "offset", "frame_count"}, the inputs' manifest records with what
    was fetched)."""
    local, records = {}, []
    for number, shipped in enumerate(inputs):
        folder = work / "in" / str(number)
        fetched = 0
        for obj in shipped["objects"]:
            fetched += cache.fetch_into(obj, folder / paths.component(obj["name"], "media object name"), get)
        name = shipped["name"]
        local[shipped["path"]] = {"path": str(folder / paths.component(name, "media name") if name else folder),
                                  "offset": shipped["offset"], "frame_count": shipped["frame_count"]}
        records.append({**shipped["record"], "cached": fetched == 0, "fetched_bytes": fetched,
                        "sent": any(obj.get("ref") is not None for obj in shipped["objects"])})
    return local, records


def transfer(records: list, shipped_out_bytes: int) -> dict:
    """The manifest's media_transfer: bytes fetched by the worker this job, sent back, and per input."""
    return {"shipped_in_bytes": sum(r["fetched_bytes"] for r in records), "shipped_out_bytes": shipped_out_bytes,
            "inputs": records}


def local_plan(plan, local: dict) -> None:
    """The plan's inputs as the worker has them: its copies' paths, the media frame indices moved
    by the copy's first frame, the front's facts about the media kept (timecode, colour)."""
    if plan.op != "generate":
        source = local[str(plan.media.path)]
        plan.media = dataclasses.replace(plan.media, path=Path(source["path"]),
                                         frame_count=source["frame_count"] or plan.media.frame_count)
        plan.media_indices = [i - source["offset"] for i in plan.media_indices]
    if plan.mask_path:
        plan.mask_path = local[plan.mask_path]["path"]
    plan.reference_paths = [local[p]["path"] for p in plan.reference_paths]
    if plan.generate.get("frames"):
        plan.generate = {**plan.generate, "frames": [
            {**f, "path": local[f["path"]]["path"], "frame": f["frame"] - local[f["path"]]["offset"]}
            for f in plan.generate["frames"]]}
