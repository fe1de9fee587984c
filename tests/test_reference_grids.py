"""The grids, noise streams and image-token details that the official code of each method fixes.

AnimateDiff (and I4VGen on it) samples with DDIM on a leading grid whose last step lands on ᾱ = 1;
TI2V-Zero's reference builds its own grid; FIFO's base clip runs on FIFO's rounded grid; I4VGen's
regeneration noise is a draw independent of the candidates'; FIFO's image seeding embeds queue slot 0.
"""
import numpy as np
import pytest
import torch

from zeroshot_video.core.methods import fifo, i4vgen, ti2v_zero
from zeroshot_video.core.families.unet.backbone import family_scheduler
from zeroshot_video.core.families.unet.image_tokens import GRAY, clip_pixels
from zeroshot_video.core.schedule import FINAL, Schedule
from zeroshot_video.core.methods.t2v import noise_like, sample_t2v
from zeroshot_video.core.methods.t2v import FROM_LATENT_STREAM, NIVSDS_STREAM
from zeroshot_video.nodes.inputs import generator

ANIMATEDIFF = Schedule.from_scheduler(family_scheduler("animatediff"))
ANIMATEDIFF_DIFFUSERS = Schedule.from_scheduler(family_scheduler("animatediff", "diffusers"))
MODELSCOPE = Schedule.from_scheduler(family_scheduler("modelscope"))
VIDEO = (1, 4, 4, 8, 8)


class Recorder:
    def __init__(self, predict=lambda x, t: torch.tanh(0.5 * x)):
        self.predict, self.inputs, self.levels, self.outputs = predict, [], [], []

    def __call__(self, x, t, cond):
        out = self.predict(x, t)
        self.inputs.append(x.clone())
        self.levels.append(t)
        self.outputs.append(out)
        return out


def test_animatediff_runs_the_original_grid_and_lands_on_x0():
    recorder = Recorder()
    noise = noise_like(VIDEO, torch.Generator().manual_seed(0))
    out = sample_t2v(recorder, ANIMATEDIFF, None, noise, 25, generator=torch.Generator())
    assert recorder.levels == list(range(961, 0, -40)), "25 steps visit 961, 921, …, 1"
    assert float(ANIMATEDIFF.final_alpha_cumprod) == 1.0
    last_x0 = ANIMATEDIFF.predict_x0(recorder.inputs[-1], recorder.outputs[-1], 1)
    assert torch.equal(out, last_x0), "the last step lands on ᾱ = 1: the sample is x̂0 of the last call"


@pytest.mark.parametrize("schedule,calls", [(ANIMATEDIFF, 25), (ANIMATEDIFF_DIFFUSERS, 24), (MODELSCOPE, 25)])
def test_no_model_call_is_spent_on_a_step_that_changes_nothing(schedule, calls):
    recorder = Recorder()
    x = noise_like(VIDEO, torch.Generator().manual_seed(0))
    sample_t2v(recorder, schedule, None, x, 25, generator=torch.Generator())
    assert len(recorder.inputs) == calls
    changed = [not torch.equal(schedule.ddim_step(inp, out, t, t_prev), inp)
               for inp, out, (t, t_prev) in zip(recorder.inputs, recorder.outputs, schedule.sampling_pairs(25))]
    assert all(changed), "every call's step changes the latent"
    if schedule is ANIMATEDIFF_DIFFUSERS:
        assert schedule.ddim_timesteps(25)[-1] == 0 and recorder.levels[-1] == 42, "the 0 → ᾱ_0 step is not run"


def test_nivsds_and_regeneration_visit_the_official_timesteps():
    recorder = Recorder()
    latent, eps = (noise_like(VIDEO, torch.Generator().manual_seed(s)) for s in (1, 2))
    iterations = i4vgen.nivsds_iterations(25, 0.6)
    i4vgen.ni_vsds(recorder, ANIMATEDIFF, None, latent, eps, 25, iterations)
    assert iterations == 16 and recorder.levels == list(range(961, 360, -40)), "NI-VSDS visits 961 … 361"
    regeneration = Recorder()
    sample_t2v(regeneration, ANIMATEDIFF, None, eps, 25, generator=torch.Generator(), init_latent=latent, strength=1.0)
    assert regeneration.levels[0] == 961


def test_ti2v_zero_grid_is_the_references_for_every_step_count():
    for steps in (1, 2, 3, 7, 10, 25, 50, 333, 999):
        ratio = 1000 // steps
        reference = np.flip(np.clip(1 + np.arange(0, 1000, ratio), 0, 999))
        pairs = MODELSCOPE.ti2v_pairs(steps)
        assert [t for t, _ in pairs] == reference.tolist()
        assert [t_next for _, t_next in pairs] == [max(t - ratio, 0) for t in reference.tolist()]
        # the queue's second noising and the resampling push-back read the next grid point, 0 after the last
        assert [t_next for *_, t_next in ti2v_zero.step_levels(pairs)] == reference.tolist()[1:] + [0]
    assert MODELSCOPE.ti2v_pairs(3) == [(999, 666), (667, 334), (334, 1), (1, 0)], "S = 3 runs four steps"
    assert ti2v_zero.step_levels(MODELSCOPE.ti2v_pairs(3))[0] == (999, 666, 667), "DDIM to 666, queue at 667"
    # Where S divides 1000 it is the leading grid with offset 1 that every earlier run used (the last step to ᾱ_0).
    leading = MODELSCOPE.ddim_pairs(10)
    assert [t for t, _ in MODELSCOPE.ti2v_pairs(10)] == [t for t, _ in leading] and leading[-1][1] == FINAL


def test_fifo_levels_round_half_to_even_like_numpy_for_every_s():
    for steps in range(1, 1001):
        expected = np.round(np.linspace(0, 999, steps)).astype(int).tolist()
        assert MODELSCOPE.fifo_levels(steps) == expected, steps
    torch_rounding = torch.linspace(0, 999, 27, dtype=torch.float64).round().long().tolist()
    assert MODELSCOPE.fifo_levels(27) != torch_rounding, "S = 27 is one of the midpoints a torch linspace rounds up"


def test_fifo_base_clip_grid_steps_down_fifos_own_levels():
    recorder = Recorder()
    levels = MODELSCOPE.fifo_levels(16)
    x = noise_like(VIDEO, torch.Generator().manual_seed(0))
    sample_t2v(recorder, MODELSCOPE, None, x, 16, generator=torch.Generator(), grid="fifo")
    assert recorder.levels == levels[:0:-1], "ts_15 … ts_1, each stepping to the next; ts_0 → ts_0 is not run"
    assert MODELSCOPE.fifo_base_pairs(16)[-1] == (levels[1], 0)
    with pytest.raises(ValueError, match="grid"):
        sample_t2v(recorder, MODELSCOPE, None, x, 16, generator=torch.Generator(), grid="diagonal")


def _correlation(a, b):
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a @ b) / (a.norm() * b.norm()))


@pytest.mark.parametrize("candidates", [4, 12])
def test_equal_seeds_give_independent_regeneration_and_nivsds_noise(candidates):
    seed, shape = 42, (1, 4, 4, 16, 16)
    stage1 = i4vgen.candidate_noise(shape, candidates, generator(seed))  # RewardSelectAnchor, seed 42
    epsilon = noise_like(shape, generator(seed, NIVSDS_STREAM))  # NIVSDSOptimize, seed 42
    regeneration = noise_like(shape, generator(seed, FROM_LATENT_STREAM))  # T2VSampler from a latent, seed 42
    stage1_video = stage1.permute(2, 1, 0, 3, 4)[:, :, :4]
    for a, b in [(regeneration, stage1_video), (epsilon, stage1_video), (regeneration, epsilon)]:
        assert abs(_correlation(a, b)) < 0.05
    assert torch.equal(regeneration, noise_like(shape, generator(seed, FROM_LATENT_STREAM))), "reproducible"
    assert torch.equal(noise_like(shape, generator(seed)), stage1_video), "the plain stream is unchanged"


def test_t2v_sampler_from_a_latent_draws_its_own_stream(modelscope):
    from zeroshot_video.core.conditioning import encode_text
    from zeroshot_video.nodes.t2v_nodes import T2VSampler
    cond = encode_text(modelscope.ready(), "a cat", "")
    latent = {"samples": torch.zeros(1, 4, 2, 8, 8)}
    seen = []
    from zeroshot_video.core.methods import t2v
    original = t2v.sample_t2v

    def spy(*args, **kwargs):
        seen.append(args[3].clone())
        return original(*args, **kwargs)

    t2v.sample_t2v = spy  # the entry point the node calls samples through it
    try:
        T2VSampler().sample(modelscope, cond, 2, 64, 64, 2, 5.0, 0.0, 42, latent=latent, denoise=1.0)
    finally:
        t2v.sample_t2v = original
    assert torch.equal(seen[0], noise_like((1, 4, 2, 8, 8), generator(42, FROM_LATENT_STREAM)))
    assert not torch.equal(seen[0], noise_like((1, 4, 2, 8, 8), generator(42)))


def test_image_tokens_squash_the_whole_frame_and_use_a_half_gray_uncond():
    image = torch.zeros(1, 320, 512, 3)
    image[:, :, :64] = 1.0  # the left edge: a centre crop to a square would drop it
    pixels = clip_pixels(image, 32)
    assert pixels.shape == (1, 3, 32, 32)
    assert pixels[0, 0, :, 0].mean() > pixels[0, 0, :, 16].mean(), "the sides are kept"
    gray = clip_pixels(torch.full((1, 32, 32, 3), GRAY), 32)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    torch.testing.assert_close(gray, ((0.5 - mean) / std).expand(1, 3, 32, 32))


def test_fifo_seeding_embeds_queue_slot_zero(animatediff_ip, monkeypatch):
    backbone = animatediff_ip.ready()
    plan = fifo.fifo_plan(backbone.schedule, 4, 1, True, backbone.max_frames)
    base = noise_like((1, 4, 4, 8, 8), torch.Generator().manual_seed(5))
    embedded = []
    real = fifo.seed_image_tokens
    monkeypatch.setattr(fifo, "seed_image_tokens", lambda bb, queue: embedded.append(queue.clone()) or real(bb, queue))
    from zeroshot_video.core.conditioning import encode_text
    from zeroshot_video.core.denoiser import Denoiser
    cond = encode_text(backbone, "a cat", "")
    fifo.fifo_video(backbone, Denoiser(backbone, 2.0), plan, cond, base, 1, generator=torch.Generator().manual_seed(9),
                    seed_image_scale=1.0)
    queue = fifo.init_queue(backbone.schedule, plan, base, torch.Generator().manual_seed(9))
    assert torch.equal(embedded[0][:, :, :1], queue[:, :, :1]), "slot 0: base frame 0 at ts_0 with the queue's noise"
    assert not torch.equal(queue[:, :, :1], base[:, :, :1])
