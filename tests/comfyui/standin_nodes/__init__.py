"""Test-only, never shipped: ComfyUI's ``CLIPLoader`` with a stand-in for Wan's text encoder, for the CPU tiers.

The native workflows load UMT5-XXL with ``CLIPLoader`` (type wan): 5.7 B parameters, far too large for a 2-core
CPU test. The tier-2 and browser servers load this folder as a custom node (``comfyui_server.pack_server``), and it
replaces ``CLIPLoader`` in ComfyUI's node table by a subclass with the same inputs (inherited, so ``/object_info``
and the editor see the real declaration). For type wan its CLIP gives what ``CLIPTextEncode`` gets from UMT5-XXL in
shape: ``[1, 512, 4096]``, one random row per word plus the end token (seeded by the text, so a prompt always
encodes the same), zeros past them as UMT5's masked padding gives. It is random, not a language model. Every other
type, and ``CLIPTextEncode`` and the rest of each graph, are ComfyUI's own. The shipped workflows run unchanged.
"""
from __future__ import annotations

import hashlib
import logging

import folder_paths
import nodes
import torch

REAL_CLIP_LOADER = nodes.NODE_CLASS_MAPPINGS["CLIPLoader"]
TOKENS, WIDTH = 512, 4096  # ComfyUI's Wan tokenizer pads to 512 tokens; UMT5-XXL's width


class StandInWanCLIP:
    """The two calls ``CLIPTextEncode`` makes."""

    def tokenize(self, text: str, **_) -> dict:
        return {"text": text}

    def encode_from_tokens_scheduled(self, tokens: dict, unprojected=False, add_dict: dict | None = None,
                                     show_pbar=True) -> list:
        text = tokens["text"]
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        used = min(len(text.split()) + 1, TOKENS)
        cond = torch.zeros(1, TOKENS, WIDTH)
        cond[:, :used] = torch.randn(1, used, WIDTH, generator=torch.Generator().manual_seed(seed))
        return [[cond, {"pooled_output": None, **(add_dict or {})}]]


class CLIPLoader(REAL_CLIP_LOADER):
    def load_clip(self, clip_name, type="stable_diffusion", device="default"):
        if type != "wan":
            return super().load_clip(clip_name, type, device)
        folder_paths.get_full_path_or_raise("text_encoders", clip_name)  # a missing file fails as it would
        logging.info("test stand-in: CLIPLoader %s (type wan) gives random Wan-shaped conditioning", clip_name)
        return (StandInWanCLIP(),)


nodes.NODE_CLASS_MAPPINGS["CLIPLoader"] = CLIPLoader
NODE_CLASS_MAPPINGS: dict = {}
