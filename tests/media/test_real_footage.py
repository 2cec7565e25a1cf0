"""The media path on real camera footage nobody here made (tests/support/footage.py: clips from registry
packages, with their sources and licences), through the real server: long-GOP H.264 with
B-frames, MPEG-2 in a program stream, MS-MPEG4 in AVI, an odd height, an odd constant rate,
B-frames a stream does not declare, BT.601 tags; and deep camera-style files made from them
with FFmpeg's own encoders (HEVC Main 10 up to 3840x1632, H.264 High 4:2:2 10-bit as XAVC
is): no registry package ships real 10-bit video.

What is checked on each: the take is frame-exact to the range asked for (every sample outside
the inpaint mask is the source's own sample of the same frame), a frame whose mask is empty is
untouched whole, the colour tags are kept, and a ProRes take stays within 5 % of a plain
re-encode outside the mask.
"""
from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from support import footage
from bridge.api import pb
from server.media import probe, read_frames
from server.media.pixels import align_mask, chroma_grid, plane_masks

from conftest import encode_pictures, make_timeline, natives, submit_request, write_mask as write_matte

N = 12


def real_clip(clip_id: str, tmp_path: Path) -> Path:
    """A copy of the cached clip in the test's folder (the server reads it from there)."""
    cached = footage.for_test(clip_id)
    return Path(shutil.copy(cached, tmp_path / cached.name))


def run(client, timeline, op, **params):
    job = client.wait(client.submit(submit_request(timeline, "A", op, **params)).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    return job, json.loads(Path(job.take.manifest_url).read_text())


def timeline_of(media: Path, start: int, count: int = N):
    info = probe(media)
    return make_timeline(media, rate=info.rate, media_start=0, media_frames=info.frame_count,
                         clip_in=start, clip_frames=count)


def moving_box_mask(n: int, width: int, height: int) -> np.ndarray:
    """A box crossing the frame (about a sixth of it), empty on frame 3."""
    mask = np.zeros((n, height, width), bool)
    bw, bh = width // 5, height // 4
    for i in range(n):
        x, y = width // 6 + i * width // (3 * n), height // 3
        mask[i, y:y + bh, x:x + bw] = True
    mask[3] = False
    return mask


# (clip, first frame of the range: inside a GOP, so the server must decode from a keyframe)
CLIPS = [("bikes", 37), ("city", 60), ("vtest", 301), ("wolfgang", 101), ("cup", 50)]

PROBED = {   # what each container says, read by the server's probe
    "bikes": ("h264", 640, 272, Fraction(25), 250),
    "city": ("mpeg2video", 720, 405, Fraction(25), 190),
    "vtest": ("msmpeg4", 768, 576, Fraction(10), 795),
    "wolfgang": ("h264", 640, 360, Fraction(24000, 1001), 472),
    "cup": ("h264", 640, 480, Fraction(26777, 1000), 217),
}


@pytest.mark.parametrize("clip_id", sorted(PROBED))
def test_real_clips_probe_as_their_containers_say(clip_id, tmp_path):
    info = probe(real_clip(clip_id, tmp_path))
    assert (info.codec, info.width, info.height, info.rate, info.frame_count) == PROBED[clip_id]
    assert info.bit_depth == 8 and info.pix_fmt == "yuv420p" and not info.interlaced


@pytest.mark.parametrize("clip_id,start", CLIPS)
def test_a_lossless_inpaint_of_real_footage_keeps_every_sample_outside_the_mask(server, tmp_path, clip_id, start):
    client, _ = server
    media = real_clip(clip_id, tmp_path)
    info = probe(media)
    mask = moving_box_mask(N, info.width, info.height)
    job, manifest = run(client, timeline_of(media, start), "inpaint", mask=write_matte(tmp_path / "m.mkv", mask, rate=25),
                        codec=pb.FFV1)
    take = probe(job.take.media.url)
    assert (take.frame_count, take.pix_fmt, take.width, take.height) == (N, info.pix_fmt, info.width, info.height)
    assert manifest["pixels"]["kept_source_samples"] is True
    # frame 3's mask is empty; a frame whose fill came out sample-exact is untouched too (wolfgang
    # repeats frames: a locked-off donor that is a repeat of the frame gives its own samples back)
    untouched = {f for a, b in manifest["pixels"]["frames_untouched"] for f in range(a, b + 1)}
    assert 3 in untouched and len(untouched) < N
    source, made = natives(media, start, N), natives(job.take.media.url, 0, N)
    aligned = align_mask(mask, chroma_grid(info.pix_fmt))
    same = total = changed_inside = 0
    for i, (a, b) in enumerate(zip(source, made)):
        for pa, pb_, m in zip(a.planes, b.planes, plane_masks(aligned[i], a)):
            same += int((pa[~m] == pb_[~m]).sum())
            total += int((~m).sum()) * pa.shape[2]
            changed_inside += int((pa[m] != pb_[m]).sum())
    assert same == total, f"{total - same} of {total} samples outside the mask changed"
    assert changed_inside > 0, "the inpaint did something inside the mask"
    # frame-exact: frame 3 of the take is source frame start+3 and no other
    assert made[3].equals(source[3]) and not made[3].equals(natives(media, start + 4, 1)[0])


def test_a_bt601_tagged_real_clip_keeps_its_tags_and_its_look_in_prores(server, tmp_path):
    """cup.mp4 is tagged BT.601 (smpte170m): a ProRes take of a refine at strength 0 is tagged
    the same and decodes to the same RGB within a code or two (a lossy codec, 4:2:0 -> 4:2:2)."""
    client, _ = server
    media = real_clip("cup", tmp_path)
    job, manifest = run(client, timeline_of(media, 40), "refine", strength=0.0, codec=pb.PRORES_422_HQ)
    take = probe(job.take.media.url)
    assert (take.color.matrix, take.color.primaries, take.color.transfer) == (6, 6, 1)
    assert manifest["pixels"]["source_color"]["matrix"].startswith("smpte170m")
    source, made = read_frames(media, 40, N), read_frames(job.take.media.url, 0, N)
    diff = np.abs(source.astype(int) - made.astype(int))
    print(f"\ncup.mp4 (BT.601) -> ProRes, strength 0: mean {diff.mean():.3f}, p99 {np.percentile(diff, 99):.0f} codes")
    assert diff.mean() < 0.6 and np.percentile(diff, 99) <= 3
    # read as BT.709 instead, the same take would be visibly off: the tags are what keeps the look
    with av.open(str(job.take.media.url)) as container:
        frame = next(container.decode(video=0))
        wrong = frame.reformat(format="rgb24", src_colorspace="ITU709").to_ndarray()
    assert np.abs(wrong.astype(int) - source[0].astype(int)).mean() > 2 * diff.mean() + 1


def test_a_clip_that_hides_its_b_frame_reordering_comes_out_in_display_order(server, tmp_path):
    """box.mp4 (a webcam recording) does not state how far its H.264 reorders pictures, so a
    threaded decoder hands them out in coded order (0, 3, 2, 4, 1, ...). Its timestamps step
    32-34 ms, within 0.04 frame of a constant 29.97: the take must be the source's pictures in
    display order, none held or skipped."""
    client, _ = server
    media = real_clip("box", tmp_path)
    info = probe(media)
    assert info.rate == Fraction(456000, 15217) and info.frame_count == 455
    job, manifest = run(client, timeline_of(media, 200, 24), "refine", strength=0.0, codec=pb.FFV1)
    assert job.take.media.frame_count == 24
    assert manifest["pixels"]["variable_frame_timing"] == {"held": 0, "skipped": 0}
    assert not any("variable frame timing" in f for f in job.take.flags)
    # the truth: every picture decoded one thread at a time, put in order by its timestamp
    with av.open(str(media)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        pictures = sorted(((f.pts, f.to_ndarray(format="yuv420p")) for f in container.decode(stream)),
                          key=lambda item: item[0])
    made = natives(job.take.media.url, 0, 24)
    for i, native in enumerate(made):
        expected = pictures[200 + i][1]
        assert np.array_equal(native.planes[0][..., 0], expected[:info.height]), f"take frame {i}"


def reencoded(source: Path, dest: Path, start: int, count: int, encoder: str, profile: str, pix_fmt: str) -> Path:
    """Frames start..start+count-1 re-encoded plainly with FFmpeg's `encoder`: the floor."""
    pictures = [n.frame().reformat(format=pix_fmt) for n in natives(source, start, count)]
    return encode_pictures(dest, encoder, pictures, rate=25, pix_fmt=pix_fmt,
                           size=(pictures[0].width, pictures[0].height), options={"profile": profile})


@pytest.mark.parametrize("clip_id,start", [("bikes", 37), ("vtest", 301)])
def test_a_prores_take_of_real_footage_is_within_5_percent_of_a_plain_reencode(server, tmp_path, clip_id, start):
    client, _ = server
    media = real_clip(clip_id, tmp_path)
    info = probe(media)
    mask = moving_box_mask(N, info.width, info.height)
    job, manifest = run(client, timeline_of(media, start), "inpaint", mask=write_matte(tmp_path / "m.mkv", mask, rate=25),
                        codec=pb.PRORES_422_HQ)
    floor = reencoded(media, tmp_path / "floor.mov", start, N, "prores_ks", "hq", "yuv422p10le")
    source = read_frames(media, start, N, depth=16)
    frames = [i for i in range(N) if i != 3]

    def error(path) -> float:
        made = read_frames(path, 0, N, depth=16)
        return float(np.mean([np.abs(source[i].astype(np.int64) - made[i])[~mask[i]].mean() for i in frames]))
    take_error, floor_error = error(job.take.media.url), error(floor)
    print(f"\n{clip_id}: ProRes 422 HQ RGB error outside the mask (16-bit codes): take {take_error:.1f}, "
          f"plain re-encode {floor_error:.1f}, ratio {take_error / floor_error:.3f}")
    assert floor_error > 0 and take_error <= 1.05 * floor_error


def camera_deep(tmp_path: Path, encoder: str, pix_fmt: str, size: tuple[int, int], name: str) -> Path:
    """Real footage as a deep camera-style file made with FFmpeg's own encoders: bikes.mp4
    frames 30-53 (the hand-held pan), scaled and widened by FFmpeg's scaler, encoded long-GOP
    with B-frames as a camera would (HEVC Main 10, or H.264 High 4:2:2 10-bit as XAVC is)."""
    media = real_clip("bikes", tmp_path)
    path = tmp_path / name
    options = {"preset": "ultrafast", "crf": "16"}
    if encoder == "libx265":
        options["x265-params"] = "log-level=error:bframes=3"
    else:
        options["x264-params"] = "bframes=3"
        options["preset"] = "veryfast"
    pictures = (native.frame().reformat(width=size[0], height=size[1], format=pix_fmt, interpolation="BICUBIC")
                for native in natives(media, 30, 24))
    return encode_pictures(path, encoder, pictures, rate=25, pix_fmt=pix_fmt, size=size, options=options)


DEEP = [("libx265", "yuv420p10le", (640, 272), "bikes_main10.mkv"),
        ("libx264", "yuv422p10le", (1280, 544), "bikes_xavc_like.mp4"),
        pytest.param("libx265", "yuv420p10le", (3840, 1632), "bikes_uhd_main10.mkv", marks=pytest.mark.slow)]


@pytest.mark.parametrize("encoder,pix_fmt,size,name", DEEP)
def test_deep_long_gop_camera_files_keep_their_samples_outside_the_mask(server, tmp_path, encoder, pix_fmt,
                                                                          size, name):
    client, _ = server
    media = camera_deep(tmp_path, encoder, pix_fmt, size, name)
    info = probe(media)
    assert (info.pix_fmt, info.bit_depth, info.frame_count, info.width) == (pix_fmt, 10, 24, size[0])
    mask = moving_box_mask(N, *size)
    job, manifest = run(client, timeline_of(media, 7), "inpaint", mask=write_matte(tmp_path / "m.mkv", mask, rate=25),
                        codec=pb.FFV1)
    assert manifest["pixels"]["processing_bit_depth"] == 16 and manifest["pixels"]["source_bit_depth"] == 10
    take = probe(job.take.media.url)
    assert (take.pix_fmt, take.bit_depth, take.frame_count, take.width, take.height) == (pix_fmt, 10, N, *size)
    source, made = natives(media, 7, N), natives(job.take.media.url, 0, N)
    aligned = align_mask(mask, chroma_grid(pix_fmt))
    for i, (a, b) in enumerate(zip(source, made)):
        for pa, pb_, m in zip(a.planes, b.planes, plane_masks(aligned[i], a)):
            assert np.array_equal(pa[~m], pb_[~m]), f"frame {i}"
    assert made[3].equals(source[3])


def test_a_head_extension_of_media_without_timecode_is_not_labelled_on_the_day_before(server, tmp_path):
    """bikes.mp4 has no timecode and its OTIO reference counts from 0: a 6-frame head extension
    starts 6 frames before 00:00:00:00. The take carries no timecode (not 23:59:59:19) and the
    manifest says why; a tail extension of the same clip keeps the reference's numbering."""
    client, _ = server
    media = real_clip("bikes", tmp_path)
    assert probe(media).start_timecode is None
    job, manifest = run(client, timeline_of(media, 0, 24), "extend", frames=6, side="head", codec=pb.FFV1)
    take = probe(job.take.media.url)
    assert take.frame_count == 30 and take.start_timecode is None and job.take.media.start_timecode == ""
    assert "day before" in manifest["source"]["take_timecode_note"]
    assert job.take.status == pb.OK or not any("timecode" in f for f in job.take.flags)
    job, manifest = run(client, timeline_of(media, 50, 24), "extend", frames=6, codec=pb.FFV1)
    assert probe(job.take.media.url).start_timecode == "00:00:02:00" and manifest["source"]["take_timecode_note"] is None


@pytest.mark.parametrize("clip_id,start,count,chosen,ratio", [("city", 40, 24, "decay", 0.8),
                                                             ("vtest", 300, 24, "layers", 0.9),
                                                             ("bikes", 30, 22, "hold", 1.0)])
def test_an_extension_is_never_worse_than_holding_and_says_when_it_holds(server, tmp_path, clip_id, start, count,
                                                                       chosen, ratio):
    """The next 24 frames of the real clip are the truth. city's motorised pan is carried on
    and beats a held frame by far; vtest's walkers walk on over a clean plate of the yard (a
    locked-off camera: layers); on bikes' hand-held telephoto pan carrying the motion on did
    not clearly beat holding on the shot's own last frames, so the take holds and is flagged
    for review with the reason (before the hindcast it was 23 % worse than holding)."""
    client, _ = server
    media = real_clip(clip_id, tmp_path)
    job, manifest = run(client, timeline_of(media, start, count), "extend", frames=24, codec=pb.FFV1)
    made = read_frames(job.take.media.url, count, 24)
    truth = read_frames(media, start + count, 24)
    held = np.repeat(read_frames(media, start + count - 1, 1), 24, axis=0)
    ours_mae = float(np.abs(made.astype(int) - truth).mean())
    hold_mae = float(np.abs(held.astype(int) - truth).mean())
    print(f"\n{clip_id} extension: MAE {ours_mae:.2f} against the true continuation, holding {hold_mae:.2f}; "
          f"hindcast {manifest['extend']}; take {pb.TakeStatus.Name(job.take.status)} {list(job.take.flags)}")
    assert manifest["extend"]["chosen"].split()[0] == chosen
    assert ours_mae <= ratio * hold_mae + 1e-6
    if chosen == "hold":
        assert job.take.status == pb.NEEDS_REVIEW and any("held the last frame" in f for f in job.take.flags)
    else:
        assert ours_mae < ratio * hold_mae
        assert not any("held the last frame" in f for f in job.take.flags)


@pytest.mark.parametrize("clip_id,start", [("city", 40), ("bikes", 80), ("vtest", 300), ("cup", 60)])
def test_refine_at_half_strength_takes_5db_of_noise_off_real_footage_and_beats_temporal_nlmeans(tmp_path, clip_id,
                                                                                                 start):
    """Sigma-8 Gaussian noise on real frames (the footage is the truth): the classic refine at
    strength 0.5 gains at least 5 dB, beats a sigma-1 Gaussian blur, and beats OpenCV's temporal
    NL-means (5-frame window) on the frames both made, several times faster. Strength 0 gives
    the frames back. city 40 is a slow pan over fine lit windows at night (its own noise is
    ~2.3 levels: a blur loses 5 dB there); bikes 80 is soft hand-held footage with cars
    crossing, where a blur alone gains 8.5 dB."""
    import threading
    import time

    import cv2
    from server.backends.base import Spec
    from server.backends.classic import ClassicBackend

    clean = read_frames(real_clip(clip_id, tmp_path), start, 16)
    noisy = np.clip(np.rint(clean + np.random.default_rng(8).normal(0, 8, clean.shape)), 0, 255).astype(np.uint8)

    def psnr(a, b):
        return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))

    def refine(strength):
        return ClassicBackend().run("refine", noisy, Spec(op="refine", rate=Fraction(25), strength=strength),
                                    lambda *a: None, threading.Event())
    began = time.perf_counter()
    ours = refine(0.5)
    ours_fps = len(noisy) / (time.perf_counter() - began)
    picks = [7, 8]
    began = time.perf_counter()
    nl = np.stack([cv2.fastNlMeansDenoisingColoredMulti(list(noisy), i, 5, None, 8, 8, 7, 21) for i in picks])
    nl_fps = len(picks) / (time.perf_counter() - began)
    blur = np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in noisy])
    gain = psnr(ours, clean) - psnr(noisy, clean)
    print(f"\n{clip_id}: refine 0.5 gains {gain:.2f} dB ({ours_fps:.1f} fps), a blur {psnr(blur, clean) - psnr(noisy, clean):.2f}"
          f" dB; on frames {picks}: ours {psnr(ours[picks], clean[picks]):.2f} dB, temporal NL-means "
          f"{psnr(nl, clean[picks]):.2f} dB ({nl_fps:.2f} fps)")
    assert gain >= 5.0
    assert psnr(ours, clean) > psnr(blur, clean)
    assert psnr(ours[picks], clean[picks]) >= psnr(nl, clean[picks])
    assert ours_fps >= 3 * nl_fps
    assert np.array_equal(refine(0.0), noisy)


@pytest.mark.parametrize("clip_id,start,paste", [("wolfgang", 100, "logo"), ("box", 150, "logo"),
                                                 ("bikes", 80, "logo"), ("cup", 60, "disc")])
def test_inpaint_of_real_footage_beats_per_frame_telea_and_fsr_inside_the_mask(tmp_path, clip_id, start, paste):
    """A fixed logo or a crossing disc pasted on real frames (the footage behind them is the
    truth): the classic inpaint beats OpenCV's per-frame Telea and xphoto FSR fills inside the
    mask, and keeps every pixel outside it. wolfgang and box are locked-off shots whose chained
    camera motion follows the face or the box; bikes 80 has a car passing through the logo."""
    import threading

    import cv2
    from server.backends.base import Spec
    from server.backends.classic import ClassicBackend
    from server.samples import with_logo, with_moving_disc

    plate = read_frames(real_clip(clip_id, tmp_path), start, 24)   # bench/bench_real.py's segments
    frames, masks = (with_logo if paste == "logo" else with_moving_disc)(plate)

    def psnr(a, b):
        return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))

    def fsr(frame, mask):
        out = np.empty_like(frame)
        cv2.xphoto.inpaint(frame, (~mask).astype(np.uint8) * 255, out, cv2.xphoto.INPAINT_FSR_FAST)
        return out
    take = ClassicBackend().run("inpaint", frames, Spec(op="inpaint", rate=Fraction(25), mask=masks),
                                lambda *a: None, threading.Event())
    telea = np.stack([cv2.inpaint(f, m.astype(np.uint8), 5, cv2.INPAINT_TELEA) for f, m in zip(frames, masks)])
    texture = np.stack([fsr(f, m) for f, m in zip(frames, masks)])
    ours_db, telea_db, fsr_db = (psnr(x[masks], plate[masks]) for x in (take, telea, texture))
    print(f"\n{clip_id} {paste}: inside the mask ours {ours_db:.2f} dB, Telea {telea_db:.2f}, FSR {fsr_db:.2f}")
    assert np.array_equal(take[~masks], frames[~masks])
    assert ours_db > telea_db and ours_db > fsr_db


@pytest.mark.parametrize("fps,labelled", [("26.78", False), ("29.966", False), ("15", True), ("12", True)])
def test_phone_and_surveillance_rates_work_and_get_timecode_only_where_it_exists(server, tmp_path, fps, labelled):
    """A clip at 26.78 or 29.966 fps (phones, surveillance) is refined like any other, frame for
    frame; its take carries no timecode (no whole number of frames a second to label) and the
    manifest says where its first frame is instead. 15 and 12 fps takes are labelled."""
    from server.media import write_movie as write
    from server.samples import pan_clip

    client, _ = server
    rate = Fraction(fps)
    media = write(pan_clip(30, 48, 64, 1.0, seed=3), tmp_path / "phone.mkv", codec="ffv1", rate=rate).path
    job, manifest = run(client, timeline_of(Path(media), 4, 12), "refine", codec=pb.FFV1)
    take = probe(job.take.media.url)
    assert take.frame_count == 12 and take.rate == rate
    if labelled:
        assert job.take.media.start_timecode and manifest["source"]["take_timecode_note"] is None
    else:
        assert job.take.media.start_timecode == "" and take.start_timecode is None
        assert f"{float(rate):.6g} fps has no SMPTE timecode" in manifest["source"]["take_timecode_note"]
        assert "the media's frame 4" in manifest["source"]["take_timecode_note"]
