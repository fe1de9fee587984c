"""Wan 2.1 / 2.2 from ComfyUI's single files: the same model as the diffusers folder, offline, strictly loaded.

The single-file stand-ins hold the weights of the folder stand-ins (testing/standin_files_wan), so every part loaded
from the files is compared with the part loaded from the folder: transformer, VAE and text embeddings.
"""
from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from zeroshot_video.testing import standin_files_wan as files
from zeroshot_video.testing import standin_models
from zeroshot_video.core.families.wan import files as wan_files
from zeroshot_video.core.loading.file_checks import ModelFileError
from zeroshot_video.core.loading.file_kinds import identify
from zeroshot_video.core.families.wan.folder import load_wan
from zeroshot_video.core.loading.strict_load import CONFIG_METADATA
from zeroshot_video.core.families.wan.files import load_wan_files

FP8_TOLERANCE = 0.15  # e4m3 keeps 3 mantissa bits: 6 % per weight; outputs of the tiny models stay well inside


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    """A ComfyUI models folder with the Wan single files, plus an fp32 UMT5 file (exact comparisons)."""
    root = tmp_path_factory.mktemp("comfy_models")
    files.write_wan_files(root)
    tokenizer = standin_models.tiny_wan_tokenizer()
    umt5 = standin_models.tiny_umt5(tokenizer)
    save_file(files.umt5_to_comfy(umt5, tokenizer), str(root / "text_encoders" / "umt5_fp32.safetensors"),
              metadata={CONFIG_METADATA: json.dumps(files._umt5_sizes(umt5))})
    return root


def _paths(root: Path, variant: str) -> dict:
    models, vae = root / "diffusion_models", root / "vae"
    return {"2.1": dict(transformer=models / files.WAN21_FILE, vae=vae / files.VAE21_FILE),
            "A14B": dict(transformer=models / files.A14B_HIGH_FILE, transformer_2=models / files.A14B_LOW_FILE,
                         vae=vae / files.VAE21_FILE),
            "TI2V-5B": dict(transformer=models / files.TI2V_FILE, vae=vae / files.VAE22_FILE)}[variant]


FOLDERS = {"2.1": standin_models.WAN21, "A14B": standin_models.WAN22_A14B, "TI2V-5B": standin_models.WAN22_TI2V}


def _load_files(root: Path, variant: str, text_encoder: str = "umt5_fp32.safetensors", dtype=torch.float32, **kw):
    return load_wan_files(text_encoder=root / "text_encoders" / text_encoder, dtype=dtype,
                          **_paths(root, variant), **kw)


def _forward(transformer, channels: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    x, text = torch.randn(1, channels, 2, 4, 4, generator=g), torch.randn(1, 7, 32, generator=g)
    with torch.no_grad():
        return transformer(hidden_states=x, timestep=torch.tensor([700.0]), encoder_hidden_states=text).sample


def _public(config) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _rounded(model, dtype) -> dict:
    return {k: v.to(dtype).float() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("variant", ["2.1", "A14B", "TI2V-5B"])
def test_files_load_the_folders_model(comfy, models_dir, variant):
    folder = load_wan(models_dir / "diffusers" / FOLDERS[variant], torch.float32)
    single = _load_files(comfy, variant)
    channels = 48 if variant == "TI2V-5B" else 16
    assert (single.schedule.shift, single.expand_timesteps, single.boundary_ratio) == (
        folder.schedule.shift, folder.expand_timesteps, folder.boundary_ratio)
    assert single.channels == channels and single.spatial_factor == folder.spatial_factor
    pairs = [(single.transformer, folder.transformer)]
    if variant == "A14B":
        pairs.append((single.transformer_2, folder.transformer_2))
    for loaded, reference in pairs:
        assert _public(loaded.config) == _public(reference.config)
        if variant == "A14B":  # fp8_scaled files: within fp8 rounding of the folder's weights, never NaN
            out, ref = _forward(loaded, channels), _forward(reference, channels)
            error = ((out - ref).norm() / ref.norm()).item()
            assert torch.isfinite(out).all() and 0 < error < FP8_TOLERANCE
        else:  # fp16 files: exactly the folder's weights rounded to fp16, hence the same forward
            rounded = _rounded(reference, torch.float16)
            assert all(torch.equal(v, rounded[k]) for k, v in loaded.state_dict().items())
            reference.load_state_dict(rounded)
            torch.testing.assert_close(_forward(loaded, channels), _forward(reference, channels), rtol=0, atol=1e-6)
    # VAE (fp32 file): the same weights, the same encode and decode
    assert all(torch.equal(v, folder.vae.state_dict()[k]) for k, v in single.vae.state_dict().items())
    g = torch.Generator().manual_seed(4)
    video = torch.rand(1, 3, 5, 16, 16, generator=g) * 2 - 1
    with torch.no_grad():
        latent = single.vae.encode(video).latent_dist.mean
        assert torch.equal(latent, folder.vae.encode(video).latent_dist.mean)
        assert torch.equal(single.vae.decode(latent).sample, folder.vae.decode(latent).sample)
    # text: the file's own tokenizer gives the folder tokenizer's ids, the fp32 file the same embeddings
    prompt = "a corgi running on the beach at sunset, cinematic"
    assert torch.equal(single.tokenizer(prompt, padding="max_length", max_length=512, truncation=True,
                                        return_tensors="pt").input_ids,
                       folder.tokenizer(prompt, padding="max_length", max_length=512, truncation=True,
                                        return_tensors="pt").input_ids)
    assert torch.equal(single.embed_text(prompt)[0], folder.embed_text(prompt)[0])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_16_bit_file_keeps_what_the_folder_keeps_in_float32(comfy, models_dir, dtype):
    """diffusers' from_pretrained keeps Wan's norms, time embedding, modulation and RoPE in float32 at a 16-bit
    dtype; from_single_file alone casts them too, and the same weights would compute differently."""
    from diffusers import WanTransformer3DModel
    single = wan_files.load_transformer(comfy / "diffusion_models" / files.WAN21_FILE, dtype)
    folder = WanTransformer3DModel.from_pretrained(models_dir / "diffusers" / standin_models.WAN21 / "transformer",
                                                   torch_dtype=dtype)
    kinds = {name: tensor.dtype for name, tensor in [*folder.named_parameters(), *folder.named_buffers()]}
    assert {name: tensor.dtype for name, tensor in [*single.named_parameters(), *single.named_buffers()]} == kinds
    assert torch.float32 in kinds.values() and dtype in kinds.values()


def test_latent_statistics_come_from_the_shipped_configs(comfy):
    v21 = wan_files.load_vae(comfy / "vae" / files.VAE21_FILE)
    v22 = wan_files.load_vae(comfy / "vae" / files.VAE22_FILE)
    assert len(v21.config.latents_mean) == 16 and v21.config.latents_std[0] == 2.8184
    assert len(v22.config.latents_mean) == 48 and v22.config.latents_mean[:2] == [-0.2289, -0.0052]
    assert (v22.config.scale_factor_spatial, v22.config.patch_size, v21.config.scale_factor_spatial) == (16, 2, 8)


def test_fp16_and_fp8_text_encoders_stay_close_to_fp32(comfy):
    fp32, tokenizer = wan_files.load_text_encoder(comfy / "text_encoders" / "umt5_fp32.safetensors", torch.float32)
    ids = tokenizer("a red balloon over the sea", return_tensors="pt").input_ids
    reference = fp32(ids).last_hidden_state
    for name, tolerance in ((files.UMT5_FILE, 1e-2), (files.UMT5_FP8_FILE, FP8_TOLERANCE)):
        model, _ = wan_files.load_text_encoder(comfy / "text_encoders" / name, torch.float32)
        out = model(ids).last_hidden_state
        error = ((out - reference).norm() / reference.norm()).item()
        assert torch.isfinite(out).all() and 0 < error < tolerance, name


def _rewrite(source: Path, target: Path, change, metadata: dict | None = None) -> Path:
    state = load_file(str(source))
    change(state)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(target), metadata=metadata)
    return target


def _expert_state(comfy, dtype=torch.float32) -> dict:
    return wan_files.load_transformer(comfy / "diffusion_models" / files.A14B_HIGH_FILE, dtype).state_dict()


def test_both_fp8_layouts_and_plain_fp8_give_the_same_weights(comfy, tmp_path):
    """Old layout (scale_weight + marker), new layout (weight_scale + comfy_quant bytes, or the header's
    _quantization_metadata), and plain fp8 casts."""
    expert = standin_models.tiny_wan_transformer(16, seed=0)
    head = {CONFIG_METADATA: json.dumps(files._head(expert))}
    bf16 = files.wan_transformer_to_comfy(expert, dtype=torch.bfloat16)
    old = _expert_state(comfy)
    new = tmp_path / "new.safetensors"
    save_file(files.fp8_scaled(bf16, layout="new"), str(new), metadata=head)
    assert all(torch.equal(v, old[k]) for k, v in wan_files.load_transformer(new, torch.float32).state_dict().items())
    in_header = files.fp8_scaled(bf16, layout="new")
    layers = {k[:-len(".comfy_quant")]: {"format": "float8_e4m3fn"} for k in list(in_header)
              if k.endswith(".comfy_quant")}
    for layer in layers:
        del in_header[layer + ".comfy_quant"]
    save_file(in_header, str(tmp_path / "meta.safetensors"),
              metadata={**head, "_quantization_metadata": json.dumps({"format_version": "1.0", "layers": layers})})
    loaded = wan_files.load_transformer(tmp_path / "meta.safetensors", torch.float32).state_dict()
    assert all(torch.equal(v, old[k]) for k, v in loaded.items())
    plain = tmp_path / "plain.safetensors"
    save_file(files.fp8_scaled(bf16, scaled=False), str(plain), metadata=head)
    weight = "blocks.0.ffn.net.0.proj.weight"
    loaded = wan_files.load_transformer(plain, torch.bfloat16).state_dict()
    assert torch.equal(loaded[weight], bf16["model.diffusion_model.blocks.0.ffn.0.weight"]
                       .to(torch.float8_e4m3fn).to(torch.bfloat16))


def test_other_quantisations_are_refused(comfy, tmp_path):
    nvfp4 = json.dumps({"format": "nvfp4"}).encode()

    def mark(state):
        state["model.diffusion_model.blocks.0.ffn.0.comfy_quant"] = torch.tensor(list(nvfp4), dtype=torch.uint8)

    path = _rewrite(comfy / "diffusion_models" / files.A14B_HIGH_FILE, tmp_path / "nvfp4.safetensors", mark,
                    {CONFIG_METADATA: json.dumps({"attention_head_dim": 12})})
    with pytest.raises(ModelFileError, match="nvfp4.safetensors' is quantised as nvfp4, which this pack cannot load"):
        wan_files.load_transformer(path, torch.float32)


def test_both_prefixes_load_the_same_transformer(comfy, tmp_path):
    source = comfy / "diffusion_models" / files.WAN21_FILE
    prefixed = _rewrite(source, tmp_path / "prefixed.safetensors",
                        lambda s: s.update({"model.diffusion_model." + k: s.pop(k) for k in list(s)}),
                        {CONFIG_METADATA: json.dumps({"attention_head_dim": 12})})
    a = wan_files.load_transformer(source, torch.float32).state_dict()
    b = wan_files.load_transformer(prefixed, torch.float32).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_loading_never_touches_the_network(comfy, monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network refused by the test")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for variant in ("2.1", "A14B", "TI2V-5B"):
        _load_files(comfy, variant, text_encoder=files.UMT5_FP8_FILE, dtype=torch.bfloat16)
    assert attempts == []


def test_the_tokenizer_inside_the_file_truncates_and_reports_like_the_folders(comfy):
    from zeroshot_video.core.conditioning import dropped_tail
    _, tokenizer = wan_files.load_text_encoder(comfy / "text_encoders" / files.UMT5_FILE, torch.float32)
    reference = standin_models.tiny_wan_tokenizer()
    long = "a cat on a mat " * 200
    ours = tokenizer(long, padding="max_length", max_length=512, truncation=True, add_special_tokens=True,
                     return_attention_mask=True, return_tensors="pt")
    theirs = reference(long, padding="max_length", max_length=512, truncation=True, return_tensors="pt")
    assert torch.equal(ours.input_ids, theirs.input_ids) and torch.equal(ours.attention_mask, theirs.attention_mask)
    assert ours.input_ids[0, -1] == 1  # ends with </s>
    short = tokenizer("a cat", padding="max_length", max_length=512, truncation=True, return_tensors="pt")
    assert short.input_ids[0, :4].tolist() == [4, 63, 1, 0] and short.attention_mask.sum() == 3
    assert dropped_tail(tokenizer, long, 512) == dropped_tail(reference, long, 512)
    assert len(tokenizer) == len(reference)


# --- faults: each one a ModelFileError naming the file ------------------------------------------------------
def _head_metadata(comfy, name):
    from zeroshot_video.core.loading.strict_load import read_metadata
    return read_metadata(comfy / "diffusion_models" / name)


@pytest.mark.parametrize("fault, says", [
    ("missing", "lacks 1 tensor(s) the model needs"),
    ("unexpected", "has 1 tensor(s) this model has no place for"),
    ("shape", "holds a tensor of another shape than this model's"),
    ("i2v", "is an image-to-video Wan model"),
])
def test_a_broken_transformer_file_is_refused(comfy, tmp_path, fault, says):
    key = "blocks.1.ffn.2.weight"

    def change(state):
        if fault == "missing":
            del state[key]
        elif fault == "unexpected":
            state["blocks.0.extra.weight"] = torch.zeros(2)
        elif fault == "shape":
            state[key] = torch.zeros(24, 31, dtype=torch.float16)
        else:
            state["img_emb.proj.0.weight"] = torch.ones(8, dtype=torch.float16)

    path = _rewrite(comfy / "diffusion_models" / files.WAN21_FILE, tmp_path / "bad.safetensors", change,
                    _head_metadata(comfy, files.WAN21_FILE))
    with pytest.raises(ModelFileError) as error:
        wan_files.load_transformer(path, torch.float32)
    assert "bad.safetensors" in str(error.value) and says in str(error.value)


@pytest.mark.parametrize("part, name, key", [
    ("vae", files.VAE22_FILE, "decoder.upsamples.1.upsamples.0.residual.2.weight"),
    ("vae", files.VAE21_FILE, "decoder.upsamples.4.residual.6.bias"),
    ("text_encoders", files.UMT5_FILE, "encoder.final_layer_norm.weight"),
])
def test_broken_vae_and_text_encoder_files_are_refused(comfy, tmp_path, part, name, key):
    load = wan_files.load_vae if part == "vae" else lambda f: wan_files.load_text_encoder(f, torch.float32)
    source = comfy / part / name
    from zeroshot_video.core.loading.strict_load import read_metadata
    metadata = read_metadata(source) or None
    missing = _rewrite(source, tmp_path / part / "missing.safetensors", lambda s: s.pop(key), metadata)
    with pytest.raises(ModelFileError, match=r"missing.safetensors' lacks 1 tensor\(s\) the model needs"):
        load(missing)
    extra = _rewrite(source, tmp_path / part / "extra.safetensors",
                     lambda s: s.update({"encoder.extra.weight": torch.zeros(3)}), metadata)
    with pytest.raises(ModelFileError, match=r"extra.safetensors' has 1 tensor\(s\) this model has no place for "
                                             r"\(encoder.extra.weight\)"):
        load(extra)


def test_a_cut_file_is_refused(comfy, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes((comfy / "vae" / files.VAE21_FILE).read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="cut.safetensors' is cut short"):
        wan_files.load_vae(cut)


def test_a_text_encoder_without_its_tokenizer_is_refused(comfy, tmp_path):
    path = _rewrite(comfy / "text_encoders" / files.UMT5_FILE, tmp_path / "notok.safetensors",
                    lambda s: s.pop("spiece_model"))
    with pytest.raises(ModelFileError, match="notok.safetensors' has no tokenizer inside"):
        wan_files.load_text_encoder(path, torch.float32)


def test_files_in_the_wrong_slot_are_refused_saying_where_they_belong(comfy, tmp_path):
    root = comfy
    vae, transformer = root / "vae" / files.VAE21_FILE, root / "diffusion_models" / files.WAN21_FILE
    with pytest.raises(ModelFileError, match=r"'wan_2.1_vae.safetensors' is a Wan 2.1 VAE, not a Wan diffusion model: "
                                             r"put it in models/vae and choose it as the VAE"):
        wan_files.load_transformer(vae, torch.float32)
    with pytest.raises(ModelFileError, match="is a Wan diffusion model, not a UMT5 text encoder: put it in "
                                             "models/diffusion_models"):
        wan_files.load_text_encoder(transformer, torch.float32)
    sd15 = tmp_path / "v1-5-pruned-emaonly.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
               "first_stage_model.decoder.conv_in.weight": torch.zeros(2)}, str(sd15))
    with pytest.raises(ModelFileError, match="is a Stable Diffusion checkpoint .*, not a Wan VAE: put it in "
                                             "models/checkpoints"):
        wan_files.load_vae(sd15)
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down.weight": torch.zeros(2)}, str(lora))
    with pytest.raises(ModelFileError, match="lora.safetensors' is not a Wan VAE: its tensors match none"):
        wan_files.load_vae(lora)


def test_a_transformer_with_the_wrong_vae_or_mismatched_experts_is_refused(comfy):
    paths = _paths(comfy, "TI2V-5B")
    with pytest.raises(ModelFileError, match=r"'wan_2.1_vae.safetensors' makes 16-channel latents but "
                                             r"'wan2.2_ti2v_5B_fp16.safetensors' works on 48: .*wan2.2_vae"):
        load_wan_files(paths["transformer"], comfy / "text_encoders" / files.UMT5_FILE, comfy / "vae" /
                       files.VAE21_FILE, torch.float32)
    with pytest.raises(ModelFileError, match="are not the two experts of one Wan 2.2 A14B model"):
        load_wan_files(comfy / "diffusion_models" / files.A14B_HIGH_FILE, comfy / "text_encoders" / files.UMT5_FILE,
                       comfy / "vae" / files.VAE21_FILE, torch.float32, transformer_2=paths["transformer"])


def test_flow_shift_can_be_chosen(comfy):
    assert _load_files(comfy, "2.1", flow_shift=5.0).schedule.shift == 5.0


def test_every_stand_in_file_is_identified_by_its_tensors(comfy):
    kinds = {files.WAN21_FILE: "wan_transformer", files.A14B_HIGH_FILE: "wan_transformer",
             files.TI2V_FILE: "wan_transformer", files.UMT5_FILE: "umt5", files.UMT5_FP8_FILE: "umt5",
             files.VAE21_FILE: "wan21_vae", files.VAE22_FILE: "wan22_vae"}
    for name, kind in kinds.items():
        assert identify(load_file(str(next(comfy.glob(f"*/{name}"))))) == kind, name
    assert identify(standin_models.original_motion_module("v2")) == "motion_module"
    assert identify(standin_models.tiny_image_encoder().state_dict()) == "clip_vision"
    assert identify(["model.diffusion_model.input_blocks.0.0.weight"]) == "sd15_checkpoint"
    assert identify({"shared.weight": 0, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": 0,
                     "encoder.block.1.layer.0.SelfAttention.q.weight": 0}) == "unknown"  # T5, not UMT5
    assert identify(["lora_unet_down.weight"]) == "unknown"


# --- the released files' layouts ---------------------------------------------------------------------------
# sha256 (first 16 hex) of the sorted "name:shape" lines of ComfyUI 0.3.64's own model classes at the released
# sizes (comfy.ldm.wan.model.WanModel, comfy.ldm.wan.vae / vae2_2.WanVAE, comfy.text_encoders.t5.T5 with
# umt5_config_xxl.json), built on the meta device: the names and shapes of the real files.
RELEASED = {"wan21_t2v_1.3B": (825, "0f0ce0f1e496fef7"), "wan22_ti2v_5B": (825, "cdf12082caf5ca40"),
            "wan21_vae": (194, "d556d7ceb0c37745"), "wan22_vae": (196, "05803efd87377f2c"),
            "umt5_xxl": (242, "eb2daaadb8170143")}


def _digest(state: dict) -> tuple[int, str]:
    lines = sorted(f"{k}:{tuple(v.shape)}" for k, v in state.items())
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


@pytest.mark.parametrize("name, heads, channels, ffn", [("wan21_t2v_1.3B", 12, 16, 8960),
                                                         ("wan22_ti2v_5B", 24, 48, 14336)])
def test_released_transformer_layouts_are_comfyuis_and_configure_back(name, heads, channels, ffn):
    from diffusers import WanTransformer3DModel
    config = dict(patch_size=[1, 2, 2], num_attention_heads=heads, attention_head_dim=128, in_channels=channels,
                  out_channels=channels, text_dim=4096, freq_dim=256, ffn_dim=ffn, num_layers=30)
    with torch.device("meta"):
        model = WanTransformer3DModel(**config, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                      rope_max_seq_len=1024)
    state = files.wan_transformer_to_comfy(model, prefix="")
    assert _digest(state) == RELEASED[name]
    derived = wan_files.transformer_config(state, Path("x"))
    assert {k: derived[k] for k in config} == config


@pytest.mark.parametrize("name", ["wan21_vae", "wan22_vae"])
def test_released_vae_layouts_are_comfyuis_and_configure_back(name):
    from diffusers import AutoencoderKLWan
    shipped = json.loads((wan_files.CONFIGS / name / "config.json").read_text())
    with torch.device("meta"):
        vae = AutoencoderKLWan.from_config(shipped)
    state = files.wan_vae_to_comfy(vae)
    assert _digest(state) == RELEASED[name]
    derived = wan_files.vae_config(state, name, Path("x"))
    assert {k: v for k, v in derived.items() if v != shipped.get(k)} == {}


def test_released_umt5_layout_is_comfyuis_and_configures_back():
    from transformers import UMT5Config, UMT5EncoderModel
    shipped = UMT5Config(**json.loads((wan_files.CONFIGS / "umt5_xxl" / "config.json").read_text()))
    with torch.device("meta"):
        model = UMT5EncoderModel(shipped)
    state = {k: v for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    assert _digest(state) == RELEASED["umt5_xxl"]
    assert wan_files.umt5_config(state, Path("x")).to_dict() == shipped.to_dict()


def test_the_vae_renaming_agrees_with_diffusers_converter_at_the_released_depth():
    """diffusers' own Wan 2.1 converter (hard-coded for two residual blocks a level) reads the names written by
    the pack's renaming into the same weights."""
    from diffusers import AutoencoderKLWan

    from zeroshot_video.core.loading.strict_load import config_folder, single_file_model
    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=2, z_dim=16)
    config = {k: v for k, v in vae.config.items() if not k.startswith("_")}
    with config_folder(config) as folder:
        converted = single_file_model(AutoencoderKLWan, files.wan_vae_to_comfy(vae), Path("x"), "Wan VAE", folder,
                                      torch.float32)
    assert all(torch.equal(v, vae.state_dict()[k]) for k, v in converted.state_dict().items())
