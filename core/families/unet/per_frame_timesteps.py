"""Per-frame diffusion timesteps on stock diffusers video UNets, without copying their forward.

Both ``UNet3DConditionModel`` and ``UNetMotionModel`` embed the timestep once per clip and repeat the
embedding per frame (row b·F + k); only ``ResnetBlock2D`` reads it. So a pre-hook on the UNet turns a
``[B, F]`` timestep into the stock per-clip timestep t_ref = t[:, 0] and remembers
delta = E(t[b, k]) − E(t_ref[b]) for every row, and a pre-hook on every resnet adds delta to its
``temb``. Adding a difference instead of replacing the embedding keeps additive extras on the
embedding (fps, augmentation) intact, and a uniform ``[B, F]`` timestep gives delta == 0 exactly, so the
result is bitwise the stock output.

The hooks hold per-call state: one UNet must not run two forwards at once from different threads.
"""
from __future__ import annotations

import torch
from diffusers.models.resnet import ResnetBlock2D

_INSTALLED = "_zeroshot_video_per_frame_hooks"


class _PerFrameState:
    """One call's per-frame timesteps, and their embedding differences once the first resnet needs them: computed
    there, not in the UNet's pre-hook, because diffusers' group offload brings the UNet's own embedding layers to
    the GPU only when its forward starts, after every forward pre-hook has run."""

    def __init__(self):
        self.timesteps: tuple[torch.Tensor, torch.Tensor] | None = None  # (per frame, reference), flattened
        self.delta: torch.Tensor | None = None

    def delta_for(self, unet) -> torch.Tensor | None:
        if self.delta is None and self.timesteps is not None:
            per_frame, reference = self.timesteps
            with torch.no_grad():
                self.delta = _embed(unet, per_frame) - _embed(unet, reference)
        return self.delta

    def clear(self) -> None:
        self.timesteps, self.delta = None, None


def _embed(unet, timesteps: torch.Tensor) -> torch.Tensor:
    t_emb = unet.time_proj(timesteps).to(dtype=unet.dtype)
    return unet.time_embedding(t_emb)


def install(unet) -> None:
    """Let ``unet`` accept ``timestep`` of shape ``[B, F]`` (or ``[1, F]``, shared by the batch). Idempotent."""
    if getattr(unet, _INSTALLED, None) is not None:
        return
    state = _PerFrameState()

    def unet_pre_hook(module, args, kwargs):
        args = list(args)
        in_kwargs = "timestep" in kwargs
        sample = kwargs["sample"] if "sample" in kwargs else args[0]
        timestep = kwargs["timestep"] if in_kwargs else args[1]
        if not (torch.is_tensor(timestep) and timestep.dim() == 2):
            return None
        batch, frames = sample.shape[0], sample.shape[2]
        if timestep.shape[1] != frames or timestep.shape[0] not in (1, batch):
            raise ValueError(
                f"per-frame timesteps of shape {tuple(timestep.shape)} do not fit a video of {batch} clip(s) "
                f"x {frames} frame(s)")
        per_frame = timestep.to(sample.device).expand(batch, frames)
        reference = per_frame[:, :1].expand(batch, frames)
        state.clear()
        state.timesteps = (per_frame.reshape(-1), reference.reshape(-1))
        if in_kwargs:
            kwargs["timestep"] = per_frame[:, 0]
        else:
            args[1] = per_frame[:, 0]
        return tuple(args), kwargs

    def unet_post_hook(module, args, kwargs, output):
        state.clear()

    def resnet_pre_hook(module, args, kwargs):
        delta = state.delta_for(unet)
        if delta is None:
            return None
        if "temb" in kwargs and kwargs["temb"] is not None:
            kwargs["temb"] = kwargs["temb"] + delta.to(kwargs["temb"].dtype)
            return args, kwargs
        if len(args) > 1 and args[1] is not None:
            args = list(args)
            args[1] = args[1] + delta.to(args[1].dtype)
            return tuple(args), kwargs
        return None

    handles = [unet.register_forward_pre_hook(unet_pre_hook, with_kwargs=True),
               unet.register_forward_hook(unet_post_hook, with_kwargs=True, always_call=True)]
    handles += [m.register_forward_pre_hook(resnet_pre_hook, with_kwargs=True)
                for m in unet.modules() if isinstance(m, ResnetBlock2D)]
    object.__setattr__(unet, _INSTALLED, handles)


def uninstall(unet) -> None:
    for handle in getattr(unet, _INSTALLED, None) or []:
        handle.remove()
    object.__setattr__(unet, _INSTALLED, None)
