"""Which Wan 2.2 A14B expert each MODEL input was loaded as, read off the file names in the user's graph.

ComfyUI's MODEL keeps no file name and both experts have one architecture, so the weights cannot say which is which.
The graph can: ComfyUI gives a node the API prompt it runs (hidden input ``PROMPT``), and each MODEL input leads
back through LoraLoaderModelOnly, ModelSamplingSD3 and patch nodes (each passes its ``model`` input on) to the loader
whose file the user chose, whose name says which expert it is (``core/families/wan/expert_names.py``). A name
without a mark, or a chain the walk cannot follow, checks nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...core.families.wan.expert_names import EXPERT, HIGH, LOW, check_experts_in_slots, expert_mark

SLOTS = {"model": HIGH, "model_low_noise": LOW}
MODEL_FILE_SUFFIXES = (".safetensors", ".sft", ".gguf", ".ckpt", ".pt", ".pth", ".bin")


@dataclass(frozen=True)
class ChosenFile:
    node: str
    title: str
    input_name: str
    name: str

    @property
    def is_lora(self) -> bool:
        return "lora" in self.input_name.lower()

    def __str__(self) -> str:
        return f"{self.name} ({self.title}, node {self.node})"


def files_upstream(prompt: dict, link) -> list[ChosenFile]:
    """The files chosen along the chain of ``model`` inputs that ends at ``link``, nearest first."""
    found, seen = [], set()
    while _is_link(link) and str(link[0]) in prompt and str(link[0]) not in seen:
        node_id = str(link[0])
        seen.add(node_id)
        node = prompt[node_id]
        inputs = node.get("inputs") or {}
        title = (node.get("_meta") or {}).get("title") or node.get("class_type", "?")
        found += [ChosenFile(node_id, title, name, value) for name, value in inputs.items()
                  if isinstance(value, str) and value.lower().endswith(MODEL_FILE_SUFFIXES)]
        link = inputs.get("model")
    return found


def check_expert_wiring(prompt: dict | None, node_id) -> None:
    """Refuses, naming what to change, A14B experts connected the wrong way round, and a LoRA whose name is for the
    other expert than the one it is on. ``prompt`` and ``node_id`` are ComfyUI's hidden PROMPT and UNIQUE_ID."""
    node = (prompt or {}).get(str(node_id))
    if not node:
        return
    inputs = node.get("inputs") or {}
    chains = {slot: files_upstream(prompt, inputs.get(slot)) for slot in SLOTS}
    loaders = {slot: _loader(files) for slot, files in chains.items()}
    two_experts = _is_link(inputs.get("model_low_noise"))
    if two_experts:
        check_experts_in_slots({slot: (file.name, str(file)) for slot, file in loaders.items() if file}, SLOTS)
    for slot, files in chains.items():
        expert = SLOTS[slot] if two_experts else (expert_mark(loaders[slot].name) if loaders[slot] else None)
        if expert is not None:
            _check_loras(slot, expert, [file for file in files if file.is_lora])


def _loader(files: list[ChosenFile]) -> ChosenFile | None:
    """The file a chain starts from: its farthest file that is not a LoRA."""
    loaders = [file for file in files if not file.is_lora]
    return loaders[-1] if loaders else None


def _check_loras(slot: str, expert: str, loras: list[ChosenFile]) -> None:
    for lora in loras:
        mark = expert_mark(lora.name)
        if mark not in (None, expert):
            raise ValueError(f"{slot}: the LoRA {lora} is for {EXPERT[mark]}, but it is on {slot}'s chain, which "
                             f"runs {EXPERT[expert]}: choose its {expert}-noise twin in node {lora.node}, and put "
                             f"this one on the {mark}-noise expert's chain.")


def _is_link(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[1], int)
