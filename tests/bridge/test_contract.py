"""Shot contracts as files and the project's character library (bridge/contract.py): read,
applied to the job options, carried by the request, saved back; bad files refused naming the
value."""
from __future__ import annotations

import json

import cv2
import numpy as np
import opentimelineio as otio
import pytest

from bridge import contract, previs
from bridge.api import pb
from bridge.contract import ContractError
from bridge.request import JobOptions, build_request

CONTRACT = """
role = "pre-vis"
purpose = "establish the harbour before the chase"
prompt = "a wide of the harbour at dawn"
negative_prompt = "text"
characters = ["hero"]
seed = 1234
fallback = "classic"
codec = "lossless"
references = ["style=refs/mood.png"]
[constraints]
duration = 72
camera = "pan_right"
camera_amount = 0.1
must_not_change = ["the boats' positions"]
keep_head_frames = 2
[review]
flicker = 1.5
[budget]
max_frames = 240
max_compute_seconds = 600
"""

LIBRARY = """
[hero]
description = "a woman in her thirties, red raincoat"
images = ["refs/hero_front.png", "refs/hero_side.png"]
[sidekick]
description = "a small grey dog"
images = ["refs/dog.png"]
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "refs").mkdir()
    for index, name in enumerate(("hero_front", "hero_side", "dog", "mood")):
        cv2.imwrite(str(tmp_path / "refs" / f"{name}.png"), np.full((8, 8, 3), 40 * index, np.uint8))
    (tmp_path / "shot.toml").write_text(CONTRACT)
    (tmp_path / "characters.toml").write_text(LIBRARY)
    return tmp_path


def _gap_selection():
    timeline = otio.schema.Timeline("t", global_start_time=otio.opentime.RationalTime(0, 24))
    timeline.tracks.append(otio.schema.Track("V1"))
    target = previs.find_gap(timeline, 1, 0, 72, shot="harbour")
    return previs.export_gap(timeline, target)


def test_a_contract_file_and_a_character_become_the_request(project):
    data = contract.read_contract(project / "shot.toml")
    library = contract.read_library(contract.find_library(project))
    options = contract.apply_contract(JobOptions(op="generate", keyframes=""), data)
    assert (options.camera, options.camera_amount, options.duration, options.max_frames) == ("pan_right", 0.1, 72, 240)
    request = build_request(_gap_selection(), options, client="t", library=library)
    c = request.contract
    assert (c.role, c.purpose, c.seed, c.fallback, c.output.codec) == (
        "pre-vis", "establish the harbour before the chase", 1234, pb.CLASSIC, pb.FFV1)
    # the character is asked for one fixed way: its description after the prompt, its images as references
    assert c.prompt == "a wide of the harbour at dawn hero: a woman in her thirties, red raincoat."
    assert [(r.role, r.name) for r in c.reference_images] == [("style", "mood"), ("character", "hero"),
                                                              ("character", "hero")]
    assert [(ch.name, len(ch.sha256)) for ch in c.characters] == [("hero", 64)]
    assert c.characters[0].sha256 == library["hero"].sha256()
    assert list(c.must_not_change) == ["the boats' positions"] and c.constraints.keep_head_frames == 2
    assert dict(c.review.thresholds) == {"flicker": 1.5} and c.budget.max_compute_seconds == 600
    assert c.constraints.max_frames == 240
    assert request.generate.camera == pb.PAN_RIGHT

    # the same character in another shot: the same words, the same hash
    other = build_request(_gap_selection(), JobOptions(op="generate", prompt="a street", characters=["hero"],
                                                       keyframes=""), client="t", library=library)
    assert other.contract.prompt.endswith("hero: a woman in her thirties, red raincoat.")
    assert other.contract.characters[0].sha256 == c.characters[0].sha256
    # an image changed: another hash
    cv2.imwrite(str(project / "refs" / "hero_side.png"), np.full((8, 8, 3), 200, np.uint8))
    assert contract.read_library(project / "characters.toml")["hero"].sha256() != c.characters[0].sha256


def test_a_saved_contract_reads_back_to_the_same_options(project):
    options = contract.apply_contract(JobOptions(op="generate"), contract.read_contract(project / "shot.toml"))
    saved = contract.save_contract(project / "saved.json", options)
    again = contract.apply_contract(JobOptions(op="generate"), contract.read_contract(saved))
    for field in ("role", "purpose", "prompt", "negative_prompt", "characters", "seed", "fallback", "codec", "burn_in",
                  "camera", "camera_amount", "duration", "must_not_change", "keep_head_frames", "thresholds",
                  "max_compute_seconds", "max_frames", "references"):
        assert getattr(again, field) == getattr(options, field), field
    assert json.loads(saved.read_text())["schema"] == 1


@pytest.mark.parametrize("text,match", [
    ('prompt = "x"\ncolour = "red"\n', r"unknown field 'colour'; fields: "),
    ('[constraints]\nlength = 4\n', r"\[constraints\]: unknown field 'length'"),
    ('[review]\nflicker = "high"\n', r"\[review\] maps gate names to numbers"),
    ('characters = "hero"\n', r"characters must be a list of text"),
    ('schema = 9\n', r"schema 9, newer than this TakeBridge reads"),
    ('prompt = \n', r"cannot be read"),
    ('seed = "x"\n', r"seed is 'x'; it must be a whole number in 0\.\.9007199254740991"),
    ('[constraints]\nduration = -4\n', r"\[constraints\] duration is -4"),
    ('[constraints]\ncamera_amount = 3\n', r"camera_amount is 3; it must be 0\.\.1"),
    ('burn_in = "yes"\n', r"burn_in must be true or false"),
    ('[budget]\nmax_compute_seconds = -1\n', r"\[budget\] max_compute_seconds is -1"),
])
def test_a_bad_contract_is_refused_naming_the_value(tmp_path, text, match):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(ContractError, match=match):
        contract.read_contract(tmp_path / "bad.toml")


def test_a_character_the_library_lacks_or_an_image_it_misses_is_refused(project):
    library = contract.read_library(project / "characters.toml")
    with pytest.raises(ContractError, match=r"character 'villain' is not in the library \(hero, sidekick\)"):
        build_request(_gap_selection(), JobOptions(op="generate", characters=["villain"], keyframes=""),
                      client="t", library=library)
    with pytest.raises(ContractError, match=r"no character library"):
        build_request(_gap_selection(), JobOptions(op="generate", characters=["hero"], keyframes=""), client="t")
    (project / "refs" / "dog.png").unlink()
    with pytest.raises(ContractError, match=r"character 'sidekick' in characters.toml: image refs/dog.png not found"):
        contract.read_library(project / "characters.toml")


def test_the_server_checks_a_characters_hash_and_the_manifest_records_it(server, project):
    """A character whose images changed after the request was made is refused; one that matches
    is recorded in the take's manifest, hash and all."""
    client, _ = server
    library = contract.read_library(project / "characters.toml")
    options = JobOptions(op="generate", prompt="the harbour", characters=["hero"], keyframes="", codec="lossless",
                         width=64, height=48, take_dir=str(project / "takes"))
    timeline = otio.schema.Timeline("t", global_start_time=otio.opentime.RationalTime(0, 24))
    timeline.tracks.append(otio.schema.Track("V1"))
    target = previs.find_gap(timeline, 1, 0, 12, shot="harbour")
    request = build_request(previs.export_gap(timeline, target), options, client="t", library=library)
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    manifest = json.loads(open(job.take.manifest_url).read())
    recorded = manifest["request"]["contract"]["characters"]
    assert [(c["name"], c["sha256"]) for c in recorded] == [("hero", library["hero"].sha256())]

    request = build_request(previs.export_gap(timeline, target), options, client="t", library=library)
    cv2.imwrite(str(project / "refs" / "hero_front.png"), np.full((8, 8, 3), 99, np.uint8))
    from bridge.client import ClientError
    with pytest.raises(ClientError, match=r"character 'hero' does not match its hash"):
        client.submit(request)
