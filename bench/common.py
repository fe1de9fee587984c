"""Shared measuring tools of the benchmark scripts: call counters and timers on the UNet and the VAE,
peak memory of a child process, the bench-size models, and the results file."""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from zeroshot_video.testing import standin_models

from .machine import machine  # noqa: F401  (every bench reads it from here)
from zeroshot_video.core.families import load_backbone

RESULTS = Path(__file__).parent / "results"
# "Small but not tiny": big enough that the UNet dominates, small enough for a 2-core CPU.
BENCH_SIZE = {"blocks": (32, 64, 64), "cross_dim": 64, "layers": 1, "vae_blocks": (16, 32, 32, 32)}


class Meter:
    """Counts and times UNet calls, VAE encoder/decoder frames, from forward hooks."""

    def __init__(self, backbone):
        self.unet_calls = self.encoded_frames = self.decoded_frames = 0
        self.unet_seconds = self.vae_seconds = 0.0
        self._handles = []
        self._watch(backbone.unet, "unet")
        self._watch(backbone.vae.encoder, "encode")
        self._watch(backbone.vae.decoder, "decode")

    def _watch(self, module, kind):
        started = {}

        def pre(mod, args):
            started["t"] = time.perf_counter()

        def post(mod, args, output):
            elapsed = time.perf_counter() - started["t"]
            if kind == "unet":
                self.unet_calls += 1
                self.unet_seconds += elapsed
            else:
                self.vae_seconds += elapsed
                frames = args[0].shape[0]
                if kind == "encode":
                    self.encoded_frames += frames
                else:
                    self.decoded_frames += frames

        self._handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

    def detach(self):
        for handle in self._handles:
            handle.remove()


def write_bench_models(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = {"modelscope": root / "bench-ms", "sd15": root / "bench-sd15", "adapter": root / "bench-adapter"}
    if not (paths["modelscope"] / "model_index.json").exists():
        standin_models.write_modelscope(paths["modelscope"], **BENCH_SIZE)
        standin_models.write_sd15(paths["sd15"], **BENCH_SIZE)
        standin_models.tiny_motion_adapter(BENCH_SIZE["blocks"]).save_pretrained(paths["adapter"])
    return paths


def load_bench_backbone(family: str, root: Path):
    paths = write_bench_models(root)
    if family == "modelscope":
        return load_backbone(paths["modelscope"])
    return load_backbone(paths["sd15"], motion_adapter=paths["adapter"])


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb() -> float:
    """Peak resident memory since the process started or since the last reset_peak_rss()."""
    return _status_mb("VmHWM")


def reset_peak_rss() -> float:
    """Forget the peak so far (Linux: writing 5 to clear_refs), so a stage's own peak can be read after
    loading transients; returns the current RSS."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def answered_as_child(child, **options) -> bool:
    """The child side of child_peak_rss: with ``--child``, run ``child`` with the parsed ``options`` (argparse
    keyword arguments by name) in this fresh process, print its JSON and return True; in the parent, False."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    for name, spec in options.items():
        parser.add_argument(f"--{name}", **spec)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*(getattr(args, name) for name in options))))
    return args.child


def growth_over_output(short: dict, long: dict) -> dict:
    """How much more the long run's peak grew than the short run's, each over its own post-loading RSS (so
    the two loadings' noise cancels out), against how much more output the long run made."""
    growth = (long["peak_rss_mb"] - long["rss_mb_before"]) - (short["peak_rss_mb"] - short["rss_mb_before"])
    output_growth = long["output_mb"] - short["output_mb"]
    return {"peak_growth_mb": round(growth, 1), "output_growth_mb": round(output_growth, 1),
            "growth_over_output_percent": round(100 * (growth / output_growth - 1), 1)}


def child_peak_rss(module: str, *args: str, repeats: int = 1) -> dict:
    """Run ``python -m module --child ARGS`` (a fresh process, so its peak RSS is its own) and read the
    JSON line it prints last. With ``repeats`` > 1, the run whose growth (peak − before) is the median: the
    allocator's start-up state moves a single run's figures by several MB."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-m", module, "--child", *args], check=True, capture_output=True,
                             text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if repeats == 1:
        return runs[0]
    runs.sort(key=lambda run: run["peak_rss_mb"] - run["rss_mb_before"])
    growths = [round(run["peak_rss_mb"] - run["rss_mb_before"], 1) for run in runs]
    return {**runs[len(runs) // 2], "growth_mb_of_each_run": growths}


def write_results(name: str, figures: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **figures}, indent=2) + "\n")
    return path
