"""Checks that turn a broken model file into one message naming the file, the fault and the fix.

The libraries' own messages name no file (``Expecting value: line 1 column 67``), a file but not the fault
(``Unable to load weights from checkpoint file``), or come after the damage is done: a config whose sizes are
absurd allocates its buffers for real before any weight is compared. So every loader of the pack reads its
JSON through :func:`read_json`, checks each safetensors header with :func:`check_safetensors` before a library
opens the file, builds the model described by a folder's config on the meta device first
(:func:`check_model_fits`), and runs the library's load inside :func:`loading`, which rewrites what still goes
wrong into a :class:`ModelFileError` naming the folder and keeps the libraries' log records short.
"""
from __future__ import annotations

import json
import logging
import math
import os
import struct
from contextlib import contextmanager
from pathlib import Path

import torch

PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
HEADER_LIMIT = 100_000_000  # safetensors itself refuses headers above 100 MB
SHOWN = 3  # tensors named in a shape error before "and N more"
LISTED = 5  # names in a list of missing or stray tensors before "and N more"
KEEP = 200  # characters of an over-long text kept in a log line or message
LIBRARY_LOGGERS = ("diffusers", "transformers")
GIB = 2 ** 30
MEMORY_ADVICE = "Close other programs or models, choose a smaller model, or load it in fp16/bf16."


class ModelFileError(ValueError):
    """A model folder or file cannot be used; the message says what to put where."""


def listed(names) -> str:
    """The first few of ``names`` (sorted), then how many more: a message stays one readable line."""
    names = sorted(names)
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


def abridge(text: str, keep: int = KEEP) -> str:
    """``text`` if short, else its first ``keep`` characters and its length: a log line stays readable."""
    if len(text) <= keep:
        return text
    return f"{text[:keep]}… ({len(text):,} characters in all)"


# --- JSON -----------------------------------------------------------------------------------------
def read_json(path: Path, missing_hint: str = "a complete diffusers model folder", fix: str | None = None) -> dict:
    """The JSON object in ``path``; a missing, damaged or non-object file is a ModelFileError naming it and
    saying ``fix`` (by default: download that file again)."""
    path = Path(path)
    fix = fix or f"Download '{path.name}' of this model again into '{path.parent}'."
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"'{path}' is missing: is '{path.parent}' {missing_hint}?") from None
    except json.JSONDecodeError as error:
        raise ModelFileError(f"'{path}' is not valid JSON ({error.msg}: line {error.lineno}, column {error.colno}): "
                             f"the file is damaged or was cut short. {fix}") from None
    except UnicodeDecodeError:
        raise ModelFileError(f"'{path}' is not valid JSON (not even text): the file is damaged. {fix}") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"'{path}' holds a JSON {type(config).__name__}, not the object of settings it should "
                             f"hold. {fix}")
    return config


# --- safetensors headers ----------------------------------------------------------------------------
def _other_format(start: bytes) -> str | None:
    """What a file whose header length makes no sense is instead of safetensors, when its first bytes say so
    (only then: any of these bytes can start a valid header length)."""
    if start.startswith(b"PK\x03\x04"):
        return "a PyTorch checkpoint (a zip archive of pickles)"
    if start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    if start.startswith((b"<", b"{", b"version https://git-lfs")):
        return "a text file (an HTML error page or a Git LFS pointer, not the weights)"
    return None


def check_safetensors(path: Path) -> dict[str, dict]:
    """The tensor entries of a safetensors file's header (name → dtype, shape, data_offsets), after checking,
    from the header alone, that the file is safetensors and holds every byte its header promises."""
    path = Path(path)
    redownload = f"Download '{path.name}' again into '{path.parent}'."
    size = path.stat().st_size
    if size < 8:
        raise ModelFileError(f"'{path}' is {'empty (0 bytes)' if not size else f'only {size} bytes long'}: the "
                             f"download did not complete. {redownload}")
    with path.open("rb") as file:
        start = file.read(8)
        (length,) = struct.unpack("<Q", start)
        if length > min(HEADER_LIMIT, size - 8):
            other = _other_format(start)
            if other:
                raise ModelFileError(f"'{path}' is not a safetensors file but {other} renamed to .safetensors. This "
                                     "pack loads only real safetensors (pickles can run code when loaded): download "
                                     f"the .safetensors release of this model into '{path.parent}'.")
            raise ModelFileError(f"'{path}' is not a readable safetensors file: its first 8 bytes announce a "
                                 f"{length:,}-byte header in a {size:,}-byte file. It is damaged, cut short, or "
                                 f"another format renamed to .safetensors. {redownload}")
        raw = file.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise TypeError
        entries = {name: entry for name, entry in header.items() if name != "__metadata__"}
        end = max((_span(entry)[1] for entry in entries.values()), default=0)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ModelFileError(f"'{path}' is damaged: its safetensors header is not the table of tensors it should "
                             f"be. {redownload}") from None
    data = size - 8 - length
    if end > data:
        raise ModelFileError(f"'{path}' is cut short: its header lists {len(entries)} tensors ending at byte "
                             f"{8 + length + end:,}, but the file has {size:,} bytes. The download did not complete. "
                             f"{redownload}")
    if end < data:
        raise ModelFileError(f"'{path}' is damaged: it has {data - end:,} bytes after its last tensor, which no "
                             f"safetensors file has. {redownload}")
    return entries


def _span(entry: dict) -> tuple[int, int]:
    """Where a header entry's bytes lie; ValueError unless it is a well-formed entry."""
    begin, end = entry["data_offsets"]
    if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end and isinstance(entry["dtype"], str)
            and all(isinstance(side, int) and side >= 0 for side in entry["shape"])):
        raise ValueError
    return begin, end


def _weights_in(folder: Path) -> tuple[list[Path], list[Path]]:
    """(safetensors files, pickled weight files) directly in ``folder``."""
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return ([p for p in files if p.suffix == ".safetensors"],
            [p for p in files if p.suffix in PICKLE_SUFFIXES])


def require_safetensors(folder: Path, what: str) -> dict[str, dict]:
    """The tensor entries of every safetensors file in a model folder, after checking that it has some, and
    that each of them and each JSON file beside them is whole; pickle-only folders are refused with the reason."""
    folder = Path(folder)
    safe, pickled = _weights_in(folder)
    if not safe:
        if pickled:
            raise ModelFileError(
                f"{what} in '{folder}' has only pickled weights ({', '.join(p.name for p in pickled)}). "
                "Pickle files can run code when loaded, so this pack loads safetensors only: download the "
                ".safetensors variant of the model (most repositories ship one) into the same folder.")
        raise ModelFileError(f"{what}: no weights found in '{folder}' (expected a .safetensors file).")
    for config in sorted(folder.glob("*.json")):
        read_json(config)
    entries: dict[str, dict] = {}
    for weights in sorted(safe):
        entries.update(check_safetensors(weights))
    return entries


# --- the model a config describes -----------------------------------------------------------------
def available_memory() -> int | None:
    """Bytes the system can still hand out (available memory plus free swap), or None where unknown."""
    try:
        with open("/proc/meminfo") as info:
            fields = {name: int(value.split()[0]) * 1024 for name, value in (line.split(":", 1) for line in info)}
        if "MemAvailable" in fields:
            return fields["MemAvailable"] + fields.get("SwapFree", 0)
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _on_meta(model_class, config: dict):
    """The model ``config`` describes, with every parameter and buffer on the meta device (no memory), or None
    when it cannot be built there (the library's own load then reports why)."""
    try:
        with torch.device("meta"):
            config_class = getattr(model_class, "config_class", None)  # transformers; diffusers has none
            return model_class(config_class.from_dict(config)) if config_class else model_class.from_config(config)
    except Exception:  # noqa: BLE001 - any failure here is reported by the real load that follows
        return None


def _bytes_at(model: torch.nn.Module, dtype: torch.dtype) -> int:
    """Bytes of every parameter and buffer once loaded, floating ones cast to ``dtype``."""
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}.values()
    size = torch.empty((), dtype=dtype).element_size()
    return sum(t.numel() * (size if t.is_floating_point() else t.element_size()) for t in tensors)


def check_model_fits(model_class, folder: Path, entries: dict[str, dict], dtype: torch.dtype, what: str) -> None:
    """Refuses, before anything is allocated, a folder whose config.json builds tensors of other shapes than its
    weights have, or a model larger than the memory the machine has left."""
    folder = Path(folder)
    model = _on_meta(model_class, read_json(folder / "config.json"))
    if model is None:
        return
    state = model.state_dict()
    wrong = sorted(k for k in state.keys() & entries.keys() if tuple(state[k].shape) != tuple(entries[k]["shape"]))
    if wrong:
        shown = "; ".join(f"{k}: {tuple(entries[k]['shape'])} in the weights, {tuple(state[k].shape)} by the config"
                          for k in wrong[:SHOWN])
        more = f"; and {len(wrong) - SHOWN} more" if len(wrong) > SHOWN else ""
        raise ModelFileError(f"{what} in '{folder}': config.json and the weights do not belong together — "
                             f"{len(wrong)} tensor(s) have other shapes than the config describes ({shown}{more}). "
                             "Download this folder again, config.json with its weights.")
    need, free = _bytes_at(model, dtype), available_memory()
    if free is not None and need > free:
        held = _held_bytes(entries, dtype)
        cause = (f"Its weights would take only {_size(held)}, so config.json does not describe these weights "
                 "(edited, or from another model): download this folder again, config.json with its weights."
                 if need > 2 * held else MEMORY_ADVICE)
        name = str(dtype).removeprefix("torch.")
        raise ModelFileError(f"{what} in '{folder}' would need {_size(need)} of memory in {name} (as its config.json "
                             f"describes it), but this machine has {_size(free)} available. {cause}")


def _size(count: int) -> str:
    return f"{count / GIB:,.1f} GiB" if count >= GIB else f"{count / 2 ** 20:,.1f} MiB"


def _held_bytes(entries: dict[str, dict], dtype: torch.dtype) -> int:
    """Bytes the tensors of a safetensors header take once loaded, floating ones cast to ``dtype``."""
    size = torch.empty((), dtype=dtype).element_size()
    return sum(math.prod(entry["shape"]) * size if entry["dtype"].startswith(("F", "BF"))
               else _span(entry)[1] - _span(entry)[0] for entry in entries.values())


# --- around a library's load ----------------------------------------------------------------------
class _ShortRecords(logging.Filter):
    """Cuts a record's message to its first part and its length (diffusers logs every unexpected config key)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > 4 * KEEP:
            record.msg, record.args = abridge(message), None
        return True


@contextmanager
def short_library_logs():
    """While a library loads: its log records (all its loggers, which do not propagate) are kept short."""
    short = _ShortRecords()
    loggers = [logger for name, logger in logging.Logger.manager.loggerDict.items()
               if isinstance(logger, logging.Logger) and name.split(".")[0] in LIBRARY_LOGGERS]
    loggers += [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    for logger in loggers:
        logger.addFilter(short)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(short)


@contextmanager
def loading(path: Path, what: str, fix: str | None = None):
    """Runs a library's load of ``path`` with short log records; what still fails becomes a ModelFileError that
    names ``path`` and says ``fix`` (by default: download it again; for a failed allocation: free memory)."""
    from safetensors import SafetensorError
    path = Path(path)
    with short_library_logs():
        try:
            yield
        except ModelFileError:
            raise
        except (OSError, ValueError, RuntimeError, KeyError, MemoryError, SafetensorError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if isinstance(error, MemoryError) or "allocate" in first:
                fix = f"There is not enough memory. {MEMORY_ADVICE}"
            fix = fix or (f"Its files are damaged or do not belong together: download "
                          f"{'the folder' if path.is_dir() else 'the file'} '{path.name}' again.")
            raise ModelFileError(f"{what} in '{path}' could not be loaded: {abridge(first, 2 * KEEP)}. {fix}"
                                 ) from error
