"""I4VGen: generation-selection, NI-VSDS, regeneration (I4VGEN.md invariants) and the three nodes.

The mock-model invariants run on AnimateDiff's ε-prediction schedule and on a rectified-flow one (the mocks'
output then read as a velocity; oracles built by :func:`model_output` for either parameterisation)."""
import json
import math

import pytest
import torch

from zeroshot_video.testing import standin_models
from zeroshot_video.core.methods import i4vgen
from zeroshot_video.core.loading.file_checks import ModelFileError
from zeroshot_video.core.families.unet.backbone import family_scheduler
from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.denoiser import Denoiser
from zeroshot_video.core.methods.reward import load_reward_model
from zeroshot_video.core.schedule import FlowSchedule, Schedule
from zeroshot_video.core.methods.t2v import noise_like, sample_t2v
from zeroshot_video.nodes.i4vgen_nodes import LoadRewardModel, NIVSDSOptimize, RewardSelectAnchor
from zeroshot_video.core.methods.t2v import FROM_LATENT_STREAM, NIVSDS_STREAM
from zeroshot_video.nodes.inputs import generator
from zeroshot_video.nodes.t2v_nodes import T2VSampler

PROMPT = "the cat on the mat"
VIDEO = (1, 4, 4, 8, 8)  # B = 1, F = 4, 8×8 latents
S = 10


@pytest.fixture(scope="module", params=["vp", "flow"])
def schedule(request):
    """AnimateDiff's table and grid, or a rectified-flow schedule as Wan's (shift 5)."""
    if request.param == "flow":
        return FlowSchedule(shift=5.0)
    return Schedule.from_scheduler(family_scheduler("animatediff"))


def model_output(schedule, z, t, *, x0=None, eps=None):
    """What a model of the schedule's parameterisation outputs at input ``z`` when it predicts ``x0`` and/or
    ``eps`` (ε for VP, v = ε − x0 for flow); a missing one follows from z = a·x0 + s·ε. At σ = 1 the input is
    the noise itself and implies no x0: 0 is taken."""
    c = schedule.coefficients(t, z)
    if eps is None:
        eps = (z - c.a * x0) / c.s
    if schedule.prediction == "epsilon":
        return eps
    if x0 is None:
        x0 = torch.where(c.a > 0, (z - c.s * eps) / c.a, torch.zeros_like(z))
    return eps - x0


class Recorder:
    """A mock model (ε-predictor, or velocity on a flow schedule) that records what it is called with."""

    def __init__(self, predict):
        self.predict = predict
        self.inputs, self.timesteps = [], []

    def __call__(self, x, t, cond):
        self.inputs.append(x.clone())
        self.timesteps.append(t)
        return self.predict(x, t)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _decode(latents):
    """Stub decoder: the first three latent channels as an IMAGE."""
    return latents[:, :3, 0].permute(0, 2, 3, 1).clone()


def _select(schedule, scores, count=4, denoiser=None):
    denoiser = denoiser or Recorder(lambda x, t: 0.1 * x)
    noise = i4vgen.candidate_noise(VIDEO, count, _gen())
    return i4vgen.generate_and_select(denoiser, schedule, None, noise, S, VIDEO[2], decode=_decode,
                                      score=lambda images: scores, generator=_gen()), noise


# --- stage 1: generation-selection -----------------------------------------------------------
def test_candidate_i_starts_from_frame_i_of_the_video_noise():
    video = noise_like(VIDEO, _gen(7))
    candidates = i4vgen.candidate_noise(VIDEO, 4, _gen(7))
    assert candidates.shape == (4, 4, 1, 8, 8)
    for i in range(4):
        assert torch.equal(candidates[i, :, 0], video[0, :, i])
    more = i4vgen.candidate_noise(VIDEO, 6, _gen(7))  # N > F: frames of the seed's next video draw
    g = _gen(7)
    noise_like(VIDEO, g)
    second = noise_like(VIDEO, g)
    assert torch.equal(more[:4], candidates) and torch.equal(more[5, :, 0], second[0, :, 1])


@pytest.mark.parametrize("count", [0, -1])
def test_fewer_than_one_candidate_is_refused(count):
    with pytest.raises(ValueError, match="at least 1"):
        i4vgen.candidate_noise(VIDEO, count, _gen())


def test_shapes_calls_and_static_video_is_the_chosen_candidate_exactly(schedule):
    denoiser = Recorder(lambda x, t: 0.1 * x)
    selection, noise = _select(schedule, [0.1, 0.5, 0.9, 0.2], denoiser=denoiser)
    assert len(denoiser.inputs) == S, "N = F candidates cost S calls, as one video"
    assert all(x.shape == (4, 4, 1, 8, 8) for x in denoiser.inputs), "1-frame clips, all candidates per call"
    candidates = i4vgen.sample_candidates(Recorder(lambda x, t: 0.1 * x), schedule, None, noise, S,
                                          generator=_gen(), batch=4)
    assert candidates.shape == (4, 4, 1, 8, 8)
    assert selection.index == 2 and selection.anchor.shape == VIDEO
    for f in range(VIDEO[2]):
        assert torch.equal(selection.anchor[:, :, f], candidates[2, :, 0].unsqueeze(0))
    assert torch.equal(selection.images, _decode(candidates))


def test_more_candidates_than_frames_run_in_batches_of_f(schedule):
    denoiser = Recorder(lambda x, t: 0.1 * x)
    selection, _ = _select(schedule, [0.0] * 6, count=6, denoiser=denoiser)
    assert len(denoiser.inputs) == 2 * S and max(x.shape[0] for x in denoiser.inputs) == VIDEO[2]
    assert selection.images.shape[0] == 6


def test_stub_reward_argmax_and_permuted_scores_permute_the_choice(schedule):
    base = [0.3, 0.7, 0.1, 0.5]
    first, _ = _select(schedule, base)
    assert first.index == 1
    for perm in ([2, 0, 3, 1], [3, 2, 1, 0], [1, 3, 0, 2]):
        scores = [base[p] for p in perm]
        chosen, _ = _select(schedule, scores)
        assert perm[chosen.index] == 1, "the candidate holding the best score is chosen wherever it sits"
    ties, _ = _select(schedule, [0.2, 0.9, 0.9, 0.1])
    assert ties.index == 1, "first on ties"


def test_one_candidate_is_the_no_selection_ablation(schedule):
    selection, noise = _select(schedule, [0.4], count=1)
    assert selection.index == 0 and selection.images.shape[0] == 1
    alone = i4vgen.sample_candidates(Recorder(lambda x, t: 0.1 * x), schedule, None, noise, S, generator=_gen(),
                                     batch=4)
    assert torch.equal(selection.anchor[:, :, 3], alone[0, :, 0].unsqueeze(0))


def test_given_images_are_scored_and_only_the_best_is_encoded():
    images = torch.rand(3, 16, 16, 3, generator=_gen())
    encoded = []

    def encode(batch):
        encoded.append(batch)
        return batch[..., 0].unsqueeze(1).unsqueeze(1) * 2  # [n, 1, 1, h, w]

    selection = i4vgen.select_from_images(images, 5, encode=encode, score=lambda im: [0.1, 0.3, 0.2])
    assert selection.index == 1 and len(encoded) == 1 and torch.equal(encoded[0], images[1:2])
    assert selection.anchor.shape == (1, 1, 5, 16, 16)
    assert all(torch.equal(selection.anchor[0, 0, f], images[1, ..., 0] * 2) for f in range(5))
    assert "candidate 1: 0.3000  <- anchor" in i4vgen.format_scores(selection)


def test_reward_returning_the_wrong_number_of_scores_is_refused():
    with pytest.raises(ValueError, match="2 scores for 3 candidates"):
        i4vgen.select_from_images(torch.rand(3, 8, 8, 3), 2, encode=lambda b: b, score=lambda im: [1.0, 2.0])


# --- stage 2a: NI-VSDS -----------------------------------------------------------------------
@pytest.mark.parametrize("steps,p,k", [(10, 0.6, 7), (25, 0.6, 16), (25, 0.4, 11), (10, 0.0, 1), (10, 1.0, 10)])
def test_iteration_count(steps, p, k):
    assert i4vgen.nivsds_iterations(steps, p) == k


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_p_outside_unit_interval_is_refused(p):
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        i4vgen.nivsds_iterations(S, p)


def _nivsds(schedule, predict, latent, noise, p=0.6, sizes=i4vgen.DEFAULT_STEP_SIZES):
    recorder = Recorder(predict)
    trajectory = [latent]
    out = i4vgen.ni_vsds(recorder, schedule, None, latent, noise, S, i4vgen.nivsds_iterations(S, p), sizes,
                         on_step=lambda k, n, x: trajectory.append(x))
    return out, recorder, trajectory


def test_descending_grid_and_the_same_noise_at_every_iteration(schedule):
    latent, noise = torch.randn(VIDEO, generator=_gen(1)), torch.randn(VIDEO, generator=_gen(2))
    out, recorder, trajectory = _nivsds(schedule, lambda z, t: 0.3 * z, latent, noise)
    K = i4vgen.nivsds_iterations(S, 0.6)
    assert len(recorder.inputs) == K
    assert recorder.timesteps == schedule.sampling_timesteps(S)[:K]
    assert all(a > b for a, b in zip(recorder.timesteps, recorder.timesteps[1:]))
    for z, t, x in zip(recorder.inputs, recorder.timesteps, trajectory):
        c = schedule.coefficients(t, x)
        torch.testing.assert_close((z - c.a * x) / c.s, noise, rtol=1e-4, atol=1e-4)
    assert torch.equal(out, trajectory[-1])


def test_oracle_predictor_leaves_the_latent_unchanged(schedule):
    latent, noise = torch.randn(VIDEO, generator=_gen(1)), torch.randn(VIDEO, generator=_gen(2))
    out, _, _ = _nivsds(schedule, lambda z, t: model_output(schedule, z, t, x0=latent, eps=noise), latent, noise)
    # exact for ε (ε̂ is the output); a velocity's ε̂ = z + (1 − σ)·v is ε only up to rounding
    torch.testing.assert_close(out, latent, rtol=0, atol=0 if schedule.prediction == "epsilon" else 1e-5)


def _coefficients(schedule, K):
    """(a, s) of the first K grid levels, as float64 numbers."""
    like = torch.zeros((), dtype=torch.float64)
    levels = [schedule.coefficients(t, like) for t in schedule.sampling_timesteps(S)[:K]]
    return [(float(c.a), float(c.s)) for c in levels]


def _noise_weights(schedule, K):
    """s² per iteration: what an ε̂ = 0 prediction adds of the fixed noise. At a = 0 (a flow grid's σ = 1) the
    model's input is the noise itself, so ε̂ = ε whatever it outputs and that iteration adds nothing."""
    return [s * s if a > 0 else 0.0 for a, s in _coefficients(schedule, K)]


def _sizes(K):
    return [i4vgen.DEFAULT_STEP_SIZES[min(k, 3)] for k in range(K)]


def test_x_star_predictor_contracts_in_closed_form(schedule):
    latent = torch.randn(VIDEO, generator=_gen(1), dtype=torch.float64)
    noise = torch.randn(VIDEO, generator=_gen(2), dtype=torch.float64)
    target = torch.randn(VIDEO, generator=_gen(3), dtype=torch.float64)

    def predicts_target(z, t):
        return model_output(schedule, z, t, x0=target)

    out, _, _ = _nivsds(schedule, predicts_target, latent, noise)
    K = i4vgen.nivsds_iterations(S, 0.6)
    # x ← x + λ·(x̂0 − x) with λ = α·a·s (√(ᾱ(1 − ᾱ)) for VP, σ(1 − σ) for flow)
    factor = math.prod(1 - size * a * s for size, (a, s) in zip(_sizes(K), _coefficients(schedule, K)))
    torch.testing.assert_close(out - target, factor * (latent - target), rtol=1e-9, atol=1e-9)


def test_zero_predictor_adds_the_fixed_noise(schedule):
    latent = torch.randn(VIDEO, generator=_gen(1), dtype=torch.float64)
    noise = torch.randn(VIDEO, generator=_gen(2), dtype=torch.float64)
    out, _, _ = _nivsds(schedule, lambda z, t: model_output(schedule, z, t, eps=torch.zeros_like(z)), latent, noise)
    K = i4vgen.nivsds_iterations(S, 0.6)
    total = sum(size * w for size, w in zip(_sizes(K), _noise_weights(schedule, K)))
    torch.testing.assert_close(out, latent + total * noise, rtol=1e-12, atol=1e-12)


def test_zero_iterations_is_the_no_nivsds_ablation(schedule):
    latent = torch.randn(VIDEO, generator=_gen(1))
    recorder = Recorder(lambda z, t: z)
    out = i4vgen.ni_vsds(recorder, schedule, None, latent, torch.randn(VIDEO), S, 0)
    assert torch.equal(out, latent) and out is not latent and not recorder.inputs


@pytest.mark.parametrize("text,expected", [("10,10,10,1", (10.0, 10.0, 10.0, 1.0)), (" 2.5 ; 1 ", (2.5, 1.0)),
                                           ("1", (1.0,))])
def test_step_size_list(text, expected):
    assert i4vgen.parse_step_sizes(text) == expected


@pytest.mark.parametrize("text,match", [("", "empty"), (" , ", "empty"), ("10,ten", "not a number"),
                                        ("10,,1", "not a number"), ("nan", "finite"), ("-1", ">= 0")])
def test_bad_step_size_lists_are_refused(text, match):
    with pytest.raises(ValueError, match=match):
        i4vgen.parse_step_sizes(text)
    assert match in NIVSDSOptimize.VALIDATE_INPUTS(step_sizes=text)


def test_last_step_size_repeats(schedule):
    latent = torch.randn(VIDEO, generator=_gen(1), dtype=torch.float64)
    noise = torch.randn(VIDEO, generator=_gen(2), dtype=torch.float64)
    out, _, _ = _nivsds(schedule, lambda z, t: model_output(schedule, z, t, eps=torch.zeros_like(z)), latent, noise,
                        p=1.0, sizes=(3.0, 2.0))
    total = sum(size * w for size, w in zip([3.0] + [2.0] * (S - 1), _noise_weights(schedule, S)))
    torch.testing.assert_close(out, latent + total * noise, rtol=1e-12, atol=1e-12)


# --- stage 2b: regeneration and the three noises ----------------------------------------------
@pytest.mark.parametrize("p_re", [1.0, 0.8, 0.55, 0.0])
def test_regeneration_calls_start_and_fresh_noise(schedule, p_re):
    seed = 11  # one seed shared by every node of the graph
    latent = torch.randn(VIDEO, generator=_gen(1))
    epsilon = noise_like(VIDEO, generator(seed, NIVSDS_STREAM))  # what NIVSDSOptimize draws for that seed
    optimised, _, _ = _nivsds(schedule, lambda z, t: 0.5 * z, latent, epsilon)
    gen = generator(seed, FROM_LATENT_STREAM)
    fresh = noise_like(VIDEO, gen)  # what T2VSampler draws for that seed from a latent
    recorder = Recorder(lambda z, t: 0.5 * z)
    out = sample_t2v(recorder, schedule, None, fresh, S, generator=gen, init_latent=optimised, strength=p_re)
    m = min(int(S * p_re), S)
    assert len(recorder.inputs) == m
    if m == 0:
        assert torch.equal(out, optimised), "p_re = 0 returns the NI-VSDS latent"
        return
    ts = schedule.sampling_timesteps(S)
    assert recorder.timesteps[0] == ts[S - m]
    c = schedule.coefficients(ts[S - m], optimised)
    recovered = (recorder.inputs[0] - c.a * optimised) / c.s
    torch.testing.assert_close(recovered, fresh, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(recovered, epsilon, atol=0.1), "regeneration must not reuse NI-VSDS's ε"


# --- the reward model ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reward(_models_env):
    return LoadRewardModel().load(standin_models.REWARD_MODEL, "fp32")[0]


def test_loader_lists_the_reward_folder(reward):
    assert standin_models.REWARD_MODEL in LoadRewardModel.INPUT_TYPES()["required"]["model"][0]
    assert "models/reward_models" in LoadRewardModel.INPUT_TYPES()["required"]["model"][1]["tooltip"]


@torch.no_grad()
def test_clip_score_is_logit_scale_times_cosine(reward):
    images = torch.rand(3, 40, 56, 3, generator=_gen())
    scores = reward.score(images, PROMPT, chunk=2)
    model = reward.model
    pixels = reward.processor(images=list(images.permute(0, 3, 1, 2)), do_rescale=False,
                              return_tensors="pt").pixel_values
    text = reward.tokenizer(PROMPT, padding="max_length", max_length=77, return_tensors="pt")
    image_emb = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
    text_emb = model.text_projection(model.text_model(input_ids=text.input_ids,
                                                      attention_mask=text.attention_mask).pooler_output)
    expected = model.logit_scale.exp() * torch.nn.functional.cosine_similarity(image_emb, text_emb)
    torch.testing.assert_close(torch.tensor(scores), expected, rtol=1e-5, atol=1e-5)
    assert next(model.parameters()).device.type == "cpu"


def _folder(tmp_path, config, files=("model.safetensors", "tokenizer.json", "preprocessor_config.json")):
    folder = tmp_path / "reward"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    for name in files:
        (folder / name).write_text("{}")
    return folder


@pytest.mark.parametrize("config,files,match", [
    ({"model_type": "blip"}, ("model.safetensors",), "not a CLIP-family model"),
    ({"model_type": "clip"}, ("pytorch_model.bin", "tokenizer.json", "preprocessor_config.json"), "pickled"),
    ({"model_type": "clip"}, ("model.safetensors", "preprocessor_config.json"), "tokenizer"),
    ({"model_type": "clip"}, ("model.safetensors", "tokenizer.json"), "preprocessor_config.json"),
])
def test_reward_folders_that_cannot_be_used_are_refused(tmp_path, config, files, match):
    with pytest.raises(ModelFileError, match=match):
        load_reward_model(_folder(tmp_path, config, files))


def test_unknown_reward_model_names_the_folder(_models_env):
    with pytest.raises(ModelFileError, match="reward_models"):
        LoadRewardModel().load("not-a-model", "fp32")


# --- the nodes on the tiny backbones ---------------------------------------------------------
FRAMES, STEPS = 3, 3


@pytest.fixture(params=["modelscope", "animatediff"])
def handle(request):
    return request.getfixturevalue(request.param)


class UNetCalls:
    def __init__(self, backbone):
        self.count = 0
        self.handle = backbone.unet.register_forward_pre_hook(lambda *a: self.__setattr__("count", self.count + 1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _anchor(handle, reward, cond, seed=0, **kw):
    args = dict(frames=FRAMES, width=64, height=64, steps=STEPS, guidance=7.5, seed=seed, num_candidates=0)
    args.update(kw)
    return RewardSelectAnchor().select(handle, cond, reward, **args)


def test_graph_shapes_calls_and_seed_determinism(handle, reward):
    backbone = handle.ready()
    cond = encode_text(backbone, PROMPT)
    with UNetCalls(backbone) as calls:
        out = _anchor(handle, reward, cond)
        assert calls.count == STEPS
        anchor, images, text, index = out["result"]
        assert out["ui"]["text"] == [text] and len(text.splitlines()) == FRAMES and "<- anchor" in text
        assert anchor["samples"].shape == (1, 4, FRAMES, 8, 8) and images.shape == (FRAMES, 64, 64, 3)
        noise = i4vgen.candidate_noise((1, 4, FRAMES, 8, 8), FRAMES, generator(0))
        candidates = i4vgen.sample_candidates(Denoiser(backbone, 7.5), backbone.schedule, cond, noise, STEPS,
                                              generator=generator(0), batch=FRAMES)
        for f in range(FRAMES):
            assert torch.equal(anchor["samples"][:, :, f], candidates[index, :, 0].unsqueeze(0))
        calls.count = 0
        moved = NIVSDSOptimize().optimize(handle, cond, anchor, STEPS, 7.5, 0.6, "10,10,10,1", 0)[0]
        assert calls.count == int(STEPS * 0.6) + 1
        assert moved["samples"].shape == anchor["samples"].shape
        assert not torch.equal(moved["samples"], anchor["samples"])
        calls.count = 0
        video = T2VSampler().sample(handle, cond, FRAMES, 64, 64, STEPS, 7.5, 0.0, 0, latent=moved, denoise=1.0)[0]
        assert calls.count == STEPS and video["samples"].shape == anchor["samples"].shape
    again = _anchor(handle, reward, cond)["result"]
    assert torch.equal(again[0]["samples"], anchor["samples"]) and again[2] == text
    assert torch.equal(NIVSDSOptimize().optimize(handle, cond, anchor, STEPS, 7.5, 0.6, "10,10,10,1", 0)[0]["samples"],
                       moved["samples"])
    other = NIVSDSOptimize().optimize(handle, cond, anchor, STEPS, 7.5, 0.6, "10,10,10,1", 1)[0]["samples"]
    assert not torch.allclose(other, moved["samples"])


def test_guidance_one_is_a_cond_only_run(modelscope):
    backbone = modelscope.ready()
    cond = encode_text(backbone, PROMPT, "blurry")
    latent, noise = torch.randn(VIDEO, generator=_gen(1)), torch.randn(VIDEO, generator=_gen(2))

    def cond_only(x, t, c):
        timestep = torch.full((x.shape[0],), t)
        return backbone.unet(x, timestep, encoder_hidden_states=c.positive, return_dict=False)[0]

    with torch.no_grad():
        ours = i4vgen.ni_vsds(Denoiser(backbone, 1.0), backbone.schedule, cond, latent, noise, STEPS, 2)
        reference = i4vgen.ni_vsds(cond_only, backbone.schedule, cond, latent, noise, STEPS, 2)
        guided = i4vgen.ni_vsds(Denoiser(backbone, 7.5), backbone.schedule, cond, latent, noise, STEPS, 2)
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(guided, ours)


def test_external_candidates_anchor_the_best_image(modelscope, reward):
    backbone = modelscope.ready()
    cond = encode_text(backbone, PROMPT)
    images = torch.rand(3, 64, 64, 3, generator=_gen(4))
    with UNetCalls(backbone) as calls:
        anchor, out_images, text, index = _anchor(modelscope, reward, cond, frames=5, candidates=images)["result"]
        assert calls.count == 0
    assert torch.equal(out_images, images)
    assert index == i4vgen.first_argmax(reward.score(images, PROMPT))
    expected = i4vgen.static_video(i4vgen.encode_images(backbone, images[index:index + 1]), 5)
    assert torch.equal(anchor["samples"], expected)


@pytest.mark.parametrize("kw,match", [
    (dict(num_candidates=-1), "num_candidates"),
    (dict(candidates=torch.rand(2, 64, 48, 3)), "resize"),
    (dict(candidates=torch.rand(2, 32, 32, 3)), "resize"),
    (dict(width=60), "multiples of 8"),
])
def test_anchor_bad_input(modelscope, reward, kw, match):
    cond = encode_text(modelscope.ready(), PROMPT)
    with pytest.raises(ValueError, match=match):
        _anchor(modelscope, reward, cond, **kw)


def test_conditioning_without_prompt_text_is_refused(modelscope, reward):
    from dataclasses import replace
    cond = replace(encode_text(modelscope.ready(), PROMPT), prompt="")
    with pytest.raises(ValueError, match="T2VTextEncode"):
        _anchor(modelscope, reward, cond)


@pytest.mark.parametrize("kw,match", [(dict(p=1.2), r"\[0, 1\]"), (dict(p=-0.5), r"\[0, 1\]"),
                                      (dict(step_sizes=""), "empty"), (dict(step_sizes="a,b"), "not a number")])
def test_nivsds_bad_input(modelscope, kw, match):
    cond = encode_text(modelscope.ready(), PROMPT)
    args = dict(latent={"samples": torch.zeros(VIDEO)}, steps=STEPS, guidance=7.5, p=0.6, step_sizes="10,1", seed=0)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        NIVSDSOptimize().optimize(modelscope, cond, **args)


def test_nivsds_refuses_image_latents(modelscope):
    cond = encode_text(modelscope.ready(), PROMPT)
    with pytest.raises(ValueError, match="video latent"):
        NIVSDSOptimize().optimize(modelscope, cond, {"samples": torch.zeros(1, 4, 8, 8)}, STEPS, 7.5, 0.6, "1", 0)


# --- the demo command ------------------------------------------------------------------------
def test_demo_runs_the_whole_graph(models_dir, tmp_path, capsys):
    from PIL import Image

    from zeroshot_video.cli.commands import main
    out = tmp_path / "i4vgen.webp"
    reward = models_dir / "reward_models" / standin_models.REWARD_MODEL
    model = models_dir / "diffusers" / standin_models.MODELSCOPE
    assert main(["demo", "--method", "i4vgen", "--model", str(model), "--frames", "2", "--steps", "2",
                 "--reward-model", str(reward), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "candidate 1:" in printed and "<- anchor" in printed
    with Image.open(out) as image:
        assert image.n_frames == 2
