"""Which Wan 2.2 A14B expert a file is, as its name says: the weights cannot (both experts have one architecture).

Released names mark the expert: ``…high_noise…`` / ``…low_noise…`` (Comfy-Org's files and their GGUF conversions),
``…HighNoise…``, or ``HIGH`` / ``LOW`` beside ``A14B`` (Kijai's files, the Lightning LoRAs). A name without a mark
(or with both) says nothing, and nothing is refused for it.
"""
from __future__ import annotations

import re

HIGH, LOW = "high", "low"
EXPERT = {HIGH: "the high-noise expert", LOW: "the low-noise expert"}


def expert_mark(file_name: str) -> str | None:
    """HIGH or LOW when the name marks one A14B expert (and only one), else None."""
    words = [word for word in re.split(r"[^a-z0-9]+", file_name.lower()) if word]
    terms = set(words) | {first + second for first, second in zip(words, words[1:])}
    marks = {mark for mark in (HIGH, LOW) if f"{mark}noise" in terms or (mark in terms and "a14b" in terms)}
    return marks.pop() if len(marks) == 1 else None


def check_experts_in_slots(chosen: dict[str, tuple[str, str]], roles: dict[str, str]) -> None:
    """Refuses A14B expert files chosen for the other expert's slot. ``chosen``: slot → (file name, how to name it
    in a message); ``roles``: slot → HIGH or LOW (two slots)."""
    misplaced = {slot: described for slot, (name, described) in chosen.items()
                 if expert_mark(name) not in (None, roles[slot])}
    high, low = (next(slot for slot, role in roles.items() if role == mark) for mark in (HIGH, LOW))
    if len(misplaced) == 2:
        raise ValueError(f"{high} and {low} are swapped: {high} comes from {misplaced[high]} and {low} from "
                         f"{misplaced[low]}. Give {high} the high-noise expert and {low} the low-noise one.")
    for slot, described in misplaced.items():
        other = low if slot == high else high
        raise ValueError(f"{slot} comes from {described}, {EXPERT[roles[other]]}, but {slot} takes "
                         f"{EXPERT[roles[slot]]}: load …{roles[slot]}_noise… there (and the {roles[other]}-noise "
                         f"file into {other}).")


def check_expert_files(high: tuple[str, str], low: tuple[str, str]) -> None:
    """``check_experts_in_slots`` for two chosen files named by themselves: ``high`` and ``low`` are (slot, file
    name) of the high- and the low-noise expert's slot."""
    check_experts_in_slots({slot: (name, name) for slot, name in (high, low)}, {high[0]: HIGH, low[0]: LOW})
