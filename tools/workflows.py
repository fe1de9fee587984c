"""Example workflows, generated: each description in ``workflow_specs.py`` becomes both the UI graph the
ComfyUI frontend opens (``workflows/<name>.json``, listed in its template browser) and the API prompt
for ``POST /prompt`` (``workflows/api/<name>.json``). One source keeps the two from drifting apart, and
widget order comes from the node declarations, so a changed node shows up as a stale file.

    python tools/workflows.py          # rewrite every file
    python tools/workflows.py --check  # exit 1 when a committed file differs from what this makes
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
import uuid
from pathlib import Path

import workflow_specs

ROOT = Path(__file__).resolve().parents[1]
UI_DIR = ROOT / "workflows"
API_DIR = UI_DIR / "api"

# ComfyUI core nodes the examples use, declared as ComfyUI 0.3.64 serves them on /object_info (tier-2
# tests compare). LoadImage's options are the files in ComfyUI's input folder, hence empty here. Note is
# drawn by the frontend alone: it never reaches the server, so it is left out of API prompts. PreviewAny's text
# box is added by the frontend and never saved (serialize false: no widgets_values), yet the frontend still
# sends its value with the prompt it queues ("" until the node has run; the server ignores it):
# ``frontend_inputs`` lists such values, so API prompts equal what the editor queues.
KSAMPLER_SAMPLERS = ["euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
                     "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
                     "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
                     "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde",
                     "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis", "res_multistep",
                     "res_multistep_cfg_pp", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp",
                     "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3", "sa_solver",
                     "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2"]
KSAMPLER_SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
                       "linear_quadratic", "kl_optimal"]
CORE_NODES = {
    "LoadImage": {
        "display_name": "Load Image",
        "input": {"required": {"image": ([], {"image_upload": True})}},
        "output": [("IMAGE", "IMAGE"), ("MASK", "MASK")],
    },
    "CreateVideo": {
        "display_name": "Create Video",
        "input": {"required": {"images": ("IMAGE", {}),
                               "fps": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0, "step": 1.0})},
                  "optional": {"audio": ("AUDIO", {})}},
        "output": [("VIDEO", "VIDEO")],
    },
    "SaveVideo": {
        "display_name": "Save Video",
        "input": {"required": {"video": ("VIDEO", {}),
                               "filename_prefix": ("STRING", {"default": "video/ComfyUI", "multiline": False}),
                               "format": (["auto", "mp4"], {"default": "auto"}),
                               "codec": (["auto", "h264"], {"default": "auto"})}},
        "output": [],
    },
    "PreviewAny": {
        "display_name": "Preview Any",
        "input": {"required": {"source": ("*", {})}},
        "output": [],
        "frontend_inputs": {"preview": ""},
    },
    "ImageFromBatch": {
        "display_name": "ImageFromBatch",
        "input": {"required": {"image": ("IMAGE",),
                               "batch_index": ("INT", {"default": 0, "min": 0, "max": 4095}),
                               "length": ("INT", {"default": 1, "min": 1, "max": 4096})}},
        "output": [("IMAGE", "IMAGE")],
    },
    "ImageScale": {
        "display_name": "Upscale Image",
        "input": {"required": {"image": ("IMAGE",),
                               "upscale_method": (["nearest-exact", "bilinear", "area", "bicubic", "lanczos"],),
                               "width": ("INT", {"default": 512, "min": 0, "max": 16384, "step": 1}),
                               "height": ("INT", {"default": 512, "min": 0, "max": 16384, "step": 1}),
                               "crop": (["disabled", "center"],)}},
        "output": [("IMAGE", "IMAGE")],
    },
    # ComfyUI's own Wan stack, as its templates wire it. A combo declared [] lists the files of a model folder.
    "UNETLoader": {
        "display_name": "Load Diffusion Model",
        "input": {"required": {"unet_name": ([],),
                               "weight_dtype": (["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"],)}},
        "output": [("MODEL", "MODEL")],
    },
    "LoraLoaderModelOnly": {
        "display_name": "LoraLoaderModelOnly",
        "input": {"required": {"model": ("MODEL",), "lora_name": ([],),
                               "strength_model": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0,
                                                            "step": 0.01})}},
        "output": [("MODEL", "MODEL")],
    },
    "ModelSamplingSD3": {
        "display_name": "ModelSamplingSD3",
        "input": {"required": {"model": ("MODEL",),
                               "shift": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 100.0, "step": 0.01})}},
        "output": [("MODEL", "MODEL")],
    },
    "CLIPLoader": {
        "display_name": "Load CLIP",
        "input": {"required": {"clip_name": ([],),
                               "type": (["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv",
                                         "pixart", "cosmos", "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2",
                                         "qwen_image", "hunyuan_image"],)},
                  "optional": {"device": (["default", "cpu"], {"advanced": True})}},
        "output": [("CLIP", "CLIP")],
    },
    "CLIPTextEncode": {
        "display_name": "CLIP Text Encode (Prompt)",
        "input": {"required": {"text": ("STRING", {"multiline": True, "dynamicPrompts": True}),
                               "clip": ("CLIP",)}},
        "output": [("CONDITIONING", "CONDITIONING")],
    },
    "VAELoader": {
        "display_name": "Load VAE",
        "input": {"required": {"vae_name": ([],)}},
        "output": [("VAE", "VAE")],
    },
    "VAEDecode": {
        "display_name": "VAE Decode",
        "input": {"required": {"samples": ("LATENT",), "vae": ("VAE",)}},
        "output": [("IMAGE", "IMAGE")],
    },
    "KSampler": {
        "display_name": "KSampler",
        "input": {"required": {
            "model": ("MODEL",),
            "seed": ("INT", {"default": 0, "min": 0, "max": 18446744073709551615, "control_after_generate": True}),
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
            "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
            "sampler_name": (KSAMPLER_SAMPLERS,), "scheduler": (KSAMPLER_SCHEDULERS,),
            "positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "latent_image": ("LATENT",),
            "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}},
        "output": [("LATENT", "LATENT")],
    },
    "KSamplerAdvanced": {
        "display_name": "KSampler (Advanced)",
        "input": {"required": {
            "model": ("MODEL",), "add_noise": (["enable", "disable"],),
            "noise_seed": ("INT", {"default": 0, "min": 0, "max": 18446744073709551615,
                                   "control_after_generate": True}),
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
            "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
            "sampler_name": (KSAMPLER_SAMPLERS,), "scheduler": (KSAMPLER_SCHEDULERS,),
            "positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "latent_image": ("LATENT",),
            "start_at_step": ("INT", {"default": 0, "min": 0, "max": 10000}),
            "end_at_step": ("INT", {"default": 10000, "min": 0, "max": 10000}),
            "return_with_leftover_noise": (["disable", "enable"],)}},
        "output": [("LATENT", "LATENT")],
    },
    "EmptyHunyuanLatentVideo": {
        "display_name": "EmptyHunyuanLatentVideo",
        "input": {"required": {"width": ("INT", {"default": 848, "min": 16, "max": 16384, "step": 16}),
                               "height": ("INT", {"default": 480, "min": 16, "max": 16384, "step": 16}),
                               "length": ("INT", {"default": 25, "min": 1, "max": 16384, "step": 4}),
                               "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096})}},
        "output": [("LATENT", "LATENT")],
    },
    "Note": {
        "display_name": "Note",
        "frontend_only": True,
        "input": {"required": {"text": ("STRING", {"default": "", "multiline": True})}},
        "output": [],
    },
}

# How the frontend turns a declaration into widgets: these input types get a widget (unless forceInput);
# an INT with control_after_generate, or named seed / noise_seed, gets a second widget right after it
# (its value is saved in widgets_values but never sent to the server); an image_upload combo gets an
# upload button whose saved value is "image". Any widget can take a link instead of a value (an INT fed by
# another node's output): the frontend then saves an entry {"name", "type", "widget": {"name"}, "link"} in the
# node's inputs, after the plain sockets, while the widget keeps its slot in widgets_values with the value it
# holds (never sent to the server; here the value the widget starts with).
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
SEED_NAMES = ("seed", "noise_seed")
VALUE, CONTROL, UPLOAD = "value", "control_after_generate", "upload"
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
UPLOAD_VALUE = "image"
# Example workflows reproduce what their note describes, so their seeds stay put when queued.
EXAMPLE_CONTROL = "fixed"

# Layout, in canvas units. The frontend draws a node's title bar above its pos and a group's title inside
# the top of its bounding box.
NODE_WIDTH = 320
NOTE_WIDTH = 520
SLOT_H, WIDGET_H, TEXTAREA_H, NODE_PAD = 22, 26, 96, 12
TITLE_H, GROUP_PAD, GROUP_TITLE_H = 30, 16, 42
GAP_X, GAP_Y = 90, 50
GROUP_COLORS = ("#3f789e", "#8A8", "#b06634", "#a1309b", "#88A", "#b58b2a", "#8AA", "#A88")
NOTE_COLOR, NOTE_BGCOLOR = "#432", "#653"


def declaration(class_type: str) -> dict:
    """``{"display_name", "input": {"required", "optional"}, "output": [(name, type)], "frontend_only"}``.

    Ours come from the node classes themselves (combo lists as the current model folders give them)."""
    if class_type in CORE_NODES:
        return {"frontend_only": False, **CORE_NODES[class_type]}
    from zeroshot_video.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
    if class_type not in NODE_CLASS_MAPPINGS:
        raise KeyError(f"unknown node type {class_type!r}")
    cls = NODE_CLASS_MAPPINGS[class_type]
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    spec = cls.INPUT_TYPES()
    return {"display_name": NODE_DISPLAY_NAME_MAPPINGS.get(class_type, class_type), "frontend_only": False,
            "input": {section: spec.get(section, {}) for section in ("required", "optional")},
            "output": list(zip(names, cls.RETURN_TYPES))}


def declared_inputs(decl: dict) -> list[tuple[str, tuple, bool]]:
    """(name, (type, options), optional) in declaration order, required first: the frontend's order."""
    inputs = decl["input"]
    return ([(n, s, False) for n, s in inputs.get("required", {}).items()]
            + [(n, s, True) for n, s in inputs.get("optional", {}).items()])


def options_of(spec: tuple) -> dict:
    return spec[1] if len(spec) > 1 else {}


def is_widget(spec: tuple) -> bool:
    return (isinstance(spec[0], list) or spec[0] in WIDGET_TYPES) and not options_of(spec).get("forceInput")


def input_type(spec: tuple) -> str:
    return "COMBO" if isinstance(spec[0], list) else spec[0]


def widget_slots(decl: dict) -> list[tuple[str, str]]:
    """One (input name, VALUE | CONTROL | UPLOAD) per entry of a UI node's widgets_values, in order."""
    slots = []
    for name, spec, _ in declared_inputs(decl):
        if not is_widget(spec):
            continue
        options = options_of(spec)
        if input_type(spec) == "COMBO" and options.get("control_after_generate"):
            raise ValueError(f"{name}: the widgets of a combo with control_after_generate are not modelled here")
        slots.append((name, VALUE))
        if input_type(spec) == "INT" and (options.get("control_after_generate") or name in SEED_NAMES):
            slots.append((name, CONTROL))
        if options.get("image_upload"):
            slots.append((name, UPLOAD))
    return slots


def _starting_value(spec: tuple):
    """What the frontend puts in a widget nobody set: the declared default, else a combo's first choice."""
    options = options_of(spec)
    if "default" in options:
        return options["default"]
    if input_type(spec) == "COMBO":
        choices = spec[0] if isinstance(spec[0], list) else options.get("options", [])
        return choices[0] if choices else ""
    return {"INT": 0, "FLOAT": 0.0, "BOOLEAN": False}.get(input_type(spec), "")


def _widget_value(where: str, spec: tuple, given):
    kind, options = input_type(spec), options_of(spec)
    if given is None:
        if "default" not in options:
            raise ValueError(f"{where}: no default, give a value")
        given = options["default"]
    return float(given) if kind == "FLOAT" else int(given) if kind == "INT" else given


class _Node:
    def __init__(self, entry: dict):
        self.id, self.type = entry["id"], entry["type"]
        self.group, self.title = entry.get("group"), entry.get("title")
        self.decl = declaration(self.type)
        declared = {n for n, _, _ in declared_inputs(self.decl)}
        given = entry.get("inputs", {})
        unknown = sorted(set(given) - declared)
        if unknown:
            raise ValueError(f"node {self.id} ({self.type}): no inputs named {unknown}")
        self.links = {n: v for n, v in given.items() if isinstance(v, tuple)}
        for name, socket, _ in declared_inputs(self.decl):
            if name in given and not is_widget(socket) and name not in self.links:
                raise ValueError(f"node {self.id} ({self.type}).{name} takes a link (source node id, output index)")
        # Plain sockets first, then the widgets fed by a link, each group in declaration order.
        self.sockets = ([(n, s, opt) for n, s, opt in declared_inputs(self.decl) if not is_widget(s)]
                        + [(n, s, opt) for n, s, opt in declared_inputs(self.decl) if is_widget(s) and n in self.links])
        self.values = {n: _starting_value(s) if n in self.links else
                       _widget_value(f"node {self.id} ({self.type}).{n}", s, given.get(n))
                       for n, s, _ in declared_inputs(self.decl) if is_widget(s)}
        for name, _, optional in self.sockets:
            if not optional and name not in self.links:
                raise ValueError(f"node {self.id} ({self.type}): required input {name!r} is not linked")
        self.size = entry.get("size") or self._estimated_size()

    def _estimated_size(self):
        widgets = [s for _, s, _ in declared_inputs(self.decl) if is_widget(s)]
        rows = max(sum(not is_widget(s) for _, s, _ in self.sockets), len(self.decl["output"]))
        height = rows * SLOT_H + NODE_PAD + sum(
            TEXTAREA_H if input_type(s) == "STRING" and options_of(s).get("multiline") else WIDGET_H for s in widgets)
        height += WIDGET_H * (len(widget_slots(self.decl)) - len(widgets))
        return [NODE_WIDTH, height]


def _note_entry(spec: dict, note_id: int) -> dict:
    chars_per_line = NOTE_WIDTH // 8
    lines = sum(len(textwrap.wrap(p, chars_per_line)) or 1 for p in spec["note"].split("\n"))
    return {"id": note_id, "type": "Note", "inputs": {"text": spec["note"]}, "size": [NOTE_WIDTH, 20 * lines + 30]}


def _layout(columns: list[list[_Node]], note: _Node):
    """Positions left to right, column by column, below the note; group boxes around their members."""
    positions = {note.id: [0, TITLE_H]}
    top = TITLE_H + note.size[1] + GAP_Y + GROUP_TITLE_H + GROUP_PAD + TITLE_H
    x = 0
    for column in columns:
        y, previous_group = top, None
        for node in column:
            if previous_group is not None:
                y += GAP_Y + TITLE_H + (2 * GROUP_PAD + GROUP_TITLE_H if node.group != previous_group else 0)
            positions[node.id] = [x, y]
            y += node.size[1]
            previous_group = node.group
        x += max(node.size[0] for node in column) + GAP_X
    groups = []
    for title in dict.fromkeys(n.group for column in columns for n in column if n.group):
        members = [n for column in columns for n in column if n.group == title]
        left = min(positions[n.id][0] for n in members) - GROUP_PAD
        top_edge = min(positions[n.id][1] for n in members) - TITLE_H - GROUP_PAD - GROUP_TITLE_H
        right = max(positions[n.id][0] + n.size[0] for n in members) + GROUP_PAD
        bottom = max(positions[n.id][1] + n.size[1] for n in members) + GROUP_PAD
        groups.append({"id": len(groups) + 1, "title": title, "bounding": [left, top_edge, right - left,
                                                                            bottom - top_edge],
                       "color": GROUP_COLORS[len(groups) % len(GROUP_COLORS)], "font_size": 24, "flags": {}})
    return positions, groups


def _execution_order(nodes: list[_Node]) -> dict[int, int]:
    """Topological order (ties by id), the ``order`` field the frontend saves."""
    waiting = {n.id: {src for src, _ in n.links.values()} for n in nodes}
    order = {}
    while waiting:
        ready = min(i for i, deps in waiting.items() if deps <= set(order))
        order[ready] = len(order)
        del waiting[ready]
    return order


def _ui_input(name: str, socket: tuple, optional: bool, link: int | None) -> dict:
    if is_widget(socket):
        return {"name": name, "type": input_type(socket), "widget": {"name": name}, "link": link}
    return {"name": name, **({"shape": 7} if optional else {}), "type": socket[0], "link": link}


def build(spec: dict) -> tuple[dict, dict]:
    """The (UI graph, API prompt) of one workflow description."""
    columns = [[_Node(entry) for entry in column] for column in spec["columns"]]
    nodes = [n for column in columns for n in column]
    by_id = {n.id: n for n in nodes}
    if len(by_id) != len(nodes):
        raise ValueError(f"{spec['name']}: node ids are not unique")
    note = _Node(_note_entry(spec, max(by_id) + 1))
    nodes = sorted(nodes + [note], key=lambda n: n.id)
    by_id[note.id] = note

    links, incoming, outgoing = [], {}, {}
    for node in nodes:
        for slot, (name, socket, _) in enumerate(node.sockets):
            if name not in node.links:
                continue
            src, out = node.links[name]
            if src not in by_id or out >= len(by_id[src].decl["output"]):
                raise ValueError(f"node {node.id}.{name}: no output {out} on node {src}")
            given, wanted = by_id[src].decl["output"][out][1], input_type(socket)
            if given != wanted and "*" not in (given, wanted):
                raise ValueError(f"node {node.id} ({node.type}).{name} takes "
                                 f"{'a widget value or ' if is_widget(socket) else ''}a link of type {wanted}, not "
                                 f"{given} (node {src} output {out})")
            link_id = len(links) + 1
            links.append([link_id, src, out, node.id, slot, by_id[src].decl["output"][out][1]])
            incoming[node.id, name] = link_id
            outgoing.setdefault((src, out), []).append(link_id)

    positions, groups = _layout(columns, note)
    order = _execution_order(nodes)
    ui_nodes = []
    for node in nodes:
        entry = {"id": node.id, "type": node.type, "pos": positions[node.id], "size": node.size, "flags": {},
                 "order": order[node.id], "mode": 0,
                 "inputs": [_ui_input(name, socket, optional, incoming.get((node.id, name)))
                            for name, socket, optional in node.sockets],
                 "outputs": [{"name": name, "type": kind, "links": outgoing.get((node.id, i))}
                             for i, (name, kind) in enumerate(node.decl["output"])]}
        if node.title:
            entry["title"] = node.title
        entry["properties"] = {"Node name for S&R": node.type}
        entry["widgets_values"] = [node.values[name] if role == VALUE else
                                   EXAMPLE_CONTROL if role == CONTROL else UPLOAD_VALUE
                                   for name, role in widget_slots(node.decl)]
        if node is note:
            entry.update(color=NOTE_COLOR, bgcolor=NOTE_BGCOLOR)
        ui_nodes.append(entry)
    ui = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"zeroshot-video/workflows/{spec['name']}")), "revision": 0,
          "last_node_id": max(by_id), "last_link_id": len(links), "nodes": ui_nodes, "links": links,
          "groups": groups, "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [60, 40]}}, "version": 0.4}

    api = {}
    for node in nodes:
        if node.decl["frontend_only"]:
            continue
        inputs = {}
        for name, socket, _ in declared_inputs(node.decl):
            if name in node.links:
                inputs[name] = [str(node.links[name][0]), node.links[name][1]]
            elif is_widget(socket):
                inputs[name] = node.values[name]
        inputs.update(node.decl.get("frontend_inputs", {}))
        api[str(node.id)] = {"inputs": inputs, "class_type": node.type,
                             "_meta": {"title": node.title or node.decl["display_name"]}}
    return ui, api


def render(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[Path, str]:
    """Every file the descriptions make, with its content."""
    files = {}
    for spec in workflow_specs.WORKFLOWS:
        ui, api = build(spec)
        files[UI_DIR / f"{spec['name']}.json"] = render(ui)
        files[API_DIR / f"{spec['name']}.json"] = render(api)
    return files


def stale_files(expected: dict[Path, str]) -> list[str]:
    """Committed workflow files that differ from, or are missing in, what the descriptions make."""
    present = set(UI_DIR.glob("*.json")) | set(API_DIR.glob("*.json"))
    problems = [f"{p.relative_to(ROOT)}: not made by any description in tools/workflow_specs.py"
                for p in sorted(present - expected.keys())]
    for path, text in expected.items():
        if not path.is_file():
            problems.append(f"{path.relative_to(ROOT)}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path.relative_to(ROOT)}: differs from its description")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is stale")
    args = parser.parse_args(argv)
    expected = expected_files()
    if args.check:
        problems = stale_files(expected)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: python tools/workflows.py", file=sys.stderr)
        return 1 if problems else 0
    API_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in expected.items():
        path.write_text(text, encoding="utf-8")
        print(path.relative_to(ROOT))
    for problem in stale_files(expected):
        print(problem, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
