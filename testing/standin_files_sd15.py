"""Tiny stand-ins for the single files ComfyUI users keep: a Stable Diffusion 1.5 all-in-one checkpoint
(``models/checkpoints``) and an original-layout AnimateDiff v3 motion module (``models/animatediff_models``).

The checkpoint is written in the layout of the released files (``model.diffusion_model.*``,
``first_stage_model.*``, ``cond_stage_model.transformer.text_model.*`` and the training wrapper's noise
schedule buffers), renamed from diffusers models by ``sd15_checkpoint``'s own diffusers → original names (the
ones the loader holds a file's tensors to; checked against ComfyUI's real-size UNet and VAE). The loader reads
them back through diffusers' converter, so a stand-in that loads to exactly the weights it came from checks the
two mappings against each other.

Weights shared with the SD1.5 folder stand-in of ``standin_models``: the UNet is ``tiny_unet2d`` at
``ORIGINAL_MM_BLOCKS`` (the widths the released motion modules' 8 heads and 32 norm groups need; the folder
``write_sd15(folder, blocks=ORIGINAL_MM_BLOCKS)`` holds the same tensors) and the VAE is ``tiny_vae``. The text
encoder is not shared: the folder's tiny vocabulary does not fit the real CLIP tokenizer (49,408 tokens) a
checkpoint is read with, so it has its own. What no tensor records (norm groups, head counts, sample size) the
stand-in states in its header (``UNDECLARED``), so UNet and VAE load to exactly the folder stand-in's models.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..core.families.unet.sd15_checkpoint import TEXT, TEXT_LENGTH, unet_names, vae_names
from ..core.loading.strict_load import CONFIG_METADATA
from . import standin_models

CHECKPOINT = "v1-5-pruned-emaonly.safetensors"
MOTION_MODULE_V3 = "mm_sd_v15_v3.safetensors"
CLIP_VOCAB = 49408


def noise_schedule_buffers(steps: int = 1000) -> dict[str, torch.Tensor]:
    """The DDPM buffers the original training wrapper saves beside the weights (SD's scaled-linear betas)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, steps, dtype=torch.float64) ** 2
    cumulative = torch.cumprod(1 - betas, 0)
    return {"betas": betas.float(), "alphas_cumprod": cumulative.float(),
            "alphas_cumprod_prev": torch.cat([torch.ones(1, dtype=torch.float64), cumulative[:-1]]).float()}


def text_state(text_encoder) -> dict[str, torch.Tensor]:
    """A CLIPTextModel's tensors without the ``text_model.`` level that only some transformers releases have."""
    return {k.removeprefix("text_model."): v for k, v in text_encoder.state_dict().items()
            if not k.endswith("position_ids")}


def checkpoint_state(unet, vae, text_encoder) -> dict[str, torch.Tensor]:
    """The all-in-one checkpoint of three diffusers models, as the released SD1.5 files lay it out."""
    unet_state, vae_state = unet.state_dict(), vae.state_dict()
    state = {original: unet_state[name] for name, original in unet_names(unet).items()}
    for name, original in vae_names(vae).items():
        tensor = vae_state[name]
        if ".mid.attn_1." in original and tensor.dim() == 2:
            tensor = tensor[:, :, None, None]  # 1×1 convolutions in the original VAE
        state[original] = tensor
    state.update({TEXT + "text_model." + k: v for k, v in text_state(text_encoder).items()})
    positions = text_encoder.config.max_position_embeddings
    state[TEXT + "text_model.embeddings.position_ids"] = torch.arange(positions, dtype=torch.int64)[None]
    state.update(noise_schedule_buffers())
    return {k: v.detach().contiguous() for k, v in state.items()}


UNDECLARED = {"unet": ("attention_head_dim", "norm_num_groups", "sample_size"), "vae": ("norm_num_groups",)}
"""The config values no tensor records; a tiny stand-in states its own in the header (strict_load.CONFIG_METADATA),
so that it loads to exactly the model it was written from (a released file carries none: SD1.5's values)."""


def write_checkpoint(path: Path, unet, vae, text_encoder) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    declared = {part: {key: model.config[key] for key in keys}
                for (part, keys), model in zip(UNDECLARED.items(), (unet, vae))}
    save_file(checkpoint_state(unet, vae, text_encoder), path, metadata={CONFIG_METADATA: json.dumps(declared)})
    return path


def tiny_clip_text_encoder(hidden: int = standin_models.CROSS_DIM):
    """A two-layer CLIP text model over the real CLIP vocabulary, so the real tokenizer's ids fit it."""
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(0)
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=CLIP_VOCAB, hidden_size=hidden, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=max(1, hidden // 64), max_position_embeddings=TEXT_LENGTH,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407))


def write_sd15_files(models_dir: str | os.PathLike,
                     vae_blocks=standin_models.WORKFLOW_VAE_BLOCKS) -> list[Path]:
    """``checkpoints/v1-5-pruned-emaonly.safetensors`` and ``animatediff_models/mm_sd_v15_v3.safetensors`` under
    ``models_dir`` (a ComfyUI ``models/`` folder); returns what was written."""
    root = Path(models_dir)
    checkpoint = write_checkpoint(
        root / "checkpoints" / CHECKPOINT, standin_models.tiny_unet2d(standin_models.ORIGINAL_MM_BLOCKS),
        standin_models.tiny_vae(vae_blocks), tiny_clip_text_encoder())
    motion = standin_models.write_original_motion_module(root / "animatediff_models" / MOTION_MODULE_V3, "v3")
    return [checkpoint, motion]
