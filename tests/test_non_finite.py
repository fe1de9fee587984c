"""No NaN, no silent blank video: a sampler whose latent stops being finite is stopped at the model call where it
happened, with the likely causes; the decoders refuse a non-finite latent; a non-finite guidance is refused."""
import math

import pytest
import torch

from zeroshot_video.testing import standin_models
from zeroshot_video.core.block_checks import NonFiniteError
from zeroshot_video.core.conditioning import Conditioning
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.schedule import FlowSchedule
from zeroshot_video.core.methods.t2v import noise_like, sample_t2v

COND = Conditioning(positive=torch.ones(1, 2, 3), negative=torch.zeros(1, 2, 3))


class DivergingBackbone:
    """Predicts a finite velocity for ``finite_calls`` calls, then ``bad`` (NaN or inf)."""

    device = torch.device("cpu")

    def __init__(self, finite_calls, bad=math.nan, dtype=torch.float32):
        self.finite_calls, self.bad, self.dtype, self.calls = finite_calls, bad, dtype, 0

    def predict(self, x, t, texts, cond):
        self.calls += 1
        value = 0.1 if self.calls <= self.finite_calls else self.bad
        return [torch.full_like(x, value) for _ in texts]

    def guidance_scale(self, t, like, guidance, guidance_2):
        return guidance

    def denoising_networks(self):
        return {}


def _sample(denoiser, steps=6):
    noise = noise_like((1, 4, 3, 4, 4), torch.Generator().manual_seed(0))
    return sample_t2v(denoiser, FlowSchedule(shift=3.0), COND, noise, steps, generator=torch.Generator())


@pytest.mark.parametrize("guidance", [1.0, 7.5])
def test_a_diverging_sampler_stops_at_the_call_it_happened(guidance):
    backbone = DivergingBackbone(finite_calls=2)
    with pytest.raises(NonFiniteError) as error:
        _sample(Denoiser(backbone, guidance))
    message = str(error.value)
    assert "model call 3" in message and "guidance too high" in message and "bf16 or fp32" in message
    assert f"guidance is {guidance:g}" in message
    assert backbone.calls == 3  # no further call ran on the garbage
    assert "65504" not in message


def test_fp16_overflow_says_to_load_bf16_or_fp32():
    with pytest.raises(NonFiniteError, match="model call 1: .*fp16, whose largest number is 65504"):
        _sample(Denoiser(DivergingBackbone(finite_calls=0, bad=math.inf, dtype=torch.float16), 5.0))


def test_a_non_finite_latent_is_refused_before_the_model_sees_it():
    backbone = DivergingBackbone(finite_calls=99)
    denoiser = Denoiser(backbone, 5.0)
    x = torch.zeros(1, 4, 2, 4, 4)
    bad = x.clone()
    bad[0, 0, 1, 2, 3] = math.nan
    with pytest.raises(NonFiniteError, match="latent given to the sampler holds NaN/inf"):
        denoiser(bad, 0.5, COND)
    denoiser(x, 0.5, COND)
    with pytest.raises(NonFiniteError, match="model call 3: the latent entering it holds NaN/inf"):
        denoiser(bad.fill_(math.inf), 0.5, COND)
    assert backbone.calls == 1


@pytest.mark.parametrize("name", ["guidance", "guidance_2"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_a_non_finite_or_negative_guidance_is_refused(name, value):
    kwargs = {"guidance": 5.0, name: value}
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        Denoiser(DivergingBackbone(99), **kwargs)


@pytest.fixture(scope="module", params=["modelscope", "wan"])
def model(request):
    if request.param == "wan":
        from zeroshot_video.nodes.backbone_nodes import LoadT2VBackbone
        return LoadT2VBackbone().load(model=standin_models.WAN21, motion_adapter="none", dtype="fp32")[0].ready()
    return request.getfixturevalue(request.param).ready()


def test_decoders_refuse_a_non_finite_latent(model):
    latent = torch.zeros(1, model.channels, 3, 4, 4)
    latent[0, 1, 2, 0, 0] = math.nan
    with pytest.raises(NonFiniteError, match="latent holds NaN/inf.*sampler that made it diverged"):
        model.decode(latent, 2)
    decode = model.stream_decoder()
    decode(torch.zeros(1, model.channels, 1, 4, 4))
    with pytest.raises(NonFiniteError, match="latent holds NaN/inf"):
        decode(latent[:, :, 2:].clone().fill_(-math.inf))
