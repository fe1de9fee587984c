"""Plain text-to-video sampling and chunked decoding."""
from __future__ import annotations

from ..core.methods.t2v import FROM_LATENT_STREAM, GRIDS, text_to_video
from ..core.solvers import SAMPLERS
from ..core.validation import check_size
from . import comfy_glue as glue
from .inputs import (COMBO, FLOAT, GUIDANCE_2, INT, LINK, SEED, generator, latent_output, low_noise_guidance,
                     validates, video_latent)

CATEGORY = "zero-shot video"
MAX_SIDE = 4096


@validates(check_size)
class T2VSampler:
    DESCRIPTION = ("Plain fixed-length text-to-video sampling (euler / DDIM, or uni_pc). From noise (seed), or, with a latent connected, "
                   "SDEdit-style from that latent with a denoise strength: min(int(steps·denoise), steps) steps from "
                   "the matching noise level (denoise 1 starts at the first grid step, not from pure noise; "
                   "denoise 0 returns the latent unchanged). The baseline, FIFO's base clip and I4VGen's "
                   "regeneration.")
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("Video latent, samples shaped [batch, channels, frames, height/8, width/8].",)
    FUNCTION = "sample"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "backbone": LINK("T2V_BACKBONE", "The video model."),
            "conditioning": LINK("T2V_CONDITIONING", "Prompt embeddings from T2VTextEncode (same backbone)."),
            "frames": INT(16, 1, 1024, "Frames to generate (AnimateDiff: at most 32; Wan: 4k + 1, at most 81, or "
                                       "121 for Wan 2.2 TI2V-5B). Ignored when a latent is connected."),
            "width": INT(256, 64, MAX_SIDE, "Width in pixels, a multiple of 8 (ModelScope 256, Zeroscope 576, "
                                            "AnimateDiff 512). Ignored when a latent is connected.", step=8),
            "height": INT(256, 64, MAX_SIDE, "Height in pixels, a multiple of 8. Ignored when a latent is connected.",
                          step=8),
            "steps": INT(25, 1, 999, "Sampling steps over the backbone's own timestep grid (a Wan MODEL: its "
                                     "scheduler's)."),
            "guidance": FLOAT(9.0, 0.0, 50.0, "Classifier-free guidance scale (1 = prompt only, no negative branch)."
                              , step=0.1),
            "eta": FLOAT(0.0, 0.0, 1.0, "DDIM stochasticity: 0 deterministic DDIM, 1 DDPM-like."),
            "seed": SEED("Seed of every random draw. From a connected latent the noise comes from a stream of its own, "
                         "so it is independent of a RewardSelectAnchor or NIVSDSOptimize with the same seed."),
        }, "optional": {
            "latent": LINK("LATENT", "Start from this video latent instead of noise (SDEdit / I4VGen regeneration)."),
            "denoise": FLOAT(1.0, 0.0, 1.0, "With a latent: how much of the schedule to re-run (0 = unchanged)."),
            "grid": COMBO(list(GRIDS), "Timestep grid. backbone = the model's own sampler grid. fifo = "
                          "FIFO-Diffusion's grid of steps levels (round(linspace(0, 999, steps)) on ε-models), each "
                          "stepping to the next, as the official FIFO code samples its base clip: use it with steps = "
                          "window_frames × partitions for a FIFOQueueWithImageEmbed base clip (steps − 1 model calls: "
                          "that code's last step changes nothing).", "backbone"),
            "guidance_2": GUIDANCE_2(),
            "sampler": COMBO(list(SAMPLERS), "euler: the pack's own steps (DDIM on ModelScope / AnimateDiff, Euler "
                             "on Wan; the only one with eta and the fifo grid). uni_pc: the multistep solver Wan's "
                             "own code and ComfyUI's Wan templates use, good in fewer steps: on a Wan MODEL it is "
                             "KSampler's uni_pc on your scheduler's levels, on the pack's own backbones diffusers' "
                             "UniPC as the model folder configures it.", "euler"),
        }}

    def sample(self, backbone, conditioning, frames, width, height, steps, guidance, eta, seed, latent=None,
               denoise=1.0, grid="backbone", guidance_2=-1.0, sampler="euler"):
        model = backbone.ready()
        init = None if latent is None else video_latent(model, latent)
        progress = glue.Progress(steps)
        out = text_to_video(model, conditioning, frames=frames, width=width, height=height, steps=steps,
                            guidance=guidance, guidance_2=low_noise_guidance(guidance_2), eta=eta,
                            generator=generator(seed, None if latent is None else FROM_LATENT_STREAM), latent=init,
                            denoise=denoise, grid=grid, sampler=sampler, host=glue.host(),
                            on_step=lambda i, n, x: progress.update(i))
        return (latent_output(model, out),)


class DecodeVideoLatent:
    DESCRIPTION = ("Decodes a video latent to IMAGE frames on the CPU, a few frames at a time so memory does not "
                   "grow with the clip's length. Feed the frames to CreateVideo → SaveVideo.")
    RETURN_TYPES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("Frames [frames, height, width, 3] in 0..1 (several clips are concatenated).",)
    FUNCTION = "decode"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "backbone": LINK("T2V_BACKBONE", "The video model whose VAE made the latent."),
            "latent": LINK("LATENT", "A video latent ([batch, channels, frames, h, w])."),
            "chunk": INT(4, 1, 64, "Frames decoded per VAE call: smaller uses less memory, same result."),
        }}

    def decode(self, backbone, latent, chunk):
        model = backbone.ready()
        samples = video_latent(model, latent, hint=" Use ComfyUI's VAEDecode for image latents.")
        return (model.decode(samples, chunk, glue.output_device(), check=glue.check_interrupt,
                             free_memory=glue.free_memory),)
