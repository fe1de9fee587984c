"""The host's interrupt inside one model call: a check before every block of every ModuleList and every layer, on
the real (tiny) UNet classes, the Wan transformer and both VAEs, through the Denoiser and the backbones'
decode/encode."""
import pytest
import torch
from torch import nn

from zeroshot_video.testing import standin_models
from zeroshot_video.core.block_checks import checked_blocks
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser


class Interrupted(Exception):
    pass


class Check:
    """Counts its calls; raises on the call after ``limit``."""

    def __init__(self, limit=None):
        self.calls, self.limit = 0, limit

    def __call__(self):
        self.calls += 1
        if self.limit is not None and self.calls > self.limit:
            raise Interrupted


def _hooks(module):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in module.modules())


@pytest.fixture(scope="module", params=["modelscope", "animatediff", "wan"])
def model(request):
    if request.param == "wan":
        from zeroshot_video.nodes.backbone_nodes import LoadT2VBackbone
        return LoadT2VBackbone().load(model=standin_models.WAN21, motion_adapter="none", dtype="fp32")[0].ready()
    return request.getfixturevalue(request.param).ready()


def _inputs(backbone, frames=2, side=8):
    x = torch.randn(1, backbone.channels, frames, side, side, generator=torch.Generator().manual_seed(0))
    t = 0.5 if backbone.family == "wan" else 500
    return x, t, encode_text(backbone, "the cat", "")


def _completed_blocks(network):
    """Forward hooks counting the ModuleList elements whose forward finished."""
    done, handles = [], []
    for holder in network.modules():
        if isinstance(holder, nn.ModuleList):
            handles += [block.register_forward_hook(lambda *_: done.append(1)) for block in holder]
    return done, handles


@torch.no_grad()
def test_a_check_stops_one_model_call_within_its_blocks(model):
    x, t, cond = _inputs(model)
    full = Check()
    reference = Denoiser(model, 3.0, check=full)(x, t, cond)
    blocks = full.calls - 1  # one check before the call, one before every block run
    assert blocks >= 8
    before = _hooks(model.modules)
    done, handles = _completed_blocks(model.modules)
    Denoiser(model, 3.0, check=Check())(x, t, cond)
    finished_in_full_call = len(done)
    done.clear()
    stopping = Check(limit=1 + blocks // 2)
    per_frame = torch.tensor([[t, t * 1.4]])  # per-frame levels: the UNets' per-call hook state must not leak
    with pytest.raises(Interrupted):
        Denoiser(model, 3.0, check=stopping)(x, per_frame, cond)
    for handle in handles:
        handle.remove()
    assert stopping.calls == 2 + blocks // 2  # stopped mid-forward, on the first check past the limit
    assert 0 < len(done) < finished_in_full_call
    assert _hooks(model.modules) == before  # every hook of the check is gone, also after the raise
    assert torch.equal(Denoiser(model, 3.0)(x, t, cond), reference)  # the next call runs as if none was stopped


@torch.no_grad()
def test_the_check_runs_before_every_layer_a_model_call_runs(model):
    """Layers, not only blocks: a large request's block takes seconds on the CPU, a layer a fraction of that."""
    x, t, cond = _inputs(model)
    layers = [m for m in model.modules.modules() if next(m.children(), None) is None]
    ran = []
    handles = [layer.register_forward_pre_hook(lambda *_: ran.append(1)) for layer in layers]
    full = Check()
    try:
        Denoiser(model, 3.0, check=full)(x, t, cond)
    finally:
        for handle in handles:
            handle.remove()
    assert len(ran) > 0 and full.calls - 1 >= len(ran)


@torch.no_grad()
def test_a_no_op_check_changes_nothing_and_counts_calls(model):
    x, t, cond = _inputs(model)
    plain = Denoiser(model, 3.0)(x, t, cond)
    counted = []
    checked = Denoiser(model, 3.0, before_call=lambda: counted.append(1), check=Check())
    assert torch.equal(checked(x, t, cond), plain)
    checked(x, t, cond)
    assert checked.calls == 2 == len(counted)


@torch.no_grad()
def test_decode_and_encode_stop_within_the_vae(model):
    latent = torch.randn(1, model.channels, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    before = _hooks(model.vae)
    full = Check()
    frames = model.decode(latent, 1, check=full)
    assert torch.equal(frames, model.decode(latent, 1))
    assert full.calls > 4
    with pytest.raises(Interrupted):
        model.decode(latent, 1, check=Check(limit=full.calls // 2))
    pixels = frames[:1].permute(0, 3, 1, 2) * 2 - 1
    with pytest.raises(Interrupted):
        model.encode(pixels, check=Check(limit=2))
    assert _hooks(model.vae) == before


def test_checked_blocks_hooks_each_block_and_layer_once_and_cleans_up():
    inner = nn.Linear(2, 2)
    net = nn.Sequential(nn.ModuleList([inner, nn.ReLU()]), nn.ModuleList([inner]), nn.Tanh())
    with checked_blocks([net, net[0]], Check()) as hooked:
        assert hooked == 3 and _hooks(net) == 3  # the Linear, the ReLU and the Tanh, each once
    assert _hooks(net) == 0
    with checked_blocks([net], None) as hooked:
        assert hooked == 0 and _hooks(net) == 0
    with pytest.raises(Interrupted):
        with checked_blocks([net], Check(limit=0)):
            inner(torch.zeros(2))
    assert _hooks(net) == 0
