"""Image tokens for backbones with image cross-attention (AnimateDiff + IP-Adapter).

The tokens are what the IP-Adapter's projection takes: the CLIP vision tower's penultimate hidden
states for IP-Adapter Plus, the projected image embedding for the plain IP-Adapter. As the image-embedding
FIFO code (the image-embedding extension) does it, the image is squashed to the encoder's square input without cropping (a
320×512 frame keeps its sides), and the unconditional branch uses the tokens of a gray image of pixel value
0.5, not zeros.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _wants_hidden_states(unet) -> bool:
    return hasattr(unet.encoder_hid_proj.image_projection_layers[0], "proj_in")


GRAY = 0.5
"""Pixel value of the unconditional branch's image."""


def clip_pixels(images: torch.Tensor, size: int) -> torch.Tensor:
    """IMAGE ``[N, H, W, 3]`` in 0..1 → CLIP input ``[N, 3, size, size]``: the whole image resized to the square."""
    x = images.permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def _encode(unet, encoder, pixels: torch.Tensor) -> torch.Tensor:
    p = next(encoder.parameters())
    out = encoder(pixels.to(p.device, p.dtype), output_hidden_states=True)
    tokens = out.hidden_states[-2] if _wants_hidden_states(unet) else out.image_embeds
    return tokens.float().cpu()


def encode_image_tokens(unet, encoder, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens of ``images``, tokens of a gray image) for the two CFG branches; one encoder call each."""
    size = encoder.config.image_size
    pixels = clip_pixels(images, size)
    gray = clip_pixels(torch.full((1, size, size, 3), GRAY), size)
    return _encode(unet, encoder, pixels), _encode(unet, encoder, gray)
