"""What the caller's environment lends a method run: the interrupt check, a memory probe, where frames go.

ComfyUI's nodes pass its interrupt flag and model manager; the command line a plain memory probe. The methods'
entry points take one ``Host`` so that both callers run the same code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..denoiser import Denoiser


@dataclass(frozen=True)
class Host:
    check: Callable[[], None] | None = None
    """Raises when the user stops the run; called before every model call and every block and layer inside it."""
    free_memory: Callable | None = None
    """``free_memory(device, needed)`` → free bytes (after making room), to refuse what cannot fit."""
    out_device: torch.device | str = "cpu"
    """Where decoded frames and returned latents go."""

    def denoiser(self, backbone, guidance: float, guidance_2: float | None = None) -> Denoiser:
        return Denoiser(backbone, guidance, guidance_2=guidance_2, check=self.check, free_memory=self.free_memory)
