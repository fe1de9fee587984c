"""Bad input and faults, sent to a real ComfyUI running the pack: malformed values, corrupt model folders,
abusive sizes, mismatched links and folder tricks. Each case asserts the exact kind of answer it must get:

- ``rejected``: HTTP 400 at validation, with an error on the named node whose text holds the fragment;
- ``failed``: queued, then an execution error raised by the pack on the named node, holding the fragment;
- ``succeeded``: queued and finished with a video (the fault is handled, and said so where it must be).

The server here is its own (its model folder holds the corrupt copies, a symlink loop and a link to /usr),
so the other tier-2 tests never see these folders. After every case the server must still answer.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from pathlib import Path

import pytest

import cpu_overrides
from comfyui_server import ROOT, pack_server
from zeroshot_video import client
from zeroshot_video.testing import standin_models

pytestmark = pytest.mark.comfyui

T2V = ROOT / "workflows" / "api" / "t2v_basic.json"
FIFO = ROOT / "workflows" / "api" / "fifo_multi_prompt.json"
I4VGEN = ROOT / "workflows" / "api" / "i4vgen_t2v.json"
WAN_FILES = ROOT / "workflows" / "api" / "wan_ti2v_zero_single_files.json"
CHECKPOINT = ROOT / "workflows" / "api" / "i4vgen_t2v_checkpoint.json"
NATIVE_A14B = ROOT / "workflows" / "api" / "native_wan22_fifo_long.json"
SMALL_T2V = ["3.frames=4", "3.width=64", "3.height=64", "3.steps=2"]
SMALL_FIFO = ["5.width=64", "5.height=64", "5.steps=8", "5.frames=4", "8.window_frames=4", "8.partitions=2",
              "8.num_frames=12", "6.start_frame=4", "7.start_frame=8"]
SMALL_I4VGEN = ["4.frames=4", "4.width=64", "4.height=64", "4.steps=2", "4.num_candidates=2", "6.steps=2",
                "7.frames=4", "7.width=64", "7.height=64", "7.steps=2"]
MODELSCOPE = "text-to-video-ms-1.7b"
SD15 = "stable-diffusion-v1-5"
MOTION_ADAPTER = "animatediff-motion-adapter-v1-5-2"


# --- the corrupt model folders, made from the stand-ins ---------------------------------------------------

def _copy_model(models: Path, name: str, source: str = MODELSCOPE) -> Path:
    target = models / "diffusers" / name
    shutil.copytree(models / "diffusers" / source, target)
    return target


def _edit_json(path: Path, **changes) -> None:
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def write_faulty_models(models: Path) -> None:
    (_copy_model(models, "bad-unet-config") / "unet" / "config.json").write_text('{"_class_name": "UNet3DCond')
    (_copy_model(models, "bad-model-index") / "model_index.json").write_text("{not json")
    weights = "diffusion_pytorch_model.safetensors"
    (_copy_model(models, "pickled-weights") / "unet" / weights).write_bytes(pickle.dumps({"conv_in.weight": [0.0]}))
    (_copy_model(models, "empty-weights") / "unet" / weights).write_bytes(b"")
    truncated = _copy_model(models, "truncated-weights") / "unet" / weights
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    config = _copy_model(models, "wrong-shapes") / "unet" / "config.json"
    _edit_json(config, block_out_channels=[2 * c for c in json.loads(config.read_text())["block_out_channels"]])
    config = _copy_model(models, "absurd-config") / "unet" / "config.json"
    _edit_json(config, block_out_channels=[4_000_000] * len(json.loads(config.read_text())["block_out_channels"]))
    config = _copy_model(models, "unknown-keys") / "unet" / "config.json"
    _edit_json(config, padding_for_a_test="x" * 4_000_000)
    adapters = models / "animatediff_models"
    adapters.mkdir(exist_ok=True)
    shutil.copyfile(next(adapters.glob("*.safetensors")), adapters / "bad-sidecar.safetensors")
    (adapters / "bad-sidecar.json").write_text("{'motion_max_seq_length': 32")
    # A UNet four times as wide: one call on the largest video the inputs allow cannot fit in any machine's memory.
    standin_models.write_modelscope(models / "diffusers" / "wide-unet", blocks=(64, 128),
                                    vae_blocks=standin_models.WORKFLOW_VAE_BLOCKS)
    # Single files: a VAE among the diffusion models, a Wan model among the checkpoints, a file cut short.
    shutil.copyfile(models / "vae" / "wan_2.1_vae.safetensors",
                    models / "diffusion_models" / "misplaced_vae.safetensors")
    wan = models / "diffusion_models" / "wan2.1_t2v_1.3B_fp16.safetensors"
    shutil.copyfile(wan, models / "checkpoints" / "wan_as_checkpoint.safetensors")
    (models / "diffusion_models" / "cut_short.safetensors").write_bytes(wan.read_bytes()[: wan.stat().st_size // 2])
    # A loop (diffusers/loop → diffusers) and a link to a big system folder.
    (models / "diffusers" / "loop").symlink_to(models / "diffusers", target_is_directory=True)
    (models / "diffusers" / "usr").symlink_to("/usr", target_is_directory=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.environ.get("COMFYUI_DIR"):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout (and COMFYUI_PYTHON to its python) to run the pack "
                    "inside a real ComfyUI")
    base = tmp_path_factory.mktemp("faults-base")
    comfyui = pack_server(Path(os.environ["COMFYUI_DIR"]), base)
    write_faulty_models(base / "models")
    try:
        comfyui.start()
        yield comfyui
    finally:
        comfyui.stop()


# --- the cases ------------------------------------------------------------------------------------------

def _prompt(path: Path, overrides: list[str], changes: dict[str, dict]) -> dict:
    prompt = client.apply_overrides(json.loads(path.read_text()), overrides)
    for node, inputs in changes.items():
        prompt[node]["inputs"].update(inputs)
    return prompt


def t2v(**changes):
    return lambda: _prompt(T2V, SMALL_T2V, changes)


def fifo(**changes):
    return lambda: _prompt(FIFO, SMALL_FIFO, changes)


def i4vgen(**changes):
    return lambda: _prompt(I4VGEN, SMALL_I4VGEN, changes)


def wan_files(**changes):
    return lambda: _prompt(WAN_FILES, cpu_overrides.set_arguments(WAN_FILES.stem), changes)


def checkpoint(**changes):
    return lambda: _prompt(CHECKPOINT, SMALL_I4VGEN, changes)


def native_a14b(**changes):
    """ComfyUI's A14B template wiring (UNETLoader → LoraLoaderModelOnly → ModelSamplingSD3, twice) into the pack."""
    return lambda: _prompt(NATIVE_A14B, cpu_overrides.set_arguments(NATIVE_A14B.stem), changes)


def mixed_backbones():
    """A ModelScope latent decoded with an AnimateDiff backbone's VAE."""
    prompt = _prompt(T2V, SMALL_T2V, {})
    prompt["11"] = {"class_type": "LoadT2VBackbone",
                    "inputs": {**prompt["1"]["inputs"], "model": SD15, "motion_adapter": MOTION_ADAPTER}}
    prompt["4"]["inputs"]["backbone"] = ["11", 0]
    return prompt


NAN, INF = float("nan"), float("inf")
REJECTED, FAILED, SUCCEEDED = "rejected", "failed", "succeeded"

# id: (prompt builder, (kind, node id, fragment of the message))
CASES = {
    # Non-finite numbers: ComfyUI's own range checks let NaN through.
    "guidance_nan": (t2v(**{"3": {"guidance": NAN}}), (REJECTED, "3", "guidance")),
    "guidance_inf": (t2v(**{"3": {"guidance": INF}}), (REJECTED, "3", "guidance")),
    "eta_nan": (t2v(**{"3": {"eta": NAN}}), (REJECTED, "3", "eta")),
    "denoise_nan": (t2v(**{"3": {"denoise": NAN}}), (REJECTED, "3", "denoise")),
    "fifo_guidance_nan": (fifo(**{"8": {"guidance": NAN}}), (REJECTED, "8", "guidance")),
    "nivsds_p_nan": (i4vgen(**{"6": {"p": NAN}}), (REJECTED, "6", "p")),
    "step_sizes_huge": (i4vgen(**{"6": {"step_sizes": "1e308"}}), (REJECTED, "6", "step_sizes")),
    "step_sizes_nan": (i4vgen(**{"6": {"step_sizes": "10,nan"}}), (REJECTED, "6", "step_sizes")),
    # Booleans must be JSON booleans: ComfyUI turns the string "false" into True.
    "boolean_as_string": (fifo(**{"8": {"stream_to_disk": "false"}}), (REJECTED, "8", "stream_to_disk")),
    "boolean_as_number": (fifo(**{"8": {"lookahead": 0}}), (REJECTED, "8", "lookahead")),
    # Output folder names, checked before anything is sampled.
    "prefix_parent": (fifo(**{"8": {"stream_to_disk": True, "filename_prefix": "../x"}}),
                      (REJECTED, "8", "filename_prefix")),
    "prefix_absolute": (fifo(**{"8": {"stream_to_disk": True, "filename_prefix": "/tmp/x"}}),
                        (REJECTED, "8", "filename_prefix")),
    "prefix_nul": (fifo(**{"8": {"stream_to_disk": True, "filename_prefix": "a\x00b"}}),
                   (REJECTED, "8", "filename_prefix")),
    "prefix_too_long": (fifo(**{"8": {"stream_to_disk": True, "filename_prefix": "x" * 300}}),
                        (REJECTED, "8", "filename_prefix")),
    # Corrupt model folders: one message naming the file and what to do.
    "unet_config_not_json": (t2v(**{"1": {"model": "bad-unet-config"}}), (FAILED, "1", "config.json")),
    "model_index_not_json": (t2v(**{"1": {"model": "bad-model-index"}}), (FAILED, "1", "model_index.json")),
    "pickle_renamed_safetensors": (t2v(**{"1": {"model": "pickled-weights"}}),
                                   (FAILED, "1", "diffusion_pytorch_model.safetensors")),
    "empty_safetensors": (t2v(**{"1": {"model": "empty-weights"}}),
                          (FAILED, "1", "diffusion_pytorch_model.safetensors")),
    "truncated_safetensors": (t2v(**{"1": {"model": "truncated-weights"}}),
                              (FAILED, "1", "diffusion_pytorch_model.safetensors")),
    "weights_of_other_shapes": (t2v(**{"1": {"model": "wrong-shapes"}}), (FAILED, "1", "unet")),
    "absurd_config": (t2v(**{"1": {"model": "absurd-config"}}), (FAILED, "1", "unet")),
    "sidecar_not_json": (i4vgen(**{"1": {"motion_adapter": "bad-sidecar.safetensors"}}),
                         (FAILED, "1", "bad-sidecar.json")),
    # Single files in the wrong slot or damaged: the file named, and where it belongs.
    "vae_chosen_as_diffusion_model": (wan_files(**{"1": {"model": "misplaced_vae.safetensors"}}),
                                      (FAILED, "1", "models/vae")),
    "wan_file_chosen_as_checkpoint": (checkpoint(**{"1": {"checkpoint": "wan_as_checkpoint.safetensors"}}),
                                      (FAILED, "1", "wan_as_checkpoint.safetensors")),
    "single_file_cut_short": (wan_files(**{"1": {"model": "cut_short.safetensors"}}),
                              (FAILED, "1", "cut_short.safetensors")),
    "flow_shift_nan": (wan_files(**{"1": {"flow_shift": NAN}}), (REJECTED, "1", "flow_shift")),
    # Work that cannot fit is refused before it starts.
    "frames_and_size_too_big": (t2v(**{"1": {"model": "wide-unet"},
                                        "3": {"frames": 1024, "width": 4096, "height": 4096}}),
                                (FAILED, "3", "frames")),
    # Links between backbones that do not belong together.
    "latent_of_another_backbone": (mixed_backbones, (FAILED, "4", MODELSCOPE)),
    # Wan 2.2 A14B experts wired the wrong way round, seen in the graph's file names (a MODEL carries none).
    "a14b_experts_swapped": (native_a14b(**{"14": {"model": ["8", 0], "model_low_noise": ["7", 0]}}),
                             (FAILED, "14", "model and model_low_noise are swapped")),
    "lora_on_the_other_expert": (native_a14b(**{"5": {"lora_name": "wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise"
                                                                   ".safetensors"}}),
                                 (FAILED, "14", "is for the low-noise expert")),
    # Handled, and said so.
    "unknown_config_keys": (t2v(**{"1": {"model": "unknown-keys"}}), (SUCCEEDED, None, None)),
    "megabyte_prompt": (t2v(**{"2": {"prompt": "a red panda " * 90_000}}), (SUCCEEDED, None, None)),
}


def _errors_of(answer: dict, node: str) -> str:
    return json.dumps(answer.get("node_errors", {}).get(node, {}).get("errors", []))


def _log_since(server, since: int) -> str:
    return server.log_path.read_bytes()[since:].decode(errors="replace")


def _long_log_lines(server, since: int, limit: int = 4000) -> list[int]:
    text = _log_since(server, since)
    return [len(line) for line in text.splitlines() if len(line) > limit]


@pytest.mark.parametrize("case", CASES)
def test_fault_gets_the_answer_it_must(server, case):
    build, (kind, node, fragment) = CASES[case]
    prompt = build()
    log_start = server.log_path.stat().st_size
    status, answer = server.request("POST", "/prompt", {"prompt": prompt, "client_id": "faults"})
    if kind == REJECTED:
        # HTTP 400, or 200 when another output of the workflow does not depend on the refused node (ComfyUI then
        # runs only that one): either way the node is refused with the message.
        if status == 200:
            server.request("POST", "/queue", {"delete": [answer["prompt_id"]]})
            server.request("POST", "/interrupt", {"prompt_id": answer["prompt_id"]})
        assert status == 400 or answer.get("node_errors"), f"accepted (HTTP {status}): {answer}"
        errors = _errors_of(answer, node)
        assert fragment in errors, json.dumps(answer, indent=1)
    else:
        assert status == 200 and not answer.get("node_errors"), json.dumps(answer, indent=1)
        entry = _wait(server, answer["prompt_id"])
        outcome, message = client._outcome(entry)
        if kind == FAILED:
            assert outcome == client.FAILED, f"{case} was reported as a success"
            assert message.startswith(f"execution error in node {node} "), message
            assert fragment in message, message
            assert "Traceback" not in message and len(message) < 2000, message
        else:
            assert outcome == client.OK, f"{message}\n{server.log_tail()}"
            videos = [item for output in entry["outputs"].values() for item in output.get("images", [])
                      + output.get("videos", []) + output.get("animated", []) if isinstance(item, dict)]
            assert videos, entry["outputs"]
    assert _long_log_lines(server, log_start) == [], "a log line longer than 4000 characters"
    status, stats = server.get("/system_stats")
    assert status == 200 and "system" in stats, server.log_tail()


def _wait(server, prompt_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = (server.get(f"/history/{prompt_id}")[1] or {}).get(prompt_id)
        if entry and entry.get("status", {}).get("status_str") in ("success", "error"):
            return entry
        time.sleep(0.5)
    server.request("POST", "/interrupt", {"prompt_id": prompt_id})
    raise AssertionError(f"prompt {prompt_id} did not finish within {timeout:.0f} s:\n{server.log_tail()}")


def test_listing_follows_each_real_folder_once_and_quickly(server):
    """The loop and the link to /usr add no choice and no time: every listed model is a distinct real folder."""
    started = time.monotonic()
    status, info = server.get("/object_info/LoadT2VBackbone")
    elapsed = time.monotonic() - started
    assert status == 200
    models = info["LoadT2VBackbone"]["input"]["required"]["model"][0]
    base = server.base / "models" / "diffusers"
    real = [os.path.realpath(base / name) for name in models]
    assert len(set(real)) == len(real), models
    assert not any(name.startswith(("loop/", "usr/")) for name in models), models
    assert elapsed < 10, elapsed


def test_schedule_entry_after_the_end_is_said_in_the_log(server):
    prompt = fifo(**{"7": {"start_frame": 500}})()
    log_start = server.log_path.stat().st_size
    entry = server.run_prompt(prompt, timeout=600)
    assert client._outcome(entry)[0] == client.OK
    log = _log_since(server, log_start)
    assert "500" in log and "ignored" in log, log[-3000:]


def test_interrupt_stops_one_long_model_call_within_two_seconds_and_the_next_prompt_runs(server):
    """One step on a large video: the run spends its time inside a single model call, which must stop at
    its next block when /interrupt comes, not when the call ends."""
    prompt = t2v(**{"3": {"frames": 256, "width": 1024, "height": 1024, "steps": 1}})()
    events = client.WebSocket(server.url, "faults-interrupt")
    try:
        status, answer = server.request("POST", "/prompt", {"prompt": prompt, "client_id": "faults-interrupt"})
        assert status == 200 and not answer.get("node_errors"), answer
        prompt_id, sampling_since, interrupted_at, stopped_after, steps_done = answer["prompt_id"], None, None, None, 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if sampling_since is not None and interrupted_at is None and time.monotonic() - sampling_since > 3:
                interrupted_at = time.monotonic()
                assert server.request("POST", "/interrupt", {"prompt_id": prompt_id})[0] == 200
            text = events.receive(0.1)
            if text is None:
                continue
            message = json.loads(text)
            kind, data = message["type"], message.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if kind == "executing" and str(data.get("node")) == "3":
                sampling_since = time.monotonic()
            elif kind == "progress" and str(data.get("node")) == "3":
                steps_done = data.get("value")
            elif kind in ("execution_interrupted", "execution_error", "execution_success"):
                assert kind == "execution_interrupted", data
                stopped_after = time.monotonic() - interrupted_at
                break
        else:
            pytest.fail("no interruption within 600 s:\n" + server.log_tail())
    finally:
        events.close()
    assert steps_done == 0, "the model call ended before the interrupt: make the call longer"
    assert stopped_after < 2.0, stopped_after
    entry = server.run_prompt(t2v()(), timeout=300)
    assert client._outcome(entry) == (client.OK, None), server.log_tail()
