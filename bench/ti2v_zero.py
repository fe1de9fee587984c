"""TI2V-Zero benchmark: per new frame, UNet calls, VAE encodes/decodes, seconds and the time spent outside
UNet + VAE; and peak memory at 16 vs 128 new frames, each in a fresh child process.

    python -m bench.ti2v_zero            # writes bench/results/ti2v_zero.json

The reference implementation runs classifier-free guidance as two UNet calls (2·S·(R+1) per frame) and
re-encodes its whole K-frame pixel queue every frame (K encodes); the targets are S·(R+1) batched calls
and one encode per frame. The memory runs use cheap settings (S = 1, R = 0, F = 4) at a larger size:
what they measure is growth with video length, which must be the output frames and nothing else.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from zeroshot_video.core.methods import ti2v_zero
from zeroshot_video.core.methods.anchor import encode_frames, gradient_image, make_anchor
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.methods.strategies import NoiseInit, Resample

from zeroshot_video.bench.common import (Meter, answered_as_child, child_peak_rss, growth_over_output, load_bench_backbone, peak_rss_mb,
                     reset_peak_rss, write_results)

MODELS = Path(tempfile.gettempdir()) / "zeroshot_video_bench_models"
PROMPT = "a red panda eating bamboo"
SPEED = {"side": 64, "model_frames": 16, "steps": 10, "rounds": 4, "new_frames": 3, "guidance": 9.0}
MEMORY = {"side": 256, "model_frames": 4, "steps": 1, "rounds": 0, "lengths": (16, 128)}


def _run(backbone, cond, anchor, new_frames, steps, rounds, model_frames, **options):
    return ti2v_zero.image_to_video(
        backbone, cond, anchor, num_frames=new_frames, model_frames=model_frames, steps=steps,
        guidance=SPEED["guidance"], generator=torch.Generator().manual_seed(0), noise_init=NoiseInit("ddpm_inversion"),
        resample=Resample(rounds), **options)


@torch.no_grad()
def speed() -> dict:
    s = SPEED
    backbone = load_bench_backbone("modelscope", MODELS)
    cond = encode_text(backbone, PROMPT)
    anchor = make_anchor(backbone, gradient_image(s["side"], s["side"]), s["side"], s["side"])
    _run(backbone, cond, anchor, 1, 1, 0, s["model_frames"])  # warm-up
    meter = Meter(backbone)
    started = time.perf_counter()
    _run(backbone, cond, anchor, s["new_frames"], s["steps"], s["rounds"], s["model_frames"])
    wall = time.perf_counter() - started
    n = s["new_frames"]
    figures = {
        **s, "unet_calls_per_new_frame": meter.unet_calls / n,
        "unet_calls_per_new_frame_target": s["steps"] * (s["rounds"] + 1),
        "unet_calls_per_new_frame_reference": 2 * s["steps"] * (s["rounds"] + 1),
        # the anchor comes encoded and the last frame never re-enters the queue: n − 1 encodes for n frames
        "vae_encodes_per_new_frame": meter.encoded_frames / (n - 1),
        "vae_decodes_per_new_frame": meter.decoded_frames / n,
        "seconds_per_new_frame": round(wall / n, 3),
        "unet_seconds_per_call": round(meter.unet_seconds / meter.unet_calls, 4),
        "overhead_outside_unet_vae_percent": round(100 * (1 - (meter.unet_seconds + meter.vae_seconds) / wall), 2),
    }
    meter.detach()

    # The reference's VAE cost: the encode cache off re-encodes the K-frame queue for every frame.
    meter = Meter(backbone)
    ti2v_zero.sample_ti2v_zero(
        Denoiser(backbone, s["guidance"]), backbone.schedule, cond, anchor.image, anchor.latents, 2, 1,
        model_frames=s["model_frames"], generator=torch.Generator().manual_seed(0), encode_cache=False,
        encode=lambda images: encode_frames(backbone, images),
        decode=lambda z: backbone.decode(z, chunk=1))
    figures["vae_encodes_per_new_frame_without_cache"] = meter.encoded_frames / 2
    meter.detach()
    return figures


@torch.no_grad()
def memory_child(new_frames: int) -> dict:
    m = MEMORY
    backbone = load_bench_backbone("modelscope", MODELS)
    cond = encode_text(backbone, PROMPT)
    anchor = make_anchor(backbone, gradient_image(m["side"], m["side"]), m["side"], m["side"])
    baseline = reset_peak_rss()  # the peak of this run, not of model loading
    started = time.perf_counter()
    frames, latents = _run(backbone, cond, anchor, new_frames, m["steps"], m["rounds"], m["model_frames"])
    output = frames.numel() * frames.element_size() + latents.numel() * latents.element_size()
    return {"new_frames": new_frames, "seconds": round(time.perf_counter() - started, 1),
            "rss_mb_before": round(baseline, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "output_mb": round(output / 2 ** 20, 1)}


def main():
    if answered_as_child(memory_child, frames={"type": int}):
        return
    figures = {"per_new_frame": speed()}
    short, long = (child_peak_rss("bench.ti2v_zero", "--frames", str(n), repeats=5) for n in MEMORY["lengths"])
    figures["memory"] = {"settings": {k: v for k, v in MEMORY.items() if k != "lengths"}, "short": short,
                         "long": long, **growth_over_output(short, long)}
    path = write_results("ti2v_zero", figures)
    print(path.read_text())


if __name__ == "__main__":
    main()
