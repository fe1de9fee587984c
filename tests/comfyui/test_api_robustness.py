"""The HTTP API as a user's script meets it, through the pack's client (client.py): a long FIFO run interrupted
mid-sampling, and malformed prompts, each of which must come back as a validation error that names the problem
while the server keeps serving. (Every shipped API workflow runs through the client in test_in_comfyui.py.)"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import cpu_overrides
from comfyui_server import ROOT
from zeroshot_video import client

BASE = ROOT / "workflows" / "api" / "t2v_basic.json"
FIFO_LONG = ROOT / "workflows" / "api" / "fifo_long.json"
# t2v_basic at a size the CPU runs in seconds: the base of the small valid and the malformed prompts.
SMALL = ["3.frames=4", "3.width=64", "3.height=64", "3.steps=2"]

pytestmark = pytest.mark.comfyui


def _small_prompt(**sampler) -> dict:
    prompt = client.apply_overrides(json.loads(BASE.read_text()), cpu_overrides.set_arguments(BASE.stem) + SMALL)
    prompt["3"]["inputs"].update(sampler)
    return prompt


def _submit(comfyui, prompt_or_path, out: Path, *overrides, timeout: float = 900):
    """The client's exit code and (stdout, stderr)."""
    path = prompt_or_path
    if isinstance(prompt_or_path, dict):
        path = out / "prompt.json"
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(prompt_or_path))
    return client.submit(str(path), comfyui.url, list(overrides), out, timeout)


def _assert_serving(comfyui):
    status, stats = comfyui.get("/system_stats")
    assert status == 200 and "system" in stats, comfyui.log_tail()


def test_interrupt_during_a_long_fifo_run_stops_it_within_a_unet_call_and_the_next_prompt_runs(comfyui, tmp_path,
                                                                                                  capsys):
    """fifo_long made endless (100 000 frames, streamed to disk and not kept: kept at 768² they would need 700 GB of
    RAM and are refused before the run) and slow per frame (768², all 2n windows of an iteration in one
    batched UNet call, so one emitted frame is one UNet call): POST /interrupt once frames are coming stops the
    run within the time of one such call, nothing runs on after it, and the next prompt succeeds."""
    prompt = client.apply_overrides(json.loads(FIFO_LONG.read_text()), cpu_overrides.set_arguments(FIFO_LONG.stem) + [
        "FIFOQueueWithImageEmbed.num_frames=100000", "FIFOQueueWithImageEmbed.window_batch=8",
        "FIFOQueueWithImageEmbed.stream_to_disk=true", "FIFOQueueWithImageEmbed.keep_frames=false",
        "T2VSampler.width=768", "T2VSampler.height=768"])
    fifo_node = client.find_node(prompt, "FIFOQueueWithImageEmbed")
    client_id = "fifo-interrupt"
    events = client.WebSocket(comfyui.url, client_id)
    try:
        status, answer = comfyui.request("POST", "/prompt", {"prompt": prompt, "client_id": client_id})
        assert status == 200 and not answer.get("node_errors"), answer
        prompt_id = answer["prompt_id"]
        ticks, interrupted_at, interrupted_after, late_ticks = [], None, None, []
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            text = events.receive(1.0)
            if text is None:
                continue
            message = json.loads(text)
            kind, data = message["type"], message.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if kind == "progress" and str(data.get("node")) == fifo_node:
                if interrupted_at is None:
                    ticks.append(time.monotonic())
                else:
                    late_ticks.append(data)
                if len(ticks) == 4 and interrupted_at is None:
                    interrupted_at = time.monotonic()
                    assert comfyui.request("POST", "/interrupt", {"prompt_id": prompt_id})[0] == 200
            elif kind in ("execution_interrupted", "execution_error", "execution_success"):
                assert kind == "execution_interrupted", data
                interrupted_after = time.monotonic() - interrupted_at
                break
        else:
            pytest.fail("no interruption within 900 s:\n" + comfyui.log_tail())
    finally:
        events.close()
        comfyui.request("POST", "/interrupt", {})
    one_call = (ticks[-1] - ticks[0]) / (len(ticks) - 1)  # one emitted frame = one batched UNet call here
    assert interrupted_after < one_call + 0.5, (interrupted_after, one_call)
    assert len(late_ticks) <= 1, late_ticks  # at most the frame whose call was already under way
    entry = _history_entry(comfyui, prompt_id)  # ComfyUI stores it just after it sends execution_interrupted
    assert entry["status"]["status_str"] == "error"
    assert client._outcome(entry) == (client.FAILED, f"interrupted in node {fifo_node} (FIFOQueueWithImageEmbed)")

    _assert_serving(comfyui)
    code = _submit(comfyui, _small_prompt(seed=1002), tmp_path / "next")
    printed = capsys.readouterr()
    assert code == client.OK, printed.err + comfyui.log_tail()
    assert any(line.endswith(".mp4") for line in printed.out.splitlines())


def _history_entry(comfyui, prompt_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        entry = (comfyui.get(f"/history/{prompt_id}")[1] or {}).get(prompt_id)
        if entry is not None or time.monotonic() > deadline:
            assert entry is not None, f"no history entry for {prompt_id} within {timeout:.0f} s"
            return entry
        time.sleep(0.2)


def _set(node, name, value):
    return lambda prompt: prompt[node]["inputs"].__setitem__(name, value)


def _drop(node, name):
    return lambda prompt: prompt[node]["inputs"].pop(name)


def _retype(node, class_type):
    return lambda prompt: prompt[node].__setitem__("class_type", class_type)


def _remove_node(node):
    return lambda prompt: prompt.pop(node)


# FLOAT inputs are checked by the pack's own validation (ComfyUI's range check lets NaN through): their errors are
# custom_validation_failed, naming the input.
# id: (change to the small t2v_basic prompt, where the error must be: (node id, error type, input name or None)
# for node_errors, or ("prompt", error type, text in the message) for prompt-level errors).
MALFORMED = {
    "unknown_node_type": (_retype("3", "NoSuchSampler"), ("prompt", "invalid_prompt", "NoSuchSampler")),
    "no_output_node": (_remove_node("6"), ("prompt", "prompt_no_outputs", "no outputs")),
    "wrong_link_type": (_set("3", "backbone", ["2", 0]), ("3", "return_type_mismatch", "backbone")),
    "link_to_missing_node": (_set("4", "latent", ["99", 0]), ("4", "exception_during_inner_validation", None)),
    "link_to_missing_output": (_set("3", "backbone", ["1", 5]), ("3", "exception_during_inner_validation", None)),
    "malformed_link": (_set("3", "conditioning", ["2"]), ("3", "bad_linked_input", "conditioning")),
    "missing_required_link": (_drop("3", "conditioning"), ("3", "required_input_missing", "conditioning")),
    "missing_required_value": (_drop("3", "seed"), ("3", "required_input_missing", "seed")),
    "steps_below_min": (_set("3", "steps", 0), ("3", "value_smaller_than_min", "steps")),
    "steps_above_max": (_set("3", "steps", 100000), ("3", "value_bigger_than_max", "steps")),
    "steps_not_a_number": (_set("3", "steps", "many"), ("3", "invalid_input_type", "steps")),
    "frames_zero": (_set("3", "frames", 0), ("3", "value_smaller_than_min", "frames")),
    "guidance_above_max": (_set("3", "guidance", 51.0), ("3", "custom_validation_failed", "guidance")),
    "eta_below_min": (_set("3", "eta", -0.5), ("3", "custom_validation_failed", "eta")),
    "seed_negative": (_set("3", "seed", -1), ("3", "value_smaller_than_min", "seed")),
    "denoise_above_max": (_set("3", "denoise", 1.5), ("3", "custom_validation_failed", "denoise")),
    "decode_chunk_zero": (_set("4", "chunk", 0), ("4", "value_smaller_than_min", "chunk")),
    "width_not_multiple_of_8": (_set("3", "width", 100), ("3", "custom_validation_failed", "width")),
    "height_not_multiple_of_8": (_set("3", "height", 60), ("3", "custom_validation_failed", "height")),
    "width_above_max": (_set("3", "width", 8192), ("3", "custom_validation_failed", "width")),
    "width_not_a_number": (_set("3", "width", "wide"), ("3", "custom_validation_failed", "width")),
    "unknown_model": (_set("1", "model", "no-such-model"), ("1", "value_not_in_list", "model")),
    "unknown_motion_adapter": (_set("1", "motion_adapter", "no-such-adapter"),
                               ("1", "value_not_in_list", "motion_adapter")),
    "bad_dtype": (_set("1", "dtype", "fp8"), ("1", "value_not_in_list", "dtype")),
    "unknown_ip_adapter": (_set("1", "ip_adapter", "no-such-ip-adapter.safetensors"),
                           ("1", "value_not_in_list", "ip_adapter")),
}
# What the client adds to ComfyUI's bare KeyError / IndexError for a dangling link.
REPORT_HINTS = {"link_to_missing_node": "a link points to node '99', which the workflow does not have",
                "link_to_missing_output": "a link points to an output slot its node does not have"}
@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_prompt_gets_a_validation_error(comfyui, case, tmp_path, capsys):
    change, (where, error_type, detail) = MALFORMED[case]
    prompt = _small_prompt(seed=2000)
    change(prompt)
    status, answer = comfyui.request("POST", "/prompt", {"prompt": prompt, "client_id": "malformed"})
    if status == 200:  # accepted: it must not go on running behind the following tests
        comfyui.request("POST", "/queue", {"delete": [answer["prompt_id"]]})
        comfyui.request("POST", "/interrupt", {"prompt_id": answer["prompt_id"]})
    assert status == 400, f"accepted (HTTP {status}): {answer}"
    if where == "prompt":
        assert answer["error"]["type"] == error_type and detail in answer["error"]["message"], answer
    else:
        errors = answer["node_errors"].get(where, {}).get("errors", [])
        assert any(e["type"] == error_type and (detail is None or e["extra_info"].get("input_name") == detail)
                   for e in errors), json.dumps(answer["node_errors"], indent=1)
    _assert_serving(comfyui)

    assert _submit(comfyui, prompt, tmp_path, timeout=60) == client.REJECTED
    report = capsys.readouterr().err
    assert report.startswith("error: the server rejected the workflow:"), report
    if where == "prompt":
        assert detail in report
    else:
        head = f"  node {where} ({prompt[where]['class_type']})"
        named = [line[len(head):].partition(":")[0].removeprefix(" input ").split(", ")
                 for line in report.splitlines() if line.startswith(head)]
        assert any((detail in names) if detail else names == [""] for names in named), report
    assert REPORT_HINTS.get(case, "") in report, report


def test_partly_valid_prompt_runs_its_valid_output_and_the_client_says_what_was_dropped(comfyui, tmp_path, capsys):
    """ComfyUI answers HTTP 200 with node_errors when one output is invalid and another is not."""
    prompt = _small_prompt(seed=3000)
    # A second branch 9 → 8 → 7 (decode, create, save) whose decoder has an out-of-range chunk.
    for new, old, link in (("9", "4", None), ("8", "5", ("images", "9")), ("7", "6", ("video", "8"))):
        prompt[new] = json.loads(json.dumps(prompt[old]))
        if link:
            prompt[new]["inputs"][link[0]] = [link[1], 0]
    prompt["9"]["inputs"]["chunk"] = 0
    code = _submit(comfyui, prompt, tmp_path / "out")
    printed = capsys.readouterr()
    assert code == client.REJECTED, printed.err
    assert "some outputs were dropped by validation" in printed.err
    assert "node 9 (DecodeVideoLatent) input chunk: Value 0 smaller than min of 1" in printed.err
    assert [Path(line).suffix for line in printed.out.splitlines()] == [".mp4"], printed


def test_server_still_serves_after_the_malformed_prompts(comfyui, tmp_path, capsys):
    _assert_serving(comfyui)
    code = _submit(comfyui, _small_prompt(seed=4000), tmp_path / "out", "T2VTextEncode.prompt=a lighthouse at dusk")
    printed = capsys.readouterr()
    assert code == client.OK, printed.err + comfyui.log_tail()
    assert "node 3 (T2VSampler" in printed.err and "step 2/2" in printed.err
    assert len(printed.out.split()) == 1
