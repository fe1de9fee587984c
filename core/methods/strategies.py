"""The option objects that ADE-style option nodes chain into the samplers. An unconnected option is "off"."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NoiseInit:
    """How a new frame's (or queue's) starting noise is made.

    ``gaussian``: plain N(0, I). ``ddpm_inversion``: a clean latent forward-noised to the first sampling
    level with its own fresh noise (TI2V-Zero's inversion of the last queue frame; FIFO's forward-noised
    queue).
    """

    mode: str = "gaussian"

    def __post_init__(self):
        if self.mode not in ("gaussian", "ddpm_inversion"):
            raise ValueError(f"noise init mode must be 'gaussian' or 'ddpm_inversion', got '{self.mode}'")


@dataclass(frozen=True)
class Resample:
    """TI2V-Zero's resampling: ``rounds`` extra denoise-and-renoise rounds per step (0 = off)."""

    rounds: int = 0

    def __post_init__(self):
        if self.rounds < 0:
            raise ValueError(f"resampling rounds must be >= 0, got {self.rounds}")
