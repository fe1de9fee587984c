"""ModelScope/Zeroscope and AnimateDiff from diffusers folders (an SD1.5 folder plus a motion adapter, or a saved
AnimateDiff folder whose UNet already is one), optionally with an IP-Adapter and its CLIP image encoder.

Only safetensors, only local files, never remote code: a folder that holds only pickled weights is refused with
the reason, before anything is read.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ...loading.file_checks import ModelFileError, loading, read_json
from ...loading.parts import diffusers_part, load_tokenizer, transformers_part
from .backbone import UNetBackbone, family_scheduler
from .ip_adapter import attach_ip_adapter, check_ip_pair, load_image_encoder

def load_scheduler(model_dir: Path, family: str, timestep_grid: str = "original"):
    config = read_json(model_dir / "scheduler" / "scheduler_config.json")
    if config.get("prediction_type", "epsilon") != "epsilon":
        raise ModelFileError(f"'{model_dir.name}' predicts '{config['prediction_type']}'; only epsilon-prediction "
                             "backbones are supported.")
    with loading(model_dir / "scheduler", "The scheduler"):
        return family_scheduler(family, timestep_grid, config)


def load_motion_adapter(path: Path, dtype: torch.dtype):
    """A diffusers MotionAdapter folder or a single .safetensors motion module, every tensor from the file
    (see ``motion_module``: the layout of a single file is read from its own tensors)."""
    from .motion_module import load_motion_adapter as load_strictly
    return load_strictly(path, dtype)


def with_motion(unet2d, adapter, adapter_path: Path, model_dir: Path, dtype: torch.dtype):
    """The UNetMotionModel (in ``dtype``) of an SD UNet and a motion adapter, refused with the reason when they do
    not fit."""
    from diffusers import UNetMotionModel
    widths, needed = list(adapter.config.block_out_channels), list(unet2d.config.block_out_channels)
    fit = (f"Choose a motion adapter made for '{model_dir.name}' (SD1.5 motion modules for SD1.5 models; SDXL ones "
           "for SDXL models).")
    if widths != needed:
        raise ModelFileError(f"Motion adapter '{adapter_path.name}' is made for a UNet with block widths {widths}, but "
                             f"the UNet of '{model_dir.name}' has {needed}: they do not fit together. {fit}")
    with loading(adapter_path, "The motion adapter", fix=f"It does not fit the UNet of '{model_dir.name}'. {fit}"):
        unet = UNetMotionModel.from_unet2d(unet2d, adapter)
    return unet if unet.dtype == dtype else unet.to(dtype)


def load_unet_folder(model_dir: Path, family: str, *, motion_adapter: str | Path | None = None,
                     ip_adapter: str | Path | None = None, image_encoder: str | Path | None = None,
                     dtype: torch.dtype = torch.float32, timestep_grid: str = "original") -> UNetBackbone:
    """A ModelScope/Zeroscope, AnimateDiff or SD1.5 (+ ``motion_adapter``) folder of the detected ``family``."""
    from diffusers import AutoencoderKL, UNet2DConditionModel, UNet3DConditionModel, UNetMotionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    if family == "sd15" and motion_adapter is None:
        raise ModelFileError(f"'{model_dir.name}' is a Stable Diffusion 1.5 folder: choose an AnimateDiff motion "
                             "adapter to turn it into a video model.")
    if family == "modelscope" and (motion_adapter or ip_adapter or image_encoder):
        raise ModelFileError(f"'{model_dir.name}' is a ModelScope/Zeroscope model: motion adapters and IP-Adapters "
                             "only apply to Stable Diffusion 1.5 folders. Set them to 'none'.")
    check_ip_pair(ip_adapter, image_encoder)
    tokenizer = load_tokenizer(CLIPTokenizer, model_dir / "tokenizer", "The tokenizer")
    text_encoder = transformers_part(CLIPTextModel, model_dir / "text_encoder", dtype, "The text encoder")
    vae = diffusers_part(AutoencoderKL, model_dir / "vae", dtype, "The VAE")
    unet_dir = model_dir / "unet"
    if family == "modelscope":
        unet = diffusers_part(UNet3DConditionModel, unet_dir, dtype, "The UNet")
    elif family == "animatediff" and motion_adapter is None:
        unet = diffusers_part(UNetMotionModel, unet_dir, dtype, "The UNet")
    else:
        adapter = load_motion_adapter(Path(motion_adapter), dtype)
        unet2d = diffusers_part(UNet2DConditionModel, unet_dir, dtype, "The UNet")
        unet = with_motion(unet2d, adapter, Path(motion_adapter), model_dir, dtype)
        del unet2d
        family = "animatediff"
    scheduler = load_scheduler(model_dir, family, timestep_grid)
    return assemble_backbone(model_dir.name, family, unet, vae, text_encoder, tokenizer, scheduler, dtype,
                             ip_adapter, image_encoder)


def assemble_backbone(name: str, family: str, unet, vae, text_encoder, tokenizer, scheduler, dtype: torch.dtype,
                      ip_adapter: str | Path | None = None, image_encoder: str | Path | None = None) -> UNetBackbone:
    """The loaded parts as one Backbone, whichever files they came from (a folder or ComfyUI's single files),
    with the IP-Adapter attached and its image encoder loaded when given."""
    encoder = None
    if ip_adapter is not None:
        attach_ip_adapter(unet, vae, text_encoder, tokenizer, scheduler, Path(ip_adapter))
        encoder = load_image_encoder(Path(image_encoder), dtype)
        unet.encoder_hid_proj.to(dtype)
    return UNetBackbone(name=name, family=family, unet=unet, vae=vae, text_encoder=text_encoder,
                    tokenizer=tokenizer, scheduler=scheduler, dtype=dtype, image_encoder=encoder)
