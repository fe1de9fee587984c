"""Check of ``nodes/native/vae.py`` against ComfyUI's own ``comfy.sd.VAE`` for Wan 2.1 and Wan 2.2 (CPU, fp32).

Run under ComfyUI's python: ``COMFYUI_DIR=/path/to/ComfyUI python tests/comfyui/native_vae_check.py [2.1] [2.2]``.
For each version: a streamed decode (1 and 2 latent frames per call) equals one ``vae.decode`` call, with the
right frame count per call; ``encode_video`` and ``encode_image`` equal ``vae.encode``. No weights are
downloaded: ``comfy.sd.VAE`` builds the released architecture from the keys of a state dict, so the state dict
is made here from ComfyUI's own module with seeded random weights. Exits non-zero on any failure.
"""
from __future__ import annotations

import importlib
import sys
import time

import torch

from native_harness import import_comfy_and_pack, pack_module

TOLERANCE = 1e-5
# version: (module, the released configuration comfy.sd.VAE builds for that version's keys, latent side)
VERSIONS = {
    "2.1": ("vae", dict(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                        temperal_downsample=[False, True, True], dropout=0.0), 4),
    "2.2": ("vae2_2", dict(dim=160, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                           temperal_downsample=[False, True, True], dropout=0.0), 4),
}
failures: list[str] = []


def expect(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def close(name: str, got: torch.Tensor, want: torch.Tensor) -> None:
    if got.shape != want.shape:
        return expect(False, f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}")
    diff = (got.float() - want.float()).abs().max().item()
    expect(diff <= TOLERANCE, f"{name}: max abs diff {diff:.3g} (tolerance {TOLERANCE:g})")


def seeded_state_dict(module, config: dict) -> dict:
    """ComfyUI's WanVAE with seeded weights: its layers skip initialisation (comfy.ops.disable_weight_init), so
    weights are drawn here at fan-in scale, the norms' gains left at one."""
    torch.manual_seed(0)
    model = module.WanVAE(**config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(1.0)
            elif p.ndim > 1:
                p.normal_(0.0, p[0].numel() ** -0.5)
            else:
                p.normal_(0.0, 0.02)
    return model.state_dict()


def check_version(comfy, native, version: str) -> None:
    module_name, config, side = VERSIONS[version]
    module = importlib.import_module(f"comfy.ldm.wan.{module_name}")
    started = time.time()
    vae = comfy.sd.VAE(sd=seeded_state_dict(module, config))
    expect(type(vae.first_stage_model) is module.WanVAE and vae.vae_dtype == torch.float32,
           f"Wan {version}: comfy.sd.VAE built {module_name}.WanVAE in {vae.vae_dtype} "
           f"({sum(p.numel() for p in vae.first_stage_model.parameters()) / 1e6:.0f} M parameters)")
    wrapped = native.ComfyVideoVAE(vae)
    channels, factor = wrapped.latent_channels, wrapped.spatial_factor
    expect((channels, factor, wrapped.frames_per_latent) == (config["z_dim"], 16 if version == "2.2" else 8, 4),
           f"Wan {version}: latent_channels {channels}, spatial_factor {factor}, "
           f"frames_per_latent {wrapped.frames_per_latent}")

    torch.manual_seed(1)
    latent = torch.randn(1, channels, 3, side, side)
    reference = vae.decode(latent)  # [1, 9, H, W, 3]
    reference = reference.reshape(-1, *reference.shape[-3:])  # as ComfyUI's VAEDecode hands it on
    inside = ((reference > 0) & (reference < 1)).float().mean().item()
    expect(inside > 0.5, f"Wan {version}: vae.decode gave {tuple(reference.shape)}, {inside:.0%} of values "
                         "inside (0, 1), so the comparison is not of clamped values")

    checks = []
    stream = wrapped.stream_decoder("cpu", check=lambda: checks.append(1))
    pieces = [stream(latent[:, :, i:i + 1]) for i in range(latent.shape[2])]
    expect([p.shape[0] for p in pieces] == [1, 4, 4] and len(checks) == 3,
           f"Wan {version}: chunk 1 gives {[p.shape[0] for p in pieces]} frames per call, check called "
           f"{len(checks)} times")
    close(f"Wan {version}: streamed decode, chunk 1, vs vae.decode", torch.cat(pieces), reference)

    stream = wrapped.stream_decoder("cpu")
    pieces = [stream(latent[:, :, i:i + 2]) for i in range(0, latent.shape[2], 2)]
    expect([p.shape[0] for p in pieces] == [5, 4], f"Wan {version}: chunk 2 gives {[p.shape[0] for p in pieces]} "
                                                   "frames per call")
    close(f"Wan {version}: streamed decode, chunk 2, vs vae.decode", torch.cat(pieces), reference)

    torch.manual_seed(2)
    pixels = torch.rand(1, 3, 9, side * factor, side * factor) * 2 - 1
    images = (pixels[0].movedim(0, -1) + 1) / 2  # the IMAGE [N, H, W, 3] in 0..1 that vae.encode takes
    close(f"Wan {version}: encode_video vs vae.encode", wrapped.encode_video(pixels), vae.encode(images))

    # Two stills a few pixels off whole latent cells: ComfyUI crops them, and so must encode_image.
    stills = torch.rand(2, 3, factor + 3, 2 * factor + 5) * 2 - 1
    reference = torch.cat([vae.encode((s.movedim(0, -1).unsqueeze(0) + 1) / 2) for s in stills], dim=2)
    close(f"Wan {version}: encode_image (cropped) vs vae.encode of each image", wrapped.encode_image(stills),
          reference)
    print(f"Wan {version}: {time.time() - started:.0f} s", flush=True)


def main() -> int:
    _, comfy = import_comfy_and_pack()
    native = pack_module("nodes.native.vae")
    for version in sys.argv[1:] or list(VERSIONS):
        check_version(comfy, native, version)
    print(f"{len(failures)} failure(s)" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
