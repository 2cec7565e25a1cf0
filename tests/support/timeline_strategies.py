"""Hypothesis strategies for OTIO timelines as editors make them, and a frame-by-frame view
of what a track shows, to compare timelines item by item."""
from __future__ import annotations

import math
from fractions import Fraction

import opentimelineio as otio
from hypothesis import strategies as st

from bridge.api import pb
from bridge.timecode import exact_rate, from_timecode, to_pb_rate
from bridge.timeline import timeline_rate

RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(50),
         Fraction(60000, 1001), Fraction(60)]


def rt(value, rate) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(value, float(rate))


def tr(start, duration, rate) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(rt(start, rate), rt(duration, rate))


@st.composite
def start_frames(draw, rate: Fraction) -> int:
    labels = ["00:00:00:00", "01:00:00:00", "00:59:59:00", "10:00:00:00"]
    if rate in (Fraction(30000, 1001), Fraction(60000, 1001)):
        labels += ["00:59:59;28", "00:00:59;28", "00:09:59;29"]
    return from_timecode(draw(st.sampled_from(labels)), rate)


@st.composite
def clips(draw, name: str, tl_rate: Fraction, *, mixed: bool, margin: int = 12) -> otio.schema.Clip:
    rate = draw(st.sampled_from(RATES)) if mixed and draw(st.booleans()) else tl_rate
    media_start = draw(st.sampled_from([0, round(3600 * rate)]))
    head = draw(st.integers(0, margin))
    duration = draw(st.integers(2, 40))
    tail = draw(st.integers(0, margin))
    ref = otio.schema.ExternalReference(f"/media/{name}.mov", tr(media_start, head + duration + tail, rate))
    return otio.schema.Clip(name, ref, tr(media_start + head, duration, rate))


@st.composite
def timelines(draw, *, mixed: bool = True, max_tracks: int = 3, transitions: bool = True) -> otio.schema.Timeline:
    """1..max_tracks video tracks of clips, gaps and dissolves; every clip name unique."""
    tl_rate = draw(st.sampled_from(RATES))
    timeline = otio.schema.Timeline("story", global_start_time=rt(draw(start_frames(tl_rate)), tl_rate))
    counter = 0
    for number in range(1, draw(st.integers(1, max_tracks)) + 1):
        track = otio.schema.Track(f"V{number}")
        for kind in draw(st.lists(st.sampled_from(["clip", "clip", "gap", "dissolve"]), min_size=1, max_size=6)):
            if kind == "gap":
                track.append(otio.schema.Gap(source_range=tr(0, draw(st.integers(1, 20)), tl_rate)))
                continue
            counter += 1
            clip = draw(clips(f"c{counter:02d}", tl_rate, mixed=mixed))
            previous = track[len(track) - 1] if len(track) else None
            if kind == "dissolve" and transitions and isinstance(previous, otio.schema.Clip) \
                    and _same_rate(previous, tl_rate) and _same_rate(clip, tl_rate):
                # a dissolve needs media under it on both sides: within the handles and the clips
                room_before = _tail_room(previous)
                room_after = _head_room(clip)
                limit = min(room_before, room_after, previous.source_range.duration.value // 2,
                            clip.source_range.duration.value // 2)
                if limit >= 1:
                    offset = draw(st.integers(1, int(limit)))
                    track.append(otio.schema.Transition(transition_type="SMPTE_Dissolve",
                                                        in_offset=rt(offset, tl_rate), out_offset=rt(offset, tl_rate)))
            track.append(clip)
        timeline.tracks.append(track)
    return timeline


def _same_rate(clip, rate) -> bool:
    return Fraction(clip.source_range.start_time.rate).limit_denominator(1001) == rate


def _tail_room(clip) -> int:
    avail = clip.media_reference.available_range
    return int(avail.end_time_exclusive().value - clip.source_range.end_time_exclusive().value)


def _head_room(clip) -> int:
    return int(clip.source_range.start_time.value - clip.media_reference.available_range.start_time.value)


def track_frames(track, rate) -> int:
    """Record frames whose first instant is on the track."""
    return math.ceil(track.duration().value_rescaled_to(float(rate)) - 1e-6) if len(track) else 0


def frame_map(track: otio.schema.Track, rate: Fraction, frames: int | None = None) -> list[tuple]:
    """What each record frame of the track shows: (clip, source frame, original media, active
    key) or ("gap",), sampled at the frame's first instant. Split pieces of one clip show the
    same thing as the whole clip did."""
    total = track_frames(track, rate) if frames is None else frames
    spans = []
    for index, item in enumerate(track):
        if isinstance(item, otio.schema.Transition):
            continue
        r = track.range_of_child_at_index(index)
        start = Fraction(r.start_time.value_rescaled_to(float(rate))).limit_denominator(100000)
        end = Fraction(r.end_time_exclusive().value_rescaled_to(float(rate))).limit_denominator(100000)
        spans.append((start, end, item))
    shown = []
    for frame in range(total):
        middle = frame + Fraction(1, 10**5)
        entry = ("gap",)
        for start, end, item in spans:
            if start <= middle < end and isinstance(item, otio.schema.Clip):
                src_rate = Fraction(item.source_range.start_time.rate).limit_denominator(1001)
                offset = (middle - start) / rate * src_rate
                origin = Fraction(item.source_range.start_time.value).limit_denominator(100000)
                source = math.floor(origin + offset)
                original = item.media_references()[otio.schema.Clip.DEFAULT_MEDIA_KEY]
                entry = (item.name, source, getattr(original, "target_url", ""), item.active_media_reference_key)
                break
        shown.append(entry)
    return shown


def fake_take(take_id: str, segment, *, op=pb.REFINE, side=None, frames: int = 0) -> "pb.Take":
    """The Take the server would return for a segment (handles included)."""
    rate = to_pb_rate(segment.rate)
    start = segment.source_start - segment.head_handles
    count = segment.source_duration + segment.head_handles + segment.tail_handles
    sel_start, sel_count = segment.source_start, segment.source_duration
    if op == pb.EXTEND:
        if side == "head":
            start -= frames
            sel_start -= frames
        count += frames
        sel_count += frames
    return pb.Take(take_id=take_id, shot=segment.clip, version=1, operation=op, status=pb.NEEDS_REVIEW,
                   generated_frames=frames, extend_side={"head": pb.HEAD, "tail": pb.TAIL}.get(side, 0),
                   source_range=pb.FrameRange(start_frame=start, frame_count=count, rate=rate),
                   selected_range=pb.FrameRange(start_frame=sel_start, frame_count=sel_count, rate=rate),
                   media=pb.MediaInfo(url=f"/takes/{take_id}.mov", codec=pb.PRORES_422_HQ))


def rate_of(timeline) -> Fraction:
    return timeline_rate(timeline)


def _frames(time: otio.opentime.RationalTime, rate: Fraction) -> Fraction:
    return Fraction(time.to_seconds()).limit_denominator(10 ** 6) * rate


def shape(timeline: otio.schema.Timeline) -> list:
    """Every item on every track: kind, name (clips), record frames, source frames (clips)."""
    rate = exact_rate(timeline.global_start_time.rate) if timeline.global_start_time is not None else None
    rows = []
    for number, track in enumerate(timeline.tracks):
        for index, item in enumerate(track):
            span = track.range_of_child_at_index(index)
            local = rate or exact_rate(span.duration.rate)
            row = [number, track.kind, type(item).__name__, round(_frames(span.start_time, local), 3),
                   round(_frames(span.duration, local), 3)]
            if isinstance(item, otio.schema.Clip):
                row.append(item.name)
                if item.source_range is not None:
                    clip_rate = exact_rate(item.source_range.start_time.rate)
                    row += [round(_frames(item.source_range.start_time, clip_rate), 3),
                            round(_frames(item.source_range.duration, clip_rate), 3)]
            rows.append(row)
    return rows
