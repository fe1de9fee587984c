"""FIFO-Diffusion benchmark: UNet calls and seconds per emitted frame with windows one by one vs all
windows of an iteration in one batched call; peak memory at 64 vs 512 output frames, each in a fresh
child process, with the frames returned and with the frames only streamed to disk.

    python -m bench.fifo            # writes bench/results/fifo.json

With lookahead an iteration runs 2n windows of f frames, each one CFG'd UNet call when window_batch = 1
(the reference's order); window_batch ≥ 2n makes it one batched call per emitted frame. Memory must grow
with the video only by the returned frames (≤ their size + 10 %), and not at all (± 5 %) when the frames
go to disk and are not kept.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from zeroshot_video.testing import standin_models
from zeroshot_video.core.methods import fifo
from zeroshot_video.core.families import load_backbone
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.methods.t2v import noise_like, sample_t2v

from zeroshot_video.bench.common import (Meter, answered_as_child, child_peak_rss, load_bench_backbone, peak_rss_mb, reset_peak_rss,
                     write_results)

MODELS = Path(tempfile.gettempdir()) / "zeroshot_video_bench_models"
PROMPT = "a red panda eating bamboo"
SPEED = {"side": 64, "window_frames": 8, "partitions": 2, "output_frames": 4, "guidance": 9.0}
# The memory runs measure growth with length, so they use the tiny stand-in model, no CFG and the smallest
# queue (f = 2, n = 1): 64 + 512 iterations per pair of runs on a shared 2-core CPU.
MEMORY = {"model": "tiny stand-in", "side": 64, "window_frames": 2, "partitions": 1, "guidance": 1.0,
          "lengths": (64, 512)}


def _tiny_backbone():
    folder = MODELS / "tiny-modelscope"
    if not (folder / "model_index.json").exists():
        standin_models.write_modelscope(folder)
    return load_backbone(folder)


def _setup(side, window_frames, partitions, lookahead=True, guidance=SPEED["guidance"], tiny=False, group=1):
    backbone = _tiny_backbone() if tiny else load_bench_backbone("modelscope", MODELS)
    cond = encode_text(backbone, PROMPT)
    plan = fifo.fifo_plan(backbone.schedule, window_frames, partitions, lookahead, backbone.max_frames, group)
    gen = torch.Generator().manual_seed(0)
    factor = backbone.vae_scale_factor
    shape = (1, backbone.unet.config.in_channels, plan.frames, side // factor, side // factor)
    base = sample_t2v(Denoiser(backbone, guidance), backbone.schedule, cond, noise_like(shape, gen),
                      plan.steps, generator=gen, eta=1.0)
    return backbone, cond, plan, base


def _run(backbone, cond, plan, base, frames, window_batch, guidance=SPEED["guidance"], **options):
    return fifo.fifo_video(backbone, Denoiser(backbone, guidance), plan, cond, base, frames,
                           generator=torch.Generator().manual_seed(1), window_batch=window_batch, **options)


@torch.no_grad()
def speed(repeats: int = 2) -> dict:
    """Best of ``repeats`` alternating runs per setting: the CPU is shared, so the minimum is the honest figure."""
    s = SPEED
    figures = {"settings": s, "load_average_before": os.getloadavg()[0]}
    for lookahead in (True, False):
        backbone, cond, plan, base = _setup(s["side"], s["window_frames"], s["partitions"], lookahead)
        _run(backbone, cond, plan, base, 1, len(plan.windows))  # warm-up
        emitted = s["output_frames"] + plan.warmup
        best = {}
        for _ in range(repeats):
            for window_batch in sorted({1, len(plan.windows)}):
                meter = Meter(backbone)
                started = time.perf_counter()
                _run(backbone, cond, plan, base, s["output_frames"], window_batch)
                wall = time.perf_counter() - started
                meter.detach()
                if window_batch in best and best[window_batch][0] <= wall:
                    continue
                best[window_batch] = wall, {
                    "windows_per_iteration": len(plan.windows),
                    "unet_calls_per_emitted_frame": meter.unet_calls / emitted,
                    "vae_decodes_per_kept_frame": meter.decoded_frames / s["output_frames"],
                    "seconds_per_emitted_frame": round(wall / emitted, 3),
                    "unet_seconds_per_call": round(meter.unet_seconds / meter.unet_calls, 4),
                    "overhead_outside_unet_vae_percent": round(
                        100 * (1 - (meter.unet_seconds + meter.vae_seconds) / wall), 2),
                }
        for window_batch, (_, row) in best.items():
            figures[f"lookahead_{'on' if lookahead else 'off'}_window_batch_{window_batch}"] = row
    figures["load_average_after"] = os.getloadavg()[0]
    return figures


@torch.no_grad()
def frames_per_level(repeats: int = 2) -> dict:
    """What ``frames_per_level`` buys: model calls and seconds per emitted frame at c = 1 (the paper) and at the
    largest c the window allows under lookahead (f/2 = 4: the queue's f·n = 16 frames on 4 levels, a 4-step
    model's), with guidance (two branches per call) and without (guidance 1, one branch). Best of ``repeats``."""
    s = SPEED
    largest = s["window_frames"] // 2
    figures = {"settings": {**s, "lookahead": True, "window_batch": "all windows of an iteration in one call"}}
    for guidance in (s["guidance"], 1.0):
        for group in (1, largest):
            backbone, cond, plan, base = _setup(s["side"], s["window_frames"], s["partitions"], guidance=guidance,
                                                group=group)
            emitted = -(-s["output_frames"] // group) * group + plan.warmup * group
            best = None
            for _ in range(repeats):
                meter = Meter(backbone)
                started = time.perf_counter()
                _run(backbone, cond, plan, base, s["output_frames"], len(plan.windows), guidance)
                wall = time.perf_counter() - started
                meter.detach()
                if best is None or wall < best[0]:
                    best = wall, {"levels": plan.steps, "frames_per_iteration": group,
                                  "model_calls_per_emitted_frame": meter.unet_calls / emitted,
                                  "seconds_per_emitted_frame": round(wall / emitted, 3)}
            figures[f"guidance_{guidance:g}_frames_per_level_{group}"] = best[1]
    return figures


@torch.no_grad()
def memory_child(frames: int, streamed: bool) -> dict:
    m = MEMORY
    backbone, cond, plan, base = _setup(m["side"], m["window_frames"], m["partitions"], guidance=m["guidance"],
                                        tiny=True)
    with tempfile.TemporaryDirectory() as folder:
        baseline = reset_peak_rss()  # the peak of this run, not of model loading
        started = time.perf_counter()
        images, latents = _run(backbone, cond, plan, base, frames, len(plan.windows), m["guidance"],
                               stream_to=Path(folder) if streamed else None, keep_frames=not streamed)
        written = len(list(Path(folder).glob("*.png")))
    output = images.numel() * images.element_size() + latents.numel() * latents.element_size()
    return {"frames": frames, "streamed_to_disk": streamed, "pngs_written": written,
            "seconds": round(time.perf_counter() - started, 1), "rss_mb_before": round(baseline, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1), "returned_mb": round(output / 2 ** 20, 2)}


def _memory(streamed: bool) -> dict:
    extra = ("--streamed",) if streamed else ()
    short, long = (child_peak_rss("bench.fifo", "--frames", str(n), *extra) for n in MEMORY["lengths"])
    growth = long["peak_rss_mb"] - short["peak_rss_mb"]
    returned = long["returned_mb"] - short["returned_mb"]
    result = {"short": short, "long": long, "peak_growth_mb": round(growth, 1),
              "returned_growth_mb": round(returned, 1)}
    if streamed:
        result["growth_percent_of_short_peak"] = round(100 * growth / short["peak_rss_mb"], 2)
        result["flat_within_5_percent"] = abs(growth) <= 0.05 * short["peak_rss_mb"]
    else:
        result["growth_within_returned_plus_10_percent"] = growth <= 1.1 * returned
    return result


def main():
    if answered_as_child(memory_child, frames={"type": int}, streamed={"action": "store_true"}):
        return
    figures = {"per_emitted_frame": speed(), "frames_per_level": frames_per_level(),
               "memory": {"settings": {k: v for k, v in MEMORY.items() if k != "lengths"},
                          "frames_returned": _memory(streamed=False),
                          "frames_streamed_not_kept": _memory(streamed=True)}}
    path = write_results("fifo", figures)
    print(path.read_text())


if __name__ == "__main__":
    main()
