"""The HTTP API as a user's script meets it, through the pack's client (client.py): every shipped API workflow,
a run interrupted mid-sampling, and malformed prompts, each of which must come back as a validation error that
names the problem while the server keeps serving."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from comfyui_server import API_FILES, ROOT
from zeroshot_video import client

BASE = ROOT / "workflows" / "api" / "t2v_basic.json"
VIDEO_SUFFIXES = {".mp4", ".webm", ".webp", ".gif", ".mov", ".mkv"}
# t2v_basic at a size the CPU runs in seconds: the base of the small valid and the malformed prompts.
SMALL = ["3.frames=4", "3.width=64", "3.height=64", "3.steps=2"]

pytestmark = pytest.mark.comfyui


def _small_prompt(**sampler) -> dict:
    prompt = client.apply_overrides(json.loads(BASE.read_text()), SMALL)
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


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_shipped_workflow_runs_through_the_client(comfyui, path, tmp_path, capsys):
    code = _submit(comfyui, path, tmp_path / "out")
    printed = capsys.readouterr()
    if code == client.UNREACHABLE:  # timed out: stop it, or it runs on behind the next tests
        comfyui.request("POST", "/queue", {"clear": True})
        comfyui.request("POST", "/interrupt", {})
    assert code == client.OK, printed.err + comfyui.log_tail()
    saved = [Path(line) for line in printed.out.splitlines()]
    assert saved and all(file.parent == tmp_path / "out" and file.is_file() for file in saved)
    videos = [file for file in saved if file.suffix.lower() in VIDEO_SUFFIXES]
    assert videos, f"no video downloaded: {saved}"
    for video in videos:
        assert video.stat().st_size > 1000
        if video.suffix.lower() in (".mp4", ".mov"):
            assert video.read_bytes()[4:8] == b"ftyp", f"{video} is not an MP4/QuickTime file"
    assert "node 3 (T2VSampler" in printed.err or "cached" in printed.err


def test_interrupt_mid_run_then_the_next_prompt_runs(comfyui, tmp_path, capsys):
    """A 500-step run is interrupted at its first sampling step; the client says so and exits 3, the history
    records execution_interrupted in the sampler, and a small prompt then succeeds."""
    long_run = _small_prompt(steps=500, seed=1001)
    (tmp_path / "long.json").write_text(json.dumps(long_run))
    run = subprocess.Popen([sys.executable, str(ROOT / "client.py"), "submit", str(tmp_path / "long.json"),
                            "--server", comfyui.url, "--out", str(tmp_path / "long"), "--timeout", "600"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, sampling = [], threading.Event()

    def read_progress():
        for line in run.stderr:
            lines.append(line)
            if "step " in line:
                sampling.set()

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 600
        while not sampling.wait(0.5) and run.poll() is None and time.monotonic() < deadline:
            pass
        assert sampling.is_set(), "".join(lines) + comfyui.log_tail()
        prompt_id = next(line.split()[2] for line in lines if line.startswith("queued prompt "))
        assert comfyui.request("POST", "/interrupt", {"prompt_id": prompt_id})[0] == 200
        assert run.wait(120) == client.FAILED, "".join(lines)
    finally:
        if run.poll() is None:
            run.kill()
            comfyui.request("POST", "/interrupt", {})
    reader.join(10)
    assert "error: interrupted in node 3 (T2VSampler)" in "".join(lines)
    entry = comfyui.get(f"/history/{prompt_id}")[1][prompt_id]
    kinds = {kind: data for kind, data in entry["status"]["messages"]}
    assert "execution_interrupted" in kinds and kinds["execution_interrupted"]["node_id"] == "3"
    assert entry["status"]["status_str"] == "error"

    _assert_serving(comfyui)
    code = _submit(comfyui, _small_prompt(seed=1002), tmp_path / "next")
    printed = capsys.readouterr()
    assert code == client.OK, printed.err + comfyui.log_tail()
    assert any(line.endswith(".mp4") for line in printed.out.splitlines())


def _set(node, name, value):
    return lambda prompt: prompt[node]["inputs"].__setitem__(name, value)


def _drop(node, name):
    return lambda prompt: prompt[node]["inputs"].pop(name)


def _retype(node, class_type):
    return lambda prompt: prompt[node].__setitem__("class_type", class_type)


def _remove_node(node):
    return lambda prompt: prompt.pop(node)


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
    "guidance_above_max": (_set("3", "guidance", 51.0), ("3", "value_bigger_than_max", "guidance")),
    "eta_below_min": (_set("3", "eta", -0.5), ("3", "value_smaller_than_min", "eta")),
    "seed_negative": (_set("3", "seed", -1), ("3", "value_smaller_than_min", "seed")),
    "denoise_above_max": (_set("3", "denoise", 1.5), ("3", "value_bigger_than_max", "denoise")),
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
# Validation gaps of the pack, pinned until fixed (strict: the test fails once they are, so the mark goes).
KNOWN_GAPS = {
    "width_above_max": "T2VSampler.VALIDATE_INPUTS names width/height, so ComfyUI skips its own min/max check for "
                       "them, and check_size does not apply the declared maximum: the prompt is accepted",
    "width_not_a_number": "for the same reason ComfyUI does not convert width to INT, and check_size raises "
                          "TypeError: a 400, but as exception_during_inner_validation with a TypeError message",
}


@pytest.mark.parametrize("case", [pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[case]))
                                  if case in KNOWN_GAPS else case for case in MALFORMED])
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
