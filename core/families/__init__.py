"""The backbone families, each one package answering ``interface.VideoBackbone``; here only which family a
folder is and the loader that reads it.

- ``unet``: the 2023 ε-prediction video UNets (ModelScope/Zeroscope, AnimateDiff with motion modules, SD1.5
  checkpoints, IP-Adapter);
- ``wan``: Wan 2.1 / 2.2 (rectified flow, causal VAE), from diffusers folders or ComfyUI's single files.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..interface import VideoBackbone
from ..loading.file_checks import ModelFileError, read_json
from .unet.backbone import UNET_FAMILY
from .unet.folder import load_unet_folder
from .wan.files import HALF as WAN_HALF
from .wan.folder import is_wan_folder, load_wan


def detect_family(model_dir: Path) -> str:
    """"modelscope", "animatediff", "wan" or "sd15" (an SD1.5 folder that still needs a motion adapter)."""
    read_json(model_dir / "model_index.json")
    transformer_config = model_dir / "transformer" / "config.json"
    if transformer_config.is_file():
        read_json(transformer_config)  # a damaged one is named here, not mistaken for a folder without a UNet
    if is_wan_folder(model_dir):
        return "wan"
    unet_class = read_json(model_dir / "unet" / "config.json").get("_class_name")
    family = UNET_FAMILY.get(unet_class)
    if family is None:
        raise ModelFileError(
            f"'{model_dir.name}' has a {unet_class}; supported are ModelScope/Zeroscope (UNet3DConditionModel), "
            "Stable Diffusion 1.5 (UNet2DConditionModel) with an AnimateDiff motion adapter, and Wan 2.1/2.2 "
            "(WanTransformer3DModel).")
    return family


MOTION_ADAPTER = {"sd15": "needed", "animatediff": "optional", "modelscope": "refused", "wan": "refused"}
"""Whether a folder of each family needs, takes or refuses an AnimateDiff motion adapter."""


def motion_adapter_rule(model_dir: str | Path) -> str:
    """"needed", "optional" or "refused": what a motion adapter is to this folder (read from its files)."""
    return MOTION_ADAPTER[detect_family(Path(model_dir))]


def folder_half(model_dir: str | Path) -> torch.dtype:
    """The 16-bit type a diffusers folder's ``auto`` dtype takes on a GPU: bf16 for Wan, whose own code and
    released weights are bf16 (as for its single files, ``wan.files.HALF``), fp16 for the UNet families."""
    return WAN_HALF if is_wan_folder(Path(model_dir)) else torch.float16


def load_backbone(model_dir: str | Path, *, motion_adapter: str | Path | None = None,
                  ip_adapter: str | Path | None = None, image_encoder: str | Path | None = None,
                  dtype: torch.dtype = torch.float32, timestep_grid: str = "original") -> VideoBackbone:
    """The backbone of a diffusers folder, its family read from the files."""
    model_dir = Path(model_dir)
    family = detect_family(model_dir)
    if family == "wan":
        if motion_adapter or ip_adapter or image_encoder:
            raise ModelFileError(f"'{model_dir.name}' is a Wan model: motion adapters and IP-Adapters only apply to "
                                 "Stable Diffusion 1.5 folders. Set them to 'none'.")
        return load_wan(model_dir, dtype)
    return load_unet_folder(model_dir, family, motion_adapter=motion_adapter, ip_adapter=ip_adapter,
                            image_encoder=image_encoder, dtype=dtype, timestep_grid=timestep_grid)
