"""The host's interrupt inside one attention: a large scaled-dot-product attention computed in pieces, with the
check between them.

``checked_blocks`` checks before every block and layer, but one attention is one operation: ModelScope's first
attention at 4096×4096 attends 262144 tokens of a frame to each other, and no check between layers stops that.
While a check is installed, every diffusers attention module inside the checked networks (``Attention`` of the
UNets, their motion modules and AutoencoderKL; ``WanAttention``) gets its processor wrapped through diffusers'
public ``set_processor``, and the original back when the check ends. The wrapper runs the original processor
unchanged. Only when the call is large enough to need it (``_may_need_pieces``; normal sizes skip this), every
``torch.nn.functional.scaled_dot_product_attention`` the processor calls whose work (``_work``: the score
matrix, batch × heads × queries × keys, times the head dim, plus the rows' traffic) exceeds the budget is
computed in pieces along the batch and the queries, ``check()`` before each piece. Softmax runs over the keys,
so every query row is computed on its own: the pieces equal the whole to float rounding, and the memory a piece
needs is bounded too.

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
import math
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

CPU_PIECE_WORK = 2 ** 31
"""Work (see ``_work``) per piece on the CPU: 0.07 to 0.3 s on two cores shared with five other busy processes
(measured over the shapes the networks produce, from one-query attentions over 524288 pixels to 65536 keys), so a
check answers well within 2 s even at several times slower. An attention within it (e.g. 1024 queries × 4096
keys × 5 heads of dim 64) runs in one piece. Measured on one thread, the pieces cost 1 to 3% over the whole
attention at once (ModelScope's widest attention at 512×512 × 16 frames and at 256×256; 16384 tokens a frame)."""

DEVICE_PIECE_WORK = 2 ** 37
"""On an accelerator: one launch per piece costs microseconds and a piece runs ~100× faster than on the CPU, so
pieces are 64× larger; typical sizes (up to 512×512 × 16 frames on the SD1.5 UNet's widest attention) run in a
few pieces at most. Kernels run asynchronously there: a check between pieces bounds the work queued, not the
time the host then waits for the queue. Not measured on a GPU."""

ROW_WORK, SAMPLE_WORK = 32, 128
"""Reading a query or key row and writing an output row, and a (sample, head) pair, in units of one score: what
makes a short attention over a huge batch slow (a temporal attention over one frame of 512×512 latent pixels)."""


def piece_work(device: torch.device) -> int:
    return CPU_PIECE_WORK if device.type == "cpu" else DEVICE_PIECE_WORK


def _work(heads: int, rows: int, keys: int, dim: int) -> int:
    """The work of attending ``rows`` queries to ``keys`` keys in ``heads`` heads of dim ``dim`` (one sample):
    scores, row traffic and per-head overhead, each times ``dim + 16`` (a score's softmax costs about as much as
    16 of its multiply-adds). Within 3× of the measured CPU time per unit over all the shapes the networks make."""
    return heads * (rows * keys + ROW_WORK * (rows + keys) + SAMPLE_WORK) * (dim + 16)


def rows_per_piece(batch: int, heads: int, rows: int, keys: int, dim: int, device: torch.device,
                   scale: int = 1) -> int:
    """Query rows per piece of an attention cut along its queries only (every sample and head of a row together,
    as where the heads are packed into the channels): all ``rows`` when the whole fits ``scale`` pieces' work."""
    budget = scale * piece_work(device)
    if batch * _work(heads, rows, keys, dim) <= budget:
        return rows
    per_sample = budget // (batch * heads * (dim + 16)) - ROW_WORK * keys - SAMPLE_WORK
    return min(rows, max(1, per_sample // (keys + ROW_WORK)))


def _pieces(batch: int, heads: int, rows: int, keys: int, dim: int, budget: int,
            group: int = 1) -> Iterator[tuple[slice, slice, slice]]:
    """(batch, head, query) slices covering ``batch × heads × rows`` query rows (``group`` heads more per head,
    which are never cut), each piece of about ``budget`` work: whole samples when one fits, else heads of one
    sample, else runs of query rows of one head. A piece reads its keys and values whole, so the longer its runs
    of query rows the less it costs over the whole: one head's rows are cut rather than all heads'."""
    head = _work(group, rows, keys, dim)
    if heads * head <= budget:
        step = max(1, budget // (heads * head))
        for b in range(0, batch, step):
            yield slice(b, b + step), slice(None), slice(None)
    elif head <= budget:
        step = max(1, budget // head)
        for b in range(batch):
            for h in range(0, heads, step):
                yield slice(b, b + 1), slice(h, h + step), slice(None)
    else:
        step = max(1, budget // (group * (keys + ROW_WORK) * (dim + 16)))
        for b in range(batch):
            for h in range(heads):
                for q in range(0, rows, step):
                    yield slice(b, b + 1), slice(h, h + 1), slice(q, q + step)


def _splittable(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa=False, **_rest) -> bool:
    """Inputs whose pieces along dim 0 and the query dim equal the whole: no dropout (its randomness), no causal
    mask (defined on the whole), no grouped heads; key and value batch dims equal to the query's or 1."""
    tensors = (query, key, value) + (() if attn_mask is None else (attn_mask,))
    if (dropout_p or is_causal or enable_gqa or not all(torch.is_tensor(t) for t in tensors)
            or any(t.is_nested for t in tensors) or query.ndim < 3 or query.numel() == 0
            or (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))):
        return False
    lead = query.shape[:-2]
    return all(t.ndim == query.ndim and all(s in (q, 1) for s, q in zip(t.shape[:-2], lead)) for t in (key, value))


def chunked_attention(check: Callable[[], None] | None, query, key, value, attn_mask=None, dropout_p=0.0,
                      is_causal=False, budget: int | None = None, **rest):
    """``F.scaled_dot_product_attention`` (same arguments) in pieces of about ``budget`` work (``_work``; default
    ``piece_work(query.device)``) along the batch, the heads and the queries, ``check()`` before each; one plain
    call when the whole fits the budget or the inputs cannot be split exactly."""
    whole = dict(attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, **rest)
    if not _splittable(query, key, value, **whole):
        return F.scaled_dot_product_attention(query, key, value, **whole)
    batch, rows, keys, dim = query.shape[0], query.shape[-2], key.shape[-2], query.shape[-1]
    heads = math.prod(query.shape[1:-2])  # the dims between batch and queries
    budget = piece_work(query.device) if budget is None else budget
    if batch * _work(heads, rows, keys, dim) <= budget:
        return F.scaled_dot_product_attention(query, key, value, **whole)
    # dim 1 is cut only in the usual [batch, heads, queries, dim] layout; other layouts by batch and queries
    by_head = query.ndim == 4
    per_head = query.shape[1] if by_head else 1

    def part(t, b, h, q, has_queries):
        if t is None:
            return None
        if t.ndim == query.ndim:
            t = t[b] if t.shape[0] == batch else t
            t = t[:, h] if by_head and t.shape[1] == per_head else t
        return t[..., q, :] if has_queries and t.ndim >= 2 and t.shape[-2] == rows else t

    out = None
    for b, h, q in _pieces(batch, per_head, rows, keys, dim, budget, group=heads // per_head):
        if check is not None:
            check()
        piece = F.scaled_dot_product_attention(part(query, b, h, q, True), part(key, b, h, q, False),
                                               part(value, b, h, q, False), attn_mask=part(attn_mask, b, h, q, True),
                                               dropout_p=dropout_p, is_causal=is_causal, **rest)
        if out is None:
            out = piece.new_empty(query.shape[:-1] + piece.shape[-1:])
        if by_head:
            out[b, h, ..., q, :] = piece
        else:
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


CROSS_KEYS = 1024
"""At most this many keys in a cross-attention (text 77 or 512 tokens, plus image tokens)."""


def _may_need_pieces(attn, hidden_states) -> bool:
    """Whether an attention of module ``attn`` over ``hidden_states`` (``[batch, tokens, channels]`` or
    ``[batch, channels, h, w]``) can exceed the piece budget, with as many keys as tokens or ``CROSS_KEYS``,
    whichever is more. Smaller calls skip the interception (about 50 µs a call on the CPU)."""
    heads, inner = getattr(attn, "heads", None), getattr(attn, "inner_dim", None)
    if not (torch.is_tensor(hidden_states) and hidden_states.ndim in (3, 4) and isinstance(heads, int)
            and isinstance(inner, int) and heads > 0):
        return True
    tokens = hidden_states.shape[1] if hidden_states.ndim == 3 else hidden_states.shape[2] * hidden_states.shape[3]
    work = hidden_states.shape[0] * _work(heads, tokens, max(tokens, CROSS_KEYS), inner // heads)
    return work > piece_work(hidden_states.device)


class InterruptibleAttention:
    """An attention processor running ``inner`` (the module's own processor) with its large attentions split
    and the check between the pieces. Reading or setting any other attribute reaches ``inner`` (IP-Adapter's
    ``scale``, Wan's attention backend), so code that walks ``attn_processors`` during the call still works."""

    def __init__(self, inner, check: Callable[[], None]):
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "check", check)

    def __call__(self, attn, *args, **kwargs):
        hidden_states = args[0] if args else kwargs.get("hidden_states")
        if not _may_need_pieces(attn, hidden_states):
            return self.inner(attn, *args, **kwargs)
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
