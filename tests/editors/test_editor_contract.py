"""The editor contract (tests/support/contract.py) on the OTIO file through the command line and on
Resolve through the stand-in (tests/support/resolve_standin.py), against one real server process; Blender
tells the same story in tests/blender/test_contract.py. Plus the cases that drifted apart before
the editors shared bridge/editor.py: the same source cut in twice on one track, a multi-clip
selection with one clip that cannot be done (the marker script run twice is in test_resolve.py)."""
from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import opentimelineio as otio
import pytest

from bridge.client import GenerationClient
from bridge.takes import take_of_reference
from bridge.timecode import from_timecode
from server.cli import main

from support.resolve_standin import Resolve
from support import contract
from support.servers import module_server as server  # noqa: F401  (the fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "resolve_scripts"))
from takebridge_resolve import core  # noqa: E402

pytestmark = pytest.mark.slow


def _jobs(address: str) -> int:
    with GenerationClient(address) as client:
        return len(client.list_jobs())


# ------------------------------------------------------------------------------ the OTIO file

def cli(*argv) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--log-level", "error", *map(str, argv), "--json"])
    text = out.getvalue().strip()
    return code, json.loads(text) if text else {}


def contract_timeline(paths: dict, layout=contract.LAYOUT) -> otio.schema.Timeline:
    """V1 as the contract lays it out, each clip referencing its media with its timecode."""
    rate = float(contract.RATE)
    timeline = otio.schema.Timeline("contract", global_start_time=otio.opentime.RationalTime(3600 * rate, rate))
    track = otio.schema.Track("V1")
    at = 0
    for name, (record, first, frames) in layout.items():
        if record > at:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                duration=otio.opentime.RationalTime(record - at, rate))))
        origin = from_timecode(f"1{list(contract.LAYOUT).index(name.split('#')[0])}:00:00:00", contract.RATE)
        reference = otio.schema.ExternalReference(target_url=paths[name.split("#")[0]], available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(origin, rate), otio.opentime.RationalTime(40, rate)))
        track.append(otio.schema.Clip(name=name.split("#")[0], media_reference=reference,
                                      source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(origin + first, rate),
                                                                           otio.opentime.RationalTime(frames, rate))))
        at = record + frames
    timeline.tracks.append(track)
    return timeline


class OtioFileDriver:
    """The user at a shell: `takebridge submit/timeline/review` on a timeline file, each command
    writing the next version of the file."""

    def __init__(self, folder: Path, server: str):
        self.folder, self.server, self.paths = folder, server, contract.media(folder / "media")
        self.version = 0
        self.current = folder / "edit_v000.otio"
        otio.adapters.write_to_file(contract_timeline(self.paths), str(self.current))

    def _next(self) -> Path:
        self.version += 1
        return self.folder / f"edit_v{self.version:03d}.otio"

    def _submit(self, *args) -> dict:
        out = self._next()
        code, data = cli("submit", "--server", self.server, "--timeline", self.current, "--codec", "lossless",
                         "--take-dir", self.folder / "takes", "--wait", "--out", out, *args)
        if out.exists():
            self.current = out
        return {"state": "refused" if code == 2 else data.get("state", data.get("status")),
                "take_id": data.get("take_id", ""), "error": data.get("error", ""), "code": code}

    def refine(self, clip):
        return self._submit("--op", "refine", "--clip", clip)

    def inpaint(self, clip):
        return self._submit("--op", "inpaint", "--clip", clip, "--mask", self.paths["mask"])

    def extend(self, clip, frames):
        return self._submit("--op", "extend", "--clip", clip, "--tail-frames", frames)

    def _clip(self, clip: str, take_id: str = ""):
        timeline = otio.adapters.read_from_file(str(self.current))
        for track in timeline.video_tracks():
            for item in track:
                if isinstance(item, otio.schema.Clip) and item.name == clip and (
                        not take_id or take_id in item.media_references()):
                    return item, track
        raise AssertionError(f"no clip {clip} with take {take_id}")

    def shown(self, clip):
        item, _ = self._clip(clip)
        key = item.active_media_reference_key
        return "original" if key in (otio.schema.Clip.DEFAULT_MEDIA_KEY, "original") else key

    def take_frames(self, clip, take_id):
        item, track = self._clip(clip, take_id)
        assert item.active_media_reference_key == take_id
        span = track.range_of_child(item)
        return int(round(span.start_time.value)), int(round(span.duration.value))

    def show_original(self, clip):
        out = self._next()
        assert cli("timeline", "activate", self.current, "--clip", clip, "--take", "original", "-o", out)[0] == 0
        self.current = out

    def approve(self, clip, take_id, note):
        out = self._next()
        code, _ = cli("review", take_id, "--approve", "--note", note, "--server", self.server,
                      "--timeline", self.current, "-o", out)
        assert code == 0
        self.current = out

    def review_in_editor(self, clip, take_id):
        item, _ = self._clip(clip, take_id)
        take = take_of_reference(item.media_references()[take_id])
        return {4: "approved"}.get(take.status, str(take.status)), take.review_note

    def jobs_on_server(self):
        return _jobs(self.server)

    def generate(self, start, count, shot):
        origin = from_timecode("01:00:00:00", contract.RATE)
        return self._submit("--op", "generate", "--track", 1, "--in", origin + start, "--out-point",
                            origin + start + count, "--shot", shot)


# ------------------------------------------------------------------------------ Resolve

class ResolveDriver:
    """The user in Resolve (the stand-in): select an item, run the script, use the Take Selector."""

    def __init__(self, folder: Path, server: str):
        self.folder, self.server, self.paths = folder, server, contract.media(folder / "media")
        self.resolve = Resolve()
        self.items = {name: self.resolve.import_and_place(self.paths[name], 1, record, first, frames)
                      for name, (record, first, frames) in contract.LAYOUT.items()}
        for name, item in self.items.items():      # the editor names the clips A, B, C (MediaPoolItem.SetName)
            assert item.GetMediaPoolItem().SetName(name)

    def _run(self, clip, **options) -> dict:
        self.resolve.timeline.selected = [self.items[clip]]
        try:
            (result,) = core.run(self.resolve, core.Options(codec="FFV1", take_dir=str(self.folder / "takes"),
                                                            **options), server=self.server)
        except core.ResolveError as err:
            return {"state": "refused", "error": str(err)}
        return result

    def refine(self, clip):
        return self._run(clip, op="refine")

    def inpaint(self, clip):
        return self._run(clip, op="inpaint", mask=self.paths["mask"])

    def extend(self, clip, frames):
        return self._run(clip, op="extend", frames=frames)

    def _item(self, clip):
        """A clip of the cut by name, or the pre-vis item of the shot `clip` (its takes say so)."""
        if clip in self.items:
            return self.items[clip]
        shots = [i for i in core.video_items(self.resolve.timeline)
                 if any(t.get("shot") == clip and t.get("op") == "generate" for t in core.takes_of(i))]
        assert len(shots) == 1, f"{len(shots)} items are shot {clip!r}"
        return shots[0]

    def shown(self, clip):
        # the selected take's id; an item's own media (take 1 of a cut clip) has none: "original"
        selected = [t for t in core.takes_of(self._item(clip)) if t["selected"]]
        return (selected[0].get("take_id") or "original") if selected else "original"

    def take_frames(self, clip, take_id):
        start = self.resolve.timeline.start
        item = self._item(clip)
        if any(t.get("take_id") == take_id for t in core.takes_of(item)):
            return item.GetStart() - start, item.GetDuration()
        for track in range(1, self.resolve.timeline.GetTrackCount("video") + 1):
            for other in self.resolve.timeline.GetItemListInTrack("video", track):
                if core.read_meta(other.GetMediaPoolItem()).get("take_id") == take_id:
                    return other.GetStart() - start, other.GetDuration()
        raise AssertionError(f"take {take_id} is nowhere on the timeline")

    def show_original(self, clip):
        core.switch_take(self.items[clip], 1)

    def _index(self, clip, take_id):
        return next(t["index"] for t in core.takes_of(self.items[clip]) if t.get("take_id") == take_id)

    def approve(self, clip, take_id, note):
        core.review(self.items[clip], self._index(clip, take_id), True, note, server=self.server)

    def review_in_editor(self, clip, take_id):
        row = core.takes_of(self.items[clip])[self._index(clip, take_id) - 1]
        return row["status"], row["note"]

    def jobs_on_server(self):
        return _jobs(self.server)

    def generate(self, start, count, shot):
        """Generate on V1 over record frames [start, start + count) from the timeline's start."""
        first = self.resolve.timeline.GetStartFrame() + start
        try:
            (result,) = core.generate(self.resolve, core.Options(codec="FFV1", take_dir=str(self.folder / "takes"),
                                                                 prompt=f"pre-vis {shot}"), server=self.server,
                                      shots=[core.Shot(track=1, first=first, last=first + count, name=shot)])
        except core.ResolveError as err:
            return {"state": "refused", "error": str(err)}
        return result


@pytest.mark.parametrize("driver", [OtioFileDriver, ResolveDriver], ids=["otio-file", "resolve"])
def test_every_editor_tells_the_contract_story_the_same_way(driver, server, tmp_path):
    takes = contract.tell(driver(tmp_path, server))
    assert len(set(takes.values())) == 3


@pytest.mark.parametrize("driver", [OtioFileDriver, ResolveDriver], ids=["otio-file", "resolve"])
def test_every_editor_generates_a_shot_into_a_gap_the_same_way(driver, server, tmp_path):
    takes = contract.tell_generate(driver(tmp_path, server))
    assert takes["first"].startswith("bridge_v") and takes["second"].startswith("bridge_v")


def test_the_same_source_cut_in_twice_on_a_track_is_done_by_position_in_both_editors(server, tmp_path):
    """A's media cut in twice (names alike); the second is refined by its place on the track."""
    paths = contract.media(tmp_path / "media")
    layout = {"A": (0, 4, 24), "A#2": (36, 10, 20)}
    otio.adapters.write_to_file(contract_timeline(paths, layout), str(tmp_path / "twice.otio"))
    code, data = cli("submit", "--server", server, "--timeline", tmp_path / "twice.otio", "--op", "refine",
                     "--track", 1, "--in", "01:00:01:12", "--out-point", "01:00:02:08", "--codec", "lossless",
                     "--take-dir", tmp_path / "takes", "--wait", "--out", tmp_path / "out.otio")
    assert code == 0 and data["state"] == "succeeded" and data["record_start"] == "01:00:01:12"
    track = otio.adapters.read_from_file(str(tmp_path / "out.otio")).video_tracks()[0]
    clips = [c for c in track if isinstance(c, otio.schema.Clip)]
    assert [c.active_media_reference_key for c in clips] == [otio.schema.Clip.DEFAULT_MEDIA_KEY, data["take_id"]]

    resolve = Resolve()
    first = resolve.import_and_place(paths["A"], 1, 0, 4, 24)
    second = resolve.import_and_place(paths["A"], 1, 36, 10, 20)
    assert first.GetName() == second.GetName()
    resolve.timeline.selected = [second]
    (result,) = core.run(resolve, core.Options(op="refine", codec="FFV1", take_dir=str(tmp_path / "takes")),
                         server=server)
    assert result["state"] == "succeeded" and second.GetTakesCount() == 2 and first.GetTakesCount() == 0


def test_one_clip_that_cannot_be_done_never_drops_the_others(server, tmp_path):
    """Extend A and B together: B has no room (C follows it), A has. The OTIO file gets A's take
    (written) and names B's refusal; nothing was sent for B."""
    driver = OtioFileDriver(tmp_path, server)
    before = driver.jobs_on_server()
    out = tmp_path / "both.otio"
    code, data = cli("submit", "--server", server, "--timeline", driver.current, "--op", "extend", "--tail-frames", 8,
                     "--track", 1, "--in", "01:00:00:00", "--out-point", "01:00:02:08", "--codec", "lossless",
                     "--take-dir", tmp_path / "takes", "--wait", "--out", out)
    states = {job["item"]: job["state"] for job in data["jobs"]}
    assert code == 1 and states == {"A": "succeeded", "B": "refused"}
    assert "would overwrite 'C'" in next(j["error"] for j in data["jobs"] if j["item"] == "B")
    assert data["out"] == str(out) and driver.jobs_on_server() == before + 1
