"""Loading a text-to-video backbone from local folders: the family is read from the files.

Two families, both as real diffusers model classes:
- ``modelscope``: a ``UNet3DConditionModel`` pipeline folder (ModelScope T2V 1.7B, Zeroscope v2);
- ``animatediff``: a Stable Diffusion 1.5 folder plus a ``MotionAdapter`` → ``UNetMotionModel``
  (or a saved AnimateDiff folder whose UNet already is one), optionally with an IP-Adapter and its
  CLIP image encoder for image cross-attention.

Only safetensors, only local files, never remote code: a folder that holds only pickled weights is
refused with the reason, before anything is read.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .model_file_checks import (ModelFileError, check_model_fits, check_safetensors, loading, read_json,
                                require_safetensors)

log = logging.getLogger(__name__)

# DDIM tables per family (DIFFUSERS.md): the SD1.5 folder's own PNDM config is not AnimateDiff's. AnimateDiff
# follows the original AnimateDiff code (and I4VGen on it): leading grid, the last step lands on ᾱ = 1 (a clean
# x̂0; 25 steps visit 961 … 1). diffusers' AnimateDiff docs suggest linspace without a final alpha of 1, whose
# last step 0 → ᾱ_0 changes nothing: TIMESTEP_GRIDS["diffusers"] keeps it reachable.
FAMILY_SCHEDULER = {
    "modelscope": {"beta_schedule": "scaled_linear", "timestep_spacing": "leading", "set_alpha_to_one": False},
    "animatediff": {"beta_schedule": "linear", "timestep_spacing": "leading", "set_alpha_to_one": True},
}
TIMESTEP_GRIDS = {"original": {}, "diffusers": {"animatediff": {"timestep_spacing": "linspace",
                                                                "set_alpha_to_one": False}}}
SHARED_SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1, "clip_sample": False}
UNET_FAMILY = {"UNet3DConditionModel": "modelscope", "UNetMotionModel": "animatediff",
               "UNet2DConditionModel": "sd15"}


class BackboneModules(nn.Module):
    """Plain module holder, so a model manager can move the diffusers parts as one unit."""

    def __init__(self, **modules):
        super().__init__()
        for name, module in modules.items():
            if module is not None:
                self.add_module(name, module)


class VideoBackbone:
    """What every method needs of a backbone family, whatever its architecture.

    Methods work in *latent frames*; users speak *video frames*. A family maps one to the other
    (:meth:`latent_frames`, :meth:`video_frames`), runs its network on both CFG branches in one call
    (:meth:`predict`), embeds text (:meth:`embed_text`), and encodes and decodes pixels, including a
    decoder that streams one continuous video latent frame by latent frame (:meth:`stream_decoder`).
    """

    name: str
    family: str
    schedule: object
    dtype: torch.dtype
    device: torch.device
    default_negative_prompt: str = ""

    def to(self, device: torch.device) -> "VideoBackbone":
        self.modules.to(device)
        self.device = torch.device(device)
        return self

    # video frames ↔ latent frames: one latent frame per video frame unless a family says otherwise
    def latent_frames(self, video_frames: int) -> int:
        return video_frames

    def video_frames(self, latent_frames: int) -> int:
        return latent_frames

    def check_video_frames(self, frames: int, what: str = "frames") -> None:
        """Refuse a video-frame count the VAE cannot represent (only Wan's causal VAE has such counts)."""

    def guidance_scale(self, t, like: torch.Tensor, guidance: float, guidance_2: float | None):
        """The guidance scale for level(s) ``t``: one number, unless a family switches experts by level."""
        return guidance

    def latent_index(self, video_frame: int) -> int:
        """The latent frame that holds video frame ``video_frame``."""
        return video_frame

    def stream_decoder(self, out_device: torch.device | str = "cpu"):
        """A callable turning the next latent frames ``[1, C, k, h, w]`` of one video into its IMAGE frames."""
        return lambda latents: self.decode(latents, chunk=1, out_device=out_device)

    def still_video(self, latent: torch.Tensor, latent_frames: int) -> torch.Tensor:
        """The latent ``[1, C, F, h, w]`` of a still video showing the one-frame latent ``[1, C, 1, h, w]``
        (I4VGen's static anchor video, TI2V-Zero's repeated queue): its frame repeated, for a per-frame VAE."""
        from .i4vgen import static_video
        return static_video(latent, latent_frames)


@dataclass
class Backbone(VideoBackbone):
    """The 2023 ε-prediction video UNets (ModelScope/Zeroscope, AnimateDiff) with an SD image VAE."""

    name: str
    family: str  # "modelscope" | "animatediff"
    unet: nn.Module
    vae: nn.Module
    text_encoder: nn.Module
    tokenizer: object
    scheduler: object  # the diffusers DDIMScheduler the tables come from
    dtype: torch.dtype
    image_encoder: nn.Module | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self):
        from . import per_frame_timesteps
        from .schedule import Schedule
        self.schedule = Schedule.from_scheduler(self.scheduler)
        self.modules = BackboneModules(unet=self.unet, vae=self.vae, text_encoder=self.text_encoder,
                                       image_encoder=self.image_encoder)
        self.modules.eval().requires_grad_(False)
        per_frame_timesteps.install(self.unet)

    @property
    def max_frames(self) -> int | None:
        """Frames one UNet call can take (AnimateDiff's motion modules have a positional table)."""
        if self.family == "animatediff":
            return int(self.unet.config.get("motion_max_seq_length", 32))
        return None

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def latent_shape(self, frames: int, width: int, height: int) -> tuple[int, int, int, int, int]:
        """``[1, C, F, h, w]`` of a ``width`` × ``height`` video; the sides must be whole VAE blocks."""
        factor = self.vae_scale_factor
        if width % factor or height % factor:
            raise ValueError(f"{width}×{height} is not a whole number of this backbone's {factor}×{factor}-pixel VAE "
                             f"blocks: make width and height multiples of {factor}.")
        return (1, int(self.unet.config.in_channels), frames, height // factor, width // factor)

    @property
    def channels(self) -> int:
        return int(self.unet.config.in_channels)

    @property
    def latent_multiple(self) -> int:
        """How much the UNet shrinks a latent side: latent sides must be multiples of this."""
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def latent_scale(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def native_size(self) -> int:
        """The square side the UNet was configured for, in pixels (its sample_size × the VAE factor)."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def has_image_attention(self) -> bool:
        return getattr(self.unet, "encoder_hid_proj", None) is not None

    def embed_text(self, text: str) -> tuple[torch.Tensor, str | None]:
        from .conditioning import clip_text_embeddings
        return clip_text_embeddings(self.tokenizer, self.text_encoder, text)

    def predict(self, x: torch.Tensor, t, texts: list[torch.Tensor], cond) -> list[torch.Tensor]:
        from .unet_call import predict_unet
        return predict_unet(self, x, t, texts, cond)

    def encode(self, pixels: torch.Tensor, chunk: int | None = None, check=None) -> torch.Tensor:
        """``check`` (the host's interrupt check) runs before every VAE block and layer."""
        from . import vae
        from .block_checks import checked_blocks
        with checked_blocks([self.vae], check):
            return vae.encode_pixels(self, pixels, chunk or vae.DEFAULT_CHUNK)

    def decode(self, latents: torch.Tensor, chunk: int | None = None, out_device: torch.device | str = "cpu",
               check=None, free_memory=None) -> torch.Tensor:
        """``check`` (the host's interrupt check) runs before every VAE block and layer; with
        ``free_memory(device, needed)`` a decode that cannot fit is refused before it starts
        (``memory_estimate.check_decode``)."""
        from . import vae
        from .block_checks import checked_blocks
        from .memory_estimate import check_decode
        chunk = chunk or vae.DEFAULT_CHUNK
        check_decode(self, latents.shape, chunk, free_memory, out_device)
        with checked_blocks([self.vae], check):
            return vae.decode_frames(self, latents, chunk, out_device)


# --- file checks ---------------------------------------------------------------------------------
def detect_family(model_dir: Path) -> str:
    """"modelscope", "animatediff", "wan" or "sd15" (an SD1.5 folder that still needs a motion adapter)."""
    from .wan import is_wan_folder
    read_json(model_dir / "model_index.json")
    transformer_config = model_dir / "transformer" / "config.json"
    if transformer_config.is_file():
        read_json(transformer_config)  # a damaged one is named here, not mistaken for a folder without a UNet
    if is_wan_folder(model_dir):
        return "wan"
    unet_class = read_json(model_dir / "unet" / "config.json").get("_class_name")
    family = UNET_FAMILY.get(unet_class)
    if family is None:
        raise ModelFileError(
            f"'{model_dir.name}' has a {unet_class}; supported are ModelScope/Zeroscope (UNet3DConditionModel), "
            "Stable Diffusion 1.5 (UNet2DConditionModel) with an AnimateDiff motion adapter, and Wan 2.1/2.2 "
            "(WanTransformer3DModel).")
    return family


# --- component loaders -------------------------------------------------------------------------
_LOCAL = {"local_files_only": True}


def _checked_folder(cls, folder: Path, dtype: torch.dtype, what: str) -> None:
    """Every file of a model part whole, and its config's model the shape of its weights and within memory."""
    entries = require_safetensors(folder, what)
    found = read_json(folder / "config.json").get("_class_name")
    if found is not None and found != cls.__name__:
        raise ModelFileError(f"{what} in '{folder}' is a {found}, but this model needs a {cls.__name__} there: the "
                             f"folder mixes parts of different models. Re-download '{folder.parent.name}' whole.")
    with loading(folder, what):
        check_model_fits(cls, folder, entries, dtype, what)


def _diffusers_part(cls, folder: Path, dtype: torch.dtype, what: str):
    _checked_folder(cls, folder, dtype, what)
    with loading(folder, what):
        return cls.from_pretrained(folder, use_safetensors=True, torch_dtype=dtype, **_LOCAL)


def transformers_dtype(dtype: torch.dtype) -> dict:
    """The dtype keyword of transformers' ``from_pretrained``: 4.56 renamed ``torch_dtype`` to ``dtype``, and the
    releases before it hand an unknown ``dtype`` on to the model's constructor, which raises."""
    import transformers
    renamed = tuple(int(part) for part in transformers.__version__.split(".")[:2]) >= (4, 56)
    return {"dtype" if renamed else "torch_dtype": dtype}


def _transformers_part(cls, folder: Path, dtype: torch.dtype, what: str):
    _checked_folder(cls, folder, dtype, what)
    with loading(folder, what):
        return cls.from_pretrained(folder, use_safetensors=True, trust_remote_code=False,
                                   **transformers_dtype(dtype), **_LOCAL)


def load_tokenizer(cls, folder: Path, what: str):
    """A tokenizer folder, its JSON files checked first (a damaged one is named, not a parser position)."""
    for config in sorted(Path(folder).glob("*.json")):
        read_json(config)
    with loading(folder, what):
        return cls.from_pretrained(folder, **_LOCAL)


def family_scheduler(family: str, timestep_grid: str = "original", config: dict | None = None):
    """The family's DDIM scheduler over a folder's scheduler ``config``; ``timestep_grid`` "original" (the
    family's reference code) or "diffusers" (diffusers' own suggestion, where it differs: AnimateDiff's
    linspace grid)."""
    from diffusers import DDIMScheduler
    if timestep_grid not in TIMESTEP_GRIDS:
        raise ValueError(f"timestep_grid must be one of {', '.join(TIMESTEP_GRIDS)}; got '{timestep_grid}'")
    overrides = {**SHARED_SCHEDULER, **FAMILY_SCHEDULER[family], **TIMESTEP_GRIDS[timestep_grid].get(family, {})}
    return DDIMScheduler.from_config({k: v for k, v in (config or {}).items() if not k.startswith("_")}, **overrides)


def load_scheduler(model_dir: Path, family: str, timestep_grid: str = "original"):
    config = read_json(model_dir / "scheduler" / "scheduler_config.json")
    if config.get("prediction_type", "epsilon") != "epsilon":
        raise ModelFileError(f"'{model_dir.name}' predicts '{config['prediction_type']}'; only epsilon-prediction "
                             "backbones are supported.")
    with loading(model_dir / "scheduler", "The scheduler"):
        return family_scheduler(family, timestep_grid, config)


def load_motion_adapter(path: Path, dtype: torch.dtype):
    """A diffusers MotionAdapter folder or a single .safetensors motion module, every tensor from the file
    (see ``motion_module``: the layout of a single file is read from its own tensors)."""
    from .motion_module import load_motion_adapter as load_strictly
    return load_strictly(path, dtype)


def load_image_encoder(path: Path, dtype: torch.dtype):
    """A CLIP vision tower: a transformers folder, or a single .safetensors file (ComfyUI's clip_vision
    layout) whose configuration is read off its tensor shapes (heads = width / 64, as in every CLIP ViT)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    if path.is_dir():
        return _transformers_part(CLIPVisionModelWithProjection, path, dtype, "The image encoder")
    if path.suffix != ".safetensors":
        raise ModelFileError(f"Image encoder '{path.name}' is not a .safetensors file.")
    from safetensors.torch import load_file
    check_safetensors(path)
    with loading(path, "The image encoder"):
        state = load_file(str(path))
    try:
        patch = state["vision_model.embeddings.patch_embedding.weight"]
        positions = state["vision_model.embeddings.position_embedding.weight"].shape[0]
        layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("vision_model.encoder.layers."))
        hidden = patch.shape[0]
        config = CLIPVisionConfig(
            hidden_size=hidden, intermediate_size=state["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
            num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64), patch_size=patch.shape[-1],
            image_size=int(round((positions - 1) ** 0.5)) * patch.shape[-1],
            projection_dim=state["visual_projection.weight"].shape[0])
    except KeyError as missing:
        raise ModelFileError(f"'{path.name}' is not a CLIP vision model in the transformers layout "
                             f"(no tensor {missing}).") from None
    model = CLIPVisionModelWithProjection(config)
    model.load_state_dict(state, strict=False)
    return model.to(dtype)


def _attach_ip_adapter(unet, vae, text_encoder, tokenizer, scheduler, ip_path: Path):
    """Loads IP-Adapter weights into ``unet`` through diffusers' public pipeline loader."""
    from diffusers import AnimateDiffPipeline
    if ip_path.suffix != ".safetensors":
        raise ModelFileError(f"IP-Adapter '{ip_path.name}' is not a .safetensors file; use the safetensors release.")
    check_safetensors(ip_path)
    pipe = AnimateDiffPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                               motion_adapter=None, scheduler=scheduler)
    with loading(ip_path, "The IP-Adapter"):
        pipe.load_ip_adapter(str(ip_path.parent), subfolder="", weight_name=ip_path.name, image_encoder_folder=None,
                             local_files_only=True)


def _with_motion(unet2d, adapter, adapter_path: Path, model_dir: Path, dtype: torch.dtype):
    """The UNetMotionModel (in ``dtype``) of an SD UNet and a motion adapter, refused with the reason when they do
    not fit."""
    from diffusers import UNetMotionModel
    widths, needed = list(adapter.config.block_out_channels), list(unet2d.config.block_out_channels)
    fit = (f"Choose a motion adapter made for '{model_dir.name}' (SD1.5 motion modules for SD1.5 models; SDXL ones "
           "for SDXL models).")
    if widths != needed:
        raise ModelFileError(f"Motion adapter '{adapter_path.name}' is made for a UNet with block widths {widths}, but "
                             f"the UNet of '{model_dir.name}' has {needed}: they do not fit together. {fit}")
    with loading(adapter_path, "The motion adapter", fix=f"It does not fit the UNet of '{model_dir.name}'. {fit}"):
        unet = UNetMotionModel.from_unet2d(unet2d, adapter)
    return unet if unet.dtype == dtype else unet.to(dtype)


def resolve_dtype(name: str, device: torch.device, half: torch.dtype = torch.float16) -> torch.dtype:
    """``auto``: ``half`` on a GPU (the 16-bit type the family's weights were made in), float32 on the CPU."""
    if name == "auto":
        return half if torch.device(device).type == "cuda" else torch.float32
    table = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if name not in table:
        raise ValueError(f"dtype must be auto, fp16, bf16 or fp32; got '{name}'")
    return table[name]


def folder_half(model_dir: str | Path) -> torch.dtype:
    """The 16-bit type a diffusers folder's ``auto`` dtype takes on a GPU: bf16 for Wan, whose own code and
    released weights are bf16 (as for its single files, ``wan_files.HALF``), fp16 for the UNet families."""
    from .wan import is_wan_folder
    from .wan_files import HALF
    return HALF if is_wan_folder(Path(model_dir)) else torch.float16


def load_backbone(model_dir: str | Path, *, motion_adapter: str | Path | None = None,
                  ip_adapter: str | Path | None = None, image_encoder: str | Path | None = None,
                  dtype: torch.dtype = torch.float32, timestep_grid: str = "original") -> VideoBackbone:
    from diffusers import AutoencoderKL, UNet2DConditionModel, UNet3DConditionModel, UNetMotionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    model_dir = Path(model_dir)
    family = detect_family(model_dir)
    if family == "wan":
        if motion_adapter or ip_adapter or image_encoder:
            raise ModelFileError(f"'{model_dir.name}' is a Wan model: motion adapters and IP-Adapters only apply to "
                                 "Stable Diffusion 1.5 folders. Set them to 'none'.")
        from .wan import load_wan
        return load_wan(model_dir, dtype)
    if family == "sd15" and motion_adapter is None:
        raise ModelFileError(f"'{model_dir.name}' is a Stable Diffusion 1.5 folder: choose an AnimateDiff motion "
                             "adapter to turn it into a video model.")
    if family == "modelscope" and (motion_adapter or ip_adapter or image_encoder):
        raise ModelFileError(f"'{model_dir.name}' is a ModelScope/Zeroscope model: motion adapters and IP-Adapters "
                             "only apply to Stable Diffusion 1.5 folders. Set them to 'none'.")
    check_ip_pair(ip_adapter, image_encoder)
    tokenizer = load_tokenizer(CLIPTokenizer, model_dir / "tokenizer", "The tokenizer")
    text_encoder = _transformers_part(CLIPTextModel, model_dir / "text_encoder", dtype, "The text encoder")
    vae = _diffusers_part(AutoencoderKL, model_dir / "vae", dtype, "The VAE")
    unet_dir = model_dir / "unet"
    if family == "modelscope":
        unet = _diffusers_part(UNet3DConditionModel, unet_dir, dtype, "The UNet")
    elif family == "animatediff" and motion_adapter is None:
        unet = _diffusers_part(UNetMotionModel, unet_dir, dtype, "The UNet")
    else:
        adapter = load_motion_adapter(Path(motion_adapter), dtype)
        unet2d = _diffusers_part(UNet2DConditionModel, unet_dir, dtype, "The UNet")
        unet = _with_motion(unet2d, adapter, Path(motion_adapter), model_dir, dtype)
        del unet2d
        family = "animatediff"
    scheduler = load_scheduler(model_dir, family, timestep_grid)
    return assemble_backbone(model_dir.name, family, unet, vae, text_encoder, tokenizer, scheduler, dtype,
                             ip_adapter, image_encoder)


def check_ip_pair(ip_adapter, image_encoder) -> None:
    if (ip_adapter is None) != (image_encoder is None):
        raise ModelFileError("An IP-Adapter needs its CLIP image encoder (models/clip_vision) and vice versa: "
                             "choose both or neither.")


def assemble_backbone(name: str, family: str, unet, vae, text_encoder, tokenizer, scheduler, dtype: torch.dtype,
                      ip_adapter: str | Path | None = None, image_encoder: str | Path | None = None) -> Backbone:
    """The loaded parts as one Backbone, whichever files they came from (a folder or ComfyUI's single files),
    with the IP-Adapter attached and its image encoder loaded when given."""
    encoder = None
    if ip_adapter is not None:
        _attach_ip_adapter(unet, vae, text_encoder, tokenizer, scheduler, Path(ip_adapter))
        encoder = load_image_encoder(Path(image_encoder), dtype)
        unet.encoder_hid_proj.to(dtype)
    return Backbone(name=name, family=family, unet=unet, vae=vae, text_encoder=text_encoder,
                    tokenizer=tokenizer, scheduler=scheduler, dtype=dtype, image_encoder=encoder)
