"""Wan's frame and shape rules, written once for every Wan backbone (diffusers' and ComfyUI's own MODEL)."""
from __future__ import annotations

import torch

from . import vae as wan_vae

NATIVE_VIDEO_FRAMES = {16: 81, 48: 121}
"""Video frames one call was trained on, by latent channels: Wan 2.1 / A14B 81 (16 fps), TI2V-5B 121 (24 fps)."""


class WanFrames:
    """Mixin of a Wan backbone: 4k + 1 video frames, sides in multiples of the VAE's factor × the 2×2 patch, and
    the still video a causal VAE needs. Needs ``channels``, ``spatial_factor``, ``pixel_multiple``, ``decode`` and
    ``encode_video``."""

    @property
    def max_frames(self) -> int:
        """Latent frames one call was trained on (21 for Wan 2.1's 81 video frames)."""
        return self.latent_frames(NATIVE_VIDEO_FRAMES.get(self.channels, 81))

    def latent_frames(self, video_frames: int) -> int:
        return wan_vae.latent_frames(video_frames)

    def video_frames(self, latent_frames: int) -> int:
        return wan_vae.video_frames(latent_frames)

    def check_video_frames(self, frames: int, what: str = "frames") -> None:
        wan_vae.check_video_frames(frames, what)

    def still_video(self, latent: torch.Tensor, latent_frames: int) -> torch.Tensor:
        """A causal VAE does not encode a still clip to its first latent repeated: the frame is decoded,
        repeated over the 4(F − 1) + 1 video frames, and the still clip encoded once."""
        image = self.decode(latent[:, :, :1], out_device=latent.device)  # [1, H, W, 3] in 0..1
        pixels = (image.permute(3, 0, 1, 2) * 2 - 1).unsqueeze(0)  # [1, 3, 1, H, W]
        clip = pixels.expand(-1, -1, self.video_frames(latent_frames), -1, -1)
        return self.encode_video(clip).to(latent.device, latent.dtype)

    def latent_shape(self, frames: int, width: int, height: int) -> tuple[int, int, int, int, int]:
        """``[1, C, F_latent, h, w]`` of a ``frames``-frame (4k + 1) ``width`` × ``height`` video."""
        self.check_video_frames(frames)
        multiple = self.pixel_multiple
        if width % multiple or height % multiple or width < multiple or height < multiple:
            example = "1280×704" if self.channels == 48 else "832×480"
            raise ValueError(f"{width}×{height}: this Wan model needs width and height that are positive multiples "
                             f"of {multiple} (its VAE's {self.spatial_factor}× × the transformer's 2×2 patch), "
                             f"e.g. {example}.")
        f = self.spatial_factor
        return (1, self.channels, self.latent_frames(frames), height // f, width // f)
