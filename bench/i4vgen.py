"""I4VGen benchmark: UNet calls, seconds and peak memory of each stage of the I4VGen graph
(RewardSelectAnchor → NIVSDSOptimize → T2VSampler with denoise p_re) against plain T2VSampler.

    python -m bench.i4vgen            # writes bench/results/i4vgen.json

Calls are counted by forward hooks on the UNet (bench.common.Meter), not estimated. Seconds are on the
CPU with the bench-size AnimateDiff model (I4VGen's reference backbone family) and the tiny stand-in
reward model. Peak memory is measured per stage in a fresh child process each, so one stage's peak is
not hidden behind another's.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from zeroshot_video.testing import standin_models
from zeroshot_video.core.methods import i4vgen
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.methods.reward import load_reward_model
from zeroshot_video.core.methods.t2v import noise_like, sample_t2v

from zeroshot_video.bench.common import Meter, answered_as_child, child_peak_rss, load_bench_backbone, peak_rss_mb, write_results

MODELS = Path(tempfile.gettempdir()) / "zeroshot_video_bench_models"
FRAMES, SIDE, STEPS, GUIDANCE, P, P_RE = 16, 128, 25, 7.5, i4vgen.DEFAULT_P, 1.0
PROMPT = "a red panda eating bamboo"
STAGES = ("plain", "select", "nivsds", "regenerate")
ROUNDS = 2
NOTE = (f"calls and decoded frames are exact counts; seconds are the faster of {ROUNDS} interleaved rounds on "
        "the CPU, which may be shared with other jobs (then they carry noise of tens of percent)")


def _reward():
    folder = MODELS / "reward" / standin_models.REWARD_MODEL
    if not (folder / "config.json").is_file():
        standin_models.write_reward_model(folder)
    return load_reward_model(folder)


class Setup:
    """The backbone, prompt and inputs every stage starts from (the same seed throughout)."""

    def __init__(self, with_reward: bool):
        self.backbone = load_bench_backbone("animatediff", MODELS)
        self.reward = _reward() if with_reward else None
        self.cond = encode_text(self.backbone, PROMPT)
        side = SIDE // self.backbone.vae_scale_factor
        self.shape = (1, 4, FRAMES, side, side)
        self.denoiser = Denoiser(self.backbone, GUIDANCE)

    def plain(self, _):
        gen = torch.Generator().manual_seed(0)
        latent = sample_t2v(self.denoiser, self.backbone.schedule, self.cond, noise_like(self.shape, gen), STEPS,
                            generator=gen)
        return self.backbone.decode(latent)

    def select(self, _):
        gen = torch.Generator().manual_seed(0)
        noise = i4vgen.candidate_noise(self.shape, FRAMES, gen)
        return i4vgen.generate_and_select(
            self.denoiser, self.backbone.schedule, self.cond, noise, STEPS, FRAMES,
            decode=lambda latents: self.backbone.decode(latents),
            score=lambda images: self.reward.score(images, PROMPT), generator=gen).anchor

    def nivsds(self, anchor):
        noise = noise_like(self.shape, torch.Generator().manual_seed(0))
        return i4vgen.ni_vsds(self.denoiser, self.backbone.schedule, self.cond, anchor, noise, STEPS,
                              i4vgen.nivsds_iterations(STEPS, P), i4vgen.DEFAULT_STEP_SIZES)

    def regenerate(self, latent):
        gen = torch.Generator().manual_seed(0)
        out = sample_t2v(self.denoiser, self.backbone.schedule, self.cond, noise_like(self.shape, gen), STEPS,
                         generator=gen, init_latent=latent, strength=P_RE)
        return self.backbone.decode(out)


@torch.no_grad()
def counts_and_seconds() -> dict:
    """Every stage ROUNDS times, interleaved, keeping each stage's fastest round: on a shared CPU the
    minimum is the figure least disturbed by other processes."""
    setup = Setup(with_reward=True)
    setup.regenerate(torch.zeros(setup.shape))  # warm-up (first calls allocate)
    meter = Meter(setup.backbone)
    stages = {}
    for _ in range(ROUNDS):
        carried = None
        for stage in STAGES:
            calls, decoded, unet_s = meter.unet_calls, meter.decoded_frames, meter.unet_seconds
            started = time.perf_counter()
            result = getattr(setup, stage)(carried)
            seconds = time.perf_counter() - started
            carried = None if stage in ("plain", "regenerate") else result
            figures = {"unet_calls": meter.unet_calls - calls, "decoded_frames": meter.decoded_frames - decoded,
                       "seconds": round(seconds, 2), "unet_seconds": round(meter.unet_seconds - unet_s, 2)}
            if stage not in stages or figures["seconds"] < stages[stage]["seconds"]:
                stages[stage] = figures
    meter.detach()
    i4v = [stages[s] for s in STAGES[1:]]
    total_calls, total_s = sum(s["unet_calls"] for s in i4v), sum(s["seconds"] for s in i4v)
    return {"stages": stages,
            "i4vgen_total": {"unet_calls": total_calls, "seconds": round(total_s, 2)},
            "plain_total": {"unet_calls": stages["plain"]["unet_calls"], "seconds": stages["plain"]["seconds"]},
            "calls_ratio": round(total_calls / stages["plain"]["unet_calls"], 3),
            "seconds_ratio": round(total_s / stages["plain"]["seconds"], 3),
            "expected_calls": {"select": STEPS, "nivsds": i4vgen.nivsds_iterations(STEPS, P),
                               "regenerate": min(int(STEPS * P_RE), STEPS), "plain": STEPS}}


@torch.no_grad()
def stage_child(stage: str) -> dict:
    """One stage alone in this process, from an input of the right shape (the values do not change memory)."""
    setup = Setup(with_reward=stage == "select")
    loaded = peak_rss_mb()
    source = torch.randn(setup.shape, generator=torch.Generator().manual_seed(1))
    getattr(setup, stage)(source)
    peak = peak_rss_mb()
    return {"stage": stage, "peak_rss_mb_after_loading": round(loaded, 1), "peak_rss_mb": round(peak, 1),
            "peak_growth_mb": round(peak - loaded, 1)}


def main():
    if answered_as_child(stage_child, stage={"choices": STAGES}):
        return
    figures = {"setting": {"backbone": "bench-size AnimateDiff (random weights)", "reward": "tiny stand-in CLIP",
                           "frames": FRAMES, "size": SIDE, "steps": STEPS, "guidance": GUIDANCE, "p": P,
                           "p_re": P_RE, "candidates": FRAMES, "device": "cpu"},
               "note": NOTE}
    weights = _reward().model.parameters()
    figures["setting"]["reward_model_mb"] = round(sum(t.numel() * t.element_size() for t in weights) / 2 ** 20, 2)
    figures.update(counts_and_seconds())
    memory = {stage: child_peak_rss("bench.i4vgen", "--stage", stage) for stage in STAGES}
    plain = memory["plain"]["peak_rss_mb"]
    for stage in STAGES[1:]:
        memory[stage]["peak_over_plain_mb"] = round(memory[stage]["peak_rss_mb"] - plain, 1)
    figures["memory"] = memory
    path = write_results("i4vgen", figures)
    print(path.read_text())


if __name__ == "__main__":
    main()
