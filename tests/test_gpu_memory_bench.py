"""The simulated GPU-memory benchmark (bench/gpu_memory.py): its counter counts what really runs, and its
committed figures are there and consistent."""
import json
from pathlib import Path

import torch

from bench import gpu_memory  # python -m pytest runs from the repo root

ROOT = Path(__file__).resolve().parent.parent
TINY = {"patch_size": [1, 2, 2], "num_attention_heads": 2, "attention_head_dim": 16, "in_channels": 16,
        "out_channels": 16, "text_dim": 32, "freq_dim": 16, "ffn_dim": 64, "num_layers": 2,
        "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 64}


def test_live_bytes_counts_inputs_and_outputs_but_not_the_weights():
    layer = torch.nn.Linear(256, 1024)

    def run(model):
        x = torch.randn(64, 256)
        return model(x)

    # the input and the output, both float32; the 1 MB weight is the model's own
    assert gpu_memory.peak_activation_bytes(lambda: layer, run, fake=False) == (64 * 256 + 64 * 1024) * 4


def test_fake_tensors_count_what_the_real_model_call_allocates():
    """The Wan model call through WanBackbone.predict, on a tiny transformer: fake and real tensors, same peak."""
    def build():
        torch.manual_seed(0)
        return gpu_memory._transformer(TINY)

    shape = (1, 16, 3, 8, 8)
    run = lambda net: gpu_memory._model_call(net, shape)  # noqa: E731
    fake = gpu_memory.peak_activation_bytes(build, run)
    assert fake == gpu_memory.peak_activation_bytes(build, run, fake=False)
    assert fake > 2 * 16 * 3 * 8 * 8 * 2  # at least the batched bf16 input


def test_committed_figures_are_consistent_and_documented():
    figures = json.loads((ROOT / "bench" / "results" / "gpu_memory.json").read_text())
    assert sorted(figures["models"]) == sorted(gpu_memory.MODELS)
    for model, entry in figures["models"].items():
        _, vae, width, height, frames = gpu_memory.MODELS[model]
        assert entry["size"] == {"width": width, "height": height, "frames": frames, "vae": vae}
        settings = entry["settings"]
        plain, fp8 = settings["default / none / VAE default"], settings["fp8 storage / none / VAE default"]
        grouped = settings["default / group offload / VAE default"]
        half_vae = settings["default / group offload / VAE bf16"]
        assert fp8["peak"] < plain["peak"] and grouped["peak"] < plain["peak"], model
        assert half_vae["decoding peak"] < grouped["decoding peak"], model
        for setting in settings.values():
            assert setting["peak"] == max(setting[f"{stage} peak"] for stage in ("text encoding", "sampling",
                                                                                  "decoding"))
    text = (ROOT / "docs" / "PERFORMANCE.md").read_text()
    assert "bench/results/gpu_memory.json" in text
