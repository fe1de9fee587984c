"""Strict single-file loading: a file that is not exactly the model is refused, naming the file and tensors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zeroshot_video.testing.standin_files_wan import wan_transformer_to_comfy, wan_vae_to_comfy
from zeroshot_video.testing.standin_models import tiny_umt5, tiny_wan_tokenizer, tiny_wan_transformer
from zeroshot_video.core.loading.file_checks import ModelFileError
from zeroshot_video.core.loading.strict_load import config_folder, load_exact, read_single_file, single_file_model

FILE = Path("/models/diffusion_models/some_wan.safetensors")


@pytest.fixture(scope="module")
def wan():
    model = tiny_wan_transformer()
    config = {k: v for k, v in model.config.items() if not k.startswith("_")}
    with config_folder(config) as folder:
        yield model, wan_transformer_to_comfy(model), folder


def _load(state, folder):
    from diffusers import WanTransformer3DModel
    return single_file_model(WanTransformer3DModel, state, FILE, "Wan diffusion model", folder, torch.float32)


def _forward(model):
    torch.manual_seed(1)
    x, text = torch.randn(1, 16, 2, 4, 4), torch.randn(1, 5, 32)
    return model(hidden_states=x, timestep=torch.tensor([500.0]), encoder_hidden_states=text).sample


def test_single_file_model_loads_every_tensor_and_leaves_the_dict(wan):
    model, state, folder = wan
    before = dict(state)
    loaded = _load(state, folder)
    assert state.keys() == before.keys()  # diffusers' Wan converter pops; the caller's dict is untouched
    assert torch.equal(_forward(loaded), _forward(model))


@pytest.mark.parametrize("fault, says", [
    ("missing", "lacks 1 tensor(s) the model needs (named as diffusers names them: blocks.0.ffn.net.0.proj.weight)"),
    ("extra", "has 1 tensor(s) this model has no place for (after conversion: "
               "condition_embedder.image_embedder.norm1.weight)"),
    ("shape", "blocks.0.ffn.net.0.proj.weight (as diffusers names it) is (5, 24) in the file, the model needs (32, 24)"),
])
def test_single_file_model_refuses_what_is_not_exactly_the_model(wan, fault, says):
    _, state, folder = wan
    state = dict(state)
    key = "model.diffusion_model.blocks.0.ffn.0.weight"
    if fault == "missing":
        del state[key]
    elif fault == "extra":
        state["model.diffusion_model.img_emb.proj.0.weight"] = torch.zeros(3)
    else:
        state[key] = torch.zeros(5, 24)
    with pytest.raises(ModelFileError) as error:
        _load(state, folder)
    assert str(FILE) in str(error.value) and says in str(error.value)


def test_single_file_model_uses_a_part_of_a_file_only_when_the_rest_is_declared_ignorable(wan):
    """A file of several parts: the other parts' tensors are refused, unless ``ignored`` names them."""
    from diffusers import AutoencoderKLWan
    vae = AutoencoderKLWan(base_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=2, z_dim=16)  # as diffusers converts
    config = {k: v for k, v in vae.config.items() if not k.startswith("_")}
    state = {**wan[1], **wan_vae_to_comfy(vae)}
    with config_folder(config) as folder:
        with pytest.raises(ModelFileError, match=r"has 69 tensor\(s\) this model has no place for \(after conversion: model\.diffusion"):
            single_file_model(AutoencoderKLWan, state, FILE, "Wan VAE", folder, torch.float32)
        loaded = single_file_model(AutoencoderKLWan, state, FILE, "Wan VAE", folder, torch.float32,
                                   ignored=lambda key: key.startswith("model.diffusion_model."))
    assert torch.equal(loaded.decoder.conv_out.weight, vae.decoder.conv_out.weight)


def test_a_tensor_the_converter_never_reads_is_refused(wan, monkeypatch):
    """Converters that pick their tensors by name (the SD checkpoint ones) leave the others unread."""
    from diffusers.loaders import single_file_model as loader
    _, state, folder = wan
    mapping = dict(loader.SINGLE_FILE_LOADABLE_CLASSES["WanTransformer3DModel"])
    convert = mapping["checkpoint_mapping_fn"]
    mapping["checkpoint_mapping_fn"] = lambda checkpoint, **kw: convert(
        {k: checkpoint[k] for k in list(checkpoint.keys()) if k.startswith("model.")}, **kw)
    monkeypatch.setitem(loader.SINGLE_FILE_LOADABLE_CLASSES, "WanTransformer3DModel", mapping)
    with pytest.raises(ModelFileError, match=r"some_wan.safetensors' has 1 tensor\(s\) this model has no place for "
                                             r"\(stray.weight\)"):
        _load({**state, "stray.weight": torch.zeros(2)}, folder)
    assert torch.equal(_forward(_load(state, folder)), _forward(wan[0]))


def test_load_exact_assigns_every_tensor_or_none():
    from accelerate import init_empty_weights
    from transformers import UMT5EncoderModel
    reference = tiny_umt5(tiny_wan_tokenizer())
    state = {k: v.clone() for k, v in reference.state_dict().items() if k != "encoder.embed_tokens.weight"}

    def build():
        with init_empty_weights(include_buffers=False):
            return UMT5EncoderModel(reference.config)

    tied = ["encoder.embed_tokens.weight"]
    model = load_exact(build(), state, FILE, "UMT5 text encoder", tied=tied)
    assert model.encoder.embed_tokens.weight.data_ptr() == model.shared.weight.data_ptr()
    ids = torch.tensor([[5, 6, 7, 1]])
    assert torch.equal(model(ids).last_hidden_state, reference(ids).last_hidden_state)
    for change, says in (({"encoder.final_layer_norm.weight": None}, "lacks 1 tensor(s) the model needs "
                          "(encoder.final_layer_norm.weight)"),
                         ({"junk": torch.zeros(2)}, "has 1 tensor(s) this model has no place for (junk)"),
                         ({"shared.weight": torch.zeros(3, 32)}, "shared.weight (3, 32) in the file, (103, 32) in "
                          "the model")):
        broken = {k: v for k, v in {**state, **change}.items() if v is not None}
        untouched = build()
        with pytest.raises(ModelFileError) as error:
            load_exact(untouched, broken, FILE, "UMT5 text encoder", tied=tied)
        assert str(FILE) in str(error.value) and says in str(error.value)
        assert untouched.shared.weight.is_meta  # nothing assigned
    ignored = load_exact(build(), {**state, "spiece_model": torch.zeros(4, dtype=torch.uint8)}, FILE, "UMT5",
                         ignored=lambda key: key == "spiece_model", tied=tied)
    assert not ignored.shared.weight.is_meta


def test_read_single_file_names_a_cut_file(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / "cut.safetensors"
    save_file({"a": torch.zeros(100)}, path)
    assert torch.equal(read_single_file(path, "Wan VAE")["a"], torch.zeros(100))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ModelFileError, match="cut.safetensors' is cut short"):
        read_single_file(path, "Wan VAE")
