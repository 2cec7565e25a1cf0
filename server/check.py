"""`takebridge check`: the server's quality gates on any source and take on disk, so a TD can
audit takes made elsewhere (or by hand) the same way TakeBridge audits its own.

Alignment: when both files carry a start timecode at the same rate, take frames line up with
source frames by timecode; otherwise frame 0 of the take is frame 0 of the source. For an
extension the take is the source plus new frames; the side comes from the timecodes (a take
starting before the source was extended at the head) unless --side says.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from bridge.timecode import from_timecode, shift_timecode
from server import gates
from server.media import MediaInfo, probe, read_frames, read_mask


class CheckError(ValueError):
    pass


@dataclasses.dataclass
class CheckResult:
    op: str
    source: MediaInfo
    take: MediaInfo
    offset: int                    # take frame 0 = source frame `offset` (refine, inpaint)
    extend_side: str
    extend_frames: int
    gates: list

    def as_dict(self) -> dict:
        status, reasons = gates.status_and_flags(self.gates)
        return {"op": self.op, "status": status, "reasons": reasons, "source": str(self.source.path),
                "take": str(self.take.path), "alignment_offset": self.offset, "extend_side": self.extend_side or None,
                "extend_frames": self.extend_frames, "gates": [g.as_dict() for g in self.gates]}


def check_media(op: str, source_path: str, take_path: str, *, mask_path: str | None = None,
                side: str | None = None, frames: int | None = None, expect_frames: int | None = None,
                thresholds: dict | None = None) -> CheckResult:
    if op not in ("refine", "extend", "inpaint"):
        raise CheckError(f"--op must be refine, extend or inpaint, not {op!r}")
    source, take = probe(source_path), probe(take_path)
    offset = _timecode_offset(source, take)
    if op == "extend":
        if side is None:
            side = "head" if offset < 0 else "tail"
        if side == "tail":
            first = max(0, offset)                      # source frame under take frame 0
            available = source.frame_count - first      # source frames from there on
            extend_frames = frames if frames is not None else take.frame_count - min(available, take.frame_count)
            part = min(available, take.frame_count - extend_frames)
            src = read_frames(source.path, first, part, rate=source.rate) if part > 0 else None
            tk = read_frames(take.path, 0, min(take.frame_count, part + extend_frames), rate=take.rate)
            expected_count = (available if frames is not None else part) + extend_frames
            expected_tc = shift_timecode(source.start_timecode, first, source.rate) if source.start_timecode else None
        else:
            extend_frames = frames if frames is not None else (-offset if offset < 0 else
                                                                take.frame_count - source.frame_count)
            part = min(source.frame_count, take.frame_count - extend_frames)
            src = read_frames(source.path, 0, part, rate=source.rate) if part > 0 else None
            tk = read_frames(take.path, 0, min(take.frame_count, part + extend_frames), rate=take.rate)
            expected_count = (source.frame_count if frames is not None else part) + extend_frames
            expected_tc = (shift_timecode(source.start_timecode, -extend_frames, source.rate)
                           if source.start_timecode else None)
        if extend_frames <= 0 or src is None:
            raise CheckError(f"cannot tell the new frames of this extension: the take has {take.frame_count} "
                             f"frames ({take.start_timecode or 'no timecode'}), the source {source.frame_count} "
                             f"({source.start_timecode or 'no timecode'}); pass --frames N (and --side)")
        mask = None
    else:
        extend_frames = 0
        side = ""
        start = max(0, offset)
        count = min(take.frame_count, source.frame_count - start)
        if count <= 0:
            raise CheckError(f"the take ({take.start_timecode or 'no timecode'}) does not overlap the source "
                             f"({source.start_timecode or 'no timecode'})")
        src = read_frames(source.path, start, count, rate=source.rate)
        tk = read_frames(take.path, 0, count, rate=take.rate)
        expected_count = source.frame_count - start
        expected_tc = (shift_timecode(source.start_timecode, start, source.rate)
                       if source.start_timecode else None)
        mask = None
        if op == "inpaint":
            if not mask_path:
                raise CheckError("inpaint needs --mask (white = regenerated), the mask the take was made with")
            mask = read_mask(mask_path, count, (source.width, source.height), rate=source.rate)
    if expect_frames is not None:
        expected_count = expect_frames
    if tk.shape[1:3] != src.shape[1:3]:
        tk = _resize_like(tk, src)  # conformance reports the size; the pixel gates still run
    expected = gates.Expected(frames=expected_count, rate=source.rate, size=(source.width, source.height),
                              timecode=expected_tc)
    actual = gates.Actual(frames=take.frame_count, rate=take.rate, size=(take.width, take.height),
                          timecode=take.start_timecode)
    results = gates.evaluate(op, src, tk, mask=mask, extend_side=side or "tail", extend_frames=extend_frames,
                             expected=expected, actual=actual, thresholds=thresholds)
    return CheckResult(op, source, take, offset, side, extend_frames, results)


def _timecode_offset(source: MediaInfo, take: MediaInfo) -> int:
    if source.start_timecode and take.start_timecode and source.rate == take.rate:
        return from_timecode(take.start_timecode, take.rate) - from_timecode(source.start_timecode, source.rate)
    return 0


def _resize_like(frames: np.ndarray, like: np.ndarray) -> np.ndarray:
    h, w = like.shape[1:3]
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
