"""Refusing work that cannot fit before it starts: the estimate is a lower bound of tensors that really exist at
once (measured with hooks on the tiny models), absurd requests are refused with what to lower, sane ones pass."""
import types

import pytest
import torch

from zeroshot_video.testing import standin_models
from zeroshot_video.core import memory_estimate
from zeroshot_video.core.interface import MemoryProfile
from zeroshot_video.core.families.wan import vae as wan_vae
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.memory_estimate import NotEnoughMemoryError
from zeroshot_video.nodes import comfy_glue as glue

GB = 10 ** 9


def free(amount):
    return lambda device, needed: amount


@pytest.fixture(scope="module", params=["modelscope", "wan"])
def model(request):
    if request.param == "wan":
        from zeroshot_video.nodes.backbone_nodes import LoadT2VBackbone
        return LoadT2VBackbone().load(model=standin_models.WAN21, motion_adapter="none", dtype="fp32")[0].ready()
    return request.getfixturevalue(request.param).ready()


def _output_bytes(modules):
    """Largest output (bytes) each of ``modules`` produced, recorded while inside."""
    seen = [0] * len(modules)

    def record(i):
        def hook(module, args, output):
            output = output[0] if isinstance(output, tuple) else output
            seen[i] = max(seen[i], output.numel() * output.element_size())
        return hook
    return seen, [m.register_forward_hook(record(i)) for i, m in enumerate(modules)]


@torch.no_grad()
@pytest.mark.parametrize("guidance", [1.0, 5.0])
def test_transformer_estimate_is_a_lower_bound_of_tensors_that_coexist(guidance):
    """Wan: the feed-forward's projection and its activation exist at the same time."""
    from zeroshot_video.nodes.backbone_nodes import LoadT2VBackbone
    model = LoadT2VBackbone().load(model=standin_models.WAN21, motion_adapter="none", dtype="fp32")[0].ready()
    x = torch.randn(1, model.channels, 2, 8, 8)
    ffn = model.transformer.blocks[0].ffn.net[0]
    seen, handles = _output_bytes([ffn.proj, ffn])
    network = model.transformer
    stacked = []
    handles.append(network.register_forward_pre_hook(
        lambda module, args, kwargs: stacked.append((args[0] if args else kwargs["hidden_states"]).nbytes),
        with_kwargs=True))
    denoiser = Denoiser(model, guidance)
    denoiser(x, 0.5, encode_text(model, "a", ""))
    for handle in handles:
        handle.remove()
    estimate = memory_estimate.activation_bytes(model, x.shape, denoiser.branches)
    assert sum(seen) / 2 < estimate <= sum(seen)  # tight: not a vacuous bound
    assert memory_estimate.model_call_bytes(model, x.shape, denoiser.branches) == estimate + stacked[0]


PEAK_OF_ONE_CALL = """
import gc, sys, torch
from pathlib import Path
from zeroshot_video.core.families import load_backbone
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.memory_estimate import model_call_bytes

def status(field):  # kB in /proc/self/status
    return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field))

model = load_backbone(sys.argv[1], dtype=torch.float32)
cond, denoiser = encode_text(model, "a", ""), Denoiser(model, 9.0)
x = torch.randn(1, model.channels, 64, 32, 32)
with torch.inference_mode():
    denoiser(x[:, :, :1, :4, :4], 500, cond)  # everything but the activations is allocated now
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the peak from here on: loading's own transients forgotten
    before = status("VmRSS:")
    denoiser(x, 500, cond)
print((status("VmHWM:") - before) * 1024, model_call_bytes(model, x.shape, 2))
"""


def test_unet_estimate_is_a_lower_bound_of_the_measured_peak(models_dir):
    """A UNet holds many tensors of its first width at once (skip connections, norms, attention): the estimate
    counts ten, and one call's measured peak (a fresh process's peak RSS, 64 frames at 32×32) is above it, but
    not by more than 6× (the bound is not vacuous; 2.9× measured)."""
    import subprocess
    import sys
    folder = models_dir / "diffusers" / standin_models.MODELSCOPE
    measured, estimate = map(int, subprocess.run([sys.executable, "-c", PEAK_OF_ONE_CALL, str(folder)],
                                                 capture_output=True, text=True, check=True).stdout.split())
    assert estimate <= measured < 6 * estimate, (estimate, measured)


@torch.no_grad()
def test_decode_estimate_is_a_lower_bound_of_the_decoders_last_stage(model):
    decoder = model.vae.decoder
    last = [decoder.up_blocks[-1], decoder.norm_out if model.family == "wan" else decoder.conv_norm_out]
    seen, handles = _output_bytes(last)
    latent = torch.randn(1, model.channels, 3, 4, 4)
    frames = model.decode(latent, 2)
    for handle in handles:
        handle.remove()
    assert memory_estimate.decode_step_bytes(model, latent.shape, 2) <= sum(seen)
    assert memory_estimate.decoded_bytes(model, latent.shape) == frames.numel() * 4


def test_patchifying_wan_vae_geometry():
    """Wan 2.2's VAE decodes at half the pixel side (2×2 patches), 16× below the pixels."""
    vae = standin_models.tiny_wan_vae("2.2")
    side, stage, width = wan_vae.decoder_geometry(vae)
    profile = MemoryProfile(width=0, cells=(1, 1, 1), copies=0, pixel_side=side, stage_side=stage, vae_width=width,
                            causal=True, vae_dtype=torch.float32)
    backbone = types.SimpleNamespace(memory_profile=lambda: profile, frames_per_latent=4, video_frames=wan_vae.video_frames)
    seen, handles = _output_bytes([vae.decoder.up_blocks[-1], vae.decoder.norm_out])
    with torch.no_grad():
        frames = wan_vae.decode_to_images(vae, torch.randn(1, 48, 2, 2, 2))
    for handle in handles:
        handle.remove()
    assert frames.shape == (5, 32, 32, 3)
    assert memory_estimate.decode_step_bytes(backbone, (1, 48, 2, 2, 2), 1) <= sum(seen)
    assert memory_estimate.decoded_bytes(backbone, (1, 48, 2, 2, 2)) == frames.numel() * 4


def test_absurd_sampling_is_refused_with_what_to_lower(modelscope):
    model = modelscope.ready()
    huge = model.latent_shape(1024, 4096, 4096)
    with pytest.raises(NotEnoughMemoryError) as error:
        memory_estimate.check_sampling(model, huge, free(24 * GB))
    message = str(error.value)
    for word in ("frames", "width/height", "window_batch", "FIFOQueueWithImageEmbed", "RepeatAndSlideSampler",
                 "24.0 GB is free", "1024 latent frames of 512×512"):
        assert word in message
    memory_estimate.check_sampling(model, model.latent_shape(16, 256, 256), free(24 * GB))
    memory_estimate.check_sampling(model, huge, free(None))  # unknown free memory: no check
    memory_estimate.check_sampling(model, huge, None)


def test_denoiser_refuses_its_first_call_before_the_model_runs(modelscope):
    model = modelscope.ready()
    calls = []
    model_predict = model.predict
    denoiser = Denoiser(model, 5.0, free_memory=free(1000))
    x = torch.zeros(1, 4, 2, 8, 8)
    try:
        model.predict = lambda *args: calls.append(1) or model_predict(*args)
        with pytest.raises(NotEnoughMemoryError, match="One model call needs at least"):
            denoiser(x, 500, encode_text(model, "a", ""))
        assert calls == []
        with pytest.raises(NotEnoughMemoryError, match="Sampling needs at least"):
            denoiser.check_fits(model.latent_shape(1024, 4096, 4096))
        Denoiser(model, 5.0, free_memory=free(GB))(x, 500, encode_text(model, "a", ""))
        assert calls == [1]
    finally:
        del model.predict


def test_decode_refuses_what_cannot_fit(modelscope):
    model = modelscope.ready()
    long_video = torch.empty(1, 4, 1024, 512, 512, device="meta")  # DecodeVideoLatent at 4096², never allocated
    with pytest.raises(NotEnoughMemoryError, match="Holding the decoded frames needs at least 206.2 GB on cpu"):
        model.decode(long_video, 4, free_memory=free(24 * GB))
    one_frame = torch.zeros(1, 4, 1, 8, 8)
    with pytest.raises(NotEnoughMemoryError, match="Decoding with chunk 4 .*Lower DecodeVideoLatent's chunk"):
        model.decode(one_frame, 4, free_memory=free(100_000))  # the frames (49 kB) fit, not also the decoder
    assert model.decode(one_frame, 4, free_memory=free(GB)).shape == (1, 64, 64, 3)


def test_free_memory_outside_comfyui():
    available = glue.free_memory("cpu")
    with open("/proc/meminfo") as meminfo:
        total = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemTotal:"))
    assert 0 < available <= total
    assert glue.free_memory("meta") is None


def test_in_comfyui_free_memory_first_unloads_other_models_keeping_the_packs(monkeypatch):
    """A model another workflow left on the GPU must not get a request refused that fits once it is unloaded:
    like ComfyUI's own samplers, the check asks the model manager to make room (only when short), keeping the
    pack's models."""
    from types import SimpleNamespace

    from zeroshot_video.core.interface import BackboneModules
    ours = SimpleNamespace(model=SimpleNamespace(model=BackboneModules(unet=torch.nn.Linear(1, 1))))
    other = SimpleNamespace(model=SimpleNamespace(model=torch.nn.Linear(1, 1)))
    state = {"free": 3 * GB, "asked": []}

    def unload(needed, device, keep_loaded=()):
        state["asked"].append((needed, device, list(keep_loaded)))
        state["free"] += 5 * GB  # the other model's memory

    manager = SimpleNamespace(current_loaded_models=[other, ours], get_free_memory=lambda device: state["free"],
                              free_memory=unload)
    monkeypatch.setattr(glue, "IN_COMFYUI", True)
    monkeypatch.setattr(glue, "model_management", manager, raising=False)
    assert glue.free_memory("cpu", 2 * GB) == 3 * GB and state["asked"] == []  # enough: nothing unloaded
    assert glue.free_memory("cpu", 6 * GB) == 8 * GB
    (needed, device, kept), = state["asked"]
    assert needed == 6 * GB and device == torch.device("cpu") and kept == [ours]


def test_nodes_denoiser_checks_interrupts_and_memory(modelscope):
    from zeroshot_video.nodes import comfy_glue
    denoiser = comfy_glue.host().denoiser(modelscope.ready(), 7.5)
    assert denoiser.check is glue.check_interrupt and denoiser.free_memory is glue.free_memory
