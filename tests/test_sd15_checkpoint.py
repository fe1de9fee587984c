"""SD1.5 all-in-one checkpoints (ComfyUI's models/checkpoints) + a motion module → the AnimateDiff backbone: the
same models, weights, outputs and scheduler as the same weights in a diffusers SD1.5 folder, read offline, and
every file that is not a complete SD1.5 checkpoint refused with its name."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from zeroshot_video.testing import standin_files_sd15, standin_models
from zeroshot_video.core.families.unet import sd15_checkpoint
from zeroshot_video.core.families import load_backbone
from zeroshot_video.core.loading.file_checks import ModelFileError, read_json
from zeroshot_video.core.families.unet.sd15_checkpoint import CONFIGS, load_sd15_checkpoint

COMFYUI_TOKENIZER = Path("/tmp/ComfyUI/comfy/sd1_tokenizer")
WIDTHS = (32, 64)  # the narrowest UNet the released motion modules' 8 heads and 32 norm groups fit
LAYERS = 2  # as SD1.5: two (resnet, attention) pairs per level exercise the original block numbering
PROMPTS = ["a photo of a cat", "A PANDA eating bamboo, 4k, (masterpiece:1.2)!!", "naïve café — 東京 🚀",
           "it's  don't\tthey'll ", "", "lighthouse " * 90]


def _jitter(model, seed: int):
    """Every parameter moved off its initial value (norms too), so a tensor loaded into the wrong place shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def _sd15_like():
    """Tiny UNet, VAE and CLIP text model whose configs differ from SD1.5's only where the tensors say so."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config({
        **read_json(CONFIGS / "unet" / "config.json"), "block_out_channels": WIDTHS, "layers_per_block": LAYERS,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D",
                                                                                       "CrossAttnUpBlock2D"],
        "cross_attention_dim": 32})
    vae = AutoencoderKL.from_config({
        **read_json(CONFIGS / "vae" / "config.json"), "block_out_channels": WIDTHS, "layers_per_block": LAYERS,
        "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2})
    text = CLIPTextModel(CLIPTextConfig.from_dict({
        **read_json(CONFIGS / "text_encoder" / "config.json"), "hidden_size": 32, "intermediate_size": 37,
        "num_hidden_layers": 2, "num_attention_heads": 1}))
    return _jitter(unet, 1), _jitter(vae, 2), _jitter(text, 3)


@pytest.fixture(scope="module")
def models():
    return _sd15_like()


@pytest.fixture(scope="module")
def files(tmp_path_factory, models):
    from diffusers import DDIMScheduler
    root = tmp_path_factory.mktemp("models")
    unet, vae, text = models
    found = {"checkpoint": standin_files_sd15.write_checkpoint(root / "checkpoints" / "sd15.safetensors", *models)}
    standin_models._save_pipeline_folder(root / "diffusers" / "sd15", "StableDiffusionPipeline", {
        "unet": unet, "vae": vae, "text_encoder": text, "tokenizer": sd15_checkpoint.clip_tokenizer(),
        "scheduler": DDIMScheduler.from_config(read_json(CONFIGS / "scheduler" / "scheduler_config.json"))})
    found["folder"] = root / "diffusers" / "sd15"
    for version in standin_models.ORIGINAL_MM_VERSIONS:
        found[version] = standin_models.write_original_motion_module(
            root / "animatediff_models" / f"mm_{version}.safetensors", version, WIDTHS, layers=LAYERS)
    return found


def _state(model) -> dict:
    return {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}


def _realigned(model) -> None:
    """Each parameter copied into memory of its own. A loaded one may be a view into the memory-mapped file at
    an offset that makes CPU kernels take another (equally valid) path: outputs then differ in the last bits
    (2e-6 measured) although every weight is the same."""
    with torch.no_grad():
        for p in model.parameters():
            p.data = p.data.clone()


def _same_weights(a, b) -> bool:
    sa, sb = _state(a), _state(b)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _settings(config) -> dict:
    """A configuration as JSON has it, less where and by which release it was saved."""
    config = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return json.loads(json.dumps({k: v for k, v in config.items() if not k.startswith("_") and k not in (
        "architectures", "transformers_version", "dtype", "torch_dtype")}))


def _unet_output(backbone) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 3, 16, 16, generator=g)
    context = torch.randn(3, 5, 32, generator=g)  # one text row per frame
    with torch.no_grad():
        return backbone.unet(sample, 10, encoder_hidden_states=context).sample


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_checkpoint_gives_the_backbone_of_the_same_weights_in_a_folder(files, version):
    folder = load_backbone(files["folder"], motion_adapter=files[version])
    single = load_sd15_checkpoint(files["checkpoint"], files[version])
    assert single.family == folder.family == "animatediff"
    assert single.name == "sd15.safetensors"
    for part in ("unet", "vae", "text_encoder"):
        assert type(getattr(single, part)) is type(getattr(folder, part))
        assert _same_weights(getattr(single, part), getattr(folder, part)), part
        assert _settings(getattr(single, part).config) == _settings(getattr(folder, part).config), part
    assert _settings(single.scheduler.config) == _settings(folder.scheduler.config)
    assert torch.equal(single.schedule.alphas_cumprod, folder.schedule.alphas_cumprod)
    layout = standin_models.ORIGINAL_MM_VERSIONS[version]
    assert single.max_frames == layout["motion_max_seq_length"]
    assert (getattr(single.unet.mid_block, "motion_modules", None) is not None) == layout["use_motion_mid_block"]

    assert torch.equal(_unet_output(single), _unet_output(folder))
    text, _ = single.embed_text("a photo of a cat")
    assert text.shape == (1, 77, 32) and torch.equal(text, folder.embed_text("a photo of a cat")[0])
    pixels = torch.rand(2, 3, 16, 16) * 2 - 1
    latents = single.encode(pixels)
    assert torch.equal(latents, folder.encode(pixels))
    assert torch.equal(single.decode(latents), folder.decode(latents))


def test_parts_are_the_weights_that_were_saved(files, models):
    from zeroshot_video.core.loading.strict_load import read_single_file
    file = files["checkpoint"]
    parts = sd15_checkpoint.split_parts(read_single_file(file, "test"), file)
    unet, vae, text = models
    loaded = (sd15_checkpoint.load_unet(parts[sd15_checkpoint.UNET], file, torch.float32),
              sd15_checkpoint.load_vae(parts[sd15_checkpoint.VAE], file, torch.float32),
              sd15_checkpoint.load_text_encoder(parts[sd15_checkpoint.TEXT], file, torch.float32))
    for original, again in zip(models, loaded):
        assert _same_weights(original, again) and _settings(original.config) == _settings(again.config)
        _realigned(again)
    g = torch.Generator().manual_seed(0)
    sample, context = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 5, 32, generator=g)
    with torch.no_grad():
        assert torch.equal(unet(sample, 10, context).sample, loaded[0](sample, 10, context).sample)
        pixels = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
        assert torch.equal(vae.encode(pixels).latent_dist.mean, loaded[1].encode(pixels).latent_dist.mean)
        assert torch.equal(vae.decode(sample).sample, loaded[1].decode(sample).sample)
        ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 49407]])
        assert torch.equal(text(ids)[0], loaded[2](ids)[0])


def test_the_real_sd15_configs_describe_the_real_layout():
    """The shipped configs build SD1.5's parts: tensor counts and sizes of the released models (COMFY_FILES §2)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(read_json(CONFIGS / "unet" / "config.json"))
        vae = AutoencoderKL.from_config(read_json(CONFIGS / "vae" / "config.json"))
        text = CLIPTextModel(sd15_checkpoint.text_config({
            "embeddings.token_embedding.weight": torch.empty(49408, 768, device="meta"),
            "embeddings.position_embedding.weight": torch.empty(77, 768, device="meta"),
            **{f"encoder.layers.{i}.mlp.fc1.weight": torch.empty(3072, 768, device="meta") for i in range(12)}}))
    counts = [(len(m.state_dict()), round(sum(p.numel() for p in m.parameters()) / 1e9, 3)) for m in (unet, vae, text)]
    assert counts == [(686, 0.860), (248, 0.084), (196, 0.123)]
    assert text.config.num_attention_heads == 12
    # the original names of the real UNet and VAE: the derived configs are read back from them unchanged
    unet_names = {k.removeprefix(sd15_checkpoint.UNET): torch.empty(v.shape, device="meta")
                  for k, v in zip(sd15_checkpoint.unet_names(unet).values(), unet.state_dict().values())}
    assert "input_blocks.3.0.op.weight" in unet_names and "output_blocks.2.1.conv.weight" in unet_names
    assert "output_blocks.5.2.conv.weight" in unet_names and "middle_block.2.out_layers.3.weight" in unet_names
    assert sd15_checkpoint.unet_config(unet_names) == read_json(CONFIGS / "unet" / "config.json")
    vae_names = {k.removeprefix(sd15_checkpoint.VAE): torch.empty(v.shape, device="meta")
                 for k, v in zip(sd15_checkpoint.vae_names(vae).values(), vae.state_dict().values())}
    assert "decoder.up.3.upsample.conv.weight" in vae_names and "encoder.mid.attn_1.proj_out.weight" in vae_names
    assert sd15_checkpoint.vae_config(vae_names) == read_json(CONFIGS / "vae" / "config.json")


# --- tokenizer ---------------------------------------------------------------------------------------
def test_the_packs_tokenizer_is_clips():
    tokenizer = sd15_checkpoint.clip_tokenizer()
    assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    padded = tokenizer("a photo of a cat", padding="max_length", max_length=77, truncation=True).input_ids
    assert padded == [49406, 320, 1125, 539, 320, 2368] + [49407] * 71
    long = tokenizer("lighthouse " * 90, padding="max_length", max_length=77, truncation=True).input_ids
    assert len(long) == 77 and long[0] == 49406 and long[-1] == 49407
    vocab, merges = sd15_checkpoint.clip_vocabulary()
    assert len(merges) == 48894 and vocab["!"] == 0 and vocab["Ā"] == 188 and vocab["!</w>"] == 256
    assert vocab["in"] == 512 and vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407


@pytest.mark.skipif(not COMFYUI_TOKENIZER.is_dir(), reason=f"no ComfyUI tokenizer at {COMFYUI_TOKENIZER} to compare "
                    "with (the pack's own tokenizer is checked against CLIP's known ids above)")
def test_the_packs_tokenizer_equals_comfyuis():
    ours, comfy = sd15_checkpoint.clip_tokenizer(), sd15_checkpoint.clip_tokenizer(COMFYUI_TOKENIZER)
    assert comfy.model_max_length == 77  # its folder says 8192, more than CLIP's positions
    assert sd15_checkpoint.clip_vocabulary()[0] == json.loads((COMFYUI_TOKENIZER / "vocab.json").read_text("utf-8"))
    for prompt in PROMPTS:
        assert (ours(prompt, padding="max_length", max_length=77, truncation=True).input_ids
                == comfy(prompt, padding="max_length", max_length=77, truncation=True).input_ids), prompt


def test_a_tokenizer_folder_is_used_at_clips_length(files, tmp_path):
    folder = tmp_path / "sd1_tokenizer"
    sd15_checkpoint.clip_tokenizer().save_pretrained(folder)
    config = read_json(folder / "tokenizer_config.json")
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 8192}))
    backbone = load_sd15_checkpoint(files["checkpoint"], files["v3"], tokenizer_dir=folder)
    assert backbone.tokenizer.model_max_length == 77
    assert backbone.embed_text("lighthouse " * 90)[0].shape == (1, 77, 32)
    with pytest.raises(ModelFileError, match="nowhere' is not a CLIP tokenizer folder"):
        load_sd15_checkpoint(files["checkpoint"], files["v3"], tokenizer_dir=tmp_path / "nowhere")


# --- offline ------------------------------------------------------------------------------------------
def test_loading_asks_no_network_even_without_hf_hub_offline(files, monkeypatch, tmp_path):
    import huggingface_hub.constants
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network refused by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", lambda self, *a: refuse(*a))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, *a: refuse(*a))
    backbone = load_sd15_checkpoint(files["checkpoint"], files["v2"])
    backbone.embed_text("a photo of a cat")
    assert attempts == []
    with pytest.raises(OSError):  # the patch is live: a real look-up is counted
        socket.getaddrinfo("huggingface.co", 443)
    assert len(attempts) == 1


# --- what the file may hold --------------------------------------------------------------------------
def test_ema_copies_and_the_oldest_text_layout(files, models, tmp_path):
    """EMA copies are skipped (the non-EMA weights run, as in ComfyUI and diffusers); a file whose text encoder
    lacks the ``text_model.`` level gives the same text encoder."""
    state = standin_files_sd15.checkpoint_state(*models)
    ema = {"model_ema." + k.removeprefix("model.").replace(".", ""): torch.randn(v.shape)
           for k, v in state.items() if k.startswith(sd15_checkpoint.UNET)}
    old = {k.replace("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer."): v
           for k, v in state.items()}
    path = tmp_path / "old.safetensors"
    save_file({**old, **ema, "model_ema.decay": torch.tensor(0.9999), "model_ema.num_updates": torch.tensor(7)}, path)
    backbone = load_sd15_checkpoint(path, files["v3"])
    reference = load_sd15_checkpoint(files["checkpoint"], files["v3"])
    assert _same_weights(backbone.unet, reference.unet) and _same_weights(backbone.text_encoder, models[2])


def test_dtype(files):
    backbone = load_sd15_checkpoint(files["checkpoint"], files["v3"], dtype=torch.bfloat16)
    dtypes = {p.dtype for part in (backbone.unet, backbone.vae, backbone.text_encoder) for p in part.parameters()}
    assert dtypes == {torch.bfloat16}


def _broken(models, tmp_path, change) -> Path:
    state = standin_files_sd15.checkpoint_state(*models)
    change(state)
    path = tmp_path / "broken.safetensors"
    save_file(state, path)
    return path


def _drop(name):
    return lambda state: state.pop(name)


def _add(name, shape):
    return lambda state: state.__setitem__(name, torch.zeros(shape))


def _reshape(name):
    return lambda state: state.__setitem__(name, torch.zeros(state[name].shape[0] + 1, *state[name].shape[1:]))


U, V, T = sd15_checkpoint.UNET, sd15_checkpoint.VAE, sd15_checkpoint.TEXT + "text_model."
BROKEN = {
    "unet tensor missing": (_drop(U + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight"), "lacks"),
    "vae tensor missing": (_drop(V + "decoder.up.0.block.2.conv1.weight"), "lacks"),
    "text tensor missing": (_drop(T + "encoder.layers.1.mlp.fc2.weight"), "encoder.layers.1.mlp.fc2.weight"),
    "layout tensor missing": (_drop(U + "out.2.weight"), "out.2.weight"),
    "unet tensor left over": (_add(U + "input_blocks.1.0.extra.weight", (3,)), "extra.weight"),
    "unet block left over": (_add(U + "output_blocks.9.0.in_layers.0.weight", (3,)), "output_blocks.9.0"),
    "vae tensor left over": (_add(V + "encoder.mid.attn_2.q.weight", (3,)), "attn_2"),
    "text tensor left over": (_add(T + "encoder.layers.0.extra.weight", (3,)), "encoder.layers.0.extra.weight"),
    "tensor of no part": (_add("embedding_manager.embedder.weight", (3,)), "embedding_manager.embedder.weight"),
    "unet tensor misshaped": (_reshape(U + "output_blocks.4.1.transformer_blocks.0.attn1.to_q.weight"), "shape"),
    "vae tensor misshaped": (_reshape(V + "decoder.mid.block_1.conv1.weight"), "shape"),
    "text tensor misshaped": (_reshape(T + "encoder.layers.0.self_attn.q_proj.weight"), "q_proj.weight"),
    "inpainting unet": (lambda state: state.__setitem__(U + "input_blocks.0.0.weight", torch.zeros(32, 9, 3, 3)),
                        "takes 9 latent channels but its VAE makes 4"),
}


@pytest.mark.parametrize("fault", list(BROKEN))
def test_an_incomplete_or_altered_checkpoint_is_refused_naming_the_file(files, models, tmp_path, fault):
    change, said = BROKEN[fault]
    path = _broken(models, tmp_path, change)
    with pytest.raises(ModelFileError, match="broken.safetensors") as refused:
        load_sd15_checkpoint(path, files["v3"])
    assert said in str(refused.value)


def test_a_cut_short_file_is_refused(files, tmp_path):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(files["checkpoint"].read_bytes()[:-1000])
    with pytest.raises(ModelFileError, match="cut.safetensors.*cut short"):
        load_sd15_checkpoint(path, files["v3"])


def test_a_pickle_checkpoint_is_refused(files, tmp_path):
    path = tmp_path / "sd15.ckpt"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(ModelFileError, match="sd15.ckpt.*not a .safetensors file"):
        load_sd15_checkpoint(path, files["v3"])


def _other_kind(models, kind: str) -> dict:
    state = standin_files_sd15.checkpoint_state(*models)
    if kind == "vae only":
        return {k: v for k, v in state.items() if k.startswith(sd15_checkpoint.VAE)}
    if kind == "bare vae":
        return {k.removeprefix(sd15_checkpoint.VAE): v for k, v in state.items() if k.startswith(sd15_checkpoint.VAE)}
    if kind == "sdxl":
        text = {k: v for k, v in state.items() if k.startswith(sd15_checkpoint.TEXT)}
        rest = {k: v for k, v in state.items() if k not in text}
        return {**rest, **{k.replace("cond_stage_model.", "conditioner.embedders.0."): v for k, v in text.items()},
                "conditioner.embedders.1.model.ln_final.weight": torch.ones(4)}
    wan = {"patch_embedding.weight": torch.zeros(8, 16, 1, 2, 2), "head.head.weight": torch.zeros(64, 8),
           "head.modulation": torch.zeros(1, 2, 8), "text_embedding.0.weight": torch.zeros(8, 32),
           "time_embedding.0.weight": torch.zeros(8, 256)}
    for part in ("q", "k", "v", "o"):
        wan[f"blocks.0.self_attn.{part}.weight"] = torch.zeros(8, 8)
        wan[f"blocks.0.cross_attn.{part}.weight"] = torch.zeros(8, 8)
    wan["blocks.0.ffn.0.weight"], wan["blocks.0.modulation"] = torch.zeros(16, 8), torch.zeros(1, 6, 8)
    return {"model.diffusion_model." + k: v for k, v in wan.items()}


@pytest.mark.parametrize("kind, said", [("vae only", "VAE"), ("bare vae", "VAE"), ("sdxl", "SDXL"),
                                        ("wan", "Wan")])
def test_another_kind_of_file_is_refused_saying_what_it_is(files, models, tmp_path, kind, said):
    path = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in _other_kind(models, kind).items()}, path)
    with pytest.raises(ModelFileError, match="other.safetensors") as refused:
        load_sd15_checkpoint(path, files["v3"])
    assert said in str(refused.value)


def test_a_motion_module_of_other_widths_is_refused(files, tmp_path):
    narrow = standin_models.write_original_motion_module(tmp_path / "mm_narrow.safetensors", "v3", (16, 32))
    narrow.with_suffix(".json").write_text('{"motion_norm_num_groups": 8}')
    with pytest.raises(ModelFileError, match="mm_narrow.safetensors.*sd15.safetensors"):
        load_sd15_checkpoint(files["checkpoint"], narrow)


def test_with_an_ip_adapter_as_from_the_folder(files, models, tmp_path):
    ip = tmp_path / "ip.safetensors"
    save_file(standin_models.tiny_ip_adapter_plus(models[0]), ip)
    encoder = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in standin_models.tiny_image_encoder().state_dict().items()}, encoder)
    single = load_sd15_checkpoint(files["checkpoint"], files["v3"], ip_adapter=ip, image_encoder=encoder)
    folder = load_backbone(files["folder"], motion_adapter=files["v3"], ip_adapter=ip, image_encoder=encoder)
    assert single.has_image_attention and _same_weights(single.unet, folder.unet)
    with pytest.raises(ModelFileError, match="needs its CLIP image encoder"):
        load_sd15_checkpoint(files["checkpoint"], files["v3"], ip_adapter=ip)


# --- stand-ins ---------------------------------------------------------------------------------------
def test_the_standin_files_hold_the_folder_standins_weights(tmp_path):
    written = standin_files_sd15.write_sd15_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "checkpoints/v1-5-pruned-emaonly.safetensors", "animatediff_models/mm_sd_v15_v3.safetensors"]
    backbone = load_sd15_checkpoint(*written)
    unet2d = standin_models.tiny_unet2d(standin_models.ORIGINAL_MM_BLOCKS).state_dict()
    motion = backbone.unet.state_dict()
    assert all(torch.equal(motion[k], v) for k, v in unet2d.items())
    assert _same_weights(backbone.vae, standin_models.tiny_vae(standin_models.WORKFLOW_VAE_BLOCKS))
    assert _same_weights(backbone.text_encoder, standin_files_sd15.tiny_clip_text_encoder())
    assert backbone.vae_scale_factor == 32 and backbone.max_frames == 32
    text, _ = backbone.embed_text("a panda eating bamboo")
    assert text.shape == (1, 77, standin_models.CROSS_DIM) and torch.isfinite(text).all()
    # what no tensor records comes from the header: the models the stand-in was written from, exactly
    folder_unet = standin_models.tiny_unet2d(standin_models.ORIGINAL_MM_BLOCKS).config
    declared = {"num_attention_heads": folder_unet.attention_head_dim, "norm_num_groups": folder_unet.norm_num_groups,
                "sample_size": folder_unet.sample_size}  # the UNetMotionModel's names for UNDECLARED["unet"]
    assert {key: backbone.unet.config[key] for key in declared} == declared
    assert backbone.vae.config.norm_num_groups == standin_models.tiny_vae().config.norm_num_groups


def test_a_damaged_config_entry_in_the_header_is_refused(files, tmp_path):
    from safetensors.torch import load_file
    from zeroshot_video.core.loading.strict_load import CONFIG_METADATA
    damaged = tmp_path / "damaged.safetensors"
    save_file(load_file(str(files["checkpoint"])), str(damaged), metadata={CONFIG_METADATA: "{unet"})
    with pytest.raises(ModelFileError, match="damaged"):
        load_sd15_checkpoint(damaged, files["v3"])
