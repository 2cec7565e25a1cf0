"""The editor contract: one story that every editor adapter (the OTIO file on the command line,
Resolve through the stand-in, Blender through bpy) must tell with the same outcome, each in its
own terms. A driver per editor does the user's clicks; `tell` asserts what the user sees.

The cut, at 24 fps: A (24 frames of a 40-frame pan with a bright square crossing it, from its
frame 4), a 12-frame gap, B (20 frames) and, right after B, C (10 frames): A's tail has room for
an 8-frame extension, B's tail has none.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

RATE = Fraction(24)
W, H = 64, 48
LAYOUT = {"A": (0, 4, 24), "B": (36, 0, 20), "C": (56, 0, 10)}   # clip -> (record offset, first media frame, frames)
EXTENSION = 8
NOTE = "good, keep the grain"


class Driver(Protocol):
    def refine(self, clip: str) -> dict: ...            # -> {"state", "take_id", ...}: waits and places
    def inpaint(self, clip: str) -> dict: ...
    def extend(self, clip: str, frames: int) -> dict: ...   # at the tail, beside the clip (its gap)
    def shown(self, clip: str) -> str: ...              # the take id the editor shows for the clip, or "original"
    def take_frames(self, clip: str, take_id: str) -> tuple[int, int]: ...   # first record frame shown, count
    def show_original(self, clip: str) -> None: ...
    def approve(self, clip: str, take_id: str, note: str) -> None: ...
    def review_in_editor(self, clip: str, take_id: str) -> tuple[str, str]: ...  # (status, note) as the editor keeps it
    def jobs_on_server(self) -> int: ...
    # Generate (tell_generate): a pre-vis shot named `shot` in record frames [start, start + count)
    # of V1 (timeline-local), the neighbouring clips' frames as keyframes -> {"state", "take_id", ...}
    def generate(self, start: int, count: int, shot: str) -> dict: ...


def tell(driver: Driver) -> dict:
    """The story; returns the take ids it made."""
    refined = driver.refine("A")
    assert refined["state"] == "succeeded", refined
    assert driver.shown("A") == refined["take_id"]
    assert driver.take_frames("A", refined["take_id"]) == (LAYOUT["A"][0], LAYOUT["A"][2])

    inpainted = driver.inpaint("A")
    assert inpainted["state"] == "succeeded", inpainted
    assert driver.shown("A") == inpainted["take_id"] and inpainted["take_id"] != refined["take_id"]

    sent = driver.jobs_on_server()
    refused = driver.extend("B", EXTENSION)
    assert refused["state"] == "refused", refused
    assert "C" in refused["error"] and "overwrite" in refused["error"], refused["error"]
    assert driver.jobs_on_server() == sent, "a refused extension sends nothing"

    extended = driver.extend("A", EXTENSION)
    assert extended["state"] == "succeeded", extended
    # the take shows up to 8 frames past A, into the gap; where it starts is the editor's way:
    # the whole lengthened clip (OTIO, Blender) or the new frames alone as their own item (Resolve)
    start, count = driver.take_frames("A", extended["take_id"])
    a_start, a_end = LAYOUT["A"][0], LAYOUT["A"][0] + LAYOUT["A"][2]
    assert start + count == a_end + EXTENSION and start in (a_start, a_end), (start, count)

    driver.show_original("A")
    assert driver.shown("A") == "original"

    driver.approve("A", refined["take_id"], NOTE)
    assert driver.review_in_editor("A", refined["take_id"]) == ("approved", NOTE)
    return {"refined": refined["take_id"], "inpainted": inpainted["take_id"], "extended": extended["take_id"]}


def tell_generate(driver: Driver) -> dict:
    """Generate: a range over B is refused naming B (nothing sent); a pre-vis shot fills the
    12-frame gap between A and B exactly, shown with its take; Generate again on it makes
    another take of the same shot, on the same item."""
    gap_start = LAYOUT["A"][0] + LAYOUT["A"][2]
    gap = LAYOUT["B"][0] - gap_start
    sent = driver.jobs_on_server()
    refused = driver.generate(LAYOUT["B"][0] + 2, 6, "over_b")
    assert refused["state"] == "refused", refused
    assert "'B'" in refused["error"] and "not empty" in refused["error"], refused["error"]
    assert driver.jobs_on_server() == sent, "a refused Generate sends nothing"

    made = driver.generate(gap_start, gap, "bridge")
    assert made["state"] == "succeeded", made
    assert driver.shown("bridge") == made["take_id"]
    assert driver.take_frames("bridge", made["take_id"]) == (gap_start, gap)

    again = driver.generate(gap_start, gap, "bridge")
    assert again["state"] == "succeeded" and again["take_id"] != made["take_id"], again
    assert driver.shown("bridge") == again["take_id"]
    assert driver.take_frames("bridge", again["take_id"]) == (gap_start, gap)
    return {"first": made["take_id"], "second": again["take_id"]}


def frames(n: int, seed: int, square: bool) -> tuple[np.ndarray, np.ndarray]:
    """A textured pan (and a bright square crossing it), and the square's mask."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(40, 200, (H, W + n, 3), dtype=np.uint8)
    out = np.stack([texture[:, i:i + W] for i in range(n)]).copy()
    masks = np.zeros((n, H, W), bool)
    if square:
        for i in range(n):
            x = 8 + i // 2
            out[i, 16:32, x:x + 16] = 250
            masks[i, 12:36, x - 4:x + 20] = True
    return out, masks


def write_movie(path: Path, pictures: np.ndarray, timecode: str = "") -> str:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv444p"
        if timecode:
            stream.metadata["timecode"] = timecode
        for picture in pictures:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def media(folder: Path) -> dict:
    """The three sources (A with the square, B and C plain pans, each 40 frames with its own
    timecode) and A's mask movie (white = regenerate); paths by name, "mask" for the mask."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for seed, name in enumerate(LAYOUT):
        pictures, masks = frames(40, seed, square=name == "A")
        out[name] = write_movie(folder / f"{name}.mkv", pictures, f"1{seed}:00:00:00")
        if name == "A":
            out["mask"] = write_movie(folder / "mask.mkv", np.repeat(masks[..., None] * np.uint8(255), 3, axis=-1))
    return out
