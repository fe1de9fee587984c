"""Compact, data-driven input declarations in ComfyUI's classic (V1) node format."""
from __future__ import annotations

import inspect
import json
import logging
import math

from ..core.methods.t2v import seeded
from ..core.validation import check_video_latent, latent_origin

log = logging.getLogger(__name__)

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


def GUIDANCE_2():
    """The low-noise expert's own guidance scale, an optional input of every sampling node."""
    return FLOAT(-1.0, -1.0, 50.0, "Wan 2.2 A14B only: the guidance scale of the low-noise expert, which denoises "
                 "the levels below the model's boundary (Wan 2.2's official settings: guidance 4, guidance_2 3). "
                 "-1 = the same as guidance. Single-model backbones ignore it.", step=0.1)


def low_noise_guidance(guidance_2: float) -> float | None:
    """GUIDANCE_2's value for the Denoiser: None (the same as guidance) for the -1 default."""
    return None if guidance_2 < 0 else guidance_2




def generator(seed: int, stream: str | None = None):
    """The one source of randomness of a node run: a CPU generator seeded from its seed input (a named stream:
    one of its own, see ``core.methods.t2v.seeded``)."""
    return seeded(seed, stream)


LATENT_ORIGIN = "zeroshot_video_backbone"
"""Key of the LATENT dicts this pack's nodes output: the backbone that made the latent
(``core.validation.latent_origin``). ComfyUI's latent nodes copy the dict, so the key travels along."""


def latent_output(backbone, samples) -> dict:
    """A LATENT dict of video latents ``samples`` made by ``backbone``."""
    return {"samples": backbone.latent_to_host(samples), LATENT_ORIGIN: latent_origin(backbone)}


def video_latent(backbone, latent: dict, what: str = "The latent", hint: str = ""):
    """The samples of a LATENT input, once ``core.validation.check_video_latent`` accepts them for ``backbone``."""
    samples = latent["samples"]
    check_video_latent(backbone, tuple(samples.shape), latent.get(LATENT_ORIGIN), what, hint)
    return backbone.latent_from_host(samples)


_KINDS = {"INT": ((int,), "an integer"), "FLOAT": ((int, float), "a number"), "BOOLEAN": ((bool,), "true or false"),
          "STRING": ((str,), "a text")}
CHECKED_KINDS = ("FLOAT", "BOOLEAN")
"""Every input of these kinds is named by its node's VALIDATE_INPUTS (see :func:`validates`): ComfyUI lets a NaN
FLOAT through its min/max checks (``nan < min`` is False) and turns any JSON value of a BOOLEAN into a bool."""

NON_BOOLEAN = "zeroshot_video_non_boolean"
"""Hidden input of every node with BOOLEAN inputs: :func:`flag_non_booleans` records there the raw values an API
prompt gave them that are not JSON booleans, which ComfyUI would otherwise convert with ``bool()`` before any
validation sees them (``"false"`` → True). ComfyUI passes a hidden input of a kind it does not know to
VALIDATE_INPUTS as given, without any conversion."""
HIDDEN = {NON_BOOLEAN: (NON_BOOLEAN.upper(), {"tooltip": "Hidden, not a widget: set only when an API prompt gives "
                                                          "a BOOLEAN input something other than true or false."})}


def _declared(node_cls) -> dict:
    inputs = node_cls.INPUT_TYPES()
    return {**inputs.get("required", {}), **inputs.get("optional", {})}


def _range(options: dict) -> str:
    return f" within [{options['min']}, {options['max']}]" if "min" in options and "max" in options else ""


def _declared_problem(declaration: tuple, name: str, value) -> str | None:
    kind, options = declaration[0], (declaration[1] if len(declaration) > 1 else {})
    if kind not in _KINDS:
        return None
    types, what = _KINDS[kind]
    if not isinstance(value, types) or (isinstance(value, bool) and kind != "BOOLEAN"):
        return f"{name} must be {what}, got {value!r}"
    if kind == "FLOAT" and not math.isfinite(value):
        return f"{name} must be a finite number{_range(options)}, got {value}"
    if "min" in options and value < options["min"]:
        return f"{name} {value} is below its minimum {options['min']}"
    if "max" in options and value > options["max"]:
        return f"{name} {value} is above its maximum {options['max']}"
    return None


def _non_boolean_problem(name: str, raw) -> str:
    meant = {"false": False, "0": False, "no": False, "off": False, "true": True, "1": True, "yes": True, "on": True}
    guess = meant.get(str(raw).strip().lower()) if isinstance(raw, (str, int, float)) else None
    send = f'"{name}": {json.dumps(guess)}' if guess is not None else f'"{name}": true or "{name}": false'
    return (f"{name} must be a JSON boolean (true or false without quotes), got {json.dumps(raw, default=repr)}, "
            f"which ComfyUI would read as {json.dumps(bool(raw))}: send {send}")


def validated(node_cls, checks, values: dict):
    """VALIDATE_INPUTS' answer: True, or the message ComfyUI shows.

    ComfyUI skips its own type and min/max checks for every input a VALIDATE_INPUTS names, so the declared ones
    are applied here first (and finiteness, which ComfyUI never checks); then each check (raising ValueError) runs
    on its inputs, once none of them is linked (linked inputs arrive as None and are checked when the node runs)."""
    values = dict(values)
    raw = values.pop(NON_BOOLEAN, None)
    if isinstance(raw, dict) and raw:
        name = sorted(raw)[0]
        return _non_boolean_problem(name, raw[name])
    declared = _declared(node_cls)
    for name, value in values.items():
        problem = None if value is None else _declared_problem(declared[name], name, value)
        if problem:
            return problem
    for check in checks:
        arguments = {name: values.get(name) for name in inspect.signature(check).parameters}
        if None in arguments.values():
            continue
        try:
            check(**arguments)
        except ValueError as error:
            return str(error)
    return True


def validates(*checks):
    """Class decorator: the node's VALIDATE_INPUTS, made from its declarations.

    It names every FLOAT and BOOLEAN input (their declared type, range and finiteness are applied, see
    :func:`validated`), the hidden :data:`NON_BOOLEAN` input of a node with BOOLEAN inputs (which must declare
    ``"hidden": HIDDEN``), and the inputs each check takes: a check is a function whose parameter names are input
    names, raising ValueError with what to change. ComfyUI reads the names off the signature
    (``inspect.getfullargspec``, which honours ``__signature__``) and passes just those inputs."""
    def decorate(node_cls):
        inputs = node_cls.INPUT_TYPES()
        declared = _declared(node_cls)
        names = [name for name, spec in declared.items() if spec[0] in CHECKED_KINDS]
        names += [name for check in checks for name in inspect.signature(check).parameters if name not in names]
        if any(spec[0] == "BOOLEAN" for spec in declared.values()):
            if NON_BOOLEAN not in inputs.get("hidden", {}):
                raise TypeError(f"{node_cls.__name__} has BOOLEAN inputs: declare \"hidden\": HIDDEN")
            names.append(NON_BOOLEAN)

        def VALIDATE_INPUTS(cls, **values):
            return validated(cls, checks, values)
        parameter = inspect.Parameter
        VALIDATE_INPUTS.__signature__ = inspect.Signature(
            [parameter("cls", parameter.POSITIONAL_OR_KEYWORD)]
            + [parameter(name, parameter.POSITIONAL_OR_KEYWORD, default=None) for name in names])
        node_cls.VALIDATE_INPUTS = classmethod(VALIDATE_INPUTS)
        return node_cls
    return decorate


def _validated_names(node_cls) -> dict:
    validate = getattr(node_cls, "VALIDATE_INPUTS", None)
    return inspect.signature(validate).parameters if validate is not None else {}


def _is_boolean_or_link(value) -> bool:
    if isinstance(value, dict) and "__value__" in value:  # ComfyUI unwraps {"__value__": v} before converting v
        value = value["__value__"]
    return isinstance(value, bool) or (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str))


def flag_non_booleans(json_data, node_classes: dict):
    """An on-prompt handler body (ComfyUI calls it with every POST /prompt body before validating): for each node
    of a class in ``node_classes``, the raw values of its BOOLEAN inputs that are not JSON booleans (nor links) are
    recorded in its :data:`NON_BOOLEAN` hidden input, for its VALIDATE_INPUTS to refuse. Other nodes are left as
    they are; a malformed prompt is left to ComfyUI's own validation. Never raises."""
    try:
        prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
        for node in (prompt.values() if isinstance(prompt, dict) else ()):
            kind = node.get("class_type") if isinstance(node, dict) else None
            node_cls = node_classes.get(kind) if isinstance(kind, str) else None
            inputs = node.get("inputs") if node_cls is not None and NON_BOOLEAN in _validated_names(node_cls) else None
            if not isinstance(inputs, dict):
                continue
            inputs.pop(NON_BOOLEAN, None)
            faults = {name: inputs[name] for name, spec in _declared(node_cls).items()
                      if spec[0] == "BOOLEAN" and name in inputs and not _is_boolean_or_link(inputs[name])}
            if faults:
                inputs[NON_BOOLEAN] = faults
    except Exception:  # noqa: BLE001 - a handler that raises would only be logged by ComfyUI; say which one
        log.exception("zeroshot_video: checking the prompt's BOOLEAN inputs failed; the prompt goes on unchecked")
    return json_data
