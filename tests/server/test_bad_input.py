"""Bad input is refused with a status and a message that names the value and what to do; the
server stays up and nothing is written."""
from __future__ import annotations

from fractions import Fraction

import grpc
import numpy as np
import opentimelineio as otio
import pytest

from bridge.api import pb
from bridge.client import ClientError
from server.app import ConfigError, ServerConfig, check_security
from server.media import write_movie
from server.samples import pan_clip

from conftest import make_timeline, refused, submit_request


@pytest.fixture
def timeline(write_media):
    media = write_media("src", pan_clip(12, 48, 64, 1.0))
    return make_timeline(media, rate=24, media_start=86400, media_frames=12, clip_in=0, clip_frames=12)


def test_missing_media_names_the_path(server, timeline, tmp_path):
    client, runtime = server
    timeline.tracks[0][0].media_reference.target_url = str(tmp_path / "gone.mov")
    err = refused(client, submit_request(timeline, "A", "refine"))
    assert err.code == grpc.StatusCode.NOT_FOUND and "gone.mov" in str(err)
    assert client.list_jobs() == []


def test_mask_of_the_wrong_size_names_both_sizes(server, timeline, tmp_path):
    client, _ = server
    mask = write_movie(np.full((1, 40, 40, 3), 255, np.uint8), tmp_path / "mask", codec="png", rate=Fraction(24)).path
    err = refused(client, submit_request(timeline, "A", "inpaint", mask=mask))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "40x40" in str(err) and "64x48" in str(err)


def test_missing_mask_is_not_found(server, timeline, tmp_path):
    client, _ = server
    err = refused(client, submit_request(timeline, "A", "inpaint", mask=tmp_path / "nomask.png"))
    assert err.code == grpc.StatusCode.NOT_FOUND and "nomask.png" in str(err)


def test_range_outside_the_media_gives_both_ranges(server, timeline):
    client, _ = server
    clip = timeline.tracks[0][0]
    clip.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(86400 + 8, 24),
                                                otio.opentime.RationalTime(10, 24))
    err = refused(client, submit_request(timeline, "A", "refine"))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "86408..86417" in str(err) and "12 frames" in str(err)


def test_unknown_clip_lists_the_clips_there_are(server, timeline):
    client, _ = server
    request = submit_request(timeline, "A", "refine")
    sub = otio.adapters.read_from_string(request.selection_otio)
    sub.tracks[0][0].name = "Z"
    request.selection_otio = otio.adapters.write_to_string(sub)
    err = refused(client, request)
    assert err.code == grpc.StatusCode.NOT_FOUND and "'A'" in str(err) and "'Z'" in str(err)


def test_malformed_otio_is_invalid_argument(server, timeline):
    client, _ = server
    request = submit_request(timeline, "A", "refine")
    request.selection_otio = '{"OTIO_SCHEMA": "Timeline.1", "tracks": '
    err = refused(client, request)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "OpenTimelineIO" in str(err)


@pytest.mark.parametrize("field, value, words", [
    ("strength", 1.5, "outside 0..1"),
    ("frames", 0, "frames > 0"),
])
def test_parameters_out_of_range_are_named(server, timeline, field, value, words):
    client, _ = server
    if field == "strength":
        request = submit_request(timeline, "A", "refine", strength=value)
    else:
        request = submit_request(timeline, "A", "extend", frames=value)
    err = refused(client, request)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and words in str(err)


def test_media_outside_the_allowed_folders_is_refused(tmp_path, write_media):
    from bridge.client import GenerationClient
    from server.app import build_server, shutdown

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    grpc_server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store", allow=(allowed,)))
    try:
        media = write_media("outside", pan_clip(4, 32, 48, 1.0))
        timeline = make_timeline(media, rate=24, media_start=0, media_frames=4, clip_in=0, clip_frames=4)
        with GenerationClient(f"127.0.0.1:{port}") as client:
            err = refused(client, submit_request(timeline, "A", "refine"))
        assert err.code == grpc.StatusCode.PERMISSION_DENIED and "--allow" in str(err)
    finally:
        shutdown(grpc_server, runtime, grace=0.1)


def test_unknown_job_is_not_found(server):
    client, _ = server
    with pytest.raises(ClientError) as err:
        client.get_job("nope")
    assert err.value.code == grpc.StatusCode.NOT_FOUND and "'nope'" in str(err.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_a_non_loopback_bind_needs_tls_and_a_token(host):
    with pytest.raises(ConfigError, match="--tls-cert, --tls-key, --token"):
        check_security(ServerConfig(host=host))
    check_security(ServerConfig(host="127.0.0.1"))
    check_security(ServerConfig(host="::1"))


def test_parameters_of_another_operation_are_refused(server, timeline):
    client, _ = server
    request = submit_request(timeline, "A", "refine")
    request.operation = pb.INPAINT  # with refine parameters
    err = refused(client, request)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "takes inpaint parameters, not refine" in str(err)
