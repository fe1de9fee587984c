"""The Denoiser and the per-frame timestep hooks on both real (tiny) UNet classes."""
import contextlib

import pytest
import torch
from diffusers.models.resnet import ResnetBlock2D

from zeroshot_video.core.families.unet import per_frame_timesteps
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser


@pytest.fixture
def backbone(unet_backbone):
    """What these tests check exists only on the UNet families (resnet hooks, diffusers' UNet pipelines)."""
    return unet_backbone


def _inputs(backbone, batch=1, frames=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, frames, 8, 8, generator=g)
    return x, encode_text(backbone, "the cat on the mat", "")


def _text(backbone, cond, batch, frames):
    text = cond.positive.expand(batch, -1, -1)
    return text.repeat_interleave(frames, 0) if backbone.family == "animatediff" else text


def _stock(backbone, x, t, cond):
    """The UNet called the plain diffusers way, one timestep per clip."""
    out = backbone.unet(x, torch.as_tensor(t).reshape(-1).expand(x.shape[0]),
                        encoder_hidden_states=_text(backbone, cond, x.shape[0], x.shape[2]), return_dict=False)
    return out[0]


@contextlib.contextmanager
def temporal_layers_bypassed(unet):
    """Make every module that mixes frames an identity (temporal convs, temporal transformers, motion modules)."""
    from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel
    from diffusers.models.unets.unet_3d_blocks import TemporalConvLayer
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

    def identity(module, args, kwargs, output):
        hidden = args[0] if args else kwargs["hidden_states"]
        return (hidden,) if isinstance(module, TransformerTemporalModel) else hidden

    handles = [m.register_forward_hook(identity, with_kwargs=True) for m in unet.modules()
               if isinstance(m, (TransformerTemporalModel, TemporalConvLayer, AnimateDiffTransformer3D))]
    try:
        yield len(handles)
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def test_uniform_per_frame_timesteps_are_bitwise_the_stock_output(backbone):
    x, cond = _inputs(backbone, batch=2)
    stock = _stock(backbone, x, 500, cond)
    per_frame = backbone.unet(x, torch.full((2, 4), 500), encoder_hidden_states=_text(backbone, cond, 2, 4),
                              return_dict=False)[0]
    assert torch.equal(stock, per_frame)


@torch.no_grad()
def test_per_frame_timesteps_reach_each_frame(backbone):
    """With the layers that mix frames bypassed, frame k under per-frame t equals the stock model at t_k."""
    x, cond = _inputs(backbone)
    ts = [10, 300, 650, 999]
    with temporal_layers_bypassed(backbone.unet) as bypassed:
        assert bypassed > 0
        mixed = backbone.unet(x, torch.tensor([ts]), encoder_hidden_states=_text(backbone, cond, 1, 4),
                              return_dict=False)[0]
        for k, t in enumerate(ts):
            stock = _stock(backbone, x, t, cond)
            torch.testing.assert_close(mixed[:, :, k], stock[:, :, k], rtol=0, atol=2e-5)
    assert not torch.allclose(mixed[:, :, 0], mixed[:, :, 3])


@torch.no_grad()
def test_batch_rows_are_b_major(backbone):
    """Two clips with different per-frame schedules: each equals its own single-clip run."""
    x, cond = _inputs(backbone, batch=2)
    t = torch.tensor([[0, 250, 500, 750], [999, 600, 300, 5]])
    both = backbone.unet(x, t, encoder_hidden_states=_text(backbone, cond, 2, 4), return_dict=False)[0]
    for b in range(2):
        alone = backbone.unet(x[b:b + 1], t[b:b + 1], encoder_hidden_states=_text(backbone, cond, 1, 4),
                              return_dict=False)[0]
        torch.testing.assert_close(both[b:b + 1], alone, rtol=0, atol=2e-5)


def test_hooks_cover_every_resnet_and_are_idempotent(backbone):
    handles = getattr(backbone.unet, "_zeroshot_video_per_frame_hooks")
    resnets = sum(isinstance(m, ResnetBlock2D) for m in backbone.unet.modules())
    per_frame_timesteps.install(backbone.unet)
    assert len(getattr(backbone.unet, "_zeroshot_video_per_frame_hooks")) == len(handles) == resnets + 2


def test_per_frame_timesteps_of_wrong_shape_are_refused(backbone):
    x, cond = _inputs(backbone)
    with pytest.raises(ValueError, match="do not fit"):
        backbone.unet(x, torch.zeros(1, 3, dtype=torch.long), encoder_hidden_states=_text(backbone, cond, 1, 4))


@torch.no_grad()
def test_batched_cfg_is_one_call_and_equals_two_calls(backbone):
    x, cond = _inputs(backbone)
    calls = []
    handle = backbone.unet.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    try:
        denoiser = Denoiser(backbone, guidance=7.5)
        guided = denoiser(x, 700, cond)
    finally:
        handle.remove()
    assert calls == [2] and denoiser.calls == 1
    uncond = _stock(backbone, x, 700, type(cond)(positive=cond.negative, negative=cond.negative))
    positive = _stock(backbone, x, 700, cond)
    torch.testing.assert_close(guided, uncond + 7.5 * (positive - uncond), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_guidance_one_is_a_single_cond_branch(backbone):
    x, cond = _inputs(backbone)
    torch.testing.assert_close(Denoiser(backbone, 1.0)(x, 300, cond), _stock(backbone, x, 300, cond), rtol=0, atol=0)


@torch.no_grad()
def test_per_frame_denoiser_batch_two_with_cfg(backbone):
    x, cond = _inputs(backbone, batch=2)
    t = torch.tensor([[0, 250, 500, 750], [999, 600, 300, 5]])
    denoiser = Denoiser(backbone, guidance=5.0)
    both = denoiser(x, t, cond)
    for b in range(2):
        torch.testing.assert_close(both[b:b + 1], denoiser(x[b:b + 1], t[b:b + 1], cond), rtol=0, atol=2e-5)


def test_before_call_runs_on_every_unet_call(backbone):
    x, cond = _inputs(backbone)
    seen = []
    denoiser = Denoiser(backbone, 3.0, before_call=lambda: seen.append(1))
    for t in (900, 500, 100):
        denoiser(x, t, cond)
    assert len(seen) == 3 == denoiser.calls


def test_negative_guidance_is_refused(backbone):
    with pytest.raises(ValueError, match="guidance"):
        Denoiser(backbone, -1.0)


@torch.no_grad()
def test_image_tokens_need_image_attention(modelscope, animatediff_ip):
    ms = modelscope.ready()
    with pytest.raises(ValueError, match="image cross-attention"):
        ms.encode_image_tokens(torch.rand(1, 64, 64, 3))
    ip = animatediff_ip.ready()
    image, gray = ip.encode_image_tokens(torch.rand(1, 64, 64, 3))
    x, cond = _inputs(ip)
    with_image = Denoiser(ip, 5.0)(x, 500, cond.with_image(image, gray, 1.0))
    at_zero = Denoiser(ip, 5.0)(x, 500, cond.with_image(image, gray, 0.0))
    text_only = Denoiser(ip, 5.0)(x, 500, cond)
    assert torch.equal(at_zero, text_only)
    assert not torch.allclose(with_image, text_only)
    with pytest.raises(ValueError, match="no image cross-attention"):
        Denoiser(ms, 5.0)(x, 500, encode_text(ms, "a", "").with_image(image, gray))
