"""Diffusion schedule arithmetic, all of it, for ε-prediction and flow-matching backbones alike.

Every noise level is a pair of coefficients (signal a, noise s): a noised latent is x = a·x0 + s·ε.
- **VP** ε-models (ModelScope, Zeroscope, AnimateDiff): a = √ᾱ_t, s = √(1−ᾱ_t), from the ``alphas_cumprod``
  table; a level is an integer index t into that table, ``FINAL`` (−1) reads the scheduler's final alpha.
- **Rectified flow** (Wan): a = 1 − σ, s = σ; a level is σ itself (the model is given 1000·σ). The model
  predicts the velocity v = ε − x0, so x̂0 = x − σ·v and ε̂ = x + (1 − σ)·v, computed without dividing
  by a (Wan's first level is σ = 1 exactly, where a = 0).

The samplers write their arithmetic once against :class:`Schedule` (forward noising, renoising between
two levels, the η-DDIM step — which is exactly Euler for a flow model at η = 0 — and I4VGen's update),
scalar or per-frame, and each parameterisation supplies only its coefficients, its reading of the
model's output, and its grids. The VP arithmetic keeps its table form (1 − ᾱ, ᾱ'/ᾱ), so the ε-backbones'
results are bit for bit what they were before flow models existed.

We never call ``scheduler.step`` / ``scheduler.add_noise``: with per-frame levels they broadcast silently
wrongly, and FIFO's rounded grid breaks ``step``'s ``t − 1000 // S`` rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

FINAL = -1
"""VP level index meaning "after the last grid step" (reads :attr:`VPSchedule.final_alpha_cumprod`)."""


@dataclass(frozen=True)
class Coefficients:
    """Per-level coefficients broadcast against a video ``[B, C, F, h, w]``: a, s and their squares."""

    a: torch.Tensor
    s: torch.Tensor
    a2: torch.Tensor
    s2: torch.Tensor


def _broadcast(value: torch.Tensor, t) -> torch.Tensor:
    """A per-level value looked up for a scalar, ``[B]`` or ``[B, F]`` level, shaped to broadcast over
    ``[B, C, F, h, w]`` (``[1, F]`` shares the frame levels across the batch)."""
    if value.dim() == 1:
        return value.view(-1, 1, 1, 1, 1)
    if value.dim() == 2:
        return value.view(value.shape[0], 1, value.shape[1], 1, 1)
    if value.dim() != 0:
        raise ValueError(f"levels must be a scalar, [B] or [B, F]; got shape {tuple(torch.as_tensor(t).shape)}")
    return value


class Schedule:
    """The arithmetic of one backbone's noise levels; subclasses supply coefficients and grids."""

    num_train_timesteps: int = 1000
    prediction: str  # what the model outputs: "epsilon" or "flow" (velocity v = ε − x0)

    @staticmethod
    def from_scheduler(scheduler) -> "Schedule":
        """The schedule of a diffusers scheduler object built from the model folder (DDIM → VP; a flow-matching
        Euler or UniPC-with-flow-sigmas scheduler → flow)."""
        cfg = scheduler.config
        if "shift" in cfg or cfg.get("use_flow_sigmas") or cfg.get("prediction_type") == "flow_prediction":
            return FlowSchedule.from_scheduler(scheduler)
        return VPSchedule.from_scheduler(scheduler)

    # --- what each parameterisation supplies -----------------------------------------------------
    def coefficients(self, t, like: torch.Tensor) -> Coefficients:
        raise NotImplementedError

    def transition(self, t_from, t_to, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(r, v) of the forward process between two levels: x_to = r·x_from + √v·ξ."""
        raise NotImplementedError

    def split(self, x: torch.Tensor, pred: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂0, ε̂) from the model's (guided) output ``pred`` at level ``t`` for the input ``x``."""
        raise NotImplementedError

    def model_timestep(self, t):
        """The timestep value(s) the network is given for level(s) ``t``."""
        raise NotImplementedError

    def sampling_timesteps(self, steps: int) -> list:
        """The backbone's own descending grid of ``steps`` levels (T2V sampling, I4VGen)."""
        raise NotImplementedError

    def sampling_pairs(self, steps: int) -> list[tuple]:
        raise NotImplementedError

    def ti2v_pairs(self, steps: int) -> list[tuple]:
        """TI2V-Zero's grid as (level, next level) per step."""
        raise NotImplementedError

    def fifo_levels(self, steps: int) -> list:
        """FIFO-Diffusion's S ascending queue levels, ts_0 the head's."""
        raise NotImplementedError

    # --- written once for every parameterisation --------------------------------------------------
    def fifo_base_pairs(self, steps: int) -> list[tuple]:
        """A base clip sampled on FIFO's own grid: each level steps to the next one down, ts_1 → ts_0 last
        (the reference's final step ts_0 → ts_0 changes nothing, so it is not run)."""
        levels = self.fifo_levels(steps)
        return [(levels[i], levels[i - 1]) for i in reversed(range(1, len(levels)))]

    def has_signal(self, t) -> bool:
        """Whether level ``t`` keeps any of the clean latent (a > 0); a flow model's σ = 1 keeps none, so renoising
        to it or distilling at it throws the model call away."""
        return bool(self.coefficients(t, torch.zeros(())).a > 0)

    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """Forward-noise clean latents to level ``t``: a·x0 + s·noise."""
        c = self.coefficients(t, x0)
        return c.a * x0 + c.s * noise

    def renoise(self, x: torch.Tensor, t_from, t_to, noise: torch.Tensor) -> torch.Tensor:
        """Push latents at level ``t_from`` back up to the noisier ``t_to`` in one jump (the forward process
        between two levels). Undefined from a level with no signal (σ = 1), which no sampler does."""
        r, v = self.transition(t_from, t_to, x)
        return r * x + v.sqrt() * noise

    def predict_x0(self, x: torch.Tensor, pred: torch.Tensor, t) -> torch.Tensor:
        return self.split(x, pred, t)[0]

    def ddim_step(self, x: torch.Tensor, pred: torch.Tensor, t, t_prev, eta: float = 0.0,
                  noise: torch.Tensor | None = None) -> torch.Tensor:
        """One DDIM update from level ``t`` to ``t_prev`` (scalar or per-frame), η-stochastic, over (a, s).

        x' = a'·x̂0 + √(s'² − c²)·ε̂ + c·ξ with c = η·√(v·s'²/s²), v the forward variance from t' to t (the
        DDPM posterior's std at η = 1). For a flow model at η = 0 this is exactly the Euler step
        x + (σ' − σ)·v. Where the level does not change (FIFO's head slot) the update is the identity.
        """
        now, prev = self.coefficients(t, x), self.coefficients(t_prev, x)
        x0, eps = self.split(x, pred, t)
        if eta > 0:
            if noise is None:
                raise ValueError("ddim_step with eta > 0 needs a noise tensor (randomness comes from the seed)")
            _, v = self.transition(t_prev, t, x)
            c = eta * (prev.s2 / now.s2 * v).sqrt()
            # c ≤ s' in exact arithmetic, but s'² − c² can round below 0 (float32 from σ = 1 or to a small σ').
            stepped = prev.a * x0 + (prev.s2 - c ** 2).clamp(min=0).sqrt() * eps + c * noise
        else:
            stepped = prev.a * x0 + prev.s * eps
        # Mathematically the identity when the level does not change, but not in floating point.
        return torch.where(now.a2 == prev.a2, x, stepped)

    def score_distillation_step(self, x: torch.Tensor, eps_pred: torch.Tensor, noise: torch.Tensor, t,
                                step_size: float) -> torch.Tensor:
        """I4VGen's closed-form NI-VSDS update of a clean latent: x − α·s²·(ε̂ − ε).

        ε is the noise that made the model's input a·x + s·ε, ε̂ (from :meth:`split`) its prediction. This is
        x ← x + λ·(x̂0 − x) with λ = α·a·s (since x̂0 − x = (s/a)·(ε − ε̂)): a pull towards the denoised
        estimate, no autograd, and no division by a.
        """
        return x - step_size * self.coefficients(t, x).s2 * (eps_pred - noise)

    def strength_start(self, steps: int, strength: float) -> int:
        """Index into the descending grid where an SDEdit-style run of the given strength starts:
        m = min(int(S·strength), S) steps are run, starting at ts[S − m] (strength 1 starts at ts[0])."""
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"denoise strength must be within [0, 1], got {strength}")
        return steps - min(int(steps * strength), steps)


def check_steps(steps: int) -> None:
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")


@dataclass(frozen=True)
class VPSchedule(Schedule):
    """The ᾱ table of an ε-prediction backbone plus its DDIM conventions."""

    alphas_cumprod: torch.Tensor  # [T] float32, as diffusers builds it
    final_alpha_cumprod: torch.Tensor  # 0-d float32 (1 with set_alpha_to_one: the last step lands on x̂0)
    timestep_spacing: str = "leading"  # "leading" | "linspace" | "trailing", for DDIM grids
    steps_offset: int = 1
    prediction = "epsilon"

    @classmethod
    def from_scheduler(cls, scheduler) -> "VPSchedule":
        cfg = scheduler.config
        prediction = cfg.get("prediction_type", "epsilon")
        if prediction != "epsilon":
            raise ValueError(
                f"This backbone's scheduler predicts '{prediction}'; only epsilon-prediction DDPM models and "
                "flow-matching models are supported (ModelScope, Zeroscope, AnimateDiff on SD1.5, Wan). Use one of those."
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

    def alpha(self, t, like: torch.Tensor) -> torch.Tensor:
        """ᾱ_t broadcastable against ``like`` ``[B, C, F, h, w]``; ``t`` an int, ``[B]`` or ``[B, F]``."""
        table = self.alphas_cumprod.to(like.device)
        final = self.final_alpha_cumprod.to(like.device)
        if not torch.is_tensor(t):
            value = final if int(t) < 0 else table[int(t)]
            return value.to(like.dtype)
        t = t.to(like.device).long()
        return _broadcast(torch.where(t >= 0, table[t.clamp(min=0)], final), t).to(like.dtype)

    def coefficients(self, t, like: torch.Tensor) -> Coefficients:
        alpha = self.alpha(t, like)
        return Coefficients(a=alpha.sqrt(), s=(1 - alpha).sqrt(), a2=alpha, s2=1 - alpha)

    def transition(self, t_from, t_to, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ratio = self.alpha(t_to, like) / self.alpha(t_from, like)
        return ratio.sqrt(), 1 - ratio

    def split(self, x: torch.Tensor, pred: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.coefficients(t, x)
        return (x - c.s * pred) / c.a, pred

    def model_timestep(self, t):
        return t

    def ddim_timesteps(self, steps: int, spacing: str | None = None) -> list[int]:
        """The sampler's descending grid, as the backbone's DDIM scheduler would build it."""
        check_steps(steps)
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

    sampling_timesteps = ddim_timesteps

    def ddim_pairs(self, steps: int, spacing: str | None = None) -> list[tuple[int, int]]:
        """(t, t_prev) for each DDIM step, with diffusers' convention t_prev = t − T // S (``FINAL`` when
        negative). On a leading grid this is simply the next grid point. A step whose two levels are equal
        (the last one of a linspace grid without a final alpha of 1: 0 → ᾱ_0) changes nothing and is left out,
        so no model call is spent on it."""
        ratio = self.num_train_timesteps // steps
        pairs = [(t, t - ratio if t - ratio >= 0 else FINAL) for t in self.ddim_timesteps(steps, spacing)]
        return [(t, t_prev) for t, t_prev in pairs if not self._same_level(t, t_prev)]

    def _same_level(self, t: int, t_prev: int) -> bool:
        level = self.alpha(t, self.alphas_cumprod)
        return bool(level == self.alpha(t_prev, self.alphas_cumprod))

    sampling_pairs = ddim_pairs

    def ti2v_pairs(self, steps: int) -> list[tuple[int, int]]:
        """The TI2V-Zero reference's grid: 1 + arange(0, T, T // S) clamped to T − 1, descending, each level
        stepping to max(t − T // S, 0). When S divides T this is the leading grid with offset 1 (S = 10 →
        901 … 1, the last step to ᾱ_0); otherwise it has one more step than asked (S = 3 → 999, 667, 334, 1:
        four steps; S = 999 visits 999 twice), exactly as the reference runs it."""
        check_steps(steps)
        T = self.num_train_timesteps
        if steps > T:
            raise ValueError(f"steps ({steps}) must be at most {T} for this backbone's {T} training timesteps")
        ratio = T // steps
        levels = [min(1 + i, T - 1) for i in reversed(range(0, T, ratio))]
        return [(t, max(t - ratio, 0)) for t in levels]

    def fifo_levels(self, steps: int) -> list[int]:
        """round(linspace(0, T − 1, S)) with numpy's linspace and round-half-to-even, as the reference
        builds it (a float64 torch linspace rounds some midpoints the other way)."""
        check_steps(steps)
        return np.round(np.linspace(0, self.num_train_timesteps - 1, steps)).astype(np.int64).tolist()

    fifo_timesteps = fifo_levels


@dataclass(frozen=True)
class FlowSchedule(Schedule):
    """A rectified-flow backbone's levels σ ∈ [0, 1] with its shift (σ' = k·σ / (1 + (k − 1)·σ))."""

    shift: float = 1.0
    num_train_timesteps: int = 1000
    prediction = "flow"

    @classmethod
    def from_scheduler(cls, scheduler) -> "FlowSchedule":
        cfg = scheduler.config
        shift = cfg.get("shift") if "shift" in cfg else cfg.get("flow_shift", 1.0)
        if cfg.get("use_dynamic_shifting"):
            raise ValueError("This flow-matching scheduler uses dynamic (resolution-dependent) shifting, which the "
                             "pack does not support; Wan's schedulers use a fixed shift.")
        return cls(shift=float(shift), num_train_timesteps=int(cfg.get("num_train_timesteps", 1000)))

    def _shifted(self, sigma: np.ndarray) -> np.ndarray:
        return self.shift * sigma / (1 + (self.shift - 1) * sigma)

    def _sigma(self, t, like: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(t):
            return torch.tensor(float(t), dtype=like.dtype, device=like.device)
        return _broadcast(t.to(like.device, like.dtype), t)

    def coefficients(self, t, like: torch.Tensor) -> Coefficients:
        sigma = self._sigma(t, like)
        a = 1 - sigma
        return Coefficients(a=a, s=sigma, a2=a * a, s2=sigma * sigma)

    def transition(self, t_from, t_to, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.coefficients(t_from, like), self.coefficients(t_to, like)
        r = end.a / start.a
        return r, end.s2 - r * r * start.s2

    def split(self, x: torch.Tensor, pred: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        sigma = self._sigma(t, x)
        return x - sigma * pred, x + (1 - sigma) * pred

    def model_timestep(self, t):
        return t * self.num_train_timesteps if torch.is_tensor(t) else float(t) * self.num_train_timesteps

    def sampling_timesteps(self, steps: int) -> list[float]:
        """The flow-matching Euler grid of ``steps`` levels, σ_0 = 1: shift(linspace(1, shift(1/T), S)),
        as diffusers' Euler scheduler builds it (its σ_min is already shifted, and is shifted again)."""
        check_steps(steps)
        sigma_min = self._shifted(np.float64(1.0 / self.num_train_timesteps))
        grid = np.linspace(1.0, sigma_min, steps, dtype=np.float64)
        return [float(s) for s in self._shifted(grid).astype(np.float32)]

    def sampling_pairs(self, steps: int) -> list[tuple[float, float]]:
        levels = self.sampling_timesteps(steps) + [0.0]
        return list(zip(levels[:-1], levels[1:]))

    def ti2v_pairs(self, steps: int) -> list[tuple[float, float]]:
        """TI2V-Zero on a flow backbone runs the backbone's own Euler grid (the reference only knows DDIM)."""
        return self.sampling_pairs(steps)

    def fifo_levels(self, steps: int) -> list[float]:
        """The S levels of an (S − 1)-step Euler grid with its final σ = 0, ascending: the head is clean and
        the tail is pure noise (σ = 1), where each fresh frame enters."""
        check_steps(steps)
        if steps < 2:
            raise ValueError("FIFO on a flow-matching backbone needs at least 2 levels (window_frames × partitions).")
        return [0.0] + self.sampling_timesteps(steps - 1)[::-1]
