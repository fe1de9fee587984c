"""Wan 2.2 A14B experts and their LoRAs, checked from the file names in the API prompt ComfyUI gives the node.

The prompt is the shipped ``native_wan22_fifo_long`` workflow (ComfyUI's A14B template wiring), then rewired as
users get it wrong. Tier 2 (``tests/comfyui/test_faults.py``) sends the same mistakes to a real ComfyUI."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from zeroshot_video.core.families.wan.expert_names import HIGH, LOW, expert_mark
from zeroshot_video.nodes.native.expert_wiring import check_expert_wiring, files_upstream

WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "api" / "native_wan22_fifo_long.json"
BACKBONE = "14"


@pytest.fixture
def prompt() -> dict:
    return json.loads(WORKFLOW.read_text())


def refused(prompt: dict, *fragments: str) -> str:
    with pytest.raises(ValueError) as caught:
        check_expert_wiring(prompt, BACKBONE)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("name, mark", [
    ("wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", HIGH),
    ("wan2.2_t2v_low_noise_14B_fp16.safetensors", LOW),
    ("wan2.2_t2v_lightx2v_4steps_lora_v1.1_high_noise.safetensors", HIGH),
    ("Wan2.2-T2V-A14B-HighNoise-Q8_0.gguf", HIGH),
    ("Wan2.2-T2V-A14B-LowNoise-Q4_K_M.gguf", LOW),
    ("Wan2_2-T2V-A14B-LOW_fp8_e4m3fn_scaled_KJ.safetensors", LOW),
    ("Wan2.2-Lightning_T2V-A14B-4steps-lora_HIGH_fp16.safetensors", HIGH),
    ("Wan2.2-Lightning/Wan2.2-T2V-A14B-4steps-lora-rank64-Seko-V1.1/low_noise_model.safetensors", LOW),
    ("wan2.1_t2v_14B_fp8_scaled.safetensors", None),
    ("Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors", None),
    ("detail_high_quality.safetensors", None),  # "high" alone, without A14B, marks nothing
    ("lowvram_merge_high_noise.safetensors", HIGH),
    ("yellow_noise_lora.safetensors", None),
    ("a14b_high_and_low.safetensors", None),  # both marks: unknown
])
def test_expert_mark(name, mark):
    assert expert_mark(name) == mark


def test_the_template_wiring_passes(prompt):
    check_expert_wiring(prompt, BACKBONE)
    chain = files_upstream(prompt, prompt[BACKBONE]["inputs"]["model"])
    assert [(file.node, file.input_name) for file in chain] == [("5", "lora_name"), ("1", "unet_name")]


def test_swapped_connections_are_refused_naming_both_files(prompt):
    inputs = prompt[BACKBONE]["inputs"]
    inputs["model"], inputs["model_low_noise"] = inputs["model_low_noise"], inputs["model"]
    refused(prompt, "model and model_low_noise are swapped", "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
            "node 2", "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", "node 1")


def test_swapped_files_are_refused(prompt):
    one, two = prompt["1"]["inputs"], prompt["2"]["inputs"]
    one["unet_name"], two["unet_name"] = two["unet_name"], one["unet_name"]
    refused(prompt, "swapped")


def test_one_expert_in_the_wrong_slot_is_named(prompt):
    prompt["1"]["inputs"]["unet_name"] = prompt["2"]["inputs"]["unet_name"]
    refused(prompt, "model comes from wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors", "high_noise")


def test_a_lora_on_the_other_expert_is_refused_naming_it(prompt):
    prompt["5"]["inputs"]["lora_name"] = "wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors"
    refused(prompt, "the LoRA wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors", "node 5",
            "is on model's chain", "the high-noise expert")


def test_a_lora_is_checked_on_one_expert_run_alone(prompt):
    """No low-noise MODEL connected: the loaded file says which expert the chain runs."""
    del prompt[BACKBONE]["inputs"]["model_low_noise"]
    check_expert_wiring(prompt, BACKBONE)
    prompt["5"]["inputs"]["lora_name"] = "wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors"
    refused(prompt, "is on model's chain, which runs the high-noise expert")


def test_the_walk_passes_patch_nodes_and_stops_where_the_chain_does(prompt):
    """Any node passing its ``model`` input on is followed (a patch node here); a loop or a missing node ends it."""
    prompt["30"] = {"class_type": "PathchSageAttentionKJ", "inputs": {"model": ["7", 0], "sage_attention": "auto"}}
    prompt[BACKBONE]["inputs"]["model"] = ["30", 0]
    looped = copy.deepcopy(prompt)
    looped["1"]["inputs"]["model"] = ["30", 0]
    assert [file.node for file in files_upstream(looped, ["30", 0])] == ["5", "1"]
    prompt["1"]["inputs"]["unet_name"] = prompt["2"]["inputs"]["unet_name"]
    refused(prompt, "model comes from")
    assert files_upstream(prompt, ["99", 0]) == []


def test_swapped_connections_show_in_the_lora_names_alone(prompt):
    for node in ("1", "2"):
        prompt[node]["inputs"]["unet_name"] = f"my_expert_{node}.safetensors"
    check_expert_wiring(prompt, BACKBONE)
    inputs = prompt[BACKBONE]["inputs"]
    inputs["model"], inputs["model_low_noise"] = inputs["model_low_noise"], inputs["model"]
    refused(prompt, "v1.1_low_noise.safetensors (LoraLoaderModelOnly, node 6) is for the low-noise expert")


def test_unmarked_names_and_no_prompt_check_nothing(prompt):
    for node in ("1", "2", "5", "6"):
        name = "unet_name" if node in "12" else "lora_name"
        prompt[node]["inputs"][name] = f"my_file_{node}.safetensors"
    inputs = prompt[BACKBONE]["inputs"]
    inputs["model"], inputs["model_low_noise"] = inputs["model_low_noise"], inputs["model"]
    check_expert_wiring(prompt, BACKBONE)
    check_expert_wiring(None, None)
    check_expert_wiring({}, BACKBONE)
    check_expert_wiring(prompt, "404")
