"""Runs frontend.mjs (ComfyUI's real frontend in Debian's chromium, driven by playwright-core) from Python.

Needs Chromium (``apt-get install chromium``; ``CHROMIUM`` names another binary) and Node.js with npm. The
first run installs the pinned playwright-core from package-lock.json into node_modules/ (``npm ci``; it
downloads no browser). ``unavailable()`` says what is missing, so tests can skip with that message.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def chromium() -> str | None:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return found if Path(found).is_file() else None


def unavailable() -> str | None:
    """Why the browser tier cannot run here, or None when it can (installing playwright-core if needed)."""
    if chromium() is None:
        return "no Chromium: apt-get install chromium (or set CHROMIUM to a Chromium binary)"
    if shutil.which("node") is None:
        return "no Node.js: install node and npm (the browser is driven by playwright-core)"
    if not (HERE / "node_modules" / "playwright-core" / "package.json").is_file():
        if shutil.which("npm") is None:
            return f"no npm to install playwright-core: run npm ci in {HERE}"
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True)
        if done.returncode != 0:
            return f"npm ci in {HERE} failed (playwright-core is not installed):\n{done.stderr[-2000:]}"
    return None


def run(task: str, request: dict, timeout: float = 1800) -> tuple[dict, str]:
    """(the task's result, what the page logged as errors)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(request, handle)
    try:
        done = subprocess.run(["node", str(HERE / "frontend.mjs"), task, handle.name], cwd=HERE, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "CHROMIUM": chromium() or ""})
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        raise RuntimeError(f"frontend.mjs {task} failed ({done.returncode}):\n{done.stderr[-6000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr
