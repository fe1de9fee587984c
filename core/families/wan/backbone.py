"""The Wan family (2.1 T2V 1.3B/14B, 2.2 T2V A14B, 2.2 TI2V 5B) through diffusers' own Wan classes.

Rectified flow: the transformer predicts the velocity v = ε − x0 at σ (given 1000·σ), so its schedule is a
``FlowSchedule`` with the folder's shift. What the methods need of it, and why it differs from the UNets:
- **per-frame levels natively**: the transformer takes one timestep per token; tokens are frame-major, so a
  ``[B, F]`` level becomes ``[B, F·tokens_per_frame]`` by repeating each frame's level (no hooks);
- **two experts** (A14B): the high-noise ``transformer`` for 1000·σ ≥ boundary, the low-noise
  ``transformer_2`` below, each with its own guidance scale; a window whose frames sit on both sides of the
  boundary runs both experts and every frame takes the prediction of the expert its own level selects;
- **text**: UMT5, always padded to 512 rows (the cross-attention has no mask; the rows past the prompt are
  exactly zero, as in training), with Wan's official negative prompt as the default;
- **latent frames**: the causal VAE packs 4 video frames per latent frame after the first, so video frame
  counts are 4k + 1 and each latent frame after the first decodes to 4 frames, streamed seamlessly
  (``wan_vae.StreamingDecoder``); latents are normalised per channel.
"""
from __future__ import annotations

import html
import re

import torch

from . import vae as wan_vae
from .experts import expert_guidance, predict_by_expert
from .frames import WanFrames
from ...interface import BackboneModules, MemoryProfile, VideoBackbone
from ...memory_estimate import ACTIVATION_COPIES
from ...schedule import FlowSchedule

OFFICIAL_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，"
    "杂乱的背景，三条腿，背景人很多，倒着走")
"""Wan's own default negative prompt (its shared config's ``sample_neg_prompt``); diffusers defaults to ""."""
TEXT_LENGTH = 512
WAN_SOLVER = {"_class_name": "UniPCMultistepScheduler", "prediction_type": "flow_prediction",
              "use_flow_sigmas": True}
"""Wan's official sampler, what its diffusers folders ship (with the model's shift)."""


def clean_prompt(text: str) -> str:
    """What Wan's pipeline does to a prompt before tokenising (ftfy aside): unescape HTML twice, collapse spaces."""
    return re.sub(r"\s+", " ", html.unescape(html.unescape(text))).strip()


class WanBackbone(WanFrames, VideoBackbone):
    family = "wan"
    network_name = "transformer"
    network_names = ("transformer", "transformer_2")
    causal_vae = True
    text_encoder_moves = True

    def __init__(self, name: str, transformer, vae, text_encoder, tokenizer, schedule: FlowSchedule,
                 dtype: torch.dtype, transformer_2=None, boundary_ratio: float | None = None,
                 expand_timesteps: bool = False, scheduler_config: dict | None = None):
        self.name, self.transformer, self.transformer_2 = name, transformer, transformer_2
        self.vae, self.text_encoder, self.tokenizer = vae, text_encoder, tokenizer
        self.schedule, self.dtype, self.device = schedule, dtype, torch.device("cpu")
        self.boundary_ratio = boundary_ratio if transformer_2 is not None else None
        self.expand_timesteps = expand_timesteps
        # uni_pc: the folder's own scheduler (UniPC on flow sigmas), else Wan's official one with this shift
        self.solver_config = scheduler_config or {**WAN_SOLVER, "flow_shift": schedule.shift,
                                                  "num_train_timesteps": schedule.num_train_timesteps}
        self.default_negative_prompt = OFFICIAL_NEGATIVE_PROMPT
        # UMT5-XXL (10.6 GiB in bf16) is not part of what the memory manager keeps on the GPU: it goes there only
        # to encode prompts and leaves right after (embed_text), through ``text_encoder_host`` where a host's
        # memory manager must make room for it and count it (``text_encoder_moves``).
        self.modules = BackboneModules(transformer=transformer, transformer_2=transformer_2, vae=vae)
        self.modules.eval().requires_grad_(False)
        text_encoder.eval().requires_grad_(False)

    # --- shapes ------------------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        return int(self.transformer.config.in_channels)

    @property
    def spatial_factor(self) -> int:
        return int(self.vae.config.scale_factor_spatial)

    @property
    def patch(self) -> tuple[int, int, int]:
        return tuple(self.transformer.config.patch_size)

    @property
    def latent_multiple(self) -> int:
        return self.patch[1]

    @property
    def pixel_multiple(self) -> int:
        """Pixels per token side: the VAE's spatial factor × the transformer's patch."""
        return self.spatial_factor * self.patch[1]

    @property
    def native_size(self) -> int:
        return 480

    # --- text ----------------------------------------------------------------------------------------
    text_tokens = TEXT_LENGTH

    @torch.no_grad()
    def embed_text(self, text: str) -> tuple[torch.Tensor, str | None]:
        from ...conditioning import dropped_tail
        text = clean_prompt(text)
        tokens = self.tokenizer(text, padding="max_length", max_length=TEXT_LENGTH, truncation=True,
                                add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        device, host = self.device, self.text_encoder_host
        if host is not None:
            host.bring(self.text_encoder)
        else:
            self.text_encoder.to(device)
        try:
            mask = tokens.attention_mask.to(device)
            hidden = self.text_encoder(tokens.input_ids.to(device), mask).last_hidden_state
            # Rows past the prompt (and its end token) are exactly zero, as the pipeline and training have them.
            hidden = (hidden * mask.unsqueeze(-1).to(hidden.dtype)).float().cpu()
        finally:  # off the GPU once the prompt is encoded
            if host is not None:
                host.release(self.text_encoder)
            else:
                self.text_encoder.to("cpu")
        return hidden, dropped_tail(self.tokenizer, text, TEXT_LENGTH)

    # --- the model call ------------------------------------------------------------------------------
    def _boundary(self) -> float | None:
        return None if self.boundary_ratio is None else self.boundary_ratio * self.schedule.num_train_timesteps

    def guidance_scale(self, t, like: torch.Tensor, guidance: float, guidance_2: float | None):
        model_t = torch.as_tensor(self.schedule.model_timestep(t), dtype=torch.float32)
        return expert_guidance(model_t, self._boundary(), like, guidance, guidance_2)

    def _timesteps(self, model_t: torch.Tensor, batch: int, frames: int, tokens_per_frame: int) -> torch.Tensor:
        """``[batch]`` for one level per clip (as WanPipeline passes it), else per token ``[batch, F·tokens]``."""
        if model_t.dim() == 2 or self.expand_timesteps:
            per_frame = model_t.expand(batch, frames) if model_t.dim() == 2 else model_t.reshape(-1, 1).expand(batch, frames)
            return per_frame.repeat_interleave(tokens_per_frame, dim=1)
        return model_t.reshape(-1).expand(batch)

    def predict(self, x: torch.Tensor, t, texts: list[torch.Tensor], cond) -> list[torch.Tensor]:
        """v̂ of ``x`` ``[B, C, F, h, w]`` at level(s) ``t`` (σ) for each text of ``texts``, one call per expert."""
        if cond.image is not None:
            raise ValueError(f"'{self.name}' (Wan text-to-video) has no image cross-attention, so image tokens cannot "
                             "condition it: disconnect image_embeds / turn image seeding off.")
        batch, _, frames, h, w = x.shape
        branches = len(texts)
        device, dtype = self.device, self.dtype
        sample = torch.cat([x] * branches).to(device, dtype)
        text = torch.cat([e.to(device).expand(batch, *e.shape[1:]) for e in texts]).to(dtype)
        model_t = torch.as_tensor(self.schedule.model_timestep(t), dtype=torch.float32, device=device)
        if model_t.dim() == 2:
            model_t = model_t.expand(batch, frames)
        tokens = (h // self.patch[1]) * (w // self.patch[2])
        timestep = torch.cat([self._timesteps(model_t, batch, frames, tokens)] * branches)

        def run(transformer) -> torch.Tensor:
            if self.network_swap is not None:
                self.network_swap.use(transformer)
            out = transformer(hidden_states=sample, timestep=timestep, encoder_hidden_states=text, return_dict=False)[0]
            return out.to(x.dtype)

        # the expert already on the GPU runs first, so experts taking turns swap once per call across the boundary
        low_first = self.network_swap is not None and self.network_swap.is_resident(self.transformer_2)
        out = predict_by_expert(model_t, self._boundary(), frames, branches, lambda: run(self.transformer),
                                lambda: run(self.transformer_2), low_first)
        return list(out.chunk(branches))

    # --- pixels --------------------------------------------------------------------------------------
    def encode(self, pixels: torch.Tensor, chunk: int | None = None, check=None) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` in [−1, 1] → one latent frame each, ``[1, C, N, h, w]`` (normalised): every
        image encodes alone as the first frame of a video, as an image-to-video first frame does. ``check`` (the
        host's interrupt check) runs before every VAE block and layer."""
        from ...block_checks import checked_blocks
        vae = self.vae
        p = next(vae.parameters())
        with checked_blocks([vae], check):
            latents = [wan_vae.encode_video(vae, pixels[i:i + 1].unsqueeze(2).to(p.device, p.dtype))
                       for i in range(pixels.shape[0])]
        return torch.cat(latents, dim=2)

    def encode_video(self, pixels: torch.Tensor, check=None) -> torch.Tensor:
        """A (4k + 1)-frame video ``[1, 3, N, H, W]`` in [−1, 1] → its normalised latent ``[1, C, k + 1, h, w]``;
        ``check`` runs before every VAE block and layer."""
        from ...block_checks import checked_blocks
        p = next(self.vae.parameters())
        with checked_blocks([self.vae], check):
            return wan_vae.encode_video(self.vae, pixels.to(p.device, p.dtype))

    def stream_decoder(self, out_device: torch.device | str = "cpu"):
        """A callable decoding the next latent frames of one continuous video to IMAGE frames on ``out_device``:
        the first latent frame gives 1 frame, every later one 4, and the result equals one-call decoding."""
        decoder = wan_vae.StreamingDecoder(self.vae)
        return lambda latents: wan_vae.decode_to_images(decoder, latents, out_device)

    def decode(self, latents: torch.Tensor, chunk: int | None = None, out_device: torch.device | str = "cpu",
               check=None, free_memory=None) -> torch.Tensor:
        """Latents ``[B, C, F, h, w]`` → IMAGE ``[B·(4(F − 1) + 1), H, W, 3]``: each clip one continuous video,
        streamed ``chunk`` latent frames at a time (same result as one call, memory flat in length). ``check``
        (the host's interrupt check) runs before every VAE block and layer; with ``free_memory(device, needed)`` a
        decode that cannot fit is refused before it starts (``memory_estimate.check_decode``)."""
        from ...block_checks import checked_blocks
        from ...memory_estimate import check_decode
        step = max(1, chunk or 1)
        check_decode(self, latents.shape, step, free_memory, out_device)
        clips = []
        with checked_blocks([self.vae], check):
            for b in range(latents.shape[0]):
                decode = self.stream_decoder(out_device)
                clips += [decode(latents[b:b + 1, :, i:i + step]) for i in range(0, latents.shape[2], step)]
        return torch.cat(clips)

    # --- memory --------------------------------------------------------------------------------------
    def memory_profile(self) -> MemoryProfile:
        """Patchified tokens, each block at the inner width and its feed-forward width; the causal VAE's part from
        ``vae.decoder_geometry``."""
        config = self.transformer.config
        pixel_side, stage_side, vae_width = wan_vae.decoder_geometry(self.vae)
        return MemoryProfile(
            width=max(int(config.num_attention_heads) * int(config.attention_head_dim), int(config.ffn_dim)),
            cells=tuple(int(p) for p in config.patch_size), copies=ACTIVATION_COPIES, pixel_side=pixel_side,
            stage_side=stage_side, vae_width=vae_width, causal=True, vae_dtype=next(self.vae.parameters()).dtype)
