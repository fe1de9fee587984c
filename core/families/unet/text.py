"""CLIP text embeddings, as the ModelScope and AnimateDiff pipelines make them."""
from __future__ import annotations

import torch

from ...conditioning import dropped_tail


@torch.no_grad()
def clip_text_embeddings(tokenizer, text_encoder, text: str) -> tuple[torch.Tensor, str | None]:
    """A CLIP text encoder's last hidden state ``[1, 77, D]`` (padded to the model length, like its pipeline)."""
    limit = tokenizer.model_max_length
    ids = tokenizer(text, padding="max_length", max_length=limit, truncation=True, return_tensors="pt").input_ids
    device = next(text_encoder.parameters()).device
    return text_encoder(ids.to(device))[0].cpu(), dropped_tail(tokenizer, text, limit)
