"""The pack as ComfyUI loads it from custom_nodes/: its nodes as the server describes them, every shipped
API workflow run against the stand-in models through the pack's client (as shipped, but for the smaller sizes,
frame counts and steps of cpu_overrides.json), and the core-node table tools/workflows.py generates from, checked
against the real server."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cpu_overrides
from zeroshot_video import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, client

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
            for input_name, declared in inputs.items():
                if isinstance(declared, str):  # ComfyUI's own hidden kinds (PROMPT, UNIQUE_ID): served as declared
                    assert served["input"][section][input_name] == declared, f"{name}.{input_name}"
                    continue
                assert served["input"][section][input_name][1]["tooltip"] == declared[1]["tooltip"], \
                    f"{name}.{input_name}"


# (frames, width, height) of each shipped workflow's video as the CPU tier runs it (cpu_overrides.json applied):
# the sampler's frame count, plus the anchor frames that RepeatAndSlideSampler puts first (one still image, or the
# clip's frames for video prediction).
EXPECTED_VIDEO = {
    "t2v_basic": (16, 256, 256), "i4vgen_t2v": (16, 512, 512), "i4vgen_modelscope": (16, 256, 256),
    "i4vgen_image_to_video": (16, 512, 512), "ti2v_zero_basic": (16, 256, 256), "ti2v_zero_long": (128, 256, 256),
    "ti2v_zero_prediction": (16, 256, 256), "i4vgen_anchor_to_ti2v_zero_long": (128, 256, 256),
    "fifo_long": (256, 256, 256), "fifo_image_embed_seeded": (128, 512, 512), "fifo_image_to_video": (128, 512, 512),
    "fifo_multi_prompt": (192, 256, 256), "wan_t2v_basic": (81, 224, 128), "wan_ti2v_zero": (17, 224, 128),
    "wan_i4vgen": (81, 224, 128), "wan_fifo_long": (1001, 64, 64), "wan22_fifo_long": (1001, 64, 64),
    # the single-file twins
    "ti2v_zero_basic_checkpoint": (16, 256, 256), "i4vgen_t2v_checkpoint": (16, 512, 512),
    "wan_ti2v_zero_single_files": (17, 224, 128), "wan_fifo_long_single_files": (1001, 64, 64),
    # on ComfyUI's own loaders
    "native_wan_t2v_uni_pc": (33, 64, 64), "native_wan_ti2v_zero_lightx2v": (17, 64, 64),
    "native_wan22_fifo_long": (1001, 32, 32), "native_wan_i4vgen_to_ksampler": (9, 64, 64),
}
# What the pack's samplers report while they run (the client prints a node line, then its steps).
SAMPLERS = {"T2VSampler", "RepeatAndSlideSampler", "FIFOQueueWithImageEmbed", "RewardSelectAnchor", "NIVSDSOptimize"}


def video_shape(comfyui, video: Path) -> tuple[int, int, int]:
    """(frames, width, height) of a saved video, read by PyAV in ComfyUI's own environment (ComfyUI needs
    PyAV; the pack does not)."""
    count = ("import av, sys\nwith av.open(sys.argv[1]) as f:\n"
             "    frames = [(p.width, p.height) for p in f.decode(video=0)]\n"
             "print(len(frames), *frames[0])")
    done = subprocess.run([comfyui.python, "-c", count, str(video)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return tuple(int(n) for n in done.stdout.split())


def test_every_workflow_has_an_expected_length():
    assert sorted(EXPECTED_VIDEO) == [path.stem for path in API_FILES]


def test_cpu_override_table_fits_the_shipped_workflows():
    """Every entry names a shipped workflow, a node id and an input it has, and lowers a size, frame count, steps
    or window number (a stale or structural override fails here and in the runs below)."""
    assert cpu_overrides.table_problems() == []


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_shipped_workflow_runs_through_the_client(comfyui, path, tmp_path, capsys):
    """The API file as shipped, queued with ``python -m zeroshot_video submit`` and the CPU table's smaller
    sizes, frame counts and steps as ``--set`` values (nothing else changes): it succeeds, every sampler of the
    pack reports progress, and the downloaded video has the right length and size."""
    prompt = json.loads(path.read_text())
    code = client.submit(str(path), comfyui.url, cpu_overrides.set_arguments(path.stem, prompt), tmp_path,
                         timeout=1800)
    printed = capsys.readouterr()
    if code == client.UNREACHABLE:  # timed out: stop it, or it runs on behind the next tests
        comfyui.request("POST", "/queue", {"clear": True})
        comfyui.request("POST", "/interrupt", {})
    assert code == client.OK, printed.err + comfyui.log_tail()
    for node_id, node in prompt.items():
        if node["class_type"] in SAMPLERS:
            assert f"node {node_id} ({node['class_type']}" in printed.err and "  step 1/" in printed.err, printed.err
    saved = [Path(line) for line in printed.out.splitlines()]
    videos = [file for file in saved if file.suffix.lower() in VIDEO_SUFFIXES]
    assert len(videos) == 1 and videos[0].parent == tmp_path, f"expected one downloaded video: {saved}"
    assert videos[0].read_bytes()[4:8] == b"ftyp", f"{videos[0]} is not an MP4 file"
    assert video_shape(comfyui, videos[0]) == EXPECTED_VIDEO[path.stem]


LOADERS = ("LoadT2VBackbone", "LoadWanModelFiles", "LoadAnimateDiffCheckpoint")


@pytest.mark.parametrize("name", ["wan_t2v_basic", "wan_fifo_long_single_files"])
def test_a_workflow_saved_before_the_memory_inputs_still_runs(comfyui, name, tmp_path):
    """A workflow saved by an older release has none of the loaders' optional memory inputs (precision, offload,
    experts, vae_precision): ComfyUI passes none of them, and each takes its default."""
    prompt = cpu_overrides.for_api(name, json.loads((ROOT / "workflows" / "api" / f"{name}.json").read_text()))
    loaders = [node for node in prompt.values() if node["class_type"] in LOADERS]
    assert loaders
    for node in loaders:
        for key in ("precision", "offload", "experts", "vae_precision"):
            assert node["inputs"].pop(key, None) is not None, f"{name}: {key} was not in the shipped file"
    older = tmp_path / f"{name}_older.json"
    older.write_text(json.dumps(prompt))
    code = client.submit(str(older), comfyui.url, [], tmp_path, timeout=1800)
    assert code == client.OK, comfyui.log_tail()


def _normalized(spec: list | tuple, dynamic_options: bool):
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if kind == "COMBO":
        kind = options.get("options", [])
    if isinstance(kind, list) and dynamic_options:
        kind = "files in a folder"
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
            # the files of a folder: LoadImage's input/ or a model loader's folder (declared [])
            dynamic = bool(workflows.options_of(spec).get("image_upload")) or spec[0] == []
            assert _normalized(theirs[name], dynamic) == _normalized(spec, dynamic), f"{class_type}.{name}"
