"""The Wan family: T2VSampler against diffusers' WanPipeline, per-frame levels, the two experts, bad input.

The stand-ins are tiny random Wan folders under the public names, loaded through LoadT2VBackbone's code.
"""
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler, WanPipeline

from zeroshot_video.testing import standin_models
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.schedule import FlowSchedule
from zeroshot_video.core.methods.t2v import noise_like, sample_t2v, text_to_video
from zeroshot_video.core.families.wan.backbone import OFFICIAL_NEGATIVE_PROMPT, TEXT_LENGTH

PROMPT = "a red panda in a bamboo forest"
SIZES = {standin_models.WAN21: 32, standin_models.WAN22_A14B: 32, standin_models.WAN22_TI2V: 64}


def _load(name):
    from zeroshot_video.nodes.backbone_nodes import LoadT2VBackbone
    return LoadT2VBackbone().load(model=name, motion_adapter="none", dtype="fp32")[0]


@pytest.fixture(scope="module", params=list(SIZES))
def wan(request, _models_env):
    return request.param, _load(request.param).ready()


def test_family_schedule_and_layout(wan):
    name, backbone = wan
    assert backbone.family == "wan" and isinstance(backbone.schedule, FlowSchedule)
    assert backbone.schedule.shift == {standin_models.WAN21: 3.0, standin_models.WAN22_A14B: 12.0,
                                       standin_models.WAN22_TI2V: 5.0}[name]
    assert (backbone.transformer_2 is not None) == (name == standin_models.WAN22_A14B)
    assert backbone.latent_shape(9, SIZES[name], SIZES[name])[2] == 3, "9 video frames are 3 latent frames"
    assert backbone.video_frames(21) == 81 and backbone.latent_frames(81) == 21


@torch.no_grad()
@pytest.mark.parametrize("guidance", [5.0, 1.0])
def test_t2v_sampler_reproduces_wan_pipeline(wan, guidance):
    name, backbone = wan
    size, steps = SIZES[name], 4
    cond = encode_text(backbone, PROMPT, "blurry")
    noise = noise_like(backbone.latent_shape(9, size, size), torch.Generator().manual_seed(3))
    guidance_2 = 3.0 if name == standin_models.WAN22_A14B and guidance != 1.0 else None
    ours = sample_t2v(Denoiser(backbone, guidance, guidance_2=guidance_2), backbone.schedule, cond, noise, steps,
                      generator=torch.Generator())
    pipe = WanPipeline(tokenizer=backbone.tokenizer, text_encoder=backbone.text_encoder, vae=backbone.vae,
                       transformer=backbone.transformer, transformer_2=backbone.transformer_2,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=backbone.schedule.shift),
                       boundary_ratio=backbone.boundary_ratio, expand_timesteps=backbone.expand_timesteps)
    pipe.set_progress_bar_config(disable=True)
    extra = {"guidance_scale_2": guidance_2} if guidance_2 is not None else {}
    reference = pipe(prompt_embeds=cond.positive, negative_prompt_embeds=cond.negative, height=size, width=size,
                     num_frames=9, num_inference_steps=steps, guidance_scale=guidance, latents=noise.clone(),
                     output_type="latent", **extra).frames
    torch.testing.assert_close(ours, torch.as_tensor(reference), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("guidance", [5.0, 1.0])
def test_uni_pc_is_wan_pipelines_own_scheduler(wan, guidance):
    """T2V with sampler uni_pc = WanPipeline with the folder's own UniPCMultistepScheduler (flow sigmas, the
    model's shift), on the same noise, both experts on A14B."""
    name, backbone = wan
    size = SIZES[name]
    cond = encode_text(backbone, PROMPT, "blurry")
    guidance_2 = 3.0 if name == standin_models.WAN22_A14B and guidance != 1.0 else None
    ours = text_to_video(backbone, cond, frames=9, width=size, height=size, steps=5, guidance=guidance,
                         guidance_2=guidance_2, generator=torch.Generator().manual_seed(3), sampler="uni_pc")
    noise = noise_like(backbone.latent_shape(9, size, size), torch.Generator().manual_seed(3))
    scheduler = UniPCMultistepScheduler.from_config(backbone.solver_config)
    assert scheduler.config.use_flow_sigmas and scheduler.config.flow_shift == backbone.schedule.shift
    pipe = WanPipeline(tokenizer=backbone.tokenizer, text_encoder=backbone.text_encoder, vae=backbone.vae,
                       transformer=backbone.transformer, transformer_2=backbone.transformer_2, scheduler=scheduler,
                       boundary_ratio=backbone.boundary_ratio, expand_timesteps=backbone.expand_timesteps)
    pipe.set_progress_bar_config(disable=True)
    extra = {"guidance_scale_2": guidance_2} if guidance_2 is not None else {}
    reference = torch.as_tensor(pipe(prompt_embeds=cond.positive, negative_prompt_embeds=cond.negative, height=size,
                                     width=size, num_frames=9, num_inference_steps=5, guidance_scale=guidance,
                                     latents=noise.clone(), output_type="latent", **extra).frames)
    assert float((ours - reference).abs().max() / reference.abs().max()) <= 1e-5
    euler = text_to_video(backbone, cond, frames=9, width=size, height=size, steps=5, guidance=guidance,
                          guidance_2=guidance_2, generator=torch.Generator().manual_seed(3))
    assert float((ours - euler).abs().max()) > 1e-3, "uni_pc ran as Euler"


def test_text_is_padded_to_512_rows_with_the_official_negative_default(wan):
    _, backbone = wan
    cond = encode_text(backbone, PROMPT, "")
    assert cond.positive.shape[1] == TEXT_LENGTH and cond.negative.shape[1] == TEXT_LENGTH
    length = len(backbone.tokenizer(PROMPT).input_ids)
    assert cond.positive[0, length:].abs().sum() == 0 and cond.positive[0, :length].abs().sum() > 0
    assert torch.equal(cond.negative, encode_text(backbone, PROMPT, OFFICIAL_NEGATIVE_PROMPT).negative)


@torch.no_grad()
def test_uniform_per_frame_levels_equal_the_scalar_level(wan):
    name, backbone = wan
    x = noise_like(backbone.latent_shape(9, SIZES[name], SIZES[name]), torch.Generator().manual_seed(1))
    cond = encode_text(backbone, PROMPT, "")
    denoiser = Denoiser(backbone, 4.0)
    scalar = denoiser(x, 0.6, cond)
    per_frame = denoiser(x, torch.full((1, x.shape[2]), 0.6), cond)
    torch.testing.assert_close(per_frame, scalar, rtol=0, atol=1e-5)


@torch.no_grad()
def test_per_frame_levels_reach_their_own_frames(wan):
    """With each frame's tokens independent (attention off), frame k under per-frame levels is the model at t_k."""
    name, backbone = wan
    x = noise_like(backbone.latent_shape(9, SIZES[name], SIZES[name]), torch.Generator().manual_seed(2))
    cond = encode_text(backbone, PROMPT, "")
    levels = torch.tensor([[0.9, 0.5, 0.2]])
    experts = [m for m in (backbone.transformer, backbone.transformer_2) if m is not None]
    hooks = [block.attn1.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
             for expert in experts for block in expert.blocks]
    try:
        denoiser = Denoiser(backbone, 1.0)
        mixed = denoiser(x, levels, cond)
        for k in range(3):
            alone = denoiser(x, float(levels[0, k]), cond)
            torch.testing.assert_close(mixed[:, :, k], alone[:, :, k], rtol=0, atol=1e-5)
    finally:
        for hook in hooks:
            hook.remove()


@torch.no_grad()
def test_each_frame_takes_the_expert_of_its_own_level(_models_env, monkeypatch):
    backbone = _load(standin_models.WAN22_A14B).ready()
    x = noise_like(backbone.latent_shape(9, 32, 32), torch.Generator().manual_seed(4))
    cond = encode_text(backbone, PROMPT, "")
    levels = torch.tensor([[0.95, 0.9, 0.3]])  # boundary 0.875: two frames high-noise, one low-noise
    high, low = (backbone.predict(x, torch.full((1, 3), v), [cond.positive], cond)[0] for v in (0.95, 0.3))
    calls = []
    for expert in (backbone.transformer, backbone.transformer_2):
        monkeypatch.setattr(expert, "forward", _tagged(expert.forward, calls, expert is backbone.transformer))
    mixed = backbone.predict(x, levels, [cond.positive], cond)[0]
    assert sorted(calls) == [False, True], "a window across the boundary runs both experts once"
    run_high = backbone.transformer(hidden_states=x, timestep=_tokens(backbone, levels, x),
                                    encoder_hidden_states=cond.positive, return_dict=False)[0]
    run_low = backbone.transformer_2(hidden_states=x, timestep=_tokens(backbone, levels, x),
                                     encoder_hidden_states=cond.positive, return_dict=False)[0]
    torch.testing.assert_close(mixed[:, :, :2], run_high[:, :, :2], rtol=0, atol=0)
    torch.testing.assert_close(mixed[:, :, 2:], run_low[:, :, 2:], rtol=0, atol=0)
    assert not torch.allclose(high[:, :, :2], low[:, :, :2])
    scale = backbone.guidance_scale(levels, x, 4.0, 3.0)
    assert scale.flatten().tolist() == [4.0, 4.0, 3.0], "each frame's guidance is its expert's"


def _tagged(forward, calls, tag):
    def wrapper(*args, **kwargs):
        calls.append(tag)
        return forward(*args, **kwargs)
    return wrapper


def _tokens(backbone, levels, x):
    tokens = (x.shape[3] // 2) * (x.shape[4] // 2)
    return (levels * 1000).repeat_interleave(tokens, dim=1)


@pytest.mark.parametrize("frames,match", [(8, "4k\\+1.*use 5 or 9"), (0, "4k\\+1")])
def test_frame_counts_must_be_4k_plus_1(wan, frames, match):
    _, backbone = wan
    with pytest.raises(ValueError, match=match):
        backbone.latent_shape(frames, 64, 64)


def test_sizes_must_be_whole_tokens(wan):
    name, backbone = wan
    with pytest.raises(ValueError, match=f"multiples of {backbone.pixel_multiple}"):
        backbone.latent_shape(9, backbone.pixel_multiple + 8, 64)


def test_image_tokens_on_wan_are_refused(wan):
    _, backbone = wan
    cond = encode_text(backbone, PROMPT, "").with_image(torch.zeros(1, 4, 8), torch.zeros(1, 4, 8))
    with pytest.raises(ValueError, match="no image cross-attention"):
        Denoiser(backbone, 5.0)(torch.zeros(1, backbone.channels, 1, 4, 4), 0.5, cond)


def test_a_wan_vae_in_a_unet_folder_is_refused(models_dir, tmp_path):
    import shutil

    from zeroshot_video.core.loading.file_checks import ModelFileError
    from zeroshot_video.core.families import load_backbone
    folder = tmp_path / "mixed"
    shutil.copytree(models_dir / "diffusers" / standin_models.MODELSCOPE, folder)
    shutil.rmtree(folder / "vae")
    shutil.copytree(models_dir / "diffusers" / standin_models.WAN21 / "vae", folder / "vae")
    with pytest.raises((ModelFileError, ValueError), match="vae|VAE"):
        load_backbone(folder)


def test_the_text_encoder_is_not_kept_with_the_model(wan):
    _, backbone = wan
    assert "text_encoder" not in dict(backbone.modules.named_children()), "the memory manager never moves it"
    encode_text(backbone, PROMPT, "")
    assert next(backbone.text_encoder.parameters()).device.type == "cpu"


@pytest.mark.parametrize("name", [standin_models.WAN22_A14B, standin_models.WAN21])
def test_sampler_node_guidance_2_is_the_low_noise_experts_scale(name, _models_env):
    """T2VSampler's guidance_2 reaches the Denoiser: on A14B it changes the video (-1 = guidance for both
    experts; the Denoiser's two scales are checked against WanPipeline's guidance_scale_2 above); single-model
    backbones ignore it."""
    from zeroshot_video.nodes.backbone_nodes import T2VTextEncode
    from zeroshot_video.nodes.t2v_nodes import T2VSampler
    backbone = _load(name)
    cond = T2VTextEncode().encode(backbone, PROMPT, "blurry")[0]
    size = SIZES[name]

    def sample(**extra):
        return T2VSampler().sample(backbone, cond, frames=5, width=size, height=size, steps=3, guidance=5.0,
                                   eta=0.0, seed=1, **extra)[0]["samples"]

    same, explicit_same, other = sample(), sample(guidance_2=5.0), sample(guidance_2=2.0)
    assert torch.equal(same, explicit_same)
    assert torch.equal(same, other) == (name == standin_models.WAN21)
