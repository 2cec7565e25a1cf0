"""A Ray worker holds FFmpeg's decoders and scalers to the CPUs Ray gave it
($TAKEBRIDGE_MEDIA_THREADS, set by the worker): that must change nothing but speed. Real camera
footage (H.264 with B-frames) decodes to the same pictures with one thread as with FFmpeg's own
count, and a take encoded with the setting decodes to the same pictures as one encoded without
(encoders keep their count: x264's pictures depend on it, so a take would change with the worker
that made it)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from support import footage
from server.media import read_frames, write_movie
from server.media.pixels import THREADS_ENV, media_threads


def test_the_thread_setting_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert media_threads() == 0, "unset: FFmpeg's own choice"
    monkeypatch.setenv(THREADS_ENV, "1")
    assert media_threads() == 1
    monkeypatch.setenv(THREADS_ENV, "many")
    assert media_threads() == 0, "not a number: FFmpeg's own choice"


@pytest.mark.parametrize("start", [0, 117])
def test_one_thread_decodes_real_footage_to_the_same_pictures(monkeypatch, start):
    clip = footage.for_test("bikes")
    monkeypatch.delenv(THREADS_ENV, raising=False)
    auto = read_frames(clip, start, 20)
    monkeypatch.setenv(THREADS_ENV, "1")
    one = read_frames(clip, start, 20)
    assert auto.shape == (20, 272, 640, 3) and np.array_equal(one, auto)


@pytest.mark.parametrize("codec, suffix", [("prores", "mov"), ("ffv1", "mkv"), ("h264", "mp4")])
def test_the_setting_leaves_the_encoders_and_their_takes_alone(monkeypatch, tmp_path, codec, suffix):
    frames = read_frames(footage.for_test("bikes"), 40, 12)
    monkeypatch.delenv(THREADS_ENV, raising=False)
    auto = write_movie(frames, tmp_path / f"auto.{suffix}", codec=codec, rate=Fraction(25)).path
    monkeypatch.setenv(THREADS_ENV, "1")
    one = write_movie(frames, tmp_path / f"one.{suffix}", codec=codec, rate=Fraction(25)).path
    assert np.array_equal(read_frames(one, 0, 12), read_frames(auto, 0, 12))
