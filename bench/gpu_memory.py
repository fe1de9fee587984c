"""Peak GPU memory of Wan at real size, for each memory setting, simulated on the CPU.

    python -m bench.gpu_memory      # writes bench/results/gpu_memory.json (about a minute, a few GB of RAM)

No session of this project has had a GPU, and the memory table's activation figures were a formula's lower
bound. This measures them instead, without a GPU: the pack's own code runs at real size on fake tensors (torch's
FakeTensorMode: every op yields the shapes, dtypes and storages of its outputs and computes nothing), and a dispatch
mode counts the live tensor storage op by op (``LiveBytes``). Measured this way, in bf16, each model at its
native video (Wan 2.1 1.3B and 14B at 832×480, 81 frames; Wan 2.2 TI2V 5B at 1280×704, 121 frames):

- **the model call**: ``WanBackbone.predict`` with both guidance branches in one batch (one Wan 2.2 A14B expert
  has 14B's shapes). Attention takes the memory-efficient path, as flash attention does on a GPU: its output and
  log-sum-exp, never the tokens × tokens matrix.
- **the text encoder**: UMT5-XXL on its 512 tokens.
- **decoding**: the model's VAE (float32 as Wan's code runs it, and bf16: ``vae_precision``) streamed one latent
  frame at a time, as ``DecodeVideoLatent`` with ``chunk`` 1 does; and encoding one image (TI2V-Zero's first
  frame).

Weights per setting are counted from the same models on the meta device with the pack's own accounting
(``memory_options.module_bytes``, ``group_offload_bytes``, ``leaf_offload_bytes``) after the pack's hooks: fp8
storage is applied for real, group offload's blocks are counted. fp8 storage's layer-by-layer cast (one layer's
weights in bf16 at a time) is added to the activations. What is *not* in these figures: the CUDA context and
library workspaces (about 0.5–1 GB), the caching allocator's fragmentation (commonly 5–20 %), and kernels'
scratch memory that lives outside tensors. Each stage's peak is its own: the text encoder leaves the GPU before
the diffusion model runs, and the VAE is on the GPU beside the diffusion model (the model manager moves them as
one unit), so it is counted in sampling and in decoding.
"""
from __future__ import annotations

import contextlib
import json
import weakref

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from zeroshot_video.core import memory_options as mo
from zeroshot_video.core.families.wan import files as wan_files
from zeroshot_video.core.conditioning import Conditioning
from zeroshot_video.core.schedule import FlowSchedule
from zeroshot_video.core.families.wan.backbone import TEXT_LENGTH, WanBackbone

from zeroshot_video.bench.common import write_results
from zeroshot_video.bench.loading_memory import WAN21_1_3B

GB = 1e9
WAN21_14B = {**WAN21_1_3B, "num_attention_heads": 40, "ffn_dim": 13824, "num_layers": 40}
WAN22_5B = {**WAN21_1_3B, "num_attention_heads": 24, "ffn_dim": 14336, "in_channels": 48, "out_channels": 48}
MODELS = {  # name: (transformer config, its VAE's shipped config, width, height, frames: its native video)
    "Wan 2.1 1.3B": (WAN21_1_3B, "wan21_vae", 832, 480, 81),
    "Wan 2.1 14B / one Wan 2.2 A14B expert": (WAN21_14B, "wan21_vae", 832, 480, 81),
    "Wan 2.2 TI2V 5B": (WAN22_5B, "wan22_vae", 1280, 704, 121),
}
GUIDANCE_BRANCHES = 2
SETTINGS = [(mo.DEFAULT, mo.NONE, mo.DEFAULT), (mo.FP8, mo.NONE, mo.DEFAULT), (mo.DEFAULT, mo.GROUP, mo.DEFAULT),
            (mo.FP8, mo.GROUP, mo.DEFAULT), (mo.FP8, mo.NONE, mo.BF16), (mo.DEFAULT, mo.GROUP, mo.BF16),
            (mo.FP8, mo.GROUP, mo.BF16)]  # (precision, offload, vae_precision)
VAE_DTYPES = {mo.DEFAULT: torch.float32, mo.BF16: torch.bfloat16}
CARDS_GB = (8, 12, 16, 24, 48)
CONTEXT_GB = 1.0  # CUDA context and library workspaces, which the simulation does not see


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _transformer(config: dict):
    from diffusers import WanTransformer3DModel
    with _default_dtype(torch.bfloat16):
        return WanTransformer3DModel(**config).eval()


def _text_encoder():
    from transformers import UMT5Config, UMT5EncoderModel
    config = json.loads((wan_files.CONFIGS / "umt5_xxl" / "config.json").read_text())
    with _default_dtype(torch.bfloat16):
        return UMT5EncoderModel(UMT5Config(**config)).eval()


def _vae(version: str, dtype: torch.dtype = torch.float32):
    from diffusers import AutoencoderKLWan
    config = json.loads((wan_files.CONFIGS / version / "config.json").read_text())
    with _default_dtype(dtype):
        return AutoencoderKLWan.from_config({k: v for k, v in config.items() if not k.startswith("_")}).eval()


class LiveBytes(TorchDispatchMode):
    """Bytes of tensor storage alive, and their peak, counted as each op's outputs appear and as each storage is
    freed (a weak reference per storage). The storages of ``resident`` (a model's weights) are known and not
    counted, though ops return views of them."""

    def __init__(self, resident: torch.nn.Module):
        super().__init__()
        self.live = self.peak = 0
        self._refs: dict[int, weakref.ref] = {}
        for tensor in list(resident.parameters()) + list(resident.buffers()):
            storage = tensor.untyped_storage()
            self._refs[id(storage)] = weakref.ref(storage)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self._count(tensor.untyped_storage())
        return out

    def _count(self, storage) -> None:
        key = id(storage)
        if key in self._refs and self._refs[key]() is storage:
            return  # a view, or an op that returned its input
        size = storage.nbytes()
        self.live += size
        self.peak = max(self.peak, self.live)
        self._refs[key] = weakref.ref(storage, lambda _, size=size, key=key: self._free(key, size))

    def _free(self, key: int, size: int) -> None:
        self.live -= size
        self._refs.pop(key, None)


def peak_activation_bytes(build, run, fake: bool = True) -> int:
    """Peak bytes of live tensors while ``run(model)`` runs on ``build()``, beyond the model's own parameters and
    buffers: what the call itself allocates, inputs included. On fake tensors unless ``fake`` is False (real ones,
    to check that the two count the same)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode(allow_non_fake_inputs=True) if fake else contextlib.nullcontext():
        model = build()
        with LiveBytes(model) as tracker, torch.no_grad():
            run(model)
    return tracker.peak


def _model_call(transformer, latent_shape) -> None:
    """TI2V-5B (48 latent channels) takes a level per token, as the pack runs it."""
    backbone = WanBackbone("simulated", transformer, torch.nn.Identity(), torch.nn.Identity(), None,
                           FlowSchedule(shift=5.0, num_train_timesteps=1000), torch.bfloat16,
                           expand_timesteps=transformer.config.in_channels == 48)
    text = torch.randn(1, TEXT_LENGTH, transformer.config.text_dim)
    backbone.predict(torch.randn(latent_shape), torch.tensor(0.5), [text] * GUIDANCE_BRANCHES,
                     Conditioning(text, text))


def _encode_text(text_encoder) -> None:
    ids = torch.ones(1, TEXT_LENGTH, dtype=torch.long)
    text_encoder(ids, torch.ones_like(ids)).last_hidden_state.float()


def _decode_streamed(vae, latent_frames: int, h: int, w: int) -> None:
    """The latent's finiteness check reads a value, which fake tensors have not; it allocates one bool."""
    from unittest import mock

    from zeroshot_video.core.families.wan import vae as wan_vae
    decoder = wan_vae.StreamingDecoder(vae)
    with mock.patch.object(wan_vae, "require_finite_latent", lambda latents: None):
        for _ in range(latent_frames):
            wan_vae.decode_to_images(decoder, torch.randn(1, vae.config.z_dim, 1, h, w), "cpu")


def _encode_image(vae, height: int, width: int) -> None:
    from zeroshot_video.core.families.wan import vae as wan_vae
    wan_vae.encode_video(vae, torch.randn(1, 3, 1, height, width))


def _meta(build):
    with torch.device("meta"):
        return build()


def _largest_cast_layer_bytes(model) -> int:
    """The bf16 copy of the largest layer fp8 storage casts up while it runs (its fp8 bytes are already counted)."""
    return max((mo.module_bytes(m) for m in model.modules()
                if not list(m.children()) and any(p.dtype == torch.float8_e4m3fn for p in m.parameters())),
               default=0)


def weights_on_gpu(plain, fp8, precision: str, offload: str, leaf_level: bool = False) -> tuple[int, int]:
    """(weight bytes on the GPU while the model runs, transient bytes of fp8's per-layer cast) for one setting."""
    model = fp8 if precision == mo.FP8 else plain
    cast = 2 * _largest_cast_layer_bytes(model) if precision == mo.FP8 else 0
    if offload == mo.NONE:
        return mo.module_bytes(model), cast
    on_gpu = mo.leaf_offload_bytes(model, prefetch=True) if leaf_level else mo.group_offload_bytes(model, True)
    return on_gpu, cast


def _stage_activations(vae_version: str, config: dict, width: int, height: int, frames: int) -> dict:
    """Peak activation bytes of one model's call, and of its VAE's decoding and image encoding in each dtype."""
    side = json.loads((wan_files.CONFIGS / vae_version / "config.json").read_text())["scale_factor_spatial"]
    latent_shape = (1, config["in_channels"], (frames - 1) // 4 + 1, height // side, width // side)
    found = {"model call": peak_activation_bytes(lambda: _transformer(config),
                                                 lambda net: _model_call(net, latent_shape))}
    for vae_precision, dtype in VAE_DTYPES.items():
        build = lambda: _vae(vae_version, dtype)  # noqa: E731
        found[f"VAE decode, {vae_precision}"] = peak_activation_bytes(
            build, lambda vae: _decode_streamed(vae, 3, *latent_shape[3:]))
        found[f"VAE encode, {vae_precision}"] = peak_activation_bytes(
            build, lambda vae: _encode_image(vae, height, width))
    return found


def _settings(nets, encoder, vae_bytes: dict, found: dict, text_act: int) -> dict:
    """Each setting's weights and stage peaks for one model."""
    settings = {}
    for precision, offload, vae_precision in SETTINGS:
        vae = vae_bytes[vae_precision]
        net, net_cast = weights_on_gpu(*nets, precision, offload)
        text, text_cast = weights_on_gpu(*encoder, precision, offload, leaf_level=True)
        resident = 0 if offload == mo.GROUP else net  # group offload returns every block after the call
        stages = {"text encoding": text + text_cast + text_act,
                  "sampling": net + net_cast + vae + found["model call"],
                  "decoding": resident + vae + found[f"VAE decode, {vae_precision}"]}
        peak = max(stages.values())
        settings[f"{precision} / {offload} / VAE {vae_precision}"] = {
            "diffusion model weights on the GPU": round(net / GB, 2),
            **{f"{stage} peak": round(value / GB, 2) for stage, value in stages.items()},
            "peak": round(peak / GB, 2),
            "fits (GB cards, with 1 GB for the CUDA context)": [c for c in CARDS_GB if peak / GB + CONTEXT_GB <= c]}
    return settings


def main() -> dict:
    text_act = peak_activation_bytes(_text_encoder, _encode_text)
    encoder = (_meta(_text_encoder), mo.store_in_fp8(_meta(_text_encoder), torch.bfloat16, text_encoder=True))
    models = {}
    for name, (config, vae_version, width, height, frames) in MODELS.items():
        found = _stage_activations(vae_version, config, width, height, frames)
        vae_bytes = {key: mo.module_bytes(_meta(lambda: _vae(vae_version, dtype))) for key, dtype in VAE_DTYPES.items()}
        nets = (_meta(lambda: _transformer(config)),
                mo.store_in_fp8(_meta(lambda: _transformer(config)), torch.bfloat16))
        models[name] = {
            "size": {"width": width, "height": height, "frames": frames, "vae": vae_version},
            "activations_gb": {key: round(value / GB, 2) for key, value in found.items()},
            "vae_weights_gb": {key: round(value / GB, 2) for key, value in vae_bytes.items()},
            "settings": _settings(nets, encoder, vae_bytes, found, text_act)}
    return {"dtype": "bfloat16", "guidance_branches": GUIDANCE_BRANCHES,
            "method": "fake tensors, live storage counted op by op (bench/gpu_memory.py); not a GPU measurement",
            "text_encoder_activations_gb": round(text_act / GB, 2), "models": models}


if __name__ == "__main__":
    figures = main()
    print(json.dumps(figures, indent=2))
    print("written", write_results("gpu_memory", figures))
