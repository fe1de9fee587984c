"""Precision and offload choices (core.memory_options): fp8 storage, group offload and A14B expert residency give
the plain model's output (fp8 within its rounding), on tiny stand-ins, on the CPU (group offload with the CPU as
the onload device still runs diffusers' hooks; layerwise casting runs on the CPU)."""
import json
from pathlib import Path

import pytest
import torch

from zeroshot_video.testing import standin_models
from zeroshot_video.core import memory_options as mo
from zeroshot_video.core.families import load_backbone
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.methods.t2v import noise_like

ROOT = Path(__file__).resolve().parents[1]
needs_group_offload = pytest.mark.skipif(mo.group_offload_unavailable() is not None,
                                         reason=str(mo.group_offload_unavailable()))
# (folder, pixel side, model level): the Wan stand-ins take σ, the UNets a DDIM timestep
MODELS = {standin_models.WAN21: (32, 0.6), standin_models.WAN22_A14B: (32, 0.6), standin_models.MODELSCOPE: (32, 300)}


def _load(models_dir, name, dtype=torch.float32, **options):
    backbone = load_backbone(models_dir / "diffusers" / name, dtype=dtype)
    if options:
        mo.apply_memory_options(backbone, device="cpu", **options)
    return backbone


@torch.no_grad()
def _predict(backbone, name, level=None, seed=0, guidance=4.0):
    """The denoiser's output; guidance 1 shows the network's own output (guidance 4 amplifies differences 5×)."""
    side, default_level = MODELS[name]
    frames = 9 if backbone.family == "wan" else 4
    x = noise_like(backbone.latent_shape(frames, side, side), torch.Generator().manual_seed(seed))
    cond = encode_text(backbone, "a red panda", "blurry")
    return Denoiser(backbone, guidance)(x, default_level if level is None else level, cond)


FP8_TOLERANCE = 0.1
"""Relative RMS difference allowed for fp8 storage: e4m3 keeps 3 mantissa bits, so each weight is off by up to
6 % (about 2 % RMS). Measured: Wan stand-in 1.3 % (fp32 and bf16 compute), the random ModelScope UNet 7.7 % (the
same as rounding its weights by hand: random weights have no redundancy to average the rounding out)."""


def _relative_rms(out, reference) -> float:
    return float((out - reference).norm() / reference.norm())


def _fp8_weights(network):
    return [n for n, p in network.named_parameters() if p.dtype == torch.float8_e4m3fn]


@pytest.mark.parametrize("name", [standin_models.WAN21, standin_models.MODELSCOPE])
def test_fp8_storage_is_the_plain_model_with_fp8_rounded_weights(models_dir, name):
    plain_backbone = _load(models_dir, name)
    plain = _predict(plain_backbone, name, guidance=1.0)
    backbone = _load(models_dir, name, precision=mo.FP8)
    (_, network), = mo.networks(backbone)
    stored = _fp8_weights(network)
    assert any(n.endswith("to_q.weight") for n in stored), "the attention projections are stored in fp8"
    assert not any("norm" in n for n in stored), "norms stay in full precision"
    assert _fp8_share(network) > 0.4, "most weights (on the real models ~98 %) are stored in fp8"
    assert backbone.vae.dtype == torch.float32, "the VAE keeps its precision"
    encoder_stored = _fp8_weights(backbone.text_encoder)
    assert encoder_stored and not any("norm" in n or "embed" in n or "shared" in n for n in encoder_stored), \
        "the text encoder's projections are stored in fp8, its norms and embeddings are not"
    out = _predict(backbone, name, guidance=1.0)
    # exactly the plain model whose stored weights were rounded to fp8: the casting adds nothing of its own
    (_, plain_network), = mo.networks(plain_backbone)
    for plain_part, part in ((plain_network, network), (plain_backbone.text_encoder, backbone.text_encoder)):
        rounded = set(_fp8_weights(part))
        with torch.no_grad():
            for n, p in plain_part.named_parameters():
                if n in rounded:
                    p.copy_(p.to(torch.float8_e4m3fn).to(p.dtype))
    torch.testing.assert_close(out, _predict(plain_backbone, name, guidance=1.0), rtol=0, atol=0)
    error = _relative_rms(out, plain)
    assert 0 < error < FP8_TOLERANCE, f"fp8 output off by {error:.3g} (relative RMS)"


def _fp8_share(network) -> float:
    stored = set(_fp8_weights(network))
    counts = [(p.numel(), n in stored) for n, p in network.named_parameters()]
    return sum(c for c, fp8 in counts if fp8) / sum(c for c, _ in counts)


def test_fp8_storage_with_bf16_compute(models_dir):
    name = standin_models.WAN21
    reference = _predict(_load(models_dir, name), name, guidance=1.0)
    backbone = _load(models_dir, name, dtype=torch.bfloat16, precision=mo.FP8)
    assert backbone.transformer.dtype == torch.bfloat16, "diffusers reports the compute dtype"
    out = _predict(backbone, name, guidance=1.0)
    error = _relative_rms(out.float(), reference)
    assert 0 < error < FP8_TOLERANCE


@needs_group_offload
@pytest.mark.parametrize("name", [standin_models.MODELSCOPE, standin_models.WAN22_A14B])
def test_offloaded_or_swapped_networks_are_still_checked_inside_a_model_call(models_dir, name):
    """The host's interrupt check runs inside a call whose networks left ``modules`` (group offload; A14B's experts
    taking turns), not only once before it."""
    counts = {}
    for label, options in (("plain", {}), ("group", {"offload": mo.GROUP}), ("swap", {"experts": mo.ONE})):
        if label == "swap" and name == standin_models.MODELSCOPE:
            continue
        backbone = _load(models_dir, name, **options)
        side, level = MODELS[name]
        x = noise_like(backbone.latent_shape(9 if backbone.family == "wan" else 4, side, side),
                       torch.Generator().manual_seed(0))
        checks = []
        with torch.no_grad():
            Denoiser(backbone, 4.0, check=lambda: checks.append(1))(x, level, encode_text(backbone, "a cat", ""))
        counts[label] = len(checks)
    assert all(count > 10 for count in counts.values()), counts


@needs_group_offload
@pytest.mark.parametrize("name", list(MODELS))
def test_group_offload_gives_the_plain_output(models_dir, name):
    plain = _predict(_load(models_dir, name), name)
    backbone = _load(models_dir, name, offload=mo.GROUP)
    names = [n for n, _ in mo.networks(backbone)]
    assert names and not set(names) & set(dict(backbone.modules.named_children())), \
        "offloaded networks are out of what the model manager moves whole"
    hooked = [m for _, net in mo.networks(backbone) for m in net.modules() if hasattr(m, "_diffusers_hook")]
    assert hooked, "diffusers' group-offload hooks are installed"
    if backbone.text_encoder_moves:  # Wan's UMT5, outside the unit, is offloaded layer by layer too
        assert any(hasattr(m, "_diffusers_hook") for m in backbone.text_encoder.modules())
    else:  # a text encoder that travels with the unit stays in it
        assert "text_encoder" in dict(backbone.modules.named_children())
    torch.testing.assert_close(_predict(backbone, name), plain, rtol=0, atol=1e-6)
    assert mo.transient_gpu_bytes(backbone) < sum(mo.module_bytes(n) for _, n in mo.networks(backbone))


@needs_group_offload
def test_fp8_and_group_offload_together(models_dir):
    name = standin_models.WAN21
    fp8 = _predict(_load(models_dir, name, precision=mo.FP8), name)
    both = _load(models_dir, name, precision=mo.FP8, offload=mo.GROUP)
    assert _fp8_weights(both.transformer)
    torch.testing.assert_close(_predict(both, name), fp8, rtol=0, atol=1e-6)


def _watch_experts(backbone, seen):
    """At each expert's forward: which expert runs and whether the other is on the device."""
    experts = {"high": backbone.transformer, "low": backbone.transformer_2}
    handles = []
    for tag, expert in experts.items():
        other = experts["low" if tag == "high" else "high"]

        def hook(module, args, tag=tag, other=other):
            seen.append((tag, backbone.network_swap.is_resident(other)))
        handles.append(expert.register_forward_pre_hook(hook))
    return handles


class RecordingHost:
    """A model manager as ComfyUI's glue installs one (nodes/comfy_glue.py): records every move it is asked for."""

    def __init__(self, backbone):
        self.names = {id(backbone.transformer): "high", id(backbone.transformer_2): "low"}
        self.loaded, self.moves = set(), []

    def bring(self, network):
        self.moves.append(("bring", self.names[id(network)]))
        self.loaded.add(id(network))

    def release(self, network):
        self.moves.append(("release", self.names[id(network)]))
        self.loaded.discard(id(network))

    def on_device(self, network):
        return id(network) in self.loaded


STRADDLING = torch.tensor([[0.95, 0.9, 0.3]])  # boundary 0.875: two frames for the high-noise expert, one low
LEVELS = [0.95, 0.3, STRADDLING, STRADDLING, 0.3]


@torch.no_grad()
@pytest.mark.parametrize("with_host", [False, True])
def test_experts_one_at_a_time_match_both_resident(models_dir, with_host):
    name = standin_models.WAN22_A14B
    resident = _load(models_dir, name, experts=mo.BOTH)
    assert resident.network_swap is None and "transformer_2" in dict(resident.modules.named_children())
    swapped = _load(models_dir, name, experts=mo.ONE)
    assert not {"transformer", "transformer_2"} & set(dict(swapped.modules.named_children())), \
        "experts that take turns are not moved with the rest of the model"
    host = swapped.network_swap.host = RecordingHost(swapped) if with_host else None
    seen = []
    handles = _watch_experts(swapped, seen)
    try:
        for level in LEVELS:
            torch.testing.assert_close(_predict(swapped, name, level), _predict(resident, name, level), rtol=0, atol=0)
    finally:
        for handle in handles:
            handle.remove()
    assert seen and not any(other_on_device for _, other_on_device in seen), \
        "while one expert runs, the other is off the device"
    # a straddling window runs the expert already on the device first: one swap per such call, not two
    assert [tag for tag, _ in seen] == ["high", "low", "low", "high", "high", "low", "low"]
    if host is not None:  # the manager is asked before every call (it may have evicted the expert in between)
        assert host.moves == [("bring", "high"), ("release", "high"), ("bring", "low"), ("bring", "low"),
                              ("release", "low"), ("bring", "high"), ("bring", "high"), ("release", "high"),
                              ("bring", "low"), ("bring", "low")]


def test_auto_keeps_both_experts_while_they_fit(models_dir):
    name = standin_models.WAN22_A14B
    roomy = _load(models_dir, name, experts=mo.AUTO, free_memory=lambda device, needed: 10 ** 12)
    tight = _load(models_dir, name, experts=mo.AUTO, free_memory=lambda device, needed: 1)
    for backbone in (roomy, tight):
        backbone.network_swap.use(backbone.transformer)
        backbone.network_swap.use(backbone.transformer_2)
    assert roomy.network_swap.is_resident(roomy.transformer) and roomy.network_swap.is_resident(roomy.transformer_2)
    assert not tight.network_swap.is_resident(tight.transformer) and tight.network_swap.is_resident(tight.transformer_2)


def test_the_text_encoder_goes_through_the_hosts_memory_manager(models_dir):
    """Wan's UMT5 is not part of the unit the manager keeps on the GPU: a host is asked to bring it for the prompt
    and to release it right after, so its memory is made room for, counted, and handed back."""
    backbone = _load(models_dir, standin_models.WAN21)
    plain = encode_text(backbone, "a red panda", "blurry")
    calls = []

    class Host:
        def bring(self, module):
            calls.append(("bring", module is backbone.text_encoder))

        def release(self, module):
            calls.append(("release", module is backbone.text_encoder))
    backbone.text_encoder_host = Host()
    hosted = encode_text(backbone, "a red panda", "blurry")
    assert calls == [("bring", True), ("release", True)] * 2, "brought and released for each prompt"
    assert torch.equal(hosted.positive, plain.positive) and torch.equal(hosted.negative, plain.negative)


def test_single_network_models_have_no_swap(models_dir):
    for name in (standin_models.WAN21, standin_models.MODELSCOPE):
        backbone = _load(models_dir, name, experts=mo.ONE)
        assert getattr(backbone, "network_swap", None) is None
        assert len(mo.networks(backbone)) == 1


def test_unknown_options_are_refused_with_the_choices(models_dir):
    backbone = _load(models_dir, standin_models.WAN21)
    with pytest.raises(ValueError, match="'default', 'fp8 storage'"):
        mo.apply_memory_options(backbone, precision="fp4")
    with pytest.raises(ValueError, match="'none', 'group offload'"):
        mo.apply_memory_options(backbone, offload="disk")
    with pytest.raises(ValueError, match="vae_precision must be one of 'default', 'bf16'"):
        mo.check_memory_options(vae_precision="fp16")


VAE_BF16_TOLERANCE = 0.02
"""Relative RMS difference allowed between frames decoded by a bf16 VAE and by the same VAE in float32: bf16 keeps
8 mantissa bits (0.4 % per value). Measured on the stand-ins: decoding 0.24 % (Wan) and 0.35 % (ModelScope),
encoding 0.15 % and 1.1 %."""


@pytest.mark.parametrize("name", [standin_models.WAN21, standin_models.MODELSCOPE])
def test_a_bf16_vae_decodes_and_encodes_within_bf16_rounding_of_float32(models_dir, name):
    plain = _load(models_dir, name)
    half = _load(models_dir, name, vae_precision=mo.BF16)
    assert {p.dtype for p in half.vae.parameters()} == {torch.bfloat16}
    assert {p.dtype for _, n in mo.networks(half) for p in n.parameters()} == {torch.float32}  # only the VAE
    assert mo.module_bytes(half.vae) * 2 == mo.module_bytes(plain.vae)
    frames = 5 if plain.family == "wan" else 2
    latent = noise_like(plain.latent_shape(frames, 32, 32), torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference, decoded = plain.decode(latent), half.decode(latent)
        assert decoded.dtype == torch.float32 and decoded.shape == reference.shape
        assert _relative_rms(decoded, reference) < VAE_BF16_TOLERANCE
        pixels = reference[:1].permute(0, 3, 1, 2) * 2 - 1
        encoded, encoded_plain = half.encode(pixels), plain.encode(pixels)
    assert encoded.dtype == torch.float32 and _relative_rms(encoded, encoded_plain) < VAE_BF16_TOLERANCE


def test_memory_figures_are_documented_and_committed():
    text = (ROOT / "docs" / "PERFORMANCE.md").read_text()
    assert "## Memory settings" in text
    for option in list(mo.PRECISIONS) + list(mo.OFFLOADS) + list(mo.EXPERTS) + list(mo.VAE_PRECISIONS):
        assert f"`{option}`" in text, f"docs/PERFORMANCE.md does not document {option!r}"
    figures = json.loads((ROOT / "bench" / "results" / "loading_memory.json").read_text())
    assert figures["routes"] and all(r["peak_rss_over_file_size"] > 0 for r in figures["routes"])
