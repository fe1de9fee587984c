"""I4VGen: reward-model loading, anchor generation-selection, NI-VSDS. Regeneration is T2VSampler."""
from __future__ import annotations

from ..core.loading import listings as model_files
from ..core.loading.parts import resolve_dtype
from ..core.methods import i4vgen
from ..core.methods.reward import load_reward_model
from ..core.validation import check_size
from . import comfy_glue as glue
from ..core.methods.t2v import NIVSDS_STREAM
from .inputs import (COMBO, FLOAT, GUIDANCE_2, INT, LINK, SEED, STRING, generator, latent_output, low_noise_guidance,
                     validates, video_latent)
from .t2v_nodes import CATEGORY, MAX_SIDE

REWARD_FOLDER = "models/reward_models"
PREVIEW_EVERY = 4
"""NI-VSDS previews frame 0 of the current latent every this many iterations (and at the last): one
single-frame VAE decode each, a few per run, so the preview costs next to nothing."""


def _progress():
    """An on_step callback that opens the progress bar on its first call, when the total is known."""
    state = {}

    def update(i, total, x):
        if "bar" not in state:
            state["bar"] = glue.Progress(total)
        state["bar"].update(i)
    return update


class LoadRewardModel:
    DESCRIPTION = ("Loads an image-text reward model for RewardSelectAnchor: a CLIP-family checkpoint folder in "
                   f"{REWARD_FOLDER} (config.json, model.safetensors, tokenizer files, preprocessor_config.json), "
                   "e.g. PickScore_v1 or openai/clip-vit-large-patch14. Candidates are ranked by CLIP score "
                   "(cosine similarity × the model's logit scale, as PickScore defines it). Safetensors only. "
                   "The model waits on the CPU and visits the GPU only while it scores.")
    RETURN_TYPES = ("REWARD_MODEL",)
    RETURN_NAMES = ("reward_model",)
    OUTPUT_TOOLTIPS = ("The reward model, for RewardSelectAnchor.",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        models = list(model_files.config_folders(glue.model_dirs("reward_models")))
        return {"required": {
            "model": COMBO(models, f"A CLIP model folder in {REWARD_FOLDER}: PickScore_v1 (human-preference CLIP-H; "
                                   "add the tokenizer and preprocessor_config.json of "
                                   "laion/CLIP-ViT-H-14-laion2B-s32B-b79K if the folder lacks them) or any "
                                   "transformers CLIP checkpoint."),
            "dtype": COMBO(["auto", "fp16", "bf16", "fp32"], "Weight precision. auto = fp16 on a GPU, fp32 on the CPU.",
                           "auto"),
        }}

    def load(self, model, dtype):
        dirs = glue.model_dirs("reward_models")
        path = model_files.resolve(model, model_files.config_folders(dirs), "reward model folder", dirs)
        return (load_reward_model(path, resolve_dtype(dtype, glue.compute_device())),)


@validates(check_size)
class RewardSelectAnchor:
    DESCRIPTION = ("I4VGen stage 1, generation-selection: samples N candidate images with the video model itself on "
                   "1-frame clips (candidate i starts from frame i's noise of the video this seed would give, same "
                   "grid, steps and guidance), scores them with the reward model against the prompt and keeps the "
                   "best. The anchor leaves as a still video latent (the candidate's own latent repeated over the "
                   "frames) for NIVSDSOptimize. With candidate images connected (from any image model, or one "
                   "user image for image-to-video) those are scored instead, and the best is encoded with the "
                   "video VAE.")
    RETURN_TYPES = ("LATENT", "IMAGE", "STRING", "INT")
    RETURN_NAMES = ("anchor", "candidates", "scores", "anchor_index")
    OUTPUT_TOOLTIPS = (
        "Still video latent [1, channels, frames, h, w]: every frame is the chosen candidate.",
        "All candidate images, in order (the anchor is at anchor_index).",
        "The reward score of every candidate, the anchor marked (connect to Preview Any to read it).",
        "Index of the chosen candidate (0-based).",
    )
    FUNCTION = "select"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "backbone": LINK("T2V_BACKBONE", "The video model; it also samples the candidate images."),
            "conditioning": LINK("T2V_CONDITIONING", "Prompt embeddings from T2VTextEncode: they guide the candidates, "
                                 "and the prompt's text is what the reward model scores against."),
            "reward_model": LINK("REWARD_MODEL", "From LoadRewardModel."),
            "frames": INT(16, 1, 1024, "Frames of the video the anchor will start (AnimateDiff: at most 32)."),
            "width": INT(512, 64, MAX_SIDE, "Width in pixels, a multiple of 8 (AnimateDiff 512, ModelScope 256). "
                                            "Connected candidate images must have this size.", step=8),
            "height": INT(512, 64, MAX_SIDE, "Height in pixels, a multiple of 8. Connected candidate images must "
                                             "have this size.", step=8),
            "steps": INT(25, 1, 999, "DDIM steps for each candidate: the video sampler's own grid."),
            "guidance": FLOAT(7.5, 0.0, 50.0, "Classifier-free guidance scale: the same as the video sampler's.",
                              step=0.1),
            "seed": SEED("Seed of the candidates' noise; the video sampler's seed makes candidate i its frame i's noise."),
            "num_candidates": INT(0, 0, 1024, "How many candidates to sample; 0 = one per frame (the paper's N = F). "
                                              "Ignored when candidate images are connected."),
        }, "optional": {
            "candidates": LINK("IMAGE", "Score these images instead of sampling (a batch from any image model, or "
                                        "one user image). They must be width × height: resize them first."),
            "guidance_2": GUIDANCE_2(),
        }}

    def select(self, backbone, conditioning, reward_model, frames, width, height, steps, guidance, seed,
               num_candidates, candidates=None, guidance_2=-1.0):
        if not conditioning.prompt:
            raise ValueError("This conditioning carries no prompt text for the reward model to score against: "
                             "connect the conditioning output of T2VTextEncode.")
        model = backbone.ready()
        device = glue.compute_device()
        selection = i4vgen.select_anchor(
            model, conditioning, lambda images: reward_model.score(images, conditioning.prompt, device),
            frames=frames, width=width, height=height, steps=steps, guidance=guidance,
            guidance_2=low_noise_guidance(guidance_2), num_candidates=num_candidates, generator=generator(seed),
            candidates=candidates, host=glue.host(), on_step=_progress())
        text = i4vgen.format_scores(selection)
        return {"ui": {"text": [text]},
                "result": (latent_output(model, selection.anchor), selection.images, text, selection.index)}


def _step_sizes(step_sizes):
    i4vgen.parse_step_sizes(step_sizes)


@validates(_step_sizes)
class NIVSDSOptimize:
    DESCRIPTION = ("I4VGen stage 2, noise-invariant video score distillation: turns a still video latent (from "
                   "RewardSelectAnchor) into a moving one. One noise sample is drawn from the seed and reused at "
                   "every iteration; K = int(steps·p) + 1 iterations walk down the sampler's own timesteps with the "
                   "closed-form update x ← x − α_k(1−ᾱ_t)(ε̂ − ε). Use the video sampler's steps and guidance. "
                   "Then regenerate with T2VSampler (latent connected, denoise p_re: 1.0 for AnimateDiff, 0.8 for "
                   "LaVie-like models). Bypass this node for the paper's 'w/o NI-VSDS' ablation. The preview shows "
                   f"frame 0 of the current latent every {PREVIEW_EVERY} iterations.")
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The optimised video latent, same shape as the input; regenerate it with T2VSampler.",)
    FUNCTION = "optimize"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "backbone": LINK("T2V_BACKBONE", "The video model."),
            "conditioning": LINK("T2V_CONDITIONING", "The prompt embeddings of the video (same negative prompt)."),
            "latent": LINK("LATENT", "A video latent [batch, channels, frames, h, w], usually RewardSelectAnchor's "
                                     "still anchor video."),
            "steps": INT(25, 1, 999, "The video sampler's step count: NI-VSDS walks down the same timestep grid."),
            "guidance": FLOAT(7.5, 0.0, 50.0, "Classifier-free guidance: the video sampler's value (not an SDS-style "
                                              "100).", step=0.1),
            "p": FLOAT(i4vgen.DEFAULT_P, 0.0, 1.0, "How far down the grid to go: int(steps·p) + 1 iterations (as "
                                                   "the official I4VGen code counts; the paper's 'stop at 0.4T' is "
                                                   "p = 0.6)."),
            "step_sizes": STRING("Comma-separated step sizes α_k of the iterations; the last one repeats. The "
                                 "official I4VGen code's 10,10,10,1 (AnimateDiff) moves the still image in the first "
                                 "steps. "
                                 f"Each from 0 to {i4vgen.MAX_STEP_SIZE:g}: a larger step throws the latent out of "
                                 "the range the VAE decodes (a blank or garbled video).",
                                 ",".join(f"{s:g}" for s in i4vgen.DEFAULT_STEP_SIZES), multiline=False),
            "seed": SEED("Seed of the fixed noise ε, drawn from a stream of its own: independent of the candidates' and "
                         "the regeneration's noise even when their nodes use the same seed."),
        }, "optional": {
            "guidance_2": GUIDANCE_2(),
        }}

    def optimize(self, backbone, conditioning, latent, steps, guidance, p, step_sizes, seed, guidance_2=-1.0):
        model = backbone.ready()
        samples = video_latent(model, latent, hint=" Connect RewardSelectAnchor's anchor.")
        progress = glue.Progress(i4vgen.nivsds_iterations(steps, p))

        def on_step(k, total, current):
            preview = None
            if k % PREVIEW_EVERY == 0 or k == total:
                preview = model.decode(current[:1, :, :1])[0]
            progress.update(k, preview)

        out = i4vgen.animate_anchor(model, conditioning, samples, steps=steps, guidance=guidance,
                                    guidance_2=low_noise_guidance(guidance_2), p=p, step_sizes=step_sizes,
                                    generator=generator(seed, NIVSDS_STREAM), host=glue.host(), on_step=on_step)
        return (latent_output(model, out),)
