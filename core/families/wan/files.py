"""Wan 2.1 / 2.2 from the single files ComfyUI keeps: models/diffusion_models, text_encoders and vae.

A ComfyUI user has no diffusers folder, only three (A14B: four) files, none with a config. Everything the models
need is read from the tensors themselves (ComfyUI does the same), starting from configs shipped with the pack
(``configs/``: the Wan 2.1 and 2.2 VAEs with their latent statistics, UMT5-XXL), so no hub is ever asked:
- **transformer**: widths, depth and channels from the shapes; heads are 128 wide in every released Wan (no tensor
  records it). Which Wan it is follows from the files: two experts → 2.2 A14B (the first file the high-noise
  one), 48 channels → 2.2 TI2V-5B, else 2.1; each with its official flow shift;
- **VAE**: 2.1 and 2.2 through the renaming below (diffusers' converter knows only 2.1's layout at its released
  depth); the widths come from the shapes, the latent statistics from the shipped config;
- **text encoder**: UMT5 in transformers' names; its SentencePiece tokenizer is the ``spiece_model`` tensor ComfyUI
  stores in the same file (ComfyUI ships no other).
fp8 files are dequantised first (``fp8_scaled``). A header metadata entry ``zeroshot_video_config`` (JSON) may set
the few fields no tensor records (head width, UMT5's relative-attention distance); only the pack's tiny stand-ins
need it.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from ...loading.fp8_scaled import dequantize
from ...loading.file_checks import ModelFileError, read_json
from ...schedule import FlowSchedule
from ...loading.file_kinds import COMFY_PREFIX, require_kind
from ...loading.strict_load import (config_folder, config_overrides, load_exact, read_metadata, read_single_file,
                          single_file_model)

CONFIGS = Path(__file__).parent / "configs"
HEAD_DIM = 128
TRANSFORMER_CONSTANTS = {"qk_norm": "rms_norm_across_heads", "cross_attn_norm": True, "eps": 1e-6,
                         "rope_max_seq_len": 1024, "image_dim": None, "added_kv_proj_dim": None,
                         "pos_embed_seq_len": None}
TEXT_TO_VIDEO = {16, 48}  # latent channels of the text-to-video transformers (2.1 and A14B; TI2V-5B)
HALF = torch.bfloat16
"""Wan's weights are bf16 and its activations overflow fp16: the 16-bit type ``auto`` means on a GPU."""
SHIFT = {"2.1": 3.0, "A14B": 12.0, "TI2V-5B": 5.0}  # official shifts (2.1 at 480p)
BOUNDARY_RATIO = 0.875  # A14B: the high-noise expert above 875 of 1000
VAE_FOR_CHANNELS = {16: "the Wan 2.1 VAE (wan_2.1_vae.safetensors)", 48: "the Wan 2.2 VAE (wan2.2_vae.safetensors)"}
TRANSFORMER = "Wan diffusion model"
VAE = "Wan VAE"
TEXT_ENCODER = "UMT5 text encoder"


# --- reading one file -------------------------------------------------------------------------------
def _read(file: Path, kinds: set[str], slot: str, dtype: torch.dtype) -> tuple[dict, dict, str]:
    """(tensors with fp8 multiplied out to ``dtype``, the config fields the header sets, the file's kind), after
    checking the file is whole and of one of ``kinds``."""
    file = Path(file)
    if not file.is_file():
        raise ModelFileError(f"'{file}' does not exist: choose {slot} that is in your models folder.")
    state = read_single_file(file, slot)
    kind = require_kind(state, file, kinds, slot)
    metadata = read_metadata(file)
    return dequantize(state, dtype, file, metadata), config_overrides(file, metadata), kind


def _shape(state: dict, name: str, file: Path, what: str) -> tuple[int, ...]:
    if name not in state:
        raise ModelFileError(f"{what} '{file}' lacks the tensor {name}: it is not complete. Download it again.")
    return tuple(state[name].shape)


# --- transformer ----------------------------------------------------------------------------------------
def transformer_config(state: dict, file: Path, overrides: dict | None = None) -> dict:
    """The diffusers WanTransformer3DModel config of a file's tensors (names without ComfyUI's prefix)."""
    file = Path(file)
    if any(k.startswith("img_emb.") or ".k_img." in k for k in state) or (
            _shape(state, "patch_embedding.weight", file, TRANSFORMER)[1] not in TEXT_TO_VIDEO):
        raise ModelFileError(f"'{file.name}' is an image-to-video Wan model (it has image inputs); this pack's methods "
                             "need a text-to-video one: Wan 2.1 T2V (1.3B or 14B), Wan 2.2 T2V A14B (both experts) or "
                             "Wan 2.2 TI2V 5B, from models/diffusion_models.")
    patch = _shape(state, "patch_embedding.weight", file, TRANSFORMER)
    dim = _shape(state, "head.modulation", file, TRANSFORMER)[-1]
    head_dim = int((overrides or {}).get("attention_head_dim", HEAD_DIM))
    if dim % head_dim:
        raise ModelFileError(f"'{file.name}' is {dim} wide, not a multiple of Wan's {head_dim}-wide attention heads: "
                             "it is not a Wan model this pack knows.")
    config = {
        **TRANSFORMER_CONSTANTS,
        "patch_size": list(patch[2:]), "num_attention_heads": dim // head_dim, "attention_head_dim": head_dim,
        "in_channels": patch[1], "out_channels": _shape(state, "head.head.weight", file, TRANSFORMER)[0]
        // (patch[2] * patch[3] * patch[4]),
        "text_dim": _shape(state, "text_embedding.0.weight", file, TRANSFORMER)[1],
        "freq_dim": _shape(state, "time_embedding.0.weight", file, TRANSFORMER)[1],
        "ffn_dim": _shape(state, "blocks.0.ffn.0.weight", file, TRANSFORMER)[0],
        "num_layers": len({k.split(".")[1] for k in state if k.startswith("blocks.")}),
    }
    config.update({k: v for k, v in (overrides or {}).items() if k in config})
    return config


def load_transformer(file: Path, dtype: torch.dtype, what: str = TRANSFORMER):
    """A WanTransformer3DModel from a ComfyUI diffusion-model file (either prefix, fp16/bf16/fp32/fp8)."""
    from diffusers import WanTransformer3DModel
    state, overrides, _ = _read(file, {"wan_transformer"}, "a Wan diffusion model", dtype)
    state = {k.removeprefix(COMFY_PREFIX): v for k, v in state.items()}
    config = transformer_config(state, file, overrides)
    with config_folder({"_class_name": "WanTransformer3DModel", **config}) as folder:
        return single_file_model(WanTransformer3DModel, state, file, what, folder, dtype)


# --- VAE --------------------------------------------------------------------------------------------------
_RESNET_PARTS = {"norm1": "residual.0", "conv1": "residual.2", "norm2": "residual.3", "conv2": "residual.6",
                 "conv_shortcut": "shortcut"}
_VAE_TOP = {"quant_conv": "conv1", "post_quant_conv": "conv2", "conv_in": "conv1", "norm_out": "head.0",
            "conv_out": "head.2"}


def vae_comfy_name(name: str, config: dict) -> str:
    """The name ComfyUI's Wan VAE gives the diffusers AutoencoderKLWan tensor ``name`` (2.1 or 2.2 layout, read
    from ``config``). The one mapping both ways: the loader looks each model tensor up under this name, the
    stand-in writer saves it under it."""
    residual = bool(config.get("is_residual"))
    blocks = int(config["num_res_blocks"])
    parts = name.split(".")
    side = parts[0]
    if side in ("quant_conv", "post_quant_conv"):
        return ".".join([_VAE_TOP[side], *parts[1:]])
    rest = parts[1:]
    if rest[0] in ("conv_in", "norm_out", "conv_out"):
        return ".".join([side, _VAE_TOP[rest[0]], *rest[1:]])
    if rest[0] == "mid_block":  # resnets.0, attentions.0, resnets.1 → middle.0, 1, 2
        index = {"resnets": {"0": 0, "1": 2}, "attentions": {"0": 1}}[rest[1]][rest[2]]
        inner = rest[3:]
        inner = [_RESNET_PARTS.get(inner[0], inner[0]), *inner[1:]] if rest[1] == "resnets" else inner
        return ".".join([side, "middle", str(index), *inner])
    level = int(rest[1])
    if rest[0] == "down_blocks" and not residual:  # 2.1: one flat list, same index
        inner = [_RESNET_PARTS.get(rest[2], rest[2]), *rest[3:]]
        return ".".join([side, "downsamples", str(level), *inner])
    if rest[0] == "down_blocks":  # 2.2: downsamples.<level>.downsamples.<j>, the resample last
        j, inner = (blocks, rest[3:]) if rest[2] == "downsampler" else (int(rest[3]), rest[4:])
        if rest[2] == "resnets":
            inner = [_RESNET_PARTS.get(inner[0], inner[0]), *inner[1:]]
        return ".".join([side, "downsamples", str(level), "downsamples", str(j), *inner])
    # up_blocks: resnets.<j> then the upsampler; 2.1 numbers them in one flat list, blocks + 1 resnets a level
    if rest[2] == "resnets":
        j, inner = int(rest[3]), [_RESNET_PARTS.get(rest[4], rest[4]), *rest[5:]]
    else:  # upsamplers.0 (2.1) / upsampler (2.2)
        j, inner = blocks + 1, rest[4:] if rest[2] == "upsamplers" else rest[3:]
    if residual:
        return ".".join([side, "upsamples", str(level), "upsamples", str(j), *inner])
    return ".".join([side, "upsamples", str(level * (blocks + 2) + j), *inner])


def _levels(state: dict, version: str) -> list[tuple[list[int], bool | None]]:
    """The encoder's levels: (output widths of its residual blocks, whether its resample is temporal, None
    where it has none), read from the ComfyUI names."""
    levels: list[tuple[list[int], bool | None]] = []
    if version == "wan21_vae":
        entries = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.downsamples.")})
        widths: list[int] = []
        for n in entries:
            if f"encoder.downsamples.{n}.residual.6.weight" in state:
                widths.append(state[f"encoder.downsamples.{n}.residual.6.weight"].shape[0])
            else:
                levels.append((widths, f"encoder.downsamples.{n}.time_conv.weight" in state))
                widths = []
        return levels + [(widths, None)]
    for level in sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.downsamples.")}):
        prefix = f"encoder.downsamples.{level}.downsamples."
        js = sorted({int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)})
        widths = [state[f"{prefix}{j}.residual.6.weight"].shape[0] for j in js
                  if f"{prefix}{j}.residual.6.weight" in state]
        resample = [j for j in js if f"{prefix}{j}.resample.1.weight" in state]
        levels.append((widths, f"{prefix}{resample[0]}.time_conv.weight" in state if resample else None))
    return levels


def vae_config(state: dict, version: str, file: Path) -> dict:
    """The shipped config of ``version`` ("wan21_vae" / "wan22_vae") with the widths of the file's tensors."""
    config = {k: v for k, v in read_json(CONFIGS / version / "config.json").items() if not k.startswith("_")}
    try:
        levels = _levels(state, version)
    except (ValueError, IndexError):  # a block index that is not a number
        levels = []
    base = _shape(state, "encoder.conv1.weight", file, VAE)[0]
    z_dim = _shape(state, "conv2.weight", file, VAE)[0]
    if not levels or not levels[0][0] or any(len(w) != len(levels[0][0]) for w, _ in levels) or any(
            t is None for _, t in levels[:-1]) or z_dim != len(config["latents_mean"]):
        raise ModelFileError(f"'{file}' is not laid out like a {'Wan 2.1' if version == 'wan21_vae' else 'Wan 2.2'} "
                             "VAE (its blocks or latent channels differ). Download it again, or choose the VAE "
                             "made for this Wan model.")
    temporal = [bool(t) for _, t in levels[:-1]]
    config.update(base_dim=base, z_dim=z_dim, num_res_blocks=len(levels[0][0]), temperal_downsample=temporal,
                  dim_mult=[widths[0] // base for widths, _ in levels],
                  scale_factor_temporal=2 ** sum(temporal))
    pixels_in = _shape(state, "encoder.conv1.weight", file, VAE)[1]
    if version == "wan22_vae":
        patch = round((pixels_in / 3) ** 0.5)
        config.update(in_channels=pixels_in, out_channels=_shape(state, "decoder.head.2.weight", file, VAE)[0],
                      patch_size=patch, scale_factor_spatial=patch * 2 ** (len(levels) - 1),
                      decoder_base_dim=_shape(state, "decoder.conv1.weight", file, VAE)[0] // config["dim_mult"][-1])
    else:
        config.update(scale_factor_spatial=2 ** (len(levels) - 1))
    return config


def load_vae(file: Path):
    """An AutoencoderKLWan (float32, as Wan's own code runs it) from a ComfyUI Wan 2.1 or 2.2 VAE file.

    Both layouts are renamed here: diffusers' converter knows only 2.1's, and only at its released depth (two
    residual blocks a level, hard-coded), which a narrower file (the pack's stand-ins) does not have."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLWan
    state, _, version = _read(file, {"wan21_vae", "wan22_vae"}, "a Wan VAE", torch.float32)
    config = vae_config(state, version, file)
    with init_empty_weights(include_buffers=False):
        vae = AutoencoderKLWan.from_config(config)
    names = {vae_comfy_name(name, config): name for name in vae.state_dict()}
    renamed = {names.get(k, k): v.float() for k, v in state.items()}
    what = "Wan 2.1 VAE" if version == "wan21_vae" else "Wan 2.2 VAE"
    return load_exact(vae, renamed, file, what)


# --- text encoder and its tokenizer -----------------------------------------------------------------------
class SentencePieceTokenizer:
    """UMT5's tokenizer from the SentencePiece model inside a ComfyUI text-encoder file, answering the calls
    WanBackbone makes of a transformers tokenizer: ids end with the end token, padding uses the pad id, as
    ComfyUI's own tokenizer and T5's do."""

    def __init__(self, model_proto: bytes, model_max_length: int = 512):
        import sentencepiece
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
        self.model_max_length = model_max_length
        self.eos_token_id = self.processor.eos_id()
        self.pad_token_id = max(self.processor.pad_id(), 0)

    def __len__(self) -> int:
        return self.processor.get_piece_size()

    def __call__(self, text: str, padding: bool | str = False, max_length: int | None = None,
                 truncation: bool = False, add_special_tokens: bool = True, return_attention_mask: bool = True,
                 return_tensors: str | None = None):
        ids = self.processor.encode(text)
        limit = max_length or self.model_max_length
        if truncation:
            ids = ids[:limit - 1 if add_special_tokens else limit]
        if add_special_tokens:
            ids = ids + [self.eos_token_id]
        mask = [1] * len(ids)
        if padding == "max_length":
            ids, mask = ids + [self.pad_token_id] * (limit - len(ids)), mask + [0] * (limit - len(ids))
        if return_tensors == "pt":
            return SimpleNamespace(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([mask]))
        return SimpleNamespace(input_ids=ids, attention_mask=mask)

    def decode(self, ids) -> str:
        special = {self.eos_token_id, self.pad_token_id}
        return self.processor.decode([int(i) for i in ids if int(i) not in special])


def umt5_config(state: dict, file: Path, overrides: dict | None = None):
    """UMT5-XXL's shipped config with the sizes of the file's tensors."""
    from transformers import UMT5Config
    config = read_json(CONFIGS / "umt5_xxl" / "config.json")
    vocab, d_model = _shape(state, "shared.weight", file, TEXT_ENCODER)
    buckets, heads = _shape(state, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", file,
                            TEXT_ENCODER)
    inner = _shape(state, "encoder.block.0.layer.0.SelfAttention.q.weight", file, TEXT_ENCODER)[0]
    config.update(vocab_size=vocab, d_model=d_model, num_heads=heads, d_kv=inner // heads,
                  relative_attention_num_buckets=buckets,
                  d_ff=_shape(state, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight", file, TEXT_ENCODER)[0],
                  num_layers=len({k.split(".")[2] for k in state if k.startswith("encoder.block.")}))
    config.update({k: v for k, v in (overrides or {}).items() if k in config})
    return UMT5Config(**config)


def load_text_encoder(file: Path, dtype: torch.dtype):
    """(UMT5EncoderModel, its tokenizer) from a ComfyUI UMT5 text-encoder file (fp16/bf16/fp32/fp8)."""
    from accelerate import init_empty_weights
    from transformers import UMT5EncoderModel
    file = Path(file)
    state, overrides, _ = _read(file, {"umt5"}, "a UMT5 text encoder", dtype)
    spiece = state.pop("spiece_model", None)
    if spiece is None or spiece.dtype != torch.uint8 or spiece.dim() != 1:
        raise ModelFileError(f"'{file}' has no tokenizer inside (the spiece_model tensor ComfyUI's UMT5 files carry): "
                             "choose ComfyUI's umt5_xxl_fp16 or umt5_xxl_fp8_e4m3fn_scaled file from "
                             "models/text_encoders.")
    try:
        tokenizer = SentencePieceTokenizer(bytes(spiece.numpy()))
    except (RuntimeError, OSError, ValueError) as error:
        raise ModelFileError(f"'{file}': its tokenizer (spiece_model) cannot be read ({error}). Download the file "
                             "again.") from None
    config = umt5_config(state, file, overrides)
    with init_empty_weights(include_buffers=False):
        model = UMT5EncoderModel(config)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    model = load_exact(model, state, file, TEXT_ENCODER, tied=["encoder.embed_tokens.weight"])
    return model, tokenizer


# --- the whole backbone -----------------------------------------------------------------------------------
def _sizes(transformer) -> dict:
    return {k: v for k, v in transformer.config.items() if not k.startswith("_")}


def _variant(transformer, transformer_2) -> str:
    if transformer_2 is not None:
        return "A14B"
    return "TI2V-5B" if transformer.config.in_channels == 48 else "2.1"


def load_wan_files(transformer: Path, text_encoder: Path, vae: Path, dtype: torch.dtype,
                   transformer_2: Path | None = None, flow_shift: float | None = None):
    """A WanBackbone from ComfyUI's single files: ``transformer`` (A14B: the high-noise expert, with the low-noise
    one as ``transformer_2``), the UMT5 ``text_encoder`` and the ``vae``; the official shift unless
    ``flow_shift`` is given. Local files only."""
    from .backbone import WanBackbone
    transformer, vae = Path(transformer), Path(vae)
    high = load_transformer(transformer, dtype, TRANSFORMER)
    channels = int(high.config.in_channels)
    low = None
    if transformer_2 is not None:
        transformer_2 = Path(transformer_2)
        low = load_transformer(transformer_2, dtype, "Wan low-noise expert (transformer_2)")
        if _sizes(low) != _sizes(high) or channels != 16:
            raise ModelFileError(f"'{transformer.name}' and '{transformer_2.name}' are not the two experts of one Wan "
                                 "2.2 A14B model (their sizes differ): choose the high_noise file as the diffusion "
                                 "model and the low_noise file as the second one.")
    decoder = load_vae(vae)
    if int(decoder.config.z_dim) != channels:
        raise ModelFileError(f"'{vae.name}' makes {decoder.config.z_dim}-channel latents but '{transformer.name}' "
                             f"works on {channels}: this Wan model needs {VAE_FOR_CHANNELS[channels]} from models/vae.")
    encoder, tokenizer = load_text_encoder(text_encoder, dtype)
    if int(encoder.config.d_model) != int(high.config.text_dim):
        raise ModelFileError(f"'{Path(text_encoder).name}' makes {encoder.config.d_model}-wide text embeddings but "
                             f"'{transformer.name}' takes {high.config.text_dim}: choose the UMT5-XXL text encoder "
                             "made for Wan (umt5_xxl_*.safetensors in models/text_encoders).")
    variant = _variant(high, low)
    shift = SHIFT[variant] if flow_shift is None else float(flow_shift)
    return WanBackbone(transformer.stem, high, decoder, encoder, tokenizer,
                       FlowSchedule(shift=shift, num_train_timesteps=1000), dtype, transformer_2=low, boundary_ratio=BOUNDARY_RATIO if low is not None else None,
                       expand_timesteps=variant == "TI2V-5B")
