"""Plain fixed-length text-to-video DDIM sampling: the baseline, FIFO's base clip, I4VGen's regeneration."""
from __future__ import annotations

from typing import Callable

import torch

from .schedule import Schedule


def noise_like(shape, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise drawn on the CPU from the seed's generator (same numbers on every device)."""
    return torch.randn(shape, generator=generator, dtype=torch.float32)


def sample_t2v(denoiser: Callable, schedule: Schedule, cond, noise: torch.Tensor, steps: int, *,
               generator: torch.Generator, eta: float = 0.0, init_latent: torch.Tensor | None = None,
               strength: float = 1.0, on_step: Callable[[int, int, torch.Tensor], None] | None = None
               ) -> torch.Tensor:
    """DDIM over the backbone's grid.

    From noise (``init_latent`` None) the run starts at ``noise``. From a latent it is SDEdit-style:
    m = min(int(S·strength), S) steps, starting at ts[S − m] from the latent forward-noised with ``noise``
    (fresh noise, the caller's); strength 1 starts at ts[0], not at pure noise, and m = 0 returns the
    latent unchanged. ``on_step(i, total, x)`` runs after each step.
    """
    pairs = schedule.ddim_pairs(steps)
    if init_latent is None:
        x = noise
    else:
        start = schedule.strength_start(steps, strength)
        pairs = pairs[start:]
        if not pairs:
            return init_latent.clone()
        x = schedule.q_sample(init_latent, pairs[0][0], noise.to(init_latent.device))
    for i, (t, t_prev) in enumerate(pairs):
        eps = denoiser(x, t, cond)
        step_noise = noise_like(x.shape, generator).to(x.device) if eta > 0 else None
        x = schedule.ddim_step(x, eps, t, t_prev, eta, step_noise)
        if on_step is not None:
            on_step(i + 1, len(pairs), x)
    return x
