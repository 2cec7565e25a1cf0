"""Pixels at the source's own depth and in its own encoding.

Two views of a picture travel through a job:
- working RGB: (H, W, 3) uint8 for 8-bit sources, uint16 (full 0..65535 scale) for deeper ones,
  converted with the source's own colour tags (matrix and range), never a default when the file
  states them. Backends, compositing and gates work on it.
- Native: the decoded picture's own planes in its own pixel format (yuv422p10le, bgr0, ...),
  untouched. A take frame that the operation did not change is written from its Native, so it
  is bit-identical to the source in any decoder; an inpaint frame is composited plane by plane
  (generated samples only where the mask reaches), with the mask aligned to the chroma grid.
"""
from __future__ import annotations

import os

import dataclasses

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

# swscale's fast path copies each chroma sample to its neighbours and truncates; interpolated
# chroma with exact rounding brings a ProRes 4:2:2 round trip from ~1.8 to ~0.01 mean error.
SCALE_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
# the same flags on the ffmpeg command line (bench/bench_media.py compares like with like)
SCALE_FLAGS_CLI = "bicubic+accurate_rnd+full_chroma_int"
THREADS_ENV = "TAKEBRIDGE_MEDIA_THREADS"


def media_threads() -> int:
    """Threads one decoder or scaler may use: 0 (FFmpeg's own choice, as many as there are
    cores), or $TAKEBRIDGE_MEDIA_THREADS (a Ray worker sets it to the CPUs Ray gave it, so two
    workers on one machine do not each start a thread per core). Their pictures are the same
    either way; encoders are left alone (x264's pictures depend on its thread count)."""
    try:
        return max(0, int(os.environ.get(THREADS_ENV, "0")))
    except ValueError:
        return 0

# libavutil AVCOL_SPC_* -> swscale's matrix; 2 (unspecified) and unknown values are decided by size
_MATRIX = {1: Colorspace.ITU709, 5: Colorspace.ITU601, 6: Colorspace.ITU601, 9: Colorspace.BT2020,
           10: Colorspace.BT2020, 7: Colorspace.SMPTE240M, 4: Colorspace.FCC}
MATRIX_NAMES = {0: "rgb", 1: "bt709", 2: "unspecified", 4: "fcc", 5: "bt470bg (bt601)", 6: "smpte170m (bt601)",
                7: "smpte240m", 9: "bt2020nc", 10: "bt2020c"}
RANGE_NAMES = {0: "unspecified", 1: "limited (tv)", 2: "full (pc)"}
UNSPECIFIED = 2
BT709 = 1
MPEG, JPEG = 1, 2


@dataclasses.dataclass(frozen=True)
class ColorTags:
    """A stream's colour description, as libavutil numbers (AVCOL_*); 2 / 0 = not stated."""

    matrix: int = UNSPECIFIED
    primaries: int = UNSPECIFIED
    transfer: int = UNSPECIFIED
    range: int = 0

    @classmethod
    def of(cls, source) -> "ColorTags":
        """The tags of a codec context or a decoded frame."""
        return cls(int(source.colorspace or UNSPECIFIED), int(source.color_primaries or UNSPECIFIED),
                   int(source.color_trc or UNSPECIFIED), int(source.color_range or 0))

    def conversion_matrix(self, height: int):
        """The YUV<->RGB matrix to use: the stated one, else what players assume (BT.709 for
        HD and up, BT.601 below)."""
        if self.matrix in _MATRIX:
            return _MATRIX[self.matrix]
        return Colorspace.ITU709 if height >= 720 else Colorspace.ITU601

    def conversion_range(self) -> int:
        return ColorRange.JPEG if self.range == JPEG else ColorRange.MPEG

    def stated(self, height: int) -> "ColorTags":
        """The tags a take is written with: the source's, with what was assumed filled in."""
        matrix = self.matrix if self.matrix in _MATRIX else (BT709 if height >= 720 else 6)
        return ColorTags(matrix, self.primaries if self.primaries != UNSPECIFIED else (1 if matrix == 1 else 6),
                         self.transfer if self.transfer != UNSPECIFIED else (1 if matrix == 1 else 6),
                         self.range or MPEG)

    def describe(self) -> dict:
        return {"matrix": MATRIX_NAMES.get(self.matrix, str(self.matrix)), "primaries": self.primaries,
                "transfer": self.transfer, "range": RANGE_NAMES.get(self.range, str(self.range))}


FLOAT_RGB = ("gbrpf32le", "gbrapf32le")


def float_picture(rgb: np.ndarray, alpha: bool = False) -> av.VideoFrame:
    """Working RGB as a planar float picture (G, B, R[, A] planes) of code value / max: what an
    EXR take stores; rgb_of reverses it exactly."""
    top = 255.0 if rgb.dtype == np.uint8 else 65535.0
    values = rgb.astype(np.float32) / np.float32(top)
    planes = [values[..., 1:2], values[..., 2:3], values[..., 0:1]]
    if alpha:
        planes.append(np.ones_like(planes[0]))
    return Native("gbrapf32le" if alpha else "gbrpf32le", rgb.shape[1], rgb.shape[0], planes).frame()


def eight_bit(frame: np.ndarray) -> np.ndarray:
    """Working RGB as 8 bits (itself when it is 8-bit): what thresholds in 8-bit levels read."""
    if frame.dtype == np.uint8:
        return frame
    return ((frame.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def convertible(pix_fmt: str) -> bool:
    """Whether pictures in `pix_fmt` can be turned into working RGB (tried on a blank one)."""
    try:
        probe = av.VideoFrame(16, 16, pix_fmt)
        rgb_of(probe, working_depth(max(c.bits for c in probe.format.components)))
        return True
    except Exception:   # FFmpeg's ValueError / FFmpegError, or a format PyAV cannot allocate
        return False


def _sample_type(fmt: av.VideoFormat) -> np.dtype:
    return np.dtype(sample_dtype(fmt.name)).newbyteorder(">" if fmt.is_big_endian else "<")


def sample_dtype(pix_fmt: str):
    bits = max(c.bits for c in av.VideoFormat(pix_fmt).components)
    return np.uint8 if bits <= 8 else (np.float32 if bits == 32 else np.uint16)


def working_depth(bit_depth: int) -> int:
    """8 for 8-bit sources, 16 for anything deeper."""
    return 8 if bit_depth <= 8 else 16


def _rgb_format(depth: int, alpha: bool = False) -> str:
    return {(8, False): "rgb24", (16, False): "rgb48le", (8, True): "rgba", (16, True): "rgba64le"}[(depth, alpha)]


def rgb_of(frame: av.VideoFrame, depth: int, tags: ColorTags | None = None) -> np.ndarray:
    """A decoded picture as (H, W, 3) RGB at `depth` (8: uint8, 16: uint16), converted with the
    stream's colour tags (the frame's own when none are given)."""
    tags = tags or ColorTags.of(frame)
    fmt = frame.format
    target = _rgb_format(depth)
    if fmt.name == target:
        return frame.to_ndarray()
    if fmt.name in FLOAT_RGB:   # EXR: code values / max, scaled here (swscale's float path rounds off)
        planes = Native.of(frame).planes
        rgb = np.clip(np.dstack([planes[2], planes[0], planes[1]]), 0.0, 1.0)
        top = 255.0 if depth == 8 else 65535.0
        return np.rint(rgb * top).astype(np.uint8 if depth == 8 else np.uint16)
    if fmt.is_rgb or len(fmt.components) <= 2:
        if depth == 8 and max(c.bits for c in fmt.components) > 8:
            # swscale rounds 16-bit RGB up by one for half of all values (0x8080 -> 0x81);
            # scaling by 255/65535 with rounding gives each 8-bit value back exactly.
            deep = frame.to_ndarray(format="rgb48le").astype(np.uint32)
            return ((deep * 255 + 32767) // 65535).astype(np.uint8)
        return frame.reformat(format=target).to_ndarray()
    return frame.reformat(format=target, src_colorspace=tags.conversion_matrix(frame.height),
                          src_color_range=tags.conversion_range(), interpolation=SCALE_FLAGS,
                          threads=media_threads()).to_ndarray()


@dataclasses.dataclass
class Native:
    """A picture's planes in its own pixel format: arrays of (h, w, components) per plane."""

    pix_fmt: str
    width: int
    height: int
    planes: list

    @classmethod
    def of(cls, frame: av.VideoFrame, copy: bool = False) -> "Native":
        """The planes of `frame`. Without `copy` they are read-only views of the frame's own
        buffers (which they keep alive): no copy on the decode path, and a decoder's reference
        picture can never be written through them."""
        fmt = frame.format
        dtype = _sample_type(fmt)
        planes = []
        # a packed format's pixel may carry padding (bgr0: 4 bytes for 3 components)
        per_pixel = 1 if fmt.is_planar else fmt.padded_bits_per_pixel // (8 * dtype.itemsize)
        for plane in frame.planes:
            samples = plane.line_size // dtype.itemsize
            array = np.frombuffer(memoryview(plane), dtype).reshape(plane.height, samples)
            view = array[:, :plane.width * per_pixel].reshape(plane.height, plane.width, per_pixel)
            if copy:
                view = view.copy()
            else:
                view.flags.writeable = False
            planes.append(view)
        return cls(fmt.name, frame.width, frame.height, planes)

    def frame(self) -> av.VideoFrame:
        """A new picture holding these samples (written straight into its buffers)."""
        picture = av.VideoFrame(self.width, self.height, self.pix_fmt)
        # the format's own byte order: planes that went through numpy may be native-endian
        dtype = _sample_type(picture.format)
        for plane, array in zip(picture.planes, self.planes):
            rows = array.reshape(plane.height, -1)
            samples = plane.line_size // dtype.itemsize
            target = np.frombuffer(memoryview(plane), dtype).reshape(plane.height, samples)
            target[:, :rows.shape[1]] = rows
        return picture

    def equals(self, other: "Native") -> bool:
        return self.pix_fmt == other.pix_fmt and all(np.array_equal(a, b) for a, b in zip(self.planes, other.planes))


def native_of_rgb(rgb: np.ndarray, pix_fmt: str, tags: ColorTags, alpha_from: "Native | None" = None) -> Native:
    """Working RGB converted into `pix_fmt` with `tags` (the inverse of rgb_of); an alpha plane,
    when the format has one, is taken from `alpha_from` (the source picture) or made opaque."""
    native = Native.of(picture_of_rgb(rgb, pix_fmt, tags))
    fmt = av.VideoFormat(pix_fmt)
    alpha = [c for c in fmt.components if c.is_alpha]
    if alpha and fmt.is_planar:
        plane, bits = alpha[0].plane, alpha[0].bits
        dtype, shape = native.planes[plane].dtype, native.planes[plane].shape
        source_alpha = _alpha_plane(alpha_from) if alpha_from is not None else None
        if source_alpha is not None and source_alpha[0].shape == shape:
            values, source_bits = source_alpha
            # decoders widen by bit replication (10 -> 12 bits: v << 2 | v >> 8), so narrowing
            # by truncation gives the stored value back exactly
            if source_bits > bits:     # e.g. a 12-bit decode of 10-bit ProRes alpha, back to 10
                values = values.astype(np.uint32) >> (source_bits - bits)
            elif source_bits < bits:
                wide = values.astype(np.uint32)
                values = (wide << (bits - source_bits)) | (wide >> max(0, 2 * source_bits - bits))
            native.planes[plane] = values.astype(dtype)
        else:
            native.planes[plane] = np.full(shape, (1 << bits) - 1, dtype)
    return native


def picture_of_rgb(rgb: np.ndarray, pix_fmt: str, tags: ColorTags) -> av.VideoFrame:
    """Working RGB as a picture in `pix_fmt`, converted with `tags` (an alpha plane, if any, as
    swscale leaves it: native_of_rgb sets it)."""
    depth = 8 if rgb.dtype == np.uint8 else 16
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=_rgb_format(depth))
    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb or len(fmt.components) <= 2:
        return picture.reformat(format=pix_fmt)
    return picture.reformat(format=pix_fmt, dst_colorspace=tags.conversion_matrix(rgb.shape[0]),
                            dst_color_range=tags.conversion_range(), interpolation=SCALE_FLAGS,
                            threads=media_threads())


def is_yuv(pix_fmt: str) -> bool:
    """Integer Y'CbCr with its three (or four) components: what swscale converts between
    formats without going through RGB."""
    fmt = av.VideoFormat(pix_fmt)
    return not fmt.is_rgb and len(fmt.components) >= 3 and max(c.bits for c in fmt.components) <= 16


def transcoded(native: Native, pix_fmt: str, source: ColorTags, delivery: ColorTags) -> Native:
    """A Y'CbCr picture in another Y'CbCr format (depth, chroma siting, range), converted
    directly as FFmpeg's own transcode does: no trip through RGB, so untouched pixels of a
    4:2:0 8-bit source become the same 4:2:2 10-bit samples a plain re-encode would have."""
    picture = native.frame()
    matrix = source.conversion_matrix(native.height)
    converted = picture.reformat(format=pix_fmt, src_colorspace=matrix, dst_colorspace=matrix,
                                 src_color_range=source.conversion_range(),
                                 dst_color_range=delivery.conversion_range(), interpolation=SCALE_FLAGS,
                                 threads=media_threads())
    return Native.of(converted)


def has_alpha(pix_fmt: str) -> bool:
    return any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)


def _alpha_plane(native: Native) -> tuple[np.ndarray, int] | None:
    fmt = av.VideoFormat(native.pix_fmt)
    alpha = [c for c in fmt.components if c.is_alpha]
    if not alpha or not fmt.is_planar:
        return None
    return native.planes[alpha[0].plane], alpha[0].bits


def plane_masks(mask: np.ndarray, native: Native) -> list[np.ndarray]:
    """The mask on each plane's grid: a chroma sample is generated when any pixel it covers is."""
    out = []
    for plane in native.planes:
        sub_y, sub_x = mask.shape[0] // plane.shape[0] or 1, mask.shape[1] // plane.shape[1] or 1
        if (sub_y, sub_x) == (1, 1):
            out.append(mask[:plane.shape[0], :plane.shape[1]])
            continue
        padded = np.zeros((plane.shape[0] * sub_y, plane.shape[1] * sub_x), bool)
        padded[:mask.shape[0], :mask.shape[1]] = mask[:padded.shape[0], :padded.shape[1]]
        out.append(padded.reshape(plane.shape[0], sub_y, plane.shape[1], sub_x).any(axis=(1, 3)))
    return out


def chroma_grid(pix_fmt: str) -> tuple[int, int]:
    """(x, y) pixels one chroma sample covers: (2, 1) for 4:2:2, (2, 2) for 4:2:0, (1, 1) otherwise."""
    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb or len(fmt.components) <= 2 or not fmt.is_planar:
        return (1, 1)
    probe = av.VideoFrame(64, 64, pix_fmt)
    return (64 // probe.planes[1].width, 64 // probe.planes[1].height)


def align_mask(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """`mask` ((N,) H, W) grown to whole chroma samples, so every pixel outside it keeps its own
    samples exactly (luma and chroma)."""
    gx, gy = grid
    if (gx, gy) == (1, 1):
        return mask
    h, w = mask.shape[-2:]
    hh, ww = -(-h // gy) * gy, -(-w // gx) * gx
    padded = np.zeros(mask.shape[:-2] + (hh, ww), bool)
    padded[..., :h, :w] = mask
    blocks = padded.reshape(mask.shape[:-2] + (hh // gy, gy, ww // gx, gx)).any(axis=(-3, -1))
    return np.repeat(np.repeat(blocks, gy, axis=-2), gx, axis=-1)[..., :h, :w]


def composite_native(source: Native, generated: Native, mask: np.ndarray) -> Native:
    """The source's samples outside the mask, the generated ones inside (per plane grid)."""
    planes = [np.where(m[..., None], g, s) for s, g, m in zip(source.planes, generated.planes,
                                                             plane_masks(mask, source))]
    return Native(source.pix_fmt, source.width, source.height, planes)
