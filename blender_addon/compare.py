"""Compare a take against the source or another take: an A/B wipe effect strip, or the two
side by side (each scaled to half width), on channels above everything; run with mode OFF to
remove them. The compared strips themselves are never changed."""
from __future__ import annotations

from . import compat, vse_takes
from .vse import TAKE_KEY

COMPARE_KEY = "takebridge_compare"


def clear(scene) -> None:
    """Remove the compare strips: effects first (removing an effect's input removes it too)."""
    coll = compat.strips(scene)
    names = [s.name for s in sorted((s for s in compat.strips_all(scene) if COMPARE_KEY in s.keys()),
                                    key=lambda s: s.type not in ("WIPE",))]
    for name in names:
        strip = next((s for s in compat.strips_all(scene) if s.name == name), None)
        if strip is not None:
            coll.remove(strip)


def set_compare(scene, take_id: str, against: str, mode: str) -> str:
    clear(scene)
    if mode == "OFF":
        return ""
    take = vse_takes.find_take(scene, take_id)
    if against == "original":
        other = vse_takes.find_source(scene, take[TAKE_KEY]["source"])
        if vse_takes.is_previs(other):
            raise vse_takes.TakeError(f"{other.name!r} is a pre-vis shot: it has no original footage to compare "
                                      f"{take_id} with; compare it with another take of the shot")
    else:
        other = vse_takes.find_take(scene, against)
    start = max(take.frame_final_start, other.frame_final_start)
    end = min(take.frame_final_end, other.frame_final_end)
    if end <= start:
        raise vse_takes.TakeError(f"{take_id} and {against} do not overlap in time; nothing to compare")
    top = max(s.channel for s in compat.strips_all(scene)) + 1
    coll = compat.strips(scene)
    made = []
    a = _copy(scene, take, top, start, end)
    b = _copy(scene, other, top + 1, start, end)
    made += [a, b]
    if mode == "WIPE":
        wipe = compat.new_effect(scene, f"compare {take_id}", "WIPE", top + 2, start, end, input1=b, input2=a)
        wipe.transition_type = "SINGLE"
        wipe.direction = "IN"
        wipe.blur_width = 0.0
        wipe.effect_fader = 0.5
        wipe.use_default_fade = False
        made.append(wipe)
        a.mute = b.mute = False
    else:  # side by side: the take on the right, the other on the left, each at half size
        width = scene.render.resolution_x
        for strip, sign in ((a, 1), (b, -1)):
            strip.transform.scale_x = strip.transform.scale_y = 0.5
            strip.transform.offset_x = sign * width / 4
        a.blend_type = b.blend_type = "ALPHA_OVER"
    for strip in made:
        strip[COMPARE_KEY] = True
    del coll
    return ", ".join(s.name for s in made)


def _copy(scene, strip, channel: int, start: int, end: int):
    coll = compat.strips(scene)
    copy = coll.new_movie(name=f"cmp {strip.name}"[:62], filepath=strip.filepath, channel=channel,
                          frame_start=int(round(strip.frame_start)))
    copy.frame_final_start, copy.frame_final_end = start, end
    if copy.channel != channel:
        copy.channel = channel
    copy.mute = False
    return copy
