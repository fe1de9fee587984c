"""Finding loadable models in the host's model folders, and refusing names that are not among them.

ComfyUI's own file lists only hold files, while diffusers models are folders: they are found by
walking for ``model_index.json``. Every name a node receives is looked up in these listings, so a
workflow cannot point a loader at an arbitrary path.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

from .backbone import ModelFileError

MAX_DEPTH = 4


def _is_model_folder(path: Path) -> bool:
    """A folder that is one model as a whole: its files are not listed on their own."""
    return (path / "model_index.json").is_file() or (path / "config.json").is_file()


def _walk(root: Path, depth: int = 0):
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        yield entry
        if entry.is_dir() and depth < MAX_DEPTH and not _is_model_folder(entry):
            yield from _walk(entry, depth + 1)


def _class_name(config: Path) -> str | None:
    try:
        return json.loads(config.read_text()).get("_class_name")
    except (OSError, ValueError):
        return None


def _listing(dirs: Iterable[Path], keep: Callable[[Path], bool]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in dirs:
        root = Path(root)
        for entry in _walk(root):
            if keep(entry):
                found.setdefault(entry.relative_to(root).as_posix(), entry)
    return dict(sorted(found.items()))


def diffusers_models(dirs) -> dict[str, Path]:
    """Folders holding a ``model_index.json`` (any pipeline: the loader tells what it cannot use)."""
    return _listing(dirs, lambda p: p.is_dir() and (p / "model_index.json").is_file())


def motion_adapters(dirs) -> dict[str, Path]:
    """MotionAdapter folders and single ``.safetensors`` motion-module files."""
    return _listing(dirs, lambda p: (p.is_dir() and _class_name(p / "config.json") == "MotionAdapter")
                    or (p.is_file() and p.suffix == ".safetensors"))


def weight_files(dirs) -> dict[str, Path]:
    """``.safetensors`` files, and transformers folders (a ``config.json`` beside safetensors weights)."""
    return _listing(dirs, lambda p: (p.is_file() and p.suffix == ".safetensors")
                    or (p.is_dir() and (p / "config.json").is_file() and any(p.glob("*.safetensors"))))


def config_folders(dirs) -> dict[str, Path]:
    """transformers model folders (a ``config.json``), whatever their weights: the loader refuses pickles
    with the reason, rather than the folder silently missing from the list."""
    return _listing(dirs, lambda p: p.is_dir() and (p / "config.json").is_file())


def resolve(name: str, listing: dict[str, Path], kind: str, dirs) -> Path:
    if name in listing:
        return listing[name]
    places = ", ".join(str(d) for d in dirs) or "(no folder registered)"
    if not listing:
        raise ModelFileError(f"No {kind} found. Put them in: {places}")
    raise ModelFileError(f"'{name}' is not a {kind} in {places}. Choose one of: {', '.join(listing)}")
