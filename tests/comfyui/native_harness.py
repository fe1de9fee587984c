"""ComfyUI's own model stack in-process, for the checks of the native MODEL path (``native_checks.py``).

Runs under ComfyUI's python (``COMFYUI_PYTHON``): ComfyUI's modules come from ``COMFYUI_DIR`` and this pack is
imported as ComfyUI imports a custom node (a package named after its folder, relative imports inside), so the
checks drive exactly the objects ComfyUI's loaders make (``comfy.sd``, ``comfy.model_patcher``), with no server.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACK = "comfyui_zeroshot_video"


def import_comfy_and_pack():
    """(the pack's module, ComfyUI's ``comfy`` package), ComfyUI's checkout first on the path."""
    comfy_dir = Path(os.environ["COMFYUI_DIR"]).resolve()
    sys.path.insert(0, str(comfy_dir))
    import comfy.cli_args
    comfy.cli_args.args.cpu = os.environ.get("NATIVE_CHECKS_DEVICE", "cpu") == "cpu"  # as `main.py --cpu`
    import comfy.model_management  # noqa: F401
    import comfy.sd  # noqa: F401
    import comfy
    return import_custom_node(ROOT, PACK), comfy


def import_custom_node(folder: Path, name: str):
    """Another custom node pack (its folder), imported as ComfyUI imports one: a package, relative imports inside."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def pack_module(name: str):
    """A module of the pack by its dotted name inside the pack (``nodes.native.backbone``)."""
    return importlib.import_module(f"{PACK}.{name}")
