"""Precision and offload choices that fit a large video model on a small GPU, through diffusers' own hooks.

Three independent choices, applied once to a loaded backbone (``apply_memory_options``):

- **precision** — ``fp8 storage``: the denoising network's Linear/Conv weights are kept in float8_e4m3fn and cast
  to the loader's dtype layer by layer as each runs (diffusers' layerwise casting). Half the bytes of bf16; the
  norms, embeddings and the modules a model keeps in fp32 are skipped, as diffusers does by default, because
  they are the precision-critical ones.
- **offload** — ``group offload``: the network's weights live in CPU memory and each block comes to the GPU
  just before it runs (diffusers' block-level group offload, prefetched on a side CUDA stream), so about one
  block is on the GPU at a time.
- **experts** (only backbones with two denoising networks, Wan 2.2 A14B): whether the expert not in use leaves
  the GPU. The two 14B experts do not both fit a 24 GB GPU even in fp8 (2 × 14.3 GB).

Everything here works on a backbone's parts, never on its family's name: the denoising networks are the
diffusers models among ``backbone.modules`` other than the VAE (a UNet, or one or two transformers). What the
model manager moves as one unit stays in ``backbone.modules``; a network under group offload or taking turns
with another expert is taken out of it, so that moving the backbone never pulls it onto the GPU whole.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .backbone import BackboneModules

DEFAULT, FP8 = "default", "fp8 storage"
PRECISIONS = {
    DEFAULT: "Weights in the loader's dtype (bf16: 2 bytes per weight; Wan 14B 28.6 GB, 1.3B 2.8 GB).",
    FP8: "The denoising network's weights stored in float8 (1 byte per weight) and cast to the loader's dtype "
         "layer by layer as it runs: about half the memory (Wan 14B 14.3 GB, 1.3B 1.4 GB), slightly slower, and "
         "outputs within fp8 rounding of the default (not bit-identical). Norms and embeddings stay in full "
         "precision.",
}
NONE, GROUP = "none", "group offload"
OFFLOADS = {
    NONE: "The whole model on the GPU while it runs, moved there by ComfyUI's model manager (fastest).",
    GROUP: "The denoising network stays in CPU memory and each block comes to the GPU just before it runs, "
           "prefetched on a side stream while the previous block computes: about one block on the GPU instead of "
           "the whole network (Wan 14B: ~0.7 GB per block in bf16), at the cost of copying the whole network over "
           "PCIe once per model call (28.6 GB for Wan 14B in bf16; much of it hidden behind compute at 480p). "
           "Needs the network's size in free CPU memory.",
}
AUTO, ONE, BOTH = "auto", "one at a time", "both resident"
EXPERTS = {
    AUTO: "Wan 2.2 A14B: the idle expert stays on the GPU while both fit and leaves when the other would not "
          "(in ComfyUI its model manager decides). Ignored by single-network models and under group offload.",
    ONE: "Wan 2.2 A14B: only the expert in use is on the GPU; the other moves to CPU memory before it runs. One "
         "swap per run for plain sampling; FIFO windows that straddle the expert boundary swap once per model "
         "call (one expert upload, 14.3 GB in fp8 or 28.6 GB in bf16: about 0.6–1.2 s at 25 GB/s PCIe 4.0).",
    BOTH: "Wan 2.2 A14B: both experts stay on the GPU (no swaps; needs 2 × 14.3 GB in fp8, 2 × 28.6 GB in bf16).",
}


def networks(backbone) -> list[tuple[str, nn.Module]]:
    """The denoising networks (name, module): the diffusers models a backbone holds, other than its VAE. Read
    from the backbone's parts so a new family with its own network names needs no change here."""
    from diffusers import ModelMixin
    held = list(backbone.modules.named_children()) + [(name, module) for name, module in
                                                      getattr(backbone, "_offloaded_networks", {}).items()]
    return [(name, module) for name, module in held if name != "vae" and isinstance(module, ModelMixin)]


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
    ``auto``: only when the incoming one does not fit beside them).

    ``bring(network)`` and ``release(network)`` move one network; a host with its own memory manager (ComfyUI)
    replaces them so that the manager does the moving and counts the memory. ``free_memory(device)`` (bytes or
    None) serves the ``auto`` policy outside such a host."""

    def __init__(self, members: list[nn.Module], device, offload_device, policy: str,
                 free_memory: Callable[[torch.device], int | None] | None = None):
        self.members, self.policy = members, policy
        self.device, self.offload_device = torch.device(device), torch.device(offload_device)
        self.free_memory = free_memory
        self.resident: list[nn.Module] = []
        self.bring: Callable[[nn.Module], None] = lambda network: network.to(self.device)
        self.release: Callable[[nn.Module], None] = lambda network: network.to(self.offload_device)
        self.decides_itself = False  # True when the host's memory manager evicts for ``auto``

    def is_resident(self, network: nn.Module) -> bool:
        return any(network is member for member in self.resident)

    def _must_release(self, incoming: nn.Module) -> bool:
        if self.policy == ONE:
            return True
        if self.decides_itself or self.free_memory is None:
            return False
        free = self.free_memory(self.device)
        return free is not None and free < module_bytes(incoming) * 1.1

    def use(self, network: nn.Module) -> None:
        if self.is_resident(network):
            return
        if self._must_release(network):
            for other in list(self.resident):
                self.release(other)
            self.resident.clear()
        self.bring(network)
        self.resident.append(network)

    def release_all(self) -> None:
        """Everything back to the offload device (the host frees the GPU for others)."""
        for network in self.resident:
            self.release(network)
        self.resident.clear()


def _check(name: str, value: str, options: dict) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}; got {value!r}.")


def apply_memory_options(backbone, precision: str = DEFAULT, offload: str = NONE, device=None,
                         experts: str = AUTO, free_memory: Callable[[torch.device], int | None] | None = None):
    """Apply the ``precision``, ``offload`` and ``experts`` choices (keys of PRECISIONS, OFFLOADS, EXPERTS) to a
    loaded ``backbone`` whose compute device is ``device``; returns the backbone. Call once, right after loading,
    while the weights are still in CPU memory. ``free_memory(device)`` serves the ``auto`` expert policy."""
    _check("precision", precision, PRECISIONS)
    _check("offload", offload, OFFLOADS)
    _check("experts", experts, EXPERTS)
    device = torch.device(device if device is not None else backbone.device)
    nets = networks(backbone)
    if precision == FP8:
        for _, network in nets:
            # the compute dtype is the loader's, so inputs, skipped layers and upcast weights agree
            network.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=backbone.dtype)
    taken_out = {}
    if offload == GROUP:
        for name, network in nets:
            network.to("cpu")
            network.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                         offload_type="block_level", num_blocks_per_group=1,
                                         use_stream=device.type == "cuda")
            taken_out[name] = network
    elif len(nets) > 1 and experts != BOTH:
        taken_out = dict(nets)
        backbone.network_swap = NetworkSwap([network for _, network in nets], device, "cpu", experts, free_memory)
    if taken_out:
        kept = {name: module for name, module in backbone.modules.named_children() if name not in taken_out}
        backbone.modules = BackboneModules(**kept)
        backbone._offloaded_networks = taken_out
    backbone.memory_options = {"precision": precision, "offload": offload, "experts": experts,
                               "device": str(device)}
    return backbone


def transient_gpu_bytes(backbone) -> int:
    """GPU bytes the group-offloaded networks need while a model call runs, beyond what the model manager moved
    (the blocks on their way through); 0 without group offload (swapped experts are counted as each is brought)."""
    options = getattr(backbone, "memory_options", {})
    if options.get("offload") != GROUP:
        return 0
    prefetch = torch.device(options["device"]).type == "cuda"
    return sum(group_offload_bytes(network, prefetch) for network in backbone._offloaded_networks.values())
