"""LoadT2VBackbone: listings from the model folders, family detection from the files, and refusals."""
import json
import shutil

import pytest
import torch

from zeroshot_video.testing import standin_models
from zeroshot_video.core.loading.file_checks import ModelFileError
from zeroshot_video.core.families import detect_family
from zeroshot_video.nodes.backbone_nodes import LoadT2VBackbone


def _options(name):
    spec = LoadT2VBackbone.INPUT_TYPES()
    section = spec["required"] if name in spec["required"] else spec["optional"]
    return section[name][0]


def test_listings_name_the_stand_ins():
    assert {standin_models.MODELSCOPE, standin_models.ZEROSCOPE, standin_models.SD15} <= set(_options("model"))
    assert {standin_models.MOTION_ADAPTER, standin_models.MOTION_ADAPTER_FILE} <= set(_options("motion_adapter"))
    assert standin_models.IP_ADAPTER in _options("ip_adapter")
    assert standin_models.IMAGE_ENCODER in _options("image_encoder")


def test_family_is_read_from_the_files_not_the_name(models_dir, tmp_path):
    misleading = tmp_path / "animatediff-looking-name"
    shutil.copytree(models_dir / "diffusers" / standin_models.MODELSCOPE, misleading)
    assert detect_family(misleading) == "modelscope"
    assert detect_family(models_dir / "diffusers" / standin_models.SD15) == "sd15"


def test_both_motion_adapter_forms_give_the_same_model(animatediff, animatediff_ip):
    a, b = animatediff.ready().unet.state_dict(), animatediff_ip.ready().unet.state_dict()
    shared = [k for k in a if k in b]
    assert len(shared) == len(a)
    assert all(torch.equal(a[k], b[k]) for k in shared)
    assert animatediff_ip.ready().has_image_attention and not animatediff.ready().has_image_attention


def _load(**kw):
    kw.setdefault("motion_adapter", "none")
    kw.setdefault("dtype", "fp32")
    return LoadT2VBackbone().load(**kw)


def test_name_outside_the_model_folders_is_refused():
    for name in ("../../etc", "/tmp", "does-not-exist"):
        with pytest.raises(ModelFileError, match="is not a diffusers model folder"):
            _load(model=name)


def test_no_model_folders_names_the_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROSHOT_VIDEO_MODELS", str(tmp_path))
    with pytest.raises(ModelFileError, match=f"No diffusers model folder found. Put them in: {tmp_path}"):
        _load(model="text-to-video-ms-1.7b")


def test_pickle_only_weights_are_refused_with_the_reason(models_dir, monkeypatch, tmp_path):
    root = tmp_path / "models"
    target = root / "diffusers" / "pickled"
    shutil.copytree(models_dir / "diffusers" / standin_models.MODELSCOPE, target)
    for weights in (target / "unet").glob("*.safetensors"):
        weights.unlink()
    (target / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    monkeypatch.setenv("ZEROSHOT_VIDEO_MODELS", str(root))
    with pytest.raises(ModelFileError, match=r"only pickled weights \(diffusion_pytorch_model.bin\).*safetensors"):
        _load(model="pickled")


@pytest.mark.parametrize("kw,match", [
    (dict(model=standin_models.SD15), "needs|motion adapter"),
    (dict(model=standin_models.MODELSCOPE, motion_adapter=standin_models.MOTION_ADAPTER), "only apply"),
    (dict(model=standin_models.SD15, motion_adapter=standin_models.MOTION_ADAPTER,
          ip_adapter=standin_models.IP_ADAPTER), "needs its CLIP image encoder"),
    (dict(model=standin_models.SD15, motion_adapter="missing.safetensors"), "is not a motion adapter"),
    (dict(model=standin_models.MODELSCOPE, dtype="fp8"), "dtype"),
])
def test_wrong_combinations_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        _load(**kw)


def test_unsupported_unet_and_prediction_type(models_dir, tmp_path):
    folder = tmp_path / "other"
    shutil.copytree(models_dir / "diffusers" / standin_models.MODELSCOPE, folder)
    config = folder / "unet" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "_class_name": "FluxTransformer2DModel"}))
    with pytest.raises(ModelFileError, match="supported are"):
        detect_family(folder)
    from zeroshot_video.core.families.unet.folder import load_scheduler
    sched = folder / "scheduler" / "scheduler_config.json"
    sched.write_text(json.dumps({**json.loads(sched.read_text()), "prediction_type": "v_prediction"}))
    with pytest.raises(ModelFileError, match="epsilon"):
        load_scheduler(folder, "modelscope")


def test_family_scheduler_tables(modelscope, animatediff):
    assert modelscope.ready().scheduler.config.beta_schedule == "scaled_linear"
    assert animatediff.ready().scheduler.config.beta_schedule == "linear"
    assert animatediff.ready().schedule.timestep_spacing == "leading"  # the original AnimateDiff grid
    assert float(animatediff.ready().schedule.final_alpha_cumprod) == 1.0
    assert float(modelscope.ready().schedule.final_alpha_cumprod) < 1.0
    assert animatediff.ready().max_frames == 32 and modelscope.ready().max_frames is None


def test_half_precision_loads(models_dir):
    handle = _load(model=standin_models.MODELSCOPE, dtype="bf16")[0]
    assert handle.backbone.unet.dtype == torch.bfloat16 and handle.backbone.vae.dtype == torch.bfloat16


def test_auto_dtype_is_fp32_on_cpu_and_half_on_gpu():
    from zeroshot_video.core.loading.parts import resolve_dtype
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16


def test_auto_dtype_on_a_gpu_is_the_familys_own_half(models_dir, monkeypatch):
    """Wan folders take bf16 (Wan's own precision), the UNet families fp16, on a GPU; through the node."""
    from zeroshot_video.core import families as core_backbone
    from zeroshot_video.nodes import comfy_glue
    assert core_backbone.folder_half(models_dir / "diffusers" / standin_models.WAN21) == torch.bfloat16
    assert core_backbone.folder_half(models_dir / "diffusers" / standin_models.MODELSCOPE) == torch.float16
    class Stop(Exception):
        """Stops the load once its dtype is chosen: the CPU cannot hold a CUDA backbone."""

    def load_backbone(path, dtype, **options):
        chosen.append(dtype)
        raise Stop

    chosen = []
    monkeypatch.setattr(comfy_glue, "compute_device", lambda: torch.device("cuda"))
    monkeypatch.setattr("zeroshot_video.nodes.backbone_nodes.load_backbone", load_backbone)
    for model in (standin_models.WAN21, standin_models.MODELSCOPE):
        with pytest.raises(Stop):
            _load(model=model, dtype="auto")
    assert chosen == [torch.bfloat16, torch.float16]


def test_files_inside_a_model_folder_are_not_listed_as_models():
    assert not [name for name in _options("motion_adapter") if "/" in name]
    assert not [name for name in _options("model") if "/" in name]


@pytest.mark.parametrize("blocks", [standin_models.REAL_VAE_BLOCKS, standin_models.WORKFLOW_VAE_BLOCKS])
def test_standin_vae_downsamples_by_the_factor_its_config_declares(blocks):
    """The pack reads the VAE factor from the config (2 ** (levels − 1)); the stand-ins must really have it."""
    vae = standin_models.tiny_vae(blocks)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    with torch.no_grad():
        latent = vae.encode(torch.zeros(1, 3, 2 * factor, 4 * factor)).latent_dist.mean
        image = vae.decode(latent).sample
    assert latent.shape[-2:] == (2, 4) and image.shape[-2:] == (2 * factor, 4 * factor)
