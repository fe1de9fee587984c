"""The pack as ComfyUI loads it from custom_nodes/: its nodes as the server describes them, every shipped
API workflow run unchanged against the stand-in models, and the core-node table tools/workflows.py
generates from, checked against the real server."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from zeroshot_video import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

ROOT = Path(__file__).resolve().parents[2]
API_FILES = sorted((ROOT / "workflows" / "api").glob("*.json"))
sys.path.insert(0, str(ROOT / "tools"))
import workflows  # noqa: E402

pytestmark = pytest.mark.comfyui

VIDEO_SUFFIXES = {".mp4", ".webm", ".webp", ".gif", ".mov", ".mkv"}
# Option keys that decide what the frontend builds and what the server accepts.
COMPARED_OPTIONS = ("default", "min", "max", "step", "control_after_generate", "image_upload", "forceInput",
                    "multiline")


@pytest.fixture(scope="module")
def object_info(comfyui):
    status, info = comfyui.get("/object_info")
    assert status == 200
    return info


def test_object_info_lists_every_node_with_our_tooltips(object_info):
    for name, cls in NODE_CLASS_MAPPINGS.items():
        assert name in object_info, f"{name} missing from /object_info"
        served = object_info[name]
        assert served["description"] == cls.DESCRIPTION
        assert served["display_name"] == NODE_DISPLAY_NAME_MAPPINGS[name]
        assert served["output"] == list(cls.RETURN_TYPES)
        assert served["output_tooltips"] == list(cls.OUTPUT_TOOLTIPS)
        for section, inputs in cls.INPUT_TYPES().items():
            assert served["input_order"][section] == list(inputs), f"{name} {section} order"
            for input_name, (_, options) in inputs.items():
                assert served["input"][section][input_name][1]["tooltip"] == options["tooltip"], \
                    f"{name}.{input_name}"


def _served_files(comfyui, entry: dict) -> list[Path]:
    files = []
    for node_output in entry["outputs"].values():
        for items in node_output.values():
            for item in items:
                if isinstance(item, dict) and item.get("type") == "output":
                    files.append(comfyui.base / "output" / item.get("subfolder", "") / item["filename"])
    return files


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_shipped_workflow_runs_unchanged(comfyui, path):
    entry = comfyui.run_prompt(json.loads(path.read_text()))
    errors = [data for kind, data in entry["status"].get("messages", []) if kind == "execution_error"]
    assert entry["status"]["status_str"] == "success", (
        "\n".join(f"{e.get('node_type')}: {e.get('exception_message')}\n{''.join(e.get('traceback', []))}"
                  for e in errors) or comfyui.log_tail())
    videos = [f for f in _served_files(comfyui, entry) if f.suffix.lower() in VIDEO_SUFFIXES]
    assert videos, f"no video among the outputs {entry['outputs']}"
    for video in videos:
        assert video.is_file() and video.stat().st_size > 1000, video
        if video.suffix.lower() in (".mp4", ".mov"):
            assert video.read_bytes()[4:8] == b"ftyp", f"{video} is not an MP4/QuickTime file"


def _normalized(spec: list | tuple, dynamic_options: bool):
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if kind == "COMBO":
        kind = options.get("options", [])
    if isinstance(kind, list) and dynamic_options:
        kind = "files in the input folder"
    return kind, {key: options[key] for key in COMPARED_OPTIONS if key in options}


@pytest.mark.parametrize("class_type", sorted(workflows.CORE_NODES))
def test_core_node_table_matches_the_server(object_info, class_type):
    table = workflows.CORE_NODES[class_type]
    if table.get("frontend_only"):
        assert class_type not in object_info, f"{class_type} is a server node: the table must say so"
        return
    served = object_info[class_type]
    assert served["display_name"] == table["display_name"]
    assert served["output"] == [kind for _, kind in table["output"]]
    assert served["output_name"] == [name for name, _ in table["output"]]
    for section in ("required", "optional"):
        ours, theirs = table["input"].get(section, {}), served["input"].get(section, {})
        assert served.get("input_order", {}).get(section, []) == list(ours), f"{class_type} {section} inputs"
        for name, spec in ours.items():
            dynamic = bool(workflows.options_of(spec).get("image_upload"))
            assert _normalized(theirs[name], dynamic) == _normalized(spec, dynamic), f"{class_type}.{name}"
