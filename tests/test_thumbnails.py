"""Every UI workflow has the thumbnail ComfyUI's template browser shows for it and a README screenshot, both
made from the workflow as it is now (tools/thumbnails.py stamps each with the workflow's SHA-256)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import thumbnails  # noqa: E402

UI_FILES = thumbnails.ui_files()
REGENERATE = ("regenerate with COMFYUI_DIR=/path/to/ComfyUI python tools/thumbnails.py (needs Chromium and "
              "Node.js, see tests/browser/)")


def test_there_are_workflows():
    assert UI_FILES


@pytest.mark.parametrize("workflow", UI_FILES, ids=lambda p: p.stem)
def test_workflow_has_a_current_thumbnail_and_screenshot(workflow):
    problems = thumbnails.problems(workflow)
    assert not problems, "\n".join(problems) + "\n" + REGENERATE


@pytest.mark.parametrize("workflow", UI_FILES, ids=lambda p: p.stem)
def test_thumbnail_is_where_the_template_browser_asks_for_it(workflow):
    # The frontend requests /api/workflow_templates/<pack>/<name>.jpg for a pack's template <name>.json.
    path = workflow.parent / f"{workflow.stem}.jpg"
    with Image.open(path) as image:
        assert image.size == (thumbnails.THUMBNAIL_SIDE, thumbnails.THUMBNAIL_SIDE)


def test_no_image_without_its_workflow():
    names = {w.stem for w in UI_FILES}
    strays = [p for p in [*(ROOT / "workflows").glob("*.jpg"), *thumbnails.DOCS_DIR.glob("*.jpg")]
              if p.stem not in names]
    assert not strays, f"images of workflows that no longer exist: {strays}"


def test_readme_shows_every_screenshot():
    text = thumbnails.README.read_text()
    assert thumbnails.readme_with_section(text) == text, f"README.md's Screenshots section is stale: {REGENERATE}"
    for workflow in UI_FILES:
        assert f"(docs/images/{workflow.stem}.jpg)" in text
