"""The CPU tiers' one table of smaller numbers, ``cpu_overrides.json``: ``{"<workflow name>": {"<node id>.<input>":
value, ...}, ...}``, node ids as in ``workflows/api/``.

The shipped workflows run at their models' own sizes, frame counts and steps. On a CPU with the stand-in models
the tier-2 and browser tests run them with the table's values instead, and the table may only lower sizes, frame
counts, steps and window sizes: the graph a user queues is the graph the tests queue. ``problems`` says what is
wrong with an entry (a node id or an input the workflow does not have, an input that is not one of those numbers, a
value that does not lower the shipped one); ``set_arguments``, ``for_api`` and ``for_ui`` refuse such an entry
loudly, so a stale or structural override fails the test that uses it. ``tests/test_workflows.py`` checks the
whole table against the node declarations (ranges) in tier 1.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = Path(__file__).with_name("cpu_overrides.json")
API_DIR = ROOT / "workflows" / "api"
# The only inputs the table may change: sizes, frame counts, steps and FIFO's window.
ALLOWED_INPUTS = frozenset({"width", "height", "frames", "num_frames", "model_frames", "window_frames", "steps",
                            "length"})


def table() -> dict[str, dict[str, int]]:
    return json.loads(TABLE.read_text())


def shipped_prompt(name: str) -> dict:
    return json.loads((API_DIR / f"{name}.json").read_text())


def _whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def problems(name: str, prompt: dict, overrides: dict) -> list[str]:
    """What is wrong with ``overrides`` (one workflow's entry) for the shipped API ``prompt`` of ``name``."""
    found = []
    for key, value in overrides.items():
        where = f"{TABLE.name}, {name} {key!r}"
        node_id, dot, input_name = key.partition(".")
        if not dot or not node_id or not input_name:
            found.append(f"{where}: expected '<node id>.<input>'")
            continue
        if node_id not in prompt:
            found.append(f"{where}: the workflow has no node {node_id} (its node ids: {', '.join(prompt)})")
            continue
        node = prompt[node_id]
        described = f"node {node_id} ({node['class_type']})"
        if input_name not in node["inputs"]:
            found.append(f"{where}: {described} has no input {input_name!r} (its inputs: "
                         f"{', '.join(node['inputs'])})")
            continue
        if input_name not in ALLOWED_INPUTS:
            found.append(f"{where}: {input_name!r} is not a size, frame count, steps or window input; the table may "
                         f"only change {', '.join(sorted(ALLOWED_INPUTS))}")
            continue
        shipped = node["inputs"][input_name]
        if not _whole_number(shipped):
            found.append(f"{where}: {described}.{input_name} is {shipped!r} in the workflow, not a number")
            continue
        if not _whole_number(value) or value < 1:
            found.append(f"{where}: {value!r} is not a positive whole number")
        elif value >= shipped:
            found.append(f"{where}: {value} does not lower the shipped {shipped}")
    return found


def table_problems() -> list[str]:
    """Everything wrong with the table: entries for workflows that do not ship, and every entry's problems."""
    found = []
    for name, overrides in table().items():
        if not (API_DIR / f"{name}.json").is_file():
            found.append(f"{TABLE.name}: no shipped workflow {name!r} (workflows/api/{name}.json)")
            continue
        found += problems(name, shipped_prompt(name), overrides)
    return found


def _checked(name: str, prompt: dict) -> dict:
    overrides = table().get(name, {})
    found = problems(name, prompt, overrides)
    if found:
        raise AssertionError("the CPU override table does not fit the workflow:\n" + "\n".join(found))
    return overrides


def set_arguments(name: str, prompt: dict | None = None) -> list[str]:
    """The workflow's overrides as the client's ``--set NODE.INPUT=VALUE`` arguments, checked against ``prompt``
    (default: the shipped API file)."""
    prompt = shipped_prompt(name) if prompt is None else prompt
    return [f"{key}={value}" for key, value in _checked(name, prompt).items()]


def for_api(name: str, prompt: dict) -> dict:
    """A copy of the API ``prompt`` of workflow ``name`` with its CPU overrides applied."""
    prompt = copy.deepcopy(prompt)
    for key, value in _checked(name, prompt).items():
        node_id, _, input_name = key.partition(".")
        prompt[node_id]["inputs"][input_name] = value
    return prompt


def for_ui(name: str, graph: dict) -> dict:
    """A copy of the UI ``graph`` (workflows/<name>.json) with its CPU overrides in the widget values, checked
    against the shipped API file (the same graph, tier 1 checks)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import workflows
    graph = copy.deepcopy(graph)
    nodes = {str(node["id"]): node for node in graph["nodes"]}
    for key, value in _checked(name, shipped_prompt(name)).items():
        node_id, _, input_name = key.partition(".")
        node = nodes[node_id]
        slots = workflows.widget_slots(workflows.declaration(node["type"]))
        node["widgets_values"][slots.index((input_name, workflows.VALUE))] = value
    return graph
