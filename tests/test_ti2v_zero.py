"""TI2V-Zero: the invariants of shared/design/TI2V_ZERO.md, the anchor, the nodes and bad input.

Algorithm invariants run on a mock denoiser/VAE (exact, fast), each on an ε-prediction (VP) schedule and on
a rectified-flow one (the mock's output read as a velocity); bit-identity of the encode cache, seeds, both
backbone families and the node plumbing run on the tiny stand-in models."""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from zeroshot_video.cli import commands as cli
from zeroshot_video.core.methods.anchor import Anchor, make_anchor, preprocess, to_pixels
from zeroshot_video.core.schedule import FINAL, FlowSchedule, Schedule
from zeroshot_video.testing.standin_models import ddim_scheduler
from zeroshot_video.core.methods.strategies import NoiseInit, Resample
from zeroshot_video.core.methods.t2v import noise_like, sample_t2v
from zeroshot_video.core.methods import ti2v_zero
from zeroshot_video.core.methods.ti2v_zero import sample_ti2v_zero, ti2v_grid
from zeroshot_video.nodes import comfy_glue
from zeroshot_video.nodes.ti2v_nodes import DDPMInvertQueue, EncodeAnchorImage, RepeatAndSlideSampler, ResampleStep

SCHEDULE = Schedule.from_scheduler(ddim_scheduler("scaled_linear", "leading"))
SCHEDULES = {"vp": SCHEDULE, "flow": FlowSchedule(shift=5.0)}
SIZE, LATENT = 16, 2  # mock VAE: 16×16 pixels ↔ 4×2×2 latents


@pytest.fixture(params=sorted(SCHEDULES))
def schedule(request):
    return SCHEDULES[request.param]


# --- mocks -----------------------------------------------------------------------------------------
class MockDenoiser:
    """Frame-coupled (the output for a frame depends on the clip mean), deterministic, and it records every
    call. Its output is ε̂ on a VP schedule and the velocity on a flow one."""

    def __init__(self, schedule):
        self.schedule = schedule
        self.inputs, self.timesteps, self.outputs = [], [], []

    def __call__(self, x, t, cond):
        eps = 0.3 * x + 0.1 * x.mean(dim=2, keepdim=True) + 0.01 * self.schedule.model_timestep(t) / 1000
        self.inputs.append(x.clone())
        self.timesteps.append(t)
        self.outputs.append(eps)
        return eps


class MockVAE:
    def __init__(self):
        self.encoded, self.decoded = [], []

    def encode(self, images):
        self.encoded.append(images.clone())
        pooled = F.avg_pool2d(to_pixels(images), SIZE // LATENT)  # [n, 3, 2, 2]
        z = torch.cat([pooled, pooled.mean(1, keepdim=True)], dim=1)
        return z.permute(1, 0, 2, 3).unsqueeze(0)

    def decode(self, z):
        self.decoded.append(z.clone())
        image = F.interpolate(z[0, :3].permute(1, 0, 2, 3), scale_factor=SIZE // LATENT)
        return torch.sigmoid(image).permute(0, 2, 3, 1)


def mock_run(schedule, frames=None, num_frames=3, steps=3, model_frames=4, rounds=1, mode="ddpm_inversion", seed=0,
             noise_sampler=None, **options):
    frames = torch.rand(1, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(7)) if frames is None else frames
    den, mock = MockDenoiser(schedule), MockVAE()
    latents = torch.cat([mock.encode(frames[i:i + 1]) for i in range(frames.shape[0])], dim=2)
    mock.encoded.clear()
    video, out = sample_ti2v_zero(den, schedule, None, frames, latents, num_frames, steps, model_frames=model_frames,
                                  encode=mock.encode, decode=mock.decode, generator=torch.Generator().manual_seed(seed),
                                  noise_sampler=noise_sampler, noise_init=NoiseInit(mode), resample=Resample(rounds),
                                  **options)
    return video, out, den, mock, frames, latents


def zeros(shape):
    return torch.zeros(shape)


# --- schedule --------------------------------------------------------------------------------------
def test_grid_is_leading_with_offset_one_and_final_alpha_bar_0():
    # VP only: the reference's grid is a DDIM one (901 … 1); a flow backbone runs its own Euler grid
    # (tests/test_flow_schedule.py).
    pairs = ti2v_grid(SCHEDULE, 10)
    assert [t for t, _ in pairs] == [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]
    assert [t for _, t in pairs] == [801, 701, 601, 501, 401, 301, 201, 101, 1, 0]
    final = SCHEDULE.alpha(FINAL, torch.zeros(1))
    assert final == SCHEDULE.alphas_cumprod[0] and abs(float(final) - 0.99915) < 1e-6
    # AnimateDiff's scheduler spaces its own grid by linspace; TI2V-Zero keeps its leading grid there too.
    linspace = Schedule.from_scheduler(ddim_scheduler("linear", "linspace"))
    assert [t for t, _ in ti2v_grid(linspace, 10)] == [t for t, _ in pairs]


# --- algorithm invariants (mock) -------------------------------------------------------------------
def test_with_zero_noise_slots_hold_scaled_queue_inversion_and_renoise(schedule):
    steps, rounds, F_, K = 3, 2, 4, 3
    video, out, den, mock, frames, latents = mock_run(schedule, num_frames=1, steps=steps, rounds=rounds,
                                                      model_frames=F_, noise_sampler=zeros)
    c = latents.expand(-1, -1, K, -1, -1)
    pairs = ti2v_grid(schedule, steps)
    tau1 = pairs[0][0]  # on a flow grid σ = 1: a = 0, the inverted slot is pure (here zero) noise
    assert torch.allclose(den.inputs[0][:, :, K], schedule.coefficients(tau1, c).a * c[:, :, -1], atol=1e-6)
    call = 0
    for t, t_step, t_next in ti2v_zero.step_levels(pairs):  # VP S = 3: 999 steps to 666, t' = 667
        a_t, a_next = schedule.coefficients(t, c).a, schedule.coefficients(t_next, c).a
        assert torch.allclose(den.inputs[call][:, :, :K], a_t * c, atol=1e-6)  # step 4a
        for _ in range(ti2v_zero.rounds_at(schedule, t, rounds)):  # none at σ = 1 (no signal to keep)
            # step iii: every frame × a_t/a_t' (√(ᾱ_t/ᾱ_t')), after the queue is put back at t'
            stepped = schedule.ddim_step(den.inputs[call], den.outputs[call], t, t_step)
            stepped = torch.cat([a_next * c, stepped[:, :, K:]], dim=2)
            call += 1
            assert torch.allclose(den.inputs[call], (a_t / a_next) * stepped, atol=1e-6)
        call += 1
    assert call == len(den.inputs)


@pytest.mark.parametrize("rounds", [0, 2])
def test_call_and_vae_counts_per_new_frame(schedule, rounds):
    steps, n, F_ = 3, 4, 5
    video, out, den, mock, *_ = mock_run(schedule, num_frames=n, steps=steps, rounds=rounds, model_frames=F_)
    # VP S = 3: the reference's 4 steps; flow: the backbone's 3 Euler steps
    assert len(den.inputs) == n * ti2v_zero.calls_per_frame(schedule, ti2v_grid(schedule, steps), rounds)
    if schedule.has_signal(ti2v_grid(schedule, steps)[0][0]):
        assert len(den.inputs) == n * len(ti2v_grid(schedule, steps)) * (rounds + 1)
    else:  # flow: no resampling round at σ = 1, where it would renoise the clip to pure noise
        assert len(den.inputs) == n * (len(ti2v_grid(schedule, steps)) * (rounds + 1) - rounds)
    assert all(x.shape[2] == F_ for x in den.inputs)
    level = int if schedule.prediction == "epsilon" else float
    assert all(isinstance(t, level) for t in den.timesteps)  # one scalar level for the whole clip
    assert len(mock.decoded) == n and all(z.shape[2] == 1 for z in mock.decoded)
    # one encode per new frame that re-enters the queue (the anchor came encoded; the last never re-enters)
    assert len(mock.encoded) == n - 1
    for k, image in enumerate(mock.encoded):
        assert torch.equal(image[0], video[1 + k])


def test_decodes_the_final_sample_of_the_new_slot(schedule):
    video, out, den, mock, *_ = mock_run(schedule, num_frames=2, steps=2, rounds=1, model_frames=4)
    per_frame = ti2v_zero.calls_per_frame(schedule, ti2v_grid(schedule, 2), 1)  # flow: no round at σ = 1
    t, t_next = ti2v_grid(schedule, 2)[-1]  # VP: 1 → 0 (ᾱ_0); flow: the last σ → 0
    for n in range(2):
        last = per_frame * (n + 1) - 1
        final = schedule.ddim_step(den.inputs[last], den.outputs[last], t, t_next)[:, :, -1:]
        assert torch.equal(mock.decoded[n], final)
        assert torch.equal(out[:, :, 1 + n], final[:, :, 0])


def test_queue_slides_over_the_output_and_frame_0_is_the_input(schedule):
    n, F_ = 6, 4
    K = F_ - 1
    video, out, den, mock, frames, latents = mock_run(schedule, num_frames=n, model_frames=F_, encode_cache=False)
    assert video.shape[0] == n + 1 and out.shape[2] == n + 1
    assert torch.equal(video[0], frames[0]) and torch.equal(out[:, :, :1], latents)
    padded = [video[0]] * (K - 1) + list(video)
    assert len(mock.encoded) == n * K  # the reference's cost: the whole queue, every frame
    for i in range(n):
        queue = mock.encoded[i * K:(i + 1) * K]
        for slot in range(K):
            assert torch.equal(queue[slot][0], padded[i + slot])


def test_encode_cache_is_bit_identical_to_re_encoding(schedule):
    cached = mock_run(schedule, num_frames=5, encode_cache=True)
    fresh = mock_run(schedule, num_frames=5, encode_cache=False)
    assert torch.equal(cached[0], fresh[0]) and torch.equal(cached[1], fresh[1])
    assert len(cached[3].encoded) < len(fresh[3].encoded)


def test_reduces_to_plain_ddim_t2v_without_queue_resampling_and_inversion(schedule):
    F_, steps, seed = 5, 4, 3
    video, out, den, *_ = mock_run(schedule, num_frames=1, steps=steps, rounds=0, model_frames=F_, mode="gaussian",
                                   seed=seed, condition_on_queue=False)
    gen = torch.Generator().manual_seed(seed)
    noise = noise_like((1, 4, F_, LATENT, LATENT), gen)
    plain = sample_t2v(MockDenoiser(schedule), schedule, None, noise, steps, generator=gen)
    assert torch.equal(out[:, :, 1], plain[:, :, -1])


def test_video_prediction_seeds_the_queue_with_the_given_frames(schedule):
    given = torch.rand(2, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(1))
    video, out, den, mock, *_ = mock_run(schedule, frames=given, num_frames=2, model_frames=5, encode_cache=False)
    assert video.shape[0] == 4 and torch.equal(video[:2], given)
    first_queue = [image[0] for image in mock.encoded[:4]]  # fewer than K = 4 frames: the first is repeated
    for got, want in zip(first_queue, [given[0], given[0], given[0], given[1]]):
        assert torch.equal(got, want)
    many = torch.rand(6, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(2))
    video, out, den, mock, *_ = mock_run(schedule, frames=many, num_frames=1, model_frames=4, encode_cache=False)
    assert video.shape[0] == 7 and all(torch.equal(e[0], f) for e, f in zip(mock.encoded, many[3:]))


def test_latent_queue_skips_the_vae_round_trip(schedule):
    video, out, den, mock, frames, latents = mock_run(schedule, num_frames=3, steps=2, rounds=0, latent_queue=True,
                                                      noise_sampler=zeros)
    assert mock.encoded == [] and len(mock.decoded) == 3
    pairs = ti2v_grid(schedule, 2)
    for j, (t, _) in enumerate(pairs):  # the calls for the second new frame: the queue ends with the first's latent
        second = den.inputs[len(pairs) + j]  # (every step: flow's first level σ = 1 carries no signal)
        a = schedule.coefficients(t, latents).a
        assert torch.allclose(second[:, :, 2], a * out[:, :, 1], atol=1e-6)


def test_fresh_noise_for_every_noising(schedule):
    shapes = []

    def recording(shape):
        shapes.append(shape)
        return torch.randn(shape)

    mock_run(schedule, num_frames=1, steps=2, rounds=2, model_frames=4, noise_sampler=recording)
    # per frame: the clip; per step: the queue at t and, with rounds, at t' and one push-back per round (a flow
    # model's σ = 1 step has no round: nothing would survive it)
    expected = [(1, 4, 4, 2, 2)]
    for t, _ in ti2v_grid(schedule, 2):
        here = ti2v_zero.rounds_at(schedule, t, 2)
        expected += [(1, 4, 3, 2, 2)] + ([(1, 4, 3, 2, 2)] + [(1, 4, 4, 2, 2)] * here if here else [])
    assert shapes == expected


def official_levels(steps: int) -> list[tuple[int, int, int]]:
    """(t, DDIM target, next level) per step of the reference's loop, from its semantics: its grid is
    1 + arange(0, 1000, 1000 // S) clamped to 999, descending; its DDIM update always lands on t − 1000 // S (at
    least 0), while the queue's second noising and the resampling push-back read the next grid point (0 last)."""
    stride = 1000 // steps
    grid = [min(1 + i, 999) for i in reversed(range(0, 1000, stride))]
    return [(t, max(t - stride, 0), (grid + [0])[j + 1]) for j, t in enumerate(grid)]


def official_new_latent(denoiser, c: torch.Tensor, steps: int, rounds: int, noises) -> torch.Tensor:
    """One new latent of the reference's loop (ε-model, η = 0) after the queue latents ``c``, written out on the
    ᾱ table, taking its noises from ``noises`` in the order the pack draws them."""
    abar = SCHEDULE.alphas_cumprod

    def q(x0, t, eps):
        return abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * eps

    def ddim(z, t, target):
        eps = denoiser(z, t, None)
        x0 = (z - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()
        return abar[target].sqrt() * x0 + (1 - abar[target]).sqrt() * eps

    K, levels = c.shape[2], official_levels(steps)
    clip = next(noises)
    z = torch.cat([clip[:, :, :K], q(c[:, :, -1:], levels[0][0], clip[:, :, K:])], dim=2)
    for t, target, t_next in levels:
        z = torch.cat([q(c, t, next(noises)), z[:, :, K:]], dim=2)
        queue_next = q(c, t_next, next(noises)) if rounds else None
        for _ in range(rounds):
            z = torch.cat([queue_next, ddim(z, t, target)[:, :, K:]], dim=2)
            ratio = abar[t] / abar[t_next]
            z = ratio.sqrt() * z + (1 - ratio).sqrt() * next(noises)
        z = ddim(z, t, target)
    return z[:, :, K:]


@pytest.mark.parametrize("steps", [3, 9, 10])
@pytest.mark.parametrize("rounds", [1, 2])
def test_matches_the_reference_loop_where_its_grid_clamps_the_first_point(steps, rounds):
    # S = 3: 999 steps DDIM to 666, but the queue and the push-back use 667 (S = 9: 888 and 889); S = 10 never clamps.
    draws, gen = [], torch.Generator().manual_seed(11)

    def recording(shape):
        draws.append(torch.randn(shape, generator=gen))
        return draws[-1]

    video, out, den, mock, frames, latents = mock_run(SCHEDULE, num_frames=1, steps=steps, rounds=rounds,
                                                      model_frames=4, noise_sampler=recording)
    official = official_new_latent(MockDenoiser(SCHEDULE), latents.expand(-1, -1, 3, -1, -1), steps, rounds,
                                   iter(draws))
    assert float((out[:, :, 1:] - official).abs().max()) < 1e-6


@pytest.mark.parametrize("steps", [3, 7, 9, 10])
def test_only_a_clamped_grid_noises_the_queue_off_the_ddim_target(schedule, steps, monkeypatch):
    # Against the earlier rule (queue and push-back at the DDIM target): bit for bit the same wherever the first
    # point is not clamped (S = 7, 10, every flow grid); S = 3 and 9 clamp it (1000 // S divides 999).
    now = mock_run(schedule, num_frames=2, steps=steps, rounds=1)[1]
    monkeypatch.setattr(ti2v_zero, "step_levels", lambda pairs: [(t, t_step, t_step) for t, t_step in pairs])
    before = mock_run(schedule, num_frames=2, steps=steps, rounds=1)[1]
    clamped = schedule.prediction == "epsilon" and 999 % (1000 // steps) == 0
    assert torch.equal(now, before) != clamped


def test_seed_determinism(schedule):
    a, b, c = (mock_run(schedule, num_frames=2, seed=s)[0] for s in (5, 5, 6))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- anchor ------------------------------------------------------------------------------------------
def test_preprocess_centre_crops_to_the_target_aspect():
    image = torch.zeros(1, 50, 100, 3)
    image[:, :, 25:75] = 1.0  # a white centre square between black side bands
    assert torch.allclose(preprocess(image, 32, 32), torch.ones(1, 32, 32, 3), atol=1e-6)
    stretched = preprocess(image, 32, 32, "stretch")
    assert stretched.shape == (1, 32, 32, 3) and stretched[0, :, 0].max() < 0.1


def test_small_image_is_upscaled_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        out = preprocess(torch.rand(1, 20, 20, 3), 64, 64)
    assert out.shape == (1, 64, 64, 3) and 0 <= out.min() and out.max() <= 1
    assert "upscaled" in caplog.text


def test_anchor_keeps_the_pixels_and_encodes_them(modelscope):
    model = modelscope.ready()
    image = torch.rand(1, 64, 64, 3)
    anchor = make_anchor(model, image)
    assert torch.equal(anchor.image, image)  # already at the native size: untouched
    assert anchor.latents.shape == (1, 4, 1, 8, 8) and anchor.latents.device.type == "cpu"
    assert anchor.pixels.min() >= -1 and anchor.pixels.shape == (1, 3, 64, 64)


# --- nodes on the stand-in backbones -----------------------------------------------------------------
def run_node(handle, anchor, **kw):
    from zeroshot_video.core.conditioning import encode_text
    cond = encode_text(handle.ready(), "a cat")
    args = dict(num_frames=2, model_frames=4, steps=2, guidance=9.0, seed=0, noise_init=DDPMInvertQueue().make(
        "ddpm_inversion")[0], resample=ResampleStep().make(1)[0])
    args.update(kw)
    return RepeatAndSlideSampler().sample(handle, cond, anchor, **args)


@pytest.fixture
def anchor_ms(modelscope):
    return EncodeAnchorImage().encode(modelscope, torch.rand(1, 36, 48, 3, generator=torch.Generator().manual_seed(0)),
                                      32, 32, "center")


def test_nodes_end_to_end_with_progress_previews_and_interrupt_checks(modelscope, anchor_ms, monkeypatch):
    anchor, latent, tokens = anchor_ms
    assert tokens is None and latent["samples"].shape == (1, 4, 1, 4, 4)
    ticks, previews, checks = [], [], []

    class Recorder:
        def __init__(self, total):
            self.total = total

        def update(self, value, preview=None):
            ticks.append((value, self.total))
            if preview is not None:
                previews.append(preview)

        def frame(self, index, image, count):
            pass

    monkeypatch.setattr(comfy_glue, "Progress", Recorder)
    monkeypatch.setattr(comfy_glue, "check_interrupt", lambda: checks.append(1))
    frames, out = run_node(modelscope, anchor, num_frames=3)
    assert frames.shape == (4, 32, 32, 3) and out["samples"].shape == (1, 4, 4, 4, 4)
    assert torch.equal(frames[0], anchor.image[0])
    calls = 3 * 2 * 2  # every UNet call checks the interrupt, and so does every block inside it
    assert len(checks) > calls and len(checks) % calls == 0
    evals = [v for v, total in ticks if total == 12]
    assert sorted(set(evals)) == list(range(1, 13)) and len(previews) == 3
    assert torch.equal(previews[-1], frames[-1])


def test_encode_cache_bit_identical_on_a_real_vae(modelscope, anchor_ms):
    from zeroshot_video.core.methods import ti2v_zero
    from zeroshot_video.core.methods.anchor import encode_frames
    from zeroshot_video.core.conditioning import encode_text
    from zeroshot_video.core.denoiser import Denoiser
    model = modelscope.ready()
    anchor = anchor_ms[0]
    cond = encode_text(model, "a cat")
    runs = []
    for cache in (True, False):
        calls = []
        runs.append(ti2v_zero.sample_ti2v_zero(
            Denoiser(model, 9.0), model.schedule, cond, anchor.image, anchor.latents, 3, 1, model_frames=4,
            encode=lambda images: calls.append(1) or encode_frames(model, images),
            decode=lambda z: model.decode(z, chunk=1),
            generator=torch.Generator().manual_seed(0), encode_cache=cache))
        runs[-1] += (len(calls),)
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][2] == 2 and runs[1][2] == 3 * 3


def test_seeds_on_a_real_backbone(modelscope, anchor_ms):
    a, b, c = (run_node(modelscope, anchor_ms[0], seed=s, num_frames=1, steps=1)[0] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a[1:], c[1:])


def test_animatediff_with_image_tokens(animatediff_ip):
    anchor, latent, tokens = EncodeAnchorImage().encode(animatediff_ip, torch.rand(1, 32, 32, 3), 32, 32, "center")
    assert tokens is not None and tokens.tokens.shape[0] == 1 and tokens.uncond.shape == tokens.tokens.shape
    frames, out = run_node(animatediff_ip, anchor, num_frames=1, steps=1, latent_queue=True)
    assert frames.shape == (2, 32, 32, 3) and out["samples"].shape[2] == 2
    with pytest.raises(ValueError, match="at most 32"):
        run_node(animatediff_ip, anchor, model_frames=33)


# --- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("image, message", [
    (torch.rand(1, 64, 64, 4), "alpha channel"),
    (torch.rand(64, 64, 3), r"\[frames, height, width, 3\]"),
    (torch.rand(1, 64, 64, 1), "1 channels"),
])
def test_bad_images_are_refused(modelscope, image, message):
    with pytest.raises(ValueError, match=message):
        EncodeAnchorImage().encode(modelscope, image, 64, 64, "center")


@pytest.mark.parametrize("change, message", [
    ({"num_frames": 0}, "num_frames"),
    ({"steps": 0}, "steps"),
    ({"guidance": -1.0}, "guidance"),
    ({"model_frames": 1}, "model_frames"),
])
def test_bad_sampler_settings_are_refused_before_sampling(modelscope, anchor_ms, change, message, monkeypatch):
    calls = []
    monkeypatch.setattr(comfy_glue, "check_interrupt", lambda: calls.append(1))
    with pytest.raises(ValueError, match=message):
        run_node(modelscope, anchor_ms[0], **change)
    assert calls == []


def test_bad_strategies_and_sizes_are_refused():
    with pytest.raises(ValueError, match="rounds"):
        ResampleStep().make(-1)
    with pytest.raises(ValueError, match="noise init mode"):
        DDPMInvertQueue().make("ddim")
    assert "multiples of 8" in EncodeAnchorImage.VALIDATE_INPUTS(width=60, height=0)
    assert EncodeAnchorImage.VALIDATE_INPUTS(width=0, height=0) is True


def test_anchor_from_another_backbone_is_refused(modelscope, animatediff):
    anchor = EncodeAnchorImage().encode(animatediff, torch.rand(1, 32, 32, 3), 32, 32, "center")[0]
    with pytest.raises(ValueError, match="encoded by"):
        run_node(modelscope, anchor)
    assert isinstance(anchor, Anchor)


def test_demo_command(tmp_path, capsys):
    out = tmp_path / "ti2v.webp"
    code = cli.main(["demo", "--method", "ti2v-zero", "--frames", "2", "--steps", "1", "--model-frames", "3",
                     "--resample", "1", "--width", "32", "--height", "32", "--out", str(out)])
    assert code == 0 and out.exists()
    assert "synthetic" in capsys.readouterr().out
