"""ComfyUI's own Wan MODEL / CLIP / VAE as the pack's backbone: every method node then runs on it.

A user keeps their graph (UNETLoader → LoraLoaderModelOnly → ModelSamplingSD3, CLIPLoader, VAELoader) and
connects its MODEL here; the pack holds no second copy of anything (``native/backbone.py`` says how each model
call goes through ComfyUI's own path).
"""
from __future__ import annotations

from . import comfy_glue as glue
from .inputs import COMBO, FLOAT, LINK, STRING, validates

CATEGORY = "zero-shot video"
BOUNDARY = 0.875  # Wan 2.2 A14B text-to-video's own switch: the low-noise expert below 1000·σ = 875


def scheduler_names() -> list[str]:
    if glue.IN_COMFYUI:
        import comfy.samplers
        return list(comfy.samplers.SCHEDULER_NAMES)
    return ["simple"]


class NativeLoaded:
    """What travels on a T2V_BACKBONE link for a native MODEL: ComfyUI's memory manager loads its models per call."""

    def __init__(self, backbone):
        self.backbone = backbone

    def ready(self):
        self.backbone.device = glue.compute_device()
        glue.keep_loaded(self.backbone.patchers())
        return self.backbone


@validates()
class WanModelBackbone:
    DESCRIPTION = ("Runs the pack's methods (T2V Sampler, FIFO-Diffusion, TI2V-Zero, I4VGen) on the Wan MODEL your "
                   "graph already has: UNETLoader (or a GGUF loader), your LoRAs (the lightx2v 4-step distill ones "
                   "too), ModelSamplingSD3's shift and any attention patch apply, and ComfyUI's memory manager "
                   "loads and swaps the models: nothing is loaded twice. Wan 2.1 1.3B / 14B, Wan 2.2 A14B (connect "
                   "the low-noise expert too), Wan 2.2 TI2V-5B, SkyReels-V2 T2V / DF.")
    RETURN_TYPES = ("T2V_BACKBONE",)
    OUTPUT_TOOLTIPS = ("The video model for the pack's nodes.",)
    FUNCTION = "wrap"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": LINK("MODEL", "A Wan text-to-video MODEL (for Wan 2.2 A14B: the high-noise expert), with "
                                   "whatever LoRAs, shift and patches you put on it."),
            "vae": LINK("VAE", "The Wan VAE of the same version: wan_2.1_vae for Wan 2.1 and A14B, wan2.2_vae for "
                               "TI2V-5B."),
        }, "optional": {
            "clip": LINK("CLIP", "Your Wan text encoder (CLIPLoader umt5_xxl_*, type wan), so T2V Text Encode and "
                                 "T2V Prompt Schedule can encode prompts. Not needed when the conditioning comes "
                                 "from CLIPTextEncode through T2V Conditioning from CONDITIONING."),
            "model_low_noise": LINK("MODEL", "Wan 2.2 A14B only: the low-noise expert, with its own LoRA. Experts "
                                             "or LoRAs wired the wrong way round are refused where their file "
                                             "names say which expert they are (…high_noise… / …low_noise…)."),
            "boundary": FLOAT(BOUNDARY, 0.0, 1.0, "Wan 2.2 A14B: levels with 1000·σ at or above boundary·1000 go to "
                              "the high-noise expert, the rest to the low-noise one (0.875 is Wan 2.2 T2V's own; "
                              "with shift 5 and 4 steps it splits them 2 + 2 as ComfyUI's template does).",
                              step=0.005),
            "scheduler": COMBO(scheduler_names(), "ComfyUI's scheduler for the pack's sampling grid (T2V Sampler, "
                               "TI2V-Zero, I4VGen, FIFO's levels): simple is what ComfyUI's Wan templates use.",
                               "simple"),
        }, "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"}}

    def wrap(self, model, vae, clip=None, model_low_noise=None, boundary=BOUNDARY, scheduler="simple", prompt=None,
             unique_id=None):
        from .native.backbone import NativeWanBackbone
        from .native.expert_wiring import check_expert_wiring
        check_expert_wiring(prompt, unique_id)  # the graph's file names: MODELs carry none
        return (NativeLoaded(NativeWanBackbone(model, vae, clip=clip, model_2=model_low_noise, boundary=boundary,
                                               scheduler=scheduler)),)


class T2VConditioningFromNative:
    DESCRIPTION = ("Turns ComfyUI CONDITIONING (CLIPTextEncode with your Wan CLIP) into the pack's prompt "
                   "conditioning, for a backbone from Wan MODEL → T2V Backbone.")
    RETURN_TYPES = ("T2V_CONDITIONING",)
    OUTPUT_TOOLTIPS = ("Prompt and negative prompt embeddings for the pack's samplers.",)
    FUNCTION = "convert"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "backbone": LINK("T2V_BACKBONE", "The backbone from Wan MODEL → T2V Backbone."),
            "positive": LINK("CONDITIONING", "The prompt, from CLIPTextEncode."),
            "negative": LINK("CONDITIONING", "The negative prompt, from CLIPTextEncode (Wan's own default "
                                             "negative prompt is what its templates use)."),
        }, "optional": {
            "prompt": STRING("The prompt's text, for I4VGen's reward model (it scores candidate images against "
                             "it); leave empty otherwise.", multiline=True),
        }}

    def convert(self, backbone, positive, negative, prompt=""):
        model = backbone.ready()
        return (model.conditioning_from_host(positive, negative, prompt),)

