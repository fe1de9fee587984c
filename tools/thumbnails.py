"""Screenshots of every example workflow in ComfyUI's real editor, so they can be regenerated whenever a
workflow changes:

- ``workflows/<name>.jpg``: the thumbnail ComfyUI's template browser shows for ``workflows/<name>.json``
  (for a custom node pack's templates the frontend asks for ``/api/workflow_templates/<pack>/<name>.jpg``):
  the whole graph on a square card, under 100 KB;
- ``docs/images/<name>.jpg``: the graph at the editor's 100 % zoom, under 200 KB, shown in the README's
  Screenshots section, which this script also writes.

Each image carries the SHA-256 of the workflow file it shows (a JPEG comment), so tier-1 tests notice a
workflow changed without its pictures.

    COMFYUI_DIR=/path/to/ComfyUI [COMFYUI_PYTHON=...] python tools/thumbnails.py [--server URL] [name ...]
    python tools/thumbnails.py --check    # exit 1 when an image or the README section is missing or stale

It starts ComfyUI on a temporary base directory with the stand-in models (as the tier-2 tests do), unless
``--server`` names one already running with this pack, and needs what the browser tests need: Chromium and
Node.js (see tests/browser/frontend.py).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
UI_DIR = ROOT / "workflows"
DOCS_DIR = ROOT / "docs" / "images"
README = ROOT / "README.md"
SECTION, SECTION_BEFORE = "## Screenshots", "## License"
THUMBNAIL_SIDE, THUMBNAIL_LIMIT = 512, 100_000
DOC_WIDTH, DOC_LIMIT = 1600, 200_000
QUALITIES = range(88, 30, -6)


def ui_files() -> list[Path]:
    return sorted(UI_DIR.glob("*.json"))


def thumbnail_path(workflow: Path) -> Path:
    return workflow.with_suffix(".jpg")


def screenshot_path(workflow: Path) -> Path:
    return DOCS_DIR / f"{workflow.stem}.jpg"


def stamp(workflow: Path) -> str:
    return f"zeroshot-video {workflow.name} sha256:{hashlib.sha256(workflow.read_bytes()).hexdigest()}"


def problems(workflow: Path) -> list[str]:
    """What is wrong with a workflow's thumbnail and README screenshot (nothing when both are current)."""
    found = []
    for path, limit in ((thumbnail_path(workflow), THUMBNAIL_LIMIT), (screenshot_path(workflow), DOC_LIMIT)):
        where = path.relative_to(ROOT)
        if not path.is_file():
            found.append(f"{where}: missing")
            continue
        with Image.open(path) as image:
            kind, comment = image.format, image.info.get("comment", b"").decode(errors="replace")
        if kind != "JPEG":
            found.append(f"{where}: {kind}, not JPEG")
        if path.stat().st_size >= limit:
            found.append(f"{where}: {path.stat().st_size} bytes, the limit is {limit}")
        if comment != stamp(workflow):
            found.append(f"{where}: made from another version of {workflow.name}")
    return found


def readme_section() -> str:
    """The README's Screenshots section: each workflow's picture under the first line of its note."""
    lines = [SECTION, "",
             "The example workflows as they open in ComfyUI's editor; Workflow → Browse Templates lists them under",
             "this pack's folder name, with square thumbnails of the same pictures. `python tools/thumbnails.py`",
             "makes the pictures and this section; a test fails when they are missing or older than their workflow.",
             ""]
    for workflow in ui_files():
        notes = [n for n in json.loads(workflow.read_text())["nodes"] if n["type"] == "Note"]
        summary = notes[0]["widgets_values"][0].split("\n")[0] if notes else ""
        lines += [f"**{workflow.stem}**: {summary}", "",
                  f"![{workflow.stem}]({screenshot_path(workflow).relative_to(ROOT).as_posix()})", ""]
    return "\n".join(lines)


def readme_with_section(text: str) -> str:
    """``text`` with its Screenshots section replaced by (or, when absent, inserted before the License
    section as) the current one."""
    if SECTION + "\n" in text:
        start = text.index(SECTION + "\n")
        end = text.find("\n## ", start + len(SECTION))
        return text[:start] + readme_section() + (text[end:] if end >= 0 else "")
    at = text.find(SECTION_BEFORE + "\n")
    at = len(text) if at < 0 else at
    return text[:at] + readme_section() + "\n" + text[at:]


def _background(image: Image.Image) -> tuple:
    """The canvas colour: the commonest colour of the screenshot's top margin, which no node reaches."""
    strip = image.crop((0, 0, image.width, min(8, image.height)))
    return max(strip.getcolors(strip.width * strip.height))[1]


def _save_under(image: Image.Image, path: Path, limit: int, comment: str) -> None:
    for quality in QUALITIES:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, optimize=True, comment=comment)
        if buffer.tell() < limit:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(buffer.getvalue())
            return
    raise RuntimeError(f"{path}: no JPEG quality down to {QUALITIES[-1]} fits in {limit} bytes")


def write_images(workflow: Path, screenshot: Path) -> None:
    with Image.open(screenshot) as shot:
        shot = shot.convert("RGB")
    comment = stamp(workflow)
    square = ImageOps.pad(shot, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.LANCZOS, color=_background(shot))
    _save_under(square, thumbnail_path(workflow), THUMBNAIL_LIMIT, comment)
    if shot.width > DOC_WIDTH:
        shot = shot.resize((DOC_WIDTH, round(shot.height * DOC_WIDTH / shot.width)), Image.LANCZOS)
    _save_under(shot, screenshot_path(workflow), DOC_LIMIT, comment)


def capture(url: str, workflows: list[Path], folder: Path) -> dict[Path, Path]:
    """PNG screenshots of the workflows in the editor at ``url``."""
    sys.path.insert(0, str(ROOT / "tests" / "browser"))
    import frontend
    reason = frontend.unavailable()
    if reason:
        raise SystemExit(f"cannot drive the editor: {reason}")
    shots = {w: folder / f"{w.stem}.png" for w in workflows}
    request = {"url": url, "scale": 1.0, "margin": 24,
               "workflows": [{"name": w.stem, "graph": json.loads(w.read_text()), "out": str(shots[w])}
                             for w in workflows]}
    frontend.run("screenshot", request)
    return shots


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="workflow names (default: all)")
    parser.add_argument("--server", help="URL of a running ComfyUI with this pack (default: start one)")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when an image is missing or stale")
    args = parser.parse_args(argv)
    chosen = [w for w in ui_files() if not args.names or w.stem in args.names]
    if args.check:
        found = [p for w in chosen for p in problems(w)]
        if readme_with_section(README.read_text()) != README.read_text():
            found.append("README.md: the Screenshots section is not the one this script writes")
        for problem in found:
            print(problem, file=sys.stderr)
        return 1 if found else 0
    with tempfile.TemporaryDirectory() as temp:
        if args.server:
            shots = capture(args.server, chosen, Path(temp))
        else:
            if not os.environ.get("COMFYUI_DIR"):
                raise SystemExit("set COMFYUI_DIR to a ComfyUI checkout, or pass --server URL")
            sys.path.insert(0, str(ROOT / "tests" / "comfyui"))
            from comfyui_server import pack_server
            server = pack_server(Path(os.environ["COMFYUI_DIR"]), Path(temp) / "base")
            try:
                server.start()
                shots = capture(server.url, chosen, Path(temp))
            finally:
                server.stop()
        for workflow in chosen:
            write_images(workflow, shots[workflow])
            print(f"{thumbnail_path(workflow).relative_to(ROOT)}, {screenshot_path(workflow).relative_to(ROOT)}")
    README.write_text(readme_with_section(README.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
