"""A Wan MODEL's schedule as ComfyUI holds it: its ``model_sampling`` (the shift the user set with
ModelSamplingSD3) and the sampling grid of the scheduler the user picks (ComfyUI's own ``calculate_sigmas``).

The arithmetic stays ``core.schedule.FlowSchedule``'s; only the grid comes from the host, so the pack's Euler steps
land on exactly the σ KSampler visits for the same steps and scheduler."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...core.schedule import FlowSchedule, check_steps


@dataclass(frozen=True)
class NativeFlowSchedule(FlowSchedule):
    scheduler: str = "simple"
    sampling: object = field(default=None, compare=False, repr=False)  # the MODEL's model_sampling

    @classmethod
    def of(cls, sampling, scheduler: str = "simple") -> "NativeFlowSchedule":
        import comfy.samplers
        if scheduler not in comfy.samplers.SCHEDULER_NAMES:
            raise ValueError(f"scheduler: '{scheduler}' is not one of ComfyUI's schedulers "
                             f"({', '.join(comfy.samplers.SCHEDULER_NAMES)}).")
        return cls(shift=float(sampling.shift), num_train_timesteps=int(sampling.multiplier), scheduler=scheduler,
                   sampling=sampling)

    def host_sigmas(self, steps: int) -> list[float]:
        """The ``steps`` + 1 levels ComfyUI's scheduler makes for this MODEL, ending at 0."""
        import comfy.samplers
        check_steps(steps)
        return [float(s) for s in comfy.samplers.calculate_sigmas(self.sampling, self.scheduler, steps)]

    def sampling_timesteps(self, steps: int) -> list[float]:
        return self.host_sigmas(steps)[:-1]

    def sampling_pairs(self, steps: int) -> list[tuple[float, float]]:
        levels = self.host_sigmas(steps)
        return list(zip(levels[:-1], levels[1:]))
