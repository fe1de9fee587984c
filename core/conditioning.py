"""Prompt (and optional image) conditioning for the Denoiser.

The unconditional branch of classifier-free guidance is the encoded negative prompt (the empty prompt
by default), never zeros: that is what the backbones were trained and evaluated with.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch

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


def _tokenize(tokenizer, text: str) -> tuple[torch.Tensor, str | None]:
    """Token ids padded to the model length; returns the dropped tail when the prompt is too long."""
    limit = tokenizer.model_max_length
    ids = tokenizer(text, padding="max_length", max_length=limit, truncation=True, return_tensors="pt").input_ids
    full = tokenizer(text, truncation=False).input_ids
    dropped = None
    if len(full) > limit:
        dropped = tokenizer.decode(full[limit - 1:-1])
    return ids, dropped


@torch.no_grad()
def encode_text(backbone, prompt: str, negative: str = "") -> Conditioning:
    """Encode both prompts with the backbone's own text encoder (last hidden state, like its pipeline).

    The embeddings are kept on the CPU: the host caches them between runs, and the Denoiser moves the
    few kilobytes to the device per call.
    """
    notes = []
    embeddings = []
    for label, text in (("prompt", prompt), ("negative prompt", negative)):
        ids, dropped = _tokenize(backbone.tokenizer, text)
        if dropped:
            note = (f"The {label} is longer than the text encoder's {backbone.tokenizer.model_max_length} tokens; "
                    f"this part was cut off: '{dropped}'")
            log.warning(note)
            notes.append(note)
        device = next(backbone.text_encoder.parameters()).device
        embeddings.append(backbone.text_encoder(ids.to(device))[0].cpu())
    return Conditioning(positive=embeddings[0], negative=embeddings[1], notes=tuple(notes), prompt=prompt)
