"""VAE encode / decode of video frames, a few frames at a time.

Decoding a whole clip in one call costs memory in proportion to its length (15 GB for 64 frames at
256² with an SD VAE), while the time barely depends on the chunk; so frames go through the VAE in
small chunks and leave the device as soon as they are decoded.
"""
from __future__ import annotations

import torch

from ...block_checks import require_finite_latent

DEFAULT_CHUNK = 4


def _vae_device_dtype(vae) -> tuple[torch.device, torch.dtype]:
    p = next(vae.parameters())
    return p.device, p.dtype


@torch.no_grad()
def encode_pixels(backbone, pixels: torch.Tensor, chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Pixels ``[F, 3, H, W]`` in [−1, 1] → latents ``[1, C, F, h, w]`` (posterior mean × scale), float32.

    The posterior mean is deterministic, so encoding the same frame twice is bit-identical.
    """
    device, dtype = _vae_device_dtype(backbone.vae)
    latents = [backbone.vae.encode(pixels[i:i + chunk].to(device, dtype)).latent_dist.mean.float()
               for i in range(0, pixels.shape[0], chunk)]
    return (torch.cat(latents) * backbone.latent_scale).permute(1, 0, 2, 3).unsqueeze(0)


@torch.no_grad()
def decode_frames(backbone, latents: torch.Tensor, chunk: int = DEFAULT_CHUNK,
                  out_device: torch.device | str = "cpu") -> torch.Tensor:
    """Latents ``[B, C, F, h, w]`` → IMAGE frames ``[B·F, H, W, 3]`` in 0..1 on ``out_device``.

    Clips are concatenated b-major. Each chunk moves off the compute device right after decoding. A non-finite
    latent is refused (``NonFiniteError``): it would decode to a blank video that looks like a result.
    """
    require_finite_latent(latents)
    device, dtype = _vae_device_dtype(backbone.vae)
    flat = latents.permute(0, 2, 1, 3, 4).reshape(-1, *latents.shape[1:2], *latents.shape[3:])
    frames = None  # filled in place: no second copy of the whole video at the end
    for i in range(0, flat.shape[0], chunk):
        z = flat[i:i + chunk].to(device, dtype) / backbone.latent_scale
        # The decoder's output is ours: map it to 0..1 in place, then one strided copy into the result.
        image = backbone.vae.decode(z).sample.float().add_(1).mul_(0.5).clamp_(0, 1).permute(0, 2, 3, 1)
        if frames is None:
            frames = torch.empty((flat.shape[0], *image.shape[1:]), device=out_device)
        frames[i:i + image.shape[0]].copy_(image)
    return frames
