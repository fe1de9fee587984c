"""A lower bound of the memory a request needs, to refuse before it starts what cannot fit.

An absurd request (1024 frames at 4096², one UNet call) otherwise runs for minutes before the allocator gives up,
or pushes the machine into swap. The estimate counts only what certainly exists at once, so it never refuses work
that would fit: during a model call, the network's input (the latent stacked over the classifier-free-guidance
branches, in the model's dtype) and, on every branch, tensors at the first block's resolution and at the widest
feature width every block there has: two for a patchifying transformer (its feed-forward projection and its
activation, or two at its inner width if that is wider), ten for a UNet (each family's ``memory_profile``); while
sampling, also the float32 latent the sampler holds; while decoding, a layer's input and output at a decoder's last
stage on one chunk (the pack never tiles the VAE), and the decoded float frames on the output device. Weights are already resident when the check runs, so they are in neither side of the comparison.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .loading.file_checks import available_memory

GB = 1e9
ACTIVATION_COPIES = 2  # two tensors at the widest width exist at the same time
FreeMemory = Callable[[torch.device, int], "int | None"]
"""``free_memory(device, needed)``: bytes free on ``device`` once the host has made room for ``needed`` bytes where
it can (ComfyUI unloads other nodes' idle models, as it does for its own samplers), or None when unknown (then
nothing is checked). Without the room-making, a model another workflow left cached on the GPU would have a request
refused that fits once that model is unloaded."""

SAMPLING_ADVICE = ("Lower frames or width/height (in FIFOQueueWithImageEmbed also window_batch), or for a long video "
                   "use FIFOQueueWithImageEmbed or RepeatAndSlideSampler, whose model calls take a fixed window of "
                   "frames whatever the length.")
DECODE_ADVICE = ("Lower DecodeVideoLatent's chunk (frames per VAE call; same result), decode fewer or smaller frames, "
                 "or load the backbone with vae_precision bf16 (about half the decoding memory).")
OUTPUT_ADVICE = ("Make fewer frames or lower width/height, or make a long video with FIFOQueueWithImageEmbed with "
                 "stream_to_disk on and keep_frames off.")


def device_free_memory(device, needed: int = 0) -> int | None:
    """Bytes free on ``device`` outside a host that counts them itself: what CUDA reports free, the memory the
    system can still hand out for the CPU; None where unknown (then nothing is checked). Without a host there is
    nothing to unload, so ``needed`` changes nothing."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        return available_memory()
    return None


class NotEnoughMemoryError(ValueError):
    """A request that needs more memory than the device has free; the message says what to lower."""


def _bytes(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def activation_bytes(backbone, latent_shape, branches: int = 2) -> int:
    """Activation bytes one model call on latents ``[B, C, F, h, w]`` with ``branches`` CFG branches needs at least."""
    batch, _, frames, h, w = (int(s) for s in latent_shape)
    profile = backbone.memory_profile()
    width, (pf, ph, pw), copies = profile.width, profile.cells, profile.copies
    positions = batch * math.ceil(frames / pf) * (h // ph) * (w // pw)
    return branches * positions * width * _bytes(backbone.dtype) * copies


def model_call_bytes(backbone, latent_shape, branches: int = 2) -> int:
    """Bytes one model call needs at least beyond the latent itself: its stacked input and its activations."""
    stacked_input = branches * math.prod(int(s) for s in latent_shape) * _bytes(backbone.dtype)
    return stacked_input + activation_bytes(backbone, latent_shape, branches)


def latent_bytes(latent_shape) -> int:
    """One float32 latent (or noise) of this shape."""
    return math.prod(int(s) for s in latent_shape) * 4


def decode_step_bytes(backbone, latent_shape, chunk: int) -> int:
    """Bytes one VAE decoder call needs at least: ``chunk`` latent frames of an image VAE, or one latent frame (4
    pixel frames after a video's first) of a causal video VAE, at the decoder's last stage."""
    batch, _, frames, h, w = (int(s) for s in latent_shape)
    profile = backbone.memory_profile()
    stage = profile.stage_side
    pixel_frames = (backbone.frames_per_latent if frames > 1 else 1) if profile.causal else min(chunk, batch * frames)
    return pixel_frames * h * stage * w * stage * profile.vae_width * _bytes(profile.vae_dtype) * ACTIVATION_COPIES


def decoded_bytes(backbone, latent_shape) -> int:
    """The float32 IMAGE frames ``[B·frames, H, W, 3]`` a decode returns."""
    batch, _, frames, h, w = (int(s) for s in latent_shape)
    side = backbone.memory_profile().pixel_side
    return batch * backbone.video_frames(frames) * h * side * w * side * 3 * 4


def _refuse_over(need: int, free_memory: FreeMemory, device, what: str, details: str, advice: str) -> None:
    free = free_memory(torch.device(device), need)
    if free is not None and need > free:
        raise NotEnoughMemoryError(f"{what} needs at least {need / GB:.1f} GB on {device} ({details}), but only "
                                   f"{free / GB:.1f} GB is free there. {advice}")


def _request(latent_shape, branches: int | None = None) -> str:
    batch, _, frames, h, w = (int(s) for s in latent_shape)
    text = f"{frames} latent frames of {h}×{w}, batch {batch}"
    return text if branches is None else f"{text}, {branches} guidance branch{'es' if branches > 1 else ''}"


def check_model_call(backbone, latent_shape, free_memory: FreeMemory | None, branches: int = 2) -> None:
    """Refuse a model call on latents ``latent_shape`` that cannot fit in the compute device's free memory."""
    if free_memory is None:
        return
    _refuse_over(model_call_bytes(backbone, latent_shape, branches), free_memory, backbone.device,
                 "One model call", _request(latent_shape, branches), SAMPLING_ADVICE)


def check_sampling(backbone, latent_shape, free_memory: FreeMemory | None, branches: int = 2) -> None:
    """Before any latent is made: refuse sampling latents ``latent_shape`` (the shape of one model call's input)
    when the latent and one model call on it cannot fit in the compute device's free memory."""
    if free_memory is None:
        return
    need = model_call_bytes(backbone, latent_shape, branches) + latent_bytes(latent_shape)
    _refuse_over(need, free_memory, backbone.device, "Sampling", _request(latent_shape, branches), SAMPLING_ADVICE)


def check_decode(backbone, latent_shape, chunk: int, free_memory: FreeMemory | None,
                 out_device: torch.device | str = "cpu") -> None:
    """Refuse decoding latents ``latent_shape`` ``chunk`` frames at a time when one decoder call cannot fit on the
    VAE's device, or the decoded frames cannot fit on ``out_device``."""
    if free_memory is None:
        return
    vae_device, out_device = next(backbone.vae.parameters()).device, torch.device(out_device)
    frames = decoded_bytes(backbone, latent_shape)
    _refuse_over(frames, free_memory, out_device, "Holding the decoded frames", _request(latent_shape), OUTPUT_ADVICE)
    # on one device the decoded frames and the decoder's work add up
    step = decode_step_bytes(backbone, latent_shape, chunk) + (frames if vae_device == out_device else 0)
    _refuse_over(step, free_memory, vae_device, f"Decoding with chunk {chunk}", _request(latent_shape), DECODE_ADVICE)
