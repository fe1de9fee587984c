"""The Denoiser: ``pred = denoiser(x, t, cond)`` over a video backbone.

Every sampler in the pack is a function over this callable. The backbone runs both classifier-free-guidance
branches in **one** batched call and takes per-frame levels ``[B, F]``; the Denoiser combines the branches.
``pred`` is what the backbone's network predicts (ε for the UNets, the flow velocity v for Wan): guidance is
linear in either, and the schedule reads x̂0 and ε̂ from it (``Schedule.split``).
"""
from __future__ import annotations

from typing import Callable

import torch

from .conditioning import Conditioning


class Denoiser:
    """Classifier-free-guided prediction of a backbone.

    ``guidance_2`` is the low-noise expert's own scale on a two-expert backbone (Wan 2.2 A14B; default: the
    same as ``guidance``). ``before_call`` runs before every model call (the host's interrupt check and call
    counting go there).
    """

    def __init__(self, backbone, guidance: float, before_call: Callable[[], None] | None = None,
                 guidance_2: float | None = None):
        for name, value in (("guidance", guidance), ("guidance_2", guidance_2)):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.backbone = backbone
        self.guidance = float(guidance)
        self.guidance_2 = None if guidance_2 is None else float(guidance_2)
        self.before_call = before_call
        self.calls = 0

    def __call__(self, x: torch.Tensor, t, cond: Conditioning) -> torch.Tensor:
        """``x`` ``[B, C, F, h, w]``; ``t`` a level, ``[B]`` or ``[B, F]``; returns the guided prediction in x's dtype."""
        if self.before_call is not None:
            self.before_call()
        self.calls += 1
        with_uncond = self.guidance != 1.0 or self.guidance_2 not in (None, 1.0)
        texts = [cond.negative, cond.positive] if with_uncond else [cond.positive]
        outputs = self.backbone.predict(x, t, texts, cond)
        if not with_uncond:
            return outputs[0]
        uncond, conditional = outputs
        scale = self.backbone.guidance_scale(t, x, self.guidance, self.guidance_2)
        return uncond + scale * (conditional - uncond)
