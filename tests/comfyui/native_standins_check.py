"""Do ComfyUI's own loaders take the native stand-ins (``testing/standin_files_native.py``)?

    COMFYUI_DIR=/path/to/ComfyUI $COMFYUI_PYTHON tests/comfyui/native_standins_check.py <models_dir>

``models_dir`` holds what ``write_native_files`` wrote. Runs ComfyUI's loaders in-process, as UNETLoader,
LoraLoaderModelOnly and VAELoader call them: every diffusion model loads as the right Wan with every tensor used,
every LoRA patches every layer it names and moves a model call by at least 1 %, every VAE builds at its channel
count and decodes to finite, varying pixels. Then the pack's own single-file loader takes the 2.1 files and must
hold the very weights ComfyUI loaded. Prints one line per check; exits 1 if any failed.
"""
from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from native_harness import import_comfy_and_pack, pack_module  # noqa: E402

MIN_LORA_CHANGE = 0.01


class _Warnings(logging.Handler):
    """ComfyUI reports LoRA keys it could not place only as log warnings."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _model_call(patcher, channels: int) -> torch.Tensor:
    """One denoiser call as KSampler makes it, on fixed inputs, after ComfyUI has applied the patcher's patches."""
    import comfy.model_management
    comfy.model_management.load_models_gpu([patcher])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, 2, 8, 8, generator=g)
    context = torch.randn(1, 12, 4096, generator=g)
    with torch.no_grad():
        return patcher.model.apply_model(x, torch.tensor([0.8]), c_crossattn=context).float()


# Each check returns (what it loaded, a line for the summary) or raises.
def check_diffusion_model(comfy, path: Path, expected_class, channels: int):
    model = comfy.sd.load_diffusion_model(str(path))
    assert type(model.model) is expected_class, f"loaded as {type(model.model).__name__}"
    assert model.model.latent_format.latent_channels == channels, model.model.latent_format.latent_channels
    file_keys = {k.removeprefix("model.diffusion_model.") for k in comfy.utils.load_torch_file(str(path))}
    model_keys = set(model.model.diffusion_model.state_dict())
    assert file_keys == model_keys, f"unused {sorted(file_keys - model_keys)}, missing {sorted(model_keys - file_keys)}"
    return model, f"{type(model.model).__name__}, {channels} latent channels, all {len(file_keys)} tensors used"


def check_lora(comfy, model, path: Path, channels: int):
    lora = comfy.utils.load_torch_file(str(path))
    layers = {"diffusion_model." + k.removeprefix("diffusion_model.")[:-len(".lora_down.weight")] + ".weight"
              for k in lora if k.endswith(".lora_down.weight")}
    before = _model_call(model, channels)
    warnings = _Warnings()
    logging.getLogger().addHandler(warnings)
    try:
        patched, _ = comfy.sd.load_lora_for_models(model, None, lora, 1.0, 0)
    finally:
        logging.getLogger().removeHandler(warnings)
    assert not warnings.messages, warnings.messages[:5]
    assert set(patched.patches) == layers, (f"patched {len(patched.patches)} layers, the LoRA names {len(layers)}: "
                                            f"{sorted(set(patched.patches) ^ layers)[:5]}")
    after = _model_call(patched, channels)
    change = ((after - before).norm() / before.norm()).item()
    assert torch.isfinite(after).all() and change >= MIN_LORA_CHANGE, f"output changed by {change:.2%}"
    _model_call(model, channels)  # unpatched again for whoever uses the model next
    return patched, f"{len(lora)} keys, {len(layers)} layers patched, model call changed by {change:.1%}"


def check_vae(comfy, path: Path, channels: int):
    state = comfy.utils.load_torch_file(str(path))
    vae = comfy.sd.VAE(sd=dict(state))
    assert vae.latent_channels == channels, vae.latent_channels
    model_keys = set(vae.first_stage_model.state_dict())
    assert set(state) == model_keys, f"unused {sorted(set(state) - model_keys)[:5]}, missing " \
                                     f"{sorted(model_keys - set(state))[:5]}"
    latent = torch.randn(1, channels, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    pixels = vae.decode(latent).float()
    assert torch.isfinite(pixels).all(), "non-finite pixels"
    assert pixels.std() > 0.01, f"pixels nearly constant (std {pixels.std():.4f})"
    return vae, (f"latent_channels {channels}, all {len(state)} tensors used, decode {tuple(latent.shape)} -> "
                 f"{tuple(pixels.shape)}, mean {pixels.mean():.3f} std {pixels.std():.3f}")


def check_pack_loader(comfy_model, comfy_vae, root: Path):
    """The pack's own single-file loader (LoadWanModelFiles → load_wan_files) on the same 2.1 files."""
    files = pack_module("core.families.wan.files")
    standins = pack_module("testing.standin_files_wan")
    native = pack_module("testing.standin_files_native")
    backbone = files.load_wan_files(root / "diffusion_models" / native.WAN21_FILE,
                                    root / "text_encoders" / native.UMT5_FILE, root / "vae" / native.VAE21_FILE,
                                    torch.float32)
    ours = standins.wan_transformer_to_comfy(backbone.transformer, prefix="")
    theirs = comfy_model.model.diffusion_model.state_dict()
    assert set(ours) == set(theirs), sorted(set(ours) ^ set(theirs))[:5]
    differ = [k for k in ours if not torch.equal(ours[k].float(), theirs[k].float())]
    assert not differ, f"transformer tensors differ from ComfyUI's: {differ[:5]}"
    ours_vae = standins.wan_vae_to_comfy(backbone.vae)
    theirs_vae = comfy_vae.first_stage_model.state_dict()
    differ = [k for k in ours_vae if not torch.equal(ours_vae[k].float(), theirs_vae[k].float())]
    assert set(ours_vae) == set(theirs_vae) and not differ, f"VAE tensors differ from ComfyUI's: {differ[:5]}"
    return backbone, (f"load_wan_files: transformer {len(ours)} tensors and VAE {len(ours_vae)} tensors equal "
                      f"ComfyUI's; text encoder d_model {backbone.text_encoder.config.d_model}")


def main(root: Path) -> int:
    _, comfy = import_comfy_and_pack()
    import comfy.model_base
    import comfy.utils
    native = pack_module("testing.standin_files_native")
    models, loras, vaes = root / "diffusion_models", root / "loras", root / "vae"
    failures = 0

    def run(label, check, *args):
        nonlocal failures
        try:
            result, line = check(*args)
        except Exception as error:  # one failed check must not hide the rest
            failures += 1
            print(f"FAIL {label}: {error!r}")
            traceback.print_exc(limit=3, file=sys.stdout)
            return None
        print(f"ok   {label}: {line}")
        return result

    wan21 = comfy.model_base.WAN21
    loaded = {}
    for name, cls, channels, lora in (
            (native.WAN21_FILE, wan21, 16, native.LORA21_FILE),
            (native.A14B_HIGH_FILE, wan21, 16, native.LORA_HIGH_FILE),
            (native.A14B_LOW_FILE, wan21, 16, native.LORA_LOW_FILE),
            (native.TI2V_FILE, comfy.model_base.WAN22, 48, None)):
        model = run(name, check_diffusion_model, comfy, models / name, cls, channels)
        loaded[name] = model
        if model is not None and lora is not None:
            run(f"{lora} on {name}", check_lora, comfy, model, loras / lora, channels)
    vae21 = run(native.VAE21_FILE, check_vae, comfy, vaes / native.VAE21_FILE, 16)
    run(native.VAE22_FILE, check_vae, comfy, vaes / native.VAE22_FILE, 48)
    if loaded[native.WAN21_FILE] is not None and vae21 is not None:
        run("the pack's LoadWanModelFiles loader on the 2.1 files", check_pack_loader, loaded[native.WAN21_FILE],
            vae21, root)
    print(f"{'FAILED' if failures else 'passed'}: {failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]).resolve()))
