"""TI2V-Zero: the anchor image, the two strategy option nodes and the repeat-and-slide sampler."""
from __future__ import annotations

import logging

from ..core.methods.anchor import CROP_MODES, check_image, make_anchor
from ..core.conditioning import ImageTokens
from ..core.methods.strategies import NoiseInit, Resample
from ..core.methods import ti2v_zero
from ..core.methods.ti2v_zero import check_settings
from ..core.validation import check_size
from . import comfy_glue as glue
from .inputs import (COMBO, FLOAT, GUIDANCE_2, HIDDEN, INT, LINK, SEED, generator, latent_output, low_noise_guidance,
                     validates)
from .t2v_nodes import MAX_SIDE

log = logging.getLogger(__name__)
CATEGORY = "zero-shot video"


def _anchor_size(width, height):
    try:
        check_size(width or None, height or None)
    except ValueError as error:
        raise ValueError(f"{error} (or 0 for the backbone's native size)") from None


@validates(_anchor_size)
class EncodeAnchorImage:
    DESCRIPTION = ("Prepares the image a video starts from: centre-crops it to the target aspect, resizes it to the "
                   "target resolution (default: the backbone's native size) and encodes it with the backbone's VAE "
                   "(posterior mean × scale). Several frames (an IMAGE batch) make a video-prediction anchor: the "
                   "video continues after the last one. An image smaller than the target is upscaled and the log "
                   "says so. With an IP-Adapter backbone it also outputs the image tokens of the first frame.")
    RETURN_TYPES = ("ANCHOR", "LATENT", "IMAGE_EMBEDS")
    RETURN_NAMES = ("anchor", "latent", "image_embeds")
    OUTPUT_TOOLTIPS = (
        "The preprocessed frames, their latents and the backbone that encoded them, for RepeatAndSlideSampler.",
        "The anchor's latent alone, samples shaped [1, channels, frames, height/8, width/8].",
        "Image tokens of the first frame (and of a gray image for the negative branch) for samplers that take "
        "IMAGE_EMBEDS; empty (None) when the backbone has no image cross-attention (no IP-Adapter loaded).",
    )
    FUNCTION = "encode"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "backbone": LINK("T2V_BACKBONE", "The video model whose VAE encodes the image (use the same one in the "
                                             "sampler)."),
            "image": LINK("IMAGE", "The first frame of the video (RGB). Several frames = video prediction: the video "
                                   "continues them. An image smaller than the target size is upscaled, with a "
                                   "warning in the log (the video then starts soft), rather than refused."),
            "width": INT(0, 0, MAX_SIDE, "Target width in pixels, a multiple of 8; 0 = the backbone's native size "
                                         "(ModelScope 256, AnimateDiff 512; set 576×320 for Zeroscope).", step=8),
            "height": INT(0, 0, MAX_SIDE, "Target height in pixels, a multiple of 8; 0 = the backbone's native size.",
                          step=8),
            "crop": COMBO(list(CROP_MODES), "center (default, TI2V-Zero's own): cut the largest centred region of the "
                                            "target aspect, then resize, so nothing is distorted. stretch: resize "
                                            "the whole image to the target size.", "center"),
        }}

    def encode(self, backbone, image, width, height, crop):
        check_image(image)
        model = backbone.ready()
        anchor = make_anchor(model, image, width, height, crop)
        tokens = ImageTokens(*model.encode_image_tokens(anchor.image[:1])) if model.has_image_attention else None
        return (anchor, latent_output(model, anchor.latents), tokens)


class DDPMInvertQueue:
    DESCRIPTION = ("Noise-initialisation strategy. ddpm_inversion: a new frame starts from the last known frame's "
                   "latent forward-noised to the first sampling step (TI2V-Zero's DDPM inversion; FIFO's "
                   "forward-noised queue). gaussian: plain noise. Unconnected: RepeatAndSlideSampler uses gaussian "
                   "(the paper's 'no inversion' ablation), FIFOQueueWithImageEmbed its own forward-noised queue.")
    RETURN_TYPES = ("NOISE_INIT",)
    OUTPUT_TOOLTIPS = ("The strategy, for RepeatAndSlideSampler or FIFOQueueWithImageEmbed.",)
    FUNCTION = "make"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "mode": COMBO(["ddpm_inversion", "gaussian"], "ddpm_inversion: start from the last frame noised to the "
                          "first step's level (paper ablation: FVD 1656 → 340). gaussian: plain noise.",
                          "ddpm_inversion"),
        }}

    def make(self, mode):
        return (NoiseInit(mode),)


class ResampleStep:
    DESCRIPTION = ("TI2V-Zero's resampling strategy: each DDIM step is repeated R extra times (denoise, put the "
                   "conditioning frames back, push every frame back to the step's noise level with fresh noise), "
                   "so a step costs R + 1 model calls. Smoother motion, slower. Unconnected = R 0.")
    RETURN_TYPES = ("RESAMPLE",)
    OUTPUT_TOOLTIPS = ("The strategy, for RepeatAndSlideSampler.",)
    FUNCTION = "make"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "rounds": INT(4, 0, 100, "R, extra rounds per step (paper: 4 with 10 steps, 2 with 50 steps). "
                                     "Each step costs R + 1 model calls."),
        }}

    def make(self, rounds):
        return (Resample(rounds),)


@validates()
class RepeatAndSlideSampler:
    DESCRIPTION = ("TI2V-Zero image-to-video: generates num_frames new frames after the anchor, one at a time. A "
                   "queue of the last (model_frames − 1) frames conditions each model call and slides forward by one "
                   "frame per new frame, so any length works at constant memory. Paper defaults: 10 steps, "
                   "guidance 9, DDPMInvertQueue(ddpm_inversion) and ResampleStep(4) connected. Cost per new frame: "
                   "steps × (R + 1) model calls, one VAE encode and one decode.")
    RETURN_TYPES = ("IMAGE", "LATENT")
    RETURN_NAMES = ("frames", "latent")
    OUTPUT_TOOLTIPS = ("The video: the anchor frame(s) unchanged, then the new frames (num_frames + 1 for one "
                       "image), for CreateVideo → SaveVideo.",
                       "The video's latents, samples shaped [1, channels, frames, height/8, width/8].")
    FUNCTION = "sample"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "backbone": LINK("T2V_BACKBONE", "The video model (the one that encoded the anchor)."),
            "conditioning": LINK("T2V_CONDITIONING", "Prompt embeddings from T2VTextEncode (same backbone)."),
            "anchor": LINK("ANCHOR", "The start image or frames, from EncodeAnchorImage."),
            "num_frames": INT(16, 1, 100000, "New frames to generate after the anchor (any number; time grows "
                                             "linearly, memory only by the output frames). Wan: a multiple of 4 "
                                             "(each new latent frame is 4 video frames)."),
            "model_frames": INT(16, 2, 1024, "F, frames per model call: F − 1 queue frames + the new one. ModelScope "
                                             "was trained with 16; AnimateDiff takes at most 32; Wan 4k + 1 up to 81 "
                                             "(e.g. 21 = a queue of 5 latent frames + the new one)."),
            "steps": INT(10, 1, 999, "DDIM steps per new frame (paper: 10 with R 4, 50 with R 2)."),
            "guidance": FLOAT(9.0, 0.0, 50.0, "Classifier-free guidance scale (paper: 9).", step=0.1),
            "seed": SEED(),
        }, "optional": {
            "noise_init": LINK("NOISE_INIT", "From DDPMInvertQueue; unconnected = gaussian noise for each new frame."),
            "resample": LINK("RESAMPLE", "From ResampleStep; unconnected = no resampling (R 0)."),
            "latent_queue": ("BOOLEAN", {"default": False, "label_on": "latents (faster, deviation)",
                                         "label_off": "pixels (paper)",
                                         "tooltip": "Keep the queue as latents instead of pixels: skips one VAE "
                                                    "encode per frame, but is not the paper's method (which "
                                                    "decodes and re-encodes every new frame)."}),
            "guidance_2": GUIDANCE_2(),
        }, "hidden": HIDDEN}

    def sample(self, backbone, conditioning, anchor, num_frames, model_frames, steps, guidance, seed,
               noise_init=None, resample=None, latent_queue=False, guidance_2=-1.0):
        check_settings(num_frames, steps, model_frames)
        noise_init, resample = noise_init or NoiseInit(), resample or Resample()
        model = backbone.ready()
        progress, done = glue.Progress(ti2v_zero.model_calls(model, num_frames, steps, resample.rounds)), [0]

        def on_step(i, n):
            done[0] = i
            progress.update(i)

        def on_frame(index, frame):
            progress.frame(index, frame, anchor.frames + num_frames)
            progress.update(done[0], frame)

        video, latents = ti2v_zero.image_to_video(
            model, conditioning, anchor, num_frames=num_frames, model_frames=model_frames, steps=steps,
            guidance=guidance, guidance_2=low_noise_guidance(guidance_2), generator=generator(seed),
            noise_init=noise_init, resample=resample, latent_queue=latent_queue, host=glue.host(),
            on_step=on_step, on_frame=on_frame)
        return (video, latent_output(model, latents))
