"""Media for Ray workers without the front's disk (server.ray_media), without Ray: a movie
source travels as a stream-copied cut of the GOPs its range needs (every frame of the range
decodes to the source's samples at the moved index; smaller than the file; the same bytes when
made again), an image sequence as its frame files, and what cannot be cut as the whole file with
the reason; the worker's cache fetches only what it lacks, refuses bytes that are not the
digest's, and keeps to its size."""
from __future__ import annotations

import hashlib
import os
import types
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from support import footage
from server import ray_media
from server.errors import JobError
from server.media import probe, write_movie
from server.media.decode import iter_pictures
from server.plan import cas_object

from conftest import encode_pictures


@pytest.fixture(autouse=True)
def fresh_memos():
    """Each test cuts and hashes anew (the front remembers both within a process)."""
    ray_media._cuts.clear()
    ray_media._hashed.clear()
    yield
    ray_media._cuts.clear()
    ray_media._hashed.clear()


def pictures(path, start, count, rate=None):
    """(RGB at 16 bits, the picture's own planes) of frames start.. of `path`."""
    return [(rgb, [np.array(p) for p in native.planes])
            for rgb, native in iter_pictures(path, start, count, rate=rate, depth=16)]


def assert_same_frames(source, first, last, cut: ray_media.Cut, rate):
    """Every frame first..last of `source` decodes as the cut's frame at index - k0, sample for sample."""
    ours = pictures(source, first, last - first + 1, rate)
    theirs = pictures(cut.file, first - cut.first, last - first + 1, rate)
    assert len(ours) == len(theirs) == last - first + 1
    for index, ((a, planes_a), (b, planes_b)) in enumerate(zip(ours, theirs), start=first):
        assert np.array_equal(a, b), f"frame {index} differs"
        assert all(np.array_equal(x, y) for x, y in zip(planes_a, planes_b)), f"frame {index}'s planes differ"


def travelled(shipped: list[dict]) -> list[dict]:
    """What server.ray_workers.shipped_inputs sends, with the bytes themselves as the refs."""
    for item in shipped:
        for obj in item["objects"]:
            obj["ref"] = Path(obj.pop("file")).read_bytes()
    return shipped


def same(ref):
    return ref


# -- cutting a movie's range ----------------------------------------------------------------------
@pytest.mark.parametrize("first,last", [(40, 60), (31, 31), (0, 10), (240, 249)],
                         ids=["mid-GOP", "one frame after a keyframe", "file start", "file end"])
def test_a_long_gop_h264_range_travels_as_its_gops_with_the_sources_frames(tmp_path, first, last):
    """bikes.mp4: H.264 High with B-frames, keyframes at 0, 30, 76, 137, 187, 242 of 250."""
    source = footage.for_test("bikes")
    info = probe(source)
    cut = ray_media.cut_into_store(info, first, last, tmp_path / "cas")
    keyframes = [0, 30, 76, 137, 187, 242]
    assert cut.first == max(k for k in keyframes if k <= first), "from the keyframe at or before the range"
    assert cut.first + cut.count - 1 >= last
    assert_same_frames(source, first, last, cut, info.rate)
    assert cut.size < source.stat().st_size
    assert cut.file == cas_object(tmp_path / "cas", cut.digest) and cut.file.parent.name == cut.digest
    assert hashlib.sha256(cut.file.read_bytes()).hexdigest() == cut.digest
    assert cut.file.suffix == ".mp4", "the source's container"
    # made again (nothing remembered, another store): the same bytes
    ray_media._cuts.clear()
    again = ray_media.cut_into_store(info, first, last, tmp_path / "cas2")
    assert again.digest == cut.digest and again.file.read_bytes() == cut.file.read_bytes()
    assert not list((tmp_path / "cas" / ".staging").iterdir()), "no temporaries left"


@pytest.mark.parametrize("clip,first,last", [("city", 40, 60), ("wolfgang", 460, 471), ("vtest", 300, 320)])
def test_other_real_containers_travel_as_cuts_too(tmp_path, clip, first, last):
    """MPEG-2 in a program stream, H.264 with B-frames and audio (the audio is left out), MS-MPEG4 in AVI."""
    source = footage.for_test(clip)
    info = probe(source)
    cut = ray_media.cut_into_store(info, first, last, tmp_path / "cas")
    assert_same_frames(source, first, last, cut, info.rate)
    assert cut.size < source.stat().st_size / 3
    with av.open(str(cut.file)) as container:
        assert [s.type for s in container.streams] == ["video"]


def deep_pictures(n: int, pix_fmt: str, size=(96, 64), seed=5):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 65535, (size[1], size[0], 3), dtype=np.uint16)
    for i in range(n):
        frame = np.roll(base, 3 * i, axis=1) + np.uint16(i * 97)   # moving, detail below 8 bits
        yield av.VideoFrame.from_ndarray(frame, format="rgb48le").reformat(format=pix_fmt)


@pytest.mark.parametrize("encoder,pix_fmt,options,suffix,k0", [
    ("prores_ks", "yuv422p10le", {"profile": "3"}, ".mov", 13),     # intra only: the range's own frames
    ("ffv1", "yuv422p10le", {"g": "8", "level": "3"}, ".mkv", 8),  # a coder state carried from each keyframe
], ids=["prores-10bit", "ffv1-10bit-gop8"])
def test_a_ten_bit_file_made_with_ffmpegs_encoders_travels_as_a_cut(tmp_path, encoder, pix_fmt, options, suffix, k0):
    source = encode_pictures(tmp_path / f"plate{suffix}", encoder, deep_pictures(30, pix_fmt), rate=24,
                             pix_fmt=pix_fmt, size=(96, 64), options=options)
    info = probe(source)
    assert info.bit_depth == 10
    cut = ray_media.cut_into_store(info, 13, 20, tmp_path / "cas")
    assert (cut.first, cut.first + cut.count - 1) == (k0, 20)
    assert_same_frames(source, 13, 20, cut, info.rate)
    assert cut.size < source.stat().st_size


def test_an_image_sequence_travels_as_the_frame_files_it_reads(tmp_path):
    frames = np.random.default_rng(2).integers(0, 255, (20, 32, 48, 3), dtype=np.uint8)
    write_movie(frames, tmp_path / "plate", codec="png", rate=Fraction(24))
    info = probe(tmp_path / "plate")
    need = ray_media.Need("source", str(info.path), list(range(5, 12)), True, info)
    [shipped] = travelled(ray_media.ship([need], tmp_path / "cas"))
    assert shipped["offset"] == 5 and shipped["frame_count"] == 7 and len(shipped["objects"]) == 7
    record = shipped["record"]
    assert (record["shipped"], record["frames"], record["of"], record["files"]) == (ray_media.FRAMES, [5, 11], 20, 7)
    assert record["bytes"] == sum((info.path.parent / o["name"]).stat().st_size for o in shipped["objects"])
    cache = ray_media.WorkerCache(tmp_path / "worker", limit_bytes=10**9)
    local, records = ray_media.receive([shipped], tmp_path / "job", cache, same)
    here = local[str(info.path)]
    assert Path(here["path"]).name == info.path.name, "the same names: the worker's reader sees frames 5..11"
    assert sorted(p.name for p in Path(here["path"]).parent.iterdir()) == [o["name"] for o in shipped["objects"]]
    got = [rgb for rgb, _ in iter_pictures(here["path"], 0, 7, depth=8, native=False)]
    assert np.array_equal(np.stack(got), frames[5:12]), "local frame 0 is the source's frame 5"
    assert records[0]["fetched_bytes"] == record["bytes"] and not records[0]["cached"]


def test_the_plan_a_worker_runs_points_at_its_copies_with_the_indices_moved(tmp_path):
    """The source's media indices move by the cut's first frame; the front's facts stay; a mask
    (clip offsets) and a board keep theirs, a board from a sequence moves to its own frame 0."""
    media = types.SimpleNamespace()
    info = probe(write_movie(np.zeros((6, 16, 16, 3), np.uint8), tmp_path / "m.mkv", codec="ffv1", rate=24,
                             start_timecode="01:00:00:00").path)
    plan = types.SimpleNamespace(op="refine", media=info, media_indices=[40, 41, 41, 42], mask_path="/f/mask.mkv",
                                 reference_paths=["/f/ref.png"], generate={})
    local = {str(info.path): {"path": "/w/in/0/m.30-45.mkv", "offset": 30, "frame_count": 16},
             "/f/mask.mkv": {"path": "/w/in/1/mask.mkv", "offset": 0, "frame_count": None},
             "/f/ref.png": {"path": "/w/in/2/ref.png", "offset": 0, "frame_count": None}}
    ray_media.local_plan(plan, local)
    assert plan.media_indices == [10, 11, 11, 12]
    assert (str(plan.media.path), plan.media.frame_count) == ("/w/in/0/m.30-45.mkv", 16)
    assert (plan.media.start_timecode, plan.media.color) == (info.start_timecode, info.color)
    assert (plan.mask_path, plan.reference_paths) == ("/w/in/1/mask.mkv", ["/w/in/2/ref.png"])
    board = types.SimpleNamespace(op="generate", media=media, media_indices=[], mask_path="", reference_paths=[],
                                  generate={"frames": [{"path": "/f/b.%04d.png", "frame": 7, "which": "image"}]})
    ray_media.local_plan(board, {"/f/b.%04d.png": {"path": "/w/in/0/b.%04d.png", "offset": 7, "frame_count": 1}})
    assert board.generate["frames"] == [{"path": "/w/in/0/b.%04d.png", "frame": 0, "which": "image"}]


# -- the whole file, and why ----------------------------------------------------------------------
def test_a_cut_that_does_not_check_out_travels_as_the_whole_file_with_the_reason(tmp_path, monkeypatch):
    """A cut that lost its last packet (a picture another one refers to): the range's last frame
    no longer decodes to the source's, in either container."""
    source = footage.for_test("bikes")
    info = probe(source)
    mux = ray_media._mux
    monkeypatch.setattr(ray_media, "_mux", lambda template, packets, dest: mux(template, list(packets)[:-1], dest))
    [shipped] = travelled(ray_media.ship([ray_media.Need("source", str(source), (40, 60), False, info)],
                                         tmp_path / "cas"))
    record = shipped["record"]
    assert record["shipped"] == ray_media.WHOLE and record["read"] == [40, 60]
    assert record["why"] == ("as .mp4: frame 60 decodes differently from the cut; "
                             "as .mkv: frame 60 decodes differently from the cut"), record["why"]
    assert record["bytes"] == source.stat().st_size and record["digest"] == footage.BY_ID["bikes"].sha256
    assert shipped["offset"] == 0 and shipped["objects"][0]["ref"] == source.read_bytes()
    assert not list((tmp_path / "cas" / ".staging").iterdir()), "no temporaries left"


def test_variable_frame_timing_cannot_be_cut_so_the_whole_file_travels(tmp_path):
    """box.mp4 (32/33/34 ms steps): a cut's average rate is not the file's, so its frames would be
    counted otherwise; refused in both containers, the whole file goes."""
    source = footage.for_test("box")
    info = probe(source)
    [shipped] = ray_media.ship([ray_media.Need("source", str(source), (100, 120), False, info)], tmp_path / "cas")
    record = shipped["record"]
    assert record["shipped"] == ray_media.WHOLE and "rate" in record["why"], record["why"]
    assert record["bytes"] == source.stat().st_size


def test_stills_and_masks_travel_whole_through_the_media_store(tmp_path):
    mask = write_movie(np.zeros((5, 16, 16, 3), np.uint8), tmp_path / "mask.mkv", codec="ffv1", rate=24).path
    still = tmp_path / "ref.png"
    write_movie(np.zeros((1, 16, 16, 3), np.uint8), tmp_path / "refs", codec="png", rate=24)
    os.replace(next((tmp_path / "refs").glob("*.png")), still)
    shipped = ray_media.ship([ray_media.Need("mask", str(mask)), ray_media.Need("reference", str(still))],
                             tmp_path / "cas")
    for item, path in zip(shipped, (mask, still)):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert item["record"]["shipped"] == ray_media.WHOLE and item["record"]["digest"] == digest
        assert cas_object(tmp_path / "cas", digest).read_bytes() == path.read_bytes()
        assert item["name"] == path.name
    assert "clip offset" in shipped[0]["record"]["why"]


def test_a_whole_range_is_not_cut(tmp_path):
    source = write_movie(np.zeros((6, 16, 16, 3), np.uint8), tmp_path / "m.mkv", codec="ffv1", rate=24).path
    [shipped] = ray_media.ship([ray_media.Need("source", str(source), (0, 5), False, probe(source))], tmp_path / "cas")
    assert shipped["record"]["why"] == "the range reads every frame of the file"


# -- the worker's cache ---------------------------------------------------------------------------
def an_object(data: bytes, name="clip.mkv") -> dict:
    return {"digest": hashlib.sha256(data).hexdigest(), "name": name, "size": len(data), "ref": data}


def test_the_second_fetch_of_an_object_moves_nothing(tmp_path):
    cache = ray_media.WorkerCache(tmp_path / "cache", limit_bytes=10**6)
    obj, calls = an_object(b"x" * 1000), []

    def get(ref):
        calls.append(ref)
        return ref
    assert cache.fetch_into(obj, tmp_path / "job1" / "clip.mkv", get) == 1000
    assert cache.fetch_into(obj, tmp_path / "job2" / "clip.mkv", get) == 0
    assert len(calls) == 1, "fetched once"
    assert (tmp_path / "job2" / "clip.mkv").read_bytes() == b"x" * 1000
    assert (tmp_path / "cache" / obj["digest"]).stat().st_nlink >= 2, "a hard link, not a copy"


def test_bytes_that_are_not_the_digests_are_refused_and_nothing_is_kept(tmp_path):
    cache = ray_media.WorkerCache(tmp_path / "cache", limit_bytes=10**6)
    obj = {**an_object(b"the source's bytes"), "ref": b"other bytes"}
    with pytest.raises(JobError) as refused:
        cache.fetch_into(obj, tmp_path / "job" / "clip.mkv", same)
    assert refused.value.code == "media_corrupt"
    assert obj["digest"] in str(refused.value) and "Submit the job again" in str(refused.value)
    assert not (tmp_path / "job" / "clip.mkv").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".lock")] == []


def test_the_cache_forgets_the_least_recently_used_beyond_its_size(tmp_path):
    cache = ray_media.WorkerCache(tmp_path / "cache", limit_bytes=250)
    a, b, c = (an_object(bytes([n]) * 100) for n in (1, 2, 3))
    for number, obj in enumerate((a, b)):
        cache.fetch_into(obj, tmp_path / f"j{number}" / "x", same)
    os.utime(tmp_path / "cache" / a["digest"], (1, 1))
    os.utime(tmp_path / "cache" / b["digest"], (2, 2))
    assert cache.fetch_into(a, tmp_path / "j2" / "x", same) == 0     # a used again: b is now the oldest
    assert cache.fetch_into(c, tmp_path / "j3" / "x", same) == 100
    kept = {e[2].name for e in cache.entries()}
    assert kept == {a["digest"], c["digest"]} and sum(e[1] for e in cache.entries()) <= 250
    assert cache.fetch_into(b, tmp_path / "j4" / "x", same) == 100, "b went: fetched again"


def test_the_cache_folder_and_size_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ray_media.CACHE_ENV, str(tmp_path / "here"))
    monkeypatch.setenv(ray_media.CACHE_LIMIT_ENV, "1.5")
    cache = ray_media.WorkerCache()
    assert cache.folder == tmp_path / "here" and cache.limit == 1_500_000_000
    monkeypatch.delenv(ray_media.CACHE_LIMIT_ENV)
    assert ray_media.cache_limit() == 20_000_000_000
    monkeypatch.setenv(ray_media.CACHE_LIMIT_ENV, "lots")
    with pytest.raises(JobError, match=r"TAKEBRIDGE_WORKER_CACHE_GB='lots' is not a size in gigabytes"):
        ray_media.cache_limit()


def test_the_manifest_record_says_what_travelled_and_what_was_fetched(tmp_path):
    """A cut source and a whole mask; the second job on the same range fetches nothing."""
    source = footage.for_test("bikes")
    info = probe(source)
    mask = write_movie(np.zeros((21, 16, 16, 3), np.uint8), tmp_path / "mask.mkv", codec="ffv1", rate=25).path
    needs = [ray_media.Need("source", str(source), (40, 60), False, info), ray_media.Need("mask", str(mask))]
    cache = ray_media.WorkerCache(tmp_path / "worker", limit_bytes=10**9)
    transfers = []
    for job in ("one", "two"):
        shipped = travelled(ray_media.ship(needs, tmp_path / "cas"))
        _, records = ray_media.receive(shipped, tmp_path / job, cache, same)
        transfers.append(ray_media.transfer(records, 123))
    first, second = transfers
    cut = first["inputs"][0]
    assert (cut["shipped"], cut["frames"], cut["read"], cut["of"], cut["file_bytes"]) == (
        ray_media.RANGE, [30, 61], [40, 60], 250, source.stat().st_size)
    assert cut["bytes"] < cut["file_bytes"] and cut["fetched_bytes"] == cut["bytes"] and not cut["cached"]
    assert first["shipped_in_bytes"] == cut["bytes"] + mask.stat().st_size and first["shipped_out_bytes"] == 123
    assert second["shipped_in_bytes"] == 0 and all(r["cached"] and r["fetched_bytes"] == 0 for r in second["inputs"])
    assert [r["digest"] for r in second["inputs"]] == [r["digest"] for r in first["inputs"]]


def test_a_killed_workers_leftovers_are_swept_and_a_running_jobs_are_not(tmp_path):
    """A worker killed mid-job leaves a partial download and its job folder; the next worker to
    open the cache removes those older than a day, and leaves a job running now alone."""
    import time

    cache = ray_media.WorkerCache(tmp_path / "cache")
    old_partial = cache.folder / f".{'a' * 64}.1234abcd.partial"
    old_partial.write_bytes(b"half")
    old_job = cache.work_folder("takebridge-old-")
    (old_job / "in").mkdir()
    (old_job / "in" / "src.mkv").write_bytes(b"x")
    running = cache.work_folder("takebridge-now-")
    kept = cache.folder / ("b" * 64)
    kept.write_bytes(b"object")
    day_ago = time.time() - 25 * 3600
    for path in (old_partial, old_job, kept):
        os.utime(path, (day_ago, day_ago))
    ray_media.WorkerCache(tmp_path / "cache")
    assert not old_partial.exists() and not old_job.exists(), "leftovers swept"
    assert running.is_dir() and kept.read_bytes() == b"object", "a running job's folder and kept objects stay"


def test_the_cache_says_what_it_keeps_and_an_object_not_sent_and_not_kept_is_evicted(tmp_path):
    cache = ray_media.WorkerCache(tmp_path / "cache")
    data = b"frames" * 100
    digest = hashlib.sha256(data).hexdigest()
    other = "c" * 64
    assert cache.holding([digest, other]) == []
    assert cache.fetch_into({"digest": digest, "name": "a.mkv", "size": len(data), "ref": "r"}, tmp_path / "a.mkv",
                            lambda ref: data) == len(data)
    assert cache.holding([digest, other]) == [digest]
    assert cache.fetch_into({"digest": digest, "name": "a.mkv", "size": len(data), "ref": None}, tmp_path / "b.mkv",
                            lambda ref: pytest.fail("nothing is fetched for a kept object")) == 0
    with pytest.raises(ray_media.Evicted, match=other):
        cache.fetch_into({"digest": other, "name": "c.mkv", "size": 5, "ref": None}, tmp_path / "c.mkv",
                         lambda ref: pytest.fail("there is no ref to fetch"))
