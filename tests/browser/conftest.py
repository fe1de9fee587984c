"""Browser tier: the shipped workflows and the live preview in ComfyUI's real frontend, against the tier-2
server (tests/comfyui/comfyui_server.py; one server per session, shared with the tier-2 tests). Skipped,
saying why, without COMFYUI_DIR or without Chromium / Node.js."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "comfyui"))
import frontend  # noqa: E402
from comfyui_server import shared_server  # noqa: E402


@pytest.fixture(scope="session")
def browser():
    reason = frontend.unavailable()
    if reason:
        pytest.skip(f"browser tier: {reason}")
    return frontend


@pytest.fixture(scope="session")
def comfyui(browser, tmp_path_factory):
    with shared_server(tmp_path_factory) as server:
        yield server
