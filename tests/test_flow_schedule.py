"""The rectified-flow parameterisation (shared/design/WAN.md §3): grids against diffusers' flow schedulers,
Euler as η = 0 DDIM, the η-DDIM posterior, renoising, I4VGen's update and FIFO's flow levels."""
from __future__ import annotations

import math

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from zeroshot_video.testing.standin_models import ddim_scheduler
from zeroshot_video.core.schedule import FlowSchedule, Schedule, VPSchedule
from zeroshot_video.core.methods.t2v import sample_t2v

FLOW = FlowSchedule(shift=3.0)


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def velocity(x, t, cond=None):
    """A mock flow model: a level-dependent, frame-coupled velocity."""
    level = torch.as_tensor(t, dtype=x.dtype)
    if level.dim() == 2:
        level = level.view(level.shape[0], 1, level.shape[1], 1, 1)
    return torch.tanh(x) * (1 + level) - 0.2 * x.mean(dim=2, keepdim=True)


# --- grids and loading ------------------------------------------------------------------------------
@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0, 12.0])
@pytest.mark.parametrize("steps", [1, 2, 6, 25, 50])
def test_grid_is_diffusers_flow_match_euler(shift, steps):
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    scheduler.set_timesteps(steps)
    schedule = FlowSchedule(shift=shift)
    levels = schedule.sampling_timesteps(steps)
    assert levels[0] == 1.0 and len(levels) == steps
    torch.testing.assert_close(torch.tensor(levels + [0.0]), scheduler.sigmas, rtol=0, atol=1e-6)
    assert [pair for pair in schedule.sampling_pairs(steps)] == list(zip(levels, levels[1:] + [0.0]))
    assert schedule.ti2v_pairs(steps) == schedule.sampling_pairs(steps)
    # the network is given 1000·σ, as the pipeline gives it scheduler.timesteps
    torch.testing.assert_close(schedule.model_timestep(torch.tensor(levels)), scheduler.timesteps, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("scheduler, shift", [
    (FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0), 3.0),
    (FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=12.0), 12.0),
    (UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0), 5.0),
    (UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0), 3.0),
])
def test_from_scheduler_reads_flow_schedulers_with_their_shift(scheduler, shift):
    schedule = Schedule.from_scheduler(scheduler)
    assert isinstance(schedule, FlowSchedule) and schedule.shift == shift and schedule.prediction == "flow"
    assert schedule.num_train_timesteps == 1000
    assert isinstance(Schedule.from_scheduler(ddim_scheduler("linear", "linspace")), VPSchedule)


def test_dynamic_shifting_is_refused():
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    with pytest.raises(ValueError, match="dynamic"):
        Schedule.from_scheduler(scheduler)


# --- reading the model's output, forward noising ---------------------------------------------------------
@pytest.mark.parametrize("sigma", [1.0, 0.7, 0.2, 0.0])
def test_split_recovers_x0_and_noise_without_division(sigma):
    x0, eps = _randn(2, 1, 4, 3, 4, 4).unbind(0)
    x = FLOW.q_sample(x0, sigma, eps)
    assert torch.equal(x, (1 - torch.tensor(sigma, dtype=x.dtype)) * x0 + sigma * eps)
    x0_hat, eps_hat = FLOW.split(x, eps - x0, sigma)
    torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-12)
    torch.testing.assert_close(eps_hat, eps, rtol=0, atol=1e-12)
    assert FLOW.model_timestep(sigma) == 1000 * sigma


def test_per_frame_q_sample_uses_each_frames_level():
    x0, eps = _randn(2, 1, 2, 3, 4, 4).unbind(0)
    levels = torch.tensor([[1.0, 0.5, 0.0]])
    noised = FLOW.q_sample(x0, levels, eps)
    for f, sigma in enumerate(levels[0].tolist()):
        assert torch.equal(noised[:, :, f], FLOW.q_sample(x0[:, :, f], sigma, eps[:, :, f]))
    assert torch.equal(noised[:, :, 0], eps[:, :, 0]) and torch.equal(noised[:, :, 2], x0[:, :, 2])


# --- η = 0: Euler -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_eta_zero_step_is_the_euler_step_from_sigma_one(dtype):
    x = _randn(1, 4, 3, 4, 4, seed=1, dtype=dtype)
    for t, t_prev in FLOW.sampling_pairs(6):
        v = velocity(x, t)
        stepped = FLOW.ddim_step(x, v, t, t_prev)
        assert torch.isfinite(stepped).all()
        torch.testing.assert_close(stepped, x + (t_prev - t) * v, rtol=0, atol=1e-6)
        x = stepped
    assert FLOW.sampling_pairs(6)[0][0] == 1.0


def test_sampler_equals_diffusers_flow_match_euler_loop():
    noise = _randn(1, 4, 3, 4, 4, seed=2, dtype=torch.float32)
    ours = sample_t2v(velocity, FLOW, None, noise, 6, generator=torch.Generator().manual_seed(0))
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    scheduler.set_timesteps(6)
    x = noise
    for i, t in enumerate(scheduler.timesteps):
        x = scheduler.step(velocity(x, float(scheduler.sigmas[i])), t, x).prev_sample
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_per_frame_levels_equal_frame_by_frame_scalar_steps_exactly(eta):
    x, noise = _randn(2, 2, 4, 4, 4, 4, seed=3, dtype=torch.float32).unbind(0)
    levels = FLOW.fifo_levels(8)  # 0.0 … 1.0
    t = torch.tensor([levels[4:], levels[:4]])  # [B, F]: a different level per batch row and frame
    t_prev = torch.tensor([levels[3:7], [levels[0]] + levels[:3]])  # row 1 frame 0: the head, 0 → 0
    pred = velocity(x, t)
    stepped = FLOW.ddim_step(x, pred, t, t_prev, eta, noise)
    assert torch.isfinite(stepped).all()
    for b in range(2):
        for f in range(4):
            one = FLOW.ddim_step(x[b:b + 1, :, f:f + 1], pred[b:b + 1, :, f:f + 1], float(t[b, f]),
                                 float(t_prev[b, f]), eta, noise[b:b + 1, :, f:f + 1])
            assert torch.equal(stepped[b:b + 1, :, f:f + 1], one), (b, f)
    assert torch.equal(stepped[1, :, 0], x[1, :, 0])  # same level: the identity


# --- η > 0: the DDPM posterior ------------------------------------------------------------------------------
def _posterior(sigma, sigma_prev):
    """Mean coefficients and std of q(x' | x, x0) for x = r·x' + √v·ξ (the forward process from σ' to σ)."""
    r = (1 - sigma) / (1 - sigma_prev)
    v = sigma ** 2 - r ** 2 * sigma_prev ** 2
    return r * sigma_prev ** 2 / sigma ** 2, sigma_prev * math.sqrt(v) / sigma


def test_eta_one_step_draws_from_the_ddpm_posterior():
    sigma, sigma_prev = 0.8, 0.5
    gain, std = _posterior(sigma, sigma_prev)
    assert std == pytest.approx(0.4841, abs=1e-4)  # WAN.md: the general c, below s' = 0.5
    # One x (fixed x0 and ε) and many ξ: the empirical mean and variance are the posterior's.
    x0, eps = 0.7, -1.3
    x = torch.full((1, 1, 1, 400, 400), (1 - sigma) * x0 + sigma * eps, dtype=torch.float64)
    xi = _randn(1, 1, 1, 400, 400, seed=4)
    out = FLOW.ddim_step(x, torch.full_like(x, eps - x0), sigma, sigma_prev, 1.0, xi)
    mean = (1 - sigma_prev) * x0 + gain * (x[0, 0, 0, 0, 0].item() - (1 - sigma) * x0)
    assert out.mean().item() == pytest.approx(mean, abs=5e-3)
    assert out.std().item() == pytest.approx(std, rel=1e-2)
    torch.testing.assert_close(out, mean + std * xi, rtol=0, atol=1e-12)
    # Over x0 and ε too, x' is the forward marginal at σ': a'·x0 plus noise of std s'.
    x0, eps = _randn(2, 1, 1, 1, 400, 400, seed=5).unbind(0)
    out = FLOW.ddim_step((1 - sigma) * x0 + sigma * eps, eps - x0, sigma, sigma_prev, 1.0, xi)
    residual = out - (1 - sigma_prev) * x0
    assert residual.std().item() == pytest.approx(sigma_prev, rel=1e-2)
    assert abs(torch.corrcoef(torch.stack([residual.flatten(), x0.flatten()]))[0, 1].item()) < 1e-2


def _c(schedule, t, t_prev, dtype=torch.float32):
    """The η = 1 noise scale c, read off a step from x = 0, output 0 with ξ = 1."""
    zero = torch.zeros(1, 1, 1, 1, 1, dtype=dtype)
    return schedule.ddim_step(zero, zero, t, t_prev, 1.0, torch.ones_like(zero)).item()


@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0, 12.0])
def test_eta_noise_scale_is_the_general_formula_and_below_s_prime(shift):
    schedule = FlowSchedule(shift=shift)
    for t, t_prev in schedule.sampling_pairs(10) + [(1.0, 0.5), (0.8, 0.5), (0.5, 0.49), (1.0, 0.999)]:
        expected = t_prev * math.sqrt(1 - ((1 - t) * t_prev / ((1 - t_prev) * t)) ** 2)
        c = _c(schedule, t, t_prev, torch.float64)
        assert c == pytest.approx(expected, abs=1e-12) and c <= t_prev + 1e-12
    assert _c(schedule, 0.8, 0.5) == pytest.approx(0.4841, abs=1e-4)
    assert _c(schedule, 1.0, 0.3, torch.float64) == pytest.approx(0.3, abs=1e-12)  # from pure noise: c = s'


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_eta_one_steps_never_produce_nan(dtype):
    """s'² − c² rounds below 0 for some level pairs in float32 (more in half precision): clamped, not NaN."""
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    a, b = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    t, t_prev = torch.maximum(a, b), torch.minimum(a, b)
    t[: n // 10] = 1.0  # every FIFO tail slot and every first step starts at σ = 1
    x = torch.zeros(1, 1, n, 1, 1, dtype=dtype)
    out = FLOW.ddim_step(x, torch.ones_like(x), t.view(1, n), t_prev.view(1, n), 1.0, torch.ones_like(x))
    assert torch.isfinite(out).all()


# --- renoising --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma1, sigma2", [(0.2, 0.6), (0.5, 0.95), (0.0, 1.0), (0.7, 0.7001)])
def test_renoise_is_the_forward_process_between_two_levels(sigma1, sigma2):
    x0, eps, xi = _randn(3, 1, 1, 1, 400, 400, seed=6).unbind(0)
    x1 = FLOW.q_sample(x0, sigma1, eps)
    x2 = FLOW.renoise(x1, sigma1, sigma2, xi)
    r = (1 - sigma2) / (1 - sigma1)
    jump = math.sqrt(sigma2 ** 2 - r ** 2 * sigma1 ** 2)
    torch.testing.assert_close(x2 - r * x1, jump * xi, rtol=0, atol=1e-12)
    assert (x2 - r * x1).std().item() == pytest.approx(jump, rel=1e-2)
    assert (x2 - (1 - sigma2) * x0).std().item() == pytest.approx(sigma2, rel=1e-2)  # WAN.md: .6 / .95 / 1


def test_renoise_to_sigma_one_is_pure_noise():
    x, xi = _randn(2, 1, 4, 3, 4, 4, seed=7, dtype=torch.float32).unbind(0)
    for sigma1 in (0.0, 0.3, 0.9):
        assert torch.equal(FLOW.renoise(x, sigma1, 1.0, xi), xi)
    per_frame = FLOW.renoise(x, torch.tensor([[0.0, 0.3, 0.9]]), torch.tensor([[1.0, 1.0, 0.95]]), xi)
    assert torch.equal(per_frame[:, :, :2], xi[:, :, :2]) and not torch.equal(per_frame[:, :, 2], xi[:, :, 2])


# --- I4VGen's update ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule, t", [(Schedule.from_scheduler(ddim_scheduler("linear", "linspace")), 400),
                                         (FLOW, 0.7), (FLOW, 0.05)])
def test_score_distillation_step_pulls_towards_x0_hat(schedule, t):
    x, noise, pred, step = *_randn(3, 1, 4, 2, 4, 4, seed=8).unbind(0), 3.0
    noised = schedule.q_sample(x, t, noise)
    x0_hat, eps_hat = schedule.split(noised, pred, t)
    out = schedule.score_distillation_step(x, eps_hat, noise, t, step)
    c = schedule.coefficients(t, x)
    torch.testing.assert_close(out, x + step * c.a * c.s * (x0_hat - x), rtol=0, atol=1e-10)
    if schedule.prediction == "flow":  # the flow-native form: x − α·a·s²·(v̂ − v), v = ε − x
        torch.testing.assert_close(out, x - step * c.a * c.s2 * (pred - (noise - x)), rtol=0, atol=1e-10)
    assert not torch.allclose(out, x)


def test_score_distillation_at_sigma_one_leaves_the_latent_unchanged():
    """At σ = 1 the model's input is the noise itself, so ε̂ = ε whatever it outputs: λ = α·a·s = 0."""
    x, noise, pred = _randn(3, 1, 4, 2, 4, 4, seed=9, dtype=torch.float32).unbind(0)
    eps_hat = FLOW.split(FLOW.q_sample(x, 1.0, noise), pred, 1.0)[1]
    assert torch.equal(FLOW.score_distillation_step(x, eps_hat, noise, 1.0, 10.0), x)


# --- FIFO's levels ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [2, 3, 8, 16])
def test_fifo_levels_rise_from_clean_to_pure_noise(steps):
    levels = FLOW.fifo_levels(steps)
    assert len(levels) == steps and levels[0] == 0.0 and levels[-1] == 1.0
    assert all(a < b for a, b in zip(levels, levels[1:]))
    assert levels[1:] == FLOW.sampling_timesteps(steps - 1)[::-1]  # the (S − 1)-step Euler grid
    pairs = FLOW.fifo_base_pairs(steps)
    assert pairs[0][0] == 1.0 and pairs[-1][1] == 0.0 and len(pairs) == steps - 1
    assert all(t_prev == levels[levels.index(t) - 1] for t, t_prev in pairs)
    assert all(pairs[i][1] == pairs[i + 1][0] for i in range(len(pairs) - 1))


def test_fifo_needs_two_flow_levels():
    with pytest.raises(ValueError, match="at least 2"):
        FLOW.fifo_levels(1)


def test_no_call_is_spent_where_no_signal_is_left():
    """σ = 1 keeps nothing of the clip: TI2V-Zero runs no resampling round there."""
    from zeroshot_video.core.methods import ti2v_zero
    flow = FlowSchedule(shift=5.0)
    assert not flow.has_signal(1.0) and flow.has_signal(0.5)
    pairs = flow.ti2v_pairs(4)
    assert ti2v_zero.calls_per_frame(flow, pairs, 2) == 4 * 3 - 2
