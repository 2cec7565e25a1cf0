"""Media I/O: takes written to disk come back with the exact rate, timecode, length and pixels."""
from __future__ import annotations

import os
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from server.media import (
    MediaError,
    frames_to_timecode,
    probe,
    read_frames,
    read_mask,
    shift_timecode,
    timecode_to_frames,
    write_movie,
)

WIDTH, HEIGHT = 128, 72
NTSC_FILM = Fraction(24000, 1001)
NTSC_VIDEO = Fraction(30000, 1001)

SUFFIX = {"prores": ".mov", "ffv1": ".mkv", "h264": ".mp4", "png": ""}
CODEC_NAME = {"prores": "prores", "ffv1": "ffv1", "h264": "h264", "png": "png"}

# Four well-separated levels per channel give 64 colour codes that survive lossy compression.
LEVELS = np.array([32, 96, 160, 224])


def noise_frames(count: int, seed: int = 0) -> np.ndarray:
    """Frames no lossy codec can reproduce: only a lossless round trip gives them back."""
    return np.random.default_rng(seed).integers(0, 256, (count, HEIGHT, WIDTH, 3), dtype=np.uint8)


def gradient_frames(count: int) -> np.ndarray:
    """Smooth picture content, like a real shot, drifting a little every frame."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack(
        [np.stack([x + i, 2 * y + i, 255 - x - i], axis=-1).astype(np.uint8) for i in range(count)]
    )


def colour_code(index: int) -> np.ndarray:
    return LEVELS[[index % 4, (index // 4) % 4, (index // 16) % 4]]


def coded_frames(count: int) -> np.ndarray:
    """Gradient frames with a patch whose colour spells the frame's index."""
    frames = gradient_frames(count)
    for index in range(count):
        frames[index, 16:56, 40:88] = colour_code(index)
    return frames


def index_in(frame: np.ndarray) -> int:
    patch = frame[24:48, 48:80].reshape(-1, 3).mean(axis=0)
    digits = np.clip(np.rint((patch - 32) / 64), 0, 3).astype(int)
    return int(digits[0] + 4 * digits[1] + 16 * digits[2])


def write_h264_with_b_frames(path, frames: np.ndarray, rate: Fraction) -> None:
    """A camera-like long-GOP H.264: a keyframe every 12 frames, open GOPs, 3 B-frames."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "12", "g": "12", "bf": "3", "x264-params": "scenecut=0:open-gop=1"}
        for index, array in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(array, format="rgb24")
            picture.pts = index
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# --- round trips -------------------------------------------------------------------------------

RATES_AND_TIMECODES = [
    (NTSC_FILM, "01:00:00:00"),
    (Fraction(25), "10:00:00:00"),
    (NTSC_VIDEO, "00:59:59;28"),
]


@pytest.mark.parametrize("codec", ["prores", "ffv1", "h264", "png"])
@pytest.mark.parametrize("rate, timecode", RATES_AND_TIMECODES, ids=["23.976", "25", "29.97DF"])
def test_a_written_take_probes_back_with_exact_rate_timecode_and_length(tmp_path, codec, rate, timecode):
    dest = tmp_path / f"shot010_take1{SUFFIX[codec]}"
    lossless = codec in ("ffv1", "png")
    frames = noise_frames(12) if lossless else gradient_frames(12)

    written = write_movie(frames, dest, codec=codec, rate=rate, start_timecode=timecode)
    info = probe(dest)

    assert info == written
    assert isinstance(info.rate, Fraction) and info.rate == rate
    assert info.start_timecode == timecode
    assert info.drop_frame is (";" in timecode)
    assert info.frame_count == 12
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert info.codec == CODEC_NAME[codec]
    assert info.is_sequence is (codec == "png")

    back = read_frames(dest, 0, 12)
    assert back.shape == (12, HEIGHT, WIDTH, 3) and back.dtype == np.uint8
    error = np.abs(back.astype(int) - frames).mean()
    if lossless:
        assert np.array_equal(back, frames)
    else:
        assert error < 2, f"{codec} round trip drifted by {error:.2f} on average"


def test_prores_takes_are_422_hq_10_bit_and_decode_to_8_bit_rgb(tmp_path):
    info = write_movie(gradient_frames(4), tmp_path / "take.mov", codec="prores", rate=NTSC_FILM)
    with av.open(str(info.path)) as container:
        profile = container.streams.video[0].codec_context.profile

    assert (info.pix_fmt, info.bit_depth, profile) == ("yuv422p10le", 10, "HQ")
    assert np.abs(read_frames(info.path, 0, 4).astype(int) - gradient_frames(4)).max() <= 2


def test_a_16_bit_png_comes_down_to_8_bits_exactly(tmp_path):
    eight_bit = noise_frames(1)[0]
    cv2.imwrite(str(tmp_path / "plate.png"), (eight_bit.astype(np.uint16) * 257)[..., ::-1])

    info = probe(tmp_path / "plate.png")

    assert (info.bit_depth, info.frame_count, info.rate) == (16, 1, 24)
    assert np.array_equal(read_frames(tmp_path / "plate.png", 0, 1)[0], eight_bit)


def test_an_image_sequence_folder_counts_from_its_first_number_at_the_callers_rate(tmp_path):
    frames = noise_frames(5)
    for offset, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"plate_{1001 + offset:04d}.png"), frame[..., ::-1])

    info = probe(tmp_path, rate=NTSC_FILM)

    assert info.path == tmp_path / "plate_%04d.png"
    assert (info.frame_count, info.rate, info.start_timecode) == (5, NTSC_FILM, None)
    assert np.array_equal(read_frames(tmp_path / "plate_%04d.png", 2, 2), frames[2:4])


# --- frame-exact random access -----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_reading_from_any_frame_of_a_long_gop_h264_returns_exactly_that_frame(tmp_path, suffix):
    source = tmp_path / f"camera{suffix}"
    write_h264_with_b_frames(source, coded_frames(48), NTSC_FILM)
    with av.open(str(source)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    presentation = [p.pts for p in packets]
    assert presentation != sorted(presentation), "the source must have reordered (B) frames"
    assert sum(p.is_keyframe for p in packets) >= 4

    assert probe(source).frame_count == 48
    for start in (0, 1, 11, 12, 13, 23, 24, 30, 36, 45):
        got = [index_in(frame) for frame in read_frames(source, start, 3)]
        assert got == [start, start + 1, start + 2], f"read_frames(start={start})"


def test_reading_past_the_end_names_the_file_the_range_and_the_length(tmp_path):
    source = write_movie(gradient_frames(12), tmp_path / "plate.mov", codec="prores", rate=24).path

    with pytest.raises(MediaError) as raised:
        read_frames(source, 10, 5)

    assert raised.value.code == "range_outside_media"
    message = str(raised.value)
    assert str(source) in message and "10..14" in message and "12 frames" in message
    with pytest.raises(MediaError) as before_start:
        read_frames(source, -1, 2)
    assert before_start.value.code == "range_outside_media"


def test_missing_media_is_refused_with_its_path(tmp_path):
    missing = tmp_path / "offline" / "A001C003.mov"
    for read in (lambda: probe(missing), lambda: read_frames(missing, 0, 1)):
        with pytest.raises(MediaError) as raised:
            read()
        assert raised.value.code == "media_missing"
        assert str(missing) in str(raised.value)


# --- masks -------------------------------------------------------------------------------------


def test_one_still_matte_is_held_for_every_frame(tmp_path):
    matte = np.zeros((HEIGHT, WIDTH), np.uint8)
    matte[10:30, 20:60] = 255
    matte[40:50, 0:10] = 100  # grey below the threshold stays outside
    cv2.imwrite(str(tmp_path / "matte.png"), matte)

    masks = read_mask(tmp_path / "matte.png", 6, (WIDTH, HEIGHT))

    assert masks.shape == (6, HEIGHT, WIDTH) and masks.dtype == bool
    assert all(np.array_equal(mask, matte > 127) for mask in masks)
    assert masks.sum() == 6 * 20 * 40


def test_a_matte_movie_gives_one_mask_per_frame_from_the_start_asked(tmp_path):
    mattes = np.zeros((6, HEIGHT, WIDTH, 3), np.uint8)
    for index in range(6):
        mattes[index, :, : 10 * (index + 1)] = 255  # the white area widens by 10 px a frame
    source = write_movie(mattes, tmp_path / "matte.mkv", codec="ffv1", rate=24).path

    masks = read_mask(source, 3, (WIDTH, HEIGHT), start=2)

    assert [int(mask.sum()) for mask in masks] == [30 * HEIGHT, 40 * HEIGHT, 50 * HEIGHT]


def test_a_matte_of_the_wrong_size_is_refused_naming_both_sizes(tmp_path):
    cv2.imwrite(str(tmp_path / "matte.png"), np.full((36, 64), 255, np.uint8))

    with pytest.raises(MediaError) as raised:
        read_mask(tmp_path / "matte.png", 4, (WIDTH, HEIGHT))

    assert raised.value.code == "mask_size_mismatch"
    assert "64x36" in str(raised.value) and "128x72" in str(raised.value)


# --- atomic writes and refusals ----------------------------------------------------------------


def frames_then_crash(frames: np.ndarray, crash_at: int):
    for index, frame in enumerate(frames):
        if index == crash_at:
            raise RuntimeError("backend died mid-take")
        yield frame


@pytest.mark.parametrize("codec", ["prores", "ffv1", "h264", "png"])
def test_a_take_that_fails_halfway_leaves_nothing_behind(tmp_path, codec):
    dest = tmp_path / f"take{SUFFIX[codec]}"

    with pytest.raises(RuntimeError, match="backend died"):
        write_movie(frames_then_crash(gradient_frames(8), 4), dest, codec=codec, rate=24)

    assert os.listdir(tmp_path) == []


def test_a_failed_re_render_keeps_the_previous_take(tmp_path):
    dest = tmp_path / "take"
    write_movie(noise_frames(3), dest, codec="png", rate=25, start_timecode="01:00:00:00")

    with pytest.raises(RuntimeError):
        write_movie(frames_then_crash(noise_frames(8, seed=1), 5), dest, codec="png", rate=25)

    assert sorted(os.listdir(tmp_path)) == ["take"]
    assert probe(dest).frame_count == 3
    assert np.array_equal(read_frames(dest, 0, 3), noise_frames(3))


def test_progress_reports_every_frame_against_the_total(tmp_path):
    calls = []
    write_movie(gradient_frames(4), tmp_path / "t.mkv", codec="ffv1", rate=24, progress=lambda *a: calls.append(a))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_odd_sized_frames_are_refused_for_h264_with_the_size_to_use(tmp_path):
    with pytest.raises(MediaError) as raised:
        write_movie(noise_frames(2)[:, :71], tmp_path / "proxy.mp4", codec="h264", rate=24)
    assert raised.value.code == "bad_frames"
    assert "128x71" in str(raised.value) and "128x72" in str(raised.value)
    assert os.listdir(tmp_path) == []


def test_a_float_rate_is_refused_in_favour_of_the_exact_rational(tmp_path):
    with pytest.raises(MediaError) as raised:
        write_movie(noise_frames(2), tmp_path / "take.mov", rate=23.976)
    assert raised.value.code == "bad_rate" and "24000, 1001" in str(raised.value)


def test_a_timecode_whose_counting_contradicts_drop_frame_is_refused(tmp_path):
    with pytest.raises(MediaError) as raised:
        write_movie(noise_frames(2), tmp_path / "take.mov", rate=NTSC_VIDEO, start_timecode="00:59:59;28", drop_frame=False)
    assert raised.value.code == "bad_timecode"


# --- timecode ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timecode, rate, frames",
    [
        ("01:00:00:00", NTSC_FILM, 86400),
        ("01:00:00:00", Fraction(24), 86400),
        ("01:00:00:00", Fraction(25), 90000),
        ("01:00:00:00", NTSC_VIDEO, 108000),
        ("01:00:00;00", NTSC_VIDEO, 107892),
        ("00:59:59;28", NTSC_VIDEO, 107890),
        ("00:01:00;02", NTSC_VIDEO, 1800),
        ("00:10:00;00", NTSC_VIDEO, 17982),
        ("01:00:00:00", Fraction(50), 180000),
        ("00:01:00;04", Fraction(60000, 1001), 3600),
        ("01:00:00;00", Fraction(60000, 1001), 215784),
        ("01:00:00:00", Fraction(60), 216000),
    ],
)
def test_timecode_and_frame_counts_convert_both_ways(timecode, rate, frames):
    assert timecode_to_frames(timecode, rate) == frames
    assert frames_to_timecode(frames, rate, ";" in timecode) == timecode


def test_shifting_a_timecode_wraps_around_midnight():
    assert shift_timecode("23:59:59:23", 1, Fraction(24)) == "00:00:00:00"
    assert shift_timecode("00:00:00;00", -1, NTSC_VIDEO) == "23:59:59;29"
    assert shift_timecode("00:59:59;28", 2, NTSC_VIDEO) == "01:00:00;00"
    assert shift_timecode("01:00:00:00", -24, NTSC_FILM) == "00:59:59:00"


@pytest.mark.parametrize(
    "timecode, rate",
    [("00:01:00;00", NTSC_VIDEO), ("00:00:00;05", Fraction(24)), ("00:00:00:25", Fraction(25)), ("1:00:00:00", Fraction(24))],
    ids=["dropped label", "drop-frame at 24", "frame 25 at 25", "one-digit hours"],
)
def test_labels_that_do_not_exist_at_the_rate_are_refused(timecode, rate):
    with pytest.raises(MediaError) as raised:
        timecode_to_frames(timecode, rate)
    assert raised.value.code == "bad_timecode" and timecode in str(raised.value)


# --- contact sheet -----------------------------------------------------------------------------


def test_a_contact_sheet_shows_each_clip_as_a_row_of_evenly_sampled_frames(tmp_path):
    from server.contact_sheet import MARGIN, LABEL_HEIGHT, contact_sheet, sample_indices

    source = coded_frames(48)
    take = np.full((10, 36, 64, 3), 200, np.uint8)  # a half-size take still gets full-width thumbs

    sheet_path = contact_sheet([("source", source), ("take v1", take)], tmp_path / "review.png", columns=4, thumb_width=96)
    sheet = cv2.imread(str(sheet_path))[..., ::-1]

    assert sample_indices(48, 4) == [0, 16, 31, 47] and sample_indices(3, 6) == [0, 1, 2]
    assert sheet.shape[1] == MARGIN + 4 * (96 + MARGIN)
    assert sheet.shape[0] > 2 * 54  # two rows of 54 px thumbnails plus labels and captions
    thumb_top = MARGIN + LABEL_HEIGHT
    for column, index in enumerate(sample_indices(48, 4)):
        left = MARGIN + column * (96 + MARGIN)
        # the colour-coded patch sits in the middle of each thumbnail
        assert index_in(cv2.resize(sheet[thumb_top : thumb_top + 54, left : left + 96], (WIDTH, HEIGHT))) == index
    assert os.listdir(tmp_path) == ["review.png"]


def test_prefetched_keeps_order_passes_errors_and_stops_its_thread():
    import threading
    import time as _time
    from server.media.decode import prefetched

    assert list(prefetched(iter(range(50)), ahead=3)) == list(range(50))

    def failing():
        yield 1
        raise MediaError("media_unreadable", "frame 1 is damaged")
    reader = prefetched(failing())
    assert next(reader) == 1
    with pytest.raises(MediaError, match="damaged"):
        next(reader)

    produced = []

    def endless():
        for i in range(10**9):
            produced.append(i)
            yield i
    reader = prefetched(endless(), ahead=2)
    assert [next(reader) for _ in range(5)] == [0, 1, 2, 3, 4]
    reader.close()                       # the consumer stops early
    _time.sleep(0.3)
    assert not any(t.name == "takebridge-decode" and t.is_alive() for t in threading.enumerate())
    assert len(produced) <= 5 + 2 + 2, "the producer ran at most its window ahead"
