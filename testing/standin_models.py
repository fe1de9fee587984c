"""Tiny randomly initialised stand-ins for every model the pack loads, saved in the real formats.

They are written under exactly the folder and file names the shipped workflows reference, so a
workflow's structure runs on a CPU against them (tier-2 tests, the demo; the tiers lower only sizes, frames and
steps, through ``tests/comfyui/cpu_overrides.json``). Random weights give noise:
they exercise the code paths, not the quality. Nothing here downloads anything.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

# Names the shipped workflows use (the public models users download get the same names).
MODELSCOPE = "text-to-video-ms-1.7b"
ZEROSCOPE = "zeroscope_v2_576w"
SD15 = "stable-diffusion-v1-5"
MOTION_ADAPTER = "animatediff-motion-adapter-v1-5-2"
MOTION_ADAPTER_FILE = "mm_sd_v15_v2.safetensors"
IP_ADAPTER = "ip-adapter-plus_sd15.safetensors"
IMAGE_ENCODER = "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
REWARD_MODEL = "PickScore_v1"  # a CLIPModel folder in models/reward_models

BLOCKS = (16, 32)
# The VAE of real models downsamples 8×. The UNet stand-ins written by write_all downsample 32× (six levels), so
# the UNet workflows run at their paper sizes (256² and 512², hundreds of frames) on a CPU in minutes;
# every size in the pack is read from the VAE's own config, which this also exercises.
REAL_VAE_BLOCKS = (8,) * 4
WORKFLOW_VAE_BLOCKS = (8,) * 6
CROSS_DIM = 32
IMAGE_HIDDEN = 64  # one 64-wide head, so the head count follows the usual CLIP rule hidden // 64


def tiny_tokenizer():
    from transformers import CLIPTokenizer
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = ["<|startoftext|>", "<|endoftext|>", "!"] + list(letters) + [c + "</w>" for c in letters]
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("i", "n"), ("o", "n</w>")]
    tokens += ["th", "the</w>", "an", "in", "on</w>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
        return CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"),
                             model_max_length=77, pad_token="!")


def tiny_text_encoder(tokenizer, hidden=CROSS_DIM):
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(0)
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=CROSS_DIM,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))


def tiny_vae(blocks=REAL_VAE_BLOCKS):
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=tuple(blocks), layers_per_block=1, norm_num_groups=2,
                         latent_channels=4, sample_size=64,
                         down_block_types=("DownEncoderBlock2D",) * len(blocks),
                         up_block_types=("UpDecoderBlock2D",) * len(blocks))


def _unet_layout(blocks, kind: str) -> dict:
    """Cross-attention on all but the first level (the tiny layout has it only at the low resolution)."""
    down = (f"DownBlock{kind}",) + (f"CrossAttnDownBlock{kind}",) * (len(blocks) - 1)
    up = (f"CrossAttnUpBlock{kind}",) * (len(blocks) - 1) + (f"UpBlock{kind}",)
    return {"block_out_channels": tuple(blocks), "down_block_types": down, "up_block_types": up}


def tiny_unet3d(blocks=BLOCKS, cross_dim=CROSS_DIM, layers=1):
    from diffusers import UNet3DConditionModel
    torch.manual_seed(0)
    return UNet3DConditionModel(layers_per_block=layers, norm_num_groups=4, attention_head_dim=2,
                                cross_attention_dim=cross_dim, sample_size=8, **_unet_layout(blocks, "3D"))


def tiny_unet2d(blocks=BLOCKS, cross_dim=CROSS_DIM, layers=1):
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    return UNet2DConditionModel(layers_per_block=layers, norm_num_groups=4, attention_head_dim=2,
                                cross_attention_dim=cross_dim, sample_size=8, **_unet_layout(blocks, "2D"))


def tiny_motion_adapter(blocks=BLOCKS, layers=1):
    from diffusers import MotionAdapter
    torch.manual_seed(0)
    return MotionAdapter(block_out_channels=tuple(blocks), motion_layers_per_block=layers, motion_norm_num_groups=8,
                         motion_num_attention_heads=2, motion_max_seq_length=32)


def ddim_scheduler(beta_schedule: str, timestep_spacing: str):
    from diffusers import DDIMScheduler
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule=beta_schedule, clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1, timestep_spacing=timestep_spacing)


def tiny_image_encoder():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    torch.manual_seed(0)
    return CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=IMAGE_HIDDEN, intermediate_size=37, num_hidden_layers=2, num_attention_heads=1,
        image_size=32, patch_size=8, projection_dim=CROSS_DIM))


def tiny_ip_adapter_plus(unet2d, image_hidden: int = IMAGE_HIDDEN, tokens: int = 4) -> dict[str, torch.Tensor]:
    """IP-Adapter Plus weights in the original file layout (a resampler + per-layer image K/V)."""
    g = torch.Generator().manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    dim = 64  # resampler width: one 64-wide head
    sd = {"image_proj.latents": rnd(1, tokens, dim),
          "image_proj.proj_in.weight": rnd(dim, image_hidden), "image_proj.proj_in.bias": torch.zeros(dim),
          "image_proj.proj_out.weight": rnd(CROSS_DIM, dim), "image_proj.proj_out.bias": torch.zeros(CROSS_DIM),
          "image_proj.norm_out.weight": torch.ones(CROSS_DIM), "image_proj.norm_out.bias": torch.zeros(CROSS_DIM)}
    for layer in range(4):  # diffusers' converter expects the released depth
        p = f"image_proj.layers.{layer}."
        for norm in ("0.norm1", "0.norm2", "1.0"):
            sd[p + norm + ".weight"], sd[p + norm + ".bias"] = torch.ones(dim), torch.zeros(dim)
        sd[p + "0.to_q.weight"], sd[p + "0.to_kv.weight"], sd[p + "0.to_out.weight"] = (
            rnd(dim, dim), rnd(2 * dim, dim), rnd(dim, dim))
        sd[p + "1.1.weight"], sd[p + "1.3.weight"] = rnd(4 * dim, dim), rnd(dim, 4 * dim)
    # Original numbering: every attention processor of the SD UNet counts, the cross-attentions are the odd ones.
    for index, name in enumerate(unet2d.attn_processors):
        if name.endswith("attn2.processor"):
            block = name.split(".")[0]
            if block == "mid_block":
                hidden = unet2d.config.block_out_channels[-1]
            elif block == "up_blocks":
                hidden = list(reversed(unet2d.config.block_out_channels))[int(name.split(".")[1])]
            else:
                hidden = unet2d.config.block_out_channels[int(name.split(".")[1])]
            sd[f"ip_adapter.{index}.to_k_ip.weight"] = rnd(hidden, CROSS_DIM)
            sd[f"ip_adapter.{index}.to_v_ip.weight"] = rnd(hidden, CROSS_DIM)
    return sd


def write_reward_model(folder: Path) -> None:
    """A tiny CLIPModel with its tokenizer and image processor: the layout of PickScore_v1 / CLIP folders."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": CROSS_DIM, "intermediate_size": 37,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 77,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": IMAGE_HIDDEN, "intermediate_size": 37, "num_hidden_layers": 2,
                       "num_attention_heads": 1, "image_size": 32, "patch_size": 8},
        projection_dim=CROSS_DIM))
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)


def _save_pipeline_folder(folder: Path, class_name: str, components: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    index = {"_class_name": class_name, "_diffusers_version": "0.42.1"}
    for name, component in components.items():
        component.save_pretrained(folder / name, **({"safe_serialization": True}
                                                      if hasattr(component, "state_dict") else {}))
        module = "transformers" if type(component).__module__.startswith("transformers") else "diffusers"
        index[name] = [module, type(component).__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))


def _write_pipeline(folder: Path, class_name: str, unet, cross_dim: int, vae_blocks) -> None:
    tokenizer = tiny_tokenizer()
    _save_pipeline_folder(folder, class_name, {
        "unet": unet, "vae": tiny_vae(vae_blocks), "text_encoder": tiny_text_encoder(tokenizer, cross_dim),
        "tokenizer": tokenizer, "scheduler": ddim_scheduler("scaled_linear", "leading")})


def write_modelscope(folder: Path, blocks=BLOCKS, cross_dim=CROSS_DIM, layers=1, vae_blocks=REAL_VAE_BLOCKS) -> None:
    _write_pipeline(folder, "TextToVideoSDPipeline", tiny_unet3d(blocks, cross_dim, layers), cross_dim, vae_blocks)


def write_sd15(folder: Path, blocks=BLOCKS, cross_dim=CROSS_DIM, layers=1, vae_blocks=REAL_VAE_BLOCKS) -> None:
    _write_pipeline(folder, "StableDiffusionPipeline", tiny_unet2d(blocks, cross_dim, layers), cross_dim, vae_blocks)


# --- motion modules in the original AnimateDiff file layout (what users keep in models/animatediff_models) ---
# The released versions differ in the mid-block module and the frame positions; the loader must read both off
# the tensors. The widths fit the released head count (8) and GroupNorm groups (32), which no tensor records,
# so these files load without a config beside them; an SD1.5 stand-in for them needs the same blocks.
ORIGINAL_MM_BLOCKS = (32, 64)
ORIGINAL_MM_VERSIONS = {"v1": {"use_motion_mid_block": False, "motion_max_seq_length": 24},
                        "v2": {"use_motion_mid_block": True, "motion_max_seq_length": 32},
                        "v3": {"use_motion_mid_block": False, "motion_max_seq_length": 32}}


def _original_mm_names(name: str) -> list[str]:
    """The original file's name(s) for one diffusers MotionAdapter tensor (its positional table is kept once per
    attention there, once per block in diffusers)."""
    head, sep, rest = name.partition(".motion_modules.")
    index, _, inner = rest.partition(".")
    inner = (inner.replace("norm1.", "norms.0.").replace("norm2.", "norms.1.").replace("norm3.", "ff_norm.")
             .replace("attn1.", "attention_blocks.0.").replace("attn2.", "attention_blocks.1."))
    prefix = f"{head}{sep}{index}.temporal_transformer."
    if inner.endswith("pos_embed.pe"):
        block = inner[:-len("pos_embed.pe")]
        return [f"{prefix}{block}attention_blocks.{a}.pos_encoder.pe" for a in (0, 1)]
    return [prefix + inner]


def original_motion_module(version: str, blocks=ORIGINAL_MM_BLOCKS, layers=1) -> dict[str, torch.Tensor]:
    """A tiny v1/v2/v3 motion module as the released .safetensors files lay it out, in fp16 like them. Every
    tensor but the positional tables (a fixed sinusoid in the original code too) is random, norms included,
    so a tensor loaded into the wrong place shows."""
    from diffusers import MotionAdapter
    # Only the shapes are used: neither the head count nor the norm groups change them, 1 fits any width.
    shapes = MotionAdapter(block_out_channels=tuple(blocks), motion_layers_per_block=layers, motion_norm_num_groups=1,
                           motion_num_attention_heads=1, **ORIGINAL_MM_VERSIONS[version]).state_dict()
    g = torch.Generator().manual_seed(0)
    state = {}
    for name, tensor in shapes.items():
        value = tensor if name.endswith("pos_embed.pe") else torch.randn(tensor.shape, generator=g) * 0.05
        for original in _original_mm_names(name):
            state[original] = value.to(torch.float16).contiguous()
    return state


def write_original_motion_module(path: Path, version: str, blocks=ORIGINAL_MM_BLOCKS, layers=1) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(original_motion_module(version, blocks, layers), path)
    return path


# --- Wan 2.1 / 2.2 (flow matching, diffusers WanPipeline folders) ---
# Layouts and scheduler settings are those of the public folders; widths are diffusers' own tiny test sizes.
WAN21 = "Wan2.1-T2V-1.3B-Diffusers"
WAN22_A14B = "Wan2.2-T2V-A14B-Diffusers"
WAN22_TI2V = "Wan2.2-TI2V-5B-Diffusers"
WAN_TEXT_DIM = 32
WAN_MAX_TEXT_TOKENS = 512  # Wan was trained on prompts padded to 512 rows; the cross-attention has no mask
# The prompts of the shipped workflows and tests; other words are spelled out letter by letter.
WAN_WORDS = (
    "a an the and of on in at over above across along with another one high low quality blurry ugly watermark "
    "text video red green blue golden calm clear sunny snowy stormy rocky dramatic cinematic hot air ball "
    "balloon panda bamboo forest meadow hills background beach boat sailing sea sky sunrise sunset noon light "
    "lighthouse cliff clouds coastline corgi cat mat drone flight eating rolling running drifting breaking "
    "mountains waves hour"
).split()


def tiny_wan_tokenizer():
    """A T5 (Unigram) tokenizer with T5's special ids: <pad>=0, </s>=1, <unk>=2. It is built with the tokenizers
    library and read back from its tokenizer.json, the one form both transformers 4 (whose T5Tokenizer needs a
    SentencePiece model file) and 5 load; it splits and ends text as T5's own does."""
    import tempfile
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import T5TokenizerFast
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [("▁" + word, -3.0) for word in WAN_WORDS]
    vocab += [(char, -8.0) for char in "abcdefghijklmnopqrstuvwxyz,."]
    backend = Tokenizer(Unigram(vocab, unk_id=2))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()])
    backend.decoder = decoders.Metaspace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                           special_tokens=[("</s>", 1)])
    with tempfile.TemporaryDirectory() as tmp:
        backend.save(str(Path(tmp) / "tokenizer.json"))
        return T5TokenizerFast(tokenizer_file=str(Path(tmp) / "tokenizer.json"), extra_ids=0,
                               model_max_length=WAN_MAX_TEXT_TOKENS)


def tiny_umt5(tokenizer, seed: int = 0):
    from transformers import UMT5Config, UMT5EncoderModel
    torch.manual_seed(seed)
    return UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=WAN_TEXT_DIM, d_kv=8, d_ff=37, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id, dropout_rate=0.0))


def tiny_wan_transformer(channels: int = 16, seed: int = 0):
    """Patch (1, 2, 2) and head_dim 12, so RoPE keeps 4/4/4 dims for frames, height and width. RoPE covers 1024
    positions per axis as in the real models (its tables are not saved): diffusers' test value 32 fails beyond
    32 patches, i.e. above 512 px with the 2.1 VAE."""
    from diffusers import WanTransformer3DModel
    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=channels,
        out_channels=channels, text_dim=WAN_TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=1024)


def tiny_wan_vae(version: str = "2.1", seed: int = 0):
    """The 2.1 layout (8× space, 4× time, 16 channels, the real per-channel statistics) or the 2.2 one (pixels
    patchified 2×2 first, so 16× space, 48 channels). Four levels with [False, True, True] keep the declared
    scale factors true: the pipeline reads them from the config, not from the layers."""
    from diffusers import AutoencoderKLWan
    torch.manual_seed(seed)
    common = dict(base_dim=3, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
    if version == "2.1":
        return AutoencoderKLWan(z_dim=16, **common)
    if version == "2.2":
        return AutoencoderKLWan(z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
                                latents_mean=[0.0] * 48, latents_std=[1.0] * 48, scale_factor_spatial=16,
                                scale_factor_temporal=4, **common)
    raise ValueError(f"Wan VAE version must be '2.1' or '2.2', not {version!r}")


def wan_scheduler(flow_shift: float):
    """What the public folders ship: UniPC on flow sigmas with the model's own shift."""
    from diffusers import UniPCMultistepScheduler
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=flow_shift,
                                   num_train_timesteps=1000)


def _write_wan(folder: Path, vae_version: str, channels: int, flow_shift: float, two_experts: bool = False,
               **pipeline_options) -> None:
    from diffusers import WanPipeline
    tokenizer = tiny_wan_tokenizer()
    pipe = WanPipeline(
        tokenizer=tokenizer, text_encoder=tiny_umt5(tokenizer), vae=tiny_wan_vae(vae_version),
        scheduler=wan_scheduler(flow_shift), transformer=tiny_wan_transformer(channels, seed=0),
        transformer_2=tiny_wan_transformer(channels, seed=1) if two_experts else None, **pipeline_options)
    pipe.save_pretrained(folder, safe_serialization=True)


def write_wan21(folder: Path) -> None:
    """Wan2.1 T2V 1.3B layout; shift 3.0 is the official value at 480p."""
    _write_wan(folder, "2.1", 16, 3.0)


def write_wan22_a14b(folder: Path) -> None:
    """Wan2.2 T2V A14B layout: ``transformer`` is the high-noise expert (t ≥ 875), ``transformer_2`` the low-noise
    one; the two have different weights so swapping them shows."""
    _write_wan(folder, "2.1", 16, 12.0, two_experts=True, boundary_ratio=0.875)


def write_wan22_ti2v(folder: Path) -> None:
    """Wan2.2 TI2V 5B layout: the 2.2 VAE (48 channels, 16×) and per-token timesteps (``expand_timesteps``)."""
    _write_wan(folder, "2.2", 48, 5.0, expand_timesteps=True)


def write_wan(models_dir: str | os.PathLike) -> list[Path]:
    """The three Wan folders under ``models_dir/diffusers`` (part of ``write_all``)."""
    root = Path(models_dir) / "diffusers"
    written = []
    for name, writer in ((WAN21, write_wan21), (WAN22_A14B, write_wan22_a14b), (WAN22_TI2V, write_wan22_ti2v)):
        writer(root / name)
        written.append(root / name)
    return written
