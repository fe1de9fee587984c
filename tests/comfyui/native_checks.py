"""Checks of the pack's methods on ComfyUI's own MODEL / VAE, in-process, under ComfyUI's python.

    COMFYUI_DIR=… $COMFYUI_PYTHON tests/comfyui/native_checks.py MODELS_DIR CHECK [CHECK …]

MODELS_DIR holds ``testing.standin_files_native.write_native_files``'s stand-ins; every model is loaded by
ComfyUI's own loaders (UNETLoader's ``load_diffusion_model``, LoraLoaderModelOnly's ``load_lora_for_models``,
ModelSamplingSD3, VAELoader's ``comfy.sd.VAE``) and compared with ComfyUI's own sampling (``comfy.sample.sample``,
what KSampler and KSamplerAdvanced run) on the same noise. The CONDITIONING is random ``[1, L, 4096]`` text
embeddings, as CLIPTextEncode with UMT5-XXL makes them: the 5.7 B-parameter encoder does not fit a CPU test.
Each check raises on failure; the script exits 1 then.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from pathlib import Path

import torch

from native_harness import import_comfy_and_pack, import_custom_node, pack_module

PACK, comfy = import_comfy_and_pack()
import comfy.model_management as model_management  # noqa: E402
import comfy.patcher_extension  # noqa: E402
import comfy.sample  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402
from comfy_extras.nodes_model_advanced import ModelSamplingSD3  # noqa: E402

files = pack_module("testing.standin_files_native")
native_nodes = pack_module("nodes.native_nodes")
t2v = pack_module("core.methods.t2v")
fifo = pack_module("core.methods.fifo")
wan_files = pack_module("core.families.wan.files")
ti2v_zero = pack_module("core.methods.ti2v_zero")
i4vgen = pack_module("core.methods.i4vgen")
make_anchor = pack_module("core.methods.anchor").make_anchor
gradient_image = pack_module("core.methods.anchor").gradient_image

MODELS = Path(sys.argv[1])
TOLERANCE = 1e-5
SIZE = dict(frames=5, width=32, height=32)  # 2 latent frames of 4×4 (Wan 2.1's 8× VAE)


def unet(name: str, shift: float | None = 5.0, lora: str | None = None):
    """A MODEL as a user's graph makes it: UNETLoader → LoraLoaderModelOnly → ModelSamplingSD3."""
    return patched(comfy.sd.load_diffusion_model(str(MODELS / "diffusion_models" / name)), shift, lora)


def patched(model, shift: float | None = 5.0, lora: str | None = None):
    """``model`` through LoraLoaderModelOnly (``lora``) and ModelSamplingSD3 (``shift``)."""
    if lora is not None:
        state = comfy.utils.load_torch_file(str(MODELS / "loras" / lora), safe_load=True)
        model = comfy.sd.load_lora_for_models(model, None, state, 1.0, 0)[0]
    if shift is not None:
        model = ModelSamplingSD3().patch(model, shift)[0]
    return model


_VAES = {}


def vae(name: str = files.VAE21_FILE):
    if name not in _VAES:
        _VAES[name] = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(MODELS / "vae" / name), safe_load=True))
    return _VAES[name]


def conditioning(seed: int = 1, tokens: int = 12, width: int = 4096):
    """(positive, negative) CONDITIONING as CLIPTextEncode gives it."""
    generator = torch.Generator().manual_seed(seed)
    return ([[torch.randn(1, tokens, width, generator=generator), {}]],
            [[torch.randn(1, tokens, width, generator=generator), {}]])


def backbone(model, vae_object=None, **options):
    return native_nodes.WanModelBackbone().wrap(model, vae_object or vae(), **options)[0].ready()


def empty_latent(channels: int = 16, frames: int = 2, side: int = 4):
    """What EmptyHunyuanLatentVideo gives (raw zeros)."""
    return torch.zeros(1, channels, frames, side, side)


def ksampler(model, positive, negative, seed: int, steps: int, cfg: float, sampler: str = "euler",
             latent=None, **advanced):
    latent = empty_latent() if latent is None else latent
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps, cfg, sampler, "simple", positive, negative, latent, seed=seed,
                               disable_pbar=True, **advanced)


def pack_t2v(model_backbone, positive, negative, seed: int, steps: int, guidance: float, **extra):
    cond = model_backbone.conditioning_from_host(positive, negative)
    out = t2v.text_to_video(model_backbone, cond, steps=steps, guidance=guidance, generator=t2v.seeded(seed),
                            **{**SIZE, **extra})
    return model_backbone.latent_to_host(out)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max())


def close(a, b, what: str, tolerance: float = TOLERANCE) -> None:
    error = relative(a, b)
    print(f"  {what}: max relative difference {error:.2e}")
    assert error <= tolerance, f"{what}: {error:.2e} > {tolerance:g}"


# --- the checks ----------------------------------------------------------------------------------------------
def check_euler_equals_ksampler():
    """T2V Sampler on a MODEL with shift 5 = KSampler euler/simple with the same seed, with and without CFG."""
    model = unet(files.WAN21_FILE)
    positive, negative = conditioning()
    model_backbone = backbone(model)
    for cfg in (5.0, 1.0):
        close(pack_t2v(model_backbone, positive, negative, 3, 4, cfg), ksampler(model, positive, negative, 3, 4, cfg),
              f"euler, 4 steps, cfg {cfg:g}")


def check_uni_pc_equals_ksamplers():
    """T2V Sampler with uni_pc on a MODEL with shift 8 = KSampler uni_pc/simple (ComfyUI's Wan 2.1 template)."""
    model = unet(files.WAN21_FILE, shift=8.0)
    positive, negative = conditioning()
    model_backbone = backbone(model)
    for steps, cfg in ((6, 6.0), (4, 1.0)):
        ours = pack_t2v(model_backbone, positive, negative, 3, steps, cfg, sampler="uni_pc")
        theirs = ksampler(model, positive, negative, 3, steps, cfg, sampler="uni_pc")
        close(ours, theirs, f"uni_pc, {steps} steps, cfg {cfg:g}")
        euler = pack_t2v(model_backbone, positive, negative, 3, steps, cfg)
        assert relative(euler, theirs) > 1e-4, "uni_pc ran as euler"


def check_lora_changes_output_as_ksampler():
    """A LoRA changes the pack's output exactly as it changes KSampler's."""
    positive, negative = conditioning()
    plain, patched = unet(files.WAN21_FILE), unet(files.WAN21_FILE, lora=files.LORA21_FILE)
    ours = {name: pack_t2v(backbone(m), positive, negative, 4, 4, 1.0) for name, m in (("plain", plain),
                                                                                    ("lora", patched))}
    theirs = {name: ksampler(m, positive, negative, 4, 4, 1.0) for name, m in (("plain", plain), ("lora", patched))}
    change = relative(theirs["lora"], theirs["plain"])
    print(f"  the LoRA changes KSampler's output by {change:.2%}")
    assert change > 1e-3, "the LoRA stand-in does not change the output: the check would prove nothing"
    close(ours["lora"] - ours["plain"], theirs["lora"] - theirs["plain"], "LoRA's change, pack vs KSampler", 1e-4)
    close(ours["lora"], theirs["lora"], "with the LoRA")


def check_a14b_experts_equal_ksampler_advanced():
    """Two experts with their LoRAs, shift 5, 4 steps at cfg 1 (ComfyUI's A14B template): the pack's boundary
    0.875 splits the steps 2 + 2 as the template's two KSamplerAdvanced do."""
    high = unet(files.A14B_HIGH_FILE, lora=files.LORA_HIGH_FILE)
    low = unet(files.A14B_LOW_FILE, lora=files.LORA_LOW_FILE)
    positive, negative = conditioning()
    first = ksampler(high, positive, negative, 5, 4, 1.0, start_step=0, last_step=2, force_full_denoise=False)
    second = comfy.sample.sample(low, torch.zeros_like(first), 4, 1.0, "euler", "simple", positive, negative, first,
                                 start_step=2, last_step=4, force_full_denoise=True, disable_noise=True, seed=5,
                                 disable_pbar=True)
    ours = pack_t2v(backbone(high, model_low_noise=low, boundary=0.875), positive, negative, 5, 4, 1.0)
    close(ours, second, "A14B, 4 steps, experts switched at step 2")
    only_high = pack_t2v(backbone(high), positive, negative, 5, 4, 1.0)
    assert relative(only_high, second) > 1e-3, "the low-noise expert made no difference: the check proves nothing"


def check_skyreels_v2_df_runs_as_wan21():
    """A SkyReels-V2 diffusion-forcing file (Wan 2.1 1.3B's tensors plus its fps embedding) loads through
    UNETLoader as Wan 2.1; T2V euler = KSampler on it, and FIFO's per-frame levels (what diffusion forcing was
    trained on) run on it."""
    model = unet(files.SKYREELS_DF_FILE, shift=8.0)
    assert type(model.model.model_config).__name__ == "WAN21_T2V", type(model.model.model_config).__name__
    positive, negative = conditioning()
    model_backbone = backbone(model)
    plain = backbone(unet(files.WAN21_FILE, shift=8.0))
    ours = pack_t2v(model_backbone, positive, negative, 3, 4, 5.0)
    close(ours, ksampler(model, positive, negative, 3, 4, 5.0), "SkyReels-V2 DF, euler, 4 steps, cfg 5")
    close(ours, pack_t2v(plain, positive, negative, 3, 4, 5.0), "the same as Wan 2.1's tensors alone")
    cond = model_backbone.conditioning_from_host(positive, negative)
    clip = fifo.base_clip_for(model_backbone, 13, 1, True)
    base = t2v.text_to_video(model_backbone, cond, frames=clip.frames, width=32, height=32, steps=clip.steps,
                             guidance=5.0, generator=t2v.seeded(0), grid=clip.grid)
    frames, _ = fifo.long_video(model_backbone, cond, base, num_frames=17, window_frames=13, partitions=1,
                                lookahead=True, guidance=5.0, generator=t2v.seeded(1))
    assert frames.shape[0] == 17 and bool(torch.isfinite(frames).all()), tuple(frames.shape)
    print(f"  FIFO on SkyReels-V2 DF: {frames.shape[0]} frames, {clip.steps} levels")


def check_per_frame_levels_reach_the_network():
    """A call with a level per latent frame equals the Wan network given those timesteps directly."""
    model = unet(files.WAN21_FILE)
    model_backbone = backbone(model)
    positive, _ = conditioning()
    x = torch.randn(1, 16, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    sigmas = torch.tensor([[0.2, 0.5, 0.9]])
    cond = model_backbone.conditioning_from_host(positive, positive)
    ours = model_backbone.predict(x, sigmas, [cond.positive], cond)[0]
    model_management.load_models_gpu([model])
    network = model.model.diffusion_model
    direct = network(x, sigmas * 1000, context=positive[0][0]).float()
    close(ours, direct, "per-frame levels")
    uniform = model_backbone.predict(x, torch.tensor([[0.5] * 3]), [cond.positive], cond)[0]
    assert relative(uniform, ours) > 1e-3, "per-frame levels made no difference"


def check_large_attention_runs_in_pieces_through_the_models_own_override():
    """An attention large enough to be cut (8 064 tokens) runs in interruptible pieces, each through the attention
    override the MODEL carries (as SageAttention nodes set one), and the call equals the network run whole."""
    model = unet(files.WAN21_FILE).clone()
    calls = []

    def users_override(func, *args, **kwargs):
        calls.append(args[0].shape)
        return func(*args, **kwargs)

    model.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = users_override
    model_backbone = backbone(model)
    positive, _ = conditioning()
    cond = model_backbone.conditioning_from_host(positive, positive)
    x = torch.randn(1, 16, 14, 48, 48, generator=torch.Generator().manual_seed(0))
    ours = model_backbone.predict(x, torch.tensor([[0.6] * 14]), [cond.positive], cond)[0]
    whole_calls = 2 * len(model.model.diffusion_model.blocks)  # a self- and a cross-attention per block
    print(f"  {len(calls)} attention calls through the MODEL's override, {whole_calls} without pieces")
    assert len(calls) > whole_calls and all(shape[0] == 1 for shape in calls), calls
    model_management.load_models_gpu([model])
    direct = model.model.diffusion_model(x, torch.full((1,), 0.6 * 1000), context=positive[0][0]).float()
    close(ours, direct, "pieces against the whole")


def check_latents_interoperate():
    """The pack's LATENT decodes with VAEDecode as the pack decodes it, and a KSampler LATENT continues in the
    pack's T2V Sampler (denoise 0.6)."""
    model = unet(files.WAN21_FILE)
    model_backbone = backbone(model)
    positive, negative = conditioning()
    ours = pack_t2v(model_backbone, positive, negative, 6, 3, 1.0)
    close(vae().decode(ours).reshape(-1, 32, 32, 3),
          model_backbone.decode(model_backbone.latent_from_host(ours)), "VAEDecode of the pack's LATENT")
    theirs = ksampler(model, positive, negative, 6, 3, 1.0)
    cond = model_backbone.conditioning_from_host(positive, negative)
    again = t2v.text_to_video(model_backbone, cond, steps=4, guidance=1.0, generator=t2v.seeded(7),
                              latent=model_backbone.latent_from_host(theirs), denoise=0.6, **SIZE)
    assert again.shape == theirs.shape and bool(torch.isfinite(again).all())
    assert relative(model_backbone.latent_to_host(again), theirs) > 1e-3
    tiled = vae().decode_tiled(ours, tile_x=16, tile_y=16, overlap=8, tile_t=8, overlap_t=4)
    assert tiled.reshape(-1, 32, 32, 3).shape == (5, 32, 32, 3), "VAEDecodeTiled of the pack's LATENT"
    # FIFO from a base clip KSampler made (uni_pc, 13 frames), and the pack's latent continued by KSampler
    clip = ksampler(model, positive, negative, 9, 4, 1.0, sampler="uni_pc", latent=empty_latent(frames=4))
    frames, latents = fifo.long_video(model_backbone, cond, model_backbone.latent_from_host(clip), num_frames=17,
                                      window_frames=13, partitions=1, lookahead=True, frames_per_level=2,
                                      guidance=1.0, generator=t2v.seeded(1))
    assert frames.shape == (17, 32, 32, 3) and bool(torch.isfinite(frames).all())
    lora = unet(files.WAN21_FILE, lora=files.LORA21_FILE)
    continued = comfy.sample.sample(lora, comfy.sample.prepare_noise(ours, 10), 4, 1.0, "uni_pc", "simple",
                                    positive, negative, ours, denoise=0.6, seed=10, disable_pbar=True)
    assert continued.shape == ours.shape and bool(torch.isfinite(continued).all())
    assert relative(continued, ours) > 1e-3


def check_what_the_model_carries_applies():
    """A wrapper and a unet-function wrapper set on the MODEL (as attention, caching and compile nodes set them) run
    in the pack's model calls, per-frame calls included, and change its output as they change KSampler's."""
    model = unet(files.WAN21_FILE).clone()
    seen = {"diffusion_model": 0, "unet_function": 0}

    def diffusion_wrapper(executor, *args, **kwargs):
        seen["diffusion_model"] += 1
        return executor(*args, **kwargs)

    def unet_function(apply_model, arguments):
        seen["unet_function"] += 1
        return apply_model(arguments["input"], arguments["timestep"], **arguments["c"]) * 0.9

    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test", diffusion_wrapper)
    model.set_model_unet_function_wrapper(unet_function)
    positive, negative = conditioning()
    ours = pack_t2v(backbone(model), positive, negative, 8, 3, 5.0)
    print(f"  calls seen in the pack's run: {seen}")
    assert seen == {"diffusion_model": 3, "unet_function": 3}, seen
    close(ours, ksampler(model, positive, negative, 8, 3, 5.0), "with the MODEL's wrappers")
    model_backbone = backbone(model)
    x = torch.randn(1, 16, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    cond = model_backbone.conditioning_from_host(positive, negative)
    seen.update(diffusion_model=0, unet_function=0)
    model_backbone.predict(x, torch.tensor([[0.2, 0.5, 0.9]]), [cond.positive], cond)
    assert seen == {"diffusion_model": 1, "unet_function": 1}, f"a per-frame call skipped them: {seen}"


def check_methods_run():
    """FIFO (4 distilled steps: frames_per_level 2, streamed to disk), TI2V-Zero (4 steps, cfg 1) and I4VGen's
    NI-VSDS run on a MODEL with its LoRA, giving the frames asked for."""
    import tempfile
    model = unet(files.WAN21_FILE, lora=files.LORA21_FILE)
    model_backbone = backbone(model)
    positive, negative = conditioning()
    cond = model_backbone.conditioning_from_host(positive, negative)
    window = 13  # 4 latent frames: lookahead writes back 2, one level per 2 frames
    clip = fifo.base_clip_for(model_backbone, window, 1, True, frames_per_level=2)
    base = t2v.text_to_video(model_backbone, cond, frames=clip.frames, width=32, height=32, steps=clip.steps,
                             guidance=1.0, eta=1.0, generator=t2v.seeded(0), grid=clip.grid)
    with tempfile.TemporaryDirectory() as folder:
        frames, latents = fifo.long_video(model_backbone, cond, base, num_frames=21, window_frames=window,
                                          partitions=1, lookahead=True, frames_per_level=2, guidance=1.0,
                                          generator=t2v.seeded(1), stream_to=Path(folder), keep_frames=False)
        written = len(list(Path(folder).glob("*.png")))
        assert written == 21, f"FIFO streamed {written} frames to disk, not 21"
    print(f"  FIFO: window {window} frames, {clip.steps} levels, 21 frames streamed to disk")
    anchor = make_anchor(model_backbone, gradient_image(32, 32), 32, 32)
    video, _ = ti2v_zero.image_to_video(model_backbone, cond, anchor, num_frames=8, model_frames=9, steps=4,
                                        guidance=1.0, generator=t2v.seeded(0))
    assert video.shape == (9, 32, 32, 3) and bool(torch.isfinite(video).all())
    assert torch.equal(video[0], anchor.image[0]), "TI2V-Zero's frame 0 is the image itself"
    selection = i4vgen.select_anchor(model_backbone, cond, lambda images: images.mean(dim=(1, 2, 3)).tolist(),
                                     frames=9, width=32, height=32, steps=4, guidance=1.0, num_candidates=2,
                                     generator=t2v.seeded(0))
    moved = i4vgen.animate_anchor(model_backbone, cond, selection.anchor, steps=4, guidance=1.0, p=0.5,
                                  step_sizes="1", generator=t2v.seeded(0, t2v.NIVSDS_STREAM))
    assert moved.shape == selection.anchor.shape and not torch.equal(moved, selection.anchor)
    print(f"  TI2V-Zero video {tuple(video.shape)}, I4VGen anchor {tuple(moved.shape)}")


def own_backbone(schedule):
    """The pack's own Wan backbone (LoadWanModelFiles' loader) from the same files, on ``schedule``'s grid (the
    MODEL's shift and ComfyUI's scheduler), so that the two differ only in who runs the network and the VAE."""
    own = wan_files.load_wan_files(MODELS / "diffusion_models" / files.WAN21_FILE,
                                   MODELS / "text_encoders" / files.UMT5_FILE, MODELS / "vae" / files.VAE21_FILE,
                                   torch.float32)
    own.schedule = schedule
    return own


def check_methods_equal_the_packs_own_backbone():
    """Each method on the native MODEL = the same method on the pack's own Wan backbone loaded from the same file."""
    model_backbone = backbone(unet(files.WAN21_FILE))
    own = own_backbone(model_backbone.schedule)
    positive, negative = conditioning()
    cond = model_backbone.conditioning_from_host(positive, negative)

    def plain(b):
        return t2v.text_to_video(b, cond, frames=9, width=32, height=32, steps=4, guidance=5.0,
                                 generator=t2v.seeded(2))

    def long(b):
        clip = fifo.base_clip_for(b, 13, 1, True, frames_per_level=2)
        base = t2v.text_to_video(b, cond, frames=clip.frames, width=32, height=32, steps=clip.steps, guidance=5.0,
                                 eta=1.0, generator=t2v.seeded(0), grid=clip.grid)
        return fifo.long_video(b, cond, base, num_frames=17, window_frames=13, partitions=1, lookahead=True,
                               frames_per_level=2, guidance=5.0, generator=t2v.seeded(1))[1]

    def image_to_video(b):
        anchor = make_anchor(b, gradient_image(32, 32), 32, 32)
        return ti2v_zero.image_to_video(b, cond, anchor, num_frames=8, model_frames=9, steps=4, guidance=5.0,
                                        generator=t2v.seeded(0))[1]

    def i4vgen_stages(b):
        selection = i4vgen.select_anchor(b, cond, lambda images: images.mean(dim=(1, 2, 3)).tolist(), frames=9,
                                         width=32, height=32, steps=3, guidance=5.0, num_candidates=2,
                                         generator=t2v.seeded(0))
        return i4vgen.animate_anchor(b, cond, selection.anchor, steps=3, guidance=5.0, p=0.5, step_sizes="1",
                                     generator=t2v.seeded(0, t2v.NIVSDS_STREAM))

    for name, run in (("T2V euler", plain), ("FIFO, frames_per_level 2", long), ("TI2V-Zero", image_to_video),
                      ("I4VGen NI-VSDS", i4vgen_stages)):
        close(run(model_backbone), run(own), name)


def refused(run, *fragments: str) -> str:
    """The ValueError ``run()`` raises, checked to name each fragment."""
    try:
        run()
    except ValueError as error:
        message = str(error)
        missing = [fragment for fragment in fragments if fragment not in message]
        assert not missing, f"the message does not name {missing}: {message}"
        print(f"  refused: {message[:160]}")
        return message
    raise AssertionError(f"not refused (expected a message naming {fragments})")


def image_to_video_wan():
    """A Wan image-to-video MODEL (36 input channels: noise, mask and image latents), as UNETLoader loads one."""
    from diffusers import WanTransformer3DModel
    torch.manual_seed(0)
    network = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=1, attention_head_dim=128,
                                    in_channels=36, out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=256,
                                    num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads")
    state = pack_module("testing.standin_files_wan").wan_transformer_to_comfy(network, files.PREFIX)
    return comfy.sd.load_diffusion_model_state_dict(state)


def check_bad_input_is_refused_naming_what_to_change():
    model = unet(files.WAN21_FILE)
    refused(lambda: backbone(model, vae(files.VAE22_FILE)), "48 channels", "16", "wan_2.1_vae")
    refused(lambda: backbone(unet(files.TI2V_FILE)), "16 channels", "48", "wan2.2_vae")
    refused(lambda: backbone(image_to_video_wan()), "image-to-video", "wan2.1_t2v")
    refused(lambda: backbone(model, model_low_noise=unet(files.TI2V_FILE)), "model_low_noise", "A14B")
    high = unet(files.A14B_HIGH_FILE, lora=files.LORA_HIGH_FILE)
    for same in (patched(high.clone(), lora=files.LORA_LOW_FILE), unet(files.A14B_HIGH_FILE)):
        refused(lambda: backbone(high, model_low_noise=same), "model_low_noise", "same network", "low-noise expert")
    model_backbone = backbone(model)
    refused(lambda: model_backbone.conditioning_from_host(*conditioning(width=768)), "768", "4096", "umt5")
    positive, negative = conditioning()
    refused(lambda: model_backbone.conditioning_from_host(positive + negative, negative), "2 entries")
    refused(lambda: model_backbone.embed_text("a cat"), "CLIP", "CLIPTextEncode")
    sampler = pack_module("nodes.t2v_nodes").T2VSampler()
    handle = native_nodes.WanModelBackbone().wrap(model, vae())[0]
    cond = model_backbone.conditioning_from_host(positive, negative)
    refused(lambda: sampler.sample(handle, cond, 5, 32, 32, 2, 1.0, 0.0, 0, latent={"samples": torch.zeros(
        1, 48, 2, 2, 2)}), "48", "16")
    refused(lambda: sampler.sample(handle, cond, 6, 32, 32, 2, 1.0, 0.0, 0), "4k+1", "use 5 or 9")
    refused(lambda: sampler.sample(handle, cond, 5, 40, 32, 2, 1.0, 0.0, 0), "multiples of 16")


def check_an_interrupt_stops_a_model_call_within_2_s():
    """ComfyUI's interrupt, raised while one long native model call runs, stops it within 2 s."""
    model_backbone = backbone(unet(files.WAN21_FILE))
    positive, negative = conditioning()
    cond = model_backbone.conditioning_from_host(positive, negative)
    glue = pack_module("nodes.comfy_glue")
    x = torch.randn(1, 16, 21, 48, 48)  # one call: 21 × 24 × 24 = 12 096 tokens of full attention per block
    start = time.monotonic()
    denoiser = glue.host().denoiser(model_backbone, 5.0, None)
    denoiser(x[:, :, :1, :8, :8], 0.5, cond)  # warm: the model is loaded
    one_call = time.monotonic()
    try:
        denoiser.check = None
        denoiser(x[:, :, :2], 0.5, cond)
    finally:
        denoiser.check = glue.check_interrupt
    print(f"  a 2-frame call takes {time.monotonic() - one_call:.2f} s")
    timer = threading.Timer(0.5, model_management.interrupt_current_processing, (True,))
    timer.start()
    start = time.monotonic()
    try:
        denoiser(x, 0.5, cond)
        raise AssertionError("the call ran to its end: the interrupt was not answered")
    except model_management.InterruptProcessingException:
        stopped = time.monotonic() - start - 0.5
    finally:
        model_management.interrupt_current_processing(False)
    print(f"  stopped {stopped:.2f} s after the interrupt")
    assert stopped < 2.0, f"the interrupt took {stopped:.2f} s"


def check_ti2v_5b_equals_ksampler():
    """Wan 2.2 TI2V-5B (48 channels, its own VAE): T2V euler = KSampler's, and the latent decodes with VAEDecode."""
    model = unet(files.TI2V_FILE, shift=8.0)
    model_backbone = backbone(model, vae(files.VAE22_FILE))
    positive, negative = conditioning()
    latent = empty_latent(48, 2, 2)
    cond = model_backbone.conditioning_from_host(positive, negative)
    ours = model_backbone.latent_to_host(t2v.text_to_video(model_backbone, cond, frames=5, width=32, height=32,
                                                           steps=4, guidance=5.0, generator=t2v.seeded(3)))
    close(ours, ksampler(model, positive, negative, 3, 4, 5.0, latent=latent), "TI2V-5B euler, 4 steps, cfg 5")


def check_gguf_model():
    """A MODEL from ComfyUI-GGUF's Unet Loader (GGUF) (Q8_0 weights dequantized in its own ops, its own patcher) with
    a LoRA: the pack's T2V = KSampler on it, and it differs from the same weights in fp16 by the quantization only.
    Needs ComfyUI-GGUF (``COMFYUI_GGUF_DIR``) and the ``gguf`` package in ComfyUI's python."""
    import folder_paths
    from gguf_standin import write_wan_gguf
    gguf_nodes = import_custom_node(Path(os.environ["COMFYUI_GGUF_DIR"]), "ComfyUI_GGUF").nodes
    path = MODELS / "diffusion_models" / "native_wan2.1_t2v_1.3B-Q8_0.gguf"
    if not path.exists():
        write_wan_gguf(MODELS / "diffusion_models" / files.WAN21_FILE, path)
    folder_paths.add_model_folder_path("diffusion_models", str(path.parent))
    loaded = gguf_nodes.UnetLoaderGGUF().load_unet(path.name)[0]
    assert type(loaded).__name__ == "GGUFModelPatcher", type(loaded)
    model = patched(loaded, lora=files.LORA21_FILE)
    positive, negative = conditioning()
    for cfg in (5.0, 1.0):
        close(pack_t2v(backbone(model), positive, negative, 3, 4, cfg), ksampler(model, positive, negative, 3, 4, cfg),
              f"GGUF Q8_0 + LoRA, euler, 4 steps, cfg {cfg:g}")
    fp16 = pack_t2v(backbone(unet(files.WAN21_FILE, lora=files.LORA21_FILE)), positive, negative, 3, 4, 1.0)
    quantization = relative(pack_t2v(backbone(model), positive, negative, 3, 4, 1.0), fp16)
    print(f"  Q8_0 against fp16 weights: {quantization:.2e}")
    assert 0 < quantization < 0.05, f"the GGUF MODEL's output is {quantization:.2e} from the fp16 weights' output"


CHECKS = {name[len("check_"):]: function for name, function in globals().items() if name.startswith("check_")}


def main(names: list[str]) -> int:
    failed = 0
    for name in names:
        start = time.monotonic()
        print(f"{name}:")
        try:
            CHECKS[name]()
            print(f"  passed in {time.monotonic() - start:.1f} s")
        except Exception:  # every failure is reported, then the script fails
            traceback.print_exc()
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    with torch.inference_mode():  # as ComfyUI runs its nodes
        sys.exit(main(sys.argv[2:] or list(CHECKS)))
