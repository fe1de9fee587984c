"""Wan benchmark: T2VSampler against diffusers' WanPipeline, FIFO and TI2V-Zero on Wan, memory over length.

    python -m bench.wan            # writes bench/results/wan.json (on a GPU also the real-size figures)

- **T2V**: seconds per step of our sampler and of ``WanPipeline`` (the same components, a flow-match Euler
  scheduler with the same shift, the same latents), the max difference of the two results (batched CFG
  against the pipeline's two calls: ~1e-6 in fp32) and transformer calls per step (1).
- **FIFO**: transformer calls per emitted latent frame (2n windows with lookahead one by one; 1 with
  ``window_batch`` ≥ 2n), and peak memory at 65 vs 1,025 video frames, each in a fresh child process, with the
  frames returned (growth ≈ the returned frames) and streamed to disk (flat).
- **TI2V-Zero**: transformer calls per new latent frame (4 video frames): S·(R + 1) − R (no resampling round at
  σ = 1, where nothing of the clip would survive it); VAE encodes per new
  frame: 0 (the queue stays latent).
- **GPU** (only where CUDA is available): Wan 2.1 1.3B's real configuration with random weights at 480×832 in
  bf16: seconds per video frame of WanPipeline (81 frames), our T2VSampler, FIFO (window_batch 1 and all) and
  TI2V-Zero, and peak VRAM. Random weights cost the same compute as real ones.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from zeroshot_video.testing import standin_models
from zeroshot_video.core.methods import fifo, ti2v_zero
from zeroshot_video.core.families import load_backbone
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.methods.strategies import NoiseInit, Resample
from zeroshot_video.core.methods.t2v import noise_like, sample_t2v

from zeroshot_video.bench.common import answered_as_child, child_peak_rss, peak_rss_mb, reset_peak_rss, write_results

MODELS = Path(tempfile.gettempdir()) / "zeroshot_video_bench_wan"
PROMPT = "a red panda eating bamboo"
SPEED = {"width": 832, "height": 480, "frames": 9, "steps": 4, "guidance": 5.0, "repeats": 2}
FIFO = {"width": 128, "height": 128, "window_frames": 5, "partitions": 2, "kept_latent_frames": 4}
MEMORY = {"width": 64, "height": 64, "window_frames": 5, "partitions": 1, "guidance": 1.0, "lengths": (65, 1025)}
TI2V = {"width": 128, "height": 128, "model_frames": 9, "steps": 3, "resample": 1, "new_frames": 8}


def _backbone(dtype=torch.float32):
    folder = MODELS / standin_models.WAN21
    if not (folder / "model_index.json").exists():
        standin_models.write_wan21(folder)
    return load_backbone(folder, dtype=dtype)


class Calls:
    """Counts transformer forwards and VAE encoder/decoder calls with forward hooks."""

    def __init__(self, backbone):
        self.model = self.encodes = self.decodes = 0
        nets = [m for m in (backbone.transformer, backbone.transformer_2) if m is not None]
        self._handles = [m.register_forward_pre_hook(lambda *a: self._add("model")) for m in nets]
        self._handles.append(backbone.vae.encoder.register_forward_pre_hook(lambda *a: self._add("encodes")))
        self._handles.append(backbone.vae.decoder.register_forward_pre_hook(lambda *a: self._add("decodes")))

    def _add(self, name):
        setattr(self, name, getattr(self, name) + 1)

    def detach(self):
        for handle in self._handles:
            handle.remove()


def _pipeline(backbone):
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline
    pipe = WanPipeline(tokenizer=backbone.tokenizer, text_encoder=backbone.text_encoder, vae=backbone.vae,
                       transformer=backbone.transformer, transformer_2=backbone.transformer_2,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=backbone.schedule.shift),
                       boundary_ratio=backbone.boundary_ratio, expand_timesteps=backbone.expand_timesteps)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def t2v_speed(backbone, s=SPEED) -> dict:
    """Best of ``repeats`` alternating runs (the CPU may be shared: the minimum is the honest figure)."""
    cond = encode_text(backbone, PROMPT, "")
    noise = noise_like(backbone.latent_shape(s["frames"], s["width"], s["height"]),
                       torch.Generator().manual_seed(0)).to(backbone.device)
    pipe = _pipeline(backbone)
    sample_t2v(Denoiser(backbone, s["guidance"]), backbone.schedule, cond, noise, 1, generator=torch.Generator())
    ours_best = theirs_best = float("inf")  # after a warm-up step: allocator pools, lazy initialisations
    for _ in range(s["repeats"]):
        calls = Calls(backbone)
        started = time.perf_counter()
        ours = sample_t2v(Denoiser(backbone, s["guidance"]), backbone.schedule, cond, noise, s["steps"],
                          generator=torch.Generator())
        ours_best = min(ours_best, time.perf_counter() - started)
        calls.detach()
        started = time.perf_counter()
        theirs = pipe(prompt_embeds=cond.positive.to(backbone.device), height=s["height"], width=s["width"],
                      negative_prompt_embeds=cond.negative.to(backbone.device), num_frames=s["frames"],
                      num_inference_steps=s["steps"], guidance_scale=s["guidance"], latents=noise.clone(),
                      output_type="latent").frames
        theirs_best = min(theirs_best, time.perf_counter() - started)
    return {"settings": s, "ours_seconds_per_step": round(ours_best / s["steps"], 4),
            "pipeline_seconds_per_step": round(theirs_best / s["steps"], 4),
            "ratio": round(ours_best / theirs_best, 3),
            "max_abs_difference": float((ours.float() - torch.as_tensor(theirs).float()).abs().max()),
            "transformer_calls_per_step": calls.model / s["steps"]}


def _fifo_setup(backbone, width, height, window_frames, partitions, guidance):
    cond = encode_text(backbone, PROMPT, "")
    window = fifo.window_latent_frames(backbone, window_frames, True)
    plan = fifo.fifo_plan(backbone.schedule, window, partitions, True, backbone.max_frames)
    gen = torch.Generator().manual_seed(0)
    noise = noise_like(backbone.latent_shape(window_frames, width, height), gen).to(backbone.device)
    base = sample_t2v(Denoiser(backbone, guidance), backbone.schedule, cond, noise, plan.steps, generator=gen,
                      eta=1.0, grid="fifo")
    return cond, plan, base


@torch.no_grad()
def fifo_calls(backbone, f=FIFO) -> dict:
    cond, plan, base = _fifo_setup(backbone, f["width"], f["height"], f["window_frames"], f["partitions"], 5.0)
    figures = {"settings": f, "windows_per_iteration": len(plan.windows)}
    for window_batch in sorted({1, len(plan.windows)}):
        calls = Calls(backbone)
        started = time.perf_counter()
        fifo.fifo_video(backbone, Denoiser(backbone, 5.0), plan, cond, base, f["kept_latent_frames"],
                        generator=torch.Generator().manual_seed(1), window_batch=window_batch)
        wall = time.perf_counter() - started
        calls.detach()
        emitted = f["kept_latent_frames"] + plan.warmup
        figures[f"window_batch_{window_batch}"] = {
            "transformer_calls_per_emitted_latent_frame": calls.model / emitted,
            "vae_decoder_calls_per_kept_latent_frame": calls.decodes / f["kept_latent_frames"],
            "seconds_per_video_frame": round(wall / backbone.video_frames(f["kept_latent_frames"]), 3)}
    return figures


@torch.no_grad()
def memory_child(frames: int, streamed: bool) -> dict:
    m = MEMORY
    backbone = _backbone()
    cond, plan, base = _fifo_setup(backbone, m["width"], m["height"], m["window_frames"], m["partitions"],
                                   m["guidance"])
    latent_frames = backbone.latent_frames(frames)
    with tempfile.TemporaryDirectory() as folder:
        baseline = reset_peak_rss()
        started = time.perf_counter()
        images, latents = fifo.fifo_video(backbone, Denoiser(backbone, m["guidance"]), plan, cond, base,
                                          latent_frames, generator=torch.Generator().manual_seed(1),
                                          window_batch=len(plan.windows),
                                          stream_to=Path(folder) if streamed else None, keep_frames=not streamed)
        written = len(list(Path(folder).glob("*.png")))
    output = images.numel() * images.element_size() + latents.numel() * latents.element_size()
    return {"video_frames": frames, "streamed_to_disk": streamed, "pngs_written": written,
            "seconds": round(time.perf_counter() - started, 1), "rss_mb_before": round(baseline, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1), "returned_mb": round(output / 2 ** 20, 2)}


def _memory(streamed: bool) -> dict:
    extra = ("--streamed",) if streamed else ()
    short, long = (child_peak_rss("bench.wan", "--frames", str(n), *extra) for n in MEMORY["lengths"])
    growth = (long["peak_rss_mb"] - long["rss_mb_before"]) - (short["peak_rss_mb"] - short["rss_mb_before"])
    returned = long["returned_mb"] - short["returned_mb"]
    return {"short": short, "long": long, "peak_growth_mb": round(growth, 1), "returned_growth_mb": round(returned, 1)}


@torch.no_grad()
def ti2v_calls(backbone, t=TI2V) -> dict:
    from zeroshot_video.core.methods.anchor import gradient_image, make_anchor
    cond = encode_text(backbone, PROMPT, "")
    anchor = make_anchor(backbone, gradient_image(t["width"], t["height"]), t["width"], t["height"])
    calls = Calls(backbone)
    started = time.perf_counter()
    video, _ = ti2v_zero.image_to_video(
        backbone, cond, anchor, num_frames=t["new_frames"], model_frames=t["model_frames"], steps=t["steps"],
        guidance=5.0, generator=torch.Generator().manual_seed(0), noise_init=NoiseInit("ddpm_inversion"),
        resample=Resample(t["resample"]))
    wall = time.perf_counter() - started
    calls.detach()
    new_latents = t["new_frames"] // 4
    queue_encodes = 1  # the still clip of the queue, encoded once per run
    return {"settings": t, "transformer_calls_per_new_latent_frame": calls.model / new_latents,
            "expected": ti2v_zero.calls_per_frame(backbone.schedule, backbone.schedule.ti2v_pairs(t["steps"]),
                                                  t["resample"]),
            "vae_encodes_per_new_frame": (calls.encodes - queue_encodes) / t["new_frames"],
            "seconds_per_video_frame": round(wall / t["new_frames"], 3), "video_frames": int(video.shape[0])}


def gpu_figures() -> dict:
    """Real-size Wan 2.1 1.3B (random weights) at 480×832 in bf16; only on a CUDA device."""
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device in this run: the real-size figures need a GPU session"}
    from diffusers import WanTransformer3DModel
    real = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
                out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
    backbone = _backbone(torch.bfloat16)
    backbone.transformer = WanTransformer3DModel(**real).to(torch.bfloat16)
    backbone.modules.transformer = backbone.transformer
    backbone.to(torch.device("cuda"))
    torch.cuda.reset_peak_memory_stats()
    speed = t2v_speed(backbone, {**SPEED, "frames": 81, "steps": 4, "repeats": 1})
    return {"t2v_81_frames": speed, "peak_vram_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2),
            "device": torch.cuda.get_device_name()}


def main():
    if answered_as_child(memory_child, frames={"type": int}, streamed={"action": "store_true"}):
        return
    backbone = _backbone()
    figures = {"model": "tiny Wan 2.1 stand-in (testing/standin_models.py), fp32, CPU",
               "t2v": t2v_speed(backbone), "fifo": fifo_calls(backbone), "ti2v_zero": ti2v_calls(backbone),
               "fifo_memory": {"settings": {k: v for k, v in MEMORY.items() if k != "lengths"},
                               "frames_returned": _memory(False), "frames_streamed_not_kept": _memory(True)},
               "gpu": gpu_figures()}
    print(write_results("wan", figures).read_text())


if __name__ == "__main__":
    main()
