"""The machine line every benchmark records (no pack import: ``bench/native.py`` runs in ComfyUI's python)."""
from __future__ import annotations

import os
import platform

import torch


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, " \
           f"{torch.get_num_threads()} threads"
