"""Multistep solvers for plain sampling (T2V Sampler, I4VGen's regeneration), as their owners run them.

``euler`` is the pack's own loop (``methods.t2v.sample_t2v``: DDIM on the ε-models, which at η = 0 is Euler for
a flow model). ``uni_pc`` is not written a third time: on the diffusers backbones it is diffusers'
``UniPCMultistepScheduler`` over the backbone's own scheduler configuration (a Wan folder's is UniPC on flow
sigmas, its official sampler), stepped with scalar levels only; on ComfyUI's own MODEL it is ComfyUI's sampler
(``nodes/native/solver.py``). Either way the model calls go through the pack's Denoiser, so guidance, the
interrupt and the memory and divergence checks apply as for Euler.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

SAMPLERS = ("euler", "uni_pc")
Predict = Callable[[torch.Tensor, object], torch.Tensor]
"""``predict(x, level)``: the Denoiser's guided prediction at one level (the backbone schedule's units)."""
OnStep = Callable[[int, int, torch.Tensor], None]


def check_sampler(name: str) -> None:
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got '{name}'")


@dataclass(frozen=True)
class SolverRun:
    """One run of a solver: ``start``, the level its input latent is at (pure noise, or a latent forward-noised to
    it), ``calls`` model calls, and ``run(x, predict, on_step)`` → the sampled latent."""

    start: object
    calls: int
    run: Callable[[torch.Tensor, Predict, OnStep | None], torch.Tensor]


def diffusers_unipc(config: dict, schedule, steps: int, strength: float = 1.0) -> SolverRun:
    """diffusers' UniPC over a backbone's scheduler ``config``, its last m = min(int(S·strength), S) steps (SDEdit)."""
    from diffusers import UniPCMultistepScheduler
    scheduler = UniPCMultistepScheduler.from_config({k: v for k, v in config.items() if not k.startswith("_")})
    scheduler.set_timesteps(steps)  # for the levels; every run sets them again (the solver keeps a history)
    first = schedule.strength_start(steps, strength)
    flow = schedule.prediction == "flow"
    # The network sees the scheduler's timestep (for flow sigmas an integer, 1000·σ cut, as the pipeline passes
    # it): as a level, timestep / 1000 on a flow schedule, the table index on a VP one.
    timesteps = scheduler.timesteps.tolist()
    levels = [t / schedule.num_train_timesteps if flow else int(t) for t in timesteps]
    start = float(scheduler.sigmas[first]) if flow else levels[min(first, len(levels) - 1)]

    def run(x: torch.Tensor, predict: Predict, on_step: OnStep | None = None) -> torch.Tensor:
        scheduler.set_timesteps(steps)
        scheduler.set_begin_index(first)
        total = len(timesteps) - first
        for i in range(first, len(timesteps)):
            pred = predict(x, levels[i])
            x = scheduler.step(pred.to(x.dtype), timesteps[i], x, return_dict=False)[0]
            if on_step is not None:
                on_step(i - first + 1, total, x)
        return x

    return SolverRun(start=start, calls=len(timesteps) - first, run=run)
