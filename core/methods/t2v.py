"""Plain fixed-length text-to-video sampling (Euler/DDIM, or a multistep solver such as uni_pc): the baseline,
FIFO's base clip, I4VGen's regeneration."""
from __future__ import annotations

import hashlib
from typing import Callable

import torch

from ..schedule import Schedule
from ..solvers import SolverRun, check_sampler
from ..validation import check_frames, check_latent_frames, check_size, check_steps
from .host import Host


FROM_LATENT_STREAM = "from_latent"
"""The stream of a run that starts from an input latent (I4VGen's regeneration, SDEdit)."""
NIVSDS_STREAM = "nivsds"
"""The stream of NI-VSDS's fixed noise ε."""


def seeded(seed: int, stream: str | None = None) -> torch.Generator:
    """A CPU generator for ``seed``; a named ``stream`` gets its own generator, derived from the seed by a hash.

    Nodes of one graph often share a seed value. Sampling from an input latent (I4VGen's regeneration) and
    NI-VSDS's fixed ε draw from their own streams, so with equal seeds they are still independent of the
    noise the candidates (the plain stream's first draws) were made from, and still reproducible.
    """
    if stream is None:
        return torch.Generator("cpu").manual_seed(int(seed))
    digest = hashlib.sha256(f"{stream}:{int(seed)}".encode()).digest()
    return torch.Generator("cpu").manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def noise_like(shape, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise drawn on the CPU from the seed's generator (same numbers on every device)."""
    return torch.randn(shape, generator=generator, dtype=torch.float32)


GRIDS = ("backbone", "fifo")


def grid_pairs(schedule: Schedule, steps: int, grid: str) -> list[tuple]:
    """(level, next level) per model call of a plain sampling run on the named grid."""
    if grid == "backbone":
        return schedule.sampling_pairs(steps)
    if grid == "fifo":
        return schedule.fifo_base_pairs(steps)
    raise ValueError(f"grid must be one of {', '.join(GRIDS)}; got '{grid}'")


def sample_t2v(denoiser: Callable, schedule: Schedule, cond, noise: torch.Tensor, steps: int, *,
               generator: torch.Generator, eta: float = 0.0, init_latent: torch.Tensor | None = None,
               strength: float = 1.0, grid: str = "backbone",
               on_step: Callable[[int, int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """DDIM (Euler for a flow model at η = 0) over the backbone's grid, or FIFO's (``grid="fifo"``: the base
    clip of FIFO-Diffusion as its reference samples it, each of its S levels stepping to the next).

    From noise (``init_latent`` None) the run starts at ``noise``. From a latent it is SDEdit-style:
    m = min(int(S·strength), S) steps, starting at ts[S − m] from the latent forward-noised with ``noise``
    (fresh noise, the caller's); strength 1 starts at ts[0], not at pure noise, and m = 0 returns the
    latent unchanged. ``on_step(i, total, x)`` runs after each step.
    """
    pairs = grid_pairs(schedule, steps, grid)
    if init_latent is None:
        x = noise
    else:
        start = schedule.strength_start(steps, strength)
        pairs = pairs[start:]
        if not pairs:
            return init_latent.clone()
        x = schedule.q_sample(init_latent, pairs[0][0], noise.to(init_latent.device))
    for i, (t, t_prev) in enumerate(pairs):
        pred = denoiser(x, t, cond)
        step_noise = noise_like(x.shape, generator).to(x.device) if eta > 0 else None
        x = schedule.ddim_step(x, pred, t, t_prev, eta, step_noise)
        if on_step is not None:
            on_step(i + 1, len(pairs), x)
    return x


def sample_with_solver(denoiser: Callable, solver: SolverRun, schedule: Schedule, cond, noise: torch.Tensor, *,
                       init_latent: torch.Tensor | None = None,
                       on_step: Callable[[int, int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """A multistep solver's run (``backbone.solver``) over the Denoiser: from ``noise``, or SDEdit-style from
    ``init_latent`` forward-noised to the run's first level (no steps: the latent unchanged)."""
    if init_latent is None:
        x = noise
    elif solver.calls == 0:
        return init_latent.clone()
    else:
        x = schedule.q_sample(init_latent, solver.start, noise.to(init_latent.device))
    return solver.run(x, lambda latent, level: denoiser(latent, level, cond), on_step)


def text_to_video(backbone, cond, *, frames: int, width: int, height: int, steps: int, guidance: float,
                  guidance_2: float | None = None, eta: float = 0.0, generator: torch.Generator,
                  latent: torch.Tensor | None = None, denoise: float = 1.0, grid: str = "backbone",
                  sampler: str = "euler",
                  host: Host = Host(), on_step: Callable[[int, int, torch.Tensor], None] | None = None
                  ) -> torch.Tensor:
    """Plain sampling of a ``frames``-frame (video frames) ``width`` × ``height`` clip, or SDEdit-style from a
    video ``latent`` (then its own shape) with strength ``denoise``; the latent on ``host.out_device``. The entry
    point of T2VSampler, FIFO's base clip, I4VGen's regeneration and the command line's ``t2v``."""
    check_steps(steps)
    check_sampler(sampler)
    if not 0.0 <= denoise <= 1.0:
        raise ValueError(f"denoise must be within [0, 1], got {denoise}")
    if sampler != "euler" and (grid != "backbone" or eta > 0):
        raise ValueError(f"sampler {sampler} runs the backbone's own grid, deterministically: set grid to backbone "
                         "and eta to 0, or use sampler euler (FIFO's base-clip grid and eta are Euler's).")
    if latent is not None:
        check_latent_frames(backbone, latent.shape[2])
        shape, latent = tuple(latent.shape), latent.to(backbone.device, torch.float32)
    else:
        check_size(width, height)
        check_frames(backbone, frames)
        shape = backbone.latent_shape(frames, width, height)
    denoiser = host.denoiser(backbone, guidance, guidance_2)
    denoiser.check_fits(shape)
    noise = noise_like(shape, generator).to(backbone.device)
    if sampler == "euler":
        out = sample_t2v(denoiser, backbone.schedule, cond, noise, steps, generator=generator, eta=eta,
                         init_latent=latent, strength=denoise, grid=grid, on_step=on_step)
    else:
        out = sample_with_solver(denoiser, backbone.solver(sampler, steps, denoise), backbone.schedule, cond, noise,
                                 init_latent=latent, on_step=on_step)
    return out.to(host.out_device)
