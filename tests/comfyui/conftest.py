"""Tier 2: the pack inside a real ComfyUI, started once per session.

Needs ``COMFYUI_DIR`` (a ComfyUI checkout; without it every test here is skipped, saying so). ComfyUI runs
with ``COMFYUI_PYTHON``, else ``$COMFYUI_DIR/../venv-comfy/bin/python`` when it exists (the layout
shared/tools/comfy_host.sh makes), else this interpreter. Its base directory is temporary: custom_nodes/
links this repository as ``comfyui-zeroshot-video``, models/ holds the stand-ins written by
``python -m zeroshot_video make-test-models``, and input/ the images the shipped workflows load, so
nothing in the checkout changes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from comfyui_server import ComfyUIServer

ROOT = Path(__file__).resolve().parents[2]
PACK_NAME = "comfyui-zeroshot-video"
API_FILES = sorted((ROOT / "workflows" / "api").glob("*.json"))


def comfyui_python(comfy_dir: Path) -> str:
    if os.environ.get("COMFYUI_PYTHON"):
        return os.environ["COMFYUI_PYTHON"]
    venv = comfy_dir.parent / "venv-comfy" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _write_input_images(input_dir: Path) -> None:
    """Every image a LoadImage node of a shipped workflow names, as a small gradient."""
    from PIL import Image
    input_dir.mkdir(parents=True, exist_ok=True)
    for path in API_FILES:
        for node in json.loads(path.read_text()).values():
            if node["class_type"] == "LoadImage" and not (input_dir / node["inputs"]["image"]).exists():
                image = Image.linear_gradient("L").resize((256, 256)).convert("RGB")
                image.save(input_dir / node["inputs"]["image"])


@pytest.fixture(scope="session")
def comfyui(tmp_path_factory):
    if not os.environ.get("COMFYUI_DIR"):
        pytest.skip("tier 2: set COMFYUI_DIR to a ComfyUI checkout (and COMFYUI_PYTHON to its python) to run "
                    "the pack inside a real ComfyUI")
    comfy_dir = Path(os.environ["COMFYUI_DIR"]).resolve()
    base = tmp_path_factory.mktemp("comfyui-base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK_NAME).symlink_to(ROOT, target_is_directory=True)
    subprocess.run([sys.executable, "-m", "zeroshot_video", "make-test-models", str(base / "models")],
                   check=True, capture_output=True)
    _write_input_images(base / "input")
    server = ComfyUIServer(comfy_dir, comfyui_python(comfy_dir), base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
