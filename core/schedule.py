"""Diffusion schedule arithmetic, all of it, written from the ``alphas_cumprod`` table.

Every sampler in the pack does its noising and its DDIM updates through this module, so one formula
serves scalar timesteps (one noise level for the whole clip) and per-frame timesteps (FIFO's diagonal
queue). Timesteps are integer indices into the table; ``-1`` stands for "past the end of the grid"
and reads the scheduler's final alpha (ᾱ_0 when ``set_alpha_to_one`` is false, as for every backbone
we support), exactly as diffusers' DDIM does.

We never call ``scheduler.step`` / ``scheduler.add_noise``: with per-frame timesteps they broadcast
silently wrongly, and FIFO's rounded grid breaks ``step``'s ``t - 1000 // S`` rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

FINAL = -1
"""Timestep index meaning "after the last grid step" (reads :attr:`Schedule.final_alpha_cumprod`)."""


@dataclass(frozen=True)
class Schedule:
    """The ᾱ table of a backbone's training noise schedule plus its sampling conventions."""

    alphas_cumprod: torch.Tensor  # [T] float32, as diffusers builds it
    final_alpha_cumprod: torch.Tensor  # 0-d float32
    timestep_spacing: str = "leading"  # "leading" | "linspace" | "trailing", for DDIM grids
    steps_offset: int = 1

    @classmethod
    def from_scheduler(cls, scheduler) -> "Schedule":
        """Take the table and conventions from a diffusers scheduler object (built from the model folder)."""
        cfg = scheduler.config
        prediction = cfg.get("prediction_type", "epsilon")
        if prediction != "epsilon":
            raise ValueError(
                f"This backbone's scheduler predicts '{prediction}'; only epsilon-prediction models are supported "
                "(ModelScope, Zeroscope and AnimateDiff on SD1.5 all are). Use one of those."
            )
        return cls(
            alphas_cumprod=scheduler.alphas_cumprod.to(torch.float32).clone(),
            final_alpha_cumprod=torch.as_tensor(scheduler.final_alpha_cumprod, dtype=torch.float32).clone(),
            timestep_spacing=cfg.get("timestep_spacing", "leading"),
            steps_offset=int(cfg.get("steps_offset", 0)),
        )

    @property
    def num_train_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    # --- table look-ups ------------------------------------------------------------------------
    def alpha(self, t, like: torch.Tensor) -> torch.Tensor:
        """ᾱ_t broadcastable against a video tensor ``like`` of shape ``[B, C, F, h, w]``.

        ``t`` is an int (one level for everything), a ``[B]`` tensor (one per clip) or a ``[B, F]``
        tensor (one per frame; ``[1, F]`` shares the frame levels across the batch). ``FINAL`` (-1)
        reads the final alpha.
        """
        table = self.alphas_cumprod.to(like.device)
        final = self.final_alpha_cumprod.to(like.device)
        if not torch.is_tensor(t):
            value = final if int(t) < 0 else table[int(t)]
            return value.to(like.dtype)
        t = t.to(like.device).long()
        value = torch.where(t >= 0, table[t.clamp(min=0)], final)
        if value.dim() == 1:
            value = value.view(-1, 1, 1, 1, 1)
        elif value.dim() == 2:
            value = value.view(value.shape[0], 1, value.shape[1], 1, 1)
        elif value.dim() != 0:
            raise ValueError(f"timesteps must be a scalar, [B] or [B, F]; got shape {tuple(t.shape)}")
        return value.to(like.dtype)

    # --- forward process -----------------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """Forward-noise clean latents to level ``t``: √ᾱ_t·x0 + √(1−ᾱ_t)·noise."""
        a = self.alpha(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def renoise(self, x: torch.Tensor, t_from, t_to, noise: torch.Tensor) -> torch.Tensor:
        """Push latents at level ``t_from`` back up to the noisier ``t_to`` in one jump (DDPM forward
        between two levels): √(ᾱ_to/ᾱ_from)·x + √(1 − ᾱ_to/ᾱ_from)·noise."""
        ratio = self.alpha(t_to, x) / self.alpha(t_from, x)
        return ratio.sqrt() * x + (1 - ratio).sqrt() * noise

    # --- reverse process -----------------------------------------------------------------------
    def predict_x0(self, x: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
        a = self.alpha(t, x)
        return (x - (1 - a).sqrt() * eps) / a.sqrt()

    def ddim_step(self, x: torch.Tensor, eps: torch.Tensor, t, t_prev, eta: float = 0.0,
                  noise: torch.Tensor | None = None) -> torch.Tensor:
        """One DDIM update from level ``t`` to ``t_prev`` (scalar or per-frame), η-stochastic.

        σ = η·√((1−ᾱ_prev)/(1−ᾱ_t)·(1−ᾱ_t/ᾱ_prev)); x' = √ᾱ_prev·x̂0 + √(1−ᾱ_prev−σ²)·ε̂ + σ·ξ.
        Where t == t_prev (FIFO's head slot on ts_0 = 0) the update is exactly the identity.
        """
        a_t = self.alpha(t, x)
        a_prev = self.alpha(t_prev, x)
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        if eta > 0:
            if noise is None:
                raise ValueError("ddim_step with eta > 0 needs a noise tensor (randomness comes from the seed)")
            sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
            stepped = a_prev.sqrt() * x0 + (1 - a_prev - sigma ** 2).sqrt() * eps + sigma * noise
        else:
            stepped = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        # Mathematically the identity when the level does not change, but not in floating point.
        return torch.where(a_t == a_prev, x, stepped)

    def score_distillation_step(self, x: torch.Tensor, eps_pred: torch.Tensor, noise: torch.Tensor, t,
                                step_size: float) -> torch.Tensor:
        """I4VGen's closed-form NI-VSDS update of a clean latent: x − α·(1−ᾱ_t)·(ε̂ − ε).

        ε is the noise that made the UNet's input √ᾱ_t·x + √(1−ᾱ_t)·ε, ε̂ its prediction. Equivalently
        x ← (1−λ)·x + λ·x̂0 with λ = α·√(ᾱ_t(1−ᾱ_t)): a pull towards the denoised estimate, no autograd.
        """
        return x - step_size * (1 - self.alpha(t, x)) * (eps_pred - noise)

    # --- timestep grids ------------------------------------------------------------------------
    def ddim_timesteps(self, steps: int, spacing: str | None = None) -> list[int]:
        """The sampler's descending grid, as the backbone's DDIM scheduler would build it."""
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        T = self.num_train_timesteps
        spacing = spacing or self.timestep_spacing
        limit = T - self.steps_offset if spacing == "leading" else T
        if steps > limit:
            raise ValueError(f"steps ({steps}) must be at most {limit} for this backbone's "
                             f"{T} training timesteps ({spacing} spacing)")
        if spacing == "leading":
            ratio = T // steps
            return [i * ratio + self.steps_offset for i in reversed(range(steps))]
        if spacing == "linspace":
            return torch.linspace(0, T - 1, steps, dtype=torch.float64).round().long().flip(0).tolist()
        if spacing == "trailing":
            ratio = T / steps
            return [int(round(T - i * ratio)) - 1 for i in range(steps)]
        raise ValueError(f"unknown timestep spacing '{spacing}' (leading, linspace or trailing)")

    def ddim_pairs(self, steps: int, spacing: str | None = None) -> list[tuple[int, int]]:
        """(t, t_prev) for each DDIM step, with diffusers' convention t_prev = t − T // S
        (``FINAL`` when negative). On a leading grid this is simply the next grid point."""
        ratio = self.num_train_timesteps // steps
        return [(t, t - ratio if t - ratio >= 0 else FINAL) for t in self.ddim_timesteps(steps, spacing)]

    def fifo_timesteps(self, steps: int) -> list[int]:
        """FIFO-Diffusion's ascending queue labels: round(linspace(0, T−1, S)); ts_0 = 0."""
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        return torch.linspace(0, self.num_train_timesteps - 1, steps, dtype=torch.float64).round().long().tolist()

    def strength_start(self, steps: int, strength: float, spacing: str | None = None) -> int:
        """Index into the descending grid where an SDEdit-style run of the given strength starts:
        m = min(int(S·strength), S) steps are run, starting at ts[S − m] (strength 1 starts at ts[0])."""
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"denoise strength must be within [0, 1], got {strength}")
        return steps - min(int(steps * strength), steps)
