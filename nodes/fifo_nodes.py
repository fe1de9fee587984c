"""FIFO-Diffusion nodes: unlimited-length video from a base clip, optionally image-embedding conditioned."""
from __future__ import annotations

import logging

from ..core.methods import fifo
from . import comfy_glue as glue
from .inputs import (BOOLEAN, FLOAT, GUIDANCE_2, HIDDEN, INT, LINK, SEED, STRING, generator, latent_output,
                     low_noise_guidance, validates, video_latent)

CATEGORY = "zero-shot video"
log = logging.getLogger(__name__)


def _window(window_frames, partitions):
    fifo.check_window_request(window_frames, partitions)


def _stream_prefix(stream_to_disk, filename_prefix):
    """A prefix the frames cannot be written under is refused before the base clip is sampled."""
    if stream_to_disk:
        fifo.output_base(glue.output_folder(), filename_prefix)


@validates(_window, _stream_prefix)
class FIFOQueueWithImageEmbed:
    DESCRIPTION = (
        "FIFO-Diffusion: any number of frames at constant memory. A queue of frames at rising noise levels is "
        "denoised diagonally (each frame its own timestep); every step one clean frame leaves the head and fresh "
        "noise enters the tail. Starts from a base clip that T2VSampler must have sampled with the SAME backbone, "
        "frames = window_frames and steps = window_frames × partitions (the steps cannot be checked from the "
        "latent: a different count gives a worse start). The first S − f emitted frames are warm-up and dropped. "
        "Image embedding (AnimateDiff + IP-Adapter): seed from the base clip's first frame, or connect image_embeds "
        "(image-to-video; sample the base clip from the same tokens via T2VConditioningAddImage). Frames are "
        "decoded one by one as they come out and can be written to disk as they come.")
    RETURN_TYPES = ("IMAGE", "LATENT")
    RETURN_NAMES = ("frames", "latent")
    OUTPUT_TOOLTIPS = (
        "The num_frames output frames [N, H, W, 3] (only the last one with keep_frames off).",
        "Their latents, samples [1, channels, N, h, w] (only the last one with keep_frames off).")
    FUNCTION = "generate"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "backbone": LINK("T2V_BACKBONE", "The video model (the same one that sampled the base clip)."),
            "conditioning": LINK("T2V_CONDITIONING", "Prompt embeddings from T2VTextEncode: the prompt from the first "
                                 "frame on (a prompt_schedule switches it later)."),
            "base_clip": LINK("LATENT", "The starting clip: T2VSampler output with frames = window_frames and steps = "
                              "window_frames × partitions (S). Its last frames lead into the video."),
            "num_frames": INT(256, 1, 1_000_000, "N, output frames. Any length: memory does not grow with it (except "
                              "the returned frames; see keep_frames). Wan: 4k + 1 (each latent frame after the "
                              "first is 4 video frames)."),
            "window_frames": INT(16, 1, 128, "f, frames per model call: the backbone's native clip length (ModelScope/"
                                 "Zeroscope 16–24, AnimateDiff 16, at most 32; Wan at most 81, and 4k + 1 with an "
                                 "even k + 1 under lookahead: 77). Must equal the base clip's frames."),
            "partitions": INT(4, 1, 64, "n: the queue spans S = f·n denoising steps (paper: 4). More = better "
                              "quality, proportionally slower (2n windows per frame with lookahead)."),
            "lookahead": BOOLEAN(True, "Lookahead denoising (paper default): half-overlapping windows, each writing "
                                 "back only its second half, so every frame is denoised with clean context ahead. "
                                 "Twice the model calls."),
            "eta": FLOAT(1.0, 0.0, 1.0, "DDIM stochasticity per step (FIFO's default 1.0; 0 = deterministic)."),
            "guidance": FLOAT(12.0, 0.0, 50.0, "Classifier-free guidance scale (paper: 12).", step=0.1),
            "seed": SEED(),
            "window_batch": INT(1, 1, 256, "Windows stacked into one model call (all windows of a step read the "
                                "same state, so the result does not depend on it). 1 = least memory (the order of "
                                "the official FIFO code); ≥ 2·partitions = one call per frame, fastest on a GPU "
                                "with memory to spare."),
        }, "optional": {
            "noise_init": LINK("NOISE_INIT", "From DDPMInvertQueue. ddpm_inversion (also when unconnected) = FIFO's "
                               "own queue init: base frames forward-noised to each slot's level. gaussian = every slot "
                               "plain noise, ignoring the base clip (ablation)."),
            "image_embeds": LINK("IMAGE_EMBEDS", "Image tokens from EncodeAnchorImage (image-to-video): they condition "
                                 "every step. Needs an AnimateDiff + IP-Adapter backbone."),
            "seed_image_from_base_clip": BOOLEAN(False, "Image-embedding seeding (the FIFO image-embedding "
                                                 "extension): the base clip's first frame is decoded and embedded "
                                                 "once and conditions the whole run, so the video keeps its look "
                                                 "(unconditional branch: a gray image). Needs an IP-Adapter "
                                                 "backbone; sample the base clip text-only."),
            "image_scale": FLOAT(1.0, 0.0, 2.0, "Strength of the image cross-attention during FIFO (0 = text only)."),
            "prompt_schedule": LINK("PROMPT_SCHEDULE", "Later prompts from T2VPromptSchedule nodes: each takes over "
                                    "the whole queue once its start frame is reached."),
            "stream_to_disk": BOOLEAN(False, "Write every frame as a PNG into output/<filename_prefix>_NNNNN/ the "
                                      "moment it is made, so an interrupted long run keeps its frames."),
            "filename_prefix": STRING("Output subfolder prefix for stream_to_disk.", "fifo/frames", multiline=False),
            "keep_frames": BOOLEAN(True, "Return all frames. Off (needs stream_to_disk): only the last frame is "
                                   "returned and memory stays flat however long the video."),
            "guidance_2": GUIDANCE_2(),
            "frames_per_level": INT(1, 1, 64, "c, latent frames that share each noise level: the queue then needs "
                                    "f·n / c levels instead of f·n, so a few-step distilled model (a 4-step LoRA: "
                                    "4 levels) drives FIFO, and each model call moves c frames out. 1 = the paper. "
                                    "It must divide the window's latent frames (half of them with lookahead); the "
                                    "base clip then takes f·n / c steps."),
        }, "hidden": HIDDEN}

    def generate(self, backbone, conditioning, base_clip, num_frames, window_frames, partitions, lookahead, eta,
                 guidance, seed, window_batch, noise_init=None, image_embeds=None, seed_image_from_base_clip=False,
                 image_scale=1.0, prompt_schedule=None, stream_to_disk=False, filename_prefix="fifo/frames",
                 keep_frames=True, guidance_2=-1.0, frames_per_level=1):
        if not keep_frames and not stream_to_disk:
            raise ValueError("keep_frames is off and stream_to_disk is off: the frames would be lost. Turn one on.")
        model = backbone.ready()
        latent = video_latent(model, base_clip, "base_clip")
        folder = fifo.stream_folder(glue.output_folder(), filename_prefix) if stream_to_disk else None
        note = fifo.unreached_prompts([start for start, _ in prompt_schedule or ()], num_frames)
        if note:
            log.warning(note)
            glue.progress_text(note)
        progress, preview = None, {}

        def on_step(k, total):
            nonlocal progress
            progress = progress or glue.Progress(total)
            progress.update(k, preview.pop("frame", None))

        def on_frame(i, image):
            preview.update(frame=image)
            if progress is not None:
                progress.frame(i, image, num_frames)

        frames, latents = fifo.long_video(
            model, conditioning, latent, num_frames=num_frames, window_frames=window_frames, partitions=partitions,
            lookahead=lookahead, frames_per_level=frames_per_level, eta=eta, guidance=guidance, guidance_2=low_noise_guidance(guidance_2),
            generator=generator(seed), window_batch=window_batch, noise_init=noise_init, image_tokens=image_embeds,
            seed_image_from_base_clip=seed_image_from_base_clip, image_scale=image_scale,
            prompt_schedule=tuple(prompt_schedule or ()), stream_to=folder, keep_frames=keep_frames,
            host=glue.host(), on_step=on_step, on_frame=on_frame)
        return frames, latent_output(model, latents)


class T2VPromptSchedule:
    DESCRIPTION = ("One entry of a multi-prompt schedule for FIFOQueueWithImageEmbed: from start_frame on, this "
                   "conditioning drives the whole queue. Chain several (each takes the previous one's schedule); the "
                   "FIFO node's own conditioning covers the frames before the first start.")
    RETURN_TYPES = ("PROMPT_SCHEDULE",)
    RETURN_NAMES = ("prompt_schedule",)
    OUTPUT_TOOLTIPS = ("The schedule so far, for the next T2VPromptSchedule or FIFOQueueWithImageEmbed.",)
    FUNCTION = "add"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "conditioning": LINK("T2V_CONDITIONING", "The prompt (T2VTextEncode) from start_frame on."),
            "start_frame": INT(64, 0, 1_000_000, "First output frame of this prompt. Frames already in the queue "
                                                 "finish under the new prompt, so the change shows gradually."),
        }, "optional": {
            "prompt_schedule": LINK("PROMPT_SCHEDULE", "Earlier entries (chain T2VPromptSchedule nodes)."),
        }}

    def add(self, conditioning, start_frame, prompt_schedule=None):
        prompts = tuple(prompt_schedule or ()) + ((int(start_frame), conditioning),)
        fifo.check_prompt_schedule(prompts)
        return (prompts,)


@validates()
class T2VConditioningAddImage:
    DESCRIPTION = ("Adds image tokens (EncodeAnchorImage's IMAGE_EMBEDS) to a conditioning, so that T2VSampler "
                   "samples FIFO's base clip from the same image as the FIFO run (image-to-video). Needs an "
                   "AnimateDiff + IP-Adapter backbone.")
    RETURN_TYPES = ("T2V_CONDITIONING",)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("The conditioning with the image tokens (gray image for the unconditional branch).",)
    FUNCTION = "add"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "conditioning": LINK("T2V_CONDITIONING", "Prompt embeddings from T2VTextEncode."),
            "image_embeds": LINK("IMAGE_EMBEDS", "Image tokens from EncodeAnchorImage."),
            "image_scale": FLOAT(1.0, 0.0, 2.0, "Strength of the image cross-attention (0 = text only)."),
        }}

    def add(self, conditioning, image_embeds, image_scale):
        if image_embeds is None:
            raise ValueError("image_embeds is empty: EncodeAnchorImage only makes image tokens on a backbone with "
                             "image cross-attention (load an IP-Adapter and its CLIP image encoder).")
        return (conditioning.with_image(image_embeds.tokens, image_embeds.uncond, image_scale),)
