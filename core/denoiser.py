"""The Denoiser: ``eps = denoiser(x, t, cond)`` over a diffusers video UNet.

Every sampler in the pack is a function over this callable. It hides what differs between backbones
(text layout, image tokens), runs both classifier-free-guidance branches in **one** batched UNet call,
and takes per-frame timesteps ``[B, F]`` (see ``per_frame_timesteps``).
"""
from __future__ import annotations

from typing import Callable

import torch

from .conditioning import Conditioning


def _blank_image_input(unet) -> torch.Tensor:
    """Zeros shaped like the image projection's input, for calls that carry no image (scale 0)."""
    projection = unet.encoder_hid_proj.image_projection_layers[0]
    width = projection.proj_in.in_features if hasattr(projection, "proj_in") else projection.image_embeds.in_features
    return torch.zeros(1, 1, width) if hasattr(projection, "proj_in") else torch.zeros(1, width)


def _set_image_scale(unet, scale: float) -> None:
    for processor in unet.attn_processors.values():
        if hasattr(processor, "scale") and isinstance(processor.scale, list):
            processor.scale = [scale] * len(processor.scale)


class Denoiser:
    """Classifier-free-guided ε-prediction of a backbone.

    ``before_call`` runs before every UNet call (the host's interrupt check and call counting go there).
    """

    def __init__(self, backbone, guidance: float, before_call: Callable[[], None] | None = None):
        if guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {guidance}")
        self.backbone = backbone
        self.guidance = float(guidance)
        self.before_call = before_call
        self.calls = 0

    def _batched(self, x: torch.Tensor, t, tensors: list[torch.Tensor]):
        """Per-frame timestep / text layout for the stacked branches of one call."""
        batch, frames = x.shape[0], x.shape[2]
        device = self.backbone.device
        if torch.is_tensor(t) and t.dim() == 2:
            t = t.to(device).expand(batch, frames)
        else:
            t = torch.as_tensor(t, device=device).reshape(-1).expand(batch)
        text = torch.cat([e.to(device).expand(batch, *e.shape[1:]) for e in tensors])
        if self.backbone.family == "animatediff":
            text = text.repeat_interleave(frames, dim=0)  # UNetMotionModel wants one text row per frame
        return torch.cat([t] * len(tensors)), text

    def __call__(self, x: torch.Tensor, t, cond: Conditioning) -> torch.Tensor:
        """``x`` ``[B, C, F, h, w]``; ``t`` an int, ``[B]`` or ``[B, F]``; returns guided ε̂ in x's dtype."""
        if self.before_call is not None:
            self.before_call()
        self.calls += 1
        unet, dtype, device = self.backbone.unet, self.backbone.dtype, self.backbone.device
        with_uncond = self.guidance != 1.0
        texts = [cond.negative, cond.positive] if with_uncond else [cond.positive]
        timesteps, text = self._batched(x, self.backbone.schedule.model_timestep(t), texts)
        branches = len(texts)
        sample = torch.cat([x] * branches).to(device, dtype)
        extra = {}
        if self.backbone.has_image_attention:
            if cond.image is not None:
                images = [cond.image_uncond, cond.image] if with_uncond else [cond.image]
                scale = cond.image_scale
            else:
                images, scale = [_blank_image_input(unet)] * branches, 0.0
            # [branches·B, 1 image, tokens, width]: the projection takes a list of images per prompt
            embeds = torch.cat([i.to(device, dtype).expand(x.shape[0], *i.shape[1:]) for i in images]).unsqueeze(1)
            _set_image_scale(unet, scale)
            extra["added_cond_kwargs"] = {"image_embeds": [embeds]}
        elif cond.image is not None:
            raise ValueError(f"'{self.backbone.name}' has no image cross-attention, so image tokens cannot condition "
                             "it: load an SD1.5 model with a motion adapter and an IP-Adapter.")
        eps = unet(sample, timesteps, encoder_hidden_states=text.to(dtype), return_dict=False, **extra)[0]
        eps = eps.to(x.dtype)
        if not with_uncond:
            return eps
        eps_uncond, eps_cond = eps.chunk(2)
        return eps_uncond + self.guidance * (eps_cond - eps_uncond)
