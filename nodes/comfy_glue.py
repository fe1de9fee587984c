"""The one place that talks to ComfyUI. Outside ComfyUI (tests, scripts) it falls back to plain
behaviour: model folders under ``$ZEROSHOT_VIDEO_MODELS`` (default ``./models``), cuda if available,
no progress bar, no interrupt."""
from __future__ import annotations

import base64
import io
import os
import threading
import time
import weakref
from pathlib import Path

import torch

from ..core.interface import BackboneModules
from ..core.memory_estimate import device_free_memory
from ..core.memory_options import transient_gpu_bytes
from ..core.methods.host import Host

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


def _patcher(modules):
    return comfy.model_patcher.ModelPatcher(modules, load_device=model_management.get_torch_device(),
                                            offload_device=model_management.unet_offload_device())


class _Managed:
    """Modules that come to the GPU one at a time, each under its own ModelPatcher, so that ComfyUI makes room for
    one when it comes (evicting what it must: another node's model, or under ``auto`` the idle expert), counts it
    while it is there, and can evict it for another node once it is idle. Serves as ``NetworkSwap.host`` for
    experts that take turns and as Wan's ``text_encoder_host`` (UMT5, brought for the prompts and released)."""

    def __init__(self, modules):
        # a plain holder: a diffusers model's read-only ``device`` property would refuse the patcher's bookkeeping
        self.patchers = {id(module): _patcher(BackboneModules(module=module)) for module in modules}

    def bring(self, module) -> None:
        model_management.load_models_gpu([self.patchers[id(module)]], force_full_load=True)

    def release(self, module) -> None:
        self.patchers[id(module)].detach()

    def on_device(self, module) -> bool:
        return self.patchers[id(module)].loaded_size() > 0


def wrap_for_memory_manager(backbone):
    """A ModelPatcher over what moves to the GPU as one unit, ``backbone.modules`` (None outside ComfyUI).

    What must not go to the GPU with that unit is managed apart: experts taking turns
    (core.memory_options.NetworkSwap) and Wan's text encoder get a patcher each (``_Managed``); group-offloaded
    networks get none, since their weights stay in CPU memory and only the blocks in flight use the GPU, which
    ``bring_to_device`` asks ComfyUI to free as ``memory_required``."""
    if not IN_COMFYUI:
        return None
    swap = backbone.network_swap
    if swap is not None:
        swap.host = _Managed(swap.members)
    if backbone.text_encoder_moves and backbone.text_encoder_host is None:  # not group-offloaded
        backbone.text_encoder_host = _Managed([backbone.text_encoder])
    return _patcher(backbone.modules)


def bring_to_device(handle: "LoadedBackbone") -> None:
    if handle.patcher is not None:
        model_management.load_models_gpu([handle.patcher], memory_required=transient_gpu_bytes(handle.backbone),
                                         force_full_load=True)
        handle.backbone.device = handle.patcher.load_device
    elif handle.backbone.device != compute_device():
        handle.backbone.to(compute_device())


_KEPT = weakref.WeakSet()


def keep_loaded(patchers) -> None:
    """ComfyUI MODELs a pack node is running on: :func:`free_memory` leaves them loaded, as it leaves the pack's own."""
    _KEPT.update(patchers)


def check_interrupt() -> None:
    if IN_COMFYUI:
        model_management.throw_exception_if_processing_interrupted()


def free_memory(device, needed: int = 0) -> int | None:
    """Bytes free on ``device`` for the memory checks of core.memory_estimate; None when unknown (no check).
    ComfyUI's own count where it runs (it includes memory its allocator holds but does not use), after asking it
    to unload other models until ``needed`` bytes are free, as it does before its own samplers run: the pack's own
    models stay (the one about to run among them). On DirectML, ComfyUI reports a placeholder 1 GB that would
    refuse everything: None."""
    device = torch.device(device)
    if not IN_COMFYUI:
        return device_free_memory(device, needed)
    if getattr(model_management, "directml_enabled", False):
        return None
    if needed > model_management.get_free_memory(device):
        ours = [loaded for loaded in model_management.current_loaded_models
                if isinstance(getattr(loaded.model, "model", None), BackboneModules) or loaded.model in _KEPT]
        model_management.free_memory(needed, device, keep_loaded=ours)
    return int(model_management.get_free_memory(device))


def clip_tokenizer_dir() -> Path | None:
    """ComfyUI's own CLIP-L tokenizer folder (``comfy/sd1_tokenizer``, what its own SD1.5 loader reads), for SD1.5
    checkpoints, which carry no tokenizer; None outside ComfyUI (the pack then builds its own from the shipped
    merges)."""
    if not IN_COMFYUI:
        return None
    folder = Path(comfy.utils.__file__).parent / "sd1_tokenizer"
    return folder if folder.is_dir() else None


def output_folder() -> Path:
    return Path(folder_paths.get_output_directory()) if IN_COMFYUI else Path("output")


def _pil(image: torch.Tensor):
    from PIL import Image
    return Image.fromarray((image.detach().float().clamp(0, 1) * 255).round().byte().cpu().numpy())


# The websocket events js/zeroshot_video_preview.js listens to.
FRAMES_EVENT, DONE_EVENT = "zeroshot_video.frames", "zeroshot_video.done"


class FrameStream:
    """A sampler's new frames on their way to the browser, as small JPEGs on ComfyUI's websocket.

    A small model emits frames far faster than a browser wants messages, so sending is throttled: at most
    ``rate`` messages a second, each carrying every frame made since the previous message. No frame is
    dropped (the node's preview ends up holding the whole video), the newest frame arrives within 1/rate s
    (a timer sends what waits, even when the sampler's next frame is minutes away), and the last frame goes
    out at once followed by a done event. ``send(event, data)`` must be thread-safe."""

    def __init__(self, send, meta: dict, rate: float = 4.0, size: int = 256, quality: int = 75,
                 clock=time.monotonic, timer=threading.Timer):
        self.send, self.meta, self.interval = send, meta, 1.0 / rate
        self.size, self.quality, self.clock, self.make_timer = size, quality, clock, timer
        self.lock = threading.Lock()
        self.pending: list[dict] = []
        self.sent_at, self.timer, self.count = None, None, 0

    def jpeg(self, image: torch.Tensor) -> str:
        picture = _pil(image)
        picture.thumbnail((self.size, self.size))
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=self.quality)
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def add(self, index: int, image: torch.Tensor, last: bool) -> None:
        data = self.jpeg(image)
        with self.lock:
            self.pending.append({"index": int(index), "image": data})
            self.count += 1
            wait = 0.0 if self.sent_at is None else self.sent_at + self.interval - self.clock()
            if last or wait <= 0:
                self._send_pending()
                if last:
                    self.send(DONE_EVENT, {**self.meta, "frames": self.count})
            elif self.timer is None:
                self.timer = self.make_timer(wait, self.flush)
                self.timer.daemon = True
                self.timer.start()

    def flush(self) -> None:
        with self.lock:
            self._send_pending()

    def _send_pending(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.pending:
            self.send(FRAMES_EVENT, {**self.meta, "frames": self.pending})
            self.pending, self.sent_at = [], self.clock()


def _prompt_server():
    """ComfyUI's running PromptServer, or None (outside ComfyUI, or before its server exists)."""
    if not IN_COMFYUI:
        return None
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer, "instance", None)


def _running(server) -> tuple:
    """(node id, prompt id) of the node ComfyUI is executing, found as its own progress hook finds them."""
    from comfy_execution.utils import get_executing_context
    context = get_executing_context()
    if context is not None:
        return context.node_id, context.prompt_id
    return server.last_node_id, server.last_prompt_id


def _frame_stream() -> FrameStream | None:
    """A stream to the client that queued the running prompt, addressed to the executing node (found as
    ComfyUI's own progress hook finds it); None when no browser is connected to watch."""
    server = _prompt_server()
    if server is None or not (server.sockets if server.client_id is None else server.client_id in server.sockets):
        return None
    node, prompt = _running(server)
    client = server.client_id
    return FrameStream(lambda event, data: server.send_sync(event, data, client), {"node": node, "prompt_id": prompt})


class Progress:
    """Progress bar with an optional preview image (``[H, W, 3]`` float 0..1), and the live animated
    preview of the frames a sampler emits (js/zeroshot_video_preview.js)."""

    def __init__(self, total: int):
        self.total = max(1, int(total))
        self.bar = comfy.utils.ProgressBar(self.total) if IN_COMFYUI else None
        self.stream = _frame_stream() if IN_COMFYUI else None
        self.streaming = False

    def update(self, value: int, preview: torch.Tensor | None = None) -> None:
        """Once frames stream to the animated preview, preview images are left out: the node would
        otherwise show each frame twice, the second time as ComfyUI's still preview under the animation."""
        if self.bar is None:
            return
        image = None if preview is None or self.streaming else ("JPEG", _pil(preview), 512)
        self.bar.update_absolute(min(value, self.total), self.total, image)

    def frame(self, index: int, image: torch.Tensor, count: int) -> None:
        """Frame ``index`` (``[H, W, 3]``) of the ``count``-frame video the node is making has just been
        made: it is shown on the node at once, and the one at ``count - 1`` ends the preview's run."""
        if self.stream is not None:
            self.streaming = True
            self.stream.add(index, image, last=index == count - 1)


class LoadedBackbone:
    """What travels on a T2V_BACKBONE link: the engine's Backbone plus its memory-manager handle."""

    def __init__(self, backbone):
        self.backbone = backbone
        self.patcher = wrap_for_memory_manager(backbone)

    def ready(self):
        """The backbone, resident on the compute device."""
        bring_to_device(self)
        return self.backbone


def progress_text(text: str) -> None:
    """``text`` shown on the running node (ComfyUI's progress text), for what the user should see without reading
    the log; nothing outside ComfyUI, or on a ComfyUI without progress text."""
    server = _prompt_server()
    send = getattr(server, "send_progress_text", None)
    if send is None:
        return
    node = _running(server)[0]
    if node is not None:
        send(text, node)


def add_prompt_handler(handler) -> None:
    """Has ComfyUI call ``handler(body) -> body`` on every POST /prompt body before it validates the prompt;
    nothing outside ComfyUI."""
    server = _prompt_server()
    if server is not None and handler not in getattr(server, "on_prompt_handlers", ()):
        server.add_on_prompt_handler(handler)


def host() -> Host:
    """What a node's run is lent by ComfyUI: its interrupt flag, its memory manager, the output device."""
    return Host(check=check_interrupt, free_memory=free_memory, out_device=output_device())
