"""Loading one model part from a diffusers / transformers folder: every file checked first, local files only.

Shared by every family's folder loader and the reward model: safetensors only, never remote code, a part whose
config would not fit memory refused before it is built, and the ``auto`` dtype decided in one place.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .file_checks import ModelFileError, check_model_fits, loading, read_json, require_safetensors

LOCAL = {"local_files_only": True}


def checked_folder(cls, folder: Path, dtype: torch.dtype, what: str) -> None:
    """Every file of a model part whole, and its config's model the shape of its weights and within memory."""
    entries = require_safetensors(folder, what)
    found = read_json(folder / "config.json").get("_class_name")
    if found is not None and found != cls.__name__:
        raise ModelFileError(f"{what} in '{folder}' is a {found}, but this model needs a {cls.__name__} there: the "
                             f"folder mixes parts of different models. Re-download '{folder.parent.name}' whole.")
    with loading(folder, what):
        check_model_fits(cls, folder, entries, dtype, what)


def diffusers_part(cls, folder: Path, dtype: torch.dtype, what: str):
    checked_folder(cls, folder, dtype, what)
    with loading(folder, what):
        return cls.from_pretrained(folder, use_safetensors=True, torch_dtype=dtype, **LOCAL)


def transformers_dtype(dtype: torch.dtype) -> dict:
    """The dtype keyword of transformers' ``from_pretrained``: 4.56 renamed ``torch_dtype`` to ``dtype``, and the
    releases before it hand an unknown ``dtype`` on to the model's constructor, which raises."""
    import transformers
    renamed = tuple(int(part) for part in transformers.__version__.split(".")[:2]) >= (4, 56)
    return {"dtype" if renamed else "torch_dtype": dtype}


def transformers_part(cls, folder: Path, dtype: torch.dtype, what: str):
    checked_folder(cls, folder, dtype, what)
    with loading(folder, what):
        return cls.from_pretrained(folder, use_safetensors=True, trust_remote_code=False,
                                   **transformers_dtype(dtype), **LOCAL)


def load_tokenizer(cls, folder: Path, what: str):
    """A tokenizer folder, its JSON files checked first (a damaged one is named, not a parser position)."""
    for config in sorted(Path(folder).glob("*.json")):
        read_json(config)
    with loading(folder, what):
        return cls.from_pretrained(folder, **LOCAL)


def resolve_dtype(name: str, device: torch.device, half: torch.dtype = torch.float16) -> torch.dtype:
    """``auto``: ``half`` on a GPU (the 16-bit type the family's weights were made in), float32 on the CPU."""
    if name == "auto":
        return half if torch.device(device).type == "cuda" else torch.float32
    table = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if name not in table:
        raise ValueError(f"dtype must be auto, fp16, bf16 or fp32; got '{name}'")
    return table[name]
