"""AnimateDiff motion modules: every tensor comes from the file, or loading fails.

A single-file motion module carries no configuration, and its versions differ in ways that change the
model (v1 has 24 frame positions, v2 adds a mid-block module, v3 drops it again). A config guessed for the
wrong version leaves modules the file does not have at their random initial values (or, with
``accelerate``, on the meta device), so the layout is read from the file's own tensor names and shapes,
and every load is checked for tensors left over on either side.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ...loading.file_checks import (ModelFileError, check_model_fits, check_safetensors, listed, loading, read_json,
                                require_safetensors)

# What the tensors cannot tell (head count and GroupNorm groups leave no trace in the shapes): the values of
# the released SD1.5 motion modules (diffusers' defaults too). A same-name .json beside the file overrides them.
RELEASED_DEFAULTS = {"motion_num_attention_heads": 8, "motion_norm_num_groups": 32}

# The original layout nests each module in a ``temporal_transformer`` and keeps one positional table per
# attention (``attention_blocks.N.pos_encoder.pe``); diffusers shares one table (``pos_embed.pe``) per block.
ORIGINAL_MARK = ".temporal_transformer."
TABLE = ".pos_embed.pe"
_ORIGINAL_TABLE = re.compile(r"\.attention_blocks\.(\d+)\.pos_encoder\.pe$")
_MODULE = re.compile(r"^(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.motion_modules\.(\d+)\."
                     r"(?:transformer_blocks\.(\d+)\.)?")
_WIDTH_TENSORS = (".norm.weight", ".norm.bias", ".proj_in.bias", ".proj_out.bias")
def to_diffusers_layout(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Renames an original-layout state dict with diffusers' own converter.

    That converter drops the positional tables (diffusers recomputes them), so they are first renamed to the
    shared table's name: the file's own table is then loaded and checked like every other tensor. The two
    attentions of a block must carry the same table, since diffusers has only one.
    """
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers
    renamed: dict[str, str] = {}  # name the converter accepts → name in the file
    for name in state:
        table = _ORIGINAL_TABLE.search(name)
        shared = name[:table.start()] + TABLE if table else name
        if shared in renamed:
            if not torch.equal(state[renamed[shared]], state[name]):
                raise ModelFileError(
                    f"'{path.name}' has different positional tables in '{renamed[shared]}' and '{name}'; diffusers' "
                    "motion modules share one table per block, so this file cannot be loaded faithfully.")
            continue
        renamed[shared] = name
    # The converter only renames keys, so feeding it the file's names gives the new name → file name map.
    new_to_file = convert_animatediff_checkpoint_to_diffusers(renamed)
    return {new: state[old] for new, old in new_to_file.items()}


def _index_counts(state, block: str) -> tuple[int, list[int]]:
    """Motion modules in ``block`` and, for each, its transformer blocks (from the tensor names)."""
    modules: dict[int, set[int]] = {}
    for name in state:
        match = _MODULE.match(name)
        if match and match.group(1) == block:
            layers = modules.setdefault(int(match.group(2)), set())
            if match.group(3) is not None:
                layers.add(int(match.group(3)))
    return len(modules), [len(modules[j]) for j in sorted(modules)]


def _per_block(values: list[int]) -> int | tuple[int, ...]:
    return values[0] if len(set(values)) == 1 else tuple(values)


def derive_config(state: dict[str, torch.Tensor], path: Path) -> dict:
    """A ``MotionAdapter`` config read from the names and shapes of a diffusers-layout state dict."""
    downs = sorted({int(m.group(1)) for m in (re.match(r"down_blocks\.(\d+)\.motion_modules\.", k) for k in state)
                    if m})
    if not downs or downs != list(range(len(downs))):
        raise ModelFileError(f"'{path.name}' is not an AnimateDiff motion module: its tensors do not include "
                             "'down_blocks.N.motion_modules.…' for N = 0, 1, …")
    widths, layers, transformer_layers = [], [], []
    for i in downs:
        block = f"down_blocks.{i}"
        width = next((state[k].shape[0] for k in state if k.startswith(block + ".motion_modules.")
                      and k.endswith(_WIDTH_TENSORS)), None)
        if width is None:
            raise ModelFileError(f"'{path.name}': the width of '{block}' cannot be read (none of its motion modules "
                                 f"has a {'/'.join(t[1:] for t in _WIDTH_TENSORS)} tensor). The file looks "
                                 "incomplete: download it again.")
        count, depths = _index_counts(state, block)
        widths.append(int(width))
        layers.append(count)
        transformer_layers.append(depths[0])
    config = {"block_out_channels": widths, "motion_layers_per_block": _per_block(layers),
              "motion_transformer_layers_per_block": _per_block(transformer_layers),
              **RELEASED_DEFAULTS}
    tables = [v for k, v in state.items() if k.endswith(TABLE)]
    if tables:
        config["motion_max_seq_length"] = int(tables[0].shape[1])
    mid_count, mid_depths = _index_counts(state, "mid_block")
    config["use_motion_mid_block"] = mid_count > 0
    if mid_count:
        config["motion_mid_block_layers_per_block"] = mid_count
        config["motion_transformer_layers_per_mid_block"] = _per_block(mid_depths)
    if "conv_in.weight" in state:
        config["conv_in_channels"] = int(state["conv_in.weight"].shape[1])
    return config


def read_sidecar(path: Path) -> dict:
    """The same-name ``.json`` beside a single file ({} when there is none)."""
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    return read_json(sidecar, fix=f"It is the motion-adapter config beside '{path.name}' (MotionAdapter settings, like "
                     "a diffusers config.json): fix it, or delete it to use the layout read from the file's own "
                     "tensors.")


def _mismatch_error(source: Path, missing, unexpected, mismatched, config: dict) -> ModelFileError:
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor(s) the model needs are not in the file ({listed(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensor(s) in the file have no place in the model ({listed(unexpected)})")
    if mismatched:
        parts.append(f"{len(mismatched)} tensor(s) have the wrong shape ({listed(mismatched)})")
    return ModelFileError(
        f"Motion adapter '{source}' does not match the layout it was loaded with ({_settings(config)}): "
        f"{'; '.join(parts)} (tensor names as diffusers' MotionAdapter spells them). Refused rather than run with "
        f"random weights. {_advice(source)}")


def _settings(config: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(config.items()) if not k.startswith("_"))


def _advice(source: Path) -> str:
    sidecar = source.with_suffix(".json")
    if source.is_dir():
        return "Download the folder again, or fix its config.json."
    if sidecar.is_file():
        return (f"Check the settings in '{sidecar.name}' beside it (they override what the file's tensors say), "
                "or delete it; if the file is incomplete, download it again.")
    return ("If the file is incomplete, download it again; if it is a motion module of another layout, put a "
            f"'{sidecar.name}' MotionAdapter config beside it with the settings that fit.")


def _unloaded(model: torch.nn.Module) -> list[str]:
    return [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]


def _compute_tables(model, names, dtype: torch.dtype) -> None:
    for name in names:
        owner = model.get_submodule(name.rsplit(".", 1)[0])
        _, length, width = owner.pe.shape
        owner.pe = type(owner)(width, length).pe.to(dtype)


def load_state_strictly(config: dict, state: dict[str, torch.Tensor], source: Path, dtype: torch.dtype):
    """A MotionAdapter whose every parameter and buffer is a tensor of ``state``.

    The model is built on the meta device, so nothing is randomly initialised in the first place, and a
    tensor that the file does not provide would stay on the meta device, where the final check finds it.
    One exception: a file saved without any positional table (some fine-tunes drop them; they are a fixed
    sinusoid, not weights) gets diffusers' own tables, the same function of position the original code uses.
    A file that has some tables but not all is incomplete and refused like any other.
    """
    from diffusers import MotionAdapter
    try:
        with torch.device("meta"):
            model = MotionAdapter.from_config(config)
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"Motion adapter '{source}': a MotionAdapter with {_settings(config)} cannot be built "
                             f"({error}). {_advice(source)}") from None
    expected = model.state_dict()
    tables = {k for k in expected if k.endswith(TABLE)}
    computed = set() if tables & state.keys() else tables
    missing = expected.keys() - state.keys() - computed
    unexpected = state.keys() - expected.keys()
    mismatched = [k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape]
    if missing or unexpected or mismatched:
        raise _mismatch_error(source, missing, unexpected, mismatched, dict(model.config))
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=not computed, assign=True)
    _compute_tables(model, computed, dtype)
    left = _unloaded(model)
    if left:
        raise _mismatch_error(source, left, (), (), dict(model.config))
    return model


def _load_folder(folder: Path, dtype: torch.dtype):
    """A diffusers MotionAdapter folder, through diffusers' own loader, refused if it left any tensor unloaded."""
    from diffusers import MotionAdapter
    entries = require_safetensors(folder, "The motion adapter")
    with loading(folder, "The motion adapter"):
        check_model_fits(MotionAdapter, folder, entries, dtype, "The motion adapter")
        model, info = MotionAdapter.from_pretrained(folder, use_safetensors=True, torch_dtype=dtype,
                                                    local_files_only=True, output_loading_info=True)
    missing = set(info["missing_keys"]) | set(_unloaded(model))
    mismatched = [entry[0] for entry in info["mismatched_keys"]]
    if missing or info["unexpected_keys"] or mismatched:
        raise _mismatch_error(folder, missing, info["unexpected_keys"], mismatched,
                              dict(model.config))
    return model


def load_motion_adapter(path: Path, dtype: torch.dtype):
    """A diffusers MotionAdapter folder, or a single .safetensors motion module in the original AnimateDiff
    layout (v1, v2, v3, …) or in diffusers' layout, configured from its own tensors; a same-name ``.json``
    beside the file overrides what is read from them."""
    path = Path(path)
    if path.is_dir():
        return _load_folder(path, dtype)
    if path.suffix != ".safetensors":
        raise ModelFileError(f"Motion adapter '{path.name}' is not a .safetensors file. Pickle checkpoints "
                             "(.ckpt/.pth) can run code when loaded: use the .safetensors release.")
    from safetensors.torch import load_file
    check_safetensors(path)
    with loading(path, "The motion adapter"):
        state = load_file(str(path))
    if any(ORIGINAL_MARK in name for name in state):
        state = to_diffusers_layout(state, path)
    config = {**derive_config(state, path), **read_sidecar(path)}
    return load_state_strictly(config, state, path, dtype)
