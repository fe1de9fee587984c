"""Tiny Wan stand-ins as the single files ComfyUI keeps (models/diffusion_models, text_encoders, vae).

Each file holds the same weights as the diffusers-folder stand-ins of ``standin_models`` (same constructors, same
seeds), renamed to the original Wan / T5 key layout, so a single-file load can be compared with the folder load
tensor for tensor. The UMT5 file carries its tokenizer as ComfyUI's files do (``spiece_model``): a SentencePiece
model written here with exactly the pieces, scores and ids of ``tiny_wan_tokenizer``, so both tokenizers give the
same ids. The few sizes no tensor records (head width, UMT5's relative-attention distance) are written into the
header metadata the loader reads (``strict_load.CONFIG_METADATA``). Nothing here downloads anything.
"""
from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..core.loading.strict_load import CONFIG_METADATA
from ..core.families.wan.files import vae_comfy_name
from .standin_models import tiny_umt5, tiny_wan_tokenizer, tiny_wan_transformer, tiny_wan_vae

COMFY_PREFIX = "model.diffusion_model."
WAN21_FILE = "wan2.1_t2v_1.3B_fp16.safetensors"
A14B_HIGH_FILE = "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"
A14B_LOW_FILE = "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"
TI2V_FILE = "wan2.2_ti2v_5B_fp16.safetensors"
UMT5_FP8_FILE = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
UMT5_FILE = "umt5_xxl_fp16.safetensors"
VAE21_FILE = "wan_2.1_vae.safetensors"
VAE22_FILE = "wan2.2_vae.safetensors"
FP8_MAX = 448.0  # largest float8_e4m3fn value

# diffusers name → original Wan name, applied in order.
_TRANSFORMER_RENAMES = (
    (r"^scale_shift_table$", "head.modulation"), (r"\.scale_shift_table$", ".modulation"),
    (r"^proj_out\.", "head.head."),
    (r"^condition_embedder\.time_embedder\.linear_1\.", "time_embedding.0."),
    (r"^condition_embedder\.time_embedder\.linear_2\.", "time_embedding.2."),
    (r"^condition_embedder\.time_proj\.", "time_projection.1."),
    (r"^condition_embedder\.text_embedder\.linear_1\.", "text_embedding.0."),
    (r"^condition_embedder\.text_embedder\.linear_2\.", "text_embedding.2."),
    (r"\.attn1\.", ".self_attn."), (r"\.attn2\.", ".cross_attn."),
    (r"\.to_q\.", ".q."), (r"\.to_k\.", ".k."), (r"\.to_v\.", ".v."), (r"\.to_out\.0\.", ".o."),
    (r"\.norm2\.", ".norm3."),  # diffusers' norm2 is the cross-attention norm, Wan's norm3
    (r"\.ffn\.net\.0\.proj\.", ".ffn.0."), (r"\.ffn\.net\.2\.", ".ffn.2."),
)


def _tensors(model, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().clone().contiguous()
            for k, v in model.state_dict().items()}


def wan_transformer_to_comfy(model, prefix: str = COMFY_PREFIX, dtype: torch.dtype | None = None
                             ) -> dict[str, torch.Tensor]:
    """A diffusers WanTransformer3DModel's tensors under the original Wan names ComfyUI's files use."""
    state = {}
    for name, tensor in _tensors(model, dtype).items():
        for pattern, replacement in _TRANSFORMER_RENAMES:
            name = re.sub(pattern, replacement, name)
        state[prefix + name] = tensor
    return state


def wan_vae_to_comfy(vae, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """A diffusers AutoencoderKLWan's tensors under ComfyUI's Wan 2.1 / 2.2 VAE names."""
    return {vae_comfy_name(name, vae.config): tensor for name, tensor in _tensors(vae, dtype).items()}


# --- the tokenizer as a SentencePiece model (protobuf written by hand: protobuf itself is not a dependency) ---
def _varint(number: int) -> bytes:
    number &= (1 << 64) - 1  # negative int32 fields are ten-byte two's complement
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    key = _varint(number << 3 | wire)
    return key + _varint(len(payload)) + payload if wire == 2 else key + payload


def sentencepiece_model(tokenizer) -> bytes:
    """A serialized SentencePiece unigram ModelProto with ``tokenizer``'s pieces, scores and special ids
    (<pad> 0, </s> 1, <unk> 2, no <s>), identity normalisation, whitespace as ▁ with a leading ▁."""
    vocab = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["vocab"]
    pad, eos, unk = tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id
    kinds = {pad: 3, eos: 3, unk: 2}  # CONTROL, CONTROL, UNKNOWN; the rest NORMAL (1)
    pieces = b"".join(_field(1, 2, _field(1, 2, piece.encode()) + _field(2, 5, struct.pack("<f", score))
                             + _field(3, 0, _varint(kinds.get(index, 1))))
                      for index, (piece, score) in enumerate(vocab))
    trainer = (_field(3, 0, _varint(1)) + _field(4, 0, _varint(len(vocab))) + _field(40, 0, _varint(unk))
               + _field(41, 0, _varint(-1)) + _field(42, 0, _varint(eos)) + _field(43, 0, _varint(pad)))
    normalizer = (_field(1, 2, b"identity") + _field(3, 0, _varint(1)) + _field(4, 0, _varint(1))
                  + _field(5, 0, _varint(1)))
    return pieces + _field(2, 2, trainer) + _field(3, 2, normalizer)


def umt5_to_comfy(model, tokenizer, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """ComfyUI's UMT5 file layout: transformers' names without the tied copy of the embedding, plus the tokenizer
    as a uint8 ``spiece_model`` tensor."""
    state = {k: v for k, v in _tensors(model, dtype).items() if k != "encoder.embed_tokens.weight"}
    state["spiece_model"] = torch.tensor(list(sentencepiece_model(tokenizer)), dtype=torch.uint8)
    return state


# --- fp8 ---------------------------------------------------------------------------------------------------
def fp8_scaled(state: dict[str, torch.Tensor], layout: str = "old", scaled: bool = True,
               keep=lambda key: False) -> dict[str, torch.Tensor]:
    """``state`` with every 2-D ``.weight`` (not ``keep(key)``) stored as float8_e4m3fn, as ComfyUI's fp8 files do:
    ``layout`` "old" (``scale_weight`` + a ``scaled_fp8`` marker) or "new" (``weight_scale`` + ``comfy_quant``
    JSON bytes); ``scaled=False`` casts without scales (the plain ``_fp8_e4m3fn`` files)."""
    fp8 = torch.float8_e4m3fn
    out = {}
    prefix = COMFY_PREFIX if any(k.startswith(COMFY_PREFIX) for k in state) else ""
    for key, tensor in state.items():
        if not (key.endswith(".weight") and tensor.dim() == 2 and tensor.is_floating_point()) or keep(key):
            out[key] = tensor
            continue
        layer = key[:-len(".weight")]
        if not scaled:
            out[key] = tensor.to(fp8)
            continue
        scale = tensor.float().abs().max().clamp(min=1e-12) / FP8_MAX
        out[key] = (tensor.float() / scale).to(fp8)
        if layout == "old":
            out[f"{layer}.scale_weight"] = scale.reshape(())
        else:
            out[f"{layer}.weight_scale"] = scale.reshape(())
            out[f"{layer}.comfy_quant"] = torch.tensor(list(json.dumps({"format": "float8_e4m3fn"}).encode()),
                                                       dtype=torch.uint8)
    if scaled and layout == "old":
        out[prefix + "scaled_fp8"] = torch.zeros(2, dtype=fp8)
    return out


def umt5_keeps(key: str) -> bool:
    """What ComfyUI's fp8 UMT5 files keep in 16 bits: the embedding and the relative-attention tables."""
    return key == "shared.weight" or "relative_attention_bias" in key


# --- writing ---------------------------------------------------------------------------------------------
def _save(state: dict[str, torch.Tensor], path: Path, config: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={CONFIG_METADATA: json.dumps(config)} if config else None)
    return path


def _head(model) -> dict:
    return {"attention_head_dim": int(model.config.attention_head_dim)}


def _umt5_sizes(model) -> dict:
    return {"relative_attention_max_distance": int(model.config.relative_attention_max_distance)}


def write_wan_files(models_dir: str | os.PathLike) -> list[Path]:
    """ComfyUI's Wan files under ``models_dir`` (a ComfyUI ``models/`` folder): 2.1 T2V 1.3B (fp16, no prefix),
    2.2 T2V A14B's two experts (old fp8_scaled layout, ``model.diffusion_model.`` prefix), 2.2 TI2V 5B (fp16),
    UMT5-XXL (fp16 and fp8_scaled) and both VAEs. Returns the files written."""
    root = Path(models_dir)
    models, encoders, vaes = root / "diffusion_models", root / "text_encoders", root / "vae"
    tokenizer = tiny_wan_tokenizer()
    umt5 = tiny_umt5(tokenizer)
    t21 = tiny_wan_transformer(16, seed=0)
    high, low = tiny_wan_transformer(16, seed=0), tiny_wan_transformer(16, seed=1)
    ti2v = tiny_wan_transformer(48, seed=0)
    return [
        _save(wan_transformer_to_comfy(t21, prefix="", dtype=torch.float16), models / WAN21_FILE, _head(t21)),
        _save(fp8_scaled(wan_transformer_to_comfy(high, dtype=torch.bfloat16)), models / A14B_HIGH_FILE, _head(high)),
        _save(fp8_scaled(wan_transformer_to_comfy(low, dtype=torch.bfloat16)), models / A14B_LOW_FILE, _head(low)),
        _save(wan_transformer_to_comfy(ti2v, prefix="", dtype=torch.float16), models / TI2V_FILE, _head(ti2v)),
        _save(fp8_scaled(umt5_to_comfy(umt5, tokenizer, torch.bfloat16), keep=umt5_keeps), encoders / UMT5_FP8_FILE,
              _umt5_sizes(umt5)),
        _save(umt5_to_comfy(umt5, tokenizer, torch.float16), encoders / UMT5_FILE, _umt5_sizes(umt5)),
        _save(wan_vae_to_comfy(tiny_wan_vae("2.1")), vaes / VAE21_FILE),
        _save(wan_vae_to_comfy(tiny_wan_vae("2.2")), vaes / VAE22_FILE),
    ]
