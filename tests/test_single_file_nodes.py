"""The single-file loader nodes as a workflow uses them: names from ComfyUI's own folders, the file's kind read
from its tensors, the memory options applied, and a backbone every sampler takes (the engine's loaders have their
own tests: test_wan_files.py, test_sd15_checkpoint.py)."""
from __future__ import annotations

import shutil

import pytest
import torch

from zeroshot_video.testing import standin_files_sd15 as sd15_files
from zeroshot_video.testing import standin_files_wan as wan_files
from zeroshot_video.core.loading.file_checks import ModelFileError
from zeroshot_video.nodes.backbone_nodes import LoadT2VBackbone, T2VTextEncode
from zeroshot_video.nodes.single_file_nodes import LoadAnimateDiffCheckpoint, LoadWanModelFiles
from zeroshot_video.nodes.t2v_nodes import T2VSampler

WAN21 = (wan_files.WAN21_FILE, wan_files.UMT5_FILE, wan_files.VAE21_FILE)


def _sample(handle, frames: int, size: int, prompt: str = "a red ball") -> torch.Tensor:
    (cond,) = T2VTextEncode().encode(handle, prompt, "")
    (latent,) = T2VSampler().sample(handle, cond, frames, size, size, steps=2, guidance=5.0, eta=0.0, seed=3)
    return latent["samples"]


def test_each_choice_lists_its_own_folder_and_only_safetensors(models_dir):
    (models_dir / "diffusion_models" / "old_model.ckpt").write_bytes(b"pickle")
    try:
        required = LoadWanModelFiles.INPUT_TYPES()["required"]
        assert required["model"][0] == sorted([wan_files.WAN21_FILE, wan_files.A14B_HIGH_FILE, wan_files.A14B_LOW_FILE,
                                               wan_files.TI2V_FILE])
        assert required["text_encoder"][0] == sorted([wan_files.UMT5_FILE, wan_files.UMT5_FP8_FILE])
        assert required["vae"][0] == sorted([wan_files.VAE21_FILE, wan_files.VAE22_FILE])
        assert LoadWanModelFiles.INPUT_TYPES()["optional"]["model_2"][0][0] == "none"
    finally:
        (models_dir / "diffusion_models" / "old_model.ckpt").unlink()
    checkpoints = LoadAnimateDiffCheckpoint.INPUT_TYPES()["required"]
    assert checkpoints["checkpoint"][0] == [sd15_files.CHECKPOINT]
    assert sd15_files.MOTION_MODULE_V3 in checkpoints["motion_module"][0]


def test_wan_files_sample_like_the_diffusers_folder_of_the_same_weights():
    """The stand-in files hold the folder's weights (stored in fp16, as the released file is): the same video up to
    that rounding."""
    (files,) = LoadWanModelFiles().load(*WAN21, "fp32")
    (folder,) = LoadT2VBackbone().load(model="Wan2.1-T2V-1.3B-Diffusers", motion_adapter="none", dtype="fp32")
    ours, reference = _sample(files, 5, 32), _sample(folder, 5, 32)
    assert ours.shape == reference.shape == (1, 16, 2, 4, 4)
    assert torch.isfinite(ours).all()
    assert (ours - reference).abs().max() < 0.05 * reference.abs().max()


def test_wan22_a14b_from_two_files_with_experts_taking_turns():
    (handle,) = LoadWanModelFiles().load(wan_files.A14B_HIGH_FILE, wan_files.UMT5_FP8_FILE, wan_files.VAE21_FILE,
                                         "fp32", model_2=wan_files.A14B_LOW_FILE, experts="one at a time")
    backbone = handle.backbone
    assert backbone.boundary_ratio == 0.875 and backbone.schedule.shift == 12.0
    assert backbone.memory_options["experts"] == "one at a time"
    assert torch.isfinite(_sample(handle, 5, 32)).all()


def test_a14b_experts_chosen_the_wrong_way_round_are_refused_before_loading(monkeypatch):
    import zeroshot_video.core.families.wan.files as core_wan_files
    monkeypatch.setattr(core_wan_files, "load_wan_files", lambda *a, **k: pytest.fail("loaded before the check"))
    with pytest.raises(ValueError, match="model and model_2 are swapped: model comes from "
                                         + wan_files.A14B_LOW_FILE.replace(".", r"\.")):
        LoadWanModelFiles().load(wan_files.A14B_LOW_FILE, wan_files.UMT5_FP8_FILE, wan_files.VAE21_FILE, "fp32",
                                 model_2=wan_files.A14B_HIGH_FILE)


def test_the_loaders_take_a_bf16_vae_and_refuse_an_unknown_choice_before_loading(monkeypatch):
    (handle,) = LoadWanModelFiles().load(*WAN21, "fp32", vae_precision="bf16")
    assert {p.dtype for p in handle.backbone.vae.parameters()} == {torch.bfloat16}
    assert handle.backbone.memory_options["vae_precision"] == "bf16"
    import zeroshot_video.core.families.wan.files as core_wan_files
    monkeypatch.setattr(core_wan_files, "load_wan_files", lambda *a, **k: pytest.fail("loaded before the check"))
    with pytest.raises(ValueError, match="vae_precision must be one of"):
        LoadWanModelFiles().load(*WAN21, "fp32", vae_precision="fp64")


def test_flow_shift_zero_is_the_models_own_and_any_other_value_is_used():
    assert LoadWanModelFiles().load(*WAN21, "fp32")[0].backbone.schedule.shift == 3.0
    assert LoadWanModelFiles().load(*WAN21, "fp32", flow_shift=5.0)[0].backbone.schedule.shift == 5.0


def test_sd15_checkpoint_and_motion_module_make_an_animatediff_backbone_in_fp8_storage():
    (handle,) = LoadAnimateDiffCheckpoint().load(sd15_files.CHECKPOINT, sd15_files.MOTION_MODULE_V3, "fp32",
                                                 precision="fp8 storage")
    backbone = handle.backbone
    assert backbone.family == "animatediff" and backbone.memory_options["precision"] == "fp8 storage"
    stored = {p.dtype for p in backbone.unet.parameters()}
    assert torch.float8_e4m3fn in stored
    assert torch.isfinite(_sample(handle, 4, 64)).all()


def test_a_file_in_the_wrong_folder_is_refused_saying_where_it_belongs(models_dir):
    misplaced = models_dir / "diffusion_models" / "my_model.safetensors"
    shutil.copy(models_dir / "vae" / wan_files.VAE21_FILE, misplaced)
    try:
        with pytest.raises(ModelFileError, match="models/vae"):
            LoadWanModelFiles().load("my_model.safetensors", wan_files.UMT5_FILE, wan_files.VAE21_FILE, "fp32")
    finally:
        misplaced.unlink()


def test_names_outside_the_listings_are_refused():
    with pytest.raises(ModelFileError, match="not a checkpoint"):
        LoadAnimateDiffCheckpoint().load("../checkpoints/" + sd15_files.CHECKPOINT, sd15_files.MOTION_MODULE_V3,
                                         "fp32")
    with pytest.raises(ModelFileError, match="not a VAE"):
        LoadWanModelFiles().load(wan_files.WAN21_FILE, wan_files.UMT5_FILE, "/etc/passwd", "fp32")
