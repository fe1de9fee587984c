"""Wan 2.1 / 2.2 from a diffusers folder (``model_index.json`` with transformer[, transformer_2], vae,
text_encoder, tokenizer, scheduler)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ...loading.file_checks import ModelFileError, read_json
from ...loading.parts import diffusers_part, load_tokenizer, transformers_part
from ...schedule import FlowSchedule
from .backbone import WanBackbone


def is_wan_folder(model_dir: Path) -> bool:
    config = model_dir / "transformer" / "config.json"
    try:
        return json.loads(config.read_text()).get("_class_name") == "WanTransformer3DModel"
    except (OSError, ValueError):
        return False


WAN_FOLDER = "a complete Wan diffusers folder"


def load_wan(model_dir: Path, dtype: torch.dtype) -> WanBackbone:
    """A Wan diffusers folder (``model_index.json`` with transformer[, transformer_2], vae, text_encoder,
    tokenizer, scheduler), safetensors only, local files only. The VAE runs in float32, as Wan's own code does."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    index = read_json(model_dir / "model_index.json", WAN_FOLDER)
    scheduler_config = read_json(model_dir / "scheduler" / "scheduler_config.json", WAN_FOLDER)
    shift = scheduler_config.get("flow_shift", scheduler_config.get("shift"))
    if shift is None:
        raise ModelFileError(f"'{model_dir.name}/scheduler/scheduler_config.json' has no flow shift (flow_shift or "
                             "shift): is this a Wan flow-matching folder?")
    transformer = diffusers_part(WanTransformer3DModel, model_dir / "transformer", dtype, "The Wan transformer")
    second = index.get("transformer_2") or [None, None]
    transformer_2 = None
    if second[0] is not None:
        transformer_2 = diffusers_part(WanTransformer3DModel, model_dir / "transformer_2", dtype,
                                        "The Wan low-noise expert (transformer_2)")
        if index.get("boundary_ratio") is None:
            raise ModelFileError(f"'{model_dir.name}' has two experts but no boundary_ratio in model_index.json.")
    tokenizer = load_tokenizer(AutoTokenizer, model_dir / "tokenizer", "The UMT5 tokenizer")
    text_encoder = transformers_part(UMT5EncoderModel, model_dir / "text_encoder", dtype, "The UMT5 text encoder")
    vae = diffusers_part(AutoencoderKLWan, model_dir / "vae", torch.float32, "The Wan VAE")
    return WanBackbone(model_dir.name, transformer, vae, text_encoder, tokenizer,
                       FlowSchedule(shift=float(shift), num_train_timesteps=int(
                           scheduler_config.get("num_train_timesteps", 1000))),
                       dtype, transformer_2=transformer_2, boundary_ratio=index.get("boundary_ratio"),
                       expand_timesteps=bool(index.get("expand_timesteps", False)),
                       scheduler_config=scheduler_config if scheduler_config.get("use_flow_sigmas") else None)
