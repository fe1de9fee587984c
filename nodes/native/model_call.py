"""One model call on a ComfyUI MODEL, through ComfyUI's own path, with a level per clip or per latent frame.

``comfy.samplers.calc_cond_batch`` is what KSampler calls for each step: it batches the prompts, merges the
MODEL's ``transformer_options`` (wrappers, attention overrides, patches) and runs ``BaseModel.apply_model`` on the
weights the memory manager patched (LoRA, fp8, GGUF) and loaded. It returns ComfyUI's x̂0 = x − σ·v for a flow
model; this module reads the velocity back from it. ComfyUI is imported when a call runs (the pack also loads
outside ComfyUI).
"""
from __future__ import annotations

import torch

from .attention import OVERRIDE, interruptible

WRAPPER_KEY = "zeroshot_video.per_frame_timesteps"


def is_loaded(patcher) -> bool:
    """Whether ComfyUI holds ``patcher``'s model on its load device now."""
    import comfy.model_management as model_management
    return any(loaded.model is patcher for loaded in model_management.current_loaded_models)


def _per_clip_sigma(t, batch: int) -> torch.Tensor | None:
    """One σ per clip ``[batch]`` when every frame of a clip shares its level (and it is above 0), else None."""
    sigma = torch.as_tensor(t, dtype=torch.float32)
    if sigma.dim() == 2:
        if not bool((sigma == sigma[:, :1]).all()):
            return None
        sigma = sigma[:, 0]
    sigma = sigma.reshape(-1).expand(batch) if sigma.dim() <= 1 and sigma.numel() in (1, batch) else sigma
    return sigma if bool((sigma > 0).all()) else None


def _frame_timesteps(per_frame: torch.Tensor):
    """A DIFFUSION_MODEL wrapper giving the network one timestep per latent frame ``[B, F]`` (repeated over the
    prompts ComfyUI batched together) instead of the clip's one."""
    def wrapper(executor, x, timestep, context, *args, **kwargs):
        repeats = x.shape[0] // per_frame.shape[0]
        return executor(x, per_frame.to(timestep.device, timestep.dtype).repeat(repeats, 1), context, *args, **kwargs)
    return wrapper


def _model_options(patcher, conds: list, per_frame: torch.Tensor | None) -> dict:
    """The MODEL's own options, with its wrappers and hooks registered as KSampler registers them, its attention
    cut into interruptible pieces where large, and the per-frame timestep wrapper where the levels differ by
    frame."""
    import comfy.model_patcher
    import comfy.patcher_extension as extension
    import comfy.sampler_helpers as helpers
    options = comfy.model_patcher.create_model_options_clone(patcher.model_options)
    options.setdefault("transformer_options", {})
    helpers.prepare_model_patcher(patcher, {str(i): cond for i, cond in enumerate(conds)}, options)
    transformer_options = options["transformer_options"]
    transformer_options[OVERRIDE] = interruptible(transformer_options.get(OVERRIDE))
    if per_frame is not None:
        extension.add_wrapper_with_key(extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY, _frame_timesteps(per_frame),
                                       options, is_model_options=True)
    return options


def predict_velocity(patcher, x: torch.Tensor, t, texts: list[torch.Tensor], schedule) -> torch.Tensor:
    """v̂ ``[len(texts)·B, C, F, h, w]`` (float32, on the MODEL's device) of ``x`` at level(s) ``t`` for each text."""
    import comfy.model_management as model_management
    import comfy.sampler_helpers as helpers
    import comfy.samplers as samplers
    model = patcher.model
    batch, frames = x.shape[0], x.shape[2]
    model_management.load_models_gpu([patcher], memory_required=model.memory_required(
        [len(texts) * batch, *x.shape[1:]]))
    device = patcher.load_device
    sample = x.to(device, torch.float32)
    sigma = _per_clip_sigma(t, batch)
    per_frame = None
    if sigma is None:  # σ = 1: ComfyUI's x̂0 is x − v, and the wrapper gives each frame its own timestep
        levels = torch.as_tensor(t, dtype=torch.float32).reshape(-1, frames).expand(batch, frames)
        per_frame = schedule.model_timestep(levels)
        sigma = torch.ones(batch)
    sigma = sigma.to(device)
    conds = [samplers.encode_model_conds(model.extra_conds, helpers.convert_cond([[text, {}]]), sample, device,
                                         "positive" if i == len(texts) - 1 else "negative")
             for i, text in enumerate(texts)]
    options = _model_options(patcher, conds, per_frame)
    patcher.pre_run()
    try:
        denoised = samplers.calc_cond_batch(model, conds, sample, sigma, options)
    finally:
        patcher.cleanup()
    scale = sigma.view(-1, 1, 1, 1, 1)
    return torch.cat([(sample - d) / scale for d in denoised])
