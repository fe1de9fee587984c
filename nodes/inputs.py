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


def BOOLEAN(default: bool, tooltip: str):
    return ("BOOLEAN", {"default": default, "tooltip": tooltip})


def LINK(type_name: str, tooltip: str):
    return (type_name, {"tooltip": tooltip})


def SEED(tooltip: str = "Seed of every random draw of this node: the same seed gives the same video."):
    return ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True, "tooltip": tooltip})


FROM_LATENT_STREAM = "from_latent"
"""T2VSampler's stream when it starts from an input latent (I4VGen's regeneration, SDEdit)."""
NIVSDS_STREAM = "nivsds"
"""NIVSDSOptimize's stream for its fixed noise ε."""


def generator(seed: int, stream: str | None = None):
    """The one source of randomness of a node run: a CPU generator seeded from its seed input (a named stream:
    one of its own, see ``core.t2v.seeded``)."""
    from ..core.t2v import seeded
    return seeded(seed, stream)


_KINDS = {"INT": ((int,), "an integer"), "FLOAT": ((int, float), "a number"), "BOOLEAN": ((bool,), "true or false"),
          "STRING": ((str,), "a text")}


def _declared_problem(declaration: tuple, name: str, value) -> str | None:
    kind, options = declaration[0], (declaration[1] if len(declaration) > 1 else {})
    if kind not in _KINDS:
        return None
    types, what = _KINDS[kind]
    if not isinstance(value, types) or (isinstance(value, bool) and kind != "BOOLEAN"):
        return f"{name} must be {what}, got {value!r}"
    if "min" in options and value < options["min"]:
        return f"{name} {value} is below its minimum {options['min']}"
    if "max" in options and value > options["max"]:
        return f"{name} {value} is above its maximum {options['max']}"
    return None


def validated(node_cls, check, **values):
    """VALIDATE_INPUTS' answer: True, or the message ComfyUI shows.

    ComfyUI skips its own type and min/max checks for every input a VALIDATE_INPUTS names, so the declared ones
    are applied here first; then ``check`` (raising ValueError) runs, once no value is linked (linked inputs
    arrive as None and are checked when the node runs)."""
    inputs = node_cls.INPUT_TYPES()
    declared = {**inputs.get("required", {}), **inputs.get("optional", {})}
    for name, value in values.items():
        problem = None if value is None else _declared_problem(declared[name], name, value)
        if problem:
            return problem
    if None in values.values():
        return True
    try:
        check()
    except ValueError as error:
        return str(error)
    return True
