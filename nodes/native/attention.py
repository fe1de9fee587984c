"""ComfyUI's interrupt inside one large attention of a native Wan call, as ``core/interruptible_attention`` gives it
to the pack's own backbones.

ComfyUI's Wan network calls ``optimized_attention(q, k, v, heads=…, transformer_options=…)``, which hands the call to
``transformer_options["optimized_attention_override"]`` when one is set (SageAttention nodes set one). The override
here cuts an attention whose score matrix is large along its queries (a query row's softmax needs only its own
scores, so the pieces equal the whole), checks ComfyUI's interrupt before each piece and runs each through the
MODEL's own override, if it has one, else ComfyUI's attention: the user's attention patch still computes every
score. A piece is ``PIECES`` of the pack's own pieces (``rows_per_piece``): ComfyUI's attention already works in
memory-sized chunks, and each piece reads the keys again, so only what the interrupt needs is cut.
"""
from __future__ import annotations

import torch

from ...core.interruptible_attention import rows_per_piece

OVERRIDE = "optimized_attention_override"
PIECES = 4
"""A native piece is 4 of the pack's: 0.3 to 1.2 s on 2 CPU cores (the interrupt answers within 2 s), so attentions
of up to about 5 000 tokens a head run whole there (cut in two they ran 7 % slower than KSampler's, measured with
bench/native.py); on a GPU, Wan 1.3B at 480p × 81 frames runs in 4 pieces."""


def interruptible(previous=None):
    """An ``optimized_attention_override`` in pieces, each through ``previous`` (the MODEL's own override) or the
    attention ComfyUI chose."""
    import comfy.model_management as model_management

    def run(func, q, *args, **kwargs):
        return previous(func, q, *args, **kwargs) if previous is not None else func(q, *args, **kwargs)

    def override(func, q, k, v, *args, **kwargs):
        heads = kwargs.get("heads", args[0] if args else None)
        if kwargs.get("mask") is not None or len(args) > 1 or not isinstance(heads, int) or q.dim() not in (3, 4):
            return run(func, q, k, v, *args, **kwargs)  # a mask or an unusual call: one piece
        packed = not kwargs.get("skip_reshape", False)  # [B, tokens, heads·dim], else [B, heads, tokens, dim]
        rows_dim = 1 if packed else 2
        dim = q.shape[-1] // heads if packed else q.shape[-1]
        rows = q.shape[rows_dim]
        step = rows_per_piece(q.shape[0], heads, rows, k.shape[rows_dim], dim, q.device, PIECES)
        if step >= rows:
            return run(func, q, k, v, *args, **kwargs)
        pieces = []
        for start in range(0, rows, step):
            model_management.throw_exception_if_processing_interrupted()
            pieces.append(run(func, q.narrow(rows_dim, start, min(step, rows - start)), k, v, *args, **kwargs))
        return torch.cat(pieces, dim=2 if kwargs.get("skip_output_reshape", False) else 1)

    return override
