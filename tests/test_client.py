"""The API client against a fake ComfyUI on 127.0.0.1: its answers are shaped like ComfyUI 0.3.64's (HTTP 400
and HTTP 200 with node_errors, history entries with outputs or execution errors, websocket messages)."""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from zeroshot_video import client
from zeroshot_video.cli.commands import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
PROMPT_ID = "5f0c2b2e-0000-4000-8000-000000000001"
WORKFLOW = {
    "1": {"class_type": "LoadT2VBackbone", "inputs": {"model": "text-to-video-ms-1.7b", "motion_adapter": "none",
                                                      "dtype": "auto"}, "_meta": {"title": "Load T2V Backbone"}},
    "2": {"class_type": "T2VTextEncode", "inputs": {"backbone": ["1", 0], "prompt": "a cat", "negative_prompt": ""},
          "_meta": {"title": "T2V Text Encode"}},
    "3": {"class_type": "T2VSampler", "inputs": {"backbone": ["1", 0], "conditioning": ["2", 0], "frames": 16,
                                                 "width": 256, "height": 256, "steps": 25, "guidance": 9.0, "eta": 0.0,
                                                 "seed": 42}, "_meta": {"title": "T2V Sampler"}},
    "4": {"class_type": "DecodeVideoLatent", "inputs": {"backbone": ["1", 0], "latent": ["3", 0], "chunk": 4},
          "_meta": {"title": "Decode"}},
    "5": {"class_type": "SaveVideo", "inputs": {"video": ["4", 0], "filename_prefix": "x", "format": "mp4",
                                                "codec": "h264"}, "_meta": {"title": "Save"}},
    "6": {"class_type": "SaveVideo", "inputs": {"video": ["4", 0], "filename_prefix": "y", "format": "mp4",
                                                "codec": "h264"}, "_meta": {"title": "Save"}},
}
VIDEO = {"filename": "t2v_00001_.mp4", "subfolder": "zeroshot_video", "type": "output"}
PREVIEW = {"filename": "preview_00001_.png", "subfolder": "", "type": "temp"}
FILES = {("t2v_00001_.mp4", "zeroshot_video", "output"): b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4,
         ("preview_00001_.png", "", "temp"): b"\x89PNG fake"}
SUCCESS = {"outputs": {"5": {"images": [VIDEO], "animated": [True]}, "6": {"images": [PREVIEW]}},
           "status": {"status_str": "success", "completed": True, "messages": [["execution_success", {}]]}}
RUN_MESSAGES = [{"type": "execution_start", "data": {"prompt_id": PROMPT_ID}},
                {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}, "sid": "x"}},
                {"type": "execution_cached", "data": {"nodes": ["1", "2"], "prompt_id": PROMPT_ID}},
                {"type": "executing", "data": {"node": "3", "display_node": "3", "prompt_id": PROMPT_ID}},
                *({"type": "progress", "data": {"value": k, "max": 4, "node": "3", "prompt_id": PROMPT_ID}}
                  for k in range(1, 5)),
                {"type": "executing", "data": {"node": "3", "prompt_id": "another-clients-prompt"}},
                {"type": "executing", "data": {"node": None, "prompt_id": PROMPT_ID}}]
NODE_ERRORS = {
    "3": {"class_type": "T2VSampler", "dependent_outputs": ["5"], "errors": [
        {"type": "value_bigger_than_max", "message": "Value 5000 bigger than max of 1000", "details": "steps",
         "extra_info": {"input_name": "steps"}},
        {"type": "custom_validation_failed", "message": "Custom validation failed for node",
         "details": "width - width 100: width and height must be positive multiples of 8",
         "extra_info": {"input_name": "width"}},
        {"type": "custom_validation_failed", "message": "Custom validation failed for node",
         "details": "height - width 100: width and height must be positive multiples of 8",
         "extra_info": {"input_name": "height"}}]},
    "1": {"class_type": "LoadT2VBackbone", "dependent_outputs": ["5"], "errors": [
        {"type": "value_not_in_list", "message": "Value not in list",
         "details": "model: 'nope' not in ['text-to-video-ms-1.7b']", "extra_info": {"input_name": "model"}}]},
    "4": {"class_type": "DecodeVideoLatent", "dependent_outputs": ["5"], "errors": [
        {"type": "exception_during_inner_validation", "message": "Exception when validating inner node",
         "details": "'99'", "extra_info": {"input_name": "images", "exception_message": "'99'",
                                           "exception_type": "KeyError", "linked_node": ["4", 0]}}]}}


def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    return head + bytes([126]) + struct.pack("!H", len(payload)) + payload


class FakeComfyUI:
    """Scripted ComfyUI answers; records what the client sent."""

    def __init__(self):
        self.prompt_answer = (200, {"prompt_id": PROMPT_ID, "number": 1, "node_errors": {}})
        self.entry = SUCCESS
        self.history_after = 1          # polls answered with {} before the entry appears (None: never)
        self.websocket = True
        self.ws_messages = RUN_MESSAGES
        self.requests, self.ws_client_id, self.ws_opcodes = [], None, []
        self.history_polls = 0
        self.posted = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", content_type="application/json"):
                body = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
                fake.requests.append(("POST", self.path, body))
                if self.path == "/prompt":
                    self._reply(*fake.prompt_answer)
                    fake.posted.set()
                else:
                    self._reply(200)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                fake.requests.append(("GET", url.path, query))
                if url.path == "/ws" and fake.websocket:
                    self._websocket(query["clientId"])
                elif url.path.startswith("/history/"):
                    fake.history_polls += 1
                    ready = fake.history_after is not None and fake.history_polls > fake.history_after
                    self._reply(200, {PROMPT_ID: fake.entry} if ready else {})
                elif url.path == "/view" and (query["filename"], query["subfolder"], query["type"]) in FILES:
                    self._reply(200, FILES[query["filename"], query["subfolder"], query["type"]], "video/mp4")
                else:
                    self._reply(404, b"404: Not Found", "text/plain")

            def _websocket(self, client_id):
                fake.ws_client_id = client_id
                key = self.headers["Sec-WebSocket-Key"]
                accept = base64.b64encode(hashlib.sha1((key + client.WebSocket.GUID).encode()).digest()).decode()
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept)
                self.end_headers()
                fake.posted.wait(10)
                self.close_connection = True
                # A ping, a binary preview frame and a fragmented text message come first, as they can.
                first = json.dumps(fake.ws_messages[0]).encode() if fake.ws_messages else b""
                frames = [_frame(0x9, b"hi"), _frame(0x2, b"\x00\x00\x00\x01JPEG" + bytes(300)),
                          _frame(0x1, first[:5], fin=False), _frame(0x0, first[5:])]
                frames += [_frame(0x1, json.dumps(message).encode()) for message in fake.ws_messages[1:]]
                try:
                    self.wfile.write(b"".join(frames))
                except OSError:     # the client has gone (a rejected prompt)
                    return
                while head := self.rfile.read(2):     # the client's frames (masked) until it closes
                    length = head[1] & 0x7F
                    self.rfile.read(4 + length)
                    fake.ws_opcodes.append(head[0] & 0x0F)
                    if head[0] & 0x0F == 0x8:
                        break

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def posted_prompt(self):
        return next(body for method, path, body in self.requests if method == "POST" and path == "/prompt")

    def paths(self, method):
        return [path for m, path, _ in self.requests if m == method]


@pytest.fixture
def fake():
    server = FakeComfyUI()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def workflow(tmp_path):
    path = tmp_path / "workflow_api.json"
    path.write_text(json.dumps(WORKFLOW))
    return path


def submit(fake, workflow, out, *overrides, timeout=20.0):
    return client.submit(str(workflow), fake.url, list(overrides), out, timeout)


def test_success_shows_progress_and_downloads_every_listed_file(fake, workflow, tmp_path, capsys):
    out = tmp_path / "out"
    assert submit(fake, workflow, out) == client.OK
    printed = capsys.readouterr()
    saved = [Path(line) for line in printed.out.splitlines()]
    assert saved == [out / "t2v_00001_.mp4", out / "preview_00001_.png"]
    assert saved[0].read_bytes() == FILES["t2v_00001_.mp4", "zeroshot_video", "output"]
    assert saved[1].read_bytes() == FILES["preview_00001_.png", "", "temp"]
    body = fake.posted_prompt()
    assert body["prompt"] == WORKFLOW and body["client_id"] == fake.ws_client_id
    err = printed.err
    assert f"queued prompt {PROMPT_ID}" in err and f"prompt {PROMPT_ID}: running" in err  # a fragmented message
    assert "node 3 (T2VSampler, 'T2V Sampler')" in err
    assert "cached (not re-run): nodes 1, 2" in err
    assert [line.strip() for line in err.splitlines() if "step" in line] == [f"step {k}/4" for k in range(1, 5)]
    assert err.count("node 3") == 1, "a message of another client's prompt was shown"
    assert 0xA in fake.ws_opcodes, "the ping got no pong"


def test_progress_in_a_long_run_is_thinned_in_a_log(capsys):
    progress = client.Progress(WORKFLOW, PROMPT_ID)
    for k in range(1, 1001):
        progress.show("progress", {"value": k, "max": 1000, "prompt_id": PROMPT_ID})
    steps = [line for line in capsys.readouterr().err.splitlines() if "step" in line]
    assert steps[0].strip() == "step 1/1000" and steps[-1].strip() == "step 1000/1000" and len(steps) <= 12


def test_overrides_by_id_title_and_class_with_json_values(fake, workflow, tmp_path):
    assert submit(fake, workflow, tmp_path, "3.steps=5", "T2V Sampler.guidance=7.5", "T2VTextEncode.prompt=42",
                  "Decode.latent=[\"3\", 0]", "1.dtype=fp16", "3.eta=not json") == client.OK
    prompt = fake.posted_prompt()["prompt"]
    sampler = prompt["3"]["inputs"]
    assert sampler["steps"] == 5 and isinstance(sampler["steps"], int) and sampler["guidance"] == 7.5
    assert sampler["eta"] == "not json"
    assert prompt["2"]["inputs"]["prompt"] == "42", "a string input must stay a string"
    assert prompt["4"]["inputs"]["latent"] == ["3", 0] and prompt["1"]["inputs"]["dtype"] == "fp16"
    assert json.loads(workflow.read_text()) == WORKFLOW


@pytest.mark.parametrize("spec, expected", [
    ("9.steps=1", ["no node '9'", "3 (T2VSampler, 'T2V Sampler')", "1 (LoadT2VBackbone, 'Load T2V Backbone')"]),
    ("3.step=1", ["no input 'step'", "frames, width, height, steps, guidance, eta, seed"]),
    ("Save.filename_prefix=z", ["several nodes (5, 6)"]),
    ("steps=1", ["expected NODE.INPUT=VALUE"]),
    ("3.steps", ["expected NODE.INPUT=VALUE"]),
])
def test_bad_overrides_name_the_choices_and_send_nothing(fake, workflow, tmp_path, capsys, spec, expected):
    assert submit(fake, workflow, tmp_path, spec) == client.REJECTED
    err = capsys.readouterr().err
    for text in expected:
        assert text in err
    assert fake.paths("POST") == []


def test_unreadable_or_ui_format_workflow(fake, tmp_path, capsys):
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))
    assert submit(fake, ui, tmp_path) == client.REJECTED
    assert "UI-format" in capsys.readouterr().err
    assert submit(fake, tmp_path / "missing.json", tmp_path) == client.REJECTED
    assert "cannot read the workflow" in capsys.readouterr().err
    (tmp_path / "list.json").write_text("[1, 2]")
    assert submit(fake, tmp_path / "list.json", tmp_path) == client.REJECTED
    assert "not an API-format workflow" in capsys.readouterr().err
    assert fake.requests == []


def test_an_out_folder_that_cannot_be_made_is_refused_before_queueing(fake, workflow, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert submit(fake, workflow, tmp_path / "file" / "out") == client.REJECTED
    assert "cannot create the folder" in capsys.readouterr().err and fake.paths("POST") == []


def test_a_listed_file_the_server_cannot_serve_is_an_error(fake, workflow, tmp_path, capsys):
    fake.entry = {**SUCCESS, "outputs": {"5": {"images": [{**VIDEO, "filename": "gone.mp4"}]}}}
    assert submit(fake, workflow, tmp_path) == client.UNREACHABLE
    assert "downloading gone.mp4 (GET /view) failed: HTTP Error 404" in capsys.readouterr().err


def test_http_400_prints_one_line_per_node_error(fake, workflow, tmp_path, capsys):
    fake.prompt_answer = (400, {"error": {"type": "prompt_outputs_failed_validation",
                                          "message": "Prompt outputs failed validation", "details": "..."},
                                "node_errors": NODE_ERRORS})
    assert submit(fake, workflow, tmp_path) == client.REJECTED
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "error: the server rejected the workflow:"
    assert [line.strip() for line in lines[1:]] == [
        "node 3 (T2VSampler) input steps: Value 5000 bigger than max of 1000",
        "node 3 (T2VSampler) input width, height: Custom validation failed for node: width 100: width and height "
        "must be positive multiples of 8",
        "node 1 (LoadT2VBackbone) input model: Value not in list: 'nope' not in ['text-to-video-ms-1.7b']",
        "node 4 (DecodeVideoLatent): Exception when validating inner node: '99' (a link points to node '99', which "
        "the workflow does not have)"]
    assert fake.paths("GET").count("/history/" + PROMPT_ID) == 0 and not list(tmp_path.glob("*.mp4"))


def test_http_400_without_node_errors_prints_the_prompt_error(fake, workflow, tmp_path, capsys):
    fake.prompt_answer = (400, {"error": {"type": "invalid_prompt", "message": "Cannot execute because node "
                                          "T2VSamplerX does not exist.", "details": "Node ID '#3'"},
                                "node_errors": {}})
    assert submit(fake, workflow, tmp_path) == client.REJECTED
    assert "Cannot execute because node T2VSamplerX does not exist. (Node ID '#3')" in capsys.readouterr().err


def test_http_200_with_node_errors_is_reported_and_the_valid_outputs_still_downloaded(fake, workflow, tmp_path,
                                                                                       capsys):
    fake.prompt_answer = (200, {"prompt_id": PROMPT_ID, "number": 3, "node_errors": {"6": {
        "class_type": "SaveVideo", "dependent_outputs": ["6"], "errors": [
            {"type": "value_not_in_list", "message": "Value not in list", "details": "format: 'avi' not in "
             "['auto', 'mp4']", "extra_info": {"input_name": "format"}}]}}})
    fake.entry = {**SUCCESS, "outputs": {"5": SUCCESS["outputs"]["5"]}}
    assert submit(fake, workflow, tmp_path) == client.REJECTED
    printed = capsys.readouterr()
    assert "some outputs were dropped by validation" in printed.err
    assert "node 6 (SaveVideo) input format: Value not in list: 'avi' not in ['auto', 'mp4']" in printed.err
    assert printed.out.split() == [str(tmp_path / "t2v_00001_.mp4")]


def test_execution_error_names_node_and_exception(fake, workflow, tmp_path, capsys):
    fake.entry = {"outputs": {}, "status": {"status_str": "error", "completed": False, "messages": [
        ["execution_start", {"prompt_id": PROMPT_ID}],
        ["execution_error", {"prompt_id": PROMPT_ID, "node_id": "3", "node_type": "T2VSampler",
                             "exception_type": "ValueError", "exception_message": "frames must be at least 1\n",
                             "traceback": ["..."]}]]}}
    assert submit(fake, workflow, tmp_path) == client.FAILED
    assert ("error: execution error in node 3 (T2VSampler): ValueError: frames must be at least 1"
            in capsys.readouterr().err)


def test_interruption_is_reported(fake, workflow, tmp_path, capsys):
    fake.entry = {"outputs": {}, "status": {"status_str": "error", "completed": False, "messages": [
        ["execution_interrupted", {"prompt_id": PROMPT_ID, "node_id": "3", "node_type": "T2VSampler",
                                   "executed": ["1", "2"]}]]}}
    assert submit(fake, workflow, tmp_path) == client.FAILED
    assert "error: interrupted in node 3 (T2VSampler)" in capsys.readouterr().err


def test_unreachable_server_exits_4(workflow, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert client.submit(str(workflow), f"http://127.0.0.1:{port}", [], tmp_path, 5) == client.UNREACHABLE
    assert f"cannot reach the ComfyUI server at http://127.0.0.1:{port}" in capsys.readouterr().err


def test_timeout_exits_4_and_says_the_prompt_still_runs(fake, workflow, tmp_path, capsys):
    fake.history_after, fake.ws_messages = None, []
    assert submit(fake, workflow, tmp_path, timeout=0.5) == client.UNREACHABLE
    assert f"gave up waiting after 0.5 s: prompt {PROMPT_ID} is still queued or running" in capsys.readouterr().err


def test_without_a_websocket_the_client_polls_history(fake, workflow, tmp_path, capsys):
    fake.websocket, fake.history_after = False, 0
    assert submit(fake, workflow, tmp_path) == client.OK
    printed = capsys.readouterr()
    assert "no live progress" in printed.err and len(printed.out.split()) == 2


def test_a_server_that_is_not_comfyui_exits_4(fake, workflow, tmp_path, capsys):
    fake.prompt_answer = (404, b"404: Not Found")
    assert submit(fake, workflow, tmp_path) == client.UNREACHABLE
    assert "POST /prompt answered HTTP 404" in capsys.readouterr().err


def test_ctrl_c_drops_or_interrupts_the_prompt(fake, workflow, tmp_path, monkeypatch, capsys):
    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(client, "wait_for", interrupted)
    assert submit(fake, workflow, tmp_path) == client.FAILED
    assert ("POST", "/queue", {"delete": [PROMPT_ID]}) in fake.requests
    assert ("POST", "/interrupt", {"prompt_id": PROMPT_ID}) in fake.requests
    assert "cancelled" in capsys.readouterr().err


def test_submit_subcommand_of_the_pack_cli(fake, workflow, tmp_path, capsys):
    assert cli_main(["submit", str(workflow), "--server", fake.url, "--out", str(tmp_path), "--set", "3.seed=7",
                     "--timeout", "20"]) == client.OK
    assert fake.posted_prompt()["prompt"]["3"]["inputs"]["seed"] == 7
    assert (tmp_path / "t2v_00001_.mp4").is_file()
    with pytest.raises(SystemExit) as usage:
        cli_main(["submit"])
    assert usage.value.code == 2 and "workflow" in capsys.readouterr().err


def test_client_file_runs_standalone_without_torch(fake, workflow, tmp_path):
    check = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('client', sys.argv[1]); "
             "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
             "print(sorted(n for n in sys.modules if n.split('.')[0] in ('torch', 'numpy', 'zeroshot_video')))")
    done = subprocess.run([sys.executable, "-c", check, str(ROOT / "client.py")], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
    done = subprocess.run([sys.executable, str(ROOT / "client.py"), "submit", str(workflow), "--server", fake.url,
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "t2v_00001_.mp4").is_file()
