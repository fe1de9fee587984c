"""The anchor of an image-to-video run: the user's frame(s) at the backbone's resolution, as pixels and latents.

It is an object rather than a bare latent because TI2V-Zero needs both forms: the queue is kept in
pixels and frame 0 of the video is the original pixels (never a VAE reconstruction). Latents of one
backbone's VAE mean nothing to another's, so the anchor also records which backbone made them and the
sampler refuses a mismatch instead of producing garbage.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..validation import check_size

log = logging.getLogger(__name__)

CROP_MODES = ("center", "stretch")
"""``center``: cut the largest centred region of the target aspect, then resize (TI2V-Zero's own
preprocessing, no distortion). ``stretch``: resize the whole image to the target size."""


def backbone_identity(backbone) -> str:
    return f"{backbone.name} ({backbone.family})"


def check_image(images: torch.Tensor, what: str = "image") -> None:
    """ComfyUI IMAGE batches are ``[N, H, W, 3]``; say exactly what else arrived."""
    if not torch.is_tensor(images) or images.dim() != 4:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"The {what} must be an IMAGE batch shaped [frames, height, width, 3]; got {shape}. "
                         "Connect the IMAGE output of LoadImage or of another image node.")
    channels = images.shape[-1]
    if channels == 4:
        raise ValueError(f"The {what} has an alpha channel (4 channels, RGBA). Connect an RGB IMAGE: LoadImage's "
                         "IMAGE output is already RGB (its alpha comes out separately as MASK).")
    if channels != 3:
        raise ValueError(f"The {what} has {channels} channels in its last dimension; an IMAGE is "
                         "[frames, height, width, 3] RGB.")
    if images.shape[0] < 1 or images.shape[1] < 1 or images.shape[2] < 1:
        raise ValueError(f"The {what} is empty (shape {tuple(images.shape)}).")


def gradient_image(width: int, height: int) -> torch.Tensor:
    """A synthetic start frame, IMAGE ``[1, H, W, 3]``, for demos and benchmarks that have no image file."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return torch.stack([xs, ys, 1 - xs], dim=-1).unsqueeze(0)


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """IMAGE ``[N, H, W, 3]`` in 0..1 → VAE input ``[N, 3, H, W]`` in [−1, 1]."""
    return (images.permute(0, 3, 1, 2) * 2 - 1).contiguous()


def preprocess(images: torch.Tensor, width: int, height: int, crop: str = "center") -> torch.Tensor:
    """Centre-crop to ``width``:``height`` (or stretch) and resize to that size; IMAGE in, IMAGE out.

    A smaller image is upscaled (bicubic) with a warning in the log rather than refused: a soft
    anchor still gives a usable video, and the warning says why it looks soft.
    """
    check_image(images)
    check_size(width, height)
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {', '.join(CROP_MODES)}; got '{crop}'")
    x = images.float().permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    if crop == "center":
        if w * height > h * width:  # too wide: keep the full height
            keep = max(1, round(h * width / height))
            left = (w - keep) // 2
            x = x[..., :, left:left + keep]
        else:
            keep = max(1, round(w * height / width))
            top = (h - keep) // 2
            x = x[..., top:top + keep, :]
    h, w = x.shape[-2:]
    if h < height or w < width:
        log.warning("The image region %dx%d is smaller than the model resolution %dx%d: it is upscaled, so the "
                    "video starts soft. Use an image of at least %dx%d for a sharp start.", w, h, width, height,
                    width, height)
    if (h, w) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    return x.permute(0, 2, 3, 1).contiguous()


def encode_frames(backbone, images: torch.Tensor) -> torch.Tensor:
    """IMAGE frames → latents ``[1, C, N, h, w]`` on the backbone's device, one frame per VAE call.

    One frame per call everywhere (anchor, sampler queue) so that a frame's latent never depends on what
    it was batched with: the encode cache is then bit-identical to re-encoding.
    """
    return backbone.encode(to_pixels(images), chunk=1)


@dataclass(frozen=True, eq=False)
class Anchor:
    """Preprocessed frames and their latents, tied to the backbone that encoded them."""

    image: torch.Tensor  # [N, H, W, 3] float32 0..1 on the CPU: exactly what the video's first frames show
    latents: torch.Tensor  # [1, C, N, h, w] float32 on the CPU: VAE posterior mean × scale
    backbone: str  # backbone_identity() of the encoder

    @property
    def frames(self) -> int:
        return int(self.image.shape[0])

    @property
    def pixels(self) -> torch.Tensor:
        """The frames as VAE input, ``[N, 3, H, W]`` in [−1, 1]."""
        return to_pixels(self.image)

    def require(self, backbone) -> None:
        if backbone_identity(backbone) != self.backbone:
            raise ValueError(f"This anchor was encoded by {self.backbone}, but the sampler uses "
                             f"{backbone_identity(backbone)}: latents of one VAE do not fit another. Connect the "
                             "same backbone to EncodeAnchorImage and to the sampler.")


def make_anchor(backbone, images: torch.Tensor, width: int = 0, height: int = 0, crop: str = "center") -> Anchor:
    """IMAGE (one frame, or several for video prediction) → Anchor. Width/height 0 = the backbone's native size."""
    width, height = width or backbone.native_size, height or backbone.native_size
    backbone.latent_shape(len(images), width, height)  # whole VAE blocks, or a clear error before any work
    image = preprocess(images, width, height, crop)
    return Anchor(image=image, latents=encode_frames(backbone, image).cpu(), backbone=backbone_identity(backbone))
