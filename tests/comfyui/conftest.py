"""Tier 2: the pack inside a real ComfyUI, started once per session (see comfyui_server.py for where
ComfyUI, its python and its base directory come from). Needs ``COMFYUI_DIR``: without it every test here is
skipped, saying so."""
from __future__ import annotations

import pytest

from comfyui_server import shared_server


@pytest.fixture(scope="session")
def comfyui(tmp_path_factory):
    with shared_server(tmp_path_factory) as server:
        yield server
