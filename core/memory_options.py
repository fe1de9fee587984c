"""Precision and offload choices that fit a large video model on a small GPU, through diffusers' own hooks.

Four independent choices, applied once to a loaded backbone (``apply_memory_options``):

- **precision** — ``fp8 storage``: the Linear/Conv weights of the denoising network(s) and of the text encoder are
  kept in float8_e4m3fn and cast to the loader's dtype layer by layer as each runs (diffusers' layerwise casting).
  Half the bytes of bf16; norms, embeddings and the modules a model keeps in fp32 are skipped, as diffusers does
  by default, because they are the precision-critical ones. The VAE is left as it is (small, and its output is
  the picture).
- **offload** — ``group offload``: a network's weights live in CPU memory and each block comes to the GPU
  just before it runs (diffusers' block-level group offload, prefetched on a side CUDA stream), so about one
  block is on the GPU at a time.
- **vae_precision**: the VAE's own dtype. Decoding at full resolution is the largest activation a run has (the
  Wan 2.1 VAE at 832×480 in float32: 7.8 GB for one latent frame, more than the 1.3B model's call), so on a small
  GPU it is the VAE, not the diffusion model, that decides the fit.
- **experts** (only backbones with two denoising networks, Wan 2.2 A14B): whether the expert not in use leaves
  the GPU. The two 14B experts do not both fit a 24 GB GPU even in fp8 (2 × 14.5 GB).

Everything here works on a backbone's parts, never on its family's name: the denoising networks are the
diffusers models among ``backbone.modules`` other than the VAE (a UNet, or one or two transformers). What the
model manager moves as one unit stays in ``backbone.modules``; a network under group offload or taking turns
with another expert is taken out of it, so that moving the backbone never pulls it onto the GPU whole.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .interface import BackboneModules

DEFAULT, FP8 = "default", "fp8 storage"
PRECISIONS = {
    DEFAULT: "Weights in the loader's dtype (bf16: 2 bytes per weight; Wan 14B 28.6 GB, 1.3B 2.84 GB, UMT5-XXL 11.4 GB).",
    FP8: "The weights of the diffusion model and the text encoder stored in float8 (1 byte per weight) and cast to "
         "the loader's dtype layer by layer as they run: about half the memory (Wan 14B 14.5 GB, 1.3B 1.45 GB, "
         "UMT5-XXL 7.7 GB), slightly slower, and outputs within fp8 rounding of the default (not bit-identical). "
         "Norms and embeddings stay in full precision; the VAE is untouched.",
}
NONE, GROUP = "none", "group offload"
OFFLOADS = {
    NONE: "The whole model on the GPU while it runs, moved there by ComfyUI's model manager (fastest).",
    GROUP: "The diffusion model stays in CPU memory and each block comes to the GPU just before it runs, "
           "prefetched on a side stream while the previous block computes: about two blocks on the GPU instead of "
           "the whole model (Wan 14B in bf16: 1.9 GB instead of 28.6 GB), at the cost of copying the whole model "
           "over PCIe once per model call (much of it hidden behind compute at 480p). Wan's UMT5 text encoder is "
           "offloaded layer by layer too (for 8 GB GPUs: it is 11.4 GB in bf16). Needs the model's size in free "
           "CPU memory.",
}
BF16 = "bf16"
VAE_PRECISIONS = {
    DEFAULT: "The family's own: Wan's VAE in float32, as Wan's code runs it; the other families' in the loader's "
             "dtype.",
    BF16: "The VAE in bfloat16: half its weights and about half the memory of decoding and encoding (the Wan 2.1 "
          "VAE at 832×480: 4.0 GB instead of 7.8 GB for one latent frame; what Wan 1.3B on an 8 GB GPU needs). "
          "Frames within bf16 rounding of float32, not bit-identical; as ComfyUI's own VAE loader runs Wan's VAE on "
          "GPUs with bf16.",
}
AUTO, ONE, BOTH = "auto", "one at a time", "both resident"
EXPERTS = {
    AUTO: "Wan 2.2 A14B: the idle expert stays on the GPU while both fit and leaves when the other would not "
          "(in ComfyUI its model manager decides). Ignored by single-network models and under group offload.",
    ONE: "Wan 2.2 A14B: only the expert in use is on the GPU; the other moves to CPU memory before it runs. One "
         "swap per run for plain sampling; FIFO windows that straddle the expert boundary swap once per model "
         "call. A swap copies one expert out and the other in: 2 × 14.5 GB in fp8 (about 1.2 s at 25 GB/s, PCIe "
         "4.0 x16), 2 × 28.6 GB in bf16 (about 2.3 s).",
    BOTH: "Wan 2.2 A14B: both experts stay on the GPU (no swaps; needs 2 × 14.5 GB in fp8, 2 × 28.6 GB in bf16).",
}


TEXT_ENCODER_SKIP = ("norm", "embed", "shared", "relative_attention_bias", r"\.wo$")
"""What stays in full precision in a text encoder under fp8 storage: norms and embeddings (precision-critical, and
UMT5's 1 B-parameter vocabulary table is looked up row by row, never multiplied whole), T5's relative-position
table, and T5's last feed-forward projection ``wo``, whose weight dtype T5 casts its hidden states to (in fp8 that
raises)."""


def networks(backbone) -> list[tuple[str, nn.Module]]:
    """The denoising networks (name, module) the backbone declares (``denoising_networks``), wherever held."""
    return list(backbone.denoising_networks().items())


def module_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers as stored (fp8 weights count one byte each)."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def group_offload_bytes(network: nn.Module, prefetch: bool) -> int:
    """What block-level group offload keeps on the GPU at once: the modules outside the block lists (embeddings,
    head) and the largest block, twice with prefetching (the next block arrives while one runs)."""
    blocks = [block for child in network.children() if isinstance(child, (nn.ModuleList, nn.Sequential))
              for block in child]
    outside = module_bytes(network) - sum(module_bytes(block) for block in blocks)
    largest = max((module_bytes(block) for block in blocks), default=0)
    return outside + largest * (2 if prefetch else 1)


class NetworkSwap:
    """Denoising networks that take turns on the compute device: ``use(network)`` before each one's call brings
    it there, first sending the others to the offload device when the policy says so (``one at a time``: always;
    ``auto``: only when the incoming one does not fit beside them, judged by ``free_memory(device, needed)``).

    A host with its own memory manager (ComfyUI) sets ``host``, an object with ``bring(network)``,
    ``release(network)`` and ``on_device(network) -> bool``: the manager then does the moving and the counting,
    and under ``auto`` evicts what it must itself (the idle expert, or another node's model). ``bring`` is then
    asked before every call, because the manager may have evicted a network between calls."""

    def __init__(self, members: list[nn.Module], device, offload_device, policy: str,
                 free_memory: Callable[[torch.device, int], int | None] | None = None):
        self.members, self.policy, self.free_memory = members, policy, free_memory
        self.device, self.offload_device = torch.device(device), torch.device(offload_device)
        self.host = None
        self.resident: list[nn.Module] = []  # what this object moved to the device (without a host)

    def is_resident(self, network: nn.Module) -> bool:
        if self.host is not None:
            return self.host.on_device(network)
        return any(network is member for member in self.resident)

    def _must_release(self, incoming: nn.Module) -> bool:
        if self.policy == ONE:
            return True
        if self.host is not None or self.free_memory is None:
            return False
        need = int(module_bytes(incoming) * 1.1)
        free = self.free_memory(self.device, need)
        return free is not None and free < need

    def use(self, network: nn.Module) -> None:
        if self.host is None and self.is_resident(network):
            return
        if self._must_release(network):
            for other in self.members:
                if other is not network and self.is_resident(other):
                    self._release(other)
        if self.host is not None:
            self.host.bring(network)
        else:
            network.to(self.device)
        if not any(network is member for member in self.resident):
            self.resident.append(network)

    def _release(self, network: nn.Module) -> None:
        if self.host is not None:
            self.host.release(network)
        else:
            network.to(self.offload_device)
        self.resident = [member for member in self.resident if member is not network]


def group_offload_unavailable() -> str | None:
    """Why diffusers cannot set group offload up here, or None. Before 0.41 it looks up the machine's accelerator
    module even for CPU onloading, which fails where there is no GPU (on a GPU machine every version works)."""
    import diffusers
    from packaging.version import Version
    accelerator = getattr(torch, "accelerator", None)
    if Version(diffusers.__version__).release >= (0, 41) or accelerator is None \
            or accelerator.current_accelerator() is not None:
        return None
    return (f"group offload needs a GPU with diffusers {diffusers.__version__} (from 0.41 on it also runs without "
            "one); on the CPU choose offload 'none': the weights are in CPU memory already.")


def _check(name: str, value: str, options: dict) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}; got {value!r}.")


def store_in_fp8(module: nn.Module, compute_dtype: torch.dtype, text_encoder: bool = False) -> nn.Module:
    """``fp8 storage`` on one module: a denoising network with diffusers' default skips, a text encoder with
    TEXT_ENCODER_SKIP as well."""
    if not text_encoder:
        module.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)
        return module
    from diffusers.hooks import apply_layerwise_casting
    apply_layerwise_casting(module, storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype,
                            skip_modules_pattern=TEXT_ENCODER_SKIP)
    return module


def check_memory_options(precision: str = DEFAULT, offload: str = NONE, experts: str = AUTO,
                         vae_precision: str = DEFAULT) -> None:
    """Refuse an unknown choice, before anything is loaded."""
    _check("precision", precision, PRECISIONS)
    _check("offload", offload, OFFLOADS)
    _check("experts", experts, EXPERTS)
    _check("vae_precision", vae_precision, VAE_PRECISIONS)


def apply_memory_options(backbone, precision: str = DEFAULT, offload: str = NONE, device=None,
                         experts: str = AUTO, free_memory: Callable[[torch.device, int], int | None] | None = None,
                         vae_precision: str = DEFAULT):
    """Apply the ``precision``, ``offload``, ``experts`` and ``vae_precision`` choices (keys of PRECISIONS,
    OFFLOADS, EXPERTS, VAE_PRECISIONS) to a loaded ``backbone`` whose compute device is ``device``; returns the
    backbone. Call once, right after loading, while the weights are still in CPU memory. ``free_memory(device, needed)``
    serves the ``auto`` expert policy."""
    check_memory_options(precision, offload, experts, vae_precision)
    if backbone.memory_options is not None:
        raise ValueError(f"'{backbone.name}' already has its memory options ({backbone.memory_options}); load it "
                         "again to choose others.")
    device = torch.device(device if device is not None else backbone.device)
    nets = networks(backbone)
    if offload == GROUP and group_offload_unavailable():
        raise ValueError(f"offload '{GROUP}': {group_offload_unavailable()}")
    if precision == FP8:
        for _, network in nets:
            # the compute dtype is the loader's, so inputs, skipped layers and upcast weights agree
            store_in_fp8(network, backbone.dtype)
        store_in_fp8(backbone.text_encoder, backbone.dtype, text_encoder=True)
    if vae_precision == BF16:
        backbone.vae.to(torch.bfloat16)
    taken_out = {}
    if offload == GROUP:
        streams = device.type == "cuda"
        for name, network in nets:
            network.to("cpu")
            network.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                         offload_type="block_level", num_blocks_per_group=1, use_stream=streams)
            taken_out[name] = network
        if backbone.text_encoder_moves and backbone.text_encoder_host is None:
            _offload_text_encoder(backbone, device, streams)
    elif len(nets) > 1 and experts != BOTH:
        taken_out = dict(nets)
        backbone.network_swap = NetworkSwap([network for _, network in nets], device, "cpu", experts, free_memory)
    if taken_out:
        kept = {name: module for name, module in backbone.modules.named_children() if name not in taken_out}
        backbone.modules = BackboneModules(**kept)
        backbone.offloaded_networks = taken_out
    backbone.memory_options = {"precision": precision, "offload": offload, "experts": experts,
                               "vae_precision": vae_precision, "device": str(device)}
    return backbone


class _MovedByHooks:
    """The ``text_encoder_host`` of a group-offloaded text encoder: nothing to move, its hooks bring each layer."""

    def bring(self, module: nn.Module) -> None:
        pass

    def release(self, module: nn.Module) -> None:
        pass


def _offload_text_encoder(backbone, device: torch.device, streams: bool) -> None:
    """Leaf-level group offload for a text encoder that comes to the GPU on its own (Wan's UMT5-XXL, 11.4 GB in
    bf16 and 7.7 GB in fp8 storage, more than an 8 GB GPU holds): each layer comes as it runs. Leaf level because
    a transformers encoder keeps its blocks one level down, where block-level offload would move it whole."""
    from diffusers.hooks import apply_group_offloading
    backbone.text_encoder.to("cpu")
    apply_group_offloading(backbone.text_encoder, onload_device=device, offload_device=torch.device("cpu"),
                           offload_type="leaf_level", use_stream=streams)
    backbone.text_encoder_host = _MovedByHooks()


def leaf_offload_bytes(module: nn.Module, prefetch: bool) -> int:
    """What leaf-level group offload keeps on the GPU at once: the largest layer, twice with prefetching."""
    largest = max((module_bytes(m) for m in module.modules() if not list(m.children())), default=0)
    return largest * (2 if prefetch else 1)


def transient_gpu_bytes(backbone) -> int:
    """GPU bytes the group-offloaded networks (or text encoder) need while they run, beyond what the model manager
    moved (the blocks on their way through); 0 without group offload (swapped experts and a text encoder that
    comes whole are counted as each is brought)."""
    options = backbone.memory_options or {}
    if options.get("offload") != GROUP:
        return 0
    prefetch = torch.device(options["device"]).type == "cuda"
    networks_bytes = sum(group_offload_bytes(network, prefetch) for network in backbone.offloaded_networks.values())
    encoder_bytes = 0
    if isinstance(backbone.text_encoder_host, _MovedByHooks):
        encoder_bytes = leaf_offload_bytes(backbone.text_encoder, prefetch)
    return max(networks_bytes, encoder_bytes)  # the text encoder runs before the networks, never beside them
