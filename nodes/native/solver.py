"""ComfyUI's own samplers for the pack's plain sampling on a native MODEL: the levels KSampler would visit
(``comfy.samplers.KSampler``'s sigmas for the sampler and scheduler, e.g. uni_pc's dropped penultimate level)
and ComfyUI's own sampling function, with the pack's Denoiser as the model (x̂0 from its guided prediction).
So uni_pc here is KSampler's uni_pc, not a third implementation."""
from __future__ import annotations

import torch

from ...core.solvers import SolverRun


def comfy_solver(patcher, schedule, name: str, steps: int, strength: float = 1.0) -> SolverRun:
    """``name``'s run of ``steps`` on the MODEL's ``scheduler`` grid; ``strength`` < 1 runs its last
    m = min(int(S·strength), S) steps, as the pack's Euler does."""
    import comfy.samplers
    sigmas = comfy.samplers.KSampler(patcher, steps, patcher.load_device, sampler=name,
                                     scheduler=schedule.scheduler).sigmas.cpu()
    sigmas = sigmas[schedule.strength_start(len(sigmas) - 1, strength):]
    sampler = comfy.samplers.sampler_object(name)

    def run(x: torch.Tensor, predict, on_step=None) -> torch.Tensor:
        def denoised(latent, sigma, **_):
            level = float(sigma.reshape(-1)[0])
            return schedule.predict_x0(latent, predict(latent, level), level)

        total = len(sigmas) - 1
        callback = None if on_step is None else (lambda info: on_step(info["i"] + 1, total, info["x"]))
        levels = sigmas.to(x.device, copy=True)  # uni_pc writes its last level in place (0 → 0.001)
        samples = sampler.sampler_function(denoised, x, levels, extra_args={}, callback=callback, disable=True,
                                           **sampler.extra_options)
        # what KSampler does after its sampling function, with the levels as that function left them
        return patcher.get_model_object("model_sampling").inverse_noise_scaling(levels[-1], samples)

    return SolverRun(start=float(sigmas[0]), calls=len(sigmas) - 1, run=run)
