"""Loaders for the single files ComfyUI users already keep in ComfyUI's own folders, one choice per file (as
ComfyUI's own UNETLoader / CLIPLoader / VAELoader / CheckpointLoaderSimple offer them). Both give the same
T2V_BACKBONE as LoadT2VBackbone's diffusers folders, so every sampler takes either."""
from __future__ import annotations

from ..core.loading import listings as model_files
from ..core.families.unet.backbone import TIMESTEP_GRIDS
from ..core.families.wan.expert_names import check_expert_files
from ..core.loading.parts import resolve_dtype
from . import comfy_glue as glue
from .backbone_nodes import CATEGORY, NONE, loaded, memory_inputs
from .inputs import COMBO, FLOAT, validates

DTYPE_TOOLTIP = ("Compute precision. auto = fp16 on a GPU (bf16 for Wan), fp32 on the CPU. An fp8 file is "
                 "dequantised to this precision when it is loaded.")


def _files(kind: str) -> list[str]:
    return list(model_files.single_files(glue.model_dirs(kind)))


def _file(name: str, kind: str, what: str):
    dirs = glue.model_dirs(kind)
    return model_files.resolve(name, model_files.single_files(dirs), what, dirs)


def _optional_file(name: str, kind: str, what: str):
    return None if name == NONE else _file(name, kind, what)


@validates()
class LoadWanModelFiles:
    DESCRIPTION = ("Loads Wan 2.1 / 2.2 text-to-video from ComfyUI's single files, the ones ComfyUI's own Wan "
                   "workflows use: the diffusion model (models/diffusion_models), the UMT5-XXL text encoder "
                   "(models/text_encoders: fp16, bf16 or fp8 scaled) and the VAE (models/vae). Wan 2.2 A14B is two "
                   "files: the high-noise expert as model, the low-noise one as model_2. The kind of each file is "
                   "read from its tensors; a file in the wrong slot is refused with where it belongs.")
    RETURN_TYPES = ("T2V_BACKBONE",)
    RETURN_NAMES = ("backbone",)
    OUTPUT_TOOLTIPS = ("The loaded Wan model, for the samplers, the text encoder node and the decoder.",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        models = _files("diffusion_models")
        return {"required": {
            "model": COMBO(models, "The Wan diffusion model (models/diffusion_models), e.g. "
                                   "wan2.1_t2v_1.3B_fp16.safetensors, wan2.1_t2v_14B_fp8_scaled.safetensors, "
                                   "wan2.2_ti2v_5B_fp16.safetensors, or Wan 2.2 A14B's high-noise expert "
                                   "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors (then choose model_2)."),
            "text_encoder": COMBO(_files("text_encoders"), "UMT5-XXL (models/text_encoders): "
                                  "umt5_xxl_fp16.safetensors or umt5_xxl_fp8_e4m3fn_scaled.safetensors. Its "
                                  "tokenizer is read from inside the file."),
            "vae": COMBO(_files("vae"), "The Wan VAE (models/vae): wan_2.1_vae.safetensors for Wan 2.1 and 2.2 "
                                        "A14B, wan2.2_vae.safetensors for Wan 2.2 TI2V 5B."),
            "dtype": COMBO(["auto", "fp16", "bf16", "fp32"], DTYPE_TOOLTIP, "auto"),
        }, "optional": {
            "model_2": COMBO([NONE] + models, "Wan 2.2 A14B only: the low-noise expert "
                             "(wan2.2_t2v_low_noise_14B_*.safetensors). It denoises below the model's boundary "
                             "(1000·σ < 875); 'none' for single-model Wan. Experts chosen the wrong way round "
                             "are refused by their names.", NONE),
            "flow_shift": FLOAT(0.0, 0.0, 100.0, "The flow-matching shift of the noise schedule; 0 = the model's "
                                "own (Wan 2.1: 3.0, the 480p value, 5.0 suits 720p; Wan 2.2 A14B: 12.0; Wan 2.2 "
                                "TI2V 5B: 5.0).", step=0.1),
            **memory_inputs(),
        }}

    def load(self, model, text_encoder, vae, dtype, model_2=NONE, flow_shift=0.0, **memory):
        from ..core.families.wan.files import HALF, load_wan_files
        if model_2 != NONE:  # Wan 2.2 A14B's experts the wrong way round, told by their names before anything loads
            check_expert_files(("model", model), ("model_2", model_2))
        files = (_file(model, "diffusion_models", "diffusion model"),
                 _file(text_encoder, "text_encoders", "text encoder"), _file(vae, "vae", "VAE"))
        second = _optional_file(model_2, "diffusion_models", "diffusion model")
        return loaded(lambda: load_wan_files(*files, resolve_dtype(dtype, glue.compute_device(), half=HALF),
                                             transformer_2=second, flow_shift=flow_shift or None), **memory)


class LoadAnimateDiffCheckpoint:
    DESCRIPTION = ("Loads a Stable Diffusion 1.5 checkpoint (one .safetensors file in models/checkpoints: UNet, VAE "
                   "and CLIP text encoder) with an AnimateDiff motion module (models/animatediff_models: v1, v2 or "
                   "v3), optionally with an IP-Adapter (models/ipadapter) and its CLIP image encoder "
                   "(models/clip_vision). Any SD1.5 fine-tune works; every tensor of each file must load.")
    RETURN_TYPES = ("T2V_BACKBONE",)
    RETURN_NAMES = ("backbone",)
    OUTPUT_TOOLTIPS = ("The AnimateDiff video model, for the samplers, the text encoder node and the decoder.",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "checkpoint": COMBO(_files("checkpoints"), "A Stable Diffusion 1.5 checkpoint (models/checkpoints), e.g. "
                                "v1-5-pruned-emaonly.safetensors or any SD1.5 fine-tune."),
            "motion_module": COMBO(_files("animatediff_models"), "AnimateDiff motion module "
                                   "(models/animatediff_models), e.g. mm_sd_v15_v2.safetensors or "
                                   "v3_sd15_mm.safetensors; its version is read from its tensors."),
            "dtype": COMBO(["auto", "fp16", "bf16", "fp32"], "Weight precision. auto = fp16 on a GPU, fp32 on the "
                           "CPU.", "auto"),
        }, "optional": {
            "ip_adapter": COMBO([NONE] + _files("ipadapter"), "IP-Adapter weights (models/ipadapter, e.g. "
                                "ip-adapter-plus_sd15.safetensors) adding image cross-attention.", NONE),
            "image_encoder": COMBO([NONE] + _files("clip_vision"), "The CLIP vision model the IP-Adapter was "
                                   "trained with (models/clip_vision; ViT-H for IP-Adapter Plus SD1.5).", NONE),
            "timestep_grid": COMBO(list(TIMESTEP_GRIDS), "The DDIM timestep grid: original = AnimateDiff's own "
                                   "(leading spacing, 25 steps visit 961 … 1); diffusers = linspace.", "original"),
            **memory_inputs(),
        }}

    def load(self, checkpoint, motion_module, dtype, ip_adapter=NONE, image_encoder=NONE, timestep_grid="original",
             **memory):
        from ..core.families.unet.sd15_checkpoint import load_sd15_checkpoint
        files = (_file(checkpoint, "checkpoints", "checkpoint"), _file(motion_module, "animatediff_models",
                                                                        "motion module"))
        ip = _optional_file(ip_adapter, "ipadapter", "IP-Adapter")
        encoder = _optional_file(image_encoder, "clip_vision", "CLIP vision model")
        return loaded(lambda: load_sd15_checkpoint(*files, ip_adapter=ip, image_encoder=encoder,
                                                   dtype=resolve_dtype(dtype, glue.compute_device()),
                                                   timestep_grid=timestep_grid,
                                                   tokenizer_dir=glue.clip_tokenizer_dir()),
                      **memory)
