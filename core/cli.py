"""``python -m zeroshot_video``: the pack's jobs without ComfyUI.

- ``demo``: generate a short video end to end (a tiny random backbone unless ``--model`` is given);
- ``make-test-models DIR``: write the tiny stand-in models under the names the shipped workflows use.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from . import standin_models, vae
from .backbone import load_backbone, resolve_dtype
from .conditioning import encode_text
from .denoiser import Denoiser
from .t2v import noise_like, sample_t2v
from .validation import check_frames, check_size
from .video_io import write_video


def _t2v(args, backbone, cond) -> torch.Tensor:
    check_size(args.width, args.height)
    check_frames(backbone, args.frames)
    gen = torch.Generator().manual_seed(args.seed)
    factor = backbone.vae_scale_factor
    noise = noise_like((1, backbone.unet.config.in_channels, args.frames, args.height // factor,
                        args.width // factor), gen).to(backbone.device)
    denoiser = Denoiser(backbone, args.guidance)
    latent = sample_t2v(denoiser, backbone.schedule, cond, noise, args.steps, generator=gen, eta=args.eta,
                        on_step=lambda i, n, x: print(f"  step {i}/{n}", end="\r"))
    print()
    return vae.decode_frames(backbone, latent)


# Each method of the pack adds its demo here: name -> function(args, backbone, conditioning) -> frames.
DEMOS: dict[str, Callable] = {"t2v": _t2v}


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
    d.set_defaults(run=demo)
    m = sub.add_parser("make-test-models", help="write tiny random stand-in models into a ComfyUI models folder")
    m.add_argument("models_dir")
    m.set_defaults(run=make_test_models)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
