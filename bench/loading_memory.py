"""Host RAM of loading a model-size Wan transformer file: peak RSS over the file's size, per loading route.

    python -m bench.loading_memory      # writes bench/results/loading_memory.json

Real-size Wan 2.1 1.3B transformer files in ComfyUI's layout (``model.diffusion_model.`` names, 2.84 GB), one
fp16 (as ComfyUI's public ``wan2.1_t2v_1.3B_fp16.safetensors``) and one bf16 (as the public 14B bf16 files), are
written with random values into a temporary folder tensor by tensor (never whole in memory), and loaded in bf16
in a fresh process per route, so each peak is that route's own:

- ``pack``: the pack's single-file loader (``core.families.wan.files.load_transformer``), on both files;
- ``from_single_file``: diffusers' ``WanTransformer3DModel.from_single_file`` with a local config;
- ``pack + fp8 storage``: the pack's loader, then fp8 storage (``memory_options``; the RSS it settles at).

Peak RSS (the kernel's VmHWM) counts the file's pages mapped in memory (safetensors memory-maps the file) as
well as the model's own tensors; a sampler thread also records the peaks of the two apart (RssFile: clean page
cache the kernel can drop under pressure; RssAnon: what loading really needs). The 14B figures are extrapolated
(× 14.288 / 1.419 parameters), not measured: this machine's 24 GB of RAM is shared. The folder is deleted
afterwards.
"""
from __future__ import annotations

import json
import math
import shutil
import struct
import tempfile
import threading
import time
from pathlib import Path

import torch

from zeroshot_video.bench.common import _status_mb, answered_as_child, child_peak_rss, peak_rss_mb, reset_peak_rss, write_results

# Wan 2.1 T2V 1.3B, as its official diffusers config (and core.families.wan.files, from the tensors) has it
WAN21_1_3B = {"patch_size": [1, 2, 2], "num_attention_heads": 12, "attention_head_dim": 128, "in_channels": 16,
              "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 8960, "num_layers": 30,
              "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 1024}
PARAMS_14B, PARAMS_1_3B = 14.288e9, 1.419e9  # docs: COMFY_FILES.md §3 (counted on the meta device)
FILE_DTYPES = {torch.float16: "F16", torch.bfloat16: "BF16"}
FILES = {"fp16": ("wan2.1_t2v_1.3B_fp16.safetensors", torch.float16),  # ComfyUI's public 1.3B file
         "bf16": ("wan2.1_t2v_1.3B_bf16.safetensors", torch.bfloat16)}  # as the public 14B bf16 files are
ROUTES = ("pack", "from_single_file", "pack + fp8 storage")
RUNS = (("pack", "fp16"), ("from_single_file", "fp16"), ("pack + fp8 storage", "fp16"), ("pack", "bf16"))
SAMPLE_SECONDS = 0.02


def comfy_layout_shapes() -> dict[str, tuple[int, ...]]:
    """Name → shape of the 1.3B file in ComfyUI's layout, from a model built on the meta device (nothing
    allocated) and renamed as the stand-in writer renames."""
    from diffusers import WanTransformer3DModel

    from zeroshot_video.testing.standin_files_wan import wan_transformer_to_comfy
    with torch.device("meta"):
        model = WanTransformer3DModel(**WAN21_1_3B)
    return {name: tuple(t.shape) for name, t in wan_transformer_to_comfy(model).items()}


def write_random_file(path: Path, dtype: torch.dtype, seed: int = 0) -> int:
    """A safetensors file of random ``dtype`` (fp16 or bf16) tensors of the 1.3B's names and shapes, streamed one
    tensor at a time (the format is a length-prefixed JSON header, then the raw bytes in header order); returns
    its size."""
    shapes = comfy_layout_shapes()
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape) * 2
        header[name] = {"dtype": FILE_DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    generator = torch.Generator().manual_seed(seed)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)) + encoded)
        for shape in shapes.values():
            tensor = (torch.randn(shape, generator=generator) * 0.02).to(dtype)
            out.write(tensor.view(torch.int16).numpy().tobytes())
    return path.stat().st_size


def _load(route: str, path: Path):
    if route == "from_single_file":
        from diffusers import WanTransformer3DModel
        with tempfile.TemporaryDirectory() as config:
            (Path(config) / "config.json").write_text(json.dumps({"_class_name": "WanTransformer3DModel",
                                                                  **WAN21_1_3B}))
            return WanTransformer3DModel.from_single_file(str(path), config=config, torch_dtype=torch.bfloat16,
                                                          local_files_only=True)
    from zeroshot_video.core.families.wan.files import load_transformer
    model = load_transformer(path, torch.bfloat16)
    if route == "pack + fp8 storage":
        from zeroshot_video.core.memory_options import store_in_fp8
        store_in_fp8(model, torch.bfloat16)
    return model


class _Sampler(threading.Thread):
    """Reads this process's anonymous and file-backed resident memory every few ms: the kernel keeps only a peak
    of their sum (VmHWM), but the file's mapped pages are clean page cache it can drop under pressure, while the
    anonymous ones (the model's own tensors) are what loading really needs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_anon = self.peak_file = 0.0
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(SAMPLE_SECONDS):
            self.peak_anon = max(self.peak_anon, _status_mb("RssAnon"))
            self.peak_file = max(self.peak_file, _status_mb("RssFile"))


def child(route: str, path: str) -> dict:
    """One route in this fresh process: RSS after imports, peak RSS (and its anonymous and file-backed parts'
    sampled peaks), RSS once loaded (the state dict gone)."""
    import diffusers  # noqa: F401 (imported before the baseline, as every route needs it)

    from zeroshot_video.core.families.wan import files  # noqa: F401
    before = reset_peak_rss()
    anon_before, file_before = _status_mb("RssAnon"), _status_mb("RssFile")
    sampler = _Sampler()
    sampler.start()
    started = time.perf_counter()
    model = _load(route, Path(path))
    seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2 ** 20
    return {"route": route, "rss_mb_before": round(before, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_anonymous_growth_mb": round(sampler.peak_anon - anon_before, 1),
            "peak_file_backed_growth_mb": round(sampler.peak_file - file_before, 1),
            "rss_mb_loaded": round(_status_mb("VmRSS"), 1), "model_weights_mb": round(weights, 1),
            "seconds": round(seconds, 1)}


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="zeroshot_video_loading_"))
    free = shutil.disk_usage(folder).free
    if free < 10e9:
        raise SystemExit(f"{folder} has {free / 1e9:.1f} GB free; the two 1.3B files need 5.7 GB and a margin.")
    try:
        sizes = {}
        for kind, (name, dtype) in FILES.items():
            sizes[kind] = write_random_file(folder / name, dtype) / 2 ** 20
        routes = []
        for route, kind in RUNS:
            run = child_peak_rss("bench.loading_memory", "--route", route, "--path", str(folder / FILES[kind][0]))
            growth = run["peak_rss_mb"] - run["rss_mb_before"]
            ratio = PARAMS_14B / PARAMS_1_3B * 2 ** 20 / 1e9  # MiB measured → GB (10⁹ bytes) at 14B
            run.update(file=FILES[kind][0], peak_growth_mb=round(growth, 1),
                       peak_rss_over_file_size=round(growth / sizes[kind], 2),
                       peak_anonymous_over_file_size=round(run["peak_anonymous_growth_mb"] / sizes[kind], 2),
                       loaded_growth_over_file_size=round((run["rss_mb_loaded"] - run["rss_mb_before"]) / sizes[kind],
                                                          2),
                       extrapolated_14b_peak_growth_gb=round(growth * ratio, 1),
                       extrapolated_14b_peak_anonymous_gb=round(run["peak_anonymous_growth_mb"] * ratio, 1))
            routes.append(run)
            print(json.dumps(run))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    write_results("loading_memory", {
        "file": "real-size Wan 2.1 1.3B transformer files, ComfyUI layout, random values, loaded in bf16",
        "file_size_mb": {kind: round(size, 1) for kind, size in sizes.items()},
        "machine_note": "CPU only (2 cores), no GPU, 24 GB RAM shared with other work; one run per route",
        "units": "measured figures in MiB (2^20 bytes), as the other benchmarks; the 14B extrapolation in GB (10^9)",
        "extrapolation": "14B figures = 1.3B growth × 14.288 / 1.419 (parameter ratio); not measured",
        "routes": routes})


if __name__ == "__main__":
    if not answered_as_child(child, route={"choices": ROUTES}, path={}):
        main()
