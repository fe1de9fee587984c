"""The 2023 ε-prediction video UNets, ModelScope/Zeroscope and AnimateDiff, with an SD image VAE and CLIP text.

Their facts in one place: the DDIM tables per family, one latent frame per video frame, per-frame timesteps
through hooks on the resnets (``per_frame_timesteps``), CFG branches batched (``model_call``), a per-frame VAE
(``vae``), CLIP text at 77 tokens (``text``), image tokens through an IP-Adapter (``image_tokens``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ...interface import BackboneModules, MemoryProfile, VideoBackbone

# DDIM tables per family (DIFFUSERS.md): the SD1.5 folder's own PNDM config is not AnimateDiff's. AnimateDiff
# follows the original AnimateDiff code (and I4VGen on it): leading grid, the last step lands on ᾱ = 1 (a clean
# x̂0; 25 steps visit 961 … 1). diffusers' AnimateDiff docs suggest linspace without a final alpha of 1, whose
# last step 0 → ᾱ_0 changes nothing: TIMESTEP_GRIDS["diffusers"] keeps it reachable.
FAMILY_SCHEDULER = {
    "modelscope": {"beta_schedule": "scaled_linear", "timestep_spacing": "leading", "set_alpha_to_one": False},
    "animatediff": {"beta_schedule": "linear", "timestep_spacing": "leading", "set_alpha_to_one": True},
}
TIMESTEP_GRIDS = {"original": {}, "diffusers": {"animatediff": {"timestep_spacing": "linspace",
                                                                "set_alpha_to_one": False}}}
SHARED_SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1, "clip_sample": False}
UNET_FAMILY = {"UNet3DConditionModel": "modelscope", "UNetMotionModel": "animatediff",
               "UNet2DConditionModel": "sd15"}


UNET_ACTIVATION_COPIES = 10
"""A UNet holds far more than two tensors at its first width: every down block's output waits for its skip
connection, and its norms and attention work on copies. One call of the ModelScope stand-in measured 18–20 such
tensors per branch (peak RSS over the call, 64 and 256 frames at 32×32 latents); 10 keeps a margin of about 2×."""


@dataclass(eq=False)
class UNetBackbone(VideoBackbone):
    """ModelScope/Zeroscope (``UNet3DConditionModel``) or AnimateDiff (``UNetMotionModel``) with an SD VAE."""

    name: str
    family: str  # "modelscope" | "animatediff"
    unet: nn.Module
    vae: nn.Module
    text_encoder: nn.Module
    tokenizer: object
    scheduler: object  # the diffusers DDIMScheduler the tables come from
    dtype: torch.dtype
    image_encoder: nn.Module | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    network_name = "UNet"
    network_names = ("unet",)

    def __post_init__(self):
        from ...schedule import Schedule
        from . import per_frame_timesteps
        self.schedule = Schedule.from_scheduler(self.scheduler)
        self.solver_config = dict(self.scheduler.config)  # uni_pc on the same ᾱ table and timestep spacing
        self.modules = BackboneModules(unet=self.unet, vae=self.vae, text_encoder=self.text_encoder,
                                       image_encoder=self.image_encoder)
        self.modules.eval().requires_grad_(False)
        per_frame_timesteps.install(self.unet)

    # --- shapes ------------------------------------------------------------------------------------
    @property
    def max_frames(self) -> int | None:
        """Frames one UNet call can take (AnimateDiff's motion modules have a positional table)."""
        if self.family == "animatediff":
            return int(self.unet.config.get("motion_max_seq_length", 32))
        return None

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def latent_shape(self, frames: int, width: int, height: int) -> tuple[int, int, int, int, int]:
        """``[1, C, F, h, w]`` of a ``width`` × ``height`` video; the sides must be whole VAE blocks."""
        factor = self.vae_scale_factor
        if width % factor or height % factor:
            raise ValueError(f"{width}×{height} is not a whole number of this backbone's {factor}×{factor}-pixel VAE "
                             f"blocks: make width and height multiples of {factor}.")
        return (1, int(self.unet.config.in_channels), frames, height // factor, width // factor)

    @property
    def channels(self) -> int:
        return int(self.unet.config.in_channels)

    @property
    def latent_multiple(self) -> int:
        """How much the UNet shrinks a latent side: latent sides must be multiples of this."""
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def latent_scale(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def native_size(self) -> int:
        """The square side the UNet was configured for, in pixels (its sample_size × the VAE factor)."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def has_image_attention(self) -> bool:
        return getattr(self.unet, "encoder_hid_proj", None) is not None

    # --- text and image tokens ------------------------------------------------------------------------
    @property
    def text_tokens(self) -> int:
        return int(self.tokenizer.model_max_length)

    def embed_text(self, text: str) -> tuple[torch.Tensor, str | None]:
        from .text import clip_text_embeddings
        return clip_text_embeddings(self.tokenizer, self.text_encoder, text)

    def encode_image_tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.has_image_attention or self.image_encoder is None:
            return super().encode_image_tokens(images)
        from .image_tokens import encode_image_tokens
        return encode_image_tokens(self.unet, self.image_encoder, images)

    # --- the model call --------------------------------------------------------------------------------
    def predict(self, x: torch.Tensor, t, texts: list[torch.Tensor], cond) -> list[torch.Tensor]:
        from .model_call import predict_unet
        return predict_unet(self, x, t, texts, cond)

    # --- pixels ----------------------------------------------------------------------------------------
    def encode(self, pixels: torch.Tensor, chunk: int | None = None, check=None) -> torch.Tensor:
        """``check`` (the host's interrupt check) runs before every VAE block and layer."""
        from ...block_checks import checked_blocks
        from . import vae
        with checked_blocks([self.vae], check):
            return vae.encode_pixels(self, pixels, chunk or vae.DEFAULT_CHUNK)

    def decode(self, latents: torch.Tensor, chunk: int | None = None, out_device: torch.device | str = "cpu",
               check=None, free_memory=None) -> torch.Tensor:
        """``check`` (the host's interrupt check) runs before every VAE block and layer; with
        ``free_memory(device, needed)`` a decode that cannot fit is refused before it starts
        (``memory_estimate.check_decode``)."""
        from ...block_checks import checked_blocks
        from ...memory_estimate import check_decode
        from . import vae
        chunk = chunk or vae.DEFAULT_CHUNK
        check_decode(self, latents.shape, chunk, free_memory, out_device)
        with checked_blocks([self.vae], check):
            return vae.decode_frames(self, latents, chunk, out_device)

    # --- memory ----------------------------------------------------------------------------------------
    def memory_profile(self) -> MemoryProfile:
        """conv_in keeps the latent's grid; an image VAE's decoder ends at full resolution at its first width."""
        side = self.vae_scale_factor
        return MemoryProfile(width=int(self.unet.config.block_out_channels[0]), cells=(1, 1, 1),
                             copies=UNET_ACTIVATION_COPIES, pixel_side=side, stage_side=side,
                             vae_width=int(self.vae.config.block_out_channels[0]), causal=False,
                             vae_dtype=next(self.vae.parameters()).dtype)


def family_scheduler(family: str, timestep_grid: str = "original", config: dict | None = None):
    """The family's DDIM scheduler over a folder's scheduler ``config``; ``timestep_grid`` "original" (the
    family's reference code) or "diffusers" (diffusers' own suggestion, where it differs: AnimateDiff's
    linspace grid)."""
    from diffusers import DDIMScheduler
    if timestep_grid not in TIMESTEP_GRIDS:
        raise ValueError(f"timestep_grid must be one of {', '.join(TIMESTEP_GRIDS)}; got '{timestep_grid}'")
    overrides = {**SHARED_SCHEDULER, **FAMILY_SCHEDULER[family], **TIMESTEP_GRIDS[timestep_grid].get(family, {})}
    return DDIMScheduler.from_config({k: v for k, v in (config or {}).items() if not k.startswith("_")}, **overrides)

