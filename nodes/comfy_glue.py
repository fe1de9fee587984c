"""The one place that talks to ComfyUI. Outside ComfyUI (tests, scripts) it falls back to plain
behaviour: model folders under ``$ZEROSHOT_VIDEO_MODELS`` (default ``./models``), cuda if available,
no progress bar, no interrupt."""
from __future__ import annotations

import os
from pathlib import Path

import torch

try:
    import comfy.model_management as model_management
    import comfy.model_patcher
    import comfy.utils
    import folder_paths
    IN_COMFYUI = True
except ImportError:
    IN_COMFYUI = False

# Folder kinds this pack reads; those ComfyUI does not define itself are registered under models/.
MODEL_KINDS = ("diffusers", "animatediff_models", "ipadapter", "clip_vision", "reward_models")


def register_model_folders() -> None:
    if not IN_COMFYUI:
        return
    for kind in MODEL_KINDS:
        if kind not in folder_paths.folder_names_and_paths:
            folder_paths.add_model_folder_path(kind, os.path.join(folder_paths.models_dir, kind))


def models_root() -> Path:
    if IN_COMFYUI:
        return Path(folder_paths.models_dir)
    return Path(os.environ.get("ZEROSHOT_VIDEO_MODELS", "models"))


def model_dirs(kind: str) -> list[Path]:
    if IN_COMFYUI:
        register_model_folders()
        return [Path(p) for p in folder_paths.get_folder_paths(kind)]
    return [models_root() / kind]


def compute_device() -> torch.device:
    if IN_COMFYUI:
        return model_management.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def output_device() -> torch.device:
    return model_management.intermediate_device() if IN_COMFYUI else torch.device("cpu")


def wrap_for_memory_manager(backbone):
    """A ModelPatcher over the backbone's plain module holder (None outside ComfyUI)."""
    if not IN_COMFYUI:
        return None
    return comfy.model_patcher.ModelPatcher(backbone.modules, load_device=model_management.get_torch_device(),
                                            offload_device=model_management.unet_offload_device())


def bring_to_device(handle: "LoadedBackbone") -> None:
    if handle.patcher is not None:
        model_management.load_models_gpu([handle.patcher], force_full_load=True)
        handle.backbone.device = handle.patcher.load_device
    elif handle.backbone.device != compute_device():
        handle.backbone.to(compute_device())


def check_interrupt() -> None:
    if IN_COMFYUI:
        model_management.throw_exception_if_processing_interrupted()


def output_folder() -> Path:
    return Path(folder_paths.get_output_directory()) if IN_COMFYUI else Path("output")


class Progress:
    """Progress bar with an optional preview image (``[H, W, 3]`` float 0..1)."""

    def __init__(self, total: int):
        self.total = max(1, int(total))
        self.bar = comfy.utils.ProgressBar(self.total) if IN_COMFYUI else None

    def update(self, value: int, preview: torch.Tensor | None = None) -> None:
        if self.bar is None:
            return
        image = None
        if preview is not None:
            from PIL import Image
            pixels = (preview.detach().float().clamp(0, 1) * 255).round().byte().cpu().numpy()
            image = ("JPEG", Image.fromarray(pixels), 512)
        self.bar.update_absolute(min(value, self.total), self.total, image)


class LoadedBackbone:
    """What travels on a T2V_BACKBONE link: the engine's Backbone plus its memory-manager handle."""

    def __init__(self, backbone):
        self.backbone = backbone
        self.patcher = wrap_for_memory_manager(backbone)

    def ready(self):
        """The backbone, resident on the compute device."""
        bring_to_device(self)
        return self.backbone
