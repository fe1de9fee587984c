"""Single-file motion modules: the layout is read from the file, every tensor comes from it, and a file that
does not fit is refused instead of leaving modules at random values (with or without accelerate)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from zeroshot_video.testing import standin_models
from zeroshot_video.core.loading.file_checks import ModelFileError
from zeroshot_video.core.families.unet.folder import load_motion_adapter

_TABLE = re.compile(r"^(.*)\.temporal_transformer\.(transformer_blocks\.\d+)\.attention_blocks\.0\.pos_encoder\.pe$")


def _expected_tensors(file_state: dict) -> dict:
    """The file's tensors under diffusers' names: diffusers' own converter for everything but the positional
    tables (which it drops), and the first attention's table for each block's shared one."""
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers
    expected = convert_animatediff_checkpoint_to_diffusers(file_state)
    for name, tensor in file_state.items():
        table = _TABLE.match(name)
        if table:
            expected[f"{table.group(1)}.{table.group(2)}.pos_embed.pe"] = tensor
    return expected


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("animatediff_models")
    return {v: standin_models.write_original_motion_module(root / f"mm_{v}.safetensors", v)
            for v in standin_models.ORIGINAL_MM_VERSIONS}


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_original_layout_loads_every_tensor_of_the_file(files, version):
    adapter = load_motion_adapter(files[version], torch.float32)
    layout = standin_models.ORIGINAL_MM_VERSIONS[version]
    assert adapter.config.use_motion_mid_block == layout["use_motion_mid_block"]
    assert adapter.config.motion_max_seq_length == layout["motion_max_seq_length"]
    assert list(adapter.config.block_out_channels) == list(standin_models.ORIGINAL_MM_BLOCKS)
    assert adapter.config.motion_layers_per_block == 1
    assert (adapter.mid_block is not None) == layout["use_motion_mid_block"]

    file_state = load_file(str(files[version]))
    expected = _expected_tensors(file_state)
    loaded = adapter.state_dict()
    assert loaded.keys() == expected.keys()
    tables = sum(1 for k in loaded if k.endswith("pos_embed.pe"))
    assert len(file_state) == len(loaded) + tables  # two tables per block in the file, one shared in diffusers
    different = [k for k in loaded if not torch.equal(loaded[k], expected[k].float())]
    assert not different
    assert all(t.dtype == torch.float32 and not t.is_meta for t in loaded.values())


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_stand_ins_have_the_released_layout(tmp_path, version):
    """diffusers' own detector takes each stand-in for the release it imitates (it needs 3+ blocks); the loader
    reads the deeper layout too (2 motion modules per block, as released)."""
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    blocks = (32, 64, 64)
    path = standin_models.write_original_motion_module(tmp_path / "mm.safetensors", version, blocks, layers=2)
    assert infer_diffusers_model_type(load_file(str(path))) == f"animatediff_{version}"
    config = load_motion_adapter(path, torch.float32).config
    assert list(config.block_out_channels) == list(blocks) and config.motion_layers_per_block == 2


def _edited(files, tmp_path, edit) -> Path:
    state = load_file(str(files["v2"]))
    edit(state)
    path = tmp_path / "edited.safetensors"
    save_file(state, str(path))
    return path


def test_a_missing_tensor_is_named(files, tmp_path):
    gone = "down_blocks.1.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_k.weight"
    path = _edited(files, tmp_path, lambda state: state.pop(gone))
    with pytest.raises(ModelFileError, match="edited.safetensors") as error:
        load_motion_adapter(path, torch.float32)
    message = str(error.value)
    assert "1 tensor(s) the model needs are not in the file" in message
    assert "down_blocks.1.motion_modules.0.transformer_blocks.0.attn2.to_k.weight" in message
    assert "have no place" not in message


def test_unexpected_and_misshapen_tensors_are_named(files, tmp_path):
    def edit(state):
        state["down_blocks.0.motion_modules.0.temporal_transformer.extra.weight"] = torch.zeros(3)
        state["up_blocks.0.motion_modules.1.temporal_transformer.proj_out.bias"] = torch.zeros(5)
    with pytest.raises(ModelFileError) as error:
        load_motion_adapter(_edited(files, tmp_path, edit), torch.float32)
    message = str(error.value)
    assert "1 tensor(s) in the file have no place in the model (down_blocks.0.motion_modules.0.extra.weight)" in message
    assert "1 tensor(s) have the wrong shape (up_blocks.0.motion_modules.1.proj_out.bias)" in message


def test_a_file_without_positional_tables_gets_the_sinusoid(files, tmp_path):
    """Tables are a fixed function of position, not weights: a file saved without any gets diffusers' own (at the
    released 32 frames unless a sidecar says otherwise); every other tensor still comes from the file."""
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding
    path = _edited(files, tmp_path, lambda state: [state.pop(k) for k in list(state) if k.endswith(".pe")])
    adapter = load_motion_adapter(path, torch.float32)
    loaded, expected = adapter.state_dict(), _expected_tensors(load_file(str(path)))
    tables = {k for k in loaded if k.endswith("pos_embed.pe")}
    assert tables and loaded.keys() - tables == expected.keys()
    assert all(torch.equal(loaded[k], expected[k].float()) for k in expected)
    assert all(torch.equal(loaded[k], SinusoidalPositionalEmbedding(loaded[k].shape[2], 32).pe) for k in tables)
    assert adapter.config.motion_max_seq_length == 32


def test_a_file_with_some_positional_tables_missing_is_refused(files, tmp_path):
    gone = "mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.{}.pos_encoder.pe"
    path = _edited(files, tmp_path, lambda state: [state.pop(gone.format(a)) for a in (0, 1)])
    with pytest.raises(ModelFileError, match=r"1 tensor\(s\) the model needs .*mid_block\.motion_modules\.0\."
                                             r"transformer_blocks\.0\.pos_embed\.pe"):
        load_motion_adapter(path, torch.float32)


def test_attentions_with_different_tables_are_refused(files, tmp_path):
    name = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe"
    path = _edited(files, tmp_path, lambda state: state.update({name: state[name] * 2}))
    with pytest.raises(ModelFileError, match="different positional tables"):
        load_motion_adapter(path, torch.float32)


def test_a_sidecar_overrides_what_the_tensors_say(files, tmp_path):
    path = _edited(files, tmp_path, lambda state: None)
    path.with_suffix(".json").write_text(json.dumps({"motion_num_attention_heads": 4}))
    assert load_motion_adapter(path, torch.float32).config.motion_num_attention_heads == 4
    path.with_suffix(".json").write_text(json.dumps({"use_motion_mid_block": False}))  # contradicts the file
    with pytest.raises(ModelFileError, match=r"no place in the model \(mid_block.*edited\.json"):
        load_motion_adapter(path, torch.float32)


def test_a_sidecar_that_is_not_json_is_named(files, tmp_path):
    path = _edited(files, tmp_path, lambda state: None)
    path.with_suffix(".json").write_text("{'block_out_channels': [32, 64]}")
    with pytest.raises(ModelFileError, match=re.escape(str(path.with_suffix(".json"))) + ".* not valid JSON"):
        load_motion_adapter(path, torch.float32)


def test_widths_the_released_settings_cannot_build_ask_for_a_sidecar(tmp_path):
    """16 channels cannot take 32 GroupNorm groups: the error asks for the config the tensors cannot give."""
    path = standin_models.write_original_motion_module(tmp_path / "small.safetensors", "v3", blocks=(16, 32))
    with pytest.raises(ModelFileError, match="small.json"):
        load_motion_adapter(path, torch.float32)
    path.with_suffix(".json").write_text(json.dumps({"motion_norm_num_groups": 8, "motion_num_attention_heads": 2}))
    assert load_motion_adapter(path, torch.float32).config.motion_norm_num_groups == 8


def test_a_diffusers_folder_with_a_missing_tensor_is_refused(tmp_path):
    folder = tmp_path / "adapter"
    standin_models.tiny_motion_adapter().save_pretrained(folder, safe_serialization=True)
    weights = folder / "diffusion_pytorch_model.safetensors"
    state = load_file(str(weights))
    state.pop("mid_block.motion_modules.0.proj_in.weight")
    save_file(state, str(weights))
    with pytest.raises(ModelFileError, match=r"'.*adapter'.*mid_block\.motion_modules\.0\.proj_in\.weight"):
        load_motion_adapter(folder, torch.float32)


# Loads a v3 file into a full UNetMotionModel twice, from different random states, and runs it: equal outputs
# mean no module kept its random initial values. Run in this process and in one where accelerate cannot be
# imported (diffusers then builds models without the meta device).
SEED_CHECK = textwrap.dedent("""
    import sys, torch
    from zeroshot_video.core.families import load_backbone
    def run(sd15, adapter):
        outputs = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            backbone = load_backbone(sd15, motion_adapter=adapter)
            g = torch.Generator().manual_seed(0)
            sample = torch.randn(1, 4, 4, 8, 8, generator=g)
            # UNetMotionModel takes one text row per frame
            context = torch.randn(4, 7, backbone.text_encoder.config.hidden_size, generator=g)
            with torch.no_grad():
                outputs.append(backbone.unet(sample, 10, encoder_hidden_states=context).sample)
        assert backbone.max_frames == 32 and getattr(backbone.unet.mid_block, "motion_modules", None) is None
        return torch.equal(*outputs)
""")


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diffusers") / standin_models.SD15
    standin_models.write_sd15(folder, blocks=standin_models.ORIGINAL_MM_BLOCKS)
    return folder


def test_v3_in_a_full_unet_does_not_depend_on_the_random_state(sd15, files):
    scope = {}
    exec(SEED_CHECK, scope)
    assert scope["run"](sd15, files["v3"])


def test_v3_without_accelerate_does_not_depend_on_the_random_state(sd15, files):
    script = ("import sys; sys.modules['accelerate'] = None\n"
              "import torch; torch.set_num_threads(1)\n"
              "from diffusers.utils import is_accelerate_available; assert not is_accelerate_available()\n"
              + SEED_CHECK + f"\nprint('equal' if run({str(sd15)!r}, {str(files['v3'])!r}) else 'different')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "equal"
