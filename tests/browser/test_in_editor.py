"""The shipped workflows in ComfyUI's real frontend (the editor a user opens them in), and the live animated
preview of js/zeroshot_video_preview.js during a real run.

Every UI workflow is loaded with the page's own ``app.loadGraphData``; no node type may be missing and every
widget must hold the value the file gives it; the frontend's own ``app.graphToPrompt`` must produce the
committed API file (seed values aside); queued from the page, it must run to success (with the smaller sizes,
frame counts and steps of tests/comfyui/cpu_overrides.json in its widgets, as the tier-2 runs use).
"""
from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import pytest

import cpu_overrides  # tests/comfyui, on the path through conftest.py
from zeroshot_video import NODE_CLASS_MAPPINGS

ROOT = Path(__file__).resolve().parents[2]
UI_FILES = sorted((ROOT / "workflows").glob("*.json"))
sys.path.insert(0, str(ROOT / "tools"))
import workflows  # noqa: E402

pytestmark = pytest.mark.comfyui

# Samplers whose new frames feed the live preview (nodes/comfy_glue.py, Progress.frame), in the order the
# preview test prefers them, and the size of its run.
STREAMING_SAMPLERS = ("RepeatAndSlideSampler", "FIFOQueueWithImageEmbed")
PREVIEW_FRAMES, PREVIEW_STEPS = 6, 2
RUN_TIMEOUT = 1800  # seconds for one workflow to run on a CPU with the stand-ins


def _without_seeds(prompt: dict) -> dict:
    return {node_id: {**node, "inputs": {name: ("<seed>" if name in workflows.SEED_NAMES else value)
                                         for name, value in node["inputs"].items()}}
            for node_id, node in prompt.items()}


@pytest.fixture(scope="module")
def editor_loads(browser, comfyui):
    """Every UI workflow as the editor holds it after opening it, and the prompt it converts it to."""
    request = {"url": comfyui.url, "queue": False,
               "workflows": [{"name": p.stem, "graph": json.loads(p.read_text())} for p in UI_FILES]}
    result, logged = browser.run("workflows", request)
    return {run["name"]: run for run in result["workflows"]}, logged


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_workflow_opens_with_every_node_and_value(editor_loads, path):
    loads, logged = editor_loads
    run, graph = loads[path.stem], json.loads(path.read_text())
    assert not run["missing"] and not run["unregistered"], (run["missing"], run["unregistered"], logged)
    for node in graph["nodes"]:
        assert run["widgets"][str(node["id"])] == node.get("widgets_values", []), \
            f"node {node['id']} ({node['type']}): the editor holds other widget values than the file"
    assert not run["invalid_combos"], run["invalid_combos"]


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_frontend_conversion_matches_the_api_file(editor_loads, path):
    committed = json.loads((ROOT / "workflows" / "api" / path.name).read_text())
    assert _without_seeds(editor_loads[0][path.stem]["prompt"]) == _without_seeds(committed)


# One browser per workflow, so that -k can pick workflows: at full size on a CPU some run for an hour.
@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_workflow_queued_from_the_editor_succeeds(browser, comfyui, path):
    graph = cpu_overrides.for_ui(path.stem, json.loads(path.read_text()))
    request = {"url": comfyui.url, "queue": True, "timeout_s": RUN_TIMEOUT,
               "workflows": [{"name": path.stem, "graph": graph}]}
    result, logged = browser.run("workflows", request, timeout=RUN_TIMEOUT + 300)
    run, = result["workflows"]
    assert not run["node_errors"], (run["node_errors"], logged)
    assert run["status"] == "execution_success", f"{run['node_type']}: {run['message']}\n{comfyui.log_tail()}"


def _streams(class_type: str) -> bool:
    cls = NODE_CLASS_MAPPINGS[class_type]
    return ".frame(" in inspect.getsource(getattr(cls, cls.FUNCTION))


def _widget_values(node: dict) -> dict:
    slots = workflows.widget_slots(workflows.declaration(node["type"]))
    return {name: value for (name, role), value in zip(slots, node["widgets_values"]) if role == workflows.VALUE}


def _preview_graph() -> tuple[dict, dict]:
    """(UI graph, its streaming sampler node): of the shipped workflows, the one whose sampler makes the
    fewest frames (TI2V-Zero first: its inputs cost little to make), with its CPU overrides."""
    shipped = [(STREAMING_SAMPLERS.index(node["type"]), _widget_values(node)["num_frames"], path.name, graph, node)
               for path in UI_FILES for graph in [cpu_overrides.for_ui(path.stem, json.loads(path.read_text()))]
               for node in graph["nodes"]
               if node["type"] in STREAMING_SAMPLERS and _streams(node["type"])]
    if not shipped:
        pytest.skip(f"no shipped workflow has a sampler that streams frames to the preview (one of "
                    f"{', '.join(STREAMING_SAMPLERS)} calling Progress.frame)")
    return min(shipped, key=lambda entry: entry[:3])[3:]


def test_live_preview_grows_during_the_run_and_holds_every_frame(browser, comfyui):
    graph, node = _preview_graph()
    values = _widget_values(node)
    # Another seed than the file's (the same prompt may have run on this server already and be cached), and
    # few frames and steps: the preview is under test here, the workflow's own run is tested above.
    widgets = {"seed": values["seed"] + 1, "num_frames": min(values["num_frames"], PREVIEW_FRAMES),
               **({"steps": min(values["steps"], PREVIEW_STEPS)} if "steps" in values else {})}
    result, logged = browser.run("preview", {"url": comfyui.url, "graph": graph, "node": node["id"],
                                             "widgets": widgets, "timeout_s": RUN_TIMEOUT},
                                   timeout=RUN_TIMEOUT + 300)
    assert result["status"] == "execution_success", f"{result}\n{logged}\n{comfyui.log_tail()}"
    during = [s for s in result["samples"] if not s["finished"] and s["frames"]]
    counts = [s["frames"] for s in during]
    assert counts == sorted(counts), counts
    assert len(set(counts)) >= 2, f"the preview's frame count did not grow during the run: {result['samples']}"
    assert any(s["shown"] and s["live"] for s in during), "no live preview was shown on the node during the run"
    after = result["after"]
    assert after["frames"] == widgets["num_frames"] == after["expected"], after
    assert len(set(after["indices"])) == widgets["num_frames"] and after["indices"] == sorted(after["indices"]), after
    assert after["shown"] and after["live"] is False, after
