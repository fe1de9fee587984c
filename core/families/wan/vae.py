"""Wan's causal 3D VAE (diffusers' ``AutoencoderKLWan``): normalised latents, streaming encode and decode.

Wan latents are one continuous causal stream in time: latent frame 0 holds pixel frame 0 alone and every
later latent frame holds the next 4 pixel frames, with convolution state carried from frame to frame.
So a video cannot be decoded in independent chunks as the ε families' image VAE is (``families/unet/vae.py``):
each piece would restart the stream (5 + 9 frames instead of 17, and different values). Decoding the
whole video in one ``vae.decode`` call is correct but holds about three copies of the float video on
the device, which grows with length; FIFO-Diffusion and long clips need memory that does not.

diffusers has no public streaming API, so this module drives the VAE's parts itself, and it is the one
place in the pack that touches these private internals of ``AutoencoderKLWan`` (written against
diffusers 0.42.1; :func:`_require_streaming_internals` checks them):

- ``vae.encoder`` / ``vae.decoder`` called with ``feat_cache=<list>, feat_idx=[0]`` (the causal state)
  and, for the decoder, ``first_chunk=`` (True only for a video's first latent frame);
- ``vae.quant_conv`` / ``vae.post_quant_conv`` around them;
- ``vae._cached_conv_counts["encoder" | "decoder"]``: the length of those state lists;
- ``patchify`` / ``unpatchify`` of ``diffusers.models.autoencoders.autoencoder_kl_wan`` for the Wan 2.2
  layout (``vae.config.patch_size``), so the pixel ↔ channel order is diffusers' own by construction.

The causal state lives in a list owned by our own objects, never in the VAE: every ``vae.encode()`` and
``vae.decode()`` calls ``clear_cache()``, which wipes the VAE's own state lists, so a stream kept there
would be corrupted by any encode in between. Streamed output equals one-call ``vae.decode`` bitwise
(tests/test_wan_vae.py). Spatial tiling (``vae.enable_tiling``) is not applied here: a tiled stream
would need one state list per tile.
"""
from __future__ import annotations

import inspect

import torch

from ...block_checks import require_finite_latent

try:  # diffusers >= 0.41: also sees through offloading hooks
    from diffusers.utils.torch_utils import get_module_execution_device
except ImportError:  # older diffusers; the pack never offloads the VAE, so it runs where its weights are
    def get_module_execution_device(module: torch.nn.Module) -> torch.device:
        return next(module.parameters()).device

DIFFUSERS_WRITTEN_FOR = "0.42.1"

# Latent frame 0 is pixel frame 0 alone; each later latent frame is the next FRAMES_PER_LATENT pixel
# frames (the Wan VAEs downsample time twice by 2, and diffusers' encode feeds its encoder this way).
FRAMES_PER_LATENT = 4


# --- frame counts -------------------------------------------------------------------------------
def latent_frames(video_frames: int) -> int:
    return (video_frames - 1) // FRAMES_PER_LATENT + 1


def video_frames(latent_frames: int) -> int:
    return FRAMES_PER_LATENT * (latent_frames - 1) + 1


def check_video_frames(frames: int, what: str = "frames") -> None:
    """Refuse a pixel frame count that is not 4k+1: the VAE would silently drop the trailing frames."""
    if frames >= 1 and (frames - 1) % FRAMES_PER_LATENT == 0:
        return
    if frames < 1:
        raise ValueError(f"{what}: got {frames}; Wan's VAE needs at least 1 frame (1, 5, 9, … = 4k+1).")
    below = video_frames(latent_frames(frames))
    raise ValueError(f"{what}: got {frames}, but Wan's VAE only represents 4k+1 frames (1, 5, 9, 13, …): "
                     f"use {below} or {below + FRAMES_PER_LATENT}.")


def decoder_geometry(vae) -> tuple[int, int, int]:
    """(pixels per latent side, the decoder's last stage per latent side, its width): a patchifying VAE (2.2) ends
    its decoder at 1/patch of the pixel side (``memory_estimate``)."""
    config = vae.config
    side = int(config["scale_factor_spatial"])
    width = int(config.get("decoder_base_dim") or config["base_dim"]) * int(config["dim_mult"][0])
    return side, side // int(config.get("patch_size") or 1), width


# --- normalisation --------------------------------------------------------------------------------
def _channel_stats(vae, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and 1/std shaped to broadcast over ``[B, C, F, h, w]`` in ``like``'s device/dtype.

    Wan's pipelines multiply by 1/std (rounded in the latents' dtype) instead of dividing by std; the
    same arithmetic here keeps our latents bitwise equal to theirs.
    """
    channels = len(vae.config.latents_mean)
    if like.ndim != 5 or like.shape[1] != channels:
        raise ValueError(f"Wan latents must be [B, {channels}, F, h, w] for this VAE (z_dim {channels}); "
                         f"got shape {tuple(like.shape)}.")
    mean = torch.tensor(vae.config.latents_mean).view(1, channels, 1, 1, 1).to(like.device, like.dtype)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, channels, 1, 1, 1).to(like.device, like.dtype)
    return mean, inv_std


def normalize(vae, z: torch.Tensor) -> torch.Tensor:
    """VAE latents → the normalised space the Wan transformer works in, ``(z − mean) / std``."""
    mean, inv_std = _channel_stats(vae, z)
    return (z - mean) * inv_std


def denormalize(vae, z_n: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`: what the VAE decoder takes."""
    mean, inv_std = _channel_stats(vae, z_n)
    return z_n / inv_std + mean


# --- private diffusers internals ------------------------------------------------------------------
CONFIG_KEYS = ("z_dim", "latents_mean", "latents_std", "patch_size", "scale_factor_spatial")


def _require_streaming_internals(vae):
    """The diffusers internals listed in the module docstring, or a clear error; returns (patchify, unpatchify)."""
    problems = [name for name in ("encoder", "decoder", "quant_conv", "post_quant_conv", "config")
                if not hasattr(vae, name)]
    counts = getattr(vae, "_cached_conv_counts", None)
    if not (isinstance(counts, dict) and {"encoder", "decoder"} <= counts.keys()):
        problems.append("_cached_conv_counts['encoder'/'decoder']")
    for part, needs in (("encoder", {"feat_cache", "feat_idx"}),
                        ("decoder", {"feat_cache", "feat_idx", "first_chunk"})):
        module = getattr(vae, part, None)
        if module is not None and not needs <= inspect.signature(module.forward).parameters.keys():
            problems.append(f"{part}.forward({', '.join(sorted(needs))})")
    config = getattr(vae, "config", {})
    problems += [f"config.{key}" for key in CONFIG_KEYS if key not in config]
    try:
        from diffusers.models.autoencoders.autoencoder_kl_wan import patchify, unpatchify
    except ImportError:
        problems.append("autoencoder_kl_wan.patchify/unpatchify")
    if problems:
        raise RuntimeError(
            f"{type(vae).__name__} lacks the AutoencoderKLWan internals Wan streaming relies on "
            f"({'; '.join(problems)}). This pack's Wan VAE code is written against diffusers "
            f"{DIFFUSERS_WRITTEN_FOR}: install it (pip install 'diffusers=={DIFFUSERS_WRITTEN_FOR}') "
            "and load the VAE as diffusers' AutoencoderKLWan.")
    return patchify, unpatchify


def _device_dtype(vae) -> tuple[torch.device, torch.dtype]:
    """Where and in which dtype the VAE computes: its onload device under group offloading, its compute
    dtype under layerwise casting (the weights' storage dtype then differs)."""
    return get_module_execution_device(vae), vae.dtype


# --- encode ---------------------------------------------------------------------------------------
@torch.no_grad()
def encode_video(vae, pixels: torch.Tensor) -> torch.Tensor:
    """Pixels ``[B, 3, N, H, W]`` in [−1, 1], N = 4k+1 → normalised latents ``[B, C, k+1, h, w]``, float32.

    The posterior mode (its mean), as Wan's image-to-video pipeline encodes its image, so encoding the
    same frames twice is bit-identical. Frames go to the VAE's device in the encoder's own chunks
    (1, 4, 4, …), so the whole pixel video never sits there; the result equals
    ``normalize(vae, vae.encode(pixels).latent_dist.mode())`` bitwise.
    """
    patchify, _ = _require_streaming_internals(vae)
    if pixels.ndim != 5:
        raise ValueError(f"encode_video takes pixels [B, 3, frames, H, W]; got shape {tuple(pixels.shape)}.")
    frames, height, width = pixels.shape[2:]
    check_video_frames(frames, "encode_video")
    side = int(vae.config.scale_factor_spatial)
    if height % side or width % side:
        raise ValueError(f"encode_video: {width}×{height} px is not a whole number of this VAE's {side}×{side}-px "
                         f"latent cells: make width and height multiples of {side}.")
    device, dtype = _device_dtype(vae)
    patch = vae.config.patch_size
    state = [None] * vae._cached_conv_counts["encoder"]
    parts = []
    for start in range(1 - FRAMES_PER_LATENT, frames, FRAMES_PER_LATENT):  # frames [0], [1:5], [5:9], …
        x = pixels[:, :, max(start, 0):start + FRAMES_PER_LATENT].to(device, dtype)
        if patch is not None:
            x = patchify(x, patch_size=patch)
        parts.append(vae.encoder(x, feat_cache=state, feat_idx=[0]))
    # quant_conv sees the whole latent stream at once, exactly as in vae.encode (latent-sized, small).
    moments = vae.quant_conv(torch.cat(parts, dim=2))
    return normalize(vae, moments[:, :vae.config.z_dim].float())  # [mean | logvar]: the mode is the mean


# --- decode ---------------------------------------------------------------------------------------
def _check_latent_frames(z_n: torch.Tensor) -> None:
    if z_n.ndim != 5 or z_n.shape[2] == 0:
        raise ValueError(f"Wan decoding takes latents [B, C, k ≥ 1, h, w]; got shape {tuple(z_n.shape)}.")


class StreamingDecoder:
    """Decodes one continuous Wan video a few latent frames at a time, equal to one ``vae.decode`` call.

    Its causal state is a private list (bounded: a couple of frames per convolution, whatever the
    length), so encodes or other decoders running in between do not disturb it. Frames are returned
    on the VAE's device; moving them off is the caller's job, so nothing here grows with length.
    """

    def __init__(self, vae):
        _, self._unpatchify = _require_streaming_internals(vae)
        self.vae = vae
        self.reset()

    def reset(self) -> None:
        """Start a new video: the next latent frame decoded is its first (1 pixel frame)."""
        self._state = [None] * self.vae._cached_conv_counts["decoder"]
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def frames_for(self, latent_frames: int) -> int:
        """Pixel frames the next :meth:`decode` of ``latent_frames`` latent frames returns."""
        return FRAMES_PER_LATENT * latent_frames - (0 if self._started or latent_frames == 0 else 3)

    @torch.no_grad()
    def decode(self, z_n: torch.Tensor) -> torch.Tensor:
        """The next normalised latent frames ``[B, C, k, h, w]`` → their pixels ``[B, 3, n, H, W]`` in [−1, 1].

        n = 4k, or 4k − 3 on a video's first call (its first latent frame is one pixel frame). A non-finite
        latent is refused (``NonFiniteError``): it would decode to a blank video that looks like a result.
        """
        _check_latent_frames(z_n)
        require_finite_latent(z_n)
        device, dtype = _device_dtype(self.vae)
        x = self.vae.post_quant_conv(denormalize(self.vae, z_n.to(device, dtype)))
        pieces = []
        for i in range(x.shape[2]):
            pieces.append(self.vae.decoder(x[:, :, i:i + 1], feat_cache=self._state, feat_idx=[0],
                                           first_chunk=not self._started))
            self._started = True
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)
        patch = self.vae.config.patch_size
        if patch is not None:
            out = self._unpatchify(out, patch_size=patch)
        return out.clamp_(-1.0, 1.0)


@torch.no_grad()
def decode_to_images(decoder_or_vae, z_n: torch.Tensor, out_device: torch.device | str = "cpu") -> torch.Tensor:
    """Normalised latents ``[B, C, k, h, w]`` → IMAGE frames ``[B·n, H, W, 3]`` in 0..1 on ``out_device``.

    Given a VAE, the latents are a whole video; given a :class:`StreamingDecoder`, they continue its
    video. Clips are concatenated b-major. Each latent frame's pixels leave the VAE's device right after
    decoding, so the device holds one latent frame's pixels at a time.
    """
    _check_latent_frames(z_n)
    decoder = decoder_or_vae if isinstance(decoder_or_vae, StreamingDecoder) else StreamingDecoder(decoder_or_vae)
    batch = z_n.shape[0]
    total = decoder.frames_for(z_n.shape[2])
    frames = None  # filled in place: no second copy of the whole video at the end
    done = 0
    for i in range(z_n.shape[2]):
        # The decoder's output is ours and already clamped to [−1, 1]: map it to 0..1 in place.
        image = decoder.decode(z_n[:, :, i:i + 1]).float().add_(1).mul_(0.5).permute(0, 2, 3, 4, 1)
        if frames is None:
            frames = torch.empty((batch, total, *image.shape[2:]), device=out_device)
        frames[:, done:done + image.shape[1]].copy_(image)
        done += image.shape[1]
    return frames.view(batch * total, *frames.shape[2:])
