"""Loading a video backbone and encoding prompts."""
from __future__ import annotations

from ..core.loading import listings as model_files
from ..core.families.unet.backbone import TIMESTEP_GRIDS
from ..core.families import folder_half, load_backbone
from ..core.loading.parts import resolve_dtype
from ..core.conditioning import encode_text
from ..core.memory_options import NONE as NO_OFFLOAD
from ..core.memory_options import (AUTO, DEFAULT, EXPERTS, OFFLOADS, PRECISIONS, VAE_PRECISIONS, apply_memory_options,
                                   check_memory_options)
from . import comfy_glue as glue
from .inputs import COMBO, LINK, STRING

NONE = "none"
CATEGORY = "zero-shot video"


def _options(options: dict) -> str:
    return " ".join(f"{name}: {text}" for name, text in options.items())


def memory_inputs() -> dict:
    """The optional inputs of every loader that fit a model to the GPU at hand (core.memory_options)."""
    return {
        "precision": COMBO(list(PRECISIONS), _options(PRECISIONS), DEFAULT),
        "offload": COMBO(list(OFFLOADS), _options(OFFLOADS), NO_OFFLOAD),
        "experts": COMBO(list(EXPERTS), _options(EXPERTS), AUTO),
        "vae_precision": COMBO(list(VAE_PRECISIONS), _options(VAE_PRECISIONS), DEFAULT),
    }


def loaded(load, precision: str = DEFAULT, offload: str = NO_OFFLOAD, experts: str = AUTO,
           vae_precision: str = DEFAULT):
    """The T2V_BACKBONE output of a loader: ``load()``'s backbone with its memory options (checked before it
    loads), handed to the model manager."""
    check_memory_options(precision, offload, experts, vae_precision)
    backbone = load()
    apply_memory_options(backbone, precision, offload, glue.compute_device(), experts, glue.free_memory,
                         vae_precision)
    return (glue.LoadedBackbone(backbone),)


def _motion_adapter_dirs():
    return glue.model_dirs("animatediff_models") + glue.model_dirs("diffusers")


class LoadT2VBackbone:
    DESCRIPTION = ("Loads a text-to-video diffusion model from ComfyUI's model folders: a Wan 2.1/2.2 or a "
                   "ModelScope / Zeroscope diffusers folder (models/diffusers), or a Stable Diffusion 1.5 diffusers folder plus an "
                   "AnimateDiff motion adapter (models/animatediff_models), optionally with an IP-Adapter "
                   "(models/ipadapter) and its CLIP image encoder (models/clip_vision). Safetensors only.")
    RETURN_TYPES = ("T2V_BACKBONE",)
    RETURN_NAMES = ("backbone",)
    OUTPUT_TOOLTIPS = ("The loaded video model, for the samplers, the text encoder node and the decoder.",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        models = list(model_files.diffusers_models(glue.model_dirs("diffusers")))
        adapters = list(model_files.motion_adapters(_motion_adapter_dirs()))
        ip_adapters = list(model_files.weight_files(glue.model_dirs("ipadapter")))
        encoders = list(model_files.weight_files(glue.model_dirs("clip_vision")))
        return {"required": {
            "model": COMBO(models, "A diffusers model folder in models/diffusers: Wan2.1-T2V-1.3B-Diffusers (or 14B), "
                                   "Wan2.2-T2V-A14B-Diffusers, Wan2.2-TI2V-5B-Diffusers, ModelScope "
                                   "text-to-video-ms-1.7b, Zeroscope v2, or a Stable Diffusion 1.5 folder (then "
                                   "choose a motion adapter)."),
            "motion_adapter": COMBO([NONE] + adapters, "AnimateDiff motion adapter (models/animatediff_models: a "
                                    "diffusers folder or a .safetensors file) for a Stable Diffusion 1.5 model; "
                                    "'none' for ModelScope/Zeroscope.", NONE),
            "dtype": COMBO(["auto", "fp16", "bf16", "fp32"], "Weight precision. auto = fp16 on a GPU (bf16 for Wan), "
                           "fp32 on the CPU.",
                           "auto"),
        }, "optional": {
            "ip_adapter": COMBO([NONE] + ip_adapters, "IP-Adapter weights (models/ipadapter, .safetensors; e.g. "
                                "ip-adapter-plus_sd15) adding image cross-attention to an AnimateDiff model.", NONE),
            "image_encoder": COMBO([NONE] + encoders, "The CLIP vision model the IP-Adapter was trained with "
                                   "(models/clip_vision; ViT-H for IP-Adapter Plus SD1.5).", NONE),
            "timestep_grid": COMBO(list(TIMESTEP_GRIDS), "The DDIM timestep grid. original = the grid of the "
                                   "family's own code (AnimateDiff and I4VGen: leading spacing whose last step lands "
                                   "on a clean estimate; 25 steps visit 961 … 1). diffusers = diffusers' AnimateDiff "
                                   "suggestion (linspace, 999 … 0; its final no-op step is skipped). ModelScope and "
                                   "Zeroscope use their leading grid either way.", "original"),
            **memory_inputs(),
        }}

    def load(self, model, motion_adapter, dtype, ip_adapter=NONE, image_encoder=NONE, timestep_grid="original",
             **memory):
        diffusers_dirs = glue.model_dirs("diffusers")
        path = model_files.resolve(model, model_files.diffusers_models(diffusers_dirs), "diffusers model folder",
                                   diffusers_dirs)

        def optional(name, kind, listing_of, dirs):
            return None if name == NONE else model_files.resolve(name, listing_of(dirs), kind, dirs)

        adapter = optional(motion_adapter, "motion adapter", model_files.motion_adapters, _motion_adapter_dirs())
        ip = optional(ip_adapter, "IP-Adapter", model_files.weight_files, glue.model_dirs("ipadapter"))
        encoder = optional(image_encoder, "CLIP vision model", model_files.weight_files, glue.model_dirs("clip_vision"))
        return loaded(lambda: load_backbone(path, motion_adapter=adapter, ip_adapter=ip, image_encoder=encoder,
                                            dtype=resolve_dtype(dtype, glue.compute_device(), folder_half(path)),
                                            timestep_grid=timestep_grid), **memory)


class T2VTextEncode:
    DESCRIPTION = ("Encodes a prompt and a negative prompt with the backbone's text encoder. The negative prompt is "
                   "the unconditional branch of classifier-free guidance; left empty it is the backbone's default (the "
                   "empty prompt, or Wan's official negative prompt on Wan). Prompts longer than the encoder takes "
                   "(77 tokens; Wan's UMT5: 512) are cut, and the log says what was dropped.")
    RETURN_TYPES = ("T2V_CONDITIONING",)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("Prompt and negative-prompt embeddings for this backbone's samplers.",)
    FUNCTION = "encode"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "backbone": LINK("T2V_BACKBONE", "The video model whose text encoder to use."),
            "prompt": STRING("What the video shows (at most 77 tokens are used; Wan: 512)."),
            "negative_prompt": STRING("What to steer away from; empty = the backbone's default (the plain "
                                      "unconditional branch; on Wan its official negative prompt)."),
        }}

    def encode(self, backbone, prompt, negative_prompt):
        return (encode_text(backbone.ready(), prompt, negative_prompt),)
