"""The host's interrupt inside one attention: a large scaled-dot-product attention computed in pieces, with the
check between them.

``checked_blocks`` checks before every block and layer, but one attention is one operation: ModelScope's first
attention at 4096×4096 attends 262144 tokens of a frame to each other, and no check between layers stops that.
While a check is installed, every diffusers attention module inside the checked networks (``Attention`` of the
UNets, their motion modules and AutoencoderKL; ``WanAttention``) gets its processor wrapped through diffusers'
public ``set_processor``, and the original back when the check ends. The wrapper runs the original processor
unchanged, but every ``torch.nn.functional.scaled_dot_product_attention`` that processor calls whose score matrix
(batch × heads × queries × keys) exceeds ``chunk_scores`` is computed in pieces along the batch and the queries,
``check()`` before each piece. Softmax runs over the keys, so every query row is computed on its own: the pieces
equal the whole to float rounding, and a piece's scores are bounded in memory too.

The attention function is intercepted (a ``TorchFunctionMode``, PyTorch's public, thread-local override hook),
not the processor's inputs, so every processor keeps its own logic: IP-Adapter's image tokens and scale, Wan's
rotary embeddings and attention backend (the default, native one calls that function; flash or sage backends
are not split), a VAE's group norm. A processor that computes attention some other way runs unsplit. Attention
outside a processor (the Wan VAE's, which calls the function directly) is not covered.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

CPU_CHUNK_SCORES = 2 ** 24
"""Score elements per piece on the CPU: about 0.08 s at head dim 64 (0.16 s at Wan's 128) on two shared cores
(200 M score elements/s measured), so a check answers well within 2 s even at ten times slower. An attention no
larger than this (about 4096 queries × 4096 keys for one head of one frame) runs in one piece."""

DEVICE_CHUNK_SCORES = 2 ** 30
"""On an accelerator: one launch per piece costs microseconds and a piece runs ~100× faster than on the CPU, so
pieces are larger; typical sizes (up to 512×512 × 16 frames on the SD1.5 UNet's widest attention) are split in
a few pieces at most. Kernels run asynchronously there: a check between pieces bounds the work queued, not the
time the host waits for the queue."""


def chunk_scores(device: torch.device) -> int:
    return CPU_CHUNK_SCORES if device.type == "cpu" else DEVICE_CHUNK_SCORES


def _pieces(batch: int, rows: int, per_row: int, budget: int) -> Iterator[tuple[slice, slice]]:
    """(batch, query) slices covering ``batch × rows`` query rows of ``per_row`` score elements each, each piece
    about ``budget`` score elements: whole samples when one fits, else runs of query rows of one sample."""
    if rows * per_row <= budget:
        step = max(1, budget // (rows * per_row))
        for b in range(0, batch, step):
            yield slice(b, b + step), slice(None)
    else:
        step = max(1, budget // per_row)
        for b in range(batch):
            for q in range(0, rows, step):
                yield slice(b, b + 1), slice(q, q + step)


def _splittable(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa=False, **_rest) -> bool:
    """Inputs whose pieces along dim 0 and the query dim equal the whole: no dropout (its randomness), no causal
    mask (defined on the whole), no grouped heads; key and value batch dims equal to the query's or 1."""
    tensors = (query, key, value) + (() if attn_mask is None else (attn_mask,))
    if (dropout_p or is_causal or enable_gqa or not all(torch.is_tensor(t) for t in tensors)
            or any(t.is_nested for t in tensors) or query.ndim < 3
            or (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))):
        return False
    lead = query.shape[:-2]
    return all(t.ndim == query.ndim and all(s in (q, 1) for s, q in zip(t.shape[:-2], lead)) for t in (key, value))


def chunked_attention(check: Callable[[], None] | None, query, key, value, attn_mask=None, dropout_p=0.0,
                      is_causal=False, budget: int | None = None, **rest):
    """``F.scaled_dot_product_attention`` (same arguments) in pieces of at most ``budget`` score elements (default
    ``chunk_scores(query.device)``) along dim 0 and the queries, ``check()`` before each; one plain call when the
    whole fits the budget or the inputs cannot be split exactly."""
    whole = dict(attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, **rest)
    if not _splittable(query, key, value, **whole):
        return F.scaled_dot_product_attention(query, key, value, **whole)
    batch, rows, keys = query.shape[0], query.shape[-2], key.shape[-2]
    heads = query[0, ..., 0, 0].numel()  # the dims between batch and queries
    budget = chunk_scores(query.device) if budget is None else budget
    if batch * heads * rows * keys <= budget:
        return F.scaled_dot_product_attention(query, key, value, **whole)

    def part(t, b, q, queries_dim):
        if t is None:
            return None
        if t.ndim == query.ndim and t.shape[0] == batch:
            t = t[b]
        return t[..., q, :] if queries_dim and t.ndim >= 2 and t.shape[-2] == rows else t

    out = None
    for b, q in _pieces(batch, rows, heads * keys, budget):
        if check is not None:
            check()
        piece = F.scaled_dot_product_attention(part(query, b, q, True), part(key, b, q, False),
                                               part(value, b, q, False), attn_mask=part(attn_mask, b, q, True),
                                               dropout_p=dropout_p, is_causal=is_causal, **rest)
        if out is None:
            out = piece.new_empty(query.shape[:-1] + piece.shape[-1:])
        out[b, ..., q, :] = piece
    return out


class _ChunkedAttentionMode(TorchFunctionMode):
    """Routes ``F.scaled_dot_product_attention`` through ``chunked_attention``; every other function untouched
    (inside ``__torch_function__`` the mode is off, so the pieces' own calls are plain)."""

    def __init__(self, check: Callable[[], None]):
        super().__init__()
        self.check = check

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            return chunked_attention(self.check, *args, **kwargs)
        return func(*args, **kwargs)


class InterruptibleAttention:
    """An attention processor running ``inner`` (the module's own processor) with its large attentions split
    and the check between the pieces. Reading or setting any other attribute reaches ``inner`` (IP-Adapter's
    ``scale``, Wan's attention backend), so code that walks ``attn_processors`` during the call still works."""

    def __init__(self, inner, check: Callable[[], None]):
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "check", check)

    def __call__(self, attn, *args, **kwargs):
        with _ChunkedAttentionMode(self.check):
            return self.inner(attn, *args, **kwargs)

    def __getattr__(self, name):
        if name in ("inner", "check") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        setattr(self.inner, name, value)


class InterruptibleAttentionModule(InterruptibleAttention, nn.Module):
    """The wrapper of a processor that is itself a module (IP-Adapter's, with its image key/value layers): a
    module holding it, so the layers stay in the network's module tree (``parameters()``, ``to()``, group
    offloading's onloading) while it is wrapped."""

    def __init__(self, inner: nn.Module, check: Callable[[], None]):
        nn.Module.__init__(self)
        nn.Module.__setattr__(self, "inner", inner)
        object.__setattr__(self, "check", check)

    def __getattr__(self, name):
        try:
            return nn.Module.__getattr__(self, name)
        except AttributeError:
            if name in ("inner", "check") or name.startswith("__"):
                raise
        return getattr(self.inner, name)


@functools.lru_cache(maxsize=None)
def _wrapper_class(inner_class: type) -> type:
    """A wrapper class whose ``__call__`` shows the inner class's signature: diffusers' ``Attention`` passes a
    processor only the keyword arguments its ``__call__`` names (``temb``, ``ip_adapter_masks``, ...)."""
    base = InterruptibleAttentionModule if issubclass(inner_class, nn.Module) else InterruptibleAttention
    try:
        signature = inspect.signature(inner_class.__call__)
    except (TypeError, ValueError):
        return base

    def __call__(self, *args, **kwargs):
        return InterruptibleAttention.__call__(self, *args, **kwargs)

    __call__.__signature__ = signature
    name = f"Interruptible{inner_class.__name__}"
    return type(name, (base,), {"__call__": __call__, "__module__": __name__, "__qualname__": name})


def _attention_modules(modules: Iterable[nn.Module]) -> list[nn.Module]:
    found, seen = [], set()
    for root in modules:
        for module in root.modules():
            processor = getattr(module, "processor", None)
            if (id(module) not in seen and callable(getattr(module, "set_processor", None)) and callable(processor)
                    and not isinstance(processor, InterruptibleAttention)):
                seen.add(id(module))
                found.append(module)
    return found


@contextlib.contextmanager
def interruptible_attention(modules: Iterable[nn.Module], check: Callable[[], None] | None) -> Iterator[int]:
    """While inside, every attention processor within ``modules`` is wrapped in an ``InterruptibleAttention``
    calling ``check()`` between the pieces of a large attention; the original processors are set back on exit,
    also when ``check`` raised. Yields the number of wrapped processors; ``check`` None wraps nothing."""
    wrapped: list[tuple[nn.Module, object]] = []
    try:
        if check is not None:
            for module in _attention_modules(modules):
                processor = module.processor
                module.set_processor(_wrapper_class(type(processor))(processor, check))
                wrapped.append((module, processor))
        yield len(wrapped)
    finally:
        for module, processor in reversed(wrapped):
            module.set_processor(processor)
