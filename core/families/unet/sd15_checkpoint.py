"""Stable Diffusion 1.5 all-in-one checkpoints (ComfyUI's ``models/checkpoints``) as the AnimateDiff backbone.

One ``.safetensors`` file holds the UNet (``model.diffusion_model.*``), the VAE (``first_stage_model.*``) and the
CLIP-L text encoder (``cond_stage_model.transformer.*``) in the original LDM layout, and no configuration. The
configurations are the pack's own (``configs/sd15``: the released SD1.5 values), with every field a tensor shape
records read from the file instead, so a real file and a tiny test file take the same path. What no shape
records keeps SD1.5's value: 8 attention heads per UNet transformer (diffusers' ``attention_head_dim``), 32
GroupNorm groups (a test file narrower than that gets the largest count that divides its widths), CLIP's
64-wide heads. The file is read once; no hub is asked, whatever ``HF_HUB_OFFLINE`` says.

The result is the UNetBackbone an SD1.5 folder plus the same motion module gives: same classes, same weights, same
scheduler (the folder's SD1.5 scheduler values under AnimateDiff's DDIM settings).
"""
from __future__ import annotations

import gzip
import json
import math
import tempfile
from pathlib import Path

import torch

from .backbone import UNetBackbone
from .folder import assemble_backbone, load_motion_adapter, load_scheduler, with_motion
from .ip_adapter import check_ip_pair
from ...loading.file_checks import ModelFileError, listed, loading, read_json
from ...loading.strict_load import config_folder, config_overrides, load_exact, read_single_file, single_file_model

CONFIGS = Path(__file__).parent / "configs" / "sd15"
CLIP_MERGES = Path(__file__).parent / "configs" / "clip_tokenizer" / "bpe_simple_vocab_16e6.txt.gz"
UNET, VAE, TEXT = "model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer."
EMA = "model_ema."  # training copies of the UNet: ComfyUI and diffusers both run the non-EMA weights beside them
TEXT_LENGTH = 77  # CLIP's positions; ComfyUI's tokenizer folder says 8192, which the text encoder cannot take
SD15_GROUPS = 32
CLIP_HEAD_WIDTH = 64
CLIP_MERGES_USED = 49152 - 256 - 2  # CLIP reads this many merges: 49,408 vocabulary entries in all
WHAT = "Stable Diffusion 1.5 checkpoint"
PARTS = {UNET: "UNet", VAE: "VAE", TEXT: "text encoder"}
# Stable Diffusion files that share SD1.5's UNet prefix, told apart by their text encoders
OTHER_CHECKPOINTS = (("conditioner.embedders.", "an SDXL checkpoint"),
                     ("cond_stage_model.model.", "a Stable Diffusion 2.x checkpoint (its text encoder is OpenCLIP's)"))
SD_VAE_MARKERS = ("encoder.conv_in.weight", "decoder.conv_out.weight", "post_quant_conv.weight")


# --- the CLIP tokenizer --------------------------------------------------------------------------
def _byte_symbols() -> list[str]:
    """CLIP's 256 byte symbols in its vocabulary order: the printable Latin-1 bytes stand for themselves, then
    the other bytes, in byte order, take the characters from U+0100 on (BPE never sees a space or a control)."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    return [chr(b) for b in printable] + [chr(0x100 + n) for n in range(256 - len(printable))]


def clip_vocabulary() -> tuple[dict[str, int], list[str]]:
    """CLIP's vocabulary and merges, built from its BPE merges file as CLIP builds them: the byte symbols, the
    same ending a word (``</w>``), one entry per merge, then the start and end tokens."""
    lines = gzip.decompress(CLIP_MERGES.read_bytes()).decode("utf-8").split("\n")
    merges = lines[1:1 + CLIP_MERGES_USED]  # the first line is the file's version
    symbols = _byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def clip_tokenizer(tokenizer_dir: Path | None = None):
    """SD1.5's tokenizer: a tokenizer folder (in ComfyUI, its own ``comfy/sd1_tokenizer``), or the pack's own
    built from CLIP's merges. Either way 77 tokens long and padded with the end token, as SD1.5 was trained."""
    from transformers import CLIPTokenizer
    if tokenizer_dir is not None:
        folder = Path(tokenizer_dir)
        if not any((folder / name).is_file() for name in ("vocab.json", "tokenizer.json")):
            raise ModelFileError(f"'{folder}' is not a CLIP tokenizer folder (it has no vocab.json or tokenizer.json): "
                                 "point it at one (ComfyUI's comfy/sd1_tokenizer), or leave it unset to use the "
                                 "pack's own.")
        for config in sorted(folder.glob("*.json")):
            read_json(config)
        with loading(folder, "The CLIP tokenizer"):
            return CLIPTokenizer.from_pretrained(folder, model_max_length=TEXT_LENGTH, local_files_only=True)
    vocab, merges = clip_vocabulary()
    with tempfile.TemporaryDirectory(prefix="zeroshot_video_clip_") as folder:
        (Path(folder) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(folder) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(folder, model_max_length=TEXT_LENGTH, local_files_only=True)


# --- original (LDM) tensor names -------------------------------------------------------------------
_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
           "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
_SAMPLER = {"downsamplers": "downsample", "upsamplers": "upsample"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _renamed(rest: str, table: dict[str, str]) -> str:
    head = next((h for h in table if rest.startswith(h + ".")), None)
    return table[head] + rest[len(head):] if head else rest


def ldm_unet_name(name: str, layers: int, up_with_attention: set[int]) -> str:
    """The original (``openaimodel``) name of a diffusers ``UNet2DConditionModel`` tensor: the down path is one
    flat ``input_blocks`` list (conv_in, then per level ``layers`` (resnet, attention) pairs and a downsampler),
    the up path one ``output_blocks`` list of ``layers + 1`` entries per level, the upsampler after the last
    attention of its entry."""
    head, _, leaf = name.rpartition(".")
    if head in _UNET_TOP:
        return f"{_UNET_TOP[head]}.{leaf}"
    if name.startswith("mid_block."):
        _, kind, number, rest = name.split(".", 3)
        inner = _renamed(rest, _RESNET) if kind == "resnets" else rest
        return f"middle_block.{2 * int(number) if kind == 'resnets' else 1}.{inner}"
    group, index, kind, number, rest = name.split(".", 4)
    i, j = int(index), int(number)
    inner = _renamed(rest, _RESNET) if kind == "resnets" else rest
    if group == "down_blocks":
        if kind == "downsamplers":
            return f"input_blocks.{(i + 1) * (layers + 1)}.0.{rest.replace('conv.', 'op.', 1)}"
        return f"input_blocks.{1 + i * (layers + 1) + j}.{0 if kind == 'resnets' else 1}.{inner}"
    if kind == "upsamplers":
        return f"output_blocks.{i * (layers + 1) + layers}.{2 if i in up_with_attention else 1}.{rest}"
    return f"output_blocks.{i * (layers + 1) + j}.{0 if kind == 'resnets' else 1}.{inner}"


def ldm_vae_name(name: str, levels: int) -> str:
    """The original name of a diffusers ``AutoencoderKL`` tensor: levels as ``down.N`` / ``up.N`` (the decoder's
    numbered from the lowest resolution up, like the encoder's), mid-block resnets ``block_1`` / ``block_2``."""
    side, _, rest = name.partition(".")
    if side not in ("encoder", "decoder"):
        return name  # quant_conv, post_quant_conv
    if rest.startswith("conv_norm_out."):
        return f"{side}.norm_out.{rest[len('conv_norm_out.'):]}"
    if rest.startswith("mid_block."):
        _, kind, number, inner = rest.split(".", 3)
        if kind == "attentions":
            return f"{side}.mid.attn_1.{_renamed(inner, _VAE_ATTENTION)}"
        return f"{side}.mid.block_{int(number) + 1}.{inner.replace('conv_shortcut.', 'nin_shortcut.')}"
    if rest.startswith(("down_blocks.", "up_blocks.")):
        group, index, kind, number, inner = rest.split(".", 4)
        level = int(index) if group == "down_blocks" else levels - 1 - int(index)
        where = "down" if group == "down_blocks" else "up"
        if kind in _SAMPLER:
            return f"{side}.{where}.{level}.{_SAMPLER[kind]}.{inner}"
        return f"{side}.{where}.{level}.block.{number}.{inner.replace('conv_shortcut.', 'nin_shortcut.')}"
    return name


def unet_names(unet) -> dict[str, str]:
    """Each tensor of a diffusers UNet → its full name in an all-in-one checkpoint."""
    layers = int(unet.config.layers_per_block)
    with_attention = {i for i, kind in enumerate(unet.config.up_block_types) if kind.startswith("CrossAttn")}
    return {k: UNET + ldm_unet_name(k, layers, with_attention) for k in unet.state_dict()}


def vae_names(vae) -> dict[str, str]:
    """Each tensor of a diffusers AutoencoderKL → its full name in an all-in-one checkpoint."""
    return {k: VAE + ldm_vae_name(k, len(vae.config.block_out_channels)) for k in vae.state_dict()}


# --- configurations from the tensors ---------------------------------------------------------------
def norm_groups(widths) -> int:
    """SD1.5's 32 GroupNorm groups; only a test file narrower than that gets fewer (the most that fit)."""
    return math.gcd(SD15_GROUPS, *(int(w) for w in widths))


def _indices(state, prefix: str, position: int) -> list[int]:
    """The distinct numbers at dot-separated ``position`` of the names under ``prefix``."""
    return sorted({int(k.split(".")[position]) for k in state if k.startswith(prefix)})


def unet_config(state: dict[str, torch.Tensor]) -> dict:
    """SD1.5's UNet config with what the shapes of ``state`` (names without the UNet prefix) record."""
    downsamplers = sorted(int(k.split(".")[1]) for k in state if k.startswith("input_blocks.") and ".op.weight" in k)
    layers = downsamplers[0] - 1 if downsamplers else len(_indices(state, "input_blocks.", 1)) - 1
    levels = len(downsamplers) + 1
    first = [1 + i * (layers + 1) for i in range(levels)]
    widths = [int(state[f"input_blocks.{b}.0.out_layers.3.weight"].shape[0]) for b in first]
    attention = next(k for k in state if k.endswith(".proj_in.weight"))
    block = attention[:-len("proj_in.weight")]
    return {**read_json(CONFIGS / "unet" / "config.json"),
            "in_channels": int(state["input_blocks.0.0.weight"].shape[1]),
            "out_channels": int(state["out.2.weight"].shape[0]),
            "block_out_channels": widths, "layers_per_block": layers,
            "down_block_types": ["CrossAttnDownBlock2D" if f"input_blocks.{b}.1.proj_in.weight" in state
                                 else "DownBlock2D" for b in first],
            "up_block_types": ["CrossAttnUpBlock2D" if f"output_blocks.{i * (layers + 1)}.1.proj_in.weight" in state
                               else "UpBlock2D" for i in range(levels)],
            "transformer_layers_per_block": len(_indices(state, block + "transformer_blocks.", len(block.split(".")))),
            "cross_attention_dim": int(state[block + "transformer_blocks.0.attn2.to_k.weight"].shape[1]),
            "use_linear_projection": state[attention].dim() == 2,
            "norm_num_groups": norm_groups(widths)}


def vae_config(state: dict[str, torch.Tensor]) -> dict:
    """SD1.5's VAE config with what the shapes of ``state`` (names without the VAE prefix) record."""
    levels = len(_indices(state, "encoder.down.", 2))
    widths = [int(state[f"encoder.down.{i}.block.0.conv1.weight"].shape[0]) for i in range(levels)]
    return {**read_json(CONFIGS / "vae" / "config.json"),
            "in_channels": int(state["encoder.conv_in.weight"].shape[1]),
            "out_channels": int(state["decoder.conv_out.weight"].shape[0]),
            "latent_channels": int(state["post_quant_conv.weight"].shape[0]),
            "block_out_channels": widths, "layers_per_block": len(_indices(state, "encoder.down.0.block.", 4)),
            "down_block_types": ["DownEncoderBlock2D"] * levels, "up_block_types": ["UpDecoderBlock2D"] * levels,
            "norm_num_groups": norm_groups(widths)}


def text_config(state: dict[str, torch.Tensor]):
    """CLIP-L's text config with what the shapes of ``state`` (names as in a flat CLIPTextModel) record; one
    head per 64 channels, as in every CLIP."""
    from transformers import CLIPTextConfig
    config = CLIPTextConfig.from_dict(read_json(CONFIGS / "text_encoder" / "config.json"))
    vocab, hidden = state["embeddings.token_embedding.weight"].shape
    config.update({"vocab_size": int(vocab), "hidden_size": int(hidden),
                   "num_attention_heads": max(1, int(hidden) // CLIP_HEAD_WIDTH),
                   "max_position_embeddings": int(state["embeddings.position_embedding.weight"].shape[0]),
                   "num_hidden_layers": len(_indices(state, "encoder.layers.", 2)),
                   "intermediate_size": int(state["encoder.layers.0.mlp.fc1.weight"].shape[0])})
    return config


# --- what the file is ---
def require_sd15(names, file: Path) -> None:
    """Refuses, saying what it is, a file that is not an SD1.5 checkpoint: the other Stable Diffusion files
    (SDXL, SD2, a VAE alone) by their own marks, then every kind the pack knows by ``single_file_kinds``."""
    from ...loading.file_kinds import require_kind
    names = set(names)
    wanted = f"a {WHAT} ('{file}' was given)"
    for prefix, what in OTHER_CHECKPOINTS:
        if any(name.startswith(prefix) for name in names):
            raise ModelFileError(f"'{file.name}' is {what}, not {wanted}. The AnimateDiff motion modules are made for "
                                 "SD1.5's UNet: choose an SD1.5 checkpoint.")
    if not any(name.startswith(UNET) for name in names) and all(
            marker in {name.removeprefix(VAE) for name in names} for marker in SD_VAE_MARKERS):
        raise ModelFileError(f"'{file.name}' is a Stable Diffusion VAE alone (ComfyUI keeps those in models/vae), not "
                             f"{wanted}. Choose the all-in-one checkpoint from models/checkpoints: it holds its "
                             "own VAE.")
    require_kind(names, file, {"sd15_checkpoint"}, f"a {WHAT}")


# --- the parts -------------------------------------------------------------------------------------
def _without(prefix: str, part: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in part.items()}


def split_parts(state: dict[str, torch.Tensor], file: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The file's tensors by part (full names), without what no part uses: the training wrapper's schedule
    buffers (names without a dot: ``betas``, ``alphas_cumprod``…), the EMA copies and CLIP's position ids."""
    parts: dict[str, dict[str, torch.Tensor]] = {prefix: {} for prefix in PARTS}
    stray = []
    for name, tensor in state.items():
        prefix = next((p for p in PARTS if name.startswith(p)), None)
        if prefix is not None:
            if not name.endswith(".position_ids"):
                parts[prefix][name] = tensor
        elif "." in name and not name.startswith(EMA):
            stray.append(name)
    absent = [PARTS[p] for p, part in parts.items() if not part]
    if absent:
        raise ModelFileError(f"'{file}' has no {' and no '.join(absent)} ({'/'.join(p + '*' for p in PARTS)}): it is "
                             "not an all-in-one Stable Diffusion 1.5 checkpoint. Put such a file in "
                             "models/checkpoints, or use a diffusers SD1.5 folder.")
    if stray:
        raise ModelFileError(f"'{file}' has {len(stray)} tensor(s) that belong to no part of an SD1.5 checkpoint "
                             f"({listed(stray)}). Refused rather than run without them: it is another kind of "
                             "model, or damaged. Download it again, or choose the file made for this slot.")
    return parts


def _refuse_unplaced(part: dict[str, torch.Tensor], known: set[str], file: Path, what: str) -> None:
    """diffusers' LDM converters copy a whole prefix before mapping it, so a tensor they skip goes unseen: the
    names this model's tensors have in the original layout are the only ones a file may hold."""
    unplaced = sorted(part.keys() - known)
    if unplaced:
        raise ModelFileError(f"{what} '{file}' has {len(unplaced)} tensor(s) this model has no place for "
                             f"({listed(unplaced)}). Refused rather than run with misplaced weights: it is not a "
                             "complete SD1.5 checkpoint, or is damaged. Download it again, or choose the file made "
                             "for this slot.")


def _load_part(cls, make_config, names_of, prefix: str, what: str, part: dict[str, torch.Tensor], file: Path,
               dtype: torch.dtype, declared: dict | None):
    """One diffusers part: its config from the shapes (and what the header ``declared``: config_overrides, values
    no shape records), loaded strictly, every file tensor one of the model's original names."""
    config = {**_derived(make_config, part, prefix, file, what), **(declared or {})}
    with config_folder(config) as folder:
        model = single_file_model(cls, part, file, what, folder, dtype)
    _refuse_unplaced(part, set(names_of(model).values()), file, what)
    return model


def load_unet(part: dict[str, torch.Tensor], file: Path, dtype: torch.dtype, declared: dict | None = None):
    from diffusers import UNet2DConditionModel
    return _load_part(UNet2DConditionModel, unet_config, unet_names, UNET, "SD1.5 UNet", part, file, dtype, declared)


def load_vae(part: dict[str, torch.Tensor], file: Path, dtype: torch.dtype, declared: dict | None = None):
    from diffusers import AutoencoderKL
    return _load_part(AutoencoderKL, vae_config, vae_names, VAE, "SD1.5 VAE", part, file, dtype, declared)


def load_text_encoder(part: dict[str, torch.Tensor], file: Path, dtype: torch.dtype):
    """CLIP-L from ``cond_stage_model.transformer.[text_model.]*`` (very old files lack ``text_model.``), onto
    the names this transformers release gives CLIPTextModel (5.x dropped the ``text_model.`` level). Built
    with empty parameters but real buffers (CLIP's position ids are not saved), so nothing is allocated twice."""
    from accelerate import init_empty_weights
    from transformers import CLIPTextModel
    what = "SD1.5 text encoder"
    flat = {k.removeprefix("text_model."): v for k, v in _without(TEXT, part).items()}
    config = _derived(text_config, flat, "", file, what)
    with init_empty_weights(include_buffers=False):
        model = CLIPTextModel(config)
    level = "text_model." if any(k.startswith("text_model.") for k in model.state_dict()) else ""
    state = {level + k: v.to(dtype) if v.is_floating_point() else v for k, v in flat.items()}
    return load_exact(model, state, file, what)


def _derived(make, part: dict[str, torch.Tensor], prefix: str, file: Path, what: str):
    """A config from the part's shapes; a tensor the shapes are read from that is missing names the file."""
    try:
        return make(_without(prefix, part))
    except (KeyError, StopIteration, IndexError) as error:
        lacking = f"the tensor {prefix}{error.args[0]}" if isinstance(error, KeyError) else "the tensors"
        raise ModelFileError(f"{what} '{file}' lacks {lacking} its layout is read from: it is not a complete SD1.5 "
                             "checkpoint, or is damaged. Download it again, or choose the file made for this "
                             "slot.") from None


def load_sd15_checkpoint(checkpoint: str | Path, motion_adapter: str | Path, *,
                         ip_adapter: str | Path | None = None, image_encoder: str | Path | None = None,
                         dtype: torch.dtype = torch.float32, timestep_grid: str = "original",
                         tokenizer_dir: str | Path | None = None) -> UNetBackbone:
    """The AnimateDiff backbone of an SD1.5 all-in-one checkpoint and a motion module (a single file in any
    released layout, or a diffusers MotionAdapter folder), optionally with an IP-Adapter and its image encoder;
    ``tokenizer_dir`` a CLIP tokenizer folder, else the pack's own."""
    checkpoint = Path(checkpoint)
    check_ip_pair(ip_adapter, image_encoder)
    scheduler = load_scheduler(CONFIGS, "animatediff", timestep_grid)
    tokenizer = clip_tokenizer(None if tokenizer_dir is None else Path(tokenizer_dir))
    if checkpoint.suffix != ".safetensors":
        raise ModelFileError(f"Checkpoint '{checkpoint.name}' is not a .safetensors file. Pickle checkpoints "
                             "(.ckpt/.pth) can run code when loaded: use the .safetensors release.")
    state = read_single_file(checkpoint, f"The {WHAT}")
    require_sd15(state, checkpoint)
    parts = split_parts(state, checkpoint)
    del state
    declared = config_overrides(checkpoint)
    text_encoder = load_text_encoder(parts.pop(TEXT), checkpoint, dtype)
    vae = load_vae(parts.pop(VAE), checkpoint, dtype, declared.get("vae"))
    unet2d = load_unet(parts.pop(UNET), checkpoint, dtype, declared.get("unet"))
    if unet2d.config.in_channels != vae.config.latent_channels:
        raise ModelFileError(f"'{checkpoint.name}': its UNet takes {unet2d.config.in_channels} latent channels but its "
                             f"VAE makes {vae.config.latent_channels} (an inpainting or other special-purpose "
                             "checkpoint). Choose a text-to-image SD1.5 checkpoint.")
    if unet2d.config.cross_attention_dim != text_encoder.config.hidden_size:
        raise ModelFileError(f"'{checkpoint}': its UNet attends to {unet2d.config.cross_attention_dim}-wide text "
                             f"features but its text encoder gives {text_encoder.config.hidden_size}: the parts do "
                             "not belong together. Download the checkpoint again.")
    adapter = load_motion_adapter(Path(motion_adapter), dtype)
    unet = with_motion(unet2d, adapter, Path(motion_adapter), checkpoint, dtype)
    del unet2d
    return assemble_backbone(checkpoint.name, "animatediff", unet, vae, text_encoder, tokenizer, scheduler, dtype,
                             ip_adapter, image_encoder)
