"""Wan stand-ins that ComfyUI's own loaders take (UNETLoader, LoraLoaderModelOnly, VAELoader), for the native
MODEL path.

ComfyUI reads a Wan file's sizes from its shapes but fixes what no shape records: 128-wide heads, a 4096-wide text
embedding, a 256-wide frequency embedding. So the transformers here are one 128-wide head, 4096 text features and
tiny everything else (about 2 MB), where ``standin_files_wan``'s (12-wide heads, 32 text features) load only in
the pack's own loader. ComfyUI builds the Wan VAEs at their released widths whatever the file holds, so the VAEs
are full size, random. Every name starts with ``native_`` so the pack's stand-ins of the released names stay.
Nothing here downloads anything.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from ..core.families.wan.files import CONFIGS, vae_comfy_name
from . import standin_files_wan as released
from .standin_files_wan import _save, _umt5_sizes, fp8_scaled, umt5_keeps, umt5_to_comfy, wan_transformer_to_comfy
from .standin_models import tiny_wan_tokenizer

# ComfyUI's released Wan diffusion models name their tensors under model.diffusion_model.
PREFIX = "model.diffusion_model."
LORA_PREFIX = "diffusion_model."  # lightx2v's LoRAs
LORA_RANK = 4
TEXT_DIM = 4096  # ComfyUI's Wan always builds a 4096-wide text embedding
WAN21_FILE = "native_wan2.1_t2v_1.3B_fp16.safetensors"
A14B_HIGH_FILE = "native_wan2.2_t2v_high_noise_14B_fp16.safetensors"
A14B_LOW_FILE = "native_wan2.2_t2v_low_noise_14B_fp16.safetensors"
TI2V_FILE = "native_wan2.2_ti2v_5B_fp16.safetensors"
SKYREELS_DF_FILE = "native_Wan2_1-SkyReels-V2-DF-1_3B-540P_fp16.safetensors"
LORA_HIGH_FILE = "native_wan2.2_t2v_lightx2v_4steps_lora_v1.1_high_noise.safetensors"
LORA_LOW_FILE = "native_wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors"
LORA21_FILE = "native_wan2.1_lora.safetensors"
VAE21_FILE = "native_wan_2.1_vae.safetensors"
VAE22_FILE = "native_wan2.2_vae.safetensors"
UMT5_FILE = "native_umt5_xxl_fp16.safetensors"
# Names the shipped native workflows load that the pack's own stand-ins do not use: Wan 2.1 14B as Comfy-Org's
# repackaged file, and the lightx2v 4-step distill LoRAs (Kijai's rank-32 one for 2.1 14B, ComfyUI's A14B template's).
WAN21_14B_RELEASED = "wan2.1_t2v_14B_fp8_scaled.safetensors"
LORA21_14B_RELEASED = "Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"
LORA_HIGH_RELEASED = "wan2.2_t2v_lightx2v_4steps_lora_v1.1_high_noise.safetensors"
LORA_LOW_RELEASED = "wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors"
# Every linear layer of a block, as lightx2v's LoRAs patch them.
_LORA_TARGET = re.compile(r"blocks\.\d+\.(self_attn\.[qkvo]|cross_attn\.[qkvo]|ffn\.[02])\.weight")


def native_wan_transformer(channels: int = 16, seed: int = 0):
    """A diffusers WanTransformer3DModel of one 128-wide head, ffn 256, two blocks, 4096 text features and the
    real models' norms and RoPE range. Its default initialisation already gives outputs of the input's size."""
    from diffusers import WanTransformer3DModel
    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=1, attention_head_dim=128, in_channels=channels,
        out_channels=channels, text_dim=TEXT_DIM, freq_dim=256, ffn_dim=256, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)


def lightx2v_lora(transformer_state: dict[str, torch.Tensor], seed: int, rank: int = LORA_RANK,
                  strength: float = 0.5) -> dict[str, torch.Tensor]:
    """A rank-``rank`` LoRA on every linear layer of every block, in lightx2v's layout (``diffusion_model.<layer>
    .lora_down/.lora_up.weight`` and ``.alpha``). Each update is ``strength`` times a weight's own size, so it
    changes a tiny model's output measurably (random q/k updates alone do not)."""
    g = torch.Generator().manual_seed(seed)
    lora = {}
    for key, weight in sorted(transformer_state.items()):
        name = key.removeprefix(PREFIX)
        if not _LORA_TARGET.fullmatch(name):
            continue
        out_features, in_features = weight.shape
        layer = LORA_PREFIX + name[:-len(".weight")]
        lora[f"{layer}.lora_down.weight"] = torch.randn(rank, in_features, generator=g) / in_features ** 0.5
        lora[f"{layer}.lora_up.weight"] = torch.randn(out_features, rank, generator=g) * strength / rank ** 0.5
        lora[f"{layer}.alpha"] = torch.tensor(float(rank))
    return {k: v.to(torch.float16) if k.endswith(".weight") else v for k, v in lora.items()}


def wan_vae_shapes(version: str) -> dict[str, tuple[int, ...]]:
    """ComfyUI's name → shape of every tensor of the released Wan 2.1 ("2.1") or 2.2 ("2.2") VAE, read off an
    empty diffusers model at the config the pack ships (no memory, no time)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLWan
    folder = {"2.1": "wan21_vae", "2.2": "wan22_vae"}[version]
    config = {k: v for k, v in json.loads((CONFIGS / folder / "config.json").read_text()).items()
              if not k.startswith("_")}
    with init_empty_weights(include_buffers=False):
        model = AutoencoderKLWan.from_config(config)
    return {vae_comfy_name(name, config): tuple(t.shape) for name, t in model.state_dict().items()}


def full_size_wan_vae(version: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """The released Wan VAE's tensors (``wan_vae_shapes``), random and fp16 as the released files: norms 1,
    biases 0, weights uniform with variance 1/fan-in, so a decode gives finite pixels that vary. Filling the
    tensors one by one is much faster than initialising the 127 M / 705 M-parameter model."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in wan_vae_shapes(version).items():
        if name.endswith("gamma"):
            tensor = torch.ones(shape)
        elif name.endswith("bias"):
            tensor = torch.zeros(shape)
        else:
            bound = (3 / torch.Size(shape[1:]).numel()) ** 0.5
            tensor = torch.empty(shape).uniform_(-bound, bound, generator=g)
        state[name] = tensor.to(torch.float16)
    return state


def native_umt5(seed: int = 0):
    """(UMT5EncoderModel, tokenizer): d_model 4096 to match the transformers' text width, everything else tiny,
    for the pack's own single-file loader (it refuses a text encoder narrower than the transformer's input)."""
    from transformers import UMT5Config, UMT5EncoderModel
    tokenizer = tiny_wan_tokenizer()
    torch.manual_seed(seed)
    model = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=TEXT_DIM, d_kv=8, d_ff=16, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id, dropout_rate=0.0))
    return model, tokenizer


def with_fps_embedding(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """``state`` plus what SkyReels-V2's diffusion-forcing 1.3B adds to Wan 2.1's tensors (``inject_sample_info``:
    an embedding of 2 frame rates and its 6-way modulation projection, in the original layout). ComfyUI loads such a
    file as Wan 2.1 and leaves these unused, for KSampler as for the pack."""
    like = state[PREFIX + "patch_embedding.bias"]
    dim = like.shape[0]
    g = torch.Generator().manual_seed(seed)
    extra = {"fps_embedding.weight": (2, dim), "fps_projection.0.weight": (dim, dim), "fps_projection.0.bias": (dim,),
             "fps_projection.2.weight": (6 * dim, dim), "fps_projection.2.bias": (6 * dim,)}
    return {**state, **{PREFIX + name: (torch.randn(shape, generator=g) * 0.02).to(like.dtype)
                        for name, shape in extra.items()}}


def _write(root: Path, transformers: dict, loras: tuple, encoders: dict, vaes: dict,
           diffusion_forcing: dict | None = None) -> dict[str, Path]:
    """Write the stand-ins a table names under ``root``: ``transformers`` {name: (channels, seed, fp8)}, ``loras``
    ((name, model name, seed), …), ``encoders`` {name: fp8} (the 4096-wide UMT5), ``vaes`` {name: "2.1" | "2.2"},
    ``diffusion_forcing`` {name: model name} (that model's tensors with SkyReels-V2 DF's fps embedding added).
    fp8 files hold fp8_scaled tensors (the old ``scale_weight`` layout ComfyUI writes) made from bf16, the others
    fp16. Returns {file name: path}."""
    states, written = {}, {}
    for name, (channels, seed, fp8) in transformers.items():
        states[name] = wan_transformer_to_comfy(native_wan_transformer(channels, seed), PREFIX,
                                                torch.bfloat16 if fp8 else torch.float16)
        written[name] = _save(fp8_scaled(states[name]) if fp8 else states[name], root / "diffusion_models" / name)
    for name, model_name in (diffusion_forcing or {}).items():
        written[name] = _save(with_fps_embedding(states[model_name], seed=20), root / "diffusion_models" / name)
    for name, model_name, seed in loras:
        written[name] = _save(lightx2v_lora(states[model_name], seed), root / "loras" / name)
    umt5, tokenizer = native_umt5()
    for name, fp8 in encoders.items():
        state = (fp8_scaled(umt5_to_comfy(umt5, tokenizer, torch.bfloat16), keep=umt5_keeps) if fp8
                 else umt5_to_comfy(umt5, tokenizer, torch.float16))
        written[name] = _save(state, root / "text_encoders" / name, _umt5_sizes(umt5))
    for name, version in vaes.items():
        written[name] = _save(full_size_wan_vae(version), root / "vae" / name)
    return written


def write_native_files(models_dir: str | os.PathLike, vaes: bool = True) -> dict[str, Path]:
    """The native stand-ins under ``models_dir`` (a ComfyUI ``models/`` folder): diffusion_models/ (2.1 1.3B,
    2.2 A14B's two experts, 2.2 TI2V 5B, SkyReels-V2 DF 1.3B (2.1 1.3B's weights plus its fps embedding); fp16,
    ``model.diffusion_model.`` names), loras/ (one lightx2v-layout
    LoRA per A14B expert and one for 2.1), text_encoders/ (a 4096-wide UMT5 for the pack's loader) and, with
    ``vaes``, vae/ (full-size 2.1 and 2.2 VAEs: 254 MB and 1.4 GB). Returns {file name: path}."""
    return _write(Path(models_dir),
                  {WAN21_FILE: (16, 0, False), A14B_HIGH_FILE: (16, 0, False), A14B_LOW_FILE: (16, 1, False),
                   TI2V_FILE: (48, 0, False)},
                  ((LORA21_FILE, WAN21_FILE, 10), (LORA_HIGH_FILE, A14B_HIGH_FILE, 11),
                   (LORA_LOW_FILE, A14B_LOW_FILE, 12)),
                  {UMT5_FILE: False}, {VAE21_FILE: "2.1", VAE22_FILE: "2.2"} if vaes else {},
                  {SKYREELS_DF_FILE: WAN21_FILE})


def write_released_files(models_dir: str | os.PathLike, vaes: bool = True) -> dict[str, Path]:
    """The same stand-ins under the released names (Comfy-Org's repackaged files, the lightx2v LoRAs), for a
    ComfyUI whose workflows load them by those names: the tier-2 and browser servers. They replace the pack's own
    Wan single-file stand-ins of the same names (``standin_files_wan``), which ComfyUI's loaders cannot take; the
    pack's loader takes these. fp8 names hold fp8_scaled tensors, fp16 names fp16; ``vaes`` False leaves out the
    full-size VAEs. Returns {file name: path}."""
    return _write(Path(models_dir),
                  {released.WAN21_FILE: (16, 0, False), WAN21_14B_RELEASED: (16, 2, True),
                   released.A14B_HIGH_FILE: (16, 0, True), released.A14B_LOW_FILE: (16, 1, True),
                   released.TI2V_FILE: (48, 0, False)},
                  ((LORA21_14B_RELEASED, WAN21_14B_RELEASED, 13), (LORA_HIGH_RELEASED, released.A14B_HIGH_FILE, 11),
                   (LORA_LOW_RELEASED, released.A14B_LOW_FILE, 12)),
                  {released.UMT5_FILE: False, released.UMT5_FP8_FILE: True},
                  {released.VAE21_FILE: "2.1", released.VAE22_FILE: "2.2"} if vaes else {})
