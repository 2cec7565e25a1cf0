"""Takes keep the source's depth, format and colour, and every sample the operation did not
change, through the real server: 10-bit ProRes sources made with FFmpeg's own encoders, FFV1,
16-bit PNG and float EXR deliveries, alpha, BT.601 and full-range tags, odd sizes.

"Untouched" is checked on the decoded samples in the source's own pixel format (the planes a
decoder hands out, at 16-bit containers for deep formats): outside the inpaint mask, grown to
whole chroma samples, they are identical. Decoded to RGB, pixels next to the mask can still
differ by chroma interpolation, which reaches across the mask edge; the tests say how far.
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from bridge.api import pb
from server.media import probe, read_frames
from server.media.encode import Delivery, delivery_for, write_movie
from server.media.pixels import ColorTags, align_mask, chroma_grid, plane_masks
from server.samples import pan_clip

from conftest import encode_pictures, make_timeline, natives, submit_request, write_mask

N, H, W = 8, 72, 128


def deep_clip(n=N, h=H, w=W, seed=3) -> np.ndarray:
    """(n, h, w, 3) uint16 footage with detail below 8 bits: a blurred pan plus fine noise."""
    base = pan_clip(n, h, w, 2.0).astype(np.float32) * 257
    rng = np.random.default_rng(seed)
    frames = np.stack([cv2.GaussianBlur(f, (0, 0), 1.2) for f in base]) + rng.normal(0, 90, base.shape)
    return np.clip(np.rint(frames), 0, 65535).astype(np.uint16)


def box_mask(n=N, h=H, w=W, x0=41, y0=17, x1=87, y1=49) -> np.ndarray:
    mask = np.zeros((n, h, w), bool)
    mask[:, y0:y1, x0:x1] = True
    mask[2] = False          # a frame with an empty mask: untouched whole
    return mask


def samples_outside(source_natives, take_natives, mask) -> tuple[int, int]:
    """(identical, compared) samples outside the mask on every plane's own grid."""
    same = total = 0
    for i, (a, b) in enumerate(zip(source_natives, take_natives)):
        assert a.pix_fmt == b.pix_fmt
        for pa, pb_, m in zip(a.planes, b.planes, plane_masks(mask[i], a)):
            outside = ~m
            same += int((pa[outside] == pb_[outside]).sum())
            total += int(outside.sum()) * pa.shape[2]
    return same, total


def run(client, timeline, op, **params):
    job = client.wait(client.submit(submit_request(timeline, "A", op, **params)).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    return job, json.loads(Path(job.take.manifest_url).read_text())


@pytest.fixture
def prores10(tmp_path):
    """A 10-bit ProRes 422 HQ plate (FFmpeg's prores_ks), BT.709 tagged, timecode 01:00:00:00."""
    media = write_movie(deep_clip(), tmp_path / "plate.mov", codec="prores", rate=Fraction(24),
                        start_timecode="01:00:00:00").path
    info = probe(media)
    assert (info.pix_fmt, info.bit_depth, info.color.matrix) == ("yuv422p10le", 10, 1)
    return media


def timeline_of(media, n=N):
    return make_timeline(media, rate=24, media_start=86400, media_frames=n, clip_in=0, clip_frames=n)


def test_a_lossless_inpaint_of_10bit_prores_keeps_every_sample_outside_the_mask(server, prores10, tmp_path):
    client, _ = server
    mask = box_mask()
    job, manifest = run(client, timeline_of(prores10), "inpaint", mask=write_mask(tmp_path / "m.mkv", mask),
                        codec=pb.FFV1)
    take = probe(job.take.media.url)
    assert take.pix_fmt == "yuv422p10le" and take.bit_depth == 10 and take.color.matrix == 1
    pixels = manifest["pixels"]
    assert manifest["resolution"]["processing_bit_depth"] == 16 and pixels["source_bit_depth"] == 10
    assert pixels["kept_source_samples"] and pixels["mask_grid"] == [2, 1]
    assert pixels["frames_untouched"] == [[2, 2]], "the empty-mask frame is the source's own"
    aligned = align_mask(mask, (2, 1))
    source, made = natives(prores10, 0, N), natives(job.take.media.url, 0, N)
    same, total = samples_outside(source, made, aligned)
    assert same == total, f"{total - same} of {total} samples outside the mask changed"
    inside = np.abs(source[0].planes[0][aligned[0]].astype(int) - made[0].planes[0][aligned[0]].astype(int))
    assert inside.mean() > 0, "the inside was regenerated"
    # decoded to RGB at 16 bits: identical away from the edge; chroma interpolation reaches 3 px
    src_rgb, take_rgb = read_frames(prores10, 0, N, depth=16), read_frames(job.take.media.url, 0, N, depth=16)
    far = ~np.stack([cv2.dilate(m.astype(np.uint8), np.ones((1, 7), np.uint8)) > 0 for m in aligned])
    assert np.array_equal(src_rgb[far], take_rgb[far])


def test_an_extension_keeps_the_source_frames_sample_for_sample(server, prores10):
    client, _ = server
    job, manifest = run(client, timeline_of(prores10), "extend", frames=4, codec=pb.FFV1)
    assert job.take.media.frame_count == N + 4
    assert manifest["pixels"]["frames_untouched"] == [[0, N - 1]]
    assert manifest["pixels"]["frames_encoded"] == [[N, N + 3]]
    for a, b in zip(natives(prores10, 0, N), natives(job.take.media.url, 0, N)):
        assert a.equals(b)


def test_refine_at_strength_zero_gives_the_source_back(server, prores10):
    client, _ = server
    job, manifest = run(client, timeline_of(prores10), "refine", strength=0.0, codec=pb.FFV1)
    assert manifest["pixels"]["frames_untouched"] == [[0, N - 1]]
    assert all(a.equals(b) for a, b in zip(natives(prores10, 0, N), natives(job.take.media.url, 0, N)))


def test_a_refined_10bit_take_keeps_detail_below_8_bits(server, prores10):
    client, _ = server
    job, _ = run(client, timeline_of(prores10), "refine", strength=0.3, codec=pb.FFV1)
    take = read_frames(job.take.media.url, 0, N, depth=16)
    assert take.dtype == np.uint16
    # 8-bit processing would leave every value a multiple of 257 (x * 257 after widening)
    assert np.mean(take % 257 != 0) > 0.5


def reencoded_floor(source: Path, dest: Path, profile: str, encoder: str = "prores_ks") -> Path:
    """The source re-encoded with FFmpeg's `encoder` at the same profile: the least a ProRes
    (or DNxHR) take can differ from it."""
    with av.open(str(source)) as inp:
        stream_in = inp.streams.video[0]
        return encode_pictures(dest, encoder, inp.decode(stream_in), rate=stream_in.average_rate,
                               pix_fmt=stream_in.pix_fmt, size=(stream_in.width, stream_in.height),
                               options={"profile": profile})


# Where a DCT codec's take differs from a plain re-encode of its source: the 8x8 blocks of the
# macroblocks (16x16) that straddle the mask's edge hold generated and source pixels together,
# so their quantisation error on the source side is not the re-encode's. Further out the take
# is coded from the same samples as the re-encode; only the frame's rate control differs.
EDGE_BAND = 16


def luma_errors(source, other, aligned, frames) -> dict:
    """Mean absolute luma error (10-bit codes) of `other` against the source's own samples,
    outside the mask: within EDGE_BAND pixels of its edge, beyond that, and all together, over
    the take frames `frames` (like for like: frames both sides encoded)."""
    parts = {"edge": [], "beyond": [], "outside": []}
    for i, b in enumerate(natives(other, 0, N)):
        if i not in frames:
            continue
        a, m = source[i], aligned[i]
        diff = np.abs(a.planes[0][..., 0].astype(int) - b.planes[0][..., 0].astype(int))
        size = 2 * EDGE_BAND + 1
        edge = cv2.dilate(m.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool) & ~m
        parts["edge"].append(diff[edge])
        parts["beyond"].append(diff[~m & ~edge])
        parts["outside"].append(diff[~m])
    return {k: float(np.concatenate(v).mean()) for k, v in parts.items()}


def check_against_floor(name, source_path, take_path, floor_path, mask, encoded) -> dict:
    source, aligned = natives(source_path, 0, N), align_mask(mask, (2, 1))
    take, floor = luma_errors(source, take_path, aligned, encoded), luma_errors(source, floor_path, aligned, encoded)
    ratios = {k: take[k] / floor[k] for k in take}
    print(f"\n{name} luma error outside the mask, encoded frames (10-bit codes): "
          + ", ".join(f"{k} take {take[k]:.4f} / re-encode {floor[k]:.4f} = {ratios[k]:.3f}" for k in take))
    assert min(floor.values()) > 0, "a re-encode is lossy: the comparison means something"
    return ratios


def test_a_prores_take_is_within_5_percent_of_a_plain_reencode_outside_the_mask(server, prores10, tmp_path):
    client, _ = server
    mask = box_mask()
    job, manifest = run(client, timeline_of(prores10), "inpaint", mask=write_mask(tmp_path / "m.mkv", mask),
                        codec=pb.PRORES_422_HQ)
    take = probe(job.take.media.url)
    assert take.pix_fmt == "yuv422p10le" and take.profile == "HQ"
    floor = reencoded_floor(prores10, tmp_path / "floor.mov", "hq")
    ratios = check_against_floor("ProRes 422 HQ", prores10, job.take.media.url, floor, mask,
                                 [i for i in range(N) if i != 2])
    assert ratios["outside"] <= 1.05, "the issue's bound: within 5 % of a plain re-encode, like for like"
    assert ratios["beyond"] <= 1.05


def test_prores_4444_with_alpha_stays_4444_and_keeps_the_alpha(server, tmp_path):
    client, _ = server
    rgb = deep_clip()
    alpha = np.tile(np.linspace(64, 1000, W, dtype=np.uint16), (H, 1))   # a soft 10-bit ramp
    path = tmp_path / "plate4444.mov"

    def with_alpha(frame):
        picture = av.VideoFrame.from_ndarray(frame, format="rgb48le").reformat(
            format="yuva444p10le", dst_colorspace=1, dst_color_range=1)
        picture.planes[3].update(np.ascontiguousarray(alpha).tobytes())
        return picture
    encode_pictures(path, "prores_ks", (with_alpha(f) for f in rgb), rate=24, pix_fmt="yuva444p10le", size=(W, H),
                    options={"profile": "4444", "alpha_bits": "16"})
    info = probe(path)
    assert info.has_alpha and info.profile == "4444"
    job, manifest = run(client, timeline_of(path), "refine", strength=0.5, codec=pb.PRORES_422_HQ)
    take = probe(job.take.media.url)
    # the ProRes 4444 decoder hands out 12-bit planes, for the source and the take alike
    assert take.pix_fmt == info.pix_fmt == "yuva444p12le" and take.profile == "4444" and take.has_alpha
    assert manifest["pixels"]["delivery"]["pix_fmt"] == "yuva444p10le"
    for a, b in zip(natives(path, 0, N), natives(job.take.media.url, 0, N)):
        assert np.array_equal(a.planes[3], b.planes[3]), "alpha is the source's"


def tagged_source(path: Path, matrix: int, color_range: int, pix_fmt="yuv420p", w=W, h=H) -> Path:
    """An FFV1 source with explicit colour tags, converted from RGB with those very tags."""
    pictures = (av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
        format=pix_fmt, dst_colorspace=5 if matrix in (5, 6) else 1, dst_color_range=color_range)
        for frame in pan_clip(N, h, w, 2.0))
    return encode_pictures(path, "ffv1", pictures, rate=24, pix_fmt=pix_fmt, size=(w, h),
                           tags=(matrix, color_range, 6, 6))


@pytest.mark.parametrize("matrix, color_range", [(6, 1), (6, 2), (1, 2)])
def test_bt601_and_full_range_sources_keep_their_look(server, tmp_path, matrix, color_range):
    client, _ = server
    source = tagged_source(tmp_path / "tagged.mkv", matrix, color_range)
    assert probe(source).color == ColorTags(matrix, 6, 6, color_range)
    mask = box_mask()
    mask_path = write_mask(tmp_path / "m.mkv", mask)
    timeline = timeline_of(source)
    # lossless in its own format: the samples and the tags are the source's
    job, manifest = run(client, timeline, "inpaint", mask=mask_path, codec=pb.FFV1)
    take = probe(job.take.media.url)
    assert (take.pix_fmt, take.color.matrix, take.color.range) == ("yuv420p", matrix, color_range)
    same, total = samples_outside(natives(source, 0, N), natives(job.take.media.url, 0, N),
                                  align_mask(mask, chroma_grid("yuv420p")))
    assert same == total
    # PNG: RGB as the source's own tags decode it, exactly, outside the mask
    job, _ = run(client, timeline, "inpaint", mask=mask_path, codec=pb.PNG_SEQUENCE)
    src_rgb, take_rgb = read_frames(source, 0, N), read_frames(job.take.media.url, 0, N)
    assert np.array_equal(src_rgb[~mask], take_rgb[~mask])
    # read with the wrong matrix or range, the same samples look different: the tags matter
    with av.open(str(source)) as inp:
        wrong = next(inp.decode(video=0)).reformat(format="rgb24", src_colorspace=1 if matrix == 6 else 5,
                                                   src_color_range=1 if color_range == 2 else 2).to_ndarray()
    assert np.abs(wrong.astype(int) - src_rgb[0].astype(int)).max() > 3
    # ProRes (4:2:2 10-bit) states the source's tags and keeps its look within codec error
    job, _ = run(client, timeline, "refine", strength=0.0, codec=pb.PRORES_422_HQ)
    take = probe(job.take.media.url)
    assert (take.color.matrix, take.color.range) == (matrix, 1), "ProRes is limited range: converted, tagged so"
    error = np.abs(read_frames(job.take.media.url, 0, N).astype(int) - src_rgb.astype(int)).mean()
    misread = np.abs(wrong.astype(int) - src_rgb[0].astype(int)).mean()
    print(f"\nmatrix {matrix} range {color_range}: ProRes take vs source {error:.2f} levels (8-bit RGB mean); "
          f"the source read with the wrong tags {misread:.2f}")
    assert error < 2.5 and error < misread / 2


def test_16bit_png_and_float_exr_takes_of_a_10bit_source_are_exact_outside_the_mask(server, prores10, tmp_path):
    client, _ = server
    mask = box_mask()
    mask_path = write_mask(tmp_path / "m.mkv", mask)
    source = read_frames(prores10, 0, N, depth=16)
    for codec, pix_fmt in ((pb.PNG_SEQUENCE, "rgb48be"), (pb.EXR_SEQUENCE, "gbrpf32le")):
        job, manifest = run(client, timeline_of(prores10), "inpaint", mask=mask_path, codec=codec)
        assert manifest["pixels"]["delivery"]["pix_fmt"] == pix_fmt
        take = read_frames(job.take.media.url, 0, N, depth=16)
        assert take.dtype == np.uint16
        assert np.array_equal(source[~mask], take[~mask]), pb.Codec.Name(codec)
        assert not np.array_equal(source[mask], take[mask])


def test_odd_sizes_keep_their_geometry_and_samples(server, tmp_path):
    client, _ = server
    source = tagged_source(tmp_path / "odd.mkv", 1, 1, pix_fmt="yuv420p", w=63, h=35)
    mask = box_mask(h=35, w=63, x0=21, y0=9, x1=40, y1=24)
    job, _ = run(client, timeline_of(source), "inpaint", mask=write_mask(tmp_path / "m.mkv", mask), codec=pb.FFV1)
    take = probe(job.take.media.url)
    assert (take.width, take.height, take.pix_fmt) == (63, 35, "yuv420p")
    same, total = samples_outside(natives(source, 0, N), natives(job.take.media.url, 0, N),
                                  align_mask(mask, (2, 2)))
    assert same == total


def test_an_interlaced_source_is_refused_with_what_to_do(server, tmp_path):
    client, _ = server
    path = tmp_path / "interlaced.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.field_order = 2   # AV_FIELD_TT
        for i in range(N):
            frame = av.VideoFrame(W, H, "yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    if not probe(path).interlaced:
        pytest.skip("this FFmpeg does not keep the field order in Matroska")
    from bridge.client import ClientError
    with pytest.raises(ClientError) as err:
        client.submit(submit_request(make_timeline(path, rate=25, media_start=0, media_frames=N, clip_in=0,
                                                   clip_frames=N), "A", "refine"))
    assert "interlaced" in str(err.value) and "Deinterlace" in str(err.value)


def test_delivery_matches_the_source_format():
    info = probe  # noqa: F841 - documented by the assertions below
    from server.media.probe import MediaInfo
    base = dict(path=Path("x.mov"), width=64, height=48, rate=Fraction(24), frame_count=1, start_timecode=None,
                drop_frame=False, is_sequence=False)
    def source(pix_fmt, codec="prores", profile=None, alpha=False, depth=10):
        return MediaInfo(codec=codec, pix_fmt=pix_fmt, bit_depth=depth, profile=profile, has_alpha=alpha, **base)
    assert delivery_for("prores", source("yuv422p10le", profile="HQ")).options["profile"] == "hq"
    assert delivery_for("prores", source("yuv422p10le", profile="LT")).options["profile"] == "lt"
    xq = delivery_for("prores", source("yuva444p10le", profile="4444 XQ", alpha=True))
    assert (xq.pix_fmt, xq.options["profile"]) == ("yuva444p10le", "4444xq")
    assert delivery_for("prores", source("yuv420p", codec="h264", depth=8)).pix_fmt == "yuv422p10le"
    assert delivery_for("prores", source("gbrp12le", codec="ffv1", depth=12)).pix_fmt == "yuv444p10le"
    assert delivery_for("ffv1", source("yuv422p12le", codec="ffv1", depth=12)).pix_fmt == "yuv422p12le"
    assert delivery_for("ffv1", source("yuvj420p", codec="mjpeg", depth=8)).pix_fmt == "bgr0"
    assert delivery_for("png", source("yuv422p10le"), depth=16).pix_fmt == "rgb48be"
    assert delivery_for("exr", source("yuv420p", depth=8), depth=8).options["format"] == "half"
    assert isinstance(delivery_for("h264", source("yuv422p10le")), Delivery)


def test_non_square_pixels_keep_their_aspect(server, tmp_path):
    """An anamorphic ProRes plate (4:3 pixels, stated in the MOV) gives a take with the same
    pixel aspect. (Matroska as written here keeps no pixel aspect: an FFV1 .mkv take of such a
    plate is square-pixelled; its manifest still states the source's aspect.)"""
    client, _ = server
    path = tmp_path / "anamorphic.mov"
    encode_pictures(path, "prores_ks", (av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv422p10le")
                                        for f in pan_clip(N, H, W, 2.0)),
                    rate=24, pix_fmt="yuv422p10le", size=(W, H), options={"aspect": "4/3", "profile": "hq"})
    assert probe(path).sample_aspect == Fraction(4, 3)
    job, manifest = run(client, timeline_of(path), "refine", strength=0.4, codec=pb.PRORES_422_HQ)
    take = probe(job.take.media.url)
    assert (take.width, take.height, take.sample_aspect) == (W, H, Fraction(4, 3))
    assert manifest["pixels"]["delivery"]["sample_aspect"] == "4/3"


def packets_of(path, count=None) -> list[bytes]:
    with av.open(str(path)) as container:
        found = [bytes(p) for p in container.demux(video=0) if p.size]
    return found[:count] if count else found


def test_untouched_prores_frames_are_the_sources_own_packets(server, prores10, tmp_path):
    client, _ = server
    job, manifest = run(client, timeline_of(prores10), "extend", frames=3, codec=pb.PRORES_422_HQ)
    assert manifest["pixels"]["frames_copied"] == [[0, N - 1]]
    assert packets_of(job.take.media.url, N) == packets_of(prores10), "bit-exact, even in a lossy codec"
    for a, b in zip(natives(prores10, 0, N), natives(job.take.media.url, 0, N)):
        assert a.equals(b)
    take = probe(job.take.media.url)
    assert take.frame_count == N + 3 and take.profile == "HQ" and take.start_timecode == "01:00:00:00"
    # an inpaint copies the frame whose mask is empty and encodes the others
    mask = box_mask()
    job, manifest = run(client, timeline_of(prores10), "inpaint", mask=write_mask(tmp_path / "m.mkv", mask),
                        codec=pb.PRORES_422_HQ)
    assert manifest["pixels"]["frames_copied"] == [[2, 2]]
    source, take = packets_of(prores10), packets_of(job.take.media.url)
    assert take[2] == source[2] and take[0] != source[0]


DNX_W, DNX_H = 256, 144


@pytest.fixture
def dnxhr10(tmp_path):
    """A 10-bit DNxHR HQX plate made with FFmpeg's dnxhd encoder (resolution independent down to
    DNxHR's least, 256x120), timecode 01:00:00:00."""
    path = tmp_path / "plate_dnxhr.mov"
    pictures = (av.VideoFrame.from_ndarray(frame, format="rgb48le").reformat(
        format="yuv422p10le", dst_colorspace="ITU709", dst_color_range="MPEG") for frame in deep_clip(h=DNX_H, w=DNX_W))
    encode_pictures(path, "dnxhd", pictures, rate=24, pix_fmt="yuv422p10le", size=(DNX_W, DNX_H),
                    options={"profile": "dnxhr_hqx"}, timecode="01:00:00:00")
    info = probe(path)
    assert (info.codec, info.profile, info.pix_fmt, info.frame_count) == ("dnxhd", "DNXHR HQX", "yuv422p10le", N)
    return path


def test_dnxhr_takes_match_the_profile_copy_untouched_packets_and_stay_near_the_floor(server, dnxhr10, tmp_path):
    client, _ = server
    job, manifest = run(client, timeline_of(dnxhr10), "extend", frames=3, codec=pb.DNXHR)
    take = probe(job.take.media.url)
    assert (take.codec, take.profile, take.pix_fmt, take.frame_count) == ("dnxhd", "DNXHR HQX", "yuv422p10le", N + 3)
    assert take.start_timecode == "01:00:00:00"
    assert manifest["pixels"]["frames_copied"] == [[0, N - 1]]
    assert packets_of(job.take.media.url, N) == packets_of(dnxhr10), "the kept frames are the source's packets"
    mask = box_mask(h=DNX_H, w=DNX_W, x0=97, y0=40, x1=181, y1=100)
    job, manifest = run(client, timeline_of(dnxhr10), "inpaint", mask=write_mask(tmp_path / "m.mkv", mask),
                        codec=pb.DNXHR)
    assert manifest["pixels"]["frames_copied"] == [[2, 2]]
    assert manifest["pixels"]["frames_encoded"] == [[0, 1], [3, N - 1]]
    source_packets, take_packets = packets_of(dnxhr10), packets_of(job.take.media.url)
    assert take_packets[2] == source_packets[2] and take_packets[0] != source_packets[0]
    floor = reencoded_floor(dnxhr10, tmp_path / "floor.mov", "dnxhr_hqx", encoder="dnxhd")
    ratios = check_against_floor("DNxHR HQX", dnxhr10, job.take.media.url, floor, mask,
                                 [i for i in range(N) if i != 2])
    # HQX codes this small plate almost losslessly (hundredths of a code): away from the edge
    # blocks the take is within the frame rate control's wobble of the re-encode
    assert ratios["beyond"] <= 1.15


@pytest.mark.parametrize("deep", [False, True])
def test_untouched_frames_of_a_png_sequence_are_the_source_files_themselves(server, tmp_path, deep):
    import hashlib
    client, _ = server
    frames = deep_clip() if deep else (deep_clip() >> 8).astype(np.uint8)
    source = tmp_path / "plate"   # the folder: what an editor links
    write_movie(frames, source, codec="png", rate=Fraction(24), start_timecode="01:00:00:00")
    files = sorted(source.glob("*.png"))

    def digest(path):
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    job, manifest = run(client, timeline_of(source), "extend", frames=3, codec=pb.PNG_SEQUENCE)
    made = sorted(Path(job.take.media.url).parent.glob("*.png"))
    assert len(made) == N + 3 and manifest["pixels"]["frames_copied"] == [[0, N - 1]]
    assert [digest(p) for p in made[:N]] == [digest(p) for p in files], "byte for byte"
    mask = box_mask()
    job, manifest = run(client, timeline_of(source), "inpaint", mask=write_mask(tmp_path / "m.mkv", mask),
                        codec=pb.PNG_SEQUENCE)
    made = sorted(Path(job.take.media.url).parent.glob("*.png"))
    assert manifest["pixels"]["frames_copied"] == [[2, 2]]
    assert digest(made[2]) == digest(files[2]) and digest(made[0]) != digest(files[0])
    depth = 16 if deep else 8
    assert np.array_equal(read_frames(job.take.media.url, 0, N, depth=depth)[~mask],
                          read_frames(source, 0, N, depth=depth)[~mask])


def test_a_dnxhr_take_of_a_plate_under_dnxhr_s_least_size_is_refused(server, prores10):
    client, _ = server
    with pytest.raises(Exception) as err:
        client.submit(submit_request(timeline_of(prores10), "A", "refine", codec=pb.DNXHR))
    message = str(err.value)
    assert "256x120" in message and f"{W}x{H}" in message and "PRORES_422_HQ" in message


def test_variable_frame_timing_is_conformed_stated_and_flagged(server, tmp_path):
    """Phone-style footage: a timestamp gap (a frame never recorded) and a doubled picture.
    The take still has exactly the frames asked for; the manifest states what was held and
    skipped, and the take needs review."""
    client, _ = server
    path = tmp_path / "phone.mkv"
    frames = pan_clip(12, H, W, 2.0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 48)
        for i, pts in enumerate([0, 2, 4, 8, 10, 11, 12, 14, 16, 18, 20, 22]):   # a gap at 6, 11 doubles 10
            picture = av.VideoFrame.from_ndarray(frames[i], format="rgb24").reformat(format="yuv420p")
            picture.pts, picture.time_base = pts, Fraction(1, 48)
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    info = probe(path)
    timeline = make_timeline(path, rate=24, media_start=0, media_frames=info.frame_count, clip_in=0,
                             clip_frames=8)
    job, manifest = run(client, timeline, "refine", strength=0.5, codec=pb.FFV1)
    assert job.take.media.frame_count == 8
    timing = manifest["pixels"]["variable_frame_timing"]
    assert timing["held"] >= 1 and timing["skipped"] >= 1, timing
    assert job.take.status == pb.NEEDS_REVIEW and any("variable frame timing" in f for f in job.take.flags)


def test_native_planes_keep_their_values_whatever_numpy_did_to_their_byte_order():
    """Planes of a big-endian format (16-bit PNG's rgb48be) come back from numpy operations
    (np.where in a composite) in the machine's byte order; written into a picture they keep
    their values."""
    from server.media.pixels import Native, rgb_of
    values = (np.arange(18, dtype="<u2") * 1000).reshape(2, 3, 3)
    for planes in ([values], [values.astype(">u2")]):
        picture = Native("rgb48be", 3, 2, planes).frame()
        assert np.array_equal(rgb_of(picture, 16), values)
        assert np.array_equal(Native.of(picture).planes[0], values)
