"""Compact, data-driven input declarations in ComfyUI's classic (V1) node format."""
from __future__ import annotations

SEED_MAX = 0xFFFFFFFFFFFFFFFF


def INT(default: int, lo: int, hi: int, tooltip: str, step: int = 1, **extra):
    return ("INT", {"default": default, "min": lo, "max": hi, "step": step, "tooltip": tooltip, **extra})


def FLOAT(default: float, lo: float, hi: float, tooltip: str, step: float = 0.01, **extra):
    return ("FLOAT", {"default": default, "min": lo, "max": hi, "step": step, "tooltip": tooltip, **extra})


def STRING(tooltip: str, default: str = "", multiline: bool = True):
    return ("STRING", {"default": default, "multiline": multiline, "tooltip": tooltip})


def COMBO(options: list[str], tooltip: str, default: str | None = None):
    spec = {"tooltip": tooltip}
    if default is not None:
        spec["default"] = default
    return (list(options), spec)


def LINK(type_name: str, tooltip: str):
    return (type_name, {"tooltip": tooltip})


def SEED(tooltip: str = "Seed of every random draw of this node: the same seed gives the same video."):
    return ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True, "tooltip": tooltip})


def generator(seed: int):
    """The one source of randomness of a node run: a CPU generator seeded from its seed input."""
    import torch
    return torch.Generator("cpu").manual_seed(int(seed))
