"""Wan 2.1 / 2.2 video VAEs as ComfyUI's ``VAELoader`` gives them (``comfy.sd.VAE``): encode, and decode streamed.

Wan's VAE is causal in time: its decoder carries a feature cache from latent frame to latent frame, and
``comfy.sd.VAE.decode`` keeps that cache only for the length of one call. FIFO-Diffusion emits an endless
video a few latent frames at a time, so here the cache is our own, kept between calls: decoding a video in
pieces gives what one ``vae.decode`` call gives, with memory flat in the video's length. The modules driven
are ComfyUI's own (``vae.first_stage_model``: ``conv2``/``decoder``, ``encoder``/``conv1``), loaded through
ComfyUI's memory manager, with ComfyUI's own input and output handling around them (``vae_encode_crop_pixels``,
``process_input``, ``process_output``, ``vae_dtype``, ``device``). Spatial tiling (ComfyUI's fallback when a
decode runs out of memory) is not applied: a tiled stream would need one cache per tile.

The two versions differ in the decoder's ``first_chunk`` flag (2.2 only: its upsampling shortcut drops the
padded frames of a video's first latent frame) and in 2.2 folding each 2×2 pixel patch into channels around
encoder and decoder (``vae2_2.patchify`` / ``unpatchify``; 12 decoder output channels instead of 3).
"""
from __future__ import annotations

import comfy.model_management as model_management
import torch
from comfy.ldm.wan import vae as wan21
from comfy.ldm.wan import vae2_2 as wan22

from ...core.block_checks import require_finite_latent
from ...core.families.wan.vae import check_video_frames

PATCH_22 = 2  # Wan 2.2's pixel patch side, fixed in ComfyUI's vae2_2.WanVAE.encode/decode


class ComfyVideoVAE:
    """A Wan 2.1 or 2.2 ``comfy.sd.VAE``: raw latents (as a LATENT holds them) ↔ pixels."""

    def __init__(self, vae):
        model = getattr(vae, "first_stage_model", None)
        if not isinstance(model, (wan21.WanVAE, wan22.WanVAE)):
            raise ValueError(f"vae: this needs a Wan 2.1 or Wan 2.2 video VAE (wan_2.1_vae / wan2.2_vae in "
                             f"VAELoader); got {type(model).__name__}.")
        self.vae = vae
        self.model = model
        self.patch = PATCH_22 if isinstance(model, wan22.WanVAE) else None

    @property
    def latent_channels(self) -> int:
        return self.vae.latent_channels

    @property
    def spatial_factor(self) -> int:
        return self.vae.spacial_compression_decode()

    @property
    def frames_per_latent(self) -> int:
        return self.vae.temporal_compression_decode()

    @property
    def dtype(self) -> torch.dtype:
        return self.vae.vae_dtype

    def _load(self, memory_required: int) -> None:
        """Onto the compute device through ComfyUI's memory manager, as ``VAE.decode``/``encode`` do."""
        model_management.load_models_gpu([self.vae.patcher], memory_required=memory_required,
                                         force_full_load=self.vae.disable_offload)

    # --- decode ---------------------------------------------------------------------------------------
    def stream_decoder(self, out_device: torch.device | str | None = None, check=None) -> StreamDecoder:
        """A callable decoding the next raw latent frames ``[1, C, k, h, w]`` of one video to IMAGE frames
        ``[n, H, W, 3]`` in 0..1 on ``out_device`` (ComfyUI's ``intermediate_device`` when None)."""
        return StreamDecoder(self, self.vae.output_device if out_device is None else out_device, check)

    def decode(self, latents: torch.Tensor, chunk: int | None = 1, out_device: torch.device | str | None = None,
               check=None) -> torch.Tensor:
        """Raw latents ``[B, C, F, h, w]`` → IMAGE ``[B·(4(F − 1) + 1), H, W, 3]``, each clip one video streamed
        ``chunk`` latent frames at a time; equal to ``vae.decode`` reshaped as ComfyUI's VAEDecode does."""
        step = max(1, chunk or 1)
        clips = []
        for b in range(latents.shape[0]):
            stream = self.stream_decoder(out_device, check)
            clips += [stream(latents[b:b + 1, :, i:i + step]) for i in range(0, latents.shape[2], step)]
        return torch.cat(clips)

    # --- encode ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_video(self, pixels: torch.Tensor, check=None) -> torch.Tensor:
        """Pixels ``[1, 3, N, H, W]`` in [−1, 1], N = 4k+1 → raw latent ``[1, C, k + 1, h, w]`` (float32 on
        ComfyUI's ``intermediate_device``), equal to ``vae.encode`` of the same frames as an IMAGE.

        Like ``vae.encode``, H and W are cropped to whole latent cells. The frames go to the device in the
        encoder's own chunks (1, 4, 4, …), with ``check`` before each, so the whole video never sits there.
        """
        if pixels.ndim != 5 or pixels.shape[:2] != (1, 3):
            raise ValueError(f"encode_video takes pixels [1, 3, frames, H, W]; got shape {tuple(pixels.shape)}.")
        check_video_frames(pixels.shape[2], "encode_video")
        vae = self.vae
        # As the IMAGE VAEEncode would get, so ComfyUI's own crop and process_input apply unchanged.
        images = vae.vae_encode_crop_pixels((pixels[0].movedim(0, -1) + 1) / 2)  # [N, H, W, 3] in 0..1
        frames = images.shape[0]
        self._load(vae.memory_used_encode((1, 3, *images.shape[:3]), vae.vae_dtype))
        state = [None] * wan21.count_conv3d(self.model.encoder)
        step = self.frames_per_latent
        parts = []
        for start in range(1 - step, frames, step):  # frames [0], [1:5], [5:9], …
            if check is not None:
                check()
            x = vae.process_input(images[max(start, 0):start + step]).movedim(-1, 0).unsqueeze(0)
            x = x.to(vae.vae_dtype).to(vae.device)
            if self.patch is not None:
                x = wan22.patchify(x, patch_size=self.patch)
            parts.append(self.model.encoder(x, feat_cache=state, feat_idx=[0]))
        # conv1 over the whole latent stream, as in WanVAE.encode; [mean | log-variance]: keep the mean.
        mean = self.model.conv1(torch.cat(parts, dim=2)).chunk(2, dim=1)[0]
        return mean.to(vae.output_device).float()

    def encode_image(self, pixels: torch.Tensor, check=None) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` in [−1, 1] → raw latent ``[1, C, N, h, w]``: each image encoded alone as the
        first frame of a video, as an image-to-video first frame is."""
        return torch.cat([self.encode_video(pixels[i:i + 1].unsqueeze(2), check) for i in range(pixels.shape[0])],
                         dim=2)


class StreamDecoder:
    """One continuous video decoded across calls: the decoder's causal cache is this object's, not the call's.

    The first latent frame gives 1 video frame, each later one 4; all calls' outputs concatenated equal one
    ``vae.decode`` of the whole latent. Each latent frame's pixels leave the compute device as soon as
    decoded; what stays there between calls is the cache (a couple of frames per causal convolution).
    """

    def __init__(self, owner: ComfyVideoVAE, out_device: torch.device | str, check=None):
        self.owner = owner
        self.out_device = out_device
        self.check = check
        self._state = [None] * wan21.count_conv3d(owner.model.decoder)
        self._started = False

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor) -> torch.Tensor:
        owner, vae, model = self.owner, self.owner.vae, self.owner.model
        if latents.ndim != 5 or latents.shape[0] != 1 or latents.shape[1] != owner.latent_channels \
                or latents.shape[2] == 0:
            raise ValueError(f"A stream decoder takes one video's raw latents [1, {owner.latent_channels}, k ≥ 1, "
                             f"h, w]; got shape {tuple(latents.shape)}.")
        require_finite_latent(latents)
        owner._load(vae.memory_used_decode(latents.shape, vae.vae_dtype))
        # conv2 is a 1×1×1 convolution, frame by frame: applying it per call equals WanVAE.decode's one pass.
        x = model.conv2(latents.to(vae.vae_dtype).to(vae.device))
        per_latent = owner.frames_per_latent
        total = per_latent * x.shape[2] - (0 if self._started else per_latent - 1)
        images = None  # filled in place, so the call's frames are not copied again at the end
        done = 0
        for i in range(x.shape[2]):
            if self.check is not None:
                self.check()
            flags = {} if owner.patch is None else {"first_chunk": not self._started}
            out = model.decoder(x[:, :, i:i + 1], feat_cache=self._state, feat_idx=[0], **flags)
            self._started = True
            if owner.patch is not None:
                out = wan22.unpatchify(out, patch_size=owner.patch)
            image = vae.process_output(out.to(self.out_device).float())[0].movedim(0, -1)  # [n, H, W, 3]
            if images is None:
                images = torch.empty((total, *image.shape[1:]), device=self.out_device)
            images[done:done + image.shape[0]] = image
            done += image.shape[0]
        return images
