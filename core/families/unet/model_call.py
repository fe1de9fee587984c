"""One model call of the ε-prediction video UNets (ModelScope/Zeroscope, AnimateDiff) on stacked CFG branches.

What differs between the two UNet classes lives here, so the Denoiser does not branch on a family:
UNetMotionModel wants one text row per frame, UNet3DConditionModel one per clip; an IP-Adapter UNet must be
given image tokens on every call (a blank input at scale 0 when the conditioning has none); per-frame
timesteps ``[B, F]`` go through the hooks of ``per_frame_timesteps``.
"""
from __future__ import annotations

import torch


def _blank_image_input(unet) -> torch.Tensor:
    """Zeros shaped like the image projection's input, for calls that carry no image (scale 0)."""
    projection = unet.encoder_hid_proj.image_projection_layers[0]
    width = projection.proj_in.in_features if hasattr(projection, "proj_in") else projection.image_embeds.in_features
    return torch.zeros(1, 1, width) if hasattr(projection, "proj_in") else torch.zeros(1, width)


def _set_image_scale(unet, scale: float) -> None:
    for processor in unet.attn_processors.values():
        if hasattr(processor, "scale") and isinstance(processor.scale, list):
            processor.scale = [scale] * len(processor.scale)


def _batched(backbone, x: torch.Tensor, t, texts: list[torch.Tensor]):
    """Per-frame timestep / text layout for the stacked branches of one call."""
    batch, frames = x.shape[0], x.shape[2]
    device = backbone.device
    if torch.is_tensor(t) and t.dim() == 2:
        t = t.to(device).expand(batch, frames)
    else:
        t = torch.as_tensor(t, device=device).reshape(-1).expand(batch)
    text = torch.cat([e.to(device).expand(batch, *e.shape[1:]) for e in texts])
    if backbone.family == "animatediff":
        text = text.repeat_interleave(frames, dim=0)  # UNetMotionModel wants one text row per frame
    return torch.cat([t] * len(texts)), text


def predict_unet(backbone, x: torch.Tensor, t, texts: list[torch.Tensor], cond) -> list[torch.Tensor]:
    """ε̂ of ``x`` ``[B, C, F, h, w]`` at level(s) ``t`` for each text of ``texts`` (one batched UNet call),
    in x's dtype. ``texts[0]`` is the unconditional branch when there are two (it gets the uncond image)."""
    unet, dtype, device = backbone.unet, backbone.dtype, backbone.device
    branches = len(texts)
    timesteps, text = _batched(backbone, x, backbone.schedule.model_timestep(t), texts)
    sample = torch.cat([x] * branches).to(device, dtype)
    extra = {}
    if backbone.has_image_attention:
        if cond.image is not None:
            images = [cond.image_uncond, cond.image] if branches == 2 else [cond.image]
            scale = cond.image_scale
        else:
            images, scale = [_blank_image_input(unet)] * branches, 0.0
        # [branches·B, 1 image, tokens, width]: the projection takes a list of images per prompt
        embeds = torch.cat([i.to(device, dtype).expand(x.shape[0], *i.shape[1:]) for i in images]).unsqueeze(1)
        _set_image_scale(unet, scale)
        extra["added_cond_kwargs"] = {"image_embeds": [embeds]}
    elif cond.image is not None:
        raise ValueError(f"'{backbone.name}' has no image cross-attention, so image tokens cannot condition "
                         "it: load an SD1.5 model with a motion adapter and an IP-Adapter.")
    out = unet(sample, timesteps, encoder_hidden_states=text.to(dtype), return_dict=False, **extra)[0]
    return list(out.to(x.dtype).chunk(branches))
