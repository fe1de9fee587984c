"""Prompt (and optional image) conditioning for the Denoiser.

The unconditional branch of classifier-free guidance is the encoded negative prompt (the empty prompt
by default), never zeros: that is what the backbones were trained and evaluated with.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch

from .loading.file_checks import abridge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Conditioning:
    """Text embeddings ``[1, L, D]`` for both CFG branches, plus optional image tokens.

    ``image`` / ``image_uncond`` are the inputs of the backbone's image projection (e.g. CLIP hidden
    states for IP-Adapter Plus); ``image_scale`` is the image cross-attention scale.
    """

    positive: torch.Tensor
    negative: torch.Tensor
    image: torch.Tensor | None = None
    image_uncond: torch.Tensor | None = None
    image_scale: float = 1.0
    notes: tuple[str, ...] = ()
    prompt: str = ""  # the prompt's text, for nodes that score images against it (I4VGen's reward model)

    def with_image(self, image: torch.Tensor, image_uncond: torch.Tensor, scale: float = 1.0) -> "Conditioning":
        return replace(self, image=image, image_uncond=image_uncond, image_scale=scale)


def dropped_tail(tokenizer, text: str, limit: int) -> str | None:
    """The part of ``text`` beyond ``limit`` tokens (the last kept slot holds the end token), or None."""
    full = tokenizer(text, truncation=False).input_ids
    return tokenizer.decode(full[limit - 1:-1]) if len(full) > limit else None


def encode_text(backbone, prompt: str, negative: str | None = "") -> Conditioning:
    """Encode both prompts with the backbone's own text encoder, as its pipeline does.

    ``negative`` None (or empty on a backbone with an official default, Wan's) is the backbone's default
    negative prompt. The embeddings are kept on the CPU: the host caches them between runs, and the Denoiser
    moves them to the device per call.
    """
    if not negative:
        negative = backbone.default_negative_prompt
    notes = []
    embeddings = []
    for label, text in (("prompt", prompt), ("negative prompt", negative)):
        embedded, dropped = backbone.embed_text(text)
        if dropped:
            cut = f"The {label} is longer than the text encoder's {backbone.text_tokens} tokens; " \
                  "this part was cut off: "
            log.warning("%s'%s'", cut, abridge(dropped))  # a pasted megabyte must not flood the console
            notes.append(f"{cut}'{dropped}'")
        embeddings.append(embedded)
    return Conditioning(positive=embeddings[0], negative=embeddings[1], notes=tuple(notes), prompt=prompt)


@dataclass(frozen=True)
class ImageTokens:
    """What travels on an IMAGE_EMBEDS link: ``Conditioning.with_image(tokens, uncond)`` takes the pair as is."""

    tokens: torch.Tensor  # the image's tokens, [N, n_tokens, D] (or [N, D] for the plain IP-Adapter)
    uncond: torch.Tensor  # the gray image's tokens, for the unconditional branch
