"""Wan's causal VAE: streamed decode equals one vae.decode call bitwise, its memory does not grow with
length, encode_video is the normalised posterior mode, and frame counts are 4k+1. Tiny random VAEs built
in code in the Wan 2.1 layout (16 channels, 8× spatial) and the Wan 2.2 layout (48 channels, 2×2
patchify, 16× spatial)."""
from __future__ import annotations

import types
import weakref

import pytest
import torch
from diffusers import AutoencoderKLWan
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from zeroshot_video.core.families.wan import vae as wan_vae

LAYOUTS = {
    "2.1": dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                temperal_downsample=[False, True, True]),
    "2.2": dict(base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
                latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True]),
}
PIXELS = {"2.1": 32, "2.2": 64}  # 4×4 latent cells in both layouts


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These VAEs are a few hundred channels·pixels: threads only add contention on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _vae(name):
    torch.manual_seed(0)
    config = dict(LAYOUTS[name])
    if name == "2.1":  # non-trivial statistics, so normalisation mistakes show
        config["latents_mean"] = torch.linspace(-1.0, 1.0, 16).tolist()
        config["latents_std"] = torch.linspace(0.5, 3.0, 16).tolist()
    return AutoencoderKLWan(**config).eval().requires_grad_(False)


@pytest.fixture(scope="module", params=list(LAYOUTS))
def layout(request):
    return request.param, _vae(request.param)


def _latents(vae, frames, px, batch=1, seed=1):
    side = px // vae.config.scale_factor_spatial
    return torch.randn(batch, vae.config.z_dim, frames, side, side, generator=torch.Generator().manual_seed(seed))


def _pixels(frames, px, batch=1, seed=2):
    return torch.rand(batch, 3, frames, px, px, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _one_call(vae, z_n):
    with torch.no_grad():
        return vae.decode(wan_vae.denormalize(vae, z_n)).sample


@pytest.mark.parametrize("splits", [(1,), (2,), (5,), (1, 1, 1, 1, 1), (1, 2, 2), (3, 2)])
def test_streamed_decode_equals_one_call_bitwise(layout, splits):
    name, vae = layout
    px = PIXELS[name]
    z_n = _latents(vae, sum(splits), px, batch=2)
    reference = _one_call(vae, z_n)
    assert reference.shape == (2, 3, wan_vae.video_frames(sum(splits)), px, px)
    assert reference.std() > 0.01 and (reference.abs() < 1).float().mean() > 0.9  # not saturated by clamping

    decoder = wan_vae.StreamingDecoder(vae)
    pieces = []
    for part in z_n.split(list(splits), dim=2):
        expected = decoder.frames_for(part.shape[2])
        pieces.append(decoder.decode(part))
        assert pieces[-1].shape[2] == expected
    assert torch.equal(torch.cat(pieces, dim=2), reference)


def test_bf16_vae_streams_like_the_pipeline_decodes():
    """WanPipeline casts latents to the VAE's dtype first and denormalises in it; so do we."""
    vae = _vae("2.1")
    vae.to(torch.bfloat16)
    z_n = _latents(vae, 3, 32)
    with torch.no_grad():
        reference = vae.decode(wan_vae.denormalize(vae, z_n.to(torch.bfloat16))).sample
        late_cast = vae.decode(wan_vae.denormalize(vae, z_n).to(torch.bfloat16)).sample
    decoder = wan_vae.StreamingDecoder(vae)
    streamed = torch.cat([decoder.decode(part) for part in z_n.split([1, 2], dim=2)], dim=2)
    assert streamed.dtype == torch.bfloat16 and torch.equal(streamed, reference)
    assert not torch.equal(late_cast, reference)


def test_fp8_stored_vae_streams_in_its_compute_dtype():
    """Under layerwise casting the weights are stored in fp8 but the VAE computes in bf16."""
    vae = _vae("2.1")
    vae.to(torch.bfloat16).enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn,
                                                    compute_dtype=torch.bfloat16)
    z_n = _latents(vae, 3, 32)
    with torch.no_grad():
        reference = vae.decode(wan_vae.denormalize(vae, z_n.to(torch.bfloat16))).sample
        mode = vae.encode(_pixels(5, 32).to(torch.bfloat16)).latent_dist.mode()
    decoder = wan_vae.StreamingDecoder(vae)
    assert torch.equal(torch.cat([decoder.decode(part) for part in z_n.split([1, 2], dim=2)], dim=2), reference)
    assert torch.equal(wan_vae.encode_video(vae, _pixels(5, 32)), wan_vae.normalize(vae, mode.float()))


@pytest.mark.parametrize("splits", [(1, 2, 2), (3, 2)])
def test_stream_survives_encodes_and_other_decoders_in_between(layout, splits):
    """vae.encode/decode wipe the VAE's own causal state; the decoder's state is its own."""
    name, vae = layout
    px = PIXELS[name]
    z_n = _latents(vae, sum(splits), px)
    reference = _one_call(vae, z_n)
    decoder, other = wan_vae.StreamingDecoder(vae), wan_vae.StreamingDecoder(vae)
    pieces = []
    for part in z_n.split(list(splits), dim=2):
        pieces.append(decoder.decode(part))
        wan_vae.encode_video(vae, _pixels(5, px))
        with torch.no_grad():
            vae.encode(_pixels(5, px))
            vae.decode(wan_vae.denormalize(vae, _latents(vae, 2, px, seed=7)))
        other.decode(_latents(vae, 1, px, seed=8))
    assert torch.equal(torch.cat(pieces, dim=2), reference)


def test_reset_starts_a_new_video(layout):
    name, vae = layout
    z_n = _latents(vae, 2, PIXELS[name])
    decoder = wan_vae.StreamingDecoder(vae)
    first = decoder.decode(z_n)
    continued = decoder.decode(z_n)
    assert continued.shape[2] == 8 and not torch.equal(continued[:, :, -5:], first)
    decoder.reset()
    assert not decoder.started and torch.equal(decoder.decode(z_n), first)


@pytest.mark.parametrize("frames", [1, 5, 9])
def test_encode_video_is_the_normalised_posterior_mode(layout, frames):
    name, vae = layout
    px = PIXELS[name]
    pixels = _pixels(frames, px, batch=2)
    with torch.no_grad():
        mode = vae.encode(pixels).latent_dist.mode()
    latents = wan_vae.encode_video(vae, pixels)
    assert latents.dtype == torch.float32
    assert latents.shape == (2, vae.config.z_dim, wan_vae.latent_frames(frames), 4, 4)
    assert torch.equal(latents, wan_vae.normalize(vae, mode))
    assert torch.equal(wan_vae.encode_video(vae, pixels), latents)  # deterministic


@pytest.mark.parametrize("frames, nearest", [(2, "1 or 5"), (6, "5 or 9"), (8, "5 or 9"), (16, "13 or 17")])
def test_encode_video_refuses_frame_counts_the_vae_would_truncate(layout, frames, nearest):
    name, vae = layout
    with pytest.raises(ValueError, match=f"got {frames}.*use {nearest}"):
        wan_vae.encode_video(vae, _pixels(frames, PIXELS[name]))


def test_frame_count_arithmetic():
    assert [wan_vae.latent_frames(n) for n in (1, 5, 9, 13, 81)] == [1, 2, 3, 4, 21]
    assert [wan_vae.video_frames(f) for f in (1, 2, 3, 21)] == [1, 5, 9, 81]
    with pytest.raises(ValueError, match="at least 1"):
        wan_vae.check_video_frames(0)
    wan_vae.check_video_frames(81)


def test_encode_video_refuses_sizes_off_the_latent_grid(layout):
    name, vae = layout
    side = vae.config.scale_factor_spatial
    with pytest.raises(ValueError, match=f"multiples of {side}"):
        wan_vae.encode_video(vae, _pixels(1, PIXELS[name] + side // 2))


def test_normalize_is_per_channel_and_round_trips(layout):
    _, vae = layout
    z = torch.randn(2, vae.config.z_dim, 3, 4, 4)
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    z_n = wan_vae.normalize(vae, z)
    torch.testing.assert_close(z_n, (z - mean) / std, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(wan_vae.denormalize(vae, z_n), z, rtol=1e-6, atol=1e-6)
    half = wan_vae.normalize(vae, z.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16 and half.device == z.device
    with pytest.raises(ValueError, match=f"\\[B, {vae.config.z_dim}, F, h, w\\]"):
        wan_vae.normalize(vae, z[:, :4])


def test_normalisation_rounds_as_the_wan_pipelines_do():
    """WanImageToVideoPipeline multiplies by 1/std and WanPipeline divides by it before decoding; our
    latents must round the same way to stay bitwise equal to theirs (z·std would differ in the last bit)."""
    vae = _vae("2.1")
    z = torch.randn(2, vae.config.z_dim, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    assert torch.equal(wan_vae.normalize(vae, z), (z - mean) * inv_std)
    assert torch.equal(wan_vae.denormalize(vae, z), z / inv_std + mean)
    assert not torch.equal(wan_vae.denormalize(vae, z), z * (1 / inv_std) + mean)


def test_decode_to_images_is_the_one_call_video_as_comfy_frames(layout):
    name, vae = layout
    px = PIXELS[name]
    z_n = _latents(vae, 3, px, batch=2)
    reference = _one_call(vae, z_n).add(1).mul(0.5).permute(0, 2, 3, 4, 1).reshape(-1, px, px, 3)
    images = wan_vae.decode_to_images(vae, z_n)
    assert images.shape == (2 * 9, px, px, 3) and images.device.type == "cpu"
    assert torch.equal(images, reference)

    decoder = wan_vae.StreamingDecoder(vae)  # continuing a stream: 1 + 8 frames per clip
    head, tail = wan_vae.decode_to_images(decoder, z_n[:, :, :1]), wan_vae.decode_to_images(decoder, z_n[:, :, 1:])
    assert head.shape[0] == 2 and tail.shape[0] == 16
    joined = torch.cat([head.view(2, 1, px, px, 3), tail.view(2, 8, px, px, 3)], dim=1).reshape(-1, px, px, 3)
    assert torch.equal(joined, reference)


def test_missing_diffusers_internals_are_a_clear_error():
    with pytest.raises(RuntimeError, match="_cached_conv_counts.*diffusers==0.42.1"):
        wan_vae.StreamingDecoder(types.SimpleNamespace())

    class OldDecoder(torch.nn.Module):
        def forward(self, x, feat_cache=None, feat_idx=(0,)):
            return x

    vae = AutoencoderKLWan(**LAYOUTS["2.1"])
    vae.decoder = OldDecoder()
    with pytest.raises(RuntimeError, match="decoder.forward.*first_chunk"):
        wan_vae.StreamingDecoder(vae)


class _LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of tensor storage created inside the mode and still referenced (exact, unlike RSS)."""

    def __init__(self, existing):
        super().__init__()
        self._outside = {t.untyped_storage().data_ptr() for t in existing}
        self._storages = {}  # data_ptr → [live tensors, bytes]
        self.live = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out

    def _track(self, t):
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key == 0 or key in self._outside:
            return
        if key not in self._storages:
            self._storages[key] = [0, storage.nbytes()]
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self._storages[key][0] += 1
        weakref.finalize(t, self._release, key)

    def _release(self, key):
        entry = self._storages[key]
        entry[0] -= 1
        if entry[0] == 0:
            del self._storages[key]
            self.live -= entry[1]


def test_streaming_decode_memory_is_flat_in_length():
    vae = _vae("2.1")

    def peak(latent_frames, streaming):
        z_n = _latents(vae, latent_frames, 64)
        with torch.no_grad(), _LiveTensorBytes([*vae.parameters(), *vae.buffers(), z_n]) as counter:
            if streaming:
                decoder = wan_vae.StreamingDecoder(vae)
                for frame in z_n.split(1, dim=2):
                    pixels = decoder.decode(frame)  # a caller moves these off the device here
                del pixels, decoder
            else:
                _one_call(vae, z_n)
        assert counter.live == 0  # the counter saw every tensor it counted die
        return counter.peak

    assert peak(16, streaming=True) < 1.2 * peak(4, streaming=True)
    assert peak(16, streaming=False) > 2.5 * peak(4, streaming=False)
