"""The host's interrupt inside one model call: a check before every block of every ModuleList and every layer, on
the real (tiny) UNet classes, the Wan transformer and both VAEs, through the Denoiser and the backbones'
decode/encode."""
import sys
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
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


# --- one large attention: split in pieces, the check between them (core/interruptible_attention.py) ------------

from zeroshot_video.core import interruptible_attention as attention  # noqa: E402


def _processors(network):
    return {name: module.processor for name, module in network.named_modules() if hasattr(module, "set_processor")}


@pytest.mark.parametrize("budget", [1, 20_000, 100_000, 200_000, 300_000, 10 ** 9])
def test_chunked_attention_equals_the_whole_attention(budget):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 8, generator=g) for n in (24, 40, 40))
    masks = [None, torch.rand(2, 1, 24, 40, generator=g) > 0.2, torch.randn(24, 40, generator=g),
             torch.randn(2, 3, 1, 40, generator=g), torch.randn(1, 3, 24, 40, generator=g)]
    for mask in masks:
        calls = Check()
        whole = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        pieces = attention.chunked_attention(calls, q, k, v, attn_mask=mask, budget=budget)
        torch.testing.assert_close(pieces, whole, rtol=0, atol=1e-6)
        whole_work = 2 * attention._work(3, 24, 40, 8)  # by query rows below 75k a piece, heads below 226k, else samples
        assert calls.calls == 0 if budget >= whole_work else calls.calls > 1  # checked before each piece
    flat = attention.chunked_attention(Check(), q[:, 0], k[:, 0], v[:, 0], scale=0.3, budget=budget)  # [B, L, E]
    torch.testing.assert_close(flat, F.scaled_dot_product_attention(q[:, 0], k[:, 0], v[:, 0], scale=0.3),
                               rtol=0, atol=1e-6)
    causal = Check()  # a causal mask is defined on the whole: run in one piece
    torch.testing.assert_close(attention.chunked_attention(causal, q, k, v, is_causal=True, budget=budget),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=0, atol=0)
    assert causal.calls == 0


@pytest.fixture(scope="module", params=["modelscope", "animatediff", "animatediff_ip", "wan"])
def any_model(request):
    if request.param == "wan":
        from zeroshot_video.nodes.backbone_nodes import LoadT2VBackbone
        return LoadT2VBackbone().load(model=standin_models.WAN21, motion_adapter="none", dtype="fp32")[0].ready()
    return request.getfixturevalue(request.param).ready()


class Recording(Check):
    """Records the name of the function each check was called from."""

    def __init__(self, limit=None):
        super().__init__(limit)
        self.callers = []

    def __call__(self):
        self.callers.append(sys._getframe(1).f_code.co_name)
        super().__call__()


@torch.no_grad()
def test_split_attention_equals_the_whole_in_every_processor(any_model, monkeypatch):
    """Every attention of every network split in pieces of a few query rows (the budget lowered to 2**14): the
    UNets' spatial, cross and temporal ones, the motion modules', IP-Adapter's, Wan's with its rotary embeddings.
    Each attention equals the unsplit one to 1e-6 (Wan: 5e-6), each processor's output its unsplit output to 1e-5
    of its largest value (the rounding its output projection carries on), the prediction the unsplit one to float
    rounding (amplified by guidance); the original processors are back afterwards."""
    model = any_model
    x, t, cond = _inputs(model, frames=3)
    if model.has_image_attention:
        image, gray = model.encode_image_tokens(torch.rand(1, 64, 64, 3))
        cond = cond.with_image(image, gray, 0.7)
    reference = Denoiser(model, 3.0)(x, t, cond)
    if model.has_image_attention:  # leaves the image scale at 0 in the processors: the split call must set 0.7
        Denoiser(model, 3.0)(x, t, replace(cond, image=None, image_uncond=None))
    before, parameters = _processors(model.modules), len(list(model.modules.parameters()))
    whole = Recording()
    Denoiser(model, 3.0, check=whole)(x, t, cond)
    assert "chunked_attention" not in whole.callers  # at these sizes the default budget splits nothing
    monkeypatch.setattr(attention, "CPU_PIECE_WORK", 2 ** 14)
    differences, processor_differences, kept_parameters = [], [], []
    split_attention, wrapped = attention.chunked_attention, attention.InterruptibleAttention.__call__

    def compared_attention(check, *args, **kwargs):
        out = split_attention(check, *args, **kwargs)
        unsplit = F.scaled_dot_product_attention(*args, **kwargs)
        differences.append(float((out - unsplit).abs().max()))
        return out

    def compared_processor(self, attn, *args, **kwargs):
        kept_parameters.append(len(list(model.modules.parameters())) == parameters)
        out = wrapped(self, attn, *args, **kwargs)
        plain = self.inner(attn, *args, **kwargs)
        processor_differences.append(float((out - plain).abs().max() / plain.abs().max()))
        return out

    monkeypatch.setattr(attention, "chunked_attention", compared_attention)
    monkeypatch.setattr(attention.InterruptibleAttention, "__call__", compared_processor)
    split = Recording()
    pred = Denoiser(model, 3.0, check=split)(x, t, cond)
    assert len(differences) >= len(processor_differences) > 0
    # Rounding: torch sums a piece's dot products in another order than the whole's. Wan's RMS-normed queries and
    # keys make logits up to ~25 here, whose rounding the softmax turns into up to ~2e-6
    assert max(differences) <= (5e-6 if model.family == "wan" else 1e-6)
    assert max(processor_differences) <= 1e-5
    torch.testing.assert_close(pred, reference, rtol=1e-4, atol=1e-5)
    assert split.callers.count("chunked_attention") > 2 * len(differences)  # checked between the pieces
    assert all(kept_parameters)  # IP-Adapter's layers stay in the network while wrapped
    after = _processors(model.modules)
    assert after.keys() == before.keys() and all(after[n] is before[n] for n in before)
    assert len(list(model.modules.parameters())) == parameters


@torch.no_grad()
def test_one_large_attention_stops_between_its_pieces(modelscope, monkeypatch):
    """One model call whose attentions exceed the budget (lowered 512×, so that a 24×24-token frame splits as a
    4096×4096 request's frames do at the CPU default): the check runs inside the attentions, so more often than
    there are blocks and layers hooked, and a raise there stops the call from within an attention."""
    monkeypatch.setattr(attention, "CPU_PIECE_WORK", 2 ** 22)
    model = modelscope.ready()
    x, t, cond = _inputs(model, frames=2, side=48)  # 24×24 tokens per frame where the UNet attends
    with checked_blocks([model.unet], Check()) as hooked:
        pass
    recording = Recording()
    reference = Denoiser(model, 3.0, check=recording)(x, t, cond)
    pieces = recording.callers.count("chunked_attention")
    assert pieces >= 16 and len(recording.callers) > hooked  # 4 self-attentions of 2·2 frames × 2 heads × 576²
    torch.testing.assert_close(reference, Denoiser(model, 3.0)(x, t, cond), rtol=1e-4, atol=1e-5)
    stop_at = recording.callers.index("chunked_attention") + 1  # the second piece of the first split attention
    with pytest.raises(Interrupted) as raised:
        Denoiser(model, 3.0, check=Check(limit=stop_at))(x, t, cond)
    assert raised.traceback[-2].name == "chunked_attention"
    assert not any(isinstance(p, attention.InterruptibleAttention) for p in _processors(model.modules).values())


@pytest.mark.parametrize("rows, keys", [(64, 64), (4800, 4800), (32760, 32760), (1, 10 ** 7)])
@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("scale", [1, 4])
def test_rows_per_piece_keeps_each_query_cut_within_the_budget(rows, keys, device, scale):
    """The cut a host with heads packed into its channels makes (the native Wan MODEL's attention override): all
    rows when the whole fits, else pieces of at most the budget's work (one row at least)."""
    device = torch.device(device)
    step = attention.rows_per_piece(1, 12, rows, keys, 128, device, scale)
    budget = scale * attention.piece_work(device)
    if attention._work(12, rows, keys, 128) <= budget:
        assert step == rows
    else:
        assert 1 <= step <= rows and (step == 1 or attention._work(12, step, keys, 128) <= budget)
        assert step == 1 or attention._work(12, step + 1, keys, 128) > budget  # no smaller than it must be
