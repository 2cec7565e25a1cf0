"""`takebridge models make-tiny DIR`: tiny, randomly initialised pipelines built offline.

They have the real pipelines' classes and file layout (model_index.json, safetensors,
tokenizer.json, configs), so tests and demos load them through the same loading code as real
weights, with HF_HUB_OFFLINE=1, in seconds on a CPU. Their pixels mean nothing; their frame,
size and timing rules are those of their configs (the tiny LTX VAE compresses 4x/4x where the
real one does 32x/8x, and the profile written here says so).
"""
from __future__ import annotations

import json
from pathlib import Path

from server.backends.diffusers.loading import weights_hash

WORDS = "a the cat dance monkey negative person walks street car red blue sky tree".split()


def _tokenizer(model_max_length: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=model_max_length)


def _t5(vocab_size: int, *, umt5: bool):
    import torch
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    kw = dict(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
              relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    return (UMT5EncoderModel(UMT5Config(**kw)) if umt5 else T5EncoderModel(T5Config(**kw))).eval()


# the tiny Wan transformer shared by the VACE and video-to-video pipelines (diffusers' test sizes)
TINY_WAN = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
                text_dim=32, freq_dim=256, ffn_dim=32, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                rope_max_seq_len=32)


def _wan_vae():
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def tiny_wan_vace():
    import torch
    from diffusers import (
        UniPCMultistepScheduler,
        WanVACEPipeline,
        WanVACETransformer3DModel,
    )

    tokenizer = _tokenizer(512)
    torch.manual_seed(0)
    vae = _wan_vae()
    torch.manual_seed(0)
    transformer = WanVACETransformer3DModel(**TINY_WAN, num_layers=3, vace_layers=[0, 2], vace_in_channels=96)
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    return WanVACEPipeline(tokenizer=tokenizer, text_encoder=_t5(len(tokenizer), umt5=True), vae=vae,
                           scheduler=scheduler, transformer=transformer, transformer_2=None)


def tiny_wan_v2v():
    import torch
    from diffusers import (
        UniPCMultistepScheduler,
        WanTransformer3DModel,
        WanVideoToVideoPipeline,
    )

    tokenizer = _tokenizer(512)
    torch.manual_seed(0)
    vae = _wan_vae()
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(**TINY_WAN, num_layers=2)
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    return WanVideoToVideoPipeline(tokenizer=tokenizer, text_encoder=_t5(len(tokenizer), umt5=True), vae=vae,
                                   scheduler=scheduler, transformer=transformer)


def tiny_wan_t2v():
    import torch
    from diffusers import UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

    tokenizer = _tokenizer(512)
    torch.manual_seed(0)
    vae = _wan_vae()
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(**TINY_WAN, num_layers=2)
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    return WanPipeline(tokenizer=tokenizer, text_encoder=_t5(len(tokenizer), umt5=True), vae=vae,
                       scheduler=scheduler, transformer=transformer)


def _tiny_wan_i2v(first_last: bool):
    import torch
    from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel

    tokenizer = _tokenizer(512)
    torch.manual_seed(0)
    vae = _wan_vae()
    torch.manual_seed(0)
    # 16 latent + 4 mask + 16 condition channels in; image tokens: a 32x32 CLIP of 1x1 patches (1025
    # a picture); first-last-frame: two pictures' tokens side by side
    transformer = WanTransformer3DModel(**{**TINY_WAN, "in_channels": 36}, num_layers=2, image_dim=4,
                                        pos_embed_seq_len=2 * 1025 if first_last else None)
    torch.manual_seed(0)
    encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2,
                                               num_attention_heads=2, image_size=32, intermediate_size=16,
                                               patch_size=1))
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    return WanImageToVideoPipeline(tokenizer=tokenizer, text_encoder=_t5(len(tokenizer), umt5=True), vae=vae,
                                   scheduler=scheduler, image_processor=CLIPImageProcessorPil(crop_size=32, size=32),
                                   image_encoder=encoder, transformer=transformer)


def tiny_wan_i2v():
    return _tiny_wan_i2v(first_last=False)


def tiny_wan_flf2v():
    return _tiny_wan_i2v(first_last=True)


def tiny_ltx_condition():
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )

    tokenizer = _tokenizer(128)
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
        cross_attention_dim=32, num_layers=2, caption_channels=32)
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1, 1, 1, 1), timestep_conditioning=False,
        patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False)
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return LTXConditionPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                                text_encoder=_t5(len(tokenizer), umt5=False), tokenizer=tokenizer,
                                transformer=transformer)


# id -> (builder, profile entry). Sizes and rates are the tiny configs' own rules.
TINY = {
    "tiny-wan-vace": (tiny_wan_vace, {
        "pipeline": "wan_vace", "operations": ["inpaint", "extend", "generate"], "native_size": [32, 32],
        "size_multiple": 16, "native_fps": 16, "frame_rule": "4k+1", "max_frames": 17, "steps": 2,
        "guidance_scale": 1.0, "dtype": "float32", "vae_dtype": "float32", "memory_gb": 0.1,
        "draft": {"steps": 1, "guidance_scale": 1.0}}),
    "tiny-wan-v2v": (tiny_wan_v2v, {
        "pipeline": "wan_v2v", "operations": ["refine"], "native_size": [32, 32], "size_multiple": 16,
        "native_fps": 16, "frame_rule": "4k+1", "max_frames": 17, "steps": 4, "guidance_scale": 1.0,
        "dtype": "float32", "vae_dtype": "float32", "memory_gb": 0.1, "draft": {"steps": 1, "guidance_scale": 1.0}}),
    "tiny-wan-t2v": (tiny_wan_t2v, {
        "pipeline": "wan_t2v", "operations": ["generate"], "native_size": [32, 32], "size_multiple": 16,
        "native_fps": 16, "frame_rule": "4k+1", "max_frames": 17, "steps": 2, "guidance_scale": 1.0,
        "dtype": "float32", "vae_dtype": "float32", "memory_gb": 0.1}),
    "tiny-wan-i2v": (tiny_wan_i2v, {
        "pipeline": "wan_i2v", "operations": ["generate"], "native_size": [32, 32], "size_multiple": 16,
        "native_fps": 16, "frame_rule": "4k+1", "max_frames": 17, "steps": 2, "guidance_scale": 1.0,
        "dtype": "float32", "vae_dtype": "float32", "memory_gb": 0.1}),
    "tiny-wan-flf2v": (tiny_wan_flf2v, {
        "pipeline": "wan_flf2v", "operations": ["generate"], "native_size": [32, 32], "size_multiple": 16,
        "native_fps": 16, "frame_rule": "4k+1", "max_frames": 17, "steps": 2, "guidance_scale": 1.0,
        "dtype": "float32", "vae_dtype": "float32", "memory_gb": 0.1}),
    "tiny-ltx-condition": (tiny_ltx_condition, {
        "pipeline": "ltx_condition", "operations": ["refine", "extend", "generate"], "native_size": [32, 32],
        "size_multiple": 32, "native_fps": 24, "frame_rule": "4k+1", "max_frames": 17, "steps": 2,
        "guidance_scale": 1.0, "dtype": "float32", "vae_dtype": "float32", "memory_gb": 0.1}),
}


def make_tiny(folder: Path, *, only: list[str] | None = None) -> Path:
    """Build and save the tiny pipelines under `folder`; write `folder/models.json`, a model
    profile naming them (the first model of each operation is its default). Returns its path."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    models = []
    for model_id, (build, entry) in TINY.items():
        if only and model_id not in only:
            continue
        target = folder / model_id
        build().save_pretrained(target, safe_serialization=True)
        models.append({"id": model_id, "folder": model_id, **entry, "weights_sha256": weights_hash(target),
                       "note": "tiny random weights for tests: pixels mean nothing"})
    profile = folder / "models.json"
    profile.write_text(json.dumps({"schema": 1, "models": models}, indent=2) + "\n")
    return profile


def make_hf_cache(folder: Path, cache: Path, *, org: str = "takebridge-tiny") -> Path:
    """The tiny pipelines of `folder` (make_tiny) laid out as the Hugging Face cache lays out
    downloads (models--ORG--ID/blobs/<sha256>, snapshots/<commit>/..., refs/main), and a catalog
    file naming them (for TAKEBRIDGE_CATALOG). Returns the catalog's path."""
    import hashlib
    import os

    profile = json.loads((Path(folder) / "models.json").read_text())
    entries = []
    for model in profile["models"]:
        repo = f"{org}/{model['id']}"
        root = Path(cache) / f"models--{repo.replace('/', '--')}"
        commit = hashlib.sha1(model["weights_sha256"].encode()).hexdigest()
        snapshot = root / "snapshots" / commit
        for source in sorted((Path(folder) / model["folder"]).rglob("*")):
            if not source.is_file():
                continue
            data = source.read_bytes()
            blob = root / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = snapshot / source.relative_to(Path(folder) / model["folder"])
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.exists() or link.is_symlink():
                link.unlink()
            os.symlink(os.path.relpath(blob, link.parent), link)
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / "main").write_text(commit)
        entries.append({"id": model["id"], "repo": repo, "revision": "main", "licence": "test weights",
                        **{k: model[k] for k in ("pipeline", "operations", "native_size", "native_fps", "frame_rule",
                                                  "max_frames", "steps", "guidance_scale", "memory_gb",
                                                  "size_multiple", "dtype", "vae_dtype")},
                        "draft": model.get("draft", {})})
    catalog = Path(cache) / "takebridge-catalog.json"
    catalog.write_text(json.dumps({"models": entries}, indent=2) + "\n")
    return catalog
