"""``python -m zeroshot_video``: the pack's jobs without ComfyUI.

- ``demo``: generate a short video end to end (a tiny random backbone unless ``--model`` is given);
- ``make-test-models DIR``: write the tiny stand-in models under the names the shipped workflows use;
- ``submit WORKFLOW_API.json``: queue a workflow on a running ComfyUI server (``client.py``, stdlib only).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from ..core import fifo, i4vgen, ti2v_zero, vae
from . import standin_models
from ..core.anchor import gradient_image, make_anchor
from ..core.backbone import load_backbone, resolve_dtype
from ..core.conditioning import encode_text
from ..core.denoiser import Denoiser
from ..core.reward import load_reward_model
from ..core.strategies import NoiseInit, Resample
from ..core.t2v import noise_like, sample_t2v
from ..core.validation import check_frames, check_size
from ..core.video_io import write_video


def _t2v(args, backbone, cond) -> torch.Tensor:
    check_size(args.width, args.height)
    check_frames(backbone, args.frames)
    gen = torch.Generator().manual_seed(args.seed)
    noise = noise_like(backbone.latent_shape(args.frames, args.width, args.height), gen).to(backbone.device)
    denoiser = Denoiser(backbone, args.guidance)
    latent = sample_t2v(denoiser, backbone.schedule, cond, noise, args.steps, generator=gen, eta=args.eta,
                        on_step=lambda i, n, x: print(f"  step {i}/{n}", end="\r"))
    print()
    return vae.decode_frames(backbone, latent)


def _start_image(path: str | None, width: int, height: int) -> torch.Tensor:
    """IMAGE ``[1, H, W, 3]`` from a file, or a synthetic colour gradient when no file is given."""
    if path is None:
        print("No --image given: using a synthetic colour-gradient image as the first frame.")
        return gradient_image(width, height)
    import numpy as np
    from PIL import Image
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).unsqueeze(0)


def _ti2v_zero(args, backbone, cond) -> torch.Tensor:
    anchor = make_anchor(backbone, _start_image(args.image, args.width, args.height), args.width, args.height)
    print(f"TI2V-Zero: {args.frames} new frames after the image, {args.model_frames} frames per model call")
    frames, _ = ti2v_zero.sample_on_backbone(
        backbone, Denoiser(backbone, args.guidance), cond, anchor, args.frames, args.steps,
        model_frames=args.model_frames, generator=torch.Generator().manual_seed(args.seed),
        noise_init=NoiseInit("gaussian" if args.no_inversion else "ddpm_inversion"), resample=Resample(args.resample),
        latent_queue=args.latent_queue, on_step=lambda i, n: print(f"  UNet evaluation {i}/{n}", end="\r"))
    print()
    return frames


def _i4vgen(args, backbone, cond) -> torch.Tensor:
    """The I4VGen graph in one go, one seed: candidates → reward selection → NI-VSDS → regeneration."""
    check_size(args.width, args.height)
    check_frames(backbone, args.frames)
    sizes = i4vgen.parse_step_sizes(args.step_sizes)
    iterations = i4vgen.nivsds_iterations(args.steps, args.p)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.reward_model
        if folder is None:
            print("No --reward-model given: using a tiny RANDOMLY INITIALISED CLIP; its choice of anchor is arbitrary.")
            folder = Path(scratch) / standin_models.REWARD_MODEL
            standin_models.write_reward_model(folder)
        reward = load_reward_model(folder)
    gen = torch.Generator().manual_seed(args.seed)  # one stream: candidates, then ε, then the regeneration noise
    shape = backbone.latent_shape(args.frames, args.width, args.height)
    denoiser = Denoiser(backbone, args.guidance)
    selection = i4vgen.generate_and_select(
        denoiser, backbone.schedule, cond,
        i4vgen.candidate_noise(shape, args.candidates or args.frames, gen).to(backbone.device), args.steps,
        args.frames, decode=lambda latents: vae.decode_frames(backbone, latents),
        score=lambda images: reward.score(images, args.prompt, backbone.device), generator=gen)
    print("I4VGen candidate scores:\n" + i4vgen.format_scores(selection))
    moved = i4vgen.ni_vsds(denoiser, backbone.schedule, cond, selection.anchor,
                           i4vgen.nivsds_noise(shape, gen).to(backbone.device), args.steps, iterations, sizes,
                           on_step=lambda k, n, x: print(f"  NI-VSDS {k}/{n}", end="\r"))
    print()
    latent = sample_t2v(denoiser, backbone.schedule, cond, noise_like(shape, gen).to(backbone.device), args.steps,
                        generator=gen, eta=args.eta, init_latent=moved, strength=args.p_re)
    return vae.decode_frames(backbone, latent)


def _fifo(args, backbone, cond) -> torch.Tensor:
    """FIFO-Diffusion: a base clip of f frames sampled with its forced S = f·n steps, then diagonal denoising."""
    check_size(args.width, args.height)
    plan = fifo.fifo_plan(backbone.schedule, args.window_frames, args.partitions, not args.no_lookahead,
                          backbone.max_frames)
    gen = torch.Generator().manual_seed(args.seed)
    shape = backbone.latent_shape(plan.frames, args.width, args.height)
    denoiser = Denoiser(backbone, args.guidance)
    base = sample_t2v(denoiser, backbone.schedule, cond, noise_like(shape, gen).to(backbone.device), plan.steps,
                      generator=gen, eta=args.fifo_eta)
    print(f"FIFO: base clip of {plan.frames} frames in {plan.steps} steps, then {args.frames} frames "
          f"({plan.warmup} warm-up iterations dropped, {len(plan.windows)} windows per frame)")
    frames, _ = fifo.fifo_video(backbone, denoiser, plan, cond, base, args.frames, generator=gen, eta=args.fifo_eta,
                                window_batch=args.window_batch,
                                on_step=lambda k, n, queue: print(f"  iteration {k}/{n}", end="\r"))
    print()
    return frames


# Each method of the pack adds its demo here: name -> function(args, backbone, conditioning) -> frames.
DEMOS: dict[str, Callable] = {"t2v": _t2v, "ti2v-zero": _ti2v_zero, "i4vgen": _i4vgen, "fifo": _fifo}


def _backbone(args, scratch: Path):
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.model is None:
        print("No --model given: using a tiny RANDOMLY INITIALISED backbone. Its video is noise; it only shows the "
              "pipeline running end to end. Pass --model <diffusers folder> for a real one.")
        standin_models.write_modelscope(scratch / "tiny")
        args.model = str(scratch / "tiny")
    backbone = load_backbone(args.model, motion_adapter=args.motion_adapter, dtype=resolve_dtype(args.dtype, device))
    return backbone.to(device)


def demo(args) -> Path:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        backbone = _backbone(args, Path(scratch))
        cond = encode_text(backbone, args.prompt, args.negative_prompt)
        frames = DEMOS[args.method](args, backbone, cond)
    out = write_video(frames, args.out, args.fps)
    print(f"wrote {out} ({frames.shape[0]} frames, {frames.shape[2]}x{frames.shape[1]}) "
          f"in {time.perf_counter() - started:.1f}s")
    return out


def make_test_models(args) -> None:
    for path in standin_models.write_all(args.models_dir):
        print(path)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m zeroshot_video", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="generate a short video without ComfyUI")
    d.add_argument("--method", choices=sorted(DEMOS), default="t2v")
    d.add_argument("--model", help="diffusers model folder (default: a tiny random stand-in)")
    d.add_argument("--motion-adapter", help="AnimateDiff motion adapter (folder or .safetensors) for an SD1.5 model")
    d.add_argument("--prompt", default="a red panda eating bamboo")
    d.add_argument("--negative-prompt", default="")
    d.add_argument("--frames", type=int, default=8)
    d.add_argument("--width", type=int, default=64)
    d.add_argument("--height", type=int, default=64)
    d.add_argument("--steps", type=int, default=10)
    d.add_argument("--guidance", type=float, default=9.0)
    d.add_argument("--eta", type=float, default=0.0)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--fps", type=int, default=8)
    d.add_argument("--dtype", choices=["auto", "fp16", "bf16", "fp32"], default="auto")
    d.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    d.add_argument("--out", default="demo.webp", help=".webp, .gif or .mp4 (needs PyAV)")
    ti2v = d.add_argument_group("ti2v-zero (--frames = new frames after the image; --width/--height = its size)")
    ti2v.add_argument("--image", help="first frame (.png/.jpg); default: a synthetic gradient")
    ti2v.add_argument("--model-frames", type=int, default=16, help="F, frames per model call (queue = F - 1)")
    ti2v.add_argument("--resample", type=int, default=4, help="R, resampling rounds per step (paper: 4)")
    ti2v.add_argument("--no-inversion", action="store_true", help="start new frames from Gaussian noise")
    ti2v.add_argument("--latent-queue", action="store_true", help="keep the queue as latents (faster, a deviation)")
    i4v = d.add_argument_group("i4vgen")
    i4v.add_argument("--reward-model", help="CLIP-family reward model folder, e.g. PickScore_v1 (default: tiny random)")
    i4v.add_argument("--candidates", type=int, default=0, help="N anchor candidates (0 = one per frame)")
    i4v.add_argument("--p", type=float, default=i4vgen.DEFAULT_P, help="NI-VSDS: int(steps*p)+1 iterations")
    i4v.add_argument("--step-sizes", default=",".join(f"{a:g}" for a in i4vgen.DEFAULT_STEP_SIZES),
                     help="NI-VSDS step sizes, the last repeats")
    i4v.add_argument("--p-re", type=float, default=1.0, help="regeneration denoise strength (AnimateDiff 1.0)")
    ff = d.add_argument_group("fifo (--frames = output frames; steps are forced to window-frames x partitions)")
    ff.add_argument("--window-frames", type=int, default=4, help="f, frames per model call (real models: 16)")
    ff.add_argument("--partitions", type=int, default=2, help="n; S = f*n steps (paper: 4)")
    ff.add_argument("--window-batch", type=int, default=4, help="windows per UNet call (result does not change)")
    ff.add_argument("--no-lookahead", action="store_true", help="disjoint windows (half the UNet calls)")
    ff.add_argument("--fifo-eta", type=float, default=1.0, help="DDIM eta of the base clip and the FIFO loop")
    d.set_defaults(run=demo)
    m = sub.add_parser("make-test-models", help="write tiny random stand-in models into a ComfyUI models folder")
    m.add_argument("models_dir")
    m.set_defaults(run=make_test_models)
    from .. import client  # stdlib only: the pack's HTTP client for a running ComfyUI server
    s = sub.add_parser("submit", help="queue an API-format workflow on a running ComfyUI server, follow it and "
                                      "download its outputs (exit 0 ok, 2 rejected, 3 failed, 4 unreachable)")
    client.add_arguments(s)
    s.set_defaults(run=client.run_args)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        status = args.run(args)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0  # submit returns its exit code
