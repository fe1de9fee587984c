"""The native stand-ins (``testing/standin_files_native``) have the shapes ComfyUI's Wan detection fixes (128-wide
heads, 4096 text features, 256 frequency features) and lightx2v's LoRA layout, checked without ComfyUI; that
ComfyUI's own loaders take them is ``tests/comfyui/native_standins_check.py``. The full-size VAEs are checked by
their layer list only: writing them takes seconds and 1.7 GB."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from zeroshot_video.core.families.wan import files
from zeroshot_video.core.loading.file_kinds import identify
from zeroshot_video.testing import standin_files_native as native
from zeroshot_video.testing import standin_files_wan as released

ROOT = Path(__file__).resolve().parents[1]
# ComfyUI's loaders and the model folder each reads
CORE_LOADERS = {"UNETLoader": ("unet_name", "diffusion_models"), "LoraLoaderModelOnly": ("lora_name", "loras"),
                "CLIPLoader": ("clip_name", "text_encoders"), "VAELoader": ("vae_name", "vae")}

CHANNELS = {native.WAN21_FILE: 16, native.A14B_HIGH_FILE: 16, native.A14B_LOW_FILE: 16, native.TI2V_FILE: 48}
LORAS = {native.LORA21_FILE: native.WAN21_FILE, native.LORA_HIGH_FILE: native.A14B_HIGH_FILE,
         native.LORA_LOW_FILE: native.A14B_LOW_FILE}
BLOCK_LAYERS = ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "cross_attn.q", "cross_attn.k",
                "cross_attn.v", "cross_attn.o", "ffn.0", "ffn.2")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return native.write_native_files(tmp_path_factory.mktemp("native"), vaes=False)


def test_file_names_and_folders(written):
    assert set(written) == set(CHANNELS) | set(LORAS) | {native.UMT5_FILE, native.SKYREELS_DF_FILE}
    for name, path in written.items():
        assert name.startswith("native_") and path.name == name and path.is_file()
    assert {written[n].parent.name for n in [*CHANNELS, native.SKYREELS_DF_FILE]} == {"diffusion_models"}
    assert {written[n].parent.name for n in LORAS} == {"loras"}


@pytest.mark.parametrize("name", sorted(CHANNELS))
def test_transformer_shapes_as_comfyui_detects_them(written, name):
    state = load_file(written[name])
    channels = CHANNELS[name]
    assert all(k.startswith("model.diffusion_model.") for k in state)
    assert {t.dtype for t in state.values()} == {torch.float16}
    state = {k.removeprefix("model.diffusion_model."): v for k, v in state.items()}
    assert state["head.modulation"].shape == (1, 2, 128)  # width 128 → ComfyUI's one 128-wide head
    assert state["text_embedding.0.weight"].shape == (128, 4096)
    assert state["time_embedding.0.weight"].shape == (128, 256)
    assert state["patch_embedding.weight"].shape == (128, channels, 1, 2, 2)
    assert state["head.head.weight"].shape == (channels * 4, 128)
    assert state["blocks.0.ffn.0.weight"].shape == (256, 128)
    assert {k.split(".")[1] for k in state if k.startswith("blocks.")} == {"0", "1"}
    config = files.transformer_config(state, written[name])  # the pack's loader reads the same sizes
    assert (config["num_attention_heads"], config["attention_head_dim"], config["in_channels"],
            config["text_dim"], config["ffn_dim"], config["num_layers"]) == (1, 128, channels, 4096, 256, 2)


def test_skyreels_v2_df_is_wan21_plus_its_fps_embedding(written):
    """SkyReels-V2 DF 1.3B's ``inject_sample_info`` tensors: 2 frame rates embedded, projected to 6 modulations."""
    wan21, skyreels = load_file(written[native.WAN21_FILE]), load_file(written[native.SKYREELS_DF_FILE])
    extra = {k.removeprefix("model.diffusion_model."): tuple(v.shape) for k, v in skyreels.items() if k not in wan21}
    assert extra == {"fps_embedding.weight": (2, 128), "fps_projection.0.weight": (128, 128),
                     "fps_projection.0.bias": (128,), "fps_projection.2.weight": (768, 128),
                     "fps_projection.2.bias": (768,)}
    assert all(torch.equal(skyreels[k], v) for k, v in wan21.items())


def test_experts_differ(written):
    high, low = load_file(written[native.A14B_HIGH_FILE]), load_file(written[native.A14B_LOW_FILE])
    assert not torch.equal(high["model.diffusion_model.blocks.0.ffn.0.weight"],
                           low["model.diffusion_model.blocks.0.ffn.0.weight"])


def test_transformer_output_is_not_near_zero():
    model = native.native_wan_transformer(16)
    x = torch.randn(1, 16, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x, torch.tensor([500]), torch.randn(1, 8, 4096)).sample
    assert out.shape == x.shape and 0.1 < out.std() < 10


@pytest.mark.parametrize("name", sorted(LORAS))
def test_lora_layout(written, name):
    lora = load_file(written[name])
    model = {k.removeprefix("model.diffusion_model."): v for k, v in load_file(written[LORAS[name]]).items()}
    expected = {f"diffusion_model.blocks.{block}.{layer}.{part}" for block in (0, 1) for layer in BLOCK_LAYERS
                for part in ("lora_down.weight", "lora_up.weight", "alpha")}
    assert set(lora) == expected
    for key in lora:
        if not key.endswith(".lora_down.weight"):
            continue
        layer = re.sub(r"^diffusion_model\.|\.lora_down\.weight$", "", key)
        out_features, in_features = model[layer + ".weight"].shape
        assert lora[key].shape == (native.LORA_RANK, in_features)
        assert lora[f"diffusion_model.{layer}.lora_up.weight"].shape == (out_features, native.LORA_RANK)
        assert lora[f"diffusion_model.{layer}.alpha"].item() == native.LORA_RANK


def test_umt5_is_4096_wide(written):
    with safe_open(written[native.UMT5_FILE], "pt") as f:
        assert f.get_slice("shared.weight").get_shape()[1] == 4096
        assert "spiece_model" in f.keys()


@pytest.mark.parametrize("version, kind, channels, width",
                         [("2.1", "wan21_vae", 16, 96), ("2.2", "wan22_vae", 48, 160)])
def test_vae_layer_list_is_the_released_one(version, kind, channels, width):
    shapes = native.wan_vae_shapes(version)
    assert identify(shapes) == kind  # ComfyUI tells 2.1 from 2.2 by the same marker tensors
    meta = {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}
    config = files.vae_config(meta, kind, Path(f"{kind}.safetensors"))
    assert (config["z_dim"], config["base_dim"], config["num_res_blocks"]) == (channels, width, 2)
    released = 126_892_531 if version == "2.1" else 704_688_668
    assert sum(torch.Size(s).numel() for s in shapes.values()) == released


def test_released_names_cover_every_file_the_shipped_workflows_load_with_comfyuis_loaders(tmp_path):
    """``make-test-models --comfyui-wan`` (the test servers' models) writes every file a core loader of a shipped
    workflow names, in its folder; fp8 names hold fp8 weights with their scales, fp16 names fp16."""
    import json
    written = native.write_released_files(tmp_path, vaes=False)
    vaes = {released.VAE21_FILE: "vae", released.VAE22_FILE: "vae"}
    folders = {name: path.parent.name for name, path in written.items()} | vaes
    named = {(node["inputs"][CORE_LOADERS[node["class_type"]][0]], CORE_LOADERS[node["class_type"]][1])
             for path in (ROOT / "workflows" / "api").glob("*.json") for node in json.loads(path.read_text()).values()
             if node["class_type"] in CORE_LOADERS}
    assert len(named) >= 8
    for name, folder in named:
        assert folders.get(name) == folder, f"{name} ({folder}) is not written by write_released_files"
    for name, path in written.items():
        if path.parent.name in ("diffusion_models", "text_encoders"):
            dtypes = {t.dtype for t in load_file(path).values() if t.dim() == 2}
            assert (torch.float8_e4m3fn in dtypes) == ("fp8" in name), (name, dtypes)
