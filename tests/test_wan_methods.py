"""FIFO-Diffusion and I4VGen on the Wan stand-ins, through the nodes: video frames outside, latent frames inside."""
import pytest
import torch

from zeroshot_video.testing import standin_models
from zeroshot_video.core.methods import fifo
from zeroshot_video.nodes.backbone_nodes import LoadT2VBackbone, T2VTextEncode
from zeroshot_video.nodes.fifo_nodes import FIFOQueueWithImageEmbed
from zeroshot_video.nodes.i4vgen_nodes import LoadRewardModel, NIVSDSOptimize, RewardSelectAnchor
from zeroshot_video.nodes.t2v_nodes import DecodeVideoLatent, T2VSampler

SIZE = 32


@pytest.fixture(scope="module")
def wan21(_models_env):
    return LoadT2VBackbone().load(model=standin_models.WAN21, motion_adapter="none", dtype="fp32")[0]


@pytest.fixture(scope="module")
def a14b(_models_env):
    return LoadT2VBackbone().load(model=standin_models.WAN22_A14B, motion_adapter="none", dtype="fp32")[0]


def _cond(handle):
    return T2VTextEncode().encode(handle, "a red panda in a bamboo forest", "")[0]


def _fifo(handle, num_frames, window=5, partitions=2, **kw):
    cond = _cond(handle)
    steps = partitions * handle.ready().latent_frames(window)  # S = f·n in latent frames
    base = T2VSampler().sample(handle, cond, window, SIZE, SIZE, steps, 5.0, 1.0, 3, grid="fifo")[0]
    return FIFOQueueWithImageEmbed().generate(handle, cond, base, num_frames, window, partitions, True, 1.0, 5.0, 7,
                                              4, **kw)


def test_fifo_on_wan_emits_four_video_frames_per_latent_frame_seamlessly(wan21):
    frames, latents = _fifo(wan21, 13)
    assert latents["samples"].shape[2] == 4 and frames.shape[0] == 13, "13 video frames = 4 latent frames"
    whole = DecodeVideoLatent().decode(wan21, latents, 4)[0]
    torch.testing.assert_close(frames, whole, rtol=0, atol=1e-6), "streamed frame by frame = one continuous decode"


def test_fifo_on_wan_streams_every_video_frame_to_disk(wan21, tmp_path, monkeypatch):
    from zeroshot_video.nodes import comfy_glue
    monkeypatch.setattr(comfy_glue, "output_folder", lambda: tmp_path)
    frames, _ = _fifo(wan21, 9, stream_to_disk=True, filename_prefix="wan/fifo", keep_frames=False)
    written = sorted((tmp_path / "wan").glob("fifo_*/frame_*.png"))
    assert len(written) == 9 and frames.shape[0] == 1


def test_fifo_on_a14b_runs_windows_across_the_expert_boundary(a14b):
    backbone = a14b.ready()
    plan = fifo.fifo_plan(backbone.schedule, 2, 4, True, backbone.max_frames)
    boundary = backbone.boundary_ratio
    assert any(lo < boundary <= hi for lo, hi in zip(plan.labels, plan.labels[1:])), "the queue spans the boundary"
    frames, latents = _fifo(a14b, 9, window=5, partitions=4)
    assert frames.shape[0] == 9 and torch.isfinite(latents["samples"]).all()


@pytest.mark.parametrize("kw,match", [
    (dict(window=81), "even number of latent frames.*77"),
    (dict(num_frames=8), "4k\\+1"),
])
def test_wan_fifo_bad_input(wan21, kw, match):
    num_frames = kw.pop("num_frames", 9)
    cond = _cond(wan21)
    base = {"samples": torch.zeros(1, 16, 2, 4, 4)}
    with pytest.raises(ValueError, match=match):
        FIFOQueueWithImageEmbed().generate(wan21, cond, base, num_frames, kw.get("window", 5), 2, True, 1.0, 5.0, 7, 4)


def test_fifo_window_parity_is_the_backbones(wan21):
    """Lookahead needs an even number of latent frames: 77 video frames (20) on Wan, 81 (21) refused."""
    model = wan21.ready()
    assert fifo.window_latent_frames(model, 77, True) == 20
    with pytest.raises(ValueError, match="even"):
        fifo.window_latent_frames(model, 81, True)
    assert fifo.window_latent_frames(model, 81, False) == 21
    assert fifo.default_window(model, 4, True) == 5 and fifo.default_window(model, 16, True) == 21


def test_image_seeding_on_wan_is_a_clear_error(wan21):
    cond = _cond(wan21)
    base = {"samples": torch.zeros(1, 16, 2, 4, 4)}
    with pytest.raises(ValueError, match="no image cross-attention"):
        FIFOQueueWithImageEmbed().generate(wan21, cond, base, 9, 5, 2, True, 1.0, 5.0, 7, 4,
                                           seed_image_from_base_clip=True)


def test_i4vgen_on_wan_candidates_still_video_nivsds_regeneration(wan21):
    backbone = wan21.ready()
    reward = LoadRewardModel().load(standin_models.REWARD_MODEL, "fp32")[0]
    cond = _cond(wan21)
    result = RewardSelectAnchor().select(wan21, cond, reward, 9, SIZE, SIZE, 3, 5.0, 1, 2)["result"]
    anchor, candidates, _, index = result
    assert candidates.shape[0] == 2 and anchor["samples"].shape[2] == 3, "2 one-frame candidates; 9 frames = 3 latents"
    still = anchor["samples"]
    assert not torch.allclose(still[:, :, 1], still[:, :, 0]), "a causal VAE's still clip is not latent 0 repeated"
    moved = NIVSDSOptimize().optimize(wan21, cond, anchor, 3, 5.0, 0.6, "10,1", 1)[0]
    video = T2VSampler().sample(wan21, cond, 9, SIZE, SIZE, 3, 5.0, 0.0, 1, latent=moved, denoise=1.0)[0]
    frames = DecodeVideoLatent().decode(wan21, video, 2)[0]
    assert frames.shape == (9, SIZE, SIZE, 3) and torch.isfinite(frames).all()
    first = backbone.decode(still[:, :, :1])
    torch.testing.assert_close(first, candidates[index:index + 1], rtol=0, atol=2e-2)


def test_ti2v_zero_on_wan_starts_from_the_image_and_streams_four_frames_per_latent(wan21):
    from zeroshot_video.nodes.ti2v_nodes import EncodeAnchorImage, RepeatAndSlideSampler
    backbone = wan21.ready()
    image = torch.rand(1, SIZE, SIZE, 3)
    anchor = EncodeAnchorImage().encode(wan21, image, SIZE, SIZE, "center")[0]
    calls = []
    stock = backbone.predict
    backbone.predict = lambda *a: calls.append(a[0].shape[2]) or stock(*a)
    try:
        video, latents = RepeatAndSlideSampler().sample(wan21, _cond(wan21), anchor, 8, 9, 2, 5.0, 3)
    finally:
        del backbone.predict
    assert video.shape[0] == 9 and torch.equal(video[0], image[0].to(video.dtype)), "frame 0 is the input pixels"
    assert latents["samples"].shape[2] == 3 and set(calls) == {3}, "windows of 2 queue latents + the new one"
    assert len(calls) == 2 * len(backbone.schedule.ti2v_pairs(2)), "S calls per new latent frame (no resampling)"
    whole = DecodeVideoLatent().decode(wan21, latents, 1)[0]
    torch.testing.assert_close(video[1:], whole[1:], rtol=0, atol=1e-6), "new frames continue one decoded video"
    with pytest.raises(ValueError, match="multiple of 4"):
        RepeatAndSlideSampler().sample(wan21, _cond(wan21), anchor, 6, 9, 2, 5.0, 3)
