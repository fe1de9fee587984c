"""Wan 2.2 A14B's two experts, written once for every Wan backbone (diffusers' and ComfyUI's own MODEL).

The high-noise expert denoises levels with 1000·σ ≥ the boundary, the low-noise one those below, each with its
own guidance scale. A call whose frames sit on both sides (FIFO's diagonal window) runs both experts and every
frame takes the prediction of the expert its own level selects.
"""
from __future__ import annotations

from typing import Callable

import torch


def is_high(model_t: torch.Tensor, boundary: float) -> torch.Tensor:
    """Which model timesteps (1000·σ, any shape) the high-noise expert denoises."""
    return model_t >= boundary


def expert_guidance(model_t: torch.Tensor, boundary: float | None, like: torch.Tensor, guidance: float,
                    guidance_2: float | None):
    """The guidance scale of each level's expert: a number, or per clip / per frame broadcast against ``like``."""
    if boundary is None or guidance_2 is None:
        return guidance
    high = is_high(model_t, boundary)
    if high.dim() == 0:
        return guidance if bool(high) else guidance_2
    scale = torch.where(high, torch.tensor(guidance), torch.tensor(guidance_2)).to(like.device, like.dtype)
    return scale.view(scale.shape[0], 1, -1, 1, 1) if scale.dim() == 2 else scale.view(-1, 1, 1, 1, 1)


def predict_by_expert(model_t: torch.Tensor, boundary: float | None, frames: int, branches: int,
                      run_high: Callable[[], torch.Tensor], run_low: Callable[[], torch.Tensor],
                      low_first: bool = False) -> torch.Tensor:
    """The prediction ``[branches·B, C, F, h, w]`` with each frame from its level's expert (``model_t`` a level,
    ``[B]`` or ``[B, F]``); ``low_first`` runs the low-noise expert first (it is the one on the device), so experts
    taking turns swap once per call."""
    if boundary is None:
        return run_high()
    high = is_high(model_t, boundary)
    if bool(high.all()):
        return run_high()
    if not bool(high.any()):
        return run_low()
    batch = high.shape[0] if high.dim() else 1
    mask = high if high.dim() == 2 else high.reshape(-1, 1).expand(batch, frames)
    mask = torch.cat([mask] * branches).view(branches * batch, 1, frames, 1, 1)
    if low_first:
        low = run_low()
        return torch.where(mask.to(low.device), run_high(), low)
    high_out = run_high()
    return torch.where(mask.to(high_out.device), high_out, run_low())
