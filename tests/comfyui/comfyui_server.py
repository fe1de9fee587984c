"""A real ComfyUI server for tier-2 and browser tests, and the few HTTP calls the tests make (stdlib only,
loopback).

ComfyUI comes from ``COMFYUI_DIR`` and runs with ``COMFYUI_PYTHON``, else ``$COMFYUI_DIR/../venv-comfy/bin/python``
when it exists (the layout shared/tools/comfy_host.sh makes), else this interpreter. Its base directory is
temporary: custom_nodes/ links this repository as ``comfyui-zeroshot-video`` and the test-only stand-in for
CLIPLoader's UMT5-XXL (``standin_nodes/``), models/ holds the stand-ins written by ``python -m zeroshot_video
make-test-models --comfyui-wan`` (Wan's single files in the form ComfyUI's own loaders take), and input/ the images the shipped workflows load
(copies of workflows/inputs/), so nothing in the checkout changes.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
PACK_NAME = "comfyui-zeroshot-video"
# Test-only custom node: CLIPLoader's UMT5-XXL replaced by a stand-in (see standin_nodes/__init__.py).
STANDIN_NODES = Path(__file__).resolve().parent / "standin_nodes"
API_FILES = sorted((ROOT / "workflows" / "api").glob("*.json"))
INPUTS_DIR = ROOT / "workflows" / "inputs"
NO_COMFYUI = ("set COMFYUI_DIR to a ComfyUI checkout (and COMFYUI_PYTHON to its python) to run the pack inside "
              "a real ComfyUI")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ComfyUIServer:
    """``main.py --cpu`` on a free loopback port, with everything it writes under ``base``."""

    def __init__(self, comfy_dir: Path, python: str, base: Path):
        self.comfy_dir, self.python, self.base = Path(comfy_dir), python, Path(base)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = self.base / "comfyui.log"
        self.process = None

    def start(self, timeout: float = 240.0) -> None:
        # The database goes to memory: by default ComfyUI would write it inside the checkout.
        command = [self.python, "main.py", "--cpu", "--listen", HOST, "--port", str(self.port),
                   "--base-directory", str(self.base), "--disable-auto-launch", "--database-url", "sqlite:///:memory:"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=self.comfy_dir, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.get("/system_stats")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(1.0)
        raise RuntimeError(f"ComfyUI did not answer /system_stats within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def request(self, method: str, path: str, payload=None, timeout: float = 60.0):
        """(HTTP status, decoded JSON body); error statuses are returned, not raised."""
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        return status, (json.loads(body) if body else None)

    def get(self, path: str, **query):
        return self.request("GET", path + ("?" + urllib.parse.urlencode(query) if query else ""))

    def run_prompt(self, prompt: dict, timeout: float = 300.0) -> dict:
        """Queue an API prompt and return its history entry once it has finished.

        A prompt the server rejects, fully (HTTP 400) or in part (HTTP 200 with node_errors), fails here."""
        status, answer = self.request("POST", "/prompt", {"prompt": prompt, "client_id": "zeroshot-video-tests"})
        if status != 200 or answer.get("node_errors"):
            raise AssertionError(f"/prompt rejected the workflow (HTTP {status}): {json.dumps(answer, indent=1)}")
        prompt_id = answer["prompt_id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, history = self.get(f"/history/{prompt_id}")
            entry = (history or {}).get(prompt_id)
            if entry and entry.get("status", {}).get("status_str") in ("success", "error"):
                return entry
            if self.process.poll() is not None:
                raise AssertionError(f"ComfyUI died while running the prompt:\n{self.log_tail()}")
            time.sleep(0.5)
        self.request("POST", "/interrupt", {"prompt_id": prompt_id})
        raise AssertionError(f"prompt {prompt_id} did not finish within {timeout:.0f} s:\n{self.log_tail()}")


def comfyui_python(comfy_dir: Path) -> str:
    if os.environ.get("COMFYUI_PYTHON"):
        return os.environ["COMFYUI_PYTHON"]
    venv = comfy_dir.parent / "venv-comfy" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def write_input_images(input_dir: Path) -> None:
    """Every image a LoadImage node of a shipped workflow names, copied from workflows/inputs/ (where the
    pack ships them for users too)."""
    input_dir.mkdir(parents=True, exist_ok=True)
    for path in API_FILES:
        for node in json.loads(path.read_text()).values():
            if node["class_type"] == "LoadImage":
                name = node["inputs"]["image"]
                if not (INPUTS_DIR / name).is_file():
                    raise FileNotFoundError(f"{path.name} loads {name}, which is not in {INPUTS_DIR}")
                shutil.copyfile(INPUTS_DIR / name, input_dir / name)


def pack_server(comfy_dir: Path, base: Path) -> ComfyUIServer:
    """A server (not started) for the ComfyUI checkout ``comfy_dir``, with ``base`` (an empty folder) made
    its base directory: this pack, the stand-in models and the input images."""
    comfy_dir = Path(comfy_dir).resolve()
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / PACK_NAME).symlink_to(ROOT, target_is_directory=True)
    (base / "custom_nodes" / "zeroshot-video-test-standins").symlink_to(STANDIN_NODES, target_is_directory=True)
    subprocess.run([sys.executable, "-m", "zeroshot_video", "make-test-models", "--comfyui-wan",
                    str(base / "models")], check=True, capture_output=True)
    write_input_images(base / "input")
    return ComfyUIServer(comfy_dir, comfyui_python(comfy_dir), base)


_session = {"server": None, "users": 0}


@contextlib.contextmanager
def shared_server(tmp_path_factory):
    """The test session's one server: the first fixture to ask starts it, the last to finish stops it, so
    tier-2 and browser tests run in one session share a server. Skips (saying why) without COMFYUI_DIR."""
    import pytest
    if not os.environ.get("COMFYUI_DIR"):
        pytest.skip(NO_COMFYUI)
    if _session["server"] is None:
        server = pack_server(Path(os.environ["COMFYUI_DIR"]), tmp_path_factory.mktemp("comfyui-base"))
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        _session["server"] = server
    _session["users"] += 1
    try:
        yield _session["server"]
    finally:
        _session["users"] -= 1
        if not _session["users"]:
            _session["server"].stop()
            _session["server"] = None
