"""The Wan stand-ins: written under the public folder names, safetensors only, and loadable offline by diffusers'
own WanPipeline with the settings (experts, boundary, per-token timesteps, shift) of the real folders."""
from __future__ import annotations

import json
import socket

import pytest
import torch
from safetensors.torch import load_file

from zeroshot_video.testing import standin_models as models

WAN = {  # name: (class names, boundary_ratio, expand_timesteps, flow_shift, latent channels, px per latent)
    models.WAN21: ({"transformer_2": [None, None]}, None, False, 3.0, 16, 8),
    models.WAN22_A14B: ({"transformer_2": ["diffusers", "WanTransformer3DModel"]}, 0.875, False, 12.0, 16, 8),
    models.WAN22_TI2V: ({"transformer_2": [None, None]}, None, True, 5.0, 48, 16),
}
COMMON = {"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"],
          "vae": ["diffusers", "AutoencoderKLWan"], "text_encoder": ["transformers", "UMT5EncoderModel"],
          "tokenizer": ["transformers", type(models.tiny_wan_tokenizer()).__name__],  # T5TokenizerFast before 5
          "scheduler": ["diffusers", "UniPCMultistepScheduler"]}
WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".msgpack", ".h5", ".gguf"}


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test: the stand-ins must load with nothing but the folder."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access while loading a stand-in")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _load(folder):
    from diffusers import WanPipeline
    return WanPipeline.from_pretrained(folder, local_files_only=True)


@pytest.mark.parametrize("name", list(WAN))
def test_folder_has_public_name_safetensors_only_and_real_settings(models_dir, name):
    folder = models_dir / "diffusers" / name
    classes, boundary, expand, shift, _, _ = WAN[name]
    weights = [p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES]
    experts = 2 if name == models.WAN22_A14B else 1
    assert weights and {p.suffix for p in weights} == {".safetensors"}
    assert len(weights) == 2 + experts  # text encoder, VAE, transformer(s)
    index = json.loads((folder / "model_index.json").read_text())
    assert {k: index[k] for k in (*COMMON, *classes)} == {**COMMON, **classes}
    assert index["boundary_ratio"] == boundary and index["expand_timesteps"] is expand
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert (scheduler["prediction_type"], scheduler["use_flow_sigmas"], scheduler["flow_shift"],
            scheduler["num_train_timesteps"]) == ("flow_prediction", True, shift, 1000)
    tokenizer = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text())
    assert tokenizer["model_max_length"] == models.WAN_MAX_TEXT_TOKENS


def test_a14b_experts_differ(models_dir):
    folder = models_dir / "diffusers" / models.WAN22_A14B
    high = load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors")
    low = load_file(folder / "transformer_2" / "diffusion_pytorch_model.safetensors")
    assert high.keys() == low.keys()
    differing = [k for k in high if not torch.equal(high[k], low[k])]
    assert len(differing) > len(high) // 2  # random layers differ; fixed-init ones (norms, biases) may not


def test_writing_is_deterministic(tmp_path):
    models.write_wan21(tmp_path / "a")
    models.write_wan21(tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_tokenizer_knows_the_prompt_words_and_t5_ids():
    tokenizer = models.tiny_wan_tokenizer()
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    ids = tokenizer("a red panda eating bamboo in a sunny forest, high quality").input_ids
    assert ids[-1] == tokenizer.eos_token_id and tokenizer.unk_token_id not in ids
    assert len(ids) == 13  # one token per word, the comma, </s>
    spelled = tokenizer("a zebra").input_ids  # unknown lower-case words are spelled out, not lost
    assert tokenizer.unk_token_id not in spelled and len(spelled) > 3
    assert tokenizer("a cat").input_ids != tokenizer("a bat").input_ids


@pytest.mark.parametrize("name, size", [(models.WAN21, 16), (models.WAN22_A14B, 16), (models.WAN22_TI2V, 64)])
def test_loads_offline_and_samples_latents(models_dir, no_network, name, size):
    _, boundary, expand, shift, channels, px = WAN[name]
    pipe = _load(models_dir / "diffusers" / name)
    assert pipe.scheduler.config.flow_shift == shift and pipe.config.expand_timesteps is expand
    assert pipe.vae_scale_factor_spatial == px and pipe.transformer.config.in_channels == channels
    # 4 steps at shift 12 put the last step (t = 800) below the A14B boundary (875): both experts run.
    steps = 4 if boundary else 2
    calls = {"transformer": 0, "transformer_2": 0}
    for expert in calls:
        if getattr(pipe, expert) is not None:
            getattr(pipe, expert).register_forward_hook(
                lambda *_, expert=expert: calls.__setitem__(expert, calls[expert] + 1))
    out = pipe(prompt="a red ball rolling across a green meadow", negative_prompt="blurry", height=size,
               width=size, num_frames=5, num_inference_steps=steps, guidance_scale=5.0, output_type="latent",
               generator=torch.Generator().manual_seed(0)).frames
    assert out.shape == (1, channels, 2, size // px, size // px) and torch.isfinite(out).all()
    assert calls == ({"transformer": 6, "transformer_2": 2} if boundary else {"transformer": 4, "transformer_2": 0})


def test_prompt_embeds_match_the_prompt(models_dir, no_network):
    """The pack encodes text itself and passes embeddings; the stand-in must give the same latents both ways."""
    pipe = _load(models_dir / "diffusers" / models.WAN21)
    with torch.no_grad():  # as inside the pipeline: with autograd on, the encoder's kernels differ by ~1e-6
        embeds, negative = pipe.encode_prompt("a cat on the mat", "ugly",
                                              max_sequence_length=models.WAN_MAX_TEXT_TOKENS)
    assert embeds.shape == (1, models.WAN_MAX_TEXT_TOKENS, models.WAN_TEXT_DIM)
    run = dict(height=16, width=16, num_frames=5, num_inference_steps=2, output_type="latent")
    by_text = pipe(prompt="a cat on the mat", negative_prompt="ugly", generator=torch.Generator().manual_seed(0),
                   **run).frames
    by_embeds = pipe(prompt_embeds=embeds, negative_prompt_embeds=negative,
                     generator=torch.Generator().manual_seed(0), **run).frames
    assert torch.equal(by_text, by_embeds)


def test_transformer_takes_real_video_widths(models_dir):
    """832 px wide at 8× and patch 2 is 52 positions along W: beyond diffusers' tiny-test RoPE length (32)."""
    from diffusers import WanTransformer3DModel
    transformer = WanTransformer3DModel.from_pretrained(models_dir / "diffusers" / models.WAN21 / "transformer",
                                                        local_files_only=True)
    latents = torch.randn(1, 16, 1, 2, 832 // 8)
    with torch.no_grad():
        out = transformer(latents, timestep=torch.tensor([500]), encoder_hidden_states=torch.randn(1, 8, 32),
                          return_dict=False)[0]
    assert out.shape == latents.shape and torch.isfinite(out).all()
