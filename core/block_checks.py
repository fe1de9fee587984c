"""Checks that stop work which must not go on: the host's interrupt inside one long model call, and latents
that are no longer numbers.

One model call on a long, large video can run for minutes, so a check made only between calls leaves the user's
interrupt unanswered for that long. Every network in the pack (UNet down/up blocks, resnets, attentions, motion
modules, Wan's transformer blocks, the VAEs' decoder stages) runs its layers from ``torch.nn.ModuleList``s, so a
forward pre-hook on each element of each of them checks at least once per block, whatever the family, and
without copying any model's forward. One attention over a large frame is a single operation no hook reaches
into: ``interruptible_attention`` splits it, with the check between the pieces.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from .interruptible_attention import interruptible_attention


class NonFiniteError(ValueError):
    """A latent or a prediction holds NaN or inf: whatever is computed from it is garbage (a blank video)."""


DIVERGENCE_CAUSES = ("guidance too high, step sizes too large (too few steps), or fp16 overflow (load the backbone "
                     "with dtype bf16 or fp32)")


def is_finite(tensor: torch.Tensor) -> bool:
    return bool(torch.isfinite(tensor).all())


def require_finite_latent(latents: torch.Tensor, what: str = "decoding") -> None:
    """Refuse a non-finite latent before a VAE turns it into frames that look like a result."""
    if not is_finite(latents):
        raise NonFiniteError(f"The latent holds NaN/inf, so {what} it would give a blank or garbage video: the "
                             f"sampler that made it diverged. Likely causes: {DIVERGENCE_CAUSES}.")


@contextlib.contextmanager
def checked_blocks(modules: Iterable[nn.Module], check: Callable[[], None] | None) -> Iterator[int]:
    """While inside, ``check()`` runs before every element of every ModuleList within ``modules`` and before every
    layer (a module with no submodules: a convolution, a linear map, a norm), each hooked once however it is
    reached; it may raise to stop the forward. Layers, not only blocks: on the CPU one block of a large request
    takes seconds (a resnet's two 3-D convolutions over 256 frames), one layer a fraction of that, and the check
    costs a flag read. Inside one layer too: an attention whose score matrix is large (a frame of 262144 tokens
    at 4096×4096) runs in pieces with ``check()`` between them (``interruptible_attention``). Yields the number
    of hooked modules; the hooks are removed and the attention processors set back on exit, also when ``check``
    raised. ``check`` None hooks nothing."""
    handles, modules = [], list(modules)
    try:
        if check is not None:
            hooked: set[int] = set()
            for module in modules:
                for holder in module.modules():
                    blocks = list(holder) if isinstance(holder, nn.ModuleList) else []
                    layer = [holder] if next(holder.children(), None) is None else []
                    for block in blocks + layer:
                        if id(block) not in hooked:
                            hooked.add(id(block))
                            handles.append(block.register_forward_pre_hook(lambda _module, _args: check()))
        with interruptible_attention(modules, check):
            yield len(handles)
    finally:
        for handle in handles:
            handle.remove()
