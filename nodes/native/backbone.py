"""ComfyUI's own Wan MODEL (UNETLoader, LoRAs, ModelSamplingSD3, GGUF…) as one more backbone family.

Everything the MODEL carries applies because every model call goes through ComfyUI's own path:
``comfy.samplers.calc_cond_batch`` → ``BaseModel.apply_model`` with the MODEL's ``model_options`` (its
``transformer_options``: attention overrides, wrappers, patches), on the weights ComfyUI's memory manager has
patched (LoRA, fp8, GGUF) and loaded. The schedule is the MODEL's own ``model_sampling`` (its shift) and the
sampling grid ComfyUI's scheduler of the user's choice makes.

Per-frame levels: ``apply_model`` takes one σ per clip, but the Wan network embeds one timestep per latent frame
(a ``[B, F]`` timestep is exact, see docs/NATIVE.md). A call whose frames share one level passes that σ as
KSampler does; a call with a level per frame passes σ = 1 (where ComfyUI's flow arithmetic returns x − v, so v
is read back exactly) and a diffusion-model wrapper gives the network the per-frame timesteps.

Latents: the methods work in the network's space; a LATENT holds the VAE's raw latent, as ComfyUI's own nodes
do (``process_latent_in`` / ``process_latent_out``), so the pack's outputs decode with VAEDecode and continue in
KSampler, and KSampler's latents feed the pack.
"""
from __future__ import annotations

import torch

from ...core.families.wan.experts import expert_guidance, predict_by_expert
from ...core.families.wan.frames import WanFrames
from ...core.conditioning import Conditioning
from ...core.families.wan.backbone import OFFICIAL_NEGATIVE_PROMPT, TEXT_LENGTH
from ...core.interface import BackboneModules, MemoryProfile, VideoBackbone
from ...core.memory_estimate import ACTIVATION_COPIES
from ...core.solvers import check_sampler
from .model_call import is_loaded, predict_velocity
from .schedule import NativeFlowSchedule
from .solver import comfy_solver
from .vae import ComfyVideoVAE

PATCH = 2  # Wan's 2×2 spatial patch
VAE_LAST_STAGE = {16: (8, 96), 48: (8, 256)}
"""(pixels per latent side, features) of the released VAEs' last decoder stage, which ComfyUI builds whatever the
file holds: Wan 2.1's at full size, Wan 2.2's at half (its 2×2 pixel patches are unfolded after it)."""


def same_network(a, b) -> bool:
    """Whether two MODELs run one network: clones of one load (a LoRA or a shift on each still shares it), or one
    file loaded twice, told by the output layer's modulation, a small tensor every Wan file holds unquantized. The
    two A14B experts are different networks; which one is which, nothing in a MODEL says."""
    if a.model is b.model:
        return True
    x, y = (patcher.model.diffusion_model.head.modulation.detach() for patcher in (a, b))
    return x.shape == y.shape and bool(torch.equal(x.float().cpu(), y.float().cpu()))


def describe_model(patcher) -> str:
    """What a MODEL is, for messages: its ComfyUI model class and latent channels."""
    model = getattr(patcher, "model", None)
    kind = type(model).__name__ if model is not None else type(patcher).__name__
    channels = getattr(getattr(model, "latent_format", None), "latent_channels", None)
    return f"{kind}" + (f" ({channels}-channel latents)" if channels else "")


def check_native_wan(patcher, what: str = "model") -> None:
    """Refuse a MODEL the methods cannot drive, naming what it is and what to connect instead."""
    import comfy.ldm.wan.model as wan_model
    import comfy.model_base as model_base
    import comfy.model_sampling as model_sampling
    model = getattr(patcher, "model", None)
    network = getattr(model, "diffusion_model", None)
    if not isinstance(model, model_base.WAN21) or type(network) is not wan_model.WanModel:
        raise ValueError(f"{what}: got {describe_model(patcher)}, which is not a Wan text-to-video model. Connect a "
                         "Wan 2.1 / 2.2 text-to-video MODEL (UNETLoader: wan2.1_t2v_*, wan2.2_t2v_*, wan2.2_ti2v_5B, "
                         "SkyReels-V2 T2V/DF), or load other video models with Load T2V Backbone.")
    extra = network.patch_embedding.weight.shape[1] - model.latent_format.latent_channels
    if extra or getattr(network, "img_emb", None) is not None:
        raise ValueError(f"{what}: got a Wan image-to-video model ({describe_model(patcher)}, "
                         f"{network.patch_embedding.weight.shape[1]} input channels): the methods need a "
                         "text-to-video model. Connect wan2.1_t2v_*, wan2.2_t2v_* or wan2.2_ti2v_5B instead.")
    sampling = patcher.get_model_object("model_sampling")
    if not isinstance(sampling, model_sampling.CONST):
        raise ValueError(f"{what}: its model_sampling is {type(sampling).__name__}, not a flow-matching one; "
                         "Wan models sample as flow (ModelSamplingSD3). Remove the node that changed it.")


def single_embedding(conditioning, what: str):
    """The one text embedding ``[1, L, D]`` of a CONDITIONING made by CLIPTextEncode."""
    if not isinstance(conditioning, list) or len(conditioning) != 1 or not conditioning[0]:
        count = len(conditioning) if isinstance(conditioning, list) else "no"
        raise ValueError(f"{what}: got CONDITIONING with {count} entries; connect one CLIPTextEncode's output "
                         "(combined, area or timestep-range conditioning is not supported here).")
    return conditioning[0][0]


class NativeWanBackbone(WanFrames, VideoBackbone):
    """Wan 2.1 / 2.2 A14B (two MODELs) / 2.2 TI2V-5B as ComfyUI's loaders give them."""

    family = "wan (ComfyUI MODEL)"
    network_name = "transformer"
    network_names = ("diffusion_model", "diffusion_model_2")
    causal_vae = True

    def __init__(self, model, vae, clip=None, model_2=None, boundary: float | None = None,
                 scheduler: str = "simple"):
        check_native_wan(model, "model")
        if model_2 is not None:
            check_native_wan(model_2, "model_low_noise")
        self.patcher, self.patcher_2 = model, model_2
        self.clip = clip
        self.video_vae = ComfyVideoVAE(vae)
        self.boundary_ratio = boundary if model_2 is not None else None
        latent_format = model.model.latent_format
        self._check_parts(latent_format, model_2, vae)
        self.latent_format = latent_format
        sampling = model.get_model_object("model_sampling")
        self.schedule = NativeFlowSchedule.of(sampling, scheduler)
        self.name = "Wan MODEL"
        self.default_negative_prompt = OFFICIAL_NEGATIVE_PROMPT
        self.dtype = model.model_dtype()
        self.device = model.load_device
        self.vae = vae.first_stage_model
        self.text_encoder = None
        self.modules = BackboneModules()  # ComfyUI's memory manager holds and moves the MODELs and the VAE

    def _check_parts(self, latent_format, model_2, vae) -> None:
        channels = latent_format.latent_channels
        if model_2 is not None and model_2.model.latent_format.latent_channels != channels:
            raise ValueError(f"model_low_noise: {describe_model(model_2)} does not belong with model "
                             f"({describe_model(self.patcher)}): connect the two experts of one Wan 2.2 A14B.")
        if model_2 is not None and same_network(self.patcher, model_2):
            raise ValueError("model_low_noise: it is the same network as model (one Load Diffusion Model, or one file "
                             "loaded twice). Load Wan 2.2 A14B's low-noise expert (…t2v_low_noise…) with its own Load "
                             "Diffusion Model and connect it here, or disconnect model_low_noise to run one network "
                             "at every level.")
        if self.video_vae.latent_channels != channels:
            wanted = "wan2.2_vae" if channels == 48 else "wan_2.1_vae"
            raise ValueError(f"vae: its latents have {self.video_vae.latent_channels} channels but the MODEL's have "
                             f"{channels} (a VAE of another Wan version): connect {wanted} (VAELoader).")
        width = self.network().text_embedding[0].in_features
        self.text_width = int(width)

    # --- the networks ------------------------------------------------------------------------------
    def network(self, second: bool = False):
        return (self.patcher_2 if second else self.patcher).model.diffusion_model

    def patchers(self) -> list:
        """The MODELs' patchers (ComfyUI's memory manager keeps them while the pack's node runs)."""
        return [p for p in (self.patcher, self.patcher_2) if p is not None]

    def denoising_networks(self) -> dict:
        networks = {"diffusion_model": self.network()}
        if self.patcher_2 is not None:
            networks["diffusion_model_2"] = self.network(second=True)
        return networks

    def to(self, device) -> "NativeWanBackbone":
        self.device = torch.device(device)  # ComfyUI moves the models when they run
        return self

    # --- shapes ------------------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        return int(self.latent_format.latent_channels)

    @property
    def latent_multiple(self) -> int:
        return PATCH

    @property
    def spatial_factor(self) -> int:
        return self.video_vae.spatial_factor

    @property
    def pixel_multiple(self) -> int:
        return self.spatial_factor * PATCH

    @property
    def native_size(self) -> int:
        return 704 if self.channels == 48 else 480

    # --- LATENTs as ComfyUI holds them ------------------------------------------------------------------
    def latent_to_host(self, samples: torch.Tensor) -> torch.Tensor:
        return self.latent_format.process_out(samples)

    def latent_from_host(self, samples: torch.Tensor) -> torch.Tensor:
        return self.latent_format.process_in(samples)

    # --- text ----------------------------------------------------------------------------------------
    text_tokens = TEXT_LENGTH

    def embed_text(self, text: str) -> tuple[torch.Tensor, str | None]:
        if self.clip is None:
            raise ValueError("This Wan MODEL backbone has no text encoder: connect your CLIP (CLIPLoader, type wan) "
                             "to its clip input, or make the conditioning with CLIPTextEncode and T2V Conditioning "
                             "from CONDITIONING.")
        conditioning = self.clip.encode_from_tokens_scheduled(self.clip.tokenize(text))
        return self.check_text(single_embedding(conditioning, "clip"), "clip"), None

    def conditioning_from_host(self, positive, negative, prompt: str = "") -> Conditioning:
        embeddings = [self.check_text(single_embedding(conditioning, what), what)
                      for what, conditioning in (("positive", positive), ("negative", negative))]
        return Conditioning(positive=embeddings[0], negative=embeddings[1], prompt=prompt)

    def check_text(self, embedding, what: str) -> torch.Tensor:
        """The embedding on the CPU, refused when another text encoder made it (its width is not the network's)."""
        if not torch.is_tensor(embedding) or embedding.dim() != 3 or embedding.shape[-1] != self.text_width:
            shape = tuple(embedding.shape) if torch.is_tensor(embedding) else type(embedding).__name__
            raise ValueError(f"{what}: its embeddings are shaped {shape}, but this Wan model reads "
                             f"[1, tokens, {self.text_width}] (UMT5-XXL): encode the prompt with the CLIP Wan uses "
                             "(CLIPLoader umt5_xxl_*, type wan).")
        return embedding.float().cpu()

    # --- the model call ------------------------------------------------------------------------------
    def _boundary(self) -> float | None:
        return None if self.boundary_ratio is None else self.boundary_ratio * self.schedule.num_train_timesteps

    def guidance_scale(self, t, like: torch.Tensor, guidance: float, guidance_2: float | None):
        model_t = torch.as_tensor(self.schedule.model_timestep(t), dtype=torch.float32)
        return expert_guidance(model_t, self._boundary(), like, guidance, guidance_2)

    def predict(self, x: torch.Tensor, t, texts: list[torch.Tensor], cond) -> list[torch.Tensor]:
        """v̂ of ``x`` ``[B, C, F, h, w]`` at level(s) ``t`` (σ) for each text, through ComfyUI's own model call."""
        if cond.image is not None:
            raise ValueError("A Wan text-to-video MODEL has no image cross-attention, so image tokens cannot "
                             "condition it: disconnect image_embeds / turn image seeding off.")
        batch, _, frames = x.shape[:3]
        model_t = torch.as_tensor(self.schedule.model_timestep(t), dtype=torch.float32)
        if model_t.dim() == 2:
            model_t = model_t.expand(batch, frames)
        # the expert ComfyUI holds loaded runs first, so experts taking turns swap once per call across the boundary
        low_first = self.patcher_2 is not None and is_loaded(self.patcher_2) and not is_loaded(self.patcher)
        out = predict_by_expert(
            model_t, self._boundary(), frames, len(texts),
            lambda: predict_velocity(self.patcher, x, t, texts, self.schedule),
            lambda: predict_velocity(self.patcher_2, x, t, texts, self.schedule), low_first)
        return list(out.to(x.dtype).chunk(len(texts)))

    def solver(self, name: str, steps: int, strength: float = 1.0):
        """KSampler's own sampler ``name`` on this MODEL's grid (``solver.comfy_solver``)."""
        check_sampler(name)
        return comfy_solver(self.patcher, self.schedule, name, steps, strength)

    # --- pixels --------------------------------------------------------------------------------------
    def encode(self, pixels: torch.Tensor, chunk: int | None = None, check=None) -> torch.Tensor:
        raw = self.video_vae.encode_image(pixels, check=check)
        return self.latent_format.process_in(raw)

    def encode_video(self, pixels: torch.Tensor, check=None) -> torch.Tensor:
        return self.latent_format.process_in(self.video_vae.encode_video(pixels, check=check))

    def stream_decoder(self, out_device: torch.device | str = "cpu", check=None):
        decode = self.video_vae.stream_decoder(out_device, check=check)
        return lambda latents: decode(self.latent_format.process_out(latents))

    def decode(self, latents: torch.Tensor, chunk: int | None = None, out_device: torch.device | str = "cpu",
               check=None, free_memory=None) -> torch.Tensor:
        from ...core.memory_estimate import check_decode
        step = max(1, chunk or 1)
        check_decode(self, latents.shape, step, free_memory, out_device)
        return self.video_vae.decode(self.latent_format.process_out(latents), step, out_device, check=check)

    # --- memory --------------------------------------------------------------------------------------
    def memory_profile(self) -> MemoryProfile:
        network = self.network()
        ffn = network.blocks[0].ffn[0].out_features
        stage_side, vae_width = VAE_LAST_STAGE.get(self.channels, VAE_LAST_STAGE[16])
        return MemoryProfile(width=max(int(network.dim), int(ffn)), cells=tuple(int(p) for p in network.patch_size),
                             copies=ACTIVATION_COPIES, pixel_side=self.video_vae.spatial_factor,
                             stage_side=stage_side, vae_width=vae_width, causal=True, vae_dtype=self.video_vae.dtype)
