"""VALIDATE_INPUTS as ComfyUI calls it: ComfyUI skips its own type and min/max checks for every input a
VALIDATE_INPUTS names, so each node must apply its declared ones itself (tier 2 checks the server's answers)."""
from __future__ import annotations

import inspect

import pytest

from zeroshot_video import NODE_CLASS_MAPPINGS
from zeroshot_video.nodes.inputs import NON_BOOLEAN

VALIDATED = {name: cls for name, cls in NODE_CLASS_MAPPINGS.items() if hasattr(cls, "VALIDATE_INPUTS")}


def _declared(cls) -> dict:
    inputs = cls.INPUT_TYPES()
    return {**inputs.get("required", {}), **inputs.get("optional", {})}


def _valid_values(cls) -> dict:
    """The declared default of every input VALIDATE_INPUTS names (not its hidden input, absent from a good prompt)."""
    declared = _declared(cls)
    return {name: declared[name][1]["default"] for name in inspect.signature(cls.VALIDATE_INPUTS).parameters
            if name != NON_BOOLEAN}


def test_the_nodes_that_validate():
    """Every node with a FLOAT or BOOLEAN input, and those with checks of their own."""
    assert set(VALIDATED) == {"T2VSampler", "EncodeAnchorImage", "RewardSelectAnchor", "NIVSDSOptimize",
                              "LoadWanModelFiles", "WanModelBackbone",
                              "FIFOQueueWithImageEmbed", "RepeatAndSlideSampler", "T2VConditioningAddImage"}


@pytest.mark.parametrize("name", sorted(NODE_CLASS_MAPPINGS))
def test_every_float_and_boolean_input_is_validated(name):
    """ComfyUI lets NaN through its own range checks and converts any JSON value of a BOOLEAN with bool(): only a
    VALIDATE_INPUTS that names the input can refuse them."""
    cls = NODE_CLASS_MAPPINGS[name]
    kinds = {input_name: spec[0] for input_name, spec in _declared(cls).items()}
    wanted = {input_name for input_name, kind in kinds.items() if kind in ("FLOAT", "BOOLEAN")}
    if "BOOLEAN" in kinds.values():
        wanted.add(NON_BOOLEAN)
        assert NON_BOOLEAN in cls.INPUT_TYPES()["hidden"]
    named = set(inspect.getfullargspec(cls.VALIDATE_INPUTS).args) if hasattr(cls, "VALIDATE_INPUTS") else set()
    assert wanted <= named, wanted - named


@pytest.mark.parametrize("name", sorted(VALIDATED))
def test_defaults_pass(name):
    cls = VALIDATED[name]
    assert cls.VALIDATE_INPUTS(**_valid_values(cls)) is True


@pytest.mark.parametrize("name", sorted(VALIDATED))
def test_declared_range_and_type_are_applied(name):
    cls = VALIDATED[name]
    declared = _declared(cls)
    for input_name, value in _valid_values(cls).items():
        kind, options = declared[input_name][0], declared[input_name][1]
        wrong_type = 5 if kind == "STRING" else "many"
        answer = cls.VALIDATE_INPUTS(**{**_valid_values(cls), input_name: wrong_type})
        assert isinstance(answer, str) and answer.startswith(f"{input_name} must be"), (input_name, answer)
        if "max" in options:
            answer = cls.VALIDATE_INPUTS(**{**_valid_values(cls), input_name: options["max"] + options["step"]})
            assert answer == f"{input_name} {options['max'] + options['step']} is above its maximum {options['max']}"
        if "min" in options:
            answer = cls.VALIDATE_INPUTS(**{**_valid_values(cls), input_name: options["min"] - options["step"]})
            assert answer == f"{input_name} {options['min'] - options['step']} is below its minimum {options['min']}"


@pytest.mark.parametrize("name", sorted(VALIDATED))
def test_a_linked_input_is_left_to_the_run(name):
    cls = VALIDATED[name]
    values = _valid_values(cls)
    first = next(iter(values))
    assert cls.VALIDATE_INPUTS(**{**values, first: None}) is True


def test_booleans_are_not_numbers():
    answer = VALIDATED["T2VSampler"].VALIDATE_INPUTS(width=True, height=64)
    assert answer == "width must be an integer, got True"
