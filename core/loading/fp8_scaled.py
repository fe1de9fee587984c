"""ComfyUI's fp8 weight files turned back into ordinary weights before a library loads them.

ComfyUI stores a Linear weight as float8 plus a float32 scale, so that the weight is ``W_fp8 · scale``. diffusers and
transformers know nothing of the scale: given such a file they load the fp8 numbers as if they were the weights
(the output is NaN or far off, and the scale tensors are at most logged as unused). So the scaled weights are
multiplied out here, in float32 and then cast to the dtype the model runs in, and the scale and marker tensors are
dropped, so the strict load that follows sees exactly the model's tensors.

Layouts read (all written by ComfyUI or its tools):
- **old** (ComfyUI ≤ 0.3.6x): ``<layer>.scale_weight`` (a scalar), optional ``<layer>.scale_input``, and a
  ``scaled_fp8`` marker tensor;
- **new**: ``<layer>.weight_scale``, optional ``<layer>.input_scale``, and the layer's format either in a
  ``<layer>.comfy_quant`` tensor (JSON bytes) or in the header metadata ``_quantization_metadata``
  (``{"layers": {<layer>: {"format": …}}}``);
- **plain fp8** (``…_fp8_e4m3fn`` files): fp8 weights without a scale, cast up as they are.
Other quantisations (nvfp4, mxfp8, int8, int4…) store packed numbers that need their own kernels: refused.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .file_checks import ModelFileError

FP8 = tuple(getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name))
FP8_FORMATS = {"float8_e4m3fn", "float8_e5m2"}
OLD_MARKER = "scaled_fp8"
METADATA_KEY = "_quantization_metadata"
SCALE_SUFFIXES = {".scale_weight": "old", ".weight_scale": "new"}
DROPPED_SUFFIXES = (".scale_input", ".input_scale", ".comfy_quant")


def _layer_formats(state_dict: dict[str, torch.Tensor], metadata: dict[str, str], file: Path) -> dict[str, str]:
    """Each quantised layer's declared format, from its comfy_quant tensor or the header metadata."""
    formats = {}
    raw = metadata.get(METADATA_KEY)
    if raw:
        try:
            layers = json.loads(raw).get("layers", {})
            formats.update({layer: str(entry.get("format")) for layer, entry in layers.items()})
        except (ValueError, AttributeError):
            raise ModelFileError(f"'{file}' has a damaged {METADATA_KEY} entry in its header: download it "
                                 "again.") from None
    for key, tensor in state_dict.items():
        if key.endswith(".comfy_quant"):
            try:
                formats[key[:-len(".comfy_quant")]] = str(json.loads(bytes(tensor.tolist()).decode()).get("format"))
            except (ValueError, AttributeError, TypeError):
                raise ModelFileError(f"'{file}' has a damaged quantisation note ({key}): download it again.") from None
    return formats


def is_quantized(state_dict: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bool:
    return (METADATA_KEY in (metadata or {}) or any(t.dtype in FP8 for t in state_dict.values())
            or any(k.endswith((*SCALE_SUFFIXES, ".comfy_quant")) or k.rsplit(".", 1)[-1] == OLD_MARKER
                   for k in state_dict))


def dequantize(state_dict: dict[str, torch.Tensor], dtype: torch.dtype, file: Path,
               metadata: dict[str, str] | None = None) -> dict[str, torch.Tensor]:
    """A new state dict without quantisation: every fp8 tensor becomes ``dtype`` (times its scale where it has
    one), the scale/marker tensors are gone, every other tensor is passed on unchanged. Weights are converted one
    at a time, so only one full-precision copy of the model is ever built."""
    file = Path(file)
    metadata = metadata or {}
    if not is_quantized(state_dict, metadata):
        return state_dict
    formats = _layer_formats(state_dict, metadata, file)
    other = sorted({f for f in formats.values() if f not in FP8_FORMATS})
    if other:
        raise ModelFileError(f"'{file}' is quantised as {', '.join(other)}, which this pack cannot load (it reads "
                             "fp16/bf16/fp32 files and ComfyUI's fp8 and fp8_scaled files). Choose the fp16, bf16 or "
                             "fp8 version of this model.")
    packed = sorted(k for k, t in state_dict.items() if k.endswith(".weight") and t.dtype in (torch.int8, torch.uint8))
    if packed:
        raise ModelFileError(f"'{file}' holds packed integer weights ({packed[0]}…), a quantisation this pack cannot "
                             "load. Choose the fp16, bf16 or fp8 version of this model.")
    scales = {}
    for key in state_dict:
        for suffix in SCALE_SUFFIXES:
            if key.endswith(suffix):
                scales[key[:-len(suffix)] + ".weight"] = key
    orphans = sorted(scale for weight, scale in scales.items() if weight not in state_dict)
    if orphans:
        raise ModelFileError(f"'{file}' has weight scales without their weights ({orphans[0]}…): the file is damaged "
                             "or not a ComfyUI fp8 file. Download it again.")
    dropped = set(scales.values())
    result = {}
    for key, tensor in state_dict.items():
        if key in dropped or key.endswith(DROPPED_SUFFIXES) or key.rsplit(".", 1)[-1] == OLD_MARKER:
            continue
        if key in scales:
            scale = state_dict[scales[key]].float()
            if scale.numel() == 1:
                scale = scale.reshape(())
            elif scale.numel() == tensor.shape[0] and tensor.dim() > 1:  # one scale per output channel
                scale = scale.reshape(-1, *[1] * (tensor.dim() - 1))
            else:
                raise ModelFileError(f"'{file}': the scale {scales[key]} {tuple(scale.shape)} does not fit its weight "
                                     f"{key} {tuple(tensor.shape)}. The file is damaged: download it again.")
            result[key] = (tensor.float() * scale).to(dtype)
        elif tensor.dtype in FP8:
            result[key] = tensor.to(dtype)
        else:
            result[key] = tensor
    return result
