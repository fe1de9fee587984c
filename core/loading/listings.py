"""Finding loadable models in the host's model folders, and refusing names that are not among them.

ComfyUI's own file lists only hold files, while diffusers models are folders: they are found by
walking for ``model_index.json``. Every name a node receives is looked up in these listings, so a
workflow cannot point a loader at an arbitrary path.

The host lists models on every validation and every ``/object_info``, so a walk must stay short whatever the
folders hold: symlinks are followed (users link model folders kept elsewhere), but each real folder is visited
once (a link loop adds nothing), no deeper than MAX_DEPTH, and for at most WALK_SECONDS per listing (a link to
``/usr`` would otherwise cost seconds each time); a walk cut short says so in the log.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from time import monotonic
from typing import Callable, Iterable

from .file_checks import ModelFileError

log = logging.getLogger(__name__)

MAX_DEPTH = 4
WALK_SECONDS = 2.0


def _is_model_folder(path: Path) -> bool:
    """A folder that is one model as a whole: its files are not listed on their own."""
    return (path / "model_index.json").is_file() or (path / "config.json").is_file()


class _Walk:
    """One listing's walk: the real folders seen so far and the time left."""

    def __init__(self, seconds: float):
        self.seen: set[str] = set()
        self.deadline = monotonic() + seconds
        self.cut: Path | None = None  # the folder the walk stopped in, when time ran out

    def first_visit(self, folder: Path) -> bool:
        real = os.path.realpath(folder)
        if real in self.seen:
            return False
        self.seen.add(real)
        return True

    def entries(self, folder: Path, depth: int = 0):
        """Everything under ``folder`` (not inside model folders), each real folder once; a folder's own entries
        before those of its subfolders, so that a deep or slow subfolder (a link to ``/usr``) cannot use up the
        time before the models beside it are listed."""
        try:
            children = sorted(folder.iterdir())
        except OSError:
            return
        below = []
        for entry in children:
            if self.cut is not None:
                return
            if monotonic() > self.deadline:
                self.cut = folder
                return
            if entry.is_dir():
                if not self.first_visit(entry):
                    continue  # a link back up (a loop), or a second way to a folder already listed
                yield entry
                if depth < MAX_DEPTH and not _is_model_folder(entry):
                    below.append(entry)
            else:
                yield entry
        for entry in below:
            yield from self.entries(entry, depth + 1)


def _class_name(config: Path) -> str | None:
    try:
        return json.loads(config.read_text()).get("_class_name")
    except (OSError, ValueError):
        return None


def _listing(dirs: Iterable[Path], keep: Callable[[Path], bool]) -> dict[str, Path]:
    dirs = [Path(d) for d in dirs]
    found: dict[str, Path] = {}
    walk = _Walk(WALK_SECONDS)
    for root in dirs:
        if not walk.first_visit(root):
            continue
        for entry in walk.entries(root):
            if keep(entry):
                found.setdefault(entry.relative_to(root).as_posix(), entry)
        if walk.cut is not None:
            log.warning("Listing models stopped after %.0f s in '%s': the model folders hold too much to search "
                        "(a link to a large folder?). Models further on are not listed; keep only models and links "
                        "to model folders under %s.", WALK_SECONDS, walk.cut, ", ".join(map(str, dirs)))
            break
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


def single_files(dirs) -> dict[str, Path]:
    """``.safetensors`` files only: ComfyUI's single-file folders (checkpoints, diffusion_models, text_encoders,
    vae) also hold .ckpt/.pt/.gguf files this pack never opens (pickles, or formats diffusers cannot run)."""
    return _listing(dirs, lambda p: p.is_file() and p.suffix == ".safetensors")


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
