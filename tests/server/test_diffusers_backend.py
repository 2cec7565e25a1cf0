"""The diffusers backend on the CPU with tiny random pipelines, built offline, saved, and loaded
through the real loading code by a real server: exact frame counts at timeline rates the model
does not have, untouched pixels outside an inpaint mask, seeds, cancellation between steps,
and refusal of unsafe model folders."""
from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from bridge.api import pb
from bridge.client import GenerationClient
from bridge.timecode import from_timecode
from server.app import ServerConfig, build_server, shutdown
from server.backends.diffusers.loading import ModelError, check_folder, read_profiles
from server.backends.diffusers import conform
from server.cli import main
from server.media import probe, read_frames, write_movie
from server.samples import moving_object_clip

from conftest import make_timeline, submit_request

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_profile(tmp_path_factory) -> Path:
    from server.backends.diffusers.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("models"))


@pytest.fixture
def gen_server(tmp_path, tiny_profile):
    grpc_server, runtime, port = build_server(ServerConfig(port=0, store=tmp_path / "store", models=tiny_profile,
                                                           device="cpu"))
    client = GenerationClient(f"127.0.0.1:{port}")
    yield client, runtime
    client.close()
    shutdown(grpc_server, runtime, grace=0.5)


def _clip(write_media, rate, frames=12):
    video, masks, _ = moving_object_clip(frames, 48, 64, seed=4)
    media = write_media("obj", video, rate=rate, timecode="01:00:00:00")
    start = from_timecode("01:00:00:00", rate)
    timeline = make_timeline(media, rate=rate, media_start=start, media_frames=frames, clip_in=0, clip_frames=frames)
    return media, masks, timeline


def _diffusers(request, **contract):
    request.backend = "diffusers"
    for key, value in contract.items():
        setattr(request.contract.constraints, key, value)
    return request


@pytest.mark.parametrize("rate", [Fraction(24000, 1001), Fraction(25)])
def test_every_operation_delivers_the_exact_frames_asked_for(gen_server, write_media, tmp_path, rate):
    client, _runtime = gen_server
    media, masks, timeline = _clip(write_media, rate, frames=13)
    mask = write_movie(np.repeat(masks[..., None] * np.uint8(255), 3, axis=-1), tmp_path / "mask.mkv",
                       codec="ffv1", rate=rate).path
    for op, params, expected in (("refine", {"strength": 0.6}, 13), ("inpaint", {"mask": mask}, 13),
                                 ("extend", {"frames": 7}, 20)):
        job = client.wait(client.submit(_diffusers(submit_request(timeline, "A", op, **params))).job_id)
        assert job.state == pb.SUCCEEDED, job.error
        info = probe(job.take.media.url)
        assert info.frame_count == expected and info.rate == rate and (info.width, info.height) == (64, 48)
        assert info.start_timecode == "01:00:00:00"
        manifest = json.loads(Path(job.take.manifest_url).read_text())
        assert manifest["resolution"]["generated"] == {"width": 32, "height": 32, "rate": "16"}
        assert manifest["resolution"]["delivered"]["width"] == 64 and manifest["resolution"]["upscaled"] is True
        assert manifest["backend"]["name"] == "diffusers" and manifest["backend"]["model"].startswith("tiny-")
        assert len(manifest["backend"]["weights_sha256"]) == 64 and manifest["generator"].startswith("torch.Generator")


def test_inpaint_keeps_every_pixel_outside_the_mask_with_and_without_feather(gen_server, write_media, tmp_path):
    client, _runtime = gen_server
    media, masks, timeline = _clip(write_media, Fraction(24))
    mask = write_movie(np.repeat(masks[..., None] * np.uint8(255), 3, axis=-1), tmp_path / "mask.mkv",
                       codec="ffv1", rate=Fraction(24)).path
    source = read_frames(media, 0, 12)
    for feather in (0, 3):
        job = client.wait(client.submit(_diffusers(submit_request(timeline, "A", "inpaint", mask=mask),
                                                   mask_feather_px=feather)).job_id)
        take = read_frames(job.take.media.url, 0, 12)
        outside = ~masks
        assert np.array_equal(take[outside], source[outside]), f"feather {feather}: pixels outside the mask changed"
        assert np.abs(take[masks].astype(int) - source[masks].astype(int)).mean() > 1, "nothing was generated"


def test_same_seed_same_pixels_other_seed_other_pixels(gen_server, write_media):
    client, _runtime = gen_server
    _media, _masks, timeline = _clip(write_media, Fraction(25))
    takes = []
    for seed in (5, 5, 6):
        job = client.wait(client.submit(_diffusers(submit_request(timeline, "A", "extend", frames=6, seed=seed))).job_id)
        takes.append(read_frames(job.take.media.url, 0, 18))
    assert np.array_equal(takes[0], takes[1])
    assert not np.array_equal(takes[0][12:], takes[2][12:])
    assert np.array_equal(takes[0][:12], takes[2][:12]), "the source part of an extension is the source's"


def test_cancel_stops_within_one_denoising_step(gen_server, write_media, tiny_profile):
    # in the backend: the callback after the cancel is the last one
    import threading

    from server.backends.base import Cancelled, Spec
    from server.backends.diffusers.backend import DiffusersBackend

    backend = DiffusersBackend(read_profiles(tiny_profile), "cpu")
    frames, _, _ = moving_object_clip(12, 48, 64, seed=1)
    cancel, calls = threading.Event(), []

    def progress(done, total, preview):
        calls.append(done)
        if done == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        backend.run("extend", frames, Spec(op="extend", rate=Fraction(24), extend_frames=200), progress, cancel)
    assert calls[-1] == 3, f"steps ran after the cancel: {calls}"
    # through the server: the job ends CANCELLED long before its planned steps
    client, runtime = gen_server
    _media, _masks, timeline = _clip(write_media, Fraction(24))
    job = client.submit(_diffusers(submit_request(timeline, "A", "extend", frames=240)))
    for event in client.watch(job.job_id):
        if event.WhichOneof("kind") == "progress" and event.progress.stage == "generate" and event.progress.step >= 2:
            client.cancel(job.job_id)
            break
    final = client.wait(job.job_id)
    assert final.state == pb.CANCELLED and not final.take.take_id
    progress = [e.progress for e in runtime.store.events_after(job.job_id, 0, False)
                if e.WhichOneof("kind") == "progress" and e.progress.stage == "generate"]
    assert max(p.total for p in progress) > max(p.step for p in progress)


def test_unsafe_model_folders_are_refused(tiny_profile, tmp_path, capsys):
    profiles = {p.id: p for p in read_profiles(tiny_profile)}
    vace = profiles["tiny-wan-vace"]
    pickled = tmp_path / "pickled"
    shutil.copytree(vace.folder, pickled)
    (pickled / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelError, match=r"transformer/diffusion_pytorch_model.bin is a pickle checkpoint") as err:
        check_folder(vace.__class__(**{**vace.__dict__, "folder": pickled}))
    assert err.value.code == "unsafe_weights"
    coded = tmp_path / "coded"
    shutil.copytree(vace.folder, coded)
    (coded / "pipeline.py").write_text("print('hi')\n")
    with pytest.raises(ModelError, match="pipeline.py is code shipped with the model") as err:
        check_folder(vace.__class__(**{**vace.__dict__, "folder": coded}))
    assert err.value.code == "remote_code"
    mapped = tmp_path / "mapped"
    shutil.copytree(vace.folder, mapped)
    config = json.loads((mapped / "transformer" / "config.json").read_text())
    (mapped / "transformer" / "config.json").write_text(json.dumps({**config, "auto_map": {"x": "y.Z"}}))
    with pytest.raises(ModelError, match="asks for custom code"):
        check_folder(vace.__class__(**{**vace.__dict__, "folder": mapped}))
    # `models verify` says so and exits 1
    data = json.loads(tiny_profile.read_text())
    for model in data["models"]:
        model["folder"] = str(tiny_profile.parent / model["folder"])
    data["models"][0]["folder"] = str(pickled)
    bad_profile = tmp_path / "bad.json"
    bad_profile.write_text(json.dumps(data))
    code = main(["models", "verify", "--profile", str(bad_profile), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["models"][0]["code"] == "unsafe_weights" and out["models"][1]["ok"]


def test_conform_rules():
    assert conform.model_size(1920, 1080, (832, 480), 16) == (848, 480)   # 16:9 at about the native area
    assert conform.model_size(640, 360, (832, 480), 16) == (640, 352)
    assert [conform.valid_length(n, 4) for n in (1, 2, 5, 6, 17, 18)] == [1, 5, 5, 9, 17, 21]
    assert conform.valid_length(30, 8) == 33
    picks = conform.to_model_times(24, Fraction(24), 16.0)
    assert len(picks) == 16 and picks[:4] == [0, 2, 3, 4]
    back = conform.from_model_times(24, Fraction(24), 16.0, 16)
    assert len(back) == 24 and back[-1] == 15
    windows = conform.chunks(40, 17, 4, 4)
    assert windows[0] == (0, 17) and windows[-1] == (23, 40) and all(b - a <= 17 for a, b in windows)
    pieces = [(0, np.zeros((17, 2, 2, 3), np.uint8)), (13, np.full((17, 2, 2, 3), 200, np.uint8))]
    ramp = conform.join_chunks(pieces, 30, match=False)
    assert ramp[12, 0, 0, 0] == 0 and ramp[17, 0, 0, 0] == 200 and 0 < ramp[14, 0, 0, 0] < 200
    # matched to the first chunk over their overlap, the second chunk takes its colour: no step, no drift
    seams = []
    held = conform.join_chunks(pieces, 30, seams)
    assert int(held.max()) == 0 and seams[0]["delta_e_before"] > 50 and seams[0]["delta_e_after"] < 0.5


@pytest.mark.parametrize("op", ["refine", "inpaint"])
def test_streaming_gives_the_pixels_of_the_whole_range_call_with_bounded_holding(tiny_profile, op):
    """40 frames at 24 fps are 27 model frames at 16 fps: two windows of 17 with a cross-fade.
    Frame by frame through stream() the pixels are those of run() on the whole range, and the
    output starts before the input ends (the first window's frames leave once it has run)."""
    import threading
    from server.backends.base import Spec
    from server.backends.diffusers.backend import DiffusersBackend
    from server.backends.diffusers.loading import read_profiles

    backend = DiffusersBackend(read_profiles(tiny_profile), "cpu")
    video, masks, _ = moving_object_clip(40, 48, 64, seed=5)
    model = next(p.id for p in backend.profiles.values()
                 if op in p.operations and (op == "refine" or p.pipeline == "wan_vace"))

    def spec():
        return Spec(op=op, rate=Fraction(24), seed=11, strength=0.6, model=model,
                    mask=masks if op == "inpaint" else None)
    whole = backend.run(op, video, spec(), lambda *a: None, threading.Event())
    consumed, first_out_after = [0], []

    def frames():
        for frame in video:
            consumed[0] += 1
            yield frame
    streamed = []
    for out in backend.stream(op, frames(), iter(masks) if op == "inpaint" else None, spec(),
                              lambda *a: None, threading.Event(), len(video)):
        first_out_after.append(consumed[0])
        streamed.append(out)
    assert len(streamed) == 40 and np.array_equal(np.stack(streamed), whole)
    assert first_out_after[0] < 40, "frames leave before the whole range is read"
    assert all(seen >= k + 1 for k, seen in enumerate(first_out_after)), "output k never leaves before input k"


def test_ltx_refines_and_extends_and_vace_takes_reference_images(gen_server, write_media, tmp_path):
    client, _runtime = gen_server
    media, masks, timeline = _clip(write_media, Fraction(25))
    for op, params, expected in (("refine", {"strength": 0.5}, 12), ("extend", {"frames": 5, "side": "head"}, 17)):
        request = _diffusers(submit_request(timeline, "A", op, **params))
        request.model = "tiny-ltx-condition"
        job = client.wait(client.submit(request).job_id)
        assert job.state == pb.SUCCEEDED, job.error
        assert probe(job.take.media.url).frame_count == expected and job.take.model == "tiny-ltx-condition"
    import cv2

    hero = tmp_path / "hero.png"
    cv2.imwrite(str(hero), np.full((40, 30, 3), 90, np.uint8))
    mask = write_movie(np.repeat(masks[..., None] * np.uint8(255), 3, axis=-1), tmp_path / "mask.mkv",
                       codec="ffv1", rate=Fraction(25)).path
    request = _diffusers(submit_request(timeline, "A", "inpaint", mask=mask))
    request.contract.reference_images.add(url=str(hero), role="character", name="hero")
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    manifest = json.loads(Path(job.take.manifest_url).read_text())
    assert manifest["request"]["contract"]["reference_images"][0]["role"] == "character"
    request = _diffusers(submit_request(timeline, "A", "inpaint", mask=mask))
    request.contract.reference_images.add(url=str(tmp_path / "missing.png"), role="character")
    from bridge.client import ClientError

    with pytest.raises(ClientError, match="reference image .*missing.png not found"):
        client.submit(request)
    request = _diffusers(submit_request(timeline, "A", "inpaint", mask=mask))
    request.model = "tiny-wan-v2v"
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.FAILED and job.error_code == "model_cannot" and "not inpaint" in job.error


def test_the_gpu_benchmark_script_runs_on_tiny_configurations(tmp_path):
    """bench/gpu_bench.py is meant for an H100; its --tiny mode keeps the code path honest in CI."""
    import subprocess
    import sys

    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "bench/gpu_bench.py", "--tiny", "--device", "cpu", "--steps", "3",
                           "--repeats", "1", "--out", str(out)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert [r["pipeline"] for r in data["results"]] == ["wan_vace", "wan_v2v", "ltx_condition"]
    assert all(r["plain"]["step_seconds_median"] > 0 and r["server"]["job_seconds_median"] > 0 for r in data["results"])
    assert "random weights" in data["note"]


def test_warm_pipelines_are_kept_and_the_least_recently_used_unloaded_for_room(monkeypatch, tiny_profile):
    from server.backends.diffusers import loading

    loads = []
    monkeypatch.setattr(loading, "load_pipeline", lambda profile, device: loads.append(profile.id) or object())
    profiles = read_profiles(tiny_profile)
    for p in profiles:
        p.memory_gb = 3.0
    cache = loading.PipelineCache("cpu", budget_gb=7.0)
    a, b, c = profiles[:3]
    first = cache.get(a)
    assert cache.get(a) is first and loads == [a.id]          # warm: not loaded twice
    cache.get(b)
    cache.get(a)                                              # a is now the most recently used
    cache.get(c)                                              # 9 GB > 7: b goes
    assert cache.loaded() == [a.id, c.id] and loads == [a.id, b.id, c.id]


def test_degrade_halves_the_denoising_steps_of_a_generative_job(gen_server, write_media):
    client, runtime = gen_server
    backend = runtime.backends["diffusers"]
    for profile in backend.profiles.values():
        profile.cost_per_megapixel_frame_step = 1250.0   # pretend the model is very slow
    _media, _masks, timeline = _clip(write_media, Fraction(24))
    request = _diffusers(submit_request(timeline, "A", "refine", strength=1.0))
    # estimate, full: 1250 s * 0.001 MP * 8 model frames * 4 steps = 41 s; half the steps (20 s) fits in
    # 30 s, and the real run (well under a second) never meets the stop trigger
    request.contract.budget.max_compute_seconds = 30.0
    request.contract.fallback = pb.DEGRADE
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    assert any("half the denoising steps" in f for f in job.take.flags)
    steps = [e.progress.total for e in runtime.store.events_after(job.job_id, 0, False)
             if e.WhichOneof("kind") == "progress" and e.progress.stage == "generate"]
    assert max(steps) == 2, "the tiny refine profile has 4 steps: DEGRADE ran 2"
    request = _diffusers(submit_request(timeline, "A", "refine", strength=1.0))
    request.contract.budget.max_compute_seconds = 30.0
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.FAILED and job.error_code == "over_budget" and job.error.startswith("estimated")


def test_a_10bit_prores_source_through_the_model_keeps_its_depth_outside_the_mask(gen_server, write_media, tmp_path):
    """The model sees 8 bits at its boundary; the take is 10-bit ProRes again and, with FFV1,
    every sample outside the mask is the source's own."""
    from server.media.decode import iter_pictures
    from server.media.pixels import align_mask, plane_masks
    client, _runtime = gen_server
    video, masks, _ = moving_object_clip(9, 48, 64, seed=4)
    deep = video.astype(np.uint16) * 257 + 100          # values no 8-bit pipeline could make
    media = write_movie(deep, tmp_path / "deep.mov", codec="prores", rate=Fraction(24),
                        start_timecode="01:00:00:00").path
    mask = write_movie(np.repeat(masks[..., None] * np.uint8(255), 3, axis=-1), tmp_path / "mask.mkv",
                       codec="ffv1", rate=Fraction(24)).path
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=9, clip_in=0, clip_frames=9)
    job = client.wait(client.submit(_diffusers(submit_request(timeline, "A", "inpaint", mask=mask,
                                                              codec=pb.FFV1))).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    assert probe(job.take.media.url).pix_fmt == "yuv422p10le"
    aligned = align_mask(masks.astype(bool), (2, 1))
    pairs = zip(iter_pictures(media, 0, 9, depth=16), iter_pictures(job.take.media.url, 0, 9, depth=16))
    for i, ((_, a), (_, b)) in enumerate(pairs):
        for pa, pb_, m in zip(a.planes, b.planes, plane_masks(aligned[i], a)):
            assert np.array_equal(pa[~m], pb_[~m])


def test_a_log_source_goes_through_the_models_working_space_and_back(gen_server, tmp_path):
    """A LogC4 plate with the contract saying so: the model works in sRGB-encoded Rec.709, the
    take comes back in LogC4 code values at 10 bits, the manifest states both transforms and the
    color_clip gate measured what the model space could not hold."""
    pytest.importorskip("PyOpenColorIO")
    from support.colour import log_frames
    client, _runtime = gen_server
    media = write_movie(log_frames("ARRI LogC4", n=9), tmp_path / "logc.mov", codec="prores", rate=Fraction(24),
                        start_timecode="01:00:00:00").path
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=9, clip_in=0, clip_frames=9)
    request = _diffusers(submit_request(timeline, "A", "refine", strength=0.5, codec=pb.FFV1))
    request.contract.color.input_space = "ARRI LogC4"
    job = client.wait(client.submit(request).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    manifest = json.loads(Path(job.take.manifest_url).read_text())
    transform = manifest["pixels"]["color_transform"]
    assert transform["input_space"] == "ARRI LogC4" and transform["model_space"].startswith("sRGB Encoded Rec.709")
    assert transform["forward"] == "ARRI LogC4 -> sRGB Encoded Rec.709 (sRGB)"
    assert 0.0 <= transform["clipped_in_share"] < 0.05
    gate = next(g for g in manifest["gates"] if g["name"] == "color_clip")
    assert gate["verdict"] in ("pass", "flag") and gate["value"] == pytest.approx(
        max(transform["clipped_in_share"], transform["saturated_out_share"]), abs=1e-6)
    take = read_frames(job.take.media.url, 0, 9, depth=16)
    source = read_frames(media, 0, 9, depth=16)
    # still log-encoded: its levels sit where the plate's do, not where a display picture's would
    assert abs(float(take.mean()) - float(source.mean())) < 0.1 * float(source.mean())
    assert probe(job.take.media.url).pix_fmt == "yuv422p10le"


@pytest.mark.parametrize("model,modes", [("tiny-wan-vace", ("text", "image", "keyframes", "references")),
                                         ("tiny-ltx-condition", ("text", "image", "keyframes")),
                                         ("tiny-wan-t2v", ("text",)), ("tiny-wan-i2v", ("image",)),
                                         ("tiny-wan-flf2v", ("keyframes",))])
def test_generate_in_every_mode_fills_the_gap_exactly(gen_server, write_media, tmp_path, model, modes):
    """Generate through the real server with each tiny pipeline that can: the shot has exactly
    the gap's frames at the timeline's rate (23.976, which no model has) and size; a shot longer
    than one model call (40 frames: 27 model frames at 16 fps, 17 a call) is made in calls that
    continue each other; the manifest names the model and mode."""
    import cv2
    import opentimelineio as otio

    from bridge import previs
    from bridge.request import JobOptions, Reference, build_request

    client, _runtime = gen_server
    rate = Fraction(24000, 1001)
    video, _, _ = moving_object_clip(24, 48, 64, seed=2)
    media = write_media("obj", video, rate=rate, timecode="01:00:00:00")
    start = from_timecode("01:00:00:00", rate)
    # text-to-video cannot continue a call, nor first-last-frame place its last frame past one: one call's worth
    length = 16 if model in ("tiny-wan-t2v", "tiny-wan-flf2v") else 40
    timeline = make_timeline(media, rate=rate, media_start=start, media_frames=24, clip_in=0, clip_frames=8,
                             gap_after=length, next_clip=8)
    board = tmp_path / "board.png"
    cv2.imwrite(str(board), video[5][..., ::-1])
    for mode in modes:
        target = previs.find_gap(timeline, 1, start + 8, start + 8 + length, shot=f"gen_{mode}")
        options = JobOptions(op="generate", mode=mode, backend="diffusers", model=model, seed=3, codec="lossless",
                             prompt="a red car", width=64, height=48, image=str(board) if mode == "image" else "",
                             keyframes="auto" if mode == "keyframes" else "",
                             references=[Reference(str(board), "character")] if mode == "references" else [])
        request = build_request(previs.export_gap(timeline, target), options, client="t", keyframes=target.keyframes)
        job = client.wait(client.submit(request).job_id)
        assert job.state == pb.SUCCEEDED, (mode, job.error)
        info = probe(job.take.media.url)
        assert (info.frame_count, info.rate, info.width, info.height) == (length, rate, 64, 48), mode
        manifest = json.loads(Path(job.take.manifest_url).read_text())
        assert manifest["generate"]["mode"] == mode and manifest["generate"]["kind"] == "model"
        assert manifest["backend"]["model"] == model and manifest["resolution"]["generated"]["rate"] == \
            str(16 if "wan" in model else 24)
        gates = {g["name"]: g["verdict"] for g in manifest["gates"]}
        assert gates["conformance"] == "pass" and gates["previs"] == "pass"
    if model == "tiny-wan-t2v":      # a text-to-video model takes no board, nor a shot past one call
        for image, first, end, why in ((str(board), 8, 24, "takes no picture"),
                                       ("", 32, 72, "makes at most 17 frames in one call")):
            target = previs.find_gap(timeline, 1, start + first, start + end, shot="t2v_refused")
            options = JobOptions(op="generate", backend="diffusers", model=model, image=image, codec="lossless",
                                 keyframes="", width=64, height=48)
            job = client.wait(client.submit(build_request(previs.export_gap(timeline, target), options,
                                                          client="t")).job_id)
            assert job.state == pb.FAILED and why in job.error and "VACE" in job.error, job.error
    assert isinstance(timeline, otio.schema.Timeline)


class _Tinted:
    """A pipeline whose every call comes out redder than the one before (the colour drift users
    of open video models see where chunks join), around a real tiny pipeline: the tint goes on
    the decoded frames, whether the pipeline decodes them or TakeBridge does from the latents."""

    def __init__(self, pipe, step: float):
        self.pipe, self.step, self.calls = pipe, step, 0
        tinted = self

        class Processor:
            def postprocess_video(self, video, output_type="np"):
                return tinted._tint(pipe.video_processor.postprocess_video(video, output_type=output_type))
        self.video_processor = Processor()

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def _tint(self, frames):
        frames = np.asarray(frames, np.float32).copy()
        frames[..., 0] = np.clip(frames[..., 0] + self.step * (self.calls - 1), 0, 1)
        return frames

    def __call__(self, *args, **kwargs):
        self.calls += 1
        out = self.pipe(*args, **kwargs)
        if kwargs.get("output_type") != "latent":
            out.frames = [self._tint(out.frames[0])]
        return out


@pytest.mark.parametrize("op", ["extend", "refine"])
def test_chunks_are_held_to_the_first_chunks_colour(tiny_profile, op):
    """A pipeline tinted +40 levels of red per call: every join is colour-matched over its
    overlap to what was already delivered (so to the first chunk), the drift before and after
    is recorded, and the delivered chunks do not step redder."""
    import threading

    from server.backends.base import Spec
    from server.backends.diffusers.backend import DiffusersBackend

    backend = DiffusersBackend(read_profiles(tiny_profile), "cpu")
    model = "tiny-wan-vace" if op == "extend" else "tiny-wan-v2v"
    real = backend.cache.get(next(p for p in backend.profiles.values() if p.id == model))
    tinted = _Tinted(real, 40 / 255)
    backend.cache.get = lambda profile: tinted
    frames, _, _ = moving_object_clip(48, 48, 64, seed=3)
    spec = Spec(op=op, rate=Fraction(16), seed=2, strength=0.7, extend_frames=40, model=model)
    out = backend.run(op, frames if op == "refine" else frames[:12], spec, lambda *a: None, threading.Event())
    seams = spec.info["seams"]
    assert tinted.calls >= 3 and len(seams) == tinted.calls - (0 if op == "extend" else 1), seams
    assert all(s["delta_e_before"] > 3 and s["delta_e_after"] < 0.5 for s in seams[1:]), seams
    # the delivered frames: each chunk's red against the first chunk's, not 40, 80, 120 levels more
    chunk = len(out) // tinted.calls
    reds = [float(out[i * chunk:(i + 1) * chunk, ..., 0].mean()) for i in range(tinted.calls)]
    assert max(reds) - min(reds) < 20, reds


def test_a_generative_take_records_what_changes_its_bits_and_rerenders_identical_on_the_same_device(
        gen_server, write_media, tiny_profile):
    """The manifest's determinism section (torch, CUDA/cuDNN, device, dtypes, attention, compile,
    caches, quantisation, deterministic flags, cuBLAS workspace); a re-render on this CPU, from
    the manifest and the profile, is identical pixel for pixel, and names nothing changed."""
    from server.rerender import rerender

    client, _runtime = gen_server
    _media, _masks, timeline = _clip(write_media, Fraction(24))
    job = client.wait(client.submit(_diffusers(submit_request(timeline, "A", "extend", frames=6, seed=9))).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    manifest = json.loads(Path(job.take.manifest_url).read_text())
    det = manifest["determinism"]
    assert det["device"] == "cpu" and det["dtype"] == "float32" and det["torch"]
    for key in ("attention_backend", "compile", "cache", "quantization", "deterministic_algorithms",
                "cudnn_deterministic", "cudnn_benchmark", "tf32", "CUBLAS_WORKSPACE_CONFIG"):
        assert key in det, key
    again = rerender(Path(job.take.manifest_url), verify=True, models=tiny_profile, device="cpu")
    assert again["verdict"] == "identical" and again["determinism_changed"] == [] and not again["weights_changed"]


def test_serve_deterministic_sets_and_records_the_flags(tmp_path, write_media, tiny_profile):
    """`takebridge serve --deterministic` (its own process: the settings are process-wide)."""
    import subprocess

    from support.servers import ENV, TAKEBRIDGE, free_port, stop

    proc = subprocess.Popen([*TAKEBRIDGE, "--log-level", "warning", "serve", "--port", str(free_port()), "--store",
                             str(tmp_path / "store"), "--models", str(tiny_profile), "--device", "cpu",
                             "--deterministic", "--json"], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        address = json.loads(proc.stdout.readline())["address"]
        _media, _masks, timeline = _clip(write_media, Fraction(24))
        with GenerationClient(address) as client:
            job = client.wait(client.submit(_diffusers(submit_request(timeline, "A", "refine", strength=0.5))).job_id)
        assert job.state == pb.SUCCEEDED, job.error
        det = json.loads(Path(job.take.manifest_url).read_text())["determinism"]
        assert det["deterministic_algorithms"] is True and det["cudnn_deterministic"] is True
        assert det["cudnn_benchmark"] is False and det["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert det["tf32"] == {"matmul": False, "cudnn": False}
    finally:
        stop(proc)


def test_the_vae_decode_is_planned_and_a_decode_out_of_memory_is_retried_tiled_from_saved_latents(
        tiny_profile, tmp_path):
    """The memory plan counts the decode (the last step, after minutes of denoising): full when
    it fits, tiled when only that fits, refused when neither. A decode that still runs out of
    memory is retried tiled from the latents saved before it, without denoising again: the same
    pixels, one pipeline call."""
    import threading

    import torch

    from server.backends.base import Spec
    from server.backends.diffusers.backend import DiffusersBackend, decode_gb, decode_plan

    assert decode_plan(free_gb=20, denoise_gb=10, full_gb=12, tiled_gb=1.5) == "full"
    assert decode_plan(free_gb=11, denoise_gb=10, full_gb=12, tiled_gb=1.5) == "tiled"
    assert decode_plan(free_gb=9, denoise_gb=10, full_gb=12, tiled_gb=1.5) == "refuse"
    assert round(decode_gb((832, 480), 81), 1) == 9.0 and decode_gb((832, 480), 81, tiled=True) == 1.5

    def run(fail_once: bool):
        backend = DiffusersBackend(read_profiles(tiny_profile), "cpu")
        profile = next(p for p in backend.profiles.values() if p.id == "tiny-wan-t2v")
        pipe = backend.cache.get(profile)
        calls, decode = [], pipe.vae.decode

        def flaky(*args, **kwargs):
            if fail_once and not calls:
                calls.append("oom")
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            calls.append("ok")
            return decode(*args, **kwargs)
        pipe.vae.decode = flaky
        counted = []
        real_call = type(pipe).__call__
        type(pipe).__call__ = lambda self, *a, **k: (counted.append(1), real_call(self, *a, **k))[1]
        try:
            spec = Spec(op="generate", rate=Fraction(16), seed=4, model="tiny-wan-t2v", scratch=tmp_path / "job",
                        generate={"mode": "text", "frames": 9, "width": 32, "height": 32})
            out = backend.run("generate", np.zeros((0, 32, 32, 3), np.uint8), spec, lambda *a: None,
                              threading.Event())
        finally:
            type(pipe).__call__ = real_call
            pipe.vae.decode = decode
        return out, spec.info["decode"], calls, len(counted)

    plain, plain_info, _, plain_calls = run(False)
    retried, info, decodes, pipe_calls = run(True)
    assert plain_info == {"plan": "full", "latents_saved": True}
    assert info["retried_tiled_after_out_of_memory"] is True and info["plan"] == "tiled"
    assert decodes == ["oom", "ok"] and pipe_calls == plain_calls == 1, "denoised once, decoded twice"
    assert np.array_equal(retried, plain)
    assert not list((tmp_path / "job").glob("latents-*")), "the saved latents are removed once decoded"


def test_a_draft_take_then_the_final_from_it(gen_server, write_media, tiny_profile):
    """Draft: the model's few steps, recorded on the take and in its manifest; the final from
    that draft: the same request and seed at full steps, recorded as promoted from the draft; the
    report counts it. A final made from a take that is not a draft, or from no take, is refused."""
    from google.protobuf import json_format

    from bridge.client import ClientError, new_request_id
    from server.report import build_report

    client, runtime = gen_server
    _media, _masks, timeline = _clip(write_media, Fraction(24))
    request = _diffusers(submit_request(timeline, "A", "refine", strength=0.6, seed=21))
    request.tier = pb.TIER_DRAFT
    draft = client.wait(client.submit(request).job_id)
    assert draft.state == pb.SUCCEEDED, draft.error
    assert draft.take.tier == pb.TIER_DRAFT
    manifest = json.loads(Path(draft.take.manifest_url).read_text())
    assert manifest["tier"] == {"asked": "draft", "tier": "draft", "steps": 1, "guidance_scale": 1.0,
                                "promoted_from": None}

    final_request = json_format.ParseDict(manifest["request"], pb.SubmitJobRequest(), ignore_unknown_fields=True)
    final_request.request_id, final_request.tier, final_request.promoted_from = \
        new_request_id(), pb.TIER_FINAL, draft.take.take_id
    final = client.wait(client.submit(final_request).job_id)
    assert final.state == pb.SUCCEEDED, final.error
    assert final.take.tier == pb.TIER_FINAL and final.take.promoted_from == draft.take.take_id
    assert final.take.seed == draft.take.seed == 21
    final_manifest = json.loads(Path(final.take.manifest_url).read_text())
    assert final_manifest["tier"]["steps"] == 4 and final_manifest["tier"]["promoted_from"] == draft.take.take_id
    assert not np.array_equal(read_frames(final.take.media.url, 0, 12), read_frames(draft.take.media.url, 0, 12))

    for promoted_from, match in ((final.take.take_id, "is not a draft"), ("A_v999", "no take 'A_v999'")):
        bad = json_format.ParseDict(manifest["request"], pb.SubmitJobRequest(), ignore_unknown_fields=True)
        bad.request_id, bad.promoted_from = new_request_id(), promoted_from
        with pytest.raises(ClientError, match=match):
            client.submit(bad)
    tiers = build_report(runtime.store_dir)["tiers"]
    assert tiers == {"draft": 1, "final": 1, "finals_from_drafts": 1, "drafts_promoted": 1}


def test_draft_and_final_from_the_command_line(tmp_path, write_media, tiny_profile):
    """`submit --tier draft`, then `submit --final-from DRAFT_ID`: the final is another take of the
    same clip, at full steps, promoted from the draft."""
    import subprocess

    import opentimelineio as otio

    from bridge.takes import list_takes
    from support.servers import ENV, TAKEBRIDGE, cli, free_port, stop

    proc = subprocess.Popen([*TAKEBRIDGE, "--log-level", "warning", "serve", "--port", str(free_port()), "--store",
                             str(tmp_path / "store"), "--models", str(tiny_profile), "--device", "cpu", "--json"],
                            stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        address = json.loads(proc.stdout.readline())["address"]
        _media, _masks, timeline = _clip(write_media, Fraction(24))
        otio.adapters.write_to_file(timeline, str(tmp_path / "edit.otio"))
        draft = json.loads(cli("submit", "--server", address, "--op", "refine", "--backend", "diffusers", "--tier",
                               "draft", "--timeline", str(tmp_path / "edit.otio"), "--clip", "A", "--codec", "lossless",
                               "--wait", "--out", str(tmp_path / "draft.otio"), "--json").stdout)
        final = json.loads(cli("submit", "--server", address, "--final-from", draft["take_id"], "--op", "refine",
                               "--timeline", str(tmp_path / "draft.otio"), "--wait", "--out",
                               str(tmp_path / "final.otio"), "--json").stdout)
        assert final["promoted_from"] == draft["take_id"] and final["take_id"] != draft["take_id"]
        rows = [(r.take_id, r.active) for r in list_takes(otio.adapters.read_from_file(str(tmp_path / "final.otio")))
                if r.clip == "A" and r.take_id]
        assert rows == [(draft["take_id"], False), (final["take_id"], True)]
        assert json.loads(Path(final["manifest"]).read_text())["tier"]["tier"] == "final"
        refused = cli("submit", "--server", address, "--final-from", final["take_id"], "--op", "refine",
                      "--timeline", str(tmp_path / "final.otio"), "--wait", check=False)
        assert refused.returncode == 2 and "is not a draft" in refused.stderr
    finally:
        stop(proc)


def test_a_refine_with_handles_over_several_chunks_gets_its_colour_gate(gen_server, write_media):
    """Found by an editor test: a chunked refine with handles once crashed the color_drift gate."""
    client, _runtime = gen_server
    video, _, _ = moving_object_clip(40, 48, 64, seed=4)
    media = write_media("obj", video, rate=Fraction(24), timecode="01:00:00:00")
    timeline = make_timeline(media, rate=24, media_start=86400, media_frames=40, clip_in=2, clip_frames=36)
    job = client.wait(client.submit(_diffusers(submit_request(timeline, "A", "refine", strength=0.6,
                                                              handles=2))).job_id)
    assert job.state == pb.SUCCEEDED, job.error
    gates = {g["name"]: g for g in json.loads(Path(job.take.manifest_url).read_text())["gates"]}
    assert gates["color_drift"]["verdict"] in ("pass", "flag") and gates["color_drift"]["value"] is not None
