"""T2VSampler: reference equivalence with diffusers' own pipelines, seeds, strength semantics, decoding."""
import pytest
import torch
from diffusers import AnimateDiffPipeline

from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.methods.t2v import noise_like, sample_t2v
from zeroshot_video.nodes.t2v_nodes import DecodeVideoLatent, T2VSampler


@pytest.fixture
def backbone(unet_backbone):
    """What these tests check exists only on the UNet families (resnet hooks, diffusers' UNet pipelines)."""
    return unet_backbone


PROMPT = "the cat on the mat"


def _reference_pipeline(backbone, scheduler=None):
    parts = dict(vae=backbone.vae, text_encoder=backbone.text_encoder, tokenizer=backbone.tokenizer,
                 unet=backbone.unet, scheduler=scheduler or backbone.scheduler)
    if backbone.family == "animatediff":
        return AnimateDiffPipeline(motion_adapter=None, **parts)
    diffusers = pytest.importorskip("diffusers")
    if not hasattr(diffusers, "TextToVideoSDPipeline"):
        pytest.skip("this diffusers no longer ships the deprecated TextToVideoSDPipeline")
    return diffusers.TextToVideoSDPipeline(**parts)


@torch.no_grad()
@pytest.mark.parametrize("steps,guidance", [(6, 7.5), (4, 1.0)])
def test_reproduces_diffusers_pipeline(backbone, steps, guidance):
    noise = noise_like((1, 4, 8, 8, 8), torch.Generator().manual_seed(3))
    ours = sample_t2v(Denoiser(backbone, guidance), backbone.schedule, encode_text(backbone, PROMPT, "ugly"), noise,
                      steps, generator=torch.Generator().manual_seed(0))
    pipe = _reference_pipeline(backbone)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt=PROMPT, negative_prompt="ugly", num_frames=8, height=64, width=64, num_inference_steps=steps,
               guidance_scale=guidance, latents=noise.clone(), output_type="latent")
    reference = torch.as_tensor(out.frames if hasattr(out, "frames") else out[0])
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("guidance", [7.5, 1.0])
def test_uni_pc_is_diffusers_unipc_on_the_backbones_table(backbone, guidance):
    """sampler uni_pc = the pipeline with diffusers' UniPCMultistepScheduler made from the backbone's own
    scheduler configuration (its ᾱ table and timestep spacing), on the same noise."""
    from diffusers import UniPCMultistepScheduler
    from zeroshot_video.core.methods.t2v import text_to_video
    cond = encode_text(backbone, PROMPT, "ugly")
    ours = text_to_video(backbone, cond, frames=8, width=64, height=64, steps=5, guidance=guidance,
                         generator=torch.Generator().manual_seed(3), sampler="uni_pc")
    pipe = _reference_pipeline(backbone, UniPCMultistepScheduler.from_config(backbone.solver_config))
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt=PROMPT, negative_prompt="ugly", num_frames=8, height=64, width=64, num_inference_steps=5,
               guidance_scale=guidance, latents=noise_like((1, 4, 8, 8, 8), torch.Generator().manual_seed(3)),
               output_type="latent")
    reference = torch.as_tensor(out.frames if hasattr(out, "frames") else out[0])
    assert float((ours - reference).abs().max() / reference.abs().max()) <= 1e-5
    ddim = text_to_video(backbone, cond, frames=8, width=64, height=64, steps=5, guidance=guidance,
                         generator=torch.Generator().manual_seed(3))
    assert float((ours - ddim).abs().max()) > 1e-3, "uni_pc ran as DDIM"


def test_uni_pc_refuses_euler_only_settings(backbone):
    from zeroshot_video.core.methods.t2v import text_to_video
    cond = encode_text(backbone, PROMPT)
    for extra in ({"grid": "fifo"}, {"eta": 0.5}):
        with pytest.raises(ValueError, match="sampler uni_pc runs the backbone's own grid"):
            text_to_video(backbone, cond, frames=4, width=64, height=64, steps=2, guidance=1.0,
                          generator=torch.Generator(), sampler="uni_pc", **extra)
    with pytest.raises(ValueError, match="sampler must be one of euler, uni_pc"):
        text_to_video(backbone, cond, frames=4, width=64, height=64, steps=2, guidance=1.0,
                      generator=torch.Generator(), sampler="heun")


def _run(handle, cond, seed=0, **kw):
    args = dict(frames=4, width=64, height=64, steps=3, guidance=5.0, eta=0.0, seed=seed)
    args.update(kw)
    return T2VSampler().sample(handle, cond, **args)[0]["samples"]


@pytest.fixture(params=["modelscope", "animatediff"])
def handle(request):
    return request.getfixturevalue(request.param)


def test_node_seed_determinism_and_shape(handle):
    cond = encode_text(handle.ready(), PROMPT)
    a, b, c = _run(handle, cond, 1, eta=1.0), _run(handle, cond, 1, eta=1.0), _run(handle, cond, 2, eta=1.0)
    assert a.shape == (1, 4, 4, 8, 8) and a.device.type == "cpu"
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_denoise_semantics(handle):
    backbone = handle.ready()
    cond = encode_text(backbone, PROMPT)
    start = torch.randn(1, 4, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    kept = start.clone()
    unchanged = _run(handle, cond, latent={"samples": start}, denoise=0.0)
    assert torch.equal(unchanged, kept) and unchanged is not start
    calls = []
    hook = backbone.unet.register_forward_pre_hook(lambda m, a: calls.append(1))
    try:
        full = _run(handle, cond, steps=5, latent={"samples": start}, denoise=1.0)
        assert len(calls) == 5
        calls.clear()
        _run(handle, cond, steps=5, latent={"samples": start}, denoise=0.5)
        assert len(calls) == 2  # min(int(5 * 0.5), 5)
    finally:
        hook.remove()
    assert torch.equal(start, kept), "the input latent must not be modified in place"
    from_noise = _run(handle, cond, steps=5)
    assert not torch.allclose(full, from_noise), "strength 1 starts at ts[0] from the latent, not from pure noise"


def test_strength_one_starts_from_the_latent_at_the_first_grid_step(modelscope):
    backbone = modelscope.ready()
    seen = []
    latent = torch.ones(1, 4, 2, 8, 8)
    noise = torch.zeros_like(latent)

    def recorder(x, t, cond):
        seen.append((t, x.clone()))
        return torch.zeros_like(x)

    sample_t2v(recorder, backbone.schedule, None, noise, 10, generator=torch.Generator(), init_latent=latent,
               strength=1.0)
    first_t, first_x = seen[0]
    assert first_t == backbone.schedule.ddim_timesteps(10)[0]
    torch.testing.assert_close(first_x, latent * backbone.schedule.alphas_cumprod[first_t].sqrt())


@pytest.mark.parametrize("kw,match", [
    (dict(width=60), "multiples of 8"), (dict(height=100), "multiples of 8"), (dict(steps=0), "steps"),
    (dict(denoise=1.5, latent={"samples": torch.zeros(1, 4, 2, 8, 8)}), "denoise"),
    (dict(denoise=-0.1, latent={"samples": torch.zeros(1, 4, 2, 8, 8)}), "denoise"),
    (dict(frames=0), "frames"), (dict(latent={"samples": torch.zeros(1, 4, 8, 8)}), "not a video latent"),
])
def test_bad_input_is_refused_clearly(modelscope, kw, match):
    cond = encode_text(modelscope.ready(), PROMPT)
    with pytest.raises(ValueError, match=match):
        _run(modelscope, cond, **kw)


def test_animatediff_frame_limit(animatediff):
    cond = encode_text(animatediff.ready(), PROMPT)
    with pytest.raises(ValueError, match="at most 32 frames"):
        _run(animatediff, cond, frames=33)


def test_validate_inputs_reports_sizes():
    assert T2VSampler.VALIDATE_INPUTS(width=64, height=72) is True
    assert "multiples of 8" in T2VSampler.VALIDATE_INPUTS(width=65, height=64)


@torch.no_grad()
def test_decode_is_chunk_independent_and_on_cpu(modelscope):
    latent = {"samples": torch.randn(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))}
    one = DecodeVideoLatent().decode(modelscope, latent, 1)[0]
    many = DecodeVideoLatent().decode(modelscope, latent, 64)[0]
    assert one.shape == (6, 64, 64, 3) and one.device.type == "cpu"
    assert 0 <= one.min() and one.max() <= 1
    torch.testing.assert_close(one, many, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="video latent"):
        DecodeVideoLatent().decode(modelscope, {"samples": torch.zeros(1, 4, 8, 8)}, 4)


def test_long_prompts_are_cut_and_the_note_says_what_was_dropped(modelscope, caplog):
    from zeroshot_video.nodes.backbone_nodes import T2VTextEncode
    long_prompt = " ".join(["the cat"] * 60) + " on the mat"
    with caplog.at_level("WARNING"):
        cond = T2VTextEncode().encode(modelscope, long_prompt, "")[0]
    assert cond.positive.shape[1] == 77 and cond.positive.device.type == "cpu"
    assert len(cond.notes) == 1 and "on the mat" in cond.notes[0]
    assert "cut off" in caplog.text
    short = T2VTextEncode().encode(modelscope, "the cat", "")[0]
    assert short.notes == ()
