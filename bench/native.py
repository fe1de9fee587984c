"""T2V Sampler on ComfyUI's own Wan MODEL against ComfyUI's KSampler: the same output, and speed per step.

    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy-python bench/native.py [--models DIR] [--quick] [--gpu-only]

Runs under ComfyUI's python, in-process (``tests/comfyui/native_harness.py``: ComfyUI's modules from
``COMFYUI_DIR``, the pack imported as ComfyUI imports a custom node), with the objects ComfyUI's loaders make:
``comfy.sd.load_diffusion_model`` (UNETLoader) → ``ModelSamplingSD3`` shift 5 → the same MODEL for both sides.

- **KSampler**: ``comfy.sample.sample`` (what KSampler runs) with the ``simple`` scheduler, its noise from
  ``comfy.sample.prepare_noise(latent, seed)``, from an empty latent (EmptyHunyuanLatentVideo's zeros).
- **Pack**: ``core.methods.t2v.text_to_video`` on ``WanModelBackbone().wrap(model, vae)[0].ready()`` with the
  node's host (ComfyUI's interrupt and memory checks), the same seed, the conditioning through
  ``conditioning_from_host`` and the result back through ``latent_to_host`` (T2VSampler's path from
  CONDITIONING to LATENT).

For each sampler (euler, uni_pc) and cfg (5: both branches in one batched call; 1: one branch), one warm-up run
of each side (not timed), then ``repeats`` rounds K, P, K, P, …; seconds per step = median run / steps. The
speed ratio is KSampler's time over the pack's (≥ 0.97 is the target: the pack at most 3 % slower), of the median
runs and of the fastest runs (on a shared 2-core VM one run of the same work scatters by ±15 %, and interference
only slows a run, so the fastest run of each side is the steadier figure); the max
relative difference is max |pack − KSampler| / max |KSampler| (≤ 1e-5 is the target, for float32 compute).
Model calls are counted by a forward pre-hook on ComfyUI's WanModel (one call = one batched forward).

Sections:
- **standin** (always, unless ``--gpu-only``): the native Wan 2.1 stand-in (``testing/standin_files_native.py``:
  2 blocks, one 128-wide head, 4096 text features) on a latent large enough that its attention dominates a step
  on ComfyUI's device (1×16×5×48×80: sized for roughly 0.3–1 s per step on a 2-core CPU). The stand-ins are
  written to a temporary folder unless ``--models`` names a folder holding them (``diffusion_models/``, ``vae/``).
- **gpu** (only where ``torch.cuda.is_available()``): a Wan 2.1 1.3B-shaped network (dim 1536, 12 heads, ffn
  8960, 30 blocks, text 4096) with random weights in bf16, loaded through
  ``comfy.sd.load_diffusion_model_state_dict``, at 81 frames of 480×832 (latent 1×16×21×60×104), 4 steps. Random
  weights cost the same compute as real ones.

The conditioning is random ``[1, 512, 4096]`` embeddings, as CLIPTextEncode with UMT5-XXL makes them (the encoder
is not timed: KSampler and the pack take the same CONDITIONING). Writes ``bench/results/native.json``;
``--quick`` (tiny latent, 1 round, < 60 s on 2 cores) only prints, for smoke-testing.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.machine import machine  # noqa: E402  (no pack import: this runs in ComfyUI's python)
RESULTS = ROOT / "bench" / "results"
SEED = 0
SHIFT = 5.0
TEXT_TOKENS = 512
CONFIGS = (("euler", 5.0), ("euler", 1.0), ("uni_pc", 5.0), ("uni_pc", 1.0))
TOLERANCE = 1e-5  # max relative difference, float32 compute
SPEED_TARGET = 0.97  # KSampler's seconds over the pack's
# latent (batch, channels, latent frames, height/8, width/8); video frames = 4·(F − 1) + 1
STANDIN = {"latent": (1, 16, 5, 48, 80), "steps": 8, "repeats": 9}  # 17 frames of 384×640: 4 800 tokens
QUICK = {"latent": (1, 16, 2, 8, 8), "steps": 3, "repeats": 1}
GPU = {"latent": (1, 16, 21, 60, 104), "steps": 4, "repeats": 3}  # 81 frames of 480×832: 32 760 tokens
GPU_QUICK = {"latent": (1, 16, 2, 8, 8), "steps": 2, "repeats": 1}
# Wan 2.1 T2V 1.3B (its official configuration)
WAN21_1_3B = {"patch_size": (1, 2, 2), "num_attention_heads": 12, "attention_head_dim": 128, "in_channels": 16,
              "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 8960, "num_layers": 30,
              "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 1024}


def _import_comfy():
    """ComfyUI and the pack in-process; ComfyUI on the GPU where there is one (else as ``main.py --cpu``)."""
    sys.path.insert(0, str(ROOT / "tests" / "comfyui"))
    os.environ.setdefault("NATIVE_CHECKS_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
    from native_harness import import_comfy_and_pack, pack_module
    _, comfy = import_comfy_and_pack()
    import comfy.model_management  # noqa: F401
    import comfy.sample  # noqa: F401
    import comfy.sd  # noqa: F401
    import comfy.utils  # noqa: F401
    return comfy, pack_module


comfy, pack_module = _import_comfy()
from comfy_extras.nodes_model_advanced import ModelSamplingSD3  # noqa: E402

files = pack_module("testing.standin_files_native")
t2v = pack_module("core.methods.t2v")
native_nodes = pack_module("nodes.native_nodes")
glue = pack_module("nodes.comfy_glue")


# --- what is measured ------------------------------------------------------------------------------------------
def conditioning(seed: int = 1):
    """(positive, negative) CONDITIONING as CLIPTextEncode gives it: one [1, 512, 4096] embedding each."""
    generator = torch.Generator().manual_seed(seed)
    return tuple([[torch.randn(1, TEXT_TOKENS, 4096, generator=generator), {}]] for _ in range(2))


def ksampler(model, positive, negative, shape, steps: int, cfg: float, sampler: str) -> torch.Tensor:
    latent = torch.zeros(shape)  # EmptyHunyuanLatentVideo
    noise = comfy.sample.prepare_noise(latent, SEED)
    return comfy.sample.sample(model, noise, steps, cfg, sampler, "simple", positive, negative, latent, seed=SEED,
                               disable_pbar=True)


def pack(handle, positive, negative, shape, steps: int, cfg: float, sampler: str) -> torch.Tensor:
    backbone = handle.ready()
    cond = backbone.conditioning_from_host(positive, negative)
    _, _, frames, height, width = shape
    factor = backbone.video_vae.spatial_factor
    out = t2v.text_to_video(backbone, cond, frames=backbone.video_frames(frames), width=width * factor,
                            height=height * factor, steps=steps, guidance=cfg, generator=t2v.seeded(SEED),
                            sampler=sampler, host=glue.host())
    return backbone.latent_to_host(out)


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(run) -> tuple[float, torch.Tensor]:
    _synchronize()
    started = time.perf_counter()
    out = run()
    _synchronize()
    return time.perf_counter() - started, out


class Calls:
    """Counts forwards of ComfyUI's Wan network (a batched CFG call is one)."""

    def __init__(self, model):
        self.count = 0
        self._handle = model.model.diffusion_model.register_forward_pre_hook(self._add)

    def _add(self, *_):
        self.count += 1

    def detach(self) -> None:
        self._handle.remove()


def compare(model, vae, shape, steps: int, repeats: int, sampler: str, cfg: float) -> dict:
    """One configuration: a warm-up run of each side, then ``repeats`` alternating rounds."""
    positive, negative = conditioning()
    handle = native_nodes.WanModelBackbone().wrap(model, vae)[0]
    sides = {"ksampler": lambda: ksampler(model, positive, negative, shape, steps, cfg, sampler),
             "pack": lambda: pack(handle, positive, negative, shape, steps, cfg, sampler)}
    calls, outputs, seconds = {}, {}, {name: [] for name in sides}
    for name, run in sides.items():  # warm-up: loading onto the device, allocator pools, lazy initialisations
        counter = Calls(model)
        run()
        counter.detach()
        calls[name] = counter.count
    for _ in range(repeats):
        for name, run in sides.items():
            elapsed, outputs[name] = _timed(run)
            seconds[name].append(round(elapsed, 4))
    ours, theirs = outputs["pack"].float().cpu(), outputs["ksampler"].float().cpu()
    difference = float((ours - theirs).abs().max())
    relative = difference / float(theirs.abs().max())
    median = {name: statistics.median(values) for name, values in seconds.items()}
    ratio = median["ksampler"] / median["pack"]
    best = min(seconds["ksampler"]) / min(seconds["pack"])
    figures = {"sampler": sampler, "cfg": cfg, "steps": steps, "model_calls_per_run": calls,
               "ksampler_seconds_per_step": round(median["ksampler"] / steps, 4),
               "pack_seconds_per_step": round(median["pack"] / steps, 4),
               "speed_ratio_ksampler_over_pack": round(ratio, 3),
               "speed_ratio_fastest_runs": round(best, 3), "fastest_at_least_0.97": best >= SPEED_TARGET,
               "max_relative_difference": relative, "max_abs_difference": difference,
               "parity_within_1e-5": relative <= TOLERANCE, "speed_at_least_0.97": ratio >= SPEED_TARGET,
               "run_seconds": seconds}
    print(f"  {sampler:6} cfg {cfg:g}: KSampler {figures['ksampler_seconds_per_step']:.4f} s/step, pack "
          f"{figures['pack_seconds_per_step']:.4f} s/step, speed ratio {ratio:.3f} (fastest runs {best:.3f}), max "
          f"relative difference "
          f"{relative:.2e}, model calls {calls['ksampler']} / {calls['pack']}", flush=True)
    return figures


def section(model, vae, settings: dict, description: str) -> dict:
    shape = tuple(settings["latent"])
    _, _, frames, height, width = shape
    print(f"{description}: latent {'×'.join(map(str, shape))}, {settings['steps']} steps, "
          f"{settings['repeats']} rounds", flush=True)
    results = [compare(model, vae, shape, settings["steps"], settings["repeats"], sampler, cfg)
               for sampler, cfg in CONFIGS]
    return {"model": description, "model_dtype": str(model.model_dtype()).removeprefix("torch."),
            "device": str(model.load_device), "latent_shape": list(shape),
            "video": {"frames": 4 * (frames - 1) + 1, "height": height * 8, "width": width * 8,
                      "tokens_per_branch": frames * (height // 2) * (width // 2)},
            "steps": settings["steps"], "timed_rounds": settings["repeats"],
            "all_within_1e-5": all(r["parity_within_1e-5"] for r in results),
            "all_at_least_0.97": all(r["speed_at_least_0.97"] for r in results),
            "all_fastest_at_least_0.97": all(r["fastest_at_least_0.97"] for r in results),
            "configurations": results}


# --- models --------------------------------------------------------------------------------------------------
def standin_files(models: Path | None, scratch: Path) -> Path:
    """The folder holding the native Wan 2.1 stand-in and the 2.1 VAE (written into ``scratch`` if not given)."""
    if models is not None:
        return models
    files.write_native_files(scratch, vaes=False)  # the 2.2 VAE (1.4 GB) is not needed here
    writer = pack_module("testing.standin_files_wan")
    writer._save(files.full_size_wan_vae("2.1"), scratch / "vae" / files.VAE21_FILE)
    return scratch


def shifted(model):
    return ModelSamplingSD3().patch(model, SHIFT)[0]


def wan_1_3b(dtype=torch.bfloat16, device="cuda", config=WAN21_1_3B):
    """ComfyUI's MODEL of a Wan 2.1 1.3B-shaped network with random weights (names and shapes from the diffusers
    configuration on the meta device, renamed as the stand-in writer does), drawn on ``device`` in ``dtype``:
    weights N(0, 0.02²), norms 1, biases 0."""
    from diffusers import WanTransformer3DModel
    to_comfy = pack_module("testing.standin_files_wan").wan_transformer_to_comfy
    with torch.device("meta"):
        network = WanTransformer3DModel(**config)
    shapes = {name: tuple(t.shape) for name, t in to_comfy(network, files.PREFIX).items()}
    generator = torch.Generator(device).manual_seed(0)
    state = {}
    for name, shape in shapes.items():
        if name.endswith(".bias"):
            state[name] = torch.zeros(shape, dtype=dtype, device=device)
        elif "norm" in name:
            state[name] = torch.ones(shape, dtype=dtype, device=device)
        else:
            state[name] = (torch.randn(shape, generator=generator, device=device) * 0.02).to(dtype)
    model = comfy.sd.load_diffusion_model_state_dict(state, model_options={"dtype": dtype})
    if model is None:
        raise RuntimeError("ComfyUI did not recognise the Wan 2.1 1.3B-shaped state dict")
    del state
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return model


def gpu_section(vae, quick: bool) -> dict:
    if not torch.cuda.is_available():
        return {"skipped": "not run: torch.cuda.is_available() is False in this run (CPU only); the real-size "
                           "figures need a CUDA device"}
    settings = GPU_QUICK if quick else GPU
    model = shifted(wan_1_3b())
    torch.cuda.reset_peak_memory_stats()
    figures = section(model, vae, settings, "Wan 2.1 1.3B-shaped, random weights, bf16 "
                                            "(comfy.sd.load_diffusion_model_state_dict)")
    figures["gpu"] = torch.cuda.get_device_name()
    figures["peak_vram_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
    return figures


# --- the record ----------------------------------------------------------------------------------------------
def versions() -> dict:
    try:
        import comfyui_version
        comfyui = comfyui_version.__version__
    except ImportError:
        comfyui = "unknown"
    import diffusers
    return {"torch": torch.__version__, "comfyui": comfyui, "python": platform.python_version(),
            "diffusers": diffusers.__version__, "cuda": torch.version.cuda}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, help="a folder with the native stand-ins (diffusion_models/, vae/)")
    parser.add_argument("--quick", action="store_true", help="tiny latent, 1 round: a smoke test; prints only")
    parser.add_argument("--gpu-only", action="store_true", help="skip the stand-in section (on a GPU machine)")
    parser.add_argument("--out", type=Path, default=RESULTS / "native.json", help="results file (not with --quick)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    figures = {"machine": machine(), "device": str(comfy.model_management.get_torch_device()),
               "versions": versions(),
               "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
               "quick": args.quick,
               "method": "ComfyUI in-process; one MODEL (ModelSamplingSD3 shift 5) for both sides; KSampler = "
                         "comfy.sample.sample (simple scheduler, prepare_noise(seed 0)); pack = "
                         "core.methods.t2v.text_to_video on WanModelBackbone (node host, seed 0); random "
                         "[1, 512, 4096] CONDITIONING; per configuration one warm-up run of each side, then "
                         "alternating rounds (KSampler, pack, …); seconds per step = median run / steps",
               "targets": {"max_relative_difference": TOLERANCE, "speed_ratio_ksampler_over_pack": SPEED_TARGET},
               "load_average_before": os.getloadavg()[0]}
    with torch.inference_mode(), tempfile.TemporaryDirectory(prefix="zeroshot_video_bench_native_") as scratch:
        folder = standin_files(args.models, Path(scratch))
        vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(folder / "vae" / files.VAE21_FILE), safe_load=True))
        if args.gpu_only:
            figures["standin"] = {"skipped": "--gpu-only"}
        else:
            model = shifted(comfy.sd.load_diffusion_model(str(folder / "diffusion_models" / files.WAN21_FILE)))
            figures["standin"] = section(model, vae, QUICK if args.quick else STANDIN,
                                         "native Wan 2.1 stand-in (2 blocks, one 128-wide head, ffn 256), "
                                         "ComfyUI's dtype for the device")
            del model
        figures["gpu"] = gpu_section(vae, args.quick)
    figures["load_average_after"] = os.getloadavg()[0]
    figures["wall_seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(figures, indent=2) + "\n"
    if args.quick:
        print(text + "(--quick: printed only, not written)")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(text + f"written to {args.out}")
    sections = [s for s in (figures["standin"], figures["gpu"]) if "configurations" in s]
    return 0 if all(s["all_within_1e-5"] for s in sections if s["model_dtype"] == "float32") else 1


if __name__ == "__main__":
    sys.exit(main())
