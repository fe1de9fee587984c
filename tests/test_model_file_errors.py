"""Broken model files: each fault is one ModelFileError naming the file and the fix, before any library reads it;
and the libraries' log lines stay short while the pack loads (issue 12, points 3 and 6)."""
import json
import logging
import re
import shutil
import struct

import pytest
import torch
from safetensors.torch import save_file

from zeroshot_video.testing import standin_models
from zeroshot_video.core.loading import file_checks as model_file_checks
from zeroshot_video.core.loading.file_checks import ModelFileError
from zeroshot_video.core.families import load_backbone
from zeroshot_video.core.families.unet.ip_adapter import load_image_encoder
from zeroshot_video.core.families.unet.folder import load_motion_adapter
from zeroshot_video.core.loading.file_checks import check_safetensors, loading
from zeroshot_video.core.methods.reward import load_reward_model

MS, WAN = standin_models.MODELSCOPE, standin_models.WAN21
UNET_WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


def _copy(models_dir, tmp_path, name=MS):
    target = tmp_path / name
    shutil.copytree(models_dir / "diffusers" / name, target)
    return target


def _edit_config(path, **changes):
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


# --- JSON files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,file", [
    (MS, "model_index.json"), (MS, "unet/config.json"), (MS, "scheduler/scheduler_config.json"),
    (MS, "vae/config.json"), (MS, "text_encoder/config.json"), (MS, "tokenizer/tokenizer_config.json"),
    (WAN, "model_index.json"), (WAN, "transformer/config.json"), (WAN, "scheduler/scheduler_config.json"),
])
def test_a_damaged_json_file_is_named_with_the_fix(models_dir, tmp_path, name, file):
    folder = _copy(models_dir, tmp_path, name)
    damaged = folder / file
    damaged.write_text(damaged.read_text()[:60])  # cut short, as an interrupted download leaves it
    with pytest.raises(ModelFileError) as error:
        load_backbone(folder)
    message = str(error.value)
    assert message.startswith(f"'{damaged}' is not valid JSON (") and "line " in message
    assert f"Download '{damaged.name}' of this model again into '{damaged.parent}'" in message


def test_a_json_file_that_is_not_an_object_is_named(models_dir, tmp_path):
    folder = _copy(models_dir, tmp_path)
    (folder / "unet" / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelFileError, match=re.escape(f"'{folder / 'unet' / 'config.json'}' holds a JSON list")):
        load_backbone(folder)


def test_a_motion_adapter_sidecar_that_is_not_json_names_itself_and_says_to_fix_or_delete_it(models_dir, tmp_path):
    single = tmp_path / "mm.safetensors"
    shutil.copy(models_dir / "animatediff_models" / standin_models.MOTION_ADAPTER_FILE, single)
    single.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelFileError) as error:
        load_motion_adapter(single, torch.float32)
    message = str(error.value)
    assert message.startswith(f"'{single.with_suffix('.json')}' is not valid JSON")
    assert "beside 'mm.safetensors'" in message and "fix it, or delete it" in message


# --- safetensors files -------------------------------------------------------------------------------
def _pickle(path):
    torch.save({"conv_in.bias": torch.zeros(3)}, path)


def _half(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


FAULTS = {
    "pickle renamed": (_pickle, "is not a safetensors file but a PyTorch checkpoint"),
    "empty": (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
    "truncated": (_half, "is cut short: its header lists .* tensors ending at byte"),
    "trailing bytes": (lambda p: p.write_bytes(p.read_bytes() + b"\0" * 16), "16 bytes after its last tensor"),
    "absurd header length": (lambda p: p.write_bytes(struct.pack("<Q", 2 ** 60) + p.read_bytes()[8:]),
                             "announce a .*-byte header"),
    "header not json": (lambda p: p.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{]"), "header is not the table"),
    "html page": (lambda p: p.write_text("<!DOCTYPE html><html>404</html>"), "an HTML error page"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_safetensors_file_is_named_before_a_library_reads_it(models_dir, tmp_path, fault):
    folder = _copy(models_dir, tmp_path)
    weights = folder / UNET_WEIGHTS
    damage, match = FAULTS[fault]
    damage(weights)
    with pytest.raises(ModelFileError, match=match) as error:
        load_backbone(folder)
    assert str(error.value).startswith(f"'{weights}' ")
    assert "again into" in str(error.value) or "release of this model into" in str(error.value)


def test_the_header_check_reads_what_safetensors_reads(tmp_path):
    path = tmp_path / "two.safetensors"
    save_file({"a": torch.zeros(2, 3), "b": torch.ones(5, dtype=torch.float16)}, path)
    entries = check_safetensors(path)
    assert {k: (v["dtype"], v["shape"]) for k, v in entries.items()} == {"a": ("F32", [2, 3]), "b": ("F16", [5])}


@pytest.mark.parametrize("part", ["vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"])
def test_every_part_of_a_folder_is_checked(models_dir, tmp_path, part):
    folder = _copy(models_dir, tmp_path)
    _half(folder / part)
    with pytest.raises(ModelFileError, match=re.escape(f"'{folder / part}' is cut short")):
        load_backbone(folder)


def test_single_file_weights_are_checked(models_dir, tmp_path):
    mm = tmp_path / "mm.safetensors"
    shutil.copy(models_dir / "animatediff_models" / standin_models.MOTION_ADAPTER_FILE, mm)
    _half(mm)
    with pytest.raises(ModelFileError, match=re.escape(f"'{mm}' is cut short")):
        load_motion_adapter(mm, torch.float32)
    encoder = tmp_path / "clip.safetensors"
    _pickle(encoder)
    with pytest.raises(ModelFileError, match=re.escape(f"'{encoder}' is not a safetensors file")):
        load_image_encoder(encoder, torch.float32)


def test_a_broken_motion_adapter_folder_and_reward_model_are_named(models_dir, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(models_dir / "animatediff_models" / standin_models.MOTION_ADAPTER, adapter)
    (adapter / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    with pytest.raises(ModelFileError, match="is empty"):
        load_motion_adapter(adapter, torch.float32)
    reward = tmp_path / "reward"
    shutil.copytree(models_dir / "reward_models" / standin_models.REWARD_MODEL, reward)
    _half(reward / "model.safetensors")
    with pytest.raises(ModelFileError, match=re.escape(f"'{reward / 'model.safetensors'}' is cut short")):
        load_reward_model(reward)


def test_a_broken_ip_adapter_is_named(models_dir, tmp_path):
    ip = tmp_path / "ip.safetensors"
    shutil.copy(models_dir / "ipadapter" / standin_models.IP_ADAPTER, ip)
    _half(ip)
    with pytest.raises(ModelFileError, match=re.escape(f"'{ip}' is cut short")):
        load_backbone(models_dir / "diffusers" / standin_models.SD15,
                      motion_adapter=models_dir / "animatediff_models" / standin_models.MOTION_ADAPTER,
                      ip_adapter=ip, image_encoder=models_dir / "clip_vision" / standin_models.IMAGE_ENCODER)


# --- configs that do not fit their weights --------------------------------------------------------
def test_weights_of_other_shapes_name_the_folder_the_tensors_and_the_fix(models_dir, tmp_path):
    folder = _copy(models_dir, tmp_path)
    _edit_config(folder / "unet" / "config.json", block_out_channels=[32, 64])
    with pytest.raises(ModelFileError) as error:
        load_backbone(folder)
    message = str(error.value)
    assert message.startswith(f"The UNet in '{folder / 'unet'}': config.json and the weights do not belong together")
    assert "conv_in.bias: (16,) in the weights, (32,) by the config" in message
    assert re.search(r"and \d+ more\)", message) and "Download this folder again" in message


def test_an_absurd_config_is_refused_before_anything_is_allocated(models_dir, tmp_path):
    folder = _copy(models_dir, tmp_path)
    _edit_config(folder / "unet" / "config.json", block_out_channels=[2 ** 20, 2 ** 21])
    with pytest.raises(ModelFileError, match="do not belong together"):
        load_backbone(folder)


def test_a_config_that_needs_more_memory_than_the_machine_has_is_refused(models_dir, tmp_path):
    """Wan's rotary tables are not saved, so no weight disagrees: only their size (TBs here) can refuse it."""
    folder = _copy(models_dir, tmp_path, WAN)
    _edit_config(folder / "transformer" / "config.json", rope_max_seq_len=10 ** 11)
    with pytest.raises(ModelFileError) as error:
        load_backbone(folder)
    message = str(error.value)
    assert message.startswith(f"The Wan transformer in '{folder / 'transformer'}' would need ")
    assert re.search(r"would need [\d,.]+ GiB of memory in float32 .* but this machine has", message)
    assert "config.json does not describe these weights" in message


def test_a_valid_model_larger_than_the_free_memory_is_refused_with_other_advice(models_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(model_file_checks, "available_memory", lambda: 1000)
    with pytest.raises(ModelFileError, match=r"The text encoder in .* would need [\d.]+ MiB .* Close other programs"):
        load_backbone(models_dir / "diffusers" / MS)


def test_available_memory_is_read_from_the_system():
    free = model_file_checks.available_memory()
    assert free is None or free > 2 ** 20


def test_other_library_failures_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(ModelFileError) as error, loading(tmp_path, "The UNet"):
        raise OSError("Unable to load weights from checkpoint file\nsecond line")
    assert str(error.value) == (f"The UNet in '{tmp_path}' could not be loaded: Unable to load weights from checkpoint "
                                f"file. Its files are damaged or do not belong together: download the folder "
                                f"'{tmp_path.name}' again.")


# --- logs --------------------------------------------------------------------------------------------
@pytest.fixture
def diffusers_warnings(caplog):
    """diffusers' records do not propagate to the root logger: catch them at its own logger."""
    library = logging.getLogger("diffusers")
    level = library.level
    library.setLevel(logging.WARNING)
    library.addHandler(caplog.handler)
    yield caplog
    library.removeHandler(caplog.handler)
    library.setLevel(level)


@pytest.mark.parametrize("config", ["vae/config.json", "scheduler/scheduler_config.json"])
def test_a_config_with_megabytes_of_unknown_keys_is_logged_short(models_dir, tmp_path, diffusers_warnings, config):
    folder = _copy(models_dir, tmp_path)
    _edit_config(folder / config, **{f"unknown_{i}": "x" * 1000 for i in range(2000)})
    load_backbone(folder)
    mentions = [r.getMessage() for r in diffusers_warnings.records if "unknown_0" in r.getMessage()]
    assert mentions and all(len(m) < 1000 and "characters in all)" in m for m in mentions)
    long = "y" * 5000
    logging.getLogger("diffusers.configuration_utils").warning(long)  # outside the pack's loads: untouched
    assert diffusers_warnings.records[-1].getMessage() == long


def test_a_megabyte_prompt_is_logged_as_its_start_and_length(modelscope, caplog):
    from zeroshot_video.core.conditioning import encode_text
    prompt = "the cat " * 2500
    with caplog.at_level(logging.WARNING, logger="zeroshot_video.core.conditioning"):
        cond = encode_text(modelscope.ready(), prompt)
    (line,) = [r.getMessage() for r in caplog.records if "cut off" in r.getMessage()]
    assert len(line) < 500 and re.search(r"\(19,\d{3} characters in all\)'$", line)
    assert len(cond.notes[0]) > 19000  # the note keeps the whole dropped part


def test_a_motion_adapter_for_another_unet_says_they_do_not_fit(models_dir, tmp_path):
    wide = standin_models.write_original_motion_module(tmp_path / "mm_wide.safetensors", "v2")  # widths (32, 64)
    with pytest.raises(ModelFileError, match=r"'mm_wide.safetensors' is made for a UNet with block widths \[32, 64\], "
                                             r"but the UNet of 'stable-diffusion-v1-5' has \[16, 32\]"):
        load_backbone(models_dir / "diffusers" / standin_models.SD15, motion_adapter=wide)


def test_a_failed_allocation_says_to_free_memory(tmp_path):
    with pytest.raises(ModelFileError, match="could not be loaded: DefaultCPUAllocator: can't allocate memory.*"
                                             "There is not enough memory. Close other programs"):
        with loading(tmp_path, "The UNet"):
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 274 GB")
