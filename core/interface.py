"""The backbone interface: every question a method, a node or the command line may ask a video model.

A family (``families/unet``, ``families/wan``) answers all of them; nothing outside a family names one or looks
at its attributes. Methods work in *latent frames*, users speak *video frames*: the frame questions translate.
The memory manager's state (options applied, networks taken out of ``modules``, an expert swap, a text-encoder
host) lives here too, declared, so the memory code sets public fields rather than a family's private ones.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import nn

from .solvers import SolverRun, check_sampler, diffusers_unipc


class BackboneModules(nn.Module):
    """Plain module holder, so a model manager can move the diffusers parts as one unit."""

    def __init__(self, **modules):
        super().__init__()
        for name, module in modules.items():
            if module is not None:
                self.add_module(name, module)


@dataclass(frozen=True)
class MemoryProfile:
    """What the memory estimate needs of a backbone's network and VAE (``memory_estimate``).

    ``width``: features per position at the network's first block; ``cells``: latent cells (frames, h, w) per
    position (a transformer's patch; (1, 1, 1) for a UNet); ``copies``: tensors of that width certainly alive at
    once. VAE: ``pixel_side`` pixels per latent side, the decoder's last stage at ``stage_side`` per latent side
    with ``vae_width`` features, ``causal`` (one latent frame per decoder call), and the VAE's dtype."""

    width: int
    cells: tuple[int, int, int]
    copies: int
    pixel_side: int
    stage_side: int
    vae_width: int
    causal: bool
    vae_dtype: torch.dtype


def static_video(latent: torch.Tensor, frames: int) -> torch.Tensor:
    """The one-frame latent ``[B, C, 1, h, w]`` repeated over ``frames`` latent frames (a new tensor)."""
    return latent[:, :, :1].repeat(1, 1, frames, 1, 1)


class VideoBackbone(abc.ABC):
    """A text-to-video model as the methods see it: shapes, frames, text, the model call, pixels and memory.

    Attributes every family sets: ``name`` (for messages), ``family`` (for messages and identity only),
    ``schedule`` (``schedule.Schedule``), ``dtype``, ``device``, ``modules`` (what the model manager moves),
    ``vae`` and ``text_encoder`` (what the memory options act on).
    """

    name: str
    family: str
    schedule: object
    dtype: torch.dtype
    device: torch.device
    modules: BackboneModules
    vae: nn.Module
    text_encoder: nn.Module
    default_negative_prompt: str = ""
    network_name: str = "model"
    """What its network is called in progress text ("UNet", "transformer")."""
    causal_vae: bool = False
    """A VAE that packs several video frames into each latent frame after the first (Wan's): a still video must
    be encoded as a clip, not made by repeating one latent."""
    has_image_attention: bool = False
    """Image cross-attention (AnimateDiff + IP-Adapter): image tokens can condition the model."""

    # memory-manager state, set by ``memory_options`` and the host's glue (declared here, never probed)
    memory_options: dict | None = None
    offloaded_networks: dict | None = None
    network_swap = None
    text_encoder_host = None
    """An object with ``bring(module)`` / ``release(module)`` when the host moves the text encoder for each
    prompt; None when the backbone moves it itself (only families whose text encoder lives off the GPU use it)."""
    text_encoder_moves: bool = False
    """True when the text encoder comes to the GPU only for the prompts (through ``text_encoder_host``)."""

    def to(self, device: torch.device) -> "VideoBackbone":
        self.modules.to(device)
        self.device = torch.device(device)
        return self

    # --- shapes ------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def channels(self) -> int:
        """Latent channels."""

    @property
    @abc.abstractmethod
    def latent_multiple(self) -> int:
        """Latent sides must be multiples of this (the network's down-sampling or patch)."""

    @property
    @abc.abstractmethod
    def native_size(self) -> int:
        """The side, in pixels, the model was trained at (a square's, or a video's short side)."""

    @property
    def max_frames(self) -> int | None:
        """Latent frames one model call can take, or None for no fixed limit."""
        return None

    @abc.abstractmethod
    def latent_shape(self, frames: int, width: int, height: int) -> tuple[int, int, int, int, int]:
        """``[1, C, F_latent, h, w]`` of a ``frames``-frame ``width`` × ``height`` video (video frames)."""

    # --- video frames ↔ latent frames: one latent frame per video frame unless a family says otherwise ---------
    def latent_frames(self, video_frames: int) -> int:
        return video_frames

    def video_frames(self, latent_frames: int) -> int:
        return latent_frames

    @property
    def frames_per_latent(self) -> int:
        """Video frames each latent frame after the first holds (1, Wan: 4)."""
        return self.video_frames(2) - self.video_frames(1)

    def valid_video_frames(self, frames: int) -> bool:
        """Whether the VAE represents exactly ``frames`` video frames."""
        return frames >= 1 and self.video_frames(self.latent_frames(frames)) == frames

    def nearest_video_frames(self, frames: int) -> tuple[int, int]:
        """The valid video-frame counts just below (at least the smallest) and at or above ``frames``."""
        above = self.video_frames(max(1, self.latent_frames(max(1, frames))))
        if above < frames:
            above = self.video_frames(self.latent_frames(frames) + 1)
        below = above if above == frames else self.video_frames(max(1, self.latent_frames(above) - 1))
        return below, above

    def check_video_frames(self, frames: int, what: str = "frames") -> None:
        """Refuse a video-frame count the VAE cannot represent, naming ``what`` and the nearest valid counts."""
        if not self.valid_video_frames(frames):
            below, above = self.nearest_video_frames(frames)
            raise ValueError(f"{what}: got {frames}, but {self.name}'s VAE only represents "
                             f"{self.frame_rule} frames: use {below} or {above}.")

    @property
    def frame_rule(self) -> str:
        """The valid video-frame counts in words, for messages."""
        step = self.frames_per_latent
        return "any number of" if step == 1 else f"{step}k + 1"

    def latent_index(self, video_frame: int) -> int:
        """The latent frame that holds video frame ``video_frame`` (0-based)."""
        return self.latent_frames(video_frame + 1) - 1 if video_frame else 0

    # --- LATENTs as the host holds them --------------------------------------------------------------
    def latent_to_host(self, samples: torch.Tensor) -> torch.Tensor:
        """A latent as the methods made it → what a LATENT output holds (the host's convention; the same here)."""
        return samples

    def latent_from_host(self, samples: torch.Tensor) -> torch.Tensor:
        """What a LATENT input holds → the latent the methods work on (inverse of :meth:`latent_to_host`)."""
        return samples

    # --- text -----------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def text_tokens(self) -> int:
        """Tokens of one prompt; a longer prompt is cut (``embed_text`` says what was cut)."""

    @abc.abstractmethod
    def embed_text(self, text: str) -> tuple[torch.Tensor, str | None]:
        """(the prompt's embeddings ``[1, L, D]`` on the CPU, the part beyond ``text_tokens`` or None)."""

    def conditioning_from_host(self, positive, negative, prompt: str = ""):
        """The host's own prompt conditioning (ComfyUI's CONDITIONING) as a ``Conditioning``; only a backbone made of
        the host's own models reads it."""
        raise ValueError(f"'{self.name}' encodes its prompts with its own text encoder: use T2V Text Encode. "
                         "CONDITIONING from CLIPTextEncode goes with a backbone from Wan MODEL → T2V Backbone.")

    # --- the model call ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def predict(self, x: torch.Tensor, t, texts: list[torch.Tensor], cond) -> list[torch.Tensor]:
        """The network's prediction for ``x`` ``[B, C, F, h, w]`` at level(s) ``t`` (scalar, ``[B]`` or per frame
        ``[B, F]``) once per text of ``texts`` (the CFG branches), in one batched call."""

    def guidance_scale(self, t, like: torch.Tensor, guidance: float, guidance_2: float | None):
        """The guidance scale for level(s) ``t``: one number, unless a family switches experts by level."""
        return guidance

    def denoising_networks(self) -> dict[str, nn.Module]:
        """The networks that denoise (what precision and offload apply to), by name, wherever they are held."""
        held = dict(self.modules.named_children())
        held.update(self.offloaded_networks or {})
        return {name: module for name, module in held.items() if name in self.network_names}

    network_names: tuple[str, ...] = ()

    solver_config: dict | None = None
    """The backbone's own diffusers scheduler configuration, which ``uni_pc`` runs with (a Wan folder's: UniPC on
    flow sigmas with its shift; an ε-model's: its DDIM table)."""

    def solver(self, name: str, steps: int, strength: float = 1.0) -> SolverRun:
        """A multistep solver's run of ``steps`` (``strength`` < 1: its last part, SDEdit-style) for plain sampling;
        ``euler`` is the pack's own loop and never asked for here."""
        check_sampler(name)
        if name != "uni_pc" or self.solver_config is None:
            raise ValueError(f"sampler {name} is not available on '{self.name}': use euler.")
        return diffusers_unipc(self.solver_config, self.schedule, steps, strength)

    # --- pixels -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, pixels: torch.Tensor, chunk: int | None = None, check=None) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` in [−1, 1] → one latent frame each, ``[1, C, N, h, w]``. ``check`` (the host's
        interrupt check) runs before every VAE block and layer."""

    @abc.abstractmethod
    def decode(self, latents: torch.Tensor, chunk: int | None = None, out_device: torch.device | str = "cpu",
               check=None, free_memory=None) -> torch.Tensor:
        """Latents ``[B, C, F, h, w]`` → IMAGE frames ``[B·video_frames(F), H, W, 3]`` on ``out_device``, a few
        latent frames per VAE call; with ``free_memory(device, needed)`` a decode that cannot fit is refused first."""

    def stream_decoder(self, out_device: torch.device | str = "cpu"):
        """A callable turning the next latent frames ``[1, C, k, h, w]`` of one video into its IMAGE frames."""
        return lambda latents: self.decode(latents, chunk=1, out_device=out_device)

    def still_video(self, latent: torch.Tensor, latent_frames: int) -> torch.Tensor:
        """The latent ``[1, C, F, h, w]`` of a still video showing the one-frame latent ``[1, C, 1, h, w]``
        (I4VGen's static anchor video, TI2V-Zero's repeated queue): its frame repeated, for a per-frame VAE."""
        return static_video(latent, latent_frames)

    def encode_image_tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image tokens of IMAGE ``images``, those of a gray image) for backbones with image cross-attention."""
        raise ValueError(f"'{self.name}' has no image cross-attention: load an SD1.5 model with a motion adapter, an "
                         "IP-Adapter and its CLIP image encoder in LoadT2VBackbone.")

    # --- memory -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def memory_profile(self) -> MemoryProfile:
        """What ``memory_estimate`` needs to bound a model call and a decode."""
