"""Loading single-file models so that every tensor of the file is accounted for, or nothing is loaded.

diffusers' ``from_single_file`` converts a file's keys and then loads leniently: a tensor the conversion did not
use is at most logged, one the model needs but the file lacks stays random (without accelerate) or fails with
"Cannot copy out of meta tensor" naming nothing (with it), and a file tensor of the wrong shape fails with a
message that names no file. A file that is not the model it claims to be must not run with random weights, so
:func:`single_file_model` watches the conversion from three sides and turns each fault into one
:class:`ModelFileError` naming the file, the part, the first tensors and the fix:

- a file tensor the converter never read (it reads with ``[]``, ``get`` or ``pop``; a dict that records those
  reads is what it is given);
- a converted tensor with no place in the model (diffusers logs these; the record is caught during the call);
- a parameter the conversion left unloaded (still on the meta device in the model under construction, which is
  caught as it is created).

A converter that first copies a whole prefix into a dict of its own (the LDM UNet converter does) and then maps
from it hides, within that prefix, a tensor it leaves unmapped; the checks above see every other fault.

For the transformers models the pack builds itself, :func:`load_exact` compares the file's tensors with the model
one by one before anything is assigned.
"""
from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .file_checks import ModelFileError, abridge, check_safetensors, listed, loading

UNUSED_RECORD = "Some weights of the model checkpoint were not used"  # diffusers' log line for them


def never(key: str) -> bool:
    return False


def read_single_file(path: Path, what: str) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file (memory-mapped by safetensors), after checking its header is whole."""
    from safetensors.torch import load_file
    path = Path(path)
    check_safetensors(path)
    with loading(path, what):
        return load_file(str(path))


def read_metadata(path: Path) -> dict[str, str]:
    """The free-form ``__metadata__`` of a safetensors header (ComfyUI records quantisation there)."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as file:
        return dict(file.metadata() or {})


CONFIG_METADATA = "zeroshot_video_config"


def config_overrides(path: Path, metadata: dict[str, str] | None = None) -> dict:
    """Config values no tensor shape records (head counts, GroupNorm groups), declared as JSON under
    CONFIG_METADATA in a file's header. Only the pack's own tiny stand-ins declare them, so that a stand-in loads to
    exactly the model it was written from; released files carry none and get the released values."""
    metadata = read_metadata(path) if metadata is None else metadata
    if CONFIG_METADATA not in metadata:
        return {}
    try:
        return dict(json.loads(metadata[CONFIG_METADATA]))
    except (ValueError, TypeError):
        raise ModelFileError(f"'{path}' has a damaged {CONFIG_METADATA} entry in its header.") from None


class _ReadRecord(dict):
    """A state dict that records which of its keys a converter read (by ``[]``, ``get``, ``pop`` or iterating
    the values); a copy shares the record."""

    def __init__(self, *args, record: set | None = None):
        super().__init__(*args)
        self.read = set() if record is None else record

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in self:
            self.read.add(key)
        return super().get(key, default)

    def pop(self, key, *default):
        if key in self:
            self.read.add(key)
        return super().pop(key, *default)

    def setdefault(self, key, default=None):
        self.read.add(key)
        return super().setdefault(key, default)

    def items(self):
        self.read.update(self.keys())
        return super().items()

    def values(self):
        self.read.update(self.keys())
        return super().values()

    def copy(self):
        return _ReadRecord(self, record=self.read)


class _Seen(logging.Filter):
    """Records each message as a logger first sees it (before the pack's own filters shorten it)."""

    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        return True


class _Below(logging.Filter):
    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


@contextmanager
def _library_warnings():
    """diffusers' warnings during the block, seen whatever verbosity the user chose for the library (its own
    handlers still show only what that verbosity lets through)."""
    root = logging.getLogger("diffusers")
    loggers = [root] + [logger for name, logger in logging.Logger.manager.loggerDict.items()
                        if isinstance(logger, logging.Logger) and name.startswith("diffusers.")]
    seen, level, shown = _Seen(), root.level, _Below(root.getEffectiveLevel())
    for handler in root.handlers:
        handler.addFilter(shown)
    for logger in loggers:
        logger.addFilter(seen)
    root.setLevel(min(root.getEffectiveLevel(), logging.WARNING))
    try:
        yield seen.messages
    finally:
        root.setLevel(level)
        for logger in loggers:
            logger.removeFilter(seen)
        for handler in root.handlers:
            handler.removeFilter(shown)


@contextmanager
def _created(cls):
    """The instances of ``cls`` created during the block (seen as they register their first submodule)."""
    models: list[nn.Module] = []

    def hook(module, name, submodule):
        if type(module) is cls and not any(m is module for m in models):
            models.append(module)

    handle = nn.modules.module.register_module_module_registration_hook(hook)
    try:
        yield models
    finally:
        handle.remove()


def _unloaded(model: nn.Module) -> list[str]:
    return [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]


def _unused_converted(messages: list[str]) -> str | None:
    """The converted tensors diffusers logged as unused (how many, which), or None when it logged none."""
    for message in messages:
        if message.startswith(UNUSED_RECORD):
            found = re.search(r"\[['\"](.*)['\"]\]", message, re.DOTALL)
            if not found:
                return f"tensors this model has no place for ({abridge(message.split(':', 1)[-1].strip())})"
            names = found.group(1).split(", ")
            return f"{len(names)} tensor(s) this model has no place for (after conversion: {listed(names)})"
    return None


def _fault(file: Path, what: str, fault: str, advice: str) -> ModelFileError:
    return ModelFileError(f"{what} '{file}' {fault}. Refused rather than run with random or misplaced weights: "
                          f"{advice}")


def single_file_model(cls, state_dict: dict[str, torch.Tensor], file: Path, what: str, config_dir: Path, dtype,
                      subfolder: str | None = None, ignored: Callable[[str], bool] = never):
    """``cls`` (a diffusers model class) loaded from ``state_dict`` (the tensors of ``file``, original layout)
    with the config in ``config_dir`` (or its ``subfolder``), never the hub; every tensor not ``ignored`` must be
    used and every parameter loaded, in the right shape. The ``ignored`` tensors (another part's, in a file of
    several parts) are not given to the conversion at all. ``state_dict`` itself is left as it was."""
    file = Path(file)
    advice = (f"'{file.name}' is not a complete {what} of the kind its tensors suggest, or is damaged. "
              f"Download it again, or choose the file made for this slot.")
    source = _ReadRecord({k: v for k, v in state_dict.items() if not ignored(k)})
    with _created(cls) as models, _library_warnings() as warnings:
        try:
            with loading(file, what):
                model = cls.from_single_file(source, config=str(config_dir), subfolder=subfolder, torch_dtype=dtype,
                                             local_files_only=True)
        except ModelFileError as error:
            cause = error.__cause__
            shape = re.search(r"because (\S+) expected shape (.*?), but got (.*?)\. ", str(cause))
            if shape:
                name, needed, found = (re.sub(r"torch\.Size\(\[(.*)\]\)", r"(\1)", part) for part in shape.groups())
                raise _fault(file, what, f"holds a tensor of another shape than this model's: {name} (as diffusers "
                             f"names it) is {found} in the file, the model needs {needed}", advice) from None
            unloaded = [name for m in models for name in _unloaded(m)]
            if unloaded:
                raise _fault(file, what, f"lacks {len(unloaded)} tensor(s) the model needs (named as diffusers "
                             f"names them: {listed(unloaded)})", advice) from None
            if isinstance(cause, KeyError):
                raise _fault(file, what, f"lacks the tensor {cause} the conversion needs", advice) from None
            raise
        finally:
            models.clear()  # a model that failed to load is dropped here, never half-used
    unused = sorted(k for k in state_dict.keys() - source.read if not ignored(k))
    if unused:
        raise _fault(file, what, f"has {len(unused)} tensor(s) this model has no place for ({listed(unused)})",
                     advice)
    converted = _unused_converted(warnings)
    if converted:
        raise _fault(file, what, f"has {converted}", advice)
    unloaded = _unloaded(model)
    if unloaded:  # a library version that leaves meta tensors without failing
        raise _fault(file, what, f"lacks {len(unloaded)} tensor(s) the model needs ({listed(unloaded)})", advice)
    _keep_in_fp32(model, dtype)
    return model


def _keep_in_fp32(model: nn.Module, dtype) -> None:
    """Upcast what diffusers' ``from_pretrained`` leaves in float32 at a 16-bit dtype: the modules the class keeps
    there (Wan: the time embedding, the modulation table, the norms — the precision-critical parts) and the
    buffers no file holds, made in float32 when the model is built (Wan's RoPE tables). ``from_single_file`` casts
    everything, so a single file would otherwise compute differently from the folder of the same weights."""
    if dtype not in (torch.float16, torch.bfloat16):
        return
    keep = getattr(model, "_keep_in_fp32_modules", None) or ()
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.is_floating_point() and any(part in name.split(".") for part in keep):
                tensor.data = tensor.data.float()
        for module in model.modules():
            for name in module._non_persistent_buffers_set:
                buffer = module._buffers.get(name)
                if buffer is not None and buffer.is_floating_point():
                    module._buffers[name] = buffer.float()


@contextmanager
def config_folder(config: dict):
    """A temporary folder holding ``config`` as config.json, for a config derived from the file itself."""
    import json
    with tempfile.TemporaryDirectory(prefix="zeroshot_video_config_") as folder:
        (Path(folder) / "config.json").write_text(json.dumps(config))
        yield Path(folder)


def load_exact(model: nn.Module, state_dict: dict[str, torch.Tensor], file: Path, what: str,
               ignored: Callable[[str], bool] = never, tied: Iterable[str] = ()) -> nn.Module:
    """``model`` (best built on the meta device: nothing is allocated twice) with exactly ``state_dict``'s
    tensors assigned as they are (cast them first): a tensor missing (other than the ``tied`` ones, which the
    model ties to another afterwards), left over (unless ``ignored``) or of another shape is a ModelFileError
    naming ``file``, and the model is not touched."""
    file = Path(file)
    tied = set(tied)
    expected = model.state_dict()
    given = {k: v for k, v in state_dict.items() if not ignored(k)}
    missing = sorted(expected.keys() - given.keys() - tied)
    unexpected = sorted(given.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & given.keys() if tuple(expected[k].shape) != tuple(given[k].shape))
    faults = []
    if missing:
        faults.append(f"lacks {len(missing)} tensor(s) the model needs ({listed(missing)})")
    if unexpected:
        faults.append(f"has {len(unexpected)} tensor(s) this model has no place for ({listed(unexpected)})")
    if wrong:
        shown = "; ".join(f"{k} {tuple(given[k].shape)} in the file, {tuple(expected[k].shape)} in the model"
                          for k in wrong[:3])
        faults.append(f"has {len(wrong)} tensor(s) of another shape than this model's ({shown})")
    if faults:
        raise _fault(file, what, "; ".join(faults), f"'{file.name}' is not a complete {what} of this kind, or is "
                     "damaged. Download it again, or choose the file made for this slot.")
    with loading(file, what):
        model.load_state_dict({k: given[k] for k in expected.keys() & given.keys()}, strict=False, assign=True)
        if tied and hasattr(model, "tie_weights"):
            model.tie_weights()
    unloaded = _unloaded(model)
    if unloaded:
        raise _fault(file, what, f"leaves {len(unloaded)} tensor(s) of the model unset ({listed(unloaded)})",
                     f"'{file.name}' does not fit this model. Download it again, or choose the file made for "
                     "this slot.")
    return model.eval()
