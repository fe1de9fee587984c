"""Foundation benchmark: T2VSampler against diffusers' own pipelines on the same components, UNet calls
per step, sampler overhead, and DecodeVideoLatent's peak memory at two clip lengths.

    python -m bench.foundation            # writes bench/results/foundation.json
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from diffusers import AnimateDiffPipeline, TextToVideoSDPipeline

from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.methods.t2v import noise_like, sample_t2v

from zeroshot_video.bench.common import (Meter, answered_as_child, child_peak_rss, growth_over_output, load_bench_backbone, peak_rss_mb,
                     reset_peak_rss, write_results)

MODELS = Path(tempfile.gettempdir()) / "zeroshot_video_bench_models"
FRAMES, SIDE, STEPS, GUIDANCE = 16, 128, 5, 7.5
PROMPT = "a red panda eating bamboo"


def _pipeline(backbone):
    parts = dict(vae=backbone.vae, text_encoder=backbone.text_encoder, tokenizer=backbone.tokenizer,
                 unet=backbone.unet, scheduler=backbone.scheduler)
    pipe = AnimateDiffPipeline(motion_adapter=None, **parts) if backbone.family == "animatediff" \
        else TextToVideoSDPipeline(**parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def sampler_vs_pipeline(family: str) -> dict:
    backbone = load_bench_backbone(family, MODELS)
    noise = noise_like(backbone.latent_shape(FRAMES, SIDE, SIDE), torch.Generator().manual_seed(0))
    pipe = _pipeline(backbone)
    pipe(prompt=PROMPT, num_frames=FRAMES, height=SIDE, width=SIDE, num_inference_steps=1, output_type="latent",
         latents=noise.clone())  # warm-up
    meter = Meter(backbone)
    rounds = {"ours": [], "diffusers": []}
    for _ in range(2):
        started = time.perf_counter()
        reference = pipe(prompt=PROMPT, num_frames=FRAMES, height=SIDE, width=SIDE, num_inference_steps=STEPS,
                         guidance_scale=GUIDANCE, latents=noise.clone(), output_type="latent")
        rounds["diffusers"].append(time.perf_counter() - started)
        meter.unet_calls = 0
        meter.unet_seconds = 0.0
        started = time.perf_counter()
        cond = encode_text(backbone, PROMPT)
        ours = sample_t2v(Denoiser(backbone, GUIDANCE), backbone.schedule, cond, noise, STEPS,
                          generator=torch.Generator().manual_seed(0))
        rounds["ours"].append(time.perf_counter() - started)
    meter.detach()
    reference = torch.as_tensor(reference.frames if hasattr(reference, "frames") else reference[0])
    ours_s, ref_s = min(rounds["ours"]), min(rounds["diffusers"])
    return {
        "family": family, "frames": FRAMES, "size": SIDE, "steps": STEPS,
        "seconds_per_step_ours": round(ours_s / STEPS, 4), "seconds_per_step_diffusers": round(ref_s / STEPS, 4),
        "ratio_ours_to_diffusers": round(ours_s / ref_s, 3),
        "max_abs_difference": float((ours - reference).abs().max()),
        "unet_calls_per_step": meter.unet_calls / STEPS,
        "overhead_outside_unet_percent": round(100 * (1 - meter.unet_seconds / rounds["ours"][-1]), 2),
    }


@torch.no_grad()
def decode_child(frames: int) -> dict:
    backbone = load_bench_backbone("modelscope", MODELS)
    latents = torch.randn(backbone.latent_shape(frames, SIDE, SIDE))
    backbone.decode(latents[:, :, :4], chunk=4)  # warm-up: allocator pools, lazy inits
    baseline = reset_peak_rss()
    meter = Meter(backbone)
    started = time.perf_counter()
    images = backbone.decode(latents, chunk=4)
    wall = time.perf_counter() - started
    return {"frames": frames, "rss_mb_before": round(baseline, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "output_mb": round(images.numel() * images.element_size() / 2 ** 20, 1),
            "overhead_outside_vae_percent": round(100 * (1 - meter.vae_seconds / wall), 2)}


def main():
    if answered_as_child(decode_child, frames={"type": int}):
        return
    figures = {"note": "UNet calls and differences are exact; seconds are the faster of 2 interleaved rounds and "
                       "carry the noise of whatever else shares the CPU; decode memory is the median of 5 fresh "
                       "processes per length",
               "load_average_before": os.getloadavg()[0],
               "sampler_vs_diffusers": [sampler_vs_pipeline("animatediff"), sampler_vs_pipeline("modelscope")]}
    short, long = (child_peak_rss("bench.foundation", "--frames", str(n), repeats=5) for n in (16, 64))
    figures["decode_memory"] = {"size": SIDE, "16_frames": short, "64_frames": long,
                                **growth_over_output(short, long)}
    figures["load_average_after"] = os.getloadavg()[0]
    path = write_results("foundation", figures)
    print(path.read_text())


if __name__ == "__main__":
    main()
