"""The Denoiser: ``pred = denoiser(x, t, cond)`` over a video backbone.

Every sampler in the pack is a function over this callable. The backbone runs both classifier-free-guidance
branches in **one** batched call and takes per-frame levels ``[B, F]``; the Denoiser combines the branches.
``pred`` is what the backbone's network predicts (ε for the UNets, the flow velocity v for Wan): guidance is
linear in either, and the schedule reads x̂0 and ε̂ from it (``Schedule.split``).

Every model call passes through here, so this is where work that must not go on is stopped: the host's interrupt
(also inside a call, before every block and layer), a first call that cannot fit in memory, and a latent or
prediction that is no longer finite (a diverged sampler would otherwise be decoded to a blank video).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .block_checks import DIVERGENCE_CAUSES, NonFiniteError, checked_blocks, is_finite
from .conditioning import Conditioning
from .memory_estimate import FreeMemory, check_model_call, check_sampling


def cfg_branches(guidance: float, guidance_2: float | None = None) -> int:
    """Branches one model call runs: the negative branch is left out when every scale is 1 (prompt only)."""
    return 2 if guidance != 1.0 or guidance_2 not in (None, 1.0) else 1


class Denoiser:
    """Classifier-free-guided prediction of a backbone.

    ``guidance_2`` is the low-noise expert's own scale on a two-expert backbone (Wan 2.2 A14B; default: the
    same as ``guidance``). ``before_call`` runs before every model call (call counting). ``check`` (the host's
    interrupt check) runs before every model call and before every block and layer inside it, so one long
    call still stops within a layer. ``free_memory(device, needed)`` (bytes free, None when unknown; see
    memory_estimate.FreeMemory) lets the first call refuse a request that cannot fit before the model runs.
    """

    def __init__(self, backbone, guidance: float, before_call: Callable[[], None] | None = None,
                 guidance_2: float | None = None, check: Callable[[], None] | None = None,
                 free_memory: FreeMemory | None = None):
        for name, value in (("guidance", guidance), ("guidance_2", guidance_2)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        self.backbone = backbone
        self.guidance = float(guidance)
        self.guidance_2 = None if guidance_2 is None else float(guidance_2)
        self.before_call = before_call
        self.check = check
        self.free_memory = free_memory
        self.calls = 0

    @property
    def branches(self) -> int:
        return cfg_branches(self.guidance, self.guidance_2)

    def check_fits(self, latent_shape) -> None:
        """Before any latent exists: refuse sampling latents of ``latent_shape`` (one model call's input) that
        cannot fit in the compute device's free memory (see ``memory_estimate.check_sampling``)."""
        check_sampling(self.backbone, latent_shape, self.free_memory, self.branches)

    def _diverged(self, what: str) -> NonFiniteError:
        fp16 = (" The model runs in fp16, whose largest number is 65504: load it with dtype bf16 or fp32."
                if self.backbone.dtype == torch.float16 else "")
        return NonFiniteError(f"Sampling diverged at model call {self.calls}: {what} holds NaN/inf. Likely causes: "
                              f"{DIVERGENCE_CAUSES}; guidance is {self.guidance:g}.{fp16}")

    def __call__(self, x: torch.Tensor, t, cond: Conditioning) -> torch.Tensor:
        """``x`` ``[B, C, F, h, w]``; ``t`` a level, ``[B]`` or ``[B, F]``; returns the guided prediction in x's dtype."""
        if self.before_call is not None:
            self.before_call()
        if self.check is not None:
            self.check()
        if self.calls == 0:
            check_model_call(self.backbone, x.shape, self.free_memory, self.branches)
        self.calls += 1
        if not is_finite(x):
            if self.calls == 1:
                raise NonFiniteError("The latent given to the sampler holds NaN/inf (before its first model call): "
                                     "the node that made it diverged; rerun that with other settings. Likely causes: "
                                     f"{DIVERGENCE_CAUSES}.")
            raise self._diverged("the latent entering it")
        with_uncond = self.branches == 2
        texts = [cond.negative, cond.positive] if with_uncond else [cond.positive]
        # the networks wherever they are held: a group-offloaded or swapped one is outside ``modules``
        with checked_blocks(list(self.backbone.denoising_networks().values()), self.check):
            outputs = self.backbone.predict(x, t, texts, cond)
        if with_uncond:
            uncond, conditional = outputs
            scale = self.backbone.guidance_scale(t, x, self.guidance, self.guidance_2)
            pred = uncond + scale * (conditional - uncond)
        else:
            pred = outputs[0]
        if not is_finite(pred):
            raise self._diverged("the model's guided prediction")
        return pred
