"""The schedule module against diffusers' DDIMScheduler (the tables' source) and the specs' grids."""
import pytest
import torch

from zeroshot_video.core.schedule import FINAL, Schedule
from zeroshot_video.testing.standin_models import ddim_scheduler


@pytest.fixture(params=[("scaled_linear", "leading"), ("linear", "linspace")])
def pair(request):
    scheduler = ddim_scheduler(*request.param)
    return scheduler, Schedule.from_scheduler(scheduler)


def test_grids_match_diffusers(pair):
    scheduler, schedule = pair
    for steps in (1, 10, 25, 50):
        scheduler.set_timesteps(steps)
        assert schedule.ddim_timesteps(steps) == scheduler.timesteps.tolist()


def test_ti2v_zero_grid_is_leading_with_offset_and_final_alpha():
    schedule = Schedule.from_scheduler(ddim_scheduler("scaled_linear", "leading"))
    pairs = schedule.ddim_pairs(10)
    assert [t for t, _ in pairs] == [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]
    assert pairs[-1][1] == FINAL
    x = torch.zeros(1, 1, 1, 1, 1)
    assert schedule.alpha(FINAL, x).item() == pytest.approx(schedule.alphas_cumprod[0].item())
    assert schedule.alpha(FINAL, x).item() < 1.0


def test_ddim_step_matches_scheduler_step(pair):
    scheduler, schedule = pair
    scheduler.set_timesteps(10)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 3, 4, 4, generator=g)
    for (t, t_prev), eta in zip(schedule.ddim_pairs(10), [0.0, 0.5, 1.0] * 4):
        eps = torch.randn(x.shape, generator=g)
        noise = torch.randn(x.shape, generator=g)
        expected = scheduler.step(eps, t, x, eta=eta, variance_noise=noise).prev_sample
        ours = schedule.ddim_step(x, eps, t, t_prev, eta, noise)
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)


def test_per_frame_step_equals_scalar_steps_frame_by_frame():
    schedule = Schedule.from_scheduler(ddim_scheduler("scaled_linear", "leading"))
    g = torch.Generator().manual_seed(1)
    x, eps, noise = (torch.randn(2, 4, 5, 3, 3, generator=g) for _ in range(3))
    t = torch.tensor([[0, 100, 300, 700, 999], [999, 500, 20, 1, 0]])
    t_prev = torch.tensor([[0, 50, 250, 650, 950], [950, 450, 0, FINAL, 0]])
    out = schedule.ddim_step(x, eps, t, t_prev, 1.0, noise)
    for b in range(2):
        for k in range(5):
            one = schedule.ddim_step(x[b:b + 1, :, k:k + 1], eps[b:b + 1, :, k:k + 1], int(t[b, k]),
                                     int(t_prev[b, k]), 1.0, noise[b:b + 1, :, k:k + 1])
            torch.testing.assert_close(out[b:b + 1, :, k:k + 1], one, rtol=0, atol=0)


def test_identity_when_level_does_not_change():
    schedule = Schedule.from_scheduler(ddim_scheduler("linear", "linspace"))
    x, eps = torch.randn(1, 4, 2, 2, 2), torch.randn(1, 4, 2, 2, 2)
    torch.testing.assert_close(schedule.ddim_step(x, eps, 0, 0, 1.0, torch.randn_like(x)), x, rtol=0, atol=1e-6)


def test_q_sample_per_frame_shape_and_values():
    """diffusers' add_noise broadcasts per-frame t wrongly; ours keeps the video shape and the per-frame levels."""
    schedule = Schedule.from_scheduler(ddim_scheduler("scaled_linear", "leading"))
    x0, noise = torch.ones(1, 4, 3, 2, 2), torch.zeros(1, 4, 3, 2, 2)
    t = torch.tensor([[0, 500, 999]])
    out = schedule.q_sample(x0, t, noise)
    assert out.shape == x0.shape
    for k in range(3):
        assert out[0, 0, k, 0, 0].item() == pytest.approx(schedule.alphas_cumprod[int(t[0, k])].sqrt().item())


def test_renoise_composes_with_q_sample_in_distribution():
    schedule = Schedule.from_scheduler(ddim_scheduler("scaled_linear", "leading"))
    x = torch.full((1, 1, 1, 1, 1), 2.0)
    pushed = schedule.renoise(x, 101, 901, torch.zeros_like(x))
    ratio = schedule.alphas_cumprod[901] / schedule.alphas_cumprod[101]
    assert pushed.item() == pytest.approx(2.0 * ratio.sqrt().item())


def test_strength_start_and_fifo_grid():
    schedule = Schedule.from_scheduler(ddim_scheduler("linear", "linspace"))
    assert schedule.strength_start(25, 1.0) == 0
    assert schedule.strength_start(25, 0.0) == 25
    assert schedule.strength_start(25, 0.8) == 5
    with pytest.raises(ValueError, match="within"):
        schedule.strength_start(25, 1.5)
    ts = schedule.fifo_timesteps(16)
    assert ts[0] == 0 and ts[-1] == 999 and ts == sorted(ts)


def test_rejects_non_epsilon_models():
    scheduler = ddim_scheduler("scaled_linear", "leading")
    scheduler.register_to_config(prediction_type="v_prediction")
    with pytest.raises(ValueError, match="epsilon"):
        Schedule.from_scheduler(scheduler)


def test_too_many_steps_is_a_clear_error_not_an_index_error():
    schedule = Schedule.from_scheduler(ddim_scheduler("scaled_linear", "leading"))
    assert max(schedule.ddim_timesteps(999)) == 999
    with pytest.raises(ValueError, match="at most 999"):
        schedule.ddim_timesteps(1000)
