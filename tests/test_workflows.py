"""Shipped workflows against the node declarations: what a user opens in the editor or posts to /prompt
must name existing nodes and inputs, link matching types and carry values the nodes accept, and must be
exactly what tools/workflows.py makes from its descriptions."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import workflow_specs  # noqa: E402
import workflows  # noqa: E402
from zeroshot_video.testing import standin_files_native as native_files  # noqa: E402
from zeroshot_video.testing import standin_files_wan as wan_files  # noqa: E402
from zeroshot_video.testing import standin_models as models  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "comfyui"))
import cpu_overrides  # noqa: E402

UI_FILES = sorted((ROOT / "workflows").glob("*.json"))
API_FILES = sorted((ROOT / "workflows" / "api").glob("*.json"))


def _declaration(class_type, where, errors):
    try:
        return workflows.declaration(class_type)
    except KeyError:
        errors.append(f"{where}: unknown node type {class_type!r}")
        return None


def check_value(where: str, spec: tuple, value) -> list[str]:
    kind, options = workflows.input_type(spec), workflows.options_of(spec)
    if kind == "COMBO":
        if options.get("image_upload"):  # a file in ComfyUI's input folder: tier-2 tests provide it
            return [] if isinstance(value, str) and value else [f"{where}: {value!r} is not a file name"]
        if spec[0] == []:  # a file of a model folder (a core loader): tier-2 tests write it under that name
            return [] if isinstance(value, str) and value.endswith(".safetensors") else [
                f"{where}: {value!r} is not a .safetensors file name"]
        choices = spec[0] if isinstance(spec[0], list) else options.get("options", [])
        return [] if value in choices else [f"{where}: {value!r} is not one of {choices}"]
    expected = {"INT": (int,), "FLOAT": (int, float), "STRING": (str,), "BOOLEAN": (bool,)}[kind]
    if not isinstance(value, expected) or (kind in ("INT", "FLOAT") and isinstance(value, bool)):
        return [f"{where}: {value!r} is not {kind}"]
    if kind in ("INT", "FLOAT"):
        if "min" in options and value < options["min"]:
            return [f"{where}: {value} is below the minimum {options['min']}"]
        if "max" in options and value > options["max"]:
            return [f"{where}: {value} is above the maximum {options['max']}"]
    return []


def _link_type_error(where, source_type, target_type):
    if source_type == target_type or "*" in (source_type, target_type):
        return []
    return [f"{where}: link type {source_type} does not match input type {target_type}"]


def check_api(prompt: dict) -> list[str]:
    """Problems of an API-format prompt, in the words a reviewer needs."""
    errors = []
    decls = {node_id: _declaration(node.get("class_type"), f"node {node_id}", errors)
             for node_id, node in prompt.items()}
    for node_id, node in prompt.items():
        decl = decls[node_id]
        if decl is None:
            continue
        where = f"node {node_id} ({node['class_type']})"
        if decl["frontend_only"]:
            errors.append(f"{where}: exists only in the editor, the server does not know it")
            continue
        declared = {name: (spec, optional) for name, spec, optional in workflows.declared_inputs(decl)}
        given = node.get("inputs", {})
        for name, value in given.items():
            if name in decl.get("frontend_inputs", {}):
                continue
            if name not in declared:
                errors.append(f"{where}: no input named {name!r}")
                continue
            spec = declared[name][0]
            if isinstance(value, list):
                source, slot = str(value[0]), value[1]
                if decls.get(source) is None or not 0 <= slot < len(decls[source]["output"]):
                    errors.append(f"{where}.{name}: links to a missing output {value}")
                    continue
                errors += _link_type_error(f"{where}.{name}", decls[source]["output"][slot][1], spec[0])
            elif workflows.is_widget(spec):
                errors += check_value(f"{where}.{name}", spec, value)
            else:
                errors.append(f"{where}.{name}: a {spec[0]} input needs a link, got {value!r}")
        errors += [f"{where}: required input {name!r} missing" for name, (spec, optional) in declared.items()
                   if not optional and name not in given]
    return errors


def check_ui(graph: dict) -> list[str]:
    """Problems of a UI-format (litegraph) workflow."""
    errors = []
    nodes = {node["id"]: node for node in graph["nodes"]}
    if len(nodes) != len(graph["nodes"]):
        errors.append("node ids are not unique")
    decls = {node_id: _declaration(node["type"], f"node {node_id}", errors) for node_id, node in nodes.items()}
    for node_id, node in nodes.items():
        decl = decls[node_id]
        if decl is None:
            continue
        where = f"node {node_id} ({node['type']})"
        declared = {name: (spec, optional) for name, spec, optional in workflows.declared_inputs(decl)}
        for entry in node.get("inputs", []):
            name = entry["name"]
            if name not in declared:
                errors.append(f"{where}: no input named {name!r}")
            elif workflows.is_widget(declared[name][0]) and entry.get("widget", {}).get("name") != name:
                errors.append(f"{where}: {name!r} is a widget: its input entry needs widget {{'name': {name!r}}}")
            elif entry["type"] != workflows.input_type(declared[name][0]):
                errors.append(f"{where}.{name}: socket type {entry['type']} differs from the declared "
                              f"{workflows.input_type(declared[name][0])}")
        linked = {entry["name"] for entry in node.get("inputs", []) if entry.get("link") is not None}
        errors += [f"{where}: required input {name!r} is not linked" for name, (spec, optional) in declared.items()
                   if not optional and not workflows.is_widget(spec) and name not in linked]
        outputs = [(out["name"], out["type"]) for out in node.get("outputs", [])]
        if [t for _, t in outputs] != [t for _, t in decl["output"]]:
            errors.append(f"{where}: outputs {outputs} differ from the declared {decl['output']}")
        slots, values = workflows.widget_slots(decl), node.get("widgets_values", [])
        if len(values) != len(slots):
            errors.append(f"{where}: {len(values)} widget values for {len(slots)} widgets {slots}")
            continue
        for (name, role), value in zip(slots, values):
            if role == workflows.VALUE:
                errors += check_value(f"{where}.{name}", declared[name][0], value)
            elif role == workflows.CONTROL and value not in workflows.CONTROL_VALUES:
                errors.append(f"{where}.{name}: control value {value!r} not in {workflows.CONTROL_VALUES}")
            elif role == workflows.UPLOAD and value != workflows.UPLOAD_VALUE:
                errors.append(f"{where}.{name}: upload widget value {value!r}")
    for link_id, source, out_slot, target, in_slot, link_type in graph["links"]:
        where = f"link {link_id}"
        if decls.get(source) is None or decls.get(target) is None:
            errors.append(f"{where}: joins missing nodes {source} -> {target}")
            continue
        inputs, outputs = nodes[target].get("inputs", []), nodes[source].get("outputs", [])
        if not (0 <= in_slot < len(inputs) and inputs[in_slot].get("link") == link_id):
            errors.append(f"{where}: node {target} input {in_slot} does not point back to it")
            continue
        if not (0 <= out_slot < len(decls[source]["output"]) and link_id in (outputs[out_slot].get("links") or [])):
            errors.append(f"{where}: node {source} output {out_slot} does not list it")
            continue
        source_type = decls[source]["output"][out_slot][1]
        declared = dict((n, s) for n, s, _ in workflows.declared_inputs(decls[target]))
        name = inputs[in_slot]["name"]
        if name in declared:
            errors += _link_type_error(f"{where} to node {target}.{name}", source_type, declared[name][0])
        if link_type != source_type:
            errors.append(f"{where}: carries type {link_type}, its source gives {source_type}")
    if graph["last_node_id"] < max(nodes) or graph["last_link_id"] < max((l[0] for l in graph["links"]), default=0):
        errors.append("last_node_id / last_link_id lower than the ids in use")
    return errors


def test_committed_files_are_what_the_descriptions_make():
    expected = workflows.expected_files()
    assert len(expected) == 2 * len(workflow_specs.WORKFLOWS)
    assert workflows.stale_files(expected) == []


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.name)
def test_api_workflow_is_valid(path):
    assert check_api(json.loads(path.read_text())) == []


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_ui_workflow_is_valid(path):
    graph = json.loads(path.read_text())
    assert check_ui(graph) == []
    assert graph["version"] == 0.4
    assert any(node["type"] == "Note" and node["widgets_values"][0] for node in graph["nodes"])


def test_every_workflow_ships_in_both_formats():
    assert [p.name for p in UI_FILES] == [p.name for p in API_FILES] != []


def test_ui_and_api_files_describe_the_same_graph():
    """The API prompt is the UI graph minus editor-only nodes, with the same links and widget values (a widget
    fed by a link keeps a value in the UI file that the API prompt replaces by the link)."""
    for ui_path in UI_FILES:
        graph = json.loads(ui_path.read_text())
        prompt = json.loads((ui_path.parent / "api" / ui_path.name).read_text())
        served = [n for n in graph["nodes"] if not workflows.declaration(n["type"])["frontend_only"]]
        assert sorted(str(n["id"]) for n in served) == sorted(prompt)
        for node in served:
            inputs = prompt[str(node["id"])]["inputs"]
            for link_id, source, out_slot, target, in_slot, _ in graph["links"]:
                if target == node["id"]:
                    assert inputs[node["inputs"][in_slot]["name"]] == [str(source), out_slot]
            slots = workflows.widget_slots(workflows.declaration(node["type"]))
            linked = {entry["name"] for entry in node["inputs"] if entry["link"] is not None}
            frontend_inputs = workflows.declaration(node["type"]).get("frontend_inputs", {})
            assert {name: value for (name, role), value in zip(slots, node["widgets_values"])
                    if role == workflows.VALUE and name not in linked} == \
                {k: v for k, v in inputs.items() if not isinstance(v, list) and k not in frontend_inputs}


def test_widget_order_follows_the_frontend_rules():
    """Facts read off the ComfyUI frontend: seeds and control_after_generate INTs carry a second value,
    image_upload combos an upload value, forceInput makes a socket; optional widgets follow required ones."""
    decl = {"input": {
        "required": {"model": ("MODEL", {}), "seed": ("INT", {}), "steps": ("INT", {"control_after_generate": True}),
                     "cfg": ("FLOAT", {}), "shift": ("INT", {"forceInput": True}),
                     "image": ([], {"image_upload": True})},
        "optional": {"mode": (["a", "b"], {}), "text": ("STRING", {"multiline": True})}}, "output": []}
    assert workflows.widget_slots(decl) == [
        ("seed", "value"), ("seed", "control_after_generate"), ("steps", "value"),
        ("steps", "control_after_generate"), ("cfg", "value"), ("image", "value"), ("image", "upload"),
        ("mode", "value"), ("text", "value")]


def test_every_loaded_image_ships_with_the_pack():
    """Load Image names a file of workflows/inputs/ (the tier-2 server gets a copy; users copy or upload)."""
    shipped = {p.name for p in (ROOT / "workflows" / "inputs").iterdir()}
    loaded = {node["inputs"]["image"] for path in API_FILES for node in json.loads(path.read_text()).values()
              if node["class_type"] == "LoadImage"}
    assert loaded and loaded <= shipped, loaded - shipped
    for name in shipped:
        assert (ROOT / "workflows" / "inputs" / name).stat().st_size <= 50_000, name


LINKED_WIDGET = {"name": "linked_widget", "note": "an INT output into an INT widget", "columns": [
    [{"id": 1, "type": "LoadImage", "inputs": {"image": "a.png"}},
     {"id": 2, "type": "LoadT2VBackbone", "inputs": {"model": models.MODELSCOPE}},
     {"id": 3, "type": "T2VTextEncode", "inputs": {"backbone": (2, 0), "prompt": "a cat"}},
     {"id": 4, "type": "LoadRewardModel", "inputs": {"model": models.REWARD_MODEL}}],
    [{"id": 5, "type": "RewardSelectAnchor",
      "inputs": {"backbone": (2, 0), "conditioning": (3, 0), "reward_model": (4, 0), "candidates": (1, 0)}}],
    [{"id": 6, "type": "ImageFromBatch", "inputs": {"image": (5, 1), "batch_index": (5, 3), "length": 2}}],
]}


def test_a_widget_fed_by_a_link_is_saved_as_the_frontend_saves_it():
    """As ComfyUI's frontend writes it: an input entry naming the widget, after the plain sockets; the widget
    keeps its value slot (its default here); the API prompt carries the link instead of a value."""
    graph, prompt = workflows.build(LINKED_WIDGET)
    node = next(n for n in graph["nodes"] if n["id"] == 6)
    link = next(link for link in graph["links"] if link[3] == 6 and link[1] == 5 and link[2] == 3)
    assert node["inputs"] == [{"name": "image", "type": "IMAGE", "link": node["inputs"][0]["link"]},
                              {"name": "batch_index", "type": "INT", "widget": {"name": "batch_index"},
                               "link": link[0]}]
    assert link[4] == 1 and link[5] == "INT"
    assert node["widgets_values"] == [0, 2]
    assert prompt["6"]["inputs"] == {"image": ["5", 1], "batch_index": ["5", 3], "length": 2}
    assert check_ui(graph) == [] and check_api(prompt) == []
    del node["inputs"][1]["widget"]
    assert any("'batch_index' is a widget" in e for e in check_ui(graph))


def _t2v_basic():
    return workflows.build(workflow_specs.T2V_BASIC)


def test_checker_catches_a_wrong_link_type():
    graph, prompt = _t2v_basic()
    prompt["4"]["inputs"]["latent"] = ["1", 0]  # a T2V_BACKBONE output into a LATENT input
    assert any("link type T2V_BACKBONE does not match input type LATENT" in e for e in check_api(prompt))

    wrong = next(link for link in graph["links"] if link[3] == 4 and link[4] == 1)
    backbone_out = next(n for n in graph["nodes"] if n["id"] == 1)["outputs"][0]
    sampler_out = next(n for n in graph["nodes"] if n["id"] == 3)["outputs"][0]
    sampler_out["links"].remove(wrong[0])
    backbone_out["links"].append(wrong[0])
    wrong[1:3], wrong[5] = [1, 0], "T2V_BACKBONE"
    assert any("link type T2V_BACKBONE does not match input type LATENT" in e for e in check_ui(graph))


def test_checker_catches_an_unknown_input_name():
    graph, prompt = _t2v_basic()
    prompt["3"]["inputs"]["framez"] = 16
    assert any("no input named 'framez'" in e for e in check_api(prompt))
    sampler = next(n for n in graph["nodes"] if n["id"] == 3)
    sampler["inputs"].append({"name": "framez", "type": "INT", "link": None})
    assert any("no input named 'framez'" in e for e in check_ui(graph))


@pytest.mark.parametrize("node_id, name, value, message", [
    ("1", "model", "no-such-model", "is not one of"),
    ("3", "steps", 0, "below the minimum"),
    ("3", "guidance", 51.0, "above the maximum"),
    ("3", "frames", "16", "is not INT"),
    ("6", "format", "avi", "is not one of"),
])
def test_checker_catches_bad_widget_values(node_id, name, value, message):
    graph, prompt = _t2v_basic()
    prompt[node_id]["inputs"][name] = value
    assert any(message in e for e in check_api(prompt))
    node = next(n for n in graph["nodes"] if str(n["id"]) == node_id)
    slots = workflows.widget_slots(workflows.declaration(node["type"]))
    node["widgets_values"][slots.index((name, workflows.VALUE))] = value
    assert any(message in e for e in check_ui(graph))


def test_checker_catches_structural_mistakes():
    graph, prompt = _t2v_basic()
    del prompt["3"]["inputs"]["conditioning"]
    prompt["5"]["class_type"] = "CreateVideoo"
    errors = check_api(prompt)
    assert any("required input 'conditioning' missing" in e for e in errors)
    assert any("unknown node type 'CreateVideoo'" in e for e in errors)
    sampler = next(n for n in graph["nodes"] if n["id"] == 3)
    sampler["widgets_values"][7] = "sometimes"  # the seed's control value
    assert any("control value 'sometimes'" in e for e in check_ui(graph))
    count = len(sampler["widgets_values"])
    sampler["widgets_values"].pop()
    assert any(f"{count - 1} widget values for {count} widgets" in e for e in check_ui(graph))


def test_generator_refuses_bad_descriptions():
    spec = copy.deepcopy(workflow_specs.T2V_BASIC)
    spec["columns"][2][0]["inputs"]["framez"] = 16
    with pytest.raises(ValueError, match="framez"):
        workflows.build(spec)
    spec = copy.deepcopy(workflow_specs.T2V_BASIC)
    del spec["columns"][2][0]["inputs"]["conditioning"]
    with pytest.raises(ValueError, match="conditioning"):
        workflows.build(spec)
    spec = copy.deepcopy(workflow_specs.T2V_BASIC)
    spec["columns"][2][0]["inputs"]["steps"] = (1, 0)
    with pytest.raises(ValueError, match="steps takes a widget value or a link of type INT, not T2V_BACKBONE"):
        workflows.build(spec)
    spec = copy.deepcopy(workflow_specs.T2V_BASIC)
    spec["columns"][3][0]["inputs"]["latent"] = (2, 0)
    with pytest.raises(ValueError, match="latent takes a link of type LATENT, not T2V_CONDITIONING"):
        workflows.build(spec)
    spec = copy.deepcopy(workflow_specs.T2V_BASIC)
    spec["columns"][2][0]["inputs"]["conditioning"] = "a prompt"
    with pytest.raises(ValueError, match="conditioning takes a link"):
        workflows.build(spec)


# --- Shipped at the models' own sizes; the CPU tiers' smaller numbers in one checked table -----------------------

# (long side, short side) each model was trained at, by loader and model: what a shipped workflow must reach.
NATIVE_SIZE = {
    ("LoadT2VBackbone", models.MODELSCOPE): (256, 256), ("LoadT2VBackbone", models.ZEROSCOPE): (576, 320),
    ("LoadT2VBackbone", models.SD15): (512, 512), ("LoadAnimateDiffCheckpoint", None): (512, 512),
    ("LoadT2VBackbone", models.WAN21): (832, 480), ("LoadT2VBackbone", models.WAN22_A14B): (832, 480),
    ("LoadT2VBackbone", models.WAN22_TI2V): (1280, 704),
    ("LoadWanModelFiles", wan_files.WAN21_FILE): (832, 480),
    ("LoadWanModelFiles", wan_files.A14B_HIGH_FILE): (832, 480),
    ("LoadWanModelFiles", wan_files.TI2V_FILE): (1280, 704),
    ("UNETLoader", wan_files.WAN21_FILE): (832, 480), ("UNETLoader", native_files.WAN21_14B_RELEASED): (832, 480),
    ("UNETLoader", wan_files.A14B_HIGH_FILE): (832, 480),
}
WAN_MODELS = {models.WAN21, models.WAN22_A14B, models.WAN22_TI2V}
SIZED = ("T2VSampler", "RewardSelectAnchor", "EncodeAnchorImage", "ImageScale", "EmptyHunyuanLatentVideo")
# Plain sampling's frames: Wan's 81 on the pack's loaders; ComfyUI's Wan 2.1 template's 33 on its own loaders.
WAN_FRAMES = {"UNETLoader": 33}
OVERRIDDEN = sorted(cpu_overrides.table())


def _model(prompt: dict) -> tuple[str, str | None]:
    """(loader class, model) of a workflow's one backbone loader: one of the pack's, else ComfyUI's UNETLoader (the
    first: A14B's high-noise expert)."""
    loaders = [node for node in prompt.values() if node["class_type"] in
               ("LoadT2VBackbone", "LoadAnimateDiffCheckpoint", "LoadWanModelFiles")]
    if not loaders:
        loaders = [node for node in prompt.values() if node["class_type"] == "UNETLoader"][:1]
        return "UNETLoader", loaders[0]["inputs"]["unet_name"]
    assert len(loaders) == 1, loaders
    kind = loaders[0]["class_type"]
    return kind, None if kind == "LoadAnimateDiffCheckpoint" else loaders[0]["inputs"]["model"]


def _is_wan(prompt: dict) -> bool:
    kind, model = _model(prompt)
    return kind in ("LoadWanModelFiles", "UNETLoader") or model in WAN_MODELS


def _clip_frames(prompt: dict, node_id: str) -> int:
    """The video frames of the latent node ``node_id`` makes: a sampler's ``frames``, or the length of the empty
    latent a KSampler chain starts from."""
    inputs = prompt[node_id]["inputs"]
    if "frames" in inputs or "length" in inputs:
        return inputs.get("frames", inputs.get("length"))
    return _clip_frames(prompt, inputs["latent_image"][0])


def _fifo_mismatches(prompt: dict) -> list[str]:
    """A FIFO queue's window and its base clip's frames must agree (with the CPU overrides too)."""
    found = []
    for node_id, node in prompt.items():
        if node["class_type"] == "FIFOQueueWithImageEmbed":
            frames = _clip_frames(prompt, node["inputs"]["base_clip"][0])
            if frames != node["inputs"]["window_frames"]:
                found.append(f"node {node_id}: window_frames {node['inputs']['window_frames']}, base clip frames "
                             f"{frames}")
    return found


def test_cpu_override_table_names_shipped_workflows_nodes_and_inputs():
    assert OVERRIDDEN
    assert cpu_overrides.table_problems() == []


@pytest.mark.parametrize("name", OVERRIDDEN)
def test_cpu_overrides_are_values_the_nodes_accept(name):
    """With its overrides a workflow is still a valid prompt (each value within its node's declared range and step)
    and a valid UI graph holding the same values; only allowed inputs change, each to a lower number."""
    shipped = cpu_overrides.shipped_prompt(name)
    overridden = cpu_overrides.for_api(name, shipped)
    assert check_api(overridden) == []
    assert _fifo_mismatches(overridden) == []
    changed = {f"{node_id}.{key}" for node_id, node in shipped.items() for key, value in node["inputs"].items()
               if overridden[node_id]["inputs"][key] != value}
    assert changed == set(cpu_overrides.table()[name])
    for key, value in cpu_overrides.table()[name].items():
        node_id, _, input_name = key.partition(".")
        node = overridden[node_id]
        declared = {n: spec for n, spec, _ in workflows.declared_inputs(workflows.declaration(node["class_type"]))}
        options = workflows.options_of(declared[input_name])
        step, start = options.get("step", 1), options.get("min", 0)
        assert (value - start) % step == 0, f"{key}: {value} is not the minimum {start} plus steps of {step}"
        assert input_name in cpu_overrides.ALLOWED_INPUTS and value < shipped[node_id]["inputs"][input_name]

    graph = cpu_overrides.for_ui(name, json.loads((ROOT / "workflows" / f"{name}.json").read_text()))
    assert check_ui(graph) == []
    for key, value in cpu_overrides.table()[name].items():
        node_id, _, input_name = key.partition(".")
        node = next(n for n in graph["nodes"] if str(n["id"]) == node_id)
        slots = workflows.widget_slots(workflows.declaration(node["type"]))
        assert node["widgets_values"][slots.index((input_name, workflows.VALUE))] == value


@pytest.mark.parametrize("entry, message", [
    ({"width": 64}, "expected '<node id>.<input>'"),
    ({"99.width": 64}, "the workflow has no node 99"),
    ({"3.widht": 64}, "node 3 (T2VSampler) has no input 'widht'"),
    ({"3.guidance": 1.0}, "'guidance' is not a size, frame count, steps or window input"),
    ({"1.model": "other"}, "'model' is not a size, frame count, steps or window input"),
    ({"3.backbone": ["1", 0]}, "'backbone' is not a size"),
    ({"3.width": 1024}, "1024 does not lower the shipped 256"),
    ({"3.steps": 25}, "25 does not lower the shipped 25"),
    ({"3.width": 64.0}, "64.0 is not a positive whole number"),
    ({"3.frames": True}, "True is not a positive whole number"),
    ({"3.frames": 0}, "0 is not a positive whole number"),
])
def test_override_checker_refuses_stale_or_structural_entries(monkeypatch, entry, message):
    prompt = cpu_overrides.shipped_prompt("t2v_basic")
    found = cpu_overrides.problems("t2v_basic", prompt, entry)
    assert len(found) == 1 and message in found[0], found
    monkeypatch.setattr(cpu_overrides, "table", lambda: {"t2v_basic": entry})
    assert cpu_overrides.table_problems() == found
    for use in (cpu_overrides.set_arguments, cpu_overrides.for_api):
        with pytest.raises(AssertionError, match="does not fit the workflow"):
            use("t2v_basic", prompt)
    with pytest.raises(AssertionError, match="does not fit the workflow"):
        cpu_overrides.for_ui("t2v_basic", json.loads((ROOT / "workflows" / "t2v_basic.json").read_text()))


def test_override_checker_refuses_a_linked_input_and_an_unknown_workflow(monkeypatch):
    prompt = cpu_overrides.shipped_prompt("t2v_basic")
    prompt["3"]["inputs"]["steps"] = ["1", 0]
    assert "node 3 (T2VSampler).steps is ['1', 0] in the workflow, not a number" in \
        cpu_overrides.problems("t2v_basic", prompt, {"3.steps": 2})[0]
    monkeypatch.setattr(cpu_overrides, "table", lambda: {"no_such_workflow": {"3.steps": 2}})
    assert cpu_overrides.table_problems() == [
        "cpu_overrides.json: no shipped workflow 'no_such_workflow' (workflows/api/no_such_workflow.json)"]


def test_overrides_become_the_clients_set_arguments():
    prompt = cpu_overrides.shipped_prompt("wan_fifo_long")
    arguments = cpu_overrides.set_arguments("wan_fifo_long")
    assert arguments == [f"{key}={value}" for key, value in cpu_overrides.table()["wan_fifo_long"].items()]
    from zeroshot_video import client
    assert client.apply_overrides(prompt, arguments) == cpu_overrides.for_api("wan_fifo_long", prompt)
    assert cpu_overrides.set_arguments("t2v_basic") == []


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_shipped_workflow_is_at_its_models_own_size(path):
    """What a user queues is what the model was trained to make: every size reaches the model's own (either
    orientation); Wan: 4k + 1 frames, 81 (FIFO: a 77-frame window, 20 latent frames, even for lookahead), plain
    sampling at 20 steps or more; and every Wan workflow has its smaller CPU numbers in the override table."""
    prompt = json.loads(path.read_text())
    kind, model = _model(prompt)
    assert (kind, model) in NATIVE_SIZE, f"{path.stem}: add the native size of {kind} {model} to NATIVE_SIZE"
    long_side, short_side = NATIVE_SIZE[kind, model]
    sized = [(node_id, node) for node_id, node in prompt.items() if node["class_type"] in SIZED]
    assert sized
    for node_id, node in sized:
        width, height = node["inputs"]["width"], node["inputs"]["height"]
        if node["class_type"] == "EncodeAnchorImage" and width == height == 0:  # 0: the backbone's own size
            continue
        assert max(width, height) >= long_side and min(width, height) >= short_side, \
            f"node {node_id} ({node['class_type']}): {width}×{height} below {long_side}×{short_side}"
    assert _fifo_mismatches(prompt) == []
    if not _is_wan(prompt):
        return
    assert path.stem in cpu_overrides.table(), f"{path.stem}: a Wan workflow at its real size needs CPU overrides"
    fifo_clips = {node["inputs"]["base_clip"][0] for node in prompt.values()
                  if node["class_type"] == "FIFOQueueWithImageEmbed"}
    for node_id, node in prompt.items():
        inputs, where = node["inputs"], f"node {node_id} ({node['class_type']})"
        if node["class_type"] == "FIFOQueueWithImageEmbed":
            window = inputs["window_frames"]
            latent_window = (window - 1) // 4 + 1
            assert window == 77 and latent_window % 2 == 0, f"{where}: window_frames {window}"
            clip = prompt[inputs["base_clip"][0]]["inputs"]
            levels = latent_window * inputs["partitions"] // inputs.get("frames_per_level", 1)
            assert clip.get("grid", "fifo") == "fifo" and clip["steps"] == levels, where
        elif node["class_type"] in ("T2VSampler", "RewardSelectAnchor") and node_id not in fifo_clips:
            assert inputs["frames"] == WAN_FRAMES.get(kind, 81) and inputs["steps"] >= 20, \
                f"{where}: {inputs['frames']} frames, {inputs['steps']} steps"
        elif node["class_type"] == "RepeatAndSlideSampler":
            assert inputs["num_frames"] % 4 == 0 and inputs["num_frames"] + 1 >= 81, where
            assert inputs["model_frames"] % 4 == 1, f"{where}: model_frames {inputs['model_frames']} is not 4k + 1"
