"""FIFO-Diffusion (FIFO.md): the invariants of diagonal denoising, image-embedding seeding and the nodes.

The mock-model invariants run on an ε-prediction (VP) schedule and on a rectified-flow one, whose queue runs
from σ = 0 at the head to σ = 1 at the tail (the mocks' output is then read as a velocity)."""
from __future__ import annotations

import gc
import math
from dataclasses import replace

import pytest
import torch

from zeroshot_video.testing import standin_models
from zeroshot_video.core.methods import fifo
from zeroshot_video.core.families.unet import image_tokens
from zeroshot_video.core.conditioning import Conditioning, ImageTokens, encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.schedule import FlowSchedule, Schedule
from zeroshot_video.core.methods.strategies import NoiseInit
from zeroshot_video.nodes import comfy_glue
from zeroshot_video.nodes.fifo_nodes import FIFOQueueWithImageEmbed, T2VConditioningAddImage, T2VPromptSchedule
from zeroshot_video.nodes.t2v_nodes import T2VSampler

SCHEDULE = Schedule.from_scheduler(standin_models.ddim_scheduler("linear", "linspace"))
SCHEDULES = {"vp": SCHEDULE, "flow": FlowSchedule(shift=5.0)}
COND = Conditioning(positive=torch.zeros(1, 3, 4), negative=torch.zeros(1, 3, 4))


@pytest.fixture(params=sorted(SCHEDULES))
def schedule(request):
    return SCHEDULES[request.param]


class FrameMock:
    """The output (ε̂, or the velocity on a flow schedule) depends only on (x_k, t_k): frames never interact,
    so each frame's history is plain DDIM (Euler)."""

    def __init__(self, schedule):
        self.schedule = schedule
        self.calls, self.timesteps, self.conds = 0, [], []

    def frame_eps(self, x, t):
        level = torch.as_tensor(self.schedule.model_timestep(t), dtype=torch.float32)
        level = level.view(level.shape[0], 1, level.shape[1], 1, 1) / 1000 if level.dim() == 2 else level / 1000
        return torch.tanh(x) * (0.5 + level) + 0.1 * level

    def __call__(self, x, t, cond):
        self.calls += 1
        self.timesteps.append(t.clone())
        self.conds.append(cond)
        return self.frame_eps(x, t)


class WindowMock(FrameMock):
    """ε̂ of a frame also depends on the other frames of its window, so reading a slot that another window
    already updated, or writing a whole window, changes the result."""

    def __call__(self, x, t, cond):
        return super().__call__(x, t, cond) + 0.3 * torch.sin(x.mean(dim=2, keepdim=True)) * (1 + x.sum(2, True))


def base_clip(f, seed=7, size=4):
    return torch.randn(1, 4, f, size, size, generator=torch.Generator().manual_seed(seed))


def run(schedule, plan, n_out, denoiser=None, eta=1.0, window_batch=1, seed=0, **kwargs):
    denoiser = denoiser or WindowMock(schedule)
    out = fifo.sample_fifo(denoiser, schedule, plan, COND, base_clip(plan.frames), n_out,
                           generator=torch.Generator().manual_seed(seed), eta=eta, window_batch=window_batch, **kwargs)
    return out, denoiser


# --- schedule and queue layout ------------------------------------------------------------------
@pytest.mark.parametrize("lookahead", [True, False])
def test_plan_labels_windows_and_write_back_cover_each_slot_once(schedule, lookahead):
    f, n = 4, 3
    plan = fifo.fifo_plan(schedule, f, n, lookahead)
    ts = schedule.fifo_levels(f * n)
    assert ts[0] == 0 and ts[-1] == (999 if schedule.prediction == "epsilon" else 1.0) and ts == sorted(ts)
    dummies = f // 2 if lookahead else 0
    assert list(plan.labels) == [0] * dummies + ts and plan.length == f * n + dummies
    assert list(plan.targets[dummies:]) == [0] + ts[:-1]  # prev_i = ts_{i-1}, prev_0 = ts_0
    assert len(plan.windows) == (2 * n if lookahead else n)
    assert list(plan.windows) == sorted(plan.windows, reverse=True)  # the reference's tail-first order
    written = [slot for s in plan.windows for slot in range(s + plan.write_from, s + f)]
    assert sorted(written) == list(range(dummies, plan.length))  # every non-dummy slot exactly once
    assert all(s + f <= plan.length for s in plan.windows) and plan.head == dummies


def test_head_update_is_exactly_the_identity(schedule):
    x, eps, noise = torch.randn(3, 1, 4, 4, 4, 4).unbind(0)
    ts = schedule.fifo_levels(8)  # VP: 0, 143, …; flow: σ = 0, …
    t = torch.tensor([[ts[0], ts[0], ts[0], ts[4]]])
    t_prev = torch.tensor([[ts[0], ts[0], ts[0], ts[3]]])
    out = schedule.ddim_step(x, eps, t, t_prev, eta=1.0, noise=noise)
    assert torch.equal(out[:, :, :3], x[:, :, :3]) and not torch.equal(out[:, :, 3], x[:, :, 3])
    plan = fifo.fifo_plan(schedule, 4, 2)
    queue = torch.randn(1, 4, plan.length, 4, 4)
    stepped = fifo.diagonal_step(WindowMock(schedule), schedule, plan, queue, COND, eta=1.0,
                                 noise=torch.randn_like(queue), window_batch=2)
    assert torch.equal(stepped[:, :, :plan.head + 1], queue[:, :, :plan.head + 1])  # dummies untouched, head identity
    assert not torch.equal(stepped[:, :, plan.head + 1], queue[:, :, plan.head + 1])


def test_queue_init_forward_noises_base_frames_per_slot_and_gaussian_mode_ignores_them(schedule):
    f, n = 4, 2
    plan = fifo.fifo_plan(schedule, f, n)
    clip = base_clip(f)
    queue = fifo.init_queue(schedule, plan, clip, torch.Generator().manual_seed(3))
    noise = torch.randn(queue.shape, generator=torch.Generator().manual_seed(3))
    ts = schedule.fifo_levels(f * n)
    for slot in range(plan.length):
        i = slot - plan.head
        frame = 0 if i < 0 else max(0, i - (f * n - f))
        expected = schedule.q_sample(clip[:, :, frame], ts[max(i, 0)], noise[:, :, slot])
        torch.testing.assert_close(queue[:, :, slot], expected, rtol=0, atol=1e-6)
    gaussian = fifo.init_queue(schedule, plan, clip, torch.Generator().manual_seed(3), NoiseInit("gaussian"))
    assert torch.equal(gaussian, noise)


# --- the diagonal loop --------------------------------------------------------------------------
@pytest.mark.parametrize("lookahead, group", [(True, 1), (False, 1), (True, 2), (False, 2), (False, 4)])
def test_frame_independent_denoiser_reproduces_per_frame_ddim_and_tail_emerges_after_s_iterations(schedule, lookahead,
                                                                                                  group):
    """With frames that never interact each frame's history is plain DDIM: a frame that enters the tail leaves after
    S iterations, DDIM'd down every level once. With ``frames_per_level`` c, c frames share each level (S = f·n / c
    levels, a window f / c of them) and every iteration emits the c head frames and takes c noise frames in."""
    f, n, n_out = 4, 2, 9
    plan = fifo.fifo_plan(schedule, f, n, lookahead, group=group)
    ts = schedule.fifo_levels(f * n // group)
    steps, dummies = plan.steps, plan.head
    assert steps == f * n // group and plan.length == dummies + f * n
    assert list(plan.labels[dummies:]) == [t for t in ts for _ in range(group)]
    assert list(plan.targets[dummies:]) == [ts[0]] * group + [t for t in ts[:-1] for _ in range(group)]
    written = [slot for s in plan.windows for slot in range(s + plan.write_from, s + f)]
    assert sorted(written) == list(range(dummies, plan.length))
    init = fifo.init_queue(schedule, plan, base_clip(f), torch.Generator().manual_seed(0))
    tails, mock = [], FrameMock(schedule)
    out, _ = run(schedule, plan, n_out, mock, eta=0.0,
                 on_step=lambda k, total, queue: tails.append(queue[:, :, -group:].clone()))
    assert mock.calls == (-(-n_out // group) + plan.warmup) * len(plan.windows)  # c frames per iteration's calls

    def ddim_from(z, level_index):
        for j in range(level_index, 0, -1):
            z = schedule.ddim_step(z, mock.frame_eps(z, ts[j]), ts[j], ts[j - 1])
        return z

    from_tails = 0
    for m in range(n_out):
        emission, j = m // group + plan.warmup, m % group
        if emission < steps:  # still from the initial queue: the group of real slots at `emission`
            slot = dummies + emission * group + j
            expected = ddim_from(init[:, :, slot:slot + 1], emission)
        else:
            expected = ddim_from(tails[emission - steps][:, :, j:j + 1], steps - 1)
            from_tails += 1
        torch.testing.assert_close(out[:, :, m:m + 1], expected, rtol=0, atol=1e-5)
    assert from_tails > 0
    assert not torch.allclose(out[:, :, 0], base_clip(f)[:, :, 0], atol=1e-2)  # first kept frame is not base frame 0


def test_one_frame_per_level_is_the_paper_bit_for_bit(schedule):
    plan = fifo.fifo_plan(schedule, 4, 2)
    assert fifo.fifo_plan(schedule, 4, 2, group=1) == plan and plan.steps == 8 and plan.warmup == 4
    with pytest.raises(ValueError, match="frames_per_level 3 does not divide"):
        fifo.fifo_plan(schedule, 4, 2, group=3)
    with pytest.raises(ValueError, match="half"):
        fifo.fifo_plan(schedule, 4, 2, lookahead=True, group=4)


def test_window_order_window_batch_and_batching_do_not_change_the_result(schedule):
    plan = fifo.fifo_plan(schedule, 4, 3)
    reference, _ = run(schedule, plan, 6, window_batch=1)
    assert torch.isfinite(reference).all()
    ascending = replace(plan, windows=tuple(reversed(plan.windows)))
    for variant, batch in ((plan, 4), (plan, len(plan.windows)), (ascending, 1), (ascending, 5)):
        out, _ = run(schedule, variant, 6, window_batch=batch)
        assert torch.equal(out, reference), (variant.windows, batch)
    other_seed, _ = run(schedule, plan, 6, seed=1)
    assert not torch.equal(other_seed, reference)


@pytest.mark.parametrize("lookahead", [True, False])
def test_every_window_reads_the_pre_iteration_state_and_writes_only_its_share(schedule, lookahead):
    plan = fifo.fifo_plan(schedule, 4, 2, lookahead)
    queue = torch.randn(1, 4, plan.length, 4, 4)
    noise = torch.randn_like(queue)
    mock = WindowMock(schedule)
    out = fifo.diagonal_step(mock, schedule, plan, queue, COND, eta=1.0, noise=noise, window_batch=3)
    labels, targets = torch.tensor([plan.labels]), torch.tensor([plan.targets])
    f, w = plan.frames, plan.write_from
    for s in plan.windows:
        window = slice(s, s + f)
        eps = mock(queue[:, :, window], labels[:, window], COND)
        mine = slice(s + w, s + f)
        expected = schedule.ddim_step(queue[:, :, mine], eps[:, :, w:], labels[:, mine], targets[:, mine], 1.0,
                                      noise[:, :, mine])
        torch.testing.assert_close(out[:, :, mine], expected, rtol=0, atol=1e-6)


def test_counts_queue_length_labels_and_emissions_are_constant(schedule):
    f, n, n_out, batch = 4, 2, 5, 3
    plan = fifo.fifo_plan(schedule, f, n)
    shapes, frames_seen, totals = [], [], set()
    out, mock = run(schedule, plan, n_out, window_batch=batch, on_frame=lambda i, z: frames_seen.append((i, tuple(z.shape))),
                    on_step=lambda k, total, queue: (shapes.append(queue.shape[2]), totals.add(total)))
    iterations = n_out + f * n - f
    assert totals == {iterations} and len(shapes) == iterations and set(shapes) == {plan.length}
    assert frames_seen == [(i, (1, 4, 1, 4, 4)) for i in range(n_out)] and out.shape == (1, 4, n_out, 4, 4)
    per_iteration = math.ceil(len(plan.windows) / batch)
    assert mock.calls == iterations * per_iteration
    first = torch.cat(mock.timesteps[:per_iteration])
    for k in range(iterations):  # labels identical every iteration
        assert torch.equal(torch.cat(mock.timesteps[k * per_iteration:(k + 1) * per_iteration]), first)
    assert torch.equal(first, torch.stack([torch.tensor(plan.labels[s:s + f]) for s in plan.windows]))


def test_nothing_grows_with_length_when_frames_are_not_kept(schedule):
    plan = fifo.fifo_plan(schedule, 4, 2)
    sizes = {}

    def live_tensor_bytes(k, total, queue):
        if k in (5, 50):
            gc.collect()
            tensors = [o for o in gc.get_objects() if torch.is_tensor(o)]
            sizes[k] = (len(tensors), sum(t.numel() * t.element_size() for t in tensors))

    silent = FrameMock(schedule).frame_eps  # records nothing
    out, _ = run(schedule, plan, 60, lambda x, t, cond: silent(x, t), keep=False, on_step=live_tensor_bytes)
    assert out is None and sizes[5] == sizes[50]


def test_prompt_schedule_switches_the_whole_queue_at_the_kept_frame_counter(schedule):
    plan = fifo.fifo_plan(schedule, 4, 2)
    later = Conditioning(positive=torch.ones(1, 3, 4), negative=torch.zeros(1, 3, 4))
    last = Conditioning(positive=2 * torch.ones(1, 3, 4), negative=torch.zeros(1, 3, 4))
    _, mock = run(schedule, plan, 6, window_batch=len(plan.windows), prompts=((4, last), (2, later)))
    used = [COND if c is COND else later if c is later else last for c in mock.conds]
    assert used == [COND] * (plan.warmup + 2) + [later] * 2 + [last] * 2
    with pytest.raises(ValueError, match="start at frame 2"):
        fifo.check_prompt_schedule(((2, later), (2, last)))
    with pytest.raises(ValueError, match=">= 0"):
        fifo.check_prompt_schedule(((-1, later),))


@pytest.mark.parametrize("args, message", [
    ((4, 0, True), "partitions"), ((0, 2, True), "window_frames must be at least 1"),
    ((3, 2, True), "even window_frames"), ((1, 1, False), "at least 2"), ((34, 1, True, 32), "at most 32"),
    ((20, 60, True), "exceeds"),
])
def test_bad_window_and_partitions_are_refused(schedule, args, message):
    with pytest.raises(ValueError, match=message):
        fifo.fifo_plan(schedule, *args)


@pytest.mark.parametrize("shape, message", [
    ((1, 4, 6, 4, 4), "6 frames but window_frames is 4"), ((2, 4, 4, 4, 4), "batch 1"),
    ((1, 3, 4, 4, 4), "latent channels"), ((1, 4, 4, 5, 4), "multiples of 2"), ((4, 4, 4, 4), "not a video"),
])
def test_bad_base_clip_is_refused(shape, message):
    with pytest.raises(ValueError, match=message):
        fifo.check_base_clip(torch.zeros(shape), fifo.fifo_plan(SCHEDULE, 4, 2), channels=4, downsampling=2)


def test_bad_run_arguments_are_refused():
    for args, message in (((0, 1, 1.0), "num_frames"), ((4, 0, 1.0), "window_batch"), ((4, 1, 1.5), "eta")):
        with pytest.raises(ValueError, match=message):
            fifo.check_run(*args)


# --- the real UNets -----------------------------------------------------------------------------
def test_two_per_frame_schedules_in_one_batch_equal_their_own_runs(backbone):
    text = encode_text(backbone, "a cat", "")
    cond = Conditioning(positive=text.positive, negative=text.negative)
    denoiser = Denoiser(backbone, guidance=3.0)
    x = torch.randn(2, backbone.channels, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([[0, 333], [999, 666]])
    both = denoiser(x, t, cond)
    for b in range(2):
        torch.testing.assert_close(both[b:b + 1], denoiser(x[b:b + 1], t[b:b + 1], cond), rtol=0, atol=1e-5)


def test_batched_windows_match_sequential_windows_on_a_real_unet(modelscope):
    model = modelscope.ready()
    cond = Conditioning(positive=torch.randn(1, 77, 32), negative=torch.randn(1, 77, 32))
    plan = fifo.fifo_plan(model.schedule, 2, 2)
    outs = []
    for batch in (1, len(plan.windows)):
        denoiser = Denoiser(model, guidance=3.0)
        outs.append(fifo.sample_fifo(denoiser, model.schedule, plan, cond, base_clip(2, size=8), 2,
                                     generator=torch.Generator().manual_seed(0), window_batch=batch))
        assert denoiser.calls == (2 + plan.warmup) * math.ceil(len(plan.windows) / batch)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-4)


# --- nodes --------------------------------------------------------------------------------------
F, N_PARTS = 2, 2  # S = 4: base clip 4 DDIM steps, 2 warm-up iterations


def base_latent(handle, conditioning=None):
    """The base clip as the workflows make it: T2VSampler with f frames and S = f·n steps."""
    cond = conditioning if conditioning is not None else text(handle)
    return T2VSampler().sample(handle, cond, F, 64, 64, F * N_PARTS, 5.0, 1.0, 0)[0]


@pytest.fixture(scope="module")
def bases(request):
    """Base clips per backbone fixture name, sampled once for the module."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = base_latent(request.getfixturevalue(name))
        return cache[name]

    return get


def text(handle, prompt="a cat"):
    from zeroshot_video.nodes.backbone_nodes import T2VTextEncode
    return T2VTextEncode().encode(handle, prompt, "")[0]


def fifo_node(handle, base, num_frames=2, **kwargs):
    args = dict(backbone=handle, conditioning=kwargs.pop("conditioning", None) or text(handle), base_clip=base,
                num_frames=num_frames, window_frames=F, partitions=N_PARTS, lookahead=True, eta=1.0, guidance=5.0,
                seed=1, window_batch=4)
    args.update(kwargs)
    return FIFOQueueWithImageEmbed().generate(**args)


@pytest.fixture
def unet_calls():
    """Counts UNet forwards of a backbone handle from the moment it is called."""
    handles, counts = [], []

    def watch(handle):
        counts.append(0)
        handles.append(handle.ready().unet.register_forward_pre_hook(lambda *a: counts.__setitem__(-1, counts[-1] + 1)))
        return counts

    yield watch
    for h in handles:
        h.remove()


@pytest.mark.parametrize("family", ["modelscope", "animatediff"])
def test_node_runs_on_both_families_and_streams_frames_to_disk(family, request, bases, tmp_path, monkeypatch):
    handle = request.getfixturevalue(family)
    monkeypatch.setattr(comfy_glue, "output_folder", lambda: tmp_path)
    base = bases(family)
    frames, latent = fifo_node(handle, base, stream_to_disk=True, filename_prefix="fifo/run")
    assert frames.shape == (2, 64, 64, 3) and frames.device.type == "cpu" and latent["samples"].shape == (1, 4, 2, 8, 8)
    written = sorted((tmp_path / "fifo").glob("run_00001/frame_*.png"))
    assert [p.name for p in written] == ["frame_000000.png", "frame_000001.png"]
    if family != "modelscope":
        return
    last, last_latent = fifo_node(handle, base, stream_to_disk=True, filename_prefix="fifo/run", keep_frames=False)
    assert (tmp_path / "fifo" / "run_00002").is_dir() and last.shape == (1, 64, 64, 3)
    torch.testing.assert_close(last, frames[-1:], rtol=0, atol=1e-5)
    torch.testing.assert_close(last_latent["samples"], latent["samples"][:, :, -1:], rtol=0, atol=1e-5)


def test_node_multi_prompt_schedule_changes_the_video(modelscope, bases):
    base = bases("modelscope")
    schedule = T2VPromptSchedule().add(text(modelscope, "the sea"), 1)[0]
    schedule = T2VPromptSchedule().add(text(modelscope, "a dog"), 2, schedule)[0]
    assert [start for start, _ in schedule] == [1, 2]
    plain = fifo_node(modelscope, base, num_frames=3)[1]["samples"]
    switched = fifo_node(modelscope, base, num_frames=3, prompt_schedule=schedule)[1]["samples"]
    # Frame 1 is emitted in the switching iteration, whose head update is the identity: still the first prompt.
    torch.testing.assert_close(switched[:, :, :2], plain[:, :, :2], rtol=0, atol=1e-6)
    assert (switched[:, :, 2:] - plain[:, :, 2:]).abs().amax(dim=(0, 1, 3, 4)).min() > 1e-4
    with pytest.raises(ValueError, match="start at frame 2"):
        T2VPromptSchedule().add(text(modelscope), 2, schedule)


@pytest.mark.parametrize("change, message", [
    (dict(base_frames=3), "3 frames but window_frames is 2"),
    (dict(size=72), "multiples of 2"),
    (dict(num_frames=0), "num_frames"),
    (dict(partitions=0), "partitions"),
    (dict(seed_image_from_base_clip=True), "no image cross-attention"),
    (dict(image_embeds="tokens"), "no image cross-attention"),
    (dict(keep_frames=False), "would be lost"),
])
def test_node_bad_input_fails_before_any_sampling(modelscope, unet_calls, change, message):
    side = change.pop("size", 64) // 8
    base = {"samples": torch.zeros(1, 4, change.pop("base_frames", F), side, side)}
    if change.get("image_embeds") == "tokens":
        change["image_embeds"] = ImageTokens(torch.zeros(1, 4, 64), torch.zeros(1, 4, 64))
    calls = unet_calls(modelscope)
    with pytest.raises(ValueError, match=message):
        fifo_node(modelscope, base, **change)
    assert calls[-1] == 0


def test_node_window_longer_than_animatediff_allows(animatediff, unet_calls):
    base = {"samples": torch.zeros(1, 4, 34, 8, 8)}
    calls = unet_calls(animatediff)
    with pytest.raises(ValueError, match="at most 32"):
        fifo_node(animatediff, base, window_frames=34, partitions=1)
    assert calls[-1] == 0
    # the lookahead parity is the backbone's (Wan takes 77 video frames = 20 latent frames): refused at the run's
    # start, before any model call, not by the validation that knows no backbone
    assert FIFOQueueWithImageEmbed.VALIDATE_INPUTS(window_frames=3, partitions=2, lookahead=True) is True
    assert "minimum 1" in FIFOQueueWithImageEmbed.VALIDATE_INPUTS(window_frames=0, partitions=2, lookahead=True)
    with pytest.raises(ValueError, match="even"):
        fifo_node(animatediff, {"samples": torch.zeros(1, 4, 3, 8, 8)}, window_frames=3, partitions=2)
    assert calls[-1] == 0


# --- image embedding (AnimateDiff + IP-Adapter) -----------------------------------------------------
def test_image_seeding_encodes_once_with_gray_uncond_and_scale_zero_is_text_only(animatediff_ip, bases, monkeypatch):
    model = animatediff_ip.ready()
    base = bases("animatediff_ip")
    encoder_calls = [0]
    hook = model.image_encoder.register_forward_pre_hook(lambda *a: encoder_calls.__setitem__(0, encoder_calls[0] + 1))
    seen = []
    stock_call = Denoiser.__call__

    def spy(self, x, t, cond):
        seen.append(cond)
        return stock_call(self, x, t, cond)

    try:
        model.encode_image_tokens(torch.rand(1, 64, 64, 3))
        per_encoding, encoder_calls[0] = encoder_calls[0], 0
        monkeypatch.setattr(Denoiser, "__call__", spy)
        seeded, _ = fifo_node(animatediff_ip, base, seed_image_from_base_clip=True)
        assert encoder_calls[0] == per_encoding  # one encoding per run, however many frames
    finally:
        hook.remove()
    first = torch.cat([c.image for c in seen]).unique(dim=0)
    assert first.shape[0] == 1 and all(c.image_scale == 1.0 for c in seen)
    from zeroshot_video.core.families.unet import vae
    from zeroshot_video.nodes.inputs import generator
    queue = fifo.init_queue(model.schedule, fifo.fifo_plan(model.schedule, F, N_PARTS, True, model.max_frames),
                            base["samples"], generator(1))  # the node's seed: slot 0 is what the extension embeds
    expected = model.encode_image_tokens(vae.decode_frames(model, queue[:, :, :1], chunk=1))
    torch.testing.assert_close(seen[0].image, expected[0], rtol=0, atol=1e-6)
    size = model.image_encoder.config.image_size
    gray = image_tokens._encode(model.unet, model.image_encoder, image_tokens.clip_pixels(torch.full((1, size, size, 3), 0.5), size))  # pixel 0.5
    torch.testing.assert_close(seen[0].image_uncond, gray, rtol=0, atol=1e-6)

    text_only, _ = fifo_node(animatediff_ip, base)
    scale_zero, _ = fifo_node(animatediff_ip, base, seed_image_from_base_clip=True, image_scale=0.0)
    torch.testing.assert_close(scale_zero, text_only, rtol=0, atol=1e-6)
    assert not torch.allclose(seeded, text_only, atol=1e-4)


def test_image_to_video_uses_the_given_tokens_for_base_clip_and_loop(animatediff_ip):
    model = animatediff_ip.ready()
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    tokens = ImageTokens(*model.encode_image_tokens(image))
    with_image = T2VConditioningAddImage().add(text(animatediff_ip), tokens, 1.0)[0]
    base = base_latent(animatediff_ip, conditioning=with_image)
    from_embeds, _ = fifo_node(animatediff_ip, base, image_embeds=tokens)
    from_conditioning, _ = fifo_node(animatediff_ip, base, conditioning=with_image)
    torch.testing.assert_close(from_embeds, from_conditioning, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="turn seeding off"):
        fifo_node(animatediff_ip, base, image_embeds=tokens, seed_image_from_base_clip=True)
    with pytest.raises(ValueError, match="image_embeds is empty"):
        T2VConditioningAddImage().add(text(animatediff_ip), None, 1.0)


def test_demo_method_fifo(models_dir, tmp_path, capsys):
    from PIL import Image

    from zeroshot_video.cli.commands import main
    out = tmp_path / "fifo.webp"
    model = str(models_dir / "diffusers" / standin_models.MODELSCOPE)
    common = ["demo", "--method", "fifo", "--model", model, "--frames", "3", "--partitions", "2"]
    assert main(common + ["--window-frames", "2", "--out", str(out)]) == 0
    assert "2 warm-up iterations dropped" in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.n_frames == 3
    assert main(common + ["--window-frames", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "even number of latent frames" in err and "--window-frames 3" in err and "--no-lookahead" in err
    # two latent frames per level: the 4-frame window's 8 queue frames on 4 levels, 2 frames out per iteration
    assert main(common + ["--window-frames", "4", "--frames-per-level", "2", "--out", str(out)]) == 0
    assert "in 4 steps" in capsys.readouterr().out
    with Image.open(out) as image:
        assert image.n_frames == 3
    assert main(common + ["--window-frames", "4", "--frames-per-level", "3", "--out", str(out)]) == 2
    assert "--frames-per-level 3 does not divide" in capsys.readouterr().err
