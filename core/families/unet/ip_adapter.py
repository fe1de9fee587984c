"""IP-Adapter image cross-attention for the AnimateDiff UNet: the adapter's weights and its CLIP image encoder."""
from __future__ import annotations

from pathlib import Path

import torch

from ...loading.file_checks import ModelFileError, check_safetensors, loading
from ...loading.parts import transformers_part


def load_image_encoder(path: Path, dtype: torch.dtype):
    """A CLIP vision tower: a transformers folder, or a single .safetensors file (ComfyUI's clip_vision
    layout) whose configuration is read off its tensor shapes (heads = width / 64, as in every CLIP ViT)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    if path.is_dir():
        return transformers_part(CLIPVisionModelWithProjection, path, dtype, "The image encoder")
    if path.suffix != ".safetensors":
        raise ModelFileError(f"Image encoder '{path.name}' is not a .safetensors file.")
    from safetensors.torch import load_file
    check_safetensors(path)
    with loading(path, "The image encoder"):
        state = load_file(str(path))
    try:
        patch = state["vision_model.embeddings.patch_embedding.weight"]
        positions = state["vision_model.embeddings.position_embedding.weight"].shape[0]
        layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("vision_model.encoder.layers."))
        hidden = patch.shape[0]
        config = CLIPVisionConfig(
            hidden_size=hidden, intermediate_size=state["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
            num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64), patch_size=patch.shape[-1],
            image_size=int(round((positions - 1) ** 0.5)) * patch.shape[-1],
            projection_dim=state["visual_projection.weight"].shape[0])
    except KeyError as missing:
        raise ModelFileError(f"'{path.name}' is not a CLIP vision model in the transformers layout "
                             f"(no tensor {missing}).") from None
    model = CLIPVisionModelWithProjection(config)
    model.load_state_dict(state, strict=False)
    return model.to(dtype)


def attach_ip_adapter(unet, vae, text_encoder, tokenizer, scheduler, ip_path: Path):
    """Loads IP-Adapter weights into ``unet`` through diffusers' public pipeline loader."""
    from diffusers import AnimateDiffPipeline
    if ip_path.suffix != ".safetensors":
        raise ModelFileError(f"IP-Adapter '{ip_path.name}' is not a .safetensors file; use the safetensors release.")
    check_safetensors(ip_path)
    pipe = AnimateDiffPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                               motion_adapter=None, scheduler=scheduler)
    with loading(ip_path, "The IP-Adapter"):
        pipe.load_ip_adapter(str(ip_path.parent), subfolder="", weight_name=ip_path.name, image_encoder_folder=None,
                             local_files_only=True)


def check_ip_pair(ip_adapter, image_encoder) -> None:
    if (ip_adapter is None) != (image_encoder is None):
        raise ModelFileError("An IP-Adapter needs its CLIP image encoder (models/clip_vision) and vice versa: "
                             "choose both or neither.")
