"""Every method's entry point on every family's stand-in (ModelScope, AnimateDiff, Wan 2.1, Wan 2.2 A14B, Wan 2.2
TI2V-5B), in video frames as the user gives them: the frame counts and sizes that come back, and nothing else
asked of the backbone than its interface. The entry points are what the nodes and the command line call."""
import pytest
import torch

from zeroshot_video.core.conditioning import encode_text
from zeroshot_video.core.methods import fifo, i4vgen, t2v, ti2v_zero
from zeroshot_video.core.methods.anchor import gradient_image, make_anchor
from zeroshot_video.core.methods.strategies import NoiseInit, Resample
from zeroshot_video.core.methods.t2v import FROM_LATENT_STREAM, NIVSDS_STREAM, seeded

SIDE = 32  # a multiple of every stand-in's pixel block (TI2V-5B: 32)


def _size(backbone):
    return max(SIDE, backbone.latent_multiple * backbone.memory_profile().pixel_side)


def _frames(backbone, wanted):
    """The nearest count the backbone takes at or above ``wanted`` video frames."""
    return backbone.nearest_video_frames(wanted)[1]


def _cond(backbone):
    return encode_text(backbone, "a red panda eating bamboo", "")


def test_text_to_video_makes_the_frames_asked_for(backbone):
    side, frames = _size(backbone), _frames(backbone, 5)
    latent = t2v.text_to_video(backbone, _cond(backbone), frames=frames, width=side, height=side, steps=2,
                               guidance=5.0, generator=seeded(0))
    video = backbone.decode(latent)
    assert video.shape == (frames, side, side, 3) and torch.isfinite(video).all()


def test_image_to_video_continues_the_image_by_the_frames_asked_for(backbone):
    side = _size(backbone)
    new = 2 * backbone.frames_per_latent
    anchor = make_anchor(backbone, gradient_image(side, side), side, side)
    video, latents = ti2v_zero.image_to_video(
        backbone, _cond(backbone), anchor, num_frames=new, model_frames=_frames(backbone, 3), steps=2,
        guidance=5.0, generator=seeded(0), noise_init=NoiseInit("ddpm_inversion"), resample=Resample(1))
    assert video.shape == (1 + new, side, side, 3) and torch.isfinite(video).all()
    assert torch.equal(video[0], anchor.image[0]), "frame 0 is the image itself"
    assert latents.shape[2] == backbone.latent_frames(1 + new)


@pytest.mark.parametrize("lookahead", [True, False])
def test_long_video_makes_the_frames_asked_for_from_a_base_clip(backbone, lookahead):
    side = _size(backbone)
    window = fifo.default_window(backbone, 2, lookahead)
    clip = fifo.base_clip_for(backbone, window, 1 if lookahead else 2, lookahead)
    cond = _cond(backbone)
    base = t2v.text_to_video(backbone, cond, frames=clip.frames, width=side, height=side, steps=clip.steps,
                             guidance=5.0, eta=1.0, generator=seeded(0), grid=clip.grid)
    count = _frames(backbone, 7)
    frames, latents = fifo.long_video(backbone, cond, base, num_frames=count, window_frames=window,
                                      partitions=1 if lookahead else 2, lookahead=lookahead, guidance=5.0,
                                      generator=seeded(1), window_batch=4)
    assert frames.shape == (count, side, side, 3) and torch.isfinite(frames).all()
    assert latents.shape[2] == backbone.latent_frames(count)


def test_i4vgen_stages_give_a_video_of_the_frames_asked_for(backbone):
    side, frames = _size(backbone), _frames(backbone, 5)
    cond = _cond(backbone)
    selection = i4vgen.select_anchor(backbone, cond, lambda images: images.mean(dim=(1, 2, 3)).tolist(),
                                     frames=frames, width=side, height=side, steps=2, guidance=5.0,
                                     num_candidates=2, generator=seeded(0))
    assert selection.images.shape == (2, side, side, 3)
    assert selection.anchor.shape == backbone.latent_shape(frames, side, side)
    moved = i4vgen.animate_anchor(backbone, cond, selection.anchor, steps=2, guidance=5.0, p=0.5,
                                  step_sizes="1", generator=seeded(0, NIVSDS_STREAM))
    assert moved.shape == selection.anchor.shape and not torch.equal(moved, selection.anchor)
    latent = t2v.text_to_video(backbone, cond, frames=frames, width=side, height=side, steps=2, guidance=5.0,
                               generator=seeded(0, FROM_LATENT_STREAM), latent=moved, denoise=0.5)
    assert backbone.decode(latent).shape == (frames, side, side, 3)


def test_the_frame_questions_agree(backbone):
    """valid counts round-trip, the nearest ones are valid, and a bad count is refused naming both."""
    for frames in range(1, 30):
        below, above = backbone.nearest_video_frames(frames)
        assert backbone.valid_video_frames(below) and backbone.valid_video_frames(above) and below <= above
        assert above >= frames and (below == above) == backbone.valid_video_frames(frames)
        if not backbone.valid_video_frames(frames):
            with pytest.raises(ValueError, match=f"{below}.*{above}"):
                backbone.check_video_frames(frames)
    assert backbone.video_frames(backbone.latent_frames(_frames(backbone, 9))) == _frames(backbone, 9)
    assert backbone.network_name in ("UNet", "transformer")
