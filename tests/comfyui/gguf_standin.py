"""A GGUF stand-in of a Wan diffusion model, as city96's ComfyUI-GGUF (``Unet Loader (GGUF)``) loads one: the
tensors of a ComfyUI Wan safetensors file under Wan's own names, every 2-D weight quantized to Q8_0, the rest F32,
and a 5-D tensor (the patch embedding) stored flat with its shape in ``comfy.gguf.orig_shape.<name>``, as the
converter of ComfyUI-GGUF stores it. Test-only; needs the ``gguf`` package, which ComfyUI-GGUF itself requires."""
from __future__ import annotations

from pathlib import Path

import gguf
from safetensors.torch import load_file

PREFIX = "model.diffusion_model."
Q8_0 = gguf.GGMLQuantizationType.Q8_0


def write_wan_gguf(source: Path, target: Path) -> Path:
    writer = gguf.GGUFWriter(str(target), arch="wan")
    for name, tensor in load_file(str(source)).items():
        name = name.removeprefix(PREFIX)
        array = tensor.float().numpy()
        if name.endswith(".weight") and array.ndim == 2 and array.shape[-1] % gguf.GGML_QUANT_SIZES[Q8_0][0] == 0:
            writer.add_tensor(name, gguf.quants.quantize(array, Q8_0), raw_dtype=Q8_0)
            continue
        if array.ndim > 4:
            writer.add_array(f"comfy.gguf.orig_shape.{name}", [int(n) for n in array.shape])
            array = array.reshape(array.shape[0], -1)
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target
