"""Frames stream through a job: the memory a take needs does not grow with its length.

Measured with tracemalloc (numpy's frame buffers are traced) around one job on the in-process
server, for a short and a four times longer clip; the donor window of inpaint is made small
here so that both clips are longer than it (bench/bench_memory.py measures real sizes).
"""
from __future__ import annotations

import tracemalloc
from fractions import Fraction

import cv2
import numpy as np
import pytest

from bridge.api import pb
from server.backends.classic import inpaint
from server.media import read_frames, write_movie
from server.samples import pan_clip

from conftest import make_timeline, submit_request

H, W = 90, 160


def peak_of_job(client, tmp_path, n: int, op: str, **params) -> tuple[int, "pb.Job"]:
    frames = pan_clip(n, H, W, 1.5).astype(np.uint16) * 257 + 3
    media = write_movie(frames, tmp_path / f"plate{n}.mov", codec="prores", rate=Fraction(24),
                        start_timecode="01:00:00:00").path
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=n, clip_in=0, clip_frames=n)
    if op == "inpaint":
        mask = np.zeros((H, W), np.uint8)
        mask[30:60, 60:100] = 255
        params["mask"] = tmp_path / "mask.png"   # a still: one mask for every frame
        cv2.imwrite(str(params["mask"]), mask)
    tracemalloc.start()
    try:
        job = client.wait(client.submit(submit_request(timeline, "A", op, codec=pb.FFV1, **params)).job_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job.state == pb.SUCCEEDED, job.error
    assert job.take.media.frame_count == n + params.get("frames", 0)
    return peak, job


@pytest.mark.parametrize("op, params", [("inpaint", {}), ("refine", {"strength": 1.0}), ("extend", {"frames": 6})])
def test_peak_memory_does_not_grow_with_the_clip(server, tmp_path, monkeypatch, op, params):
    client, _ = server
    monkeypatch.setattr(inpaint, "MAX_DONOR_RADIUS", 4)
    short, _ = peak_of_job(client, tmp_path, 24, op, **dict(params))
    long, job = peak_of_job(client, tmp_path, 96, op, **dict(params))
    frame_mb = H * W * 3 * 2 / 1e6
    print(f"\n{op}: peak traced {short / 1e6:.1f} MB for 24 frames, {long / 1e6:.1f} MB for 96 "
          f"({long / short:.2f}x; one working frame is {frame_mb:.2f} MB)")
    assert long <= 1.25 * short, f"{op} holds more for a longer clip: {short} -> {long} bytes"
    take = read_frames(job.take.media.url, 0, job.take.media.frame_count, depth=16)
    assert take.dtype == np.uint16 and len(take) == job.take.media.frame_count
