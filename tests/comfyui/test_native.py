"""Tier 2: the pack's methods on ComfyUI's own MODEL / VAE (UNETLoader, LoraLoaderModelOnly, ModelSamplingSD3,
VAELoader), compared with ComfyUI's own KSampler and with the pack's own Wan backbone on the same files.

Each check of ``native_checks.py`` runs in ComfyUI's python, in-process (no server: the objects are the ones
ComfyUI's loaders make), on stand-ins ComfyUI's own model detection loads (``testing.standin_files_native``).
Skipped, saying so, without ``COMFYUI_DIR``; the GGUF check also needs city96's ComfyUI-GGUF (``COMFYUI_GGUF_DIR``,
else ``$COMFYUI_DIR/custom_nodes/ComfyUI-GGUF``) with the ``gguf`` package in ComfyUI's python, and is skipped,
saying so, without it."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from comfyui_server import NO_COMFYUI, comfyui_python

pytestmark = pytest.mark.comfyui
HERE = Path(__file__).resolve().parent
CHECKS = re.findall(r"^def check_(\w+)\(", (HERE / "native_checks.py").read_text(), re.MULTILINE)


@pytest.fixture(scope="session")
def native_models(tmp_path_factory):
    if not os.environ.get("COMFYUI_DIR"):
        pytest.skip(NO_COMFYUI)
    from zeroshot_video.testing.standin_files_native import write_native_files
    root = tmp_path_factory.mktemp("native-models")
    write_native_files(root)
    return root


def test_every_check_is_collected():
    assert len(CHECKS) >= 9 and "euler_equals_ksampler" in CHECKS


def comfyui_gguf(comfy_dir: Path) -> Path | None:
    folder = Path(os.environ.get("COMFYUI_GGUF_DIR") or comfy_dir / "custom_nodes" / "ComfyUI-GGUF")
    return folder if (folder / "__init__.py").is_file() else None


@pytest.mark.parametrize("check", CHECKS)
def test_native_model(check, native_models):
    comfy_dir = Path(os.environ["COMFYUI_DIR"])
    env = dict(os.environ)
    if check == "gguf_model":
        if comfyui_gguf(comfy_dir) is None:
            pytest.skip("ComfyUI-GGUF not found: set COMFYUI_GGUF_DIR to a checkout of city96/ComfyUI-GGUF (and "
                        "install its gguf package into ComfyUI's python) to check a GGUF-loaded MODEL")
        env["COMFYUI_GGUF_DIR"] = str(comfyui_gguf(comfy_dir))
    result = subprocess.run([comfyui_python(comfy_dir), str(HERE / "native_checks.py"), str(native_models), check],
                            cwd=HERE, capture_output=True, text=True, timeout=1200, env=env)
    report = "\n".join(line for line in (result.stdout + result.stderr).splitlines()
                       if "torchaudio missing" not in line)
    assert result.returncode == 0, report[-6000:]
    assert "passed in" in result.stdout, report[-6000:]
