"""What a single model file is, read from its tensor names alone, and where it belongs.

ComfyUI users pick files from lists by name, and names say little ("model.safetensors") or mislead. Loading a VAE
as a diffusion model fails deep inside a library with a list of missing tensors; saying "this is a Wan VAE: put it
in models/vae and choose it as the VAE" needs the kind, which every format marks with a few tensors of its own.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from .file_checks import ModelFileError

COMFY_PREFIX = "model.diffusion_model."

# kind → (what it is, its ComfyUI models folder, what to choose it as)
KINDS = {
    "sd15_checkpoint": ("a Stable Diffusion checkpoint (UNet, VAE and text encoder in one file)", "checkpoints",
                        "the checkpoint"),
    "wan_transformer": ("a Wan diffusion model", "diffusion_models", "the diffusion model"),
    "wan21_vae": ("a Wan 2.1 VAE", "vae", "the VAE"),
    "wan22_vae": ("a Wan 2.2 VAE", "vae", "the VAE"),
    "umt5": ("a UMT5 text encoder", "text_encoders", "the text encoder"),
    "motion_module": ("an AnimateDiff motion module", "animatediff_models", "the motion module"),
    "clip_vision": ("a CLIP vision encoder", "clip_vision", "the image encoder"),
}

# Marker tensors per kind: every name in one of the tuples must be present (a prefix is tried with and without
# ComfyUI's "model.diffusion_model.").
_MARKERS = (
    ("wan_transformer", ("blocks.0.self_attn.q.weight", "head.modulation")),
    ("wan22_vae", ("decoder.middle.0.residual.0.gamma", "decoder.upsamples.0.upsamples.0.residual.2.weight")),
    ("wan21_vae", ("decoder.middle.0.residual.0.gamma",)),
    ("sd15_checkpoint", ("model.diffusion_model.input_blocks.0.0.weight",)),
    ("umt5", ("shared.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")),
    ("clip_vision", ("vision_model.embeddings.patch_embedding.weight",)),
    ("clip_vision", ("visual.conv1.weight",)),  # open_clip layout
)


def _names(tensors: Mapping[str, object] | Iterable[str]) -> set[str]:
    names = set(tensors.keys() if isinstance(tensors, Mapping) else tensors)
    return names | {name[len(COMFY_PREFIX):] for name in names if name.startswith(COMFY_PREFIX)}


def identify(tensors: Mapping[str, object] | Iterable[str]) -> str:
    """The kind of model a file's tensor names describe (a key of ``KINDS``), or "unknown"."""
    names = _names(tensors)
    for kind, markers in _MARKERS:
        if all(marker in names for marker in markers):
            return "unknown" if kind == "umt5" and _plain_t5(names) else kind
    if any(".motion_modules." in name for name in names):  # original and diffusers layouts alike
        return "motion_module"
    return "unknown"


def _plain_t5(names: set[str]) -> bool:
    """T5 (not UMT5): only its first block has a relative-attention table."""
    return ("encoder.block.1.layer.0.SelfAttention.q.weight" in names
            and "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight" not in names)


def describe(kind: str) -> str:
    return KINDS[kind][0] if kind in KINDS else "a model of a kind this pack does not load"


def require_kind(tensors: Mapping[str, object] | Iterable[str], file: Path, expected: set[str],
                 folder_hint: str) -> str:
    """The file's kind, if it is one of ``expected``; else a ModelFileError saying what the file is, that it is
    not ``folder_hint`` (what the slot takes, e.g. "a Wan diffusion model"), and where it belongs instead."""
    file = Path(file)
    kind = identify(tensors)
    if kind in expected:
        return kind
    if kind in KINDS:
        what, folder, choose = KINDS[kind]
        raise ModelFileError(f"'{file.name}' is {what}, not {folder_hint}: put it in models/{folder} and choose it "
                             f"as {choose}; here choose {folder_hint} ('{file}' was given).")
    raise ModelFileError(f"'{file}' is not {folder_hint}: its tensors match none of the model kinds this pack loads "
                         "(it may be a LoRA, a model of another family, or a damaged file). Choose "
                         f"{folder_hint} here.")
