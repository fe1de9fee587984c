"""Queue an API-format workflow on a running ComfyUI server, follow it, and download what it made.

``python -m zeroshot_video submit workflow_api.json [--server URL] [--set NODE.INPUT=VALUE ...] [--out DIR]``,
or, on a machine without the pack or torch, ``python client.py submit ...``: this file needs only the
standard library, so it can be copied anywhere.

Live progress comes from ComfyUI's websocket (``/ws?clientId=``), read by the small RFC 6455 reader below;
the outcome always comes from ``GET /history/<prompt_id>``, which is also polled, so a proxy that drops the
websocket or a missed message only costs the live progress, never the result.

Exit codes: 0 success; 2 the workflow was rejected (unreadable file, bad ``--set``, or validation errors,
including an HTTP 200 answer whose ``node_errors`` dropped some outputs: the valid ones still run and are
downloaded); 3 execution error or interrupted; 4 the server could not be reached or the wait timed out.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import shutil
import ssl
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

OK, REJECTED, FAILED, UNREACHABLE = 0, 2, 3, 4
DEFAULT_SERVER = "http://127.0.0.1:8188"
HTTP_TIMEOUT = 30.0
HISTORY_POLL_S = 2.0


class SubmitError(Exception):
    """A failure with the exit code it maps to; the message is what the user reads."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------------------------- workflow
def load_workflow(path: str | Path) -> dict:
    try:
        prompt = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SubmitError(REJECTED, f"cannot read the workflow {path}: {error}") from None
    if isinstance(prompt, dict) and "nodes" in prompt and "links" in prompt:
        raise SubmitError(REJECTED, f"{path} is a UI-format workflow (the editor's save format). Submit its "
                                    "API-format copy: this pack ships them in workflows/api/, and the editor "
                                    "writes one with Workflow → Export (API).")
    if not isinstance(prompt, dict) or not prompt or not all(
            isinstance(node, dict) and "class_type" in node and isinstance(node.get("inputs"), dict)
            for node in prompt.values()):
        raise SubmitError(REJECTED, f"{path} is not an API-format workflow: expected an object mapping node ids to "
                                    '{"class_type": ..., "inputs": {...}}.')
    return prompt


def _describe(prompt: dict, node_id: str) -> str:
    node = prompt.get(node_id, {})
    title = node.get("_meta", {}).get("title")
    name = node.get("class_type", "?")
    return f"{node_id} ({name}{f', {title!r}' if title and title != name else ''})"


def find_node(prompt: dict, key: str) -> str:
    """The id of the node named by ``key``: a node id, else a unique ``_meta.title``, else a unique class_type."""
    if key in prompt:
        return key
    for name_of in (lambda node: node.get("_meta", {}).get("title"), lambda node: node.get("class_type")):
        matches = [node_id for node_id, node in prompt.items() if name_of(node) == key]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise SubmitError(REJECTED, f"--set: {key!r} names several nodes ({', '.join(matches)}); use a node id: "
                                        + "; ".join(_describe(prompt, m) for m in matches))
    raise SubmitError(REJECTED, f"--set: no node {key!r} in the workflow. Nodes (id, class, title): "
                                + "; ".join(_describe(prompt, node_id) for node_id in prompt))


def parse_value(text: str, current):
    """JSON when it parses (numbers, booleans, ``["3", 0]`` links), else the text itself. An input that holds
    a string keeps the text as it is, so ``--set 2.prompt=42`` or ``=true`` stays a prompt, not a number."""
    if isinstance(current, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def apply_overrides(prompt: dict, overrides: list[str]) -> dict:
    """A copy of ``prompt`` with each ``NODE.INPUT=VALUE`` applied; the file's dict is left as loaded."""
    prompt = json.loads(json.dumps(prompt))
    for spec in overrides:
        target, sep, text = spec.partition("=")
        node_key, dot, input_name = target.rpartition(".")
        if not sep or not dot or not node_key or not input_name:
            raise SubmitError(REJECTED, f"--set {spec!r}: expected NODE.INPUT=VALUE, NODE being a node id, title or "
                                        "class type (e.g. --set 3.steps=10 or --set T2VSampler.seed=7)")
        node_id = find_node(prompt, node_key)
        inputs = prompt[node_id]["inputs"]
        if input_name not in inputs:
            raise SubmitError(REJECTED, f"--set {spec!r}: node {_describe(prompt, node_id)} has no input "
                                        f"{input_name!r}; its inputs: {', '.join(inputs) or '(none)'}")
        inputs[input_name] = parse_value(text, inputs[input_name])
    return prompt


# ----------------------------------------------------------------------------------------------- reporting
def _strip_input_name(details: str, input_name: str) -> str:
    for sep in (" - ", ": ", ", "):
        if details.startswith(input_name + sep):
            return details[len(input_name) + len(sep):]
    return "" if details == input_name else details


def _inner_hint(error: dict, prompt: dict) -> str:
    """ComfyUI reports a link to a missing node or output slot as a bare KeyError / IndexError."""
    extra = error.get("extra_info") or {}
    missing = str(extra.get("exception_message", error.get("details", ""))).strip("'")
    if extra.get("exception_type") == "KeyError" and missing not in prompt:
        return f" (a link points to node {missing!r}, which the workflow does not have)"
    if extra.get("exception_type") == "IndexError":
        return " (a link points to an output slot its node does not have)"
    return ""


def format_node_errors(node_errors: dict, prompt: dict) -> list[str]:
    """One line per error: node id, class type, input name(s), message (ComfyUI's details without repeating the
    input name; a message ComfyUI repeats for several inputs of one node, as VALIDATE_INPUTS does, once)."""
    lines: dict[tuple, list[str]] = {}
    for node_id, entry in node_errors.items():
        class_type = entry.get("class_type") or prompt.get(node_id, {}).get("class_type", "?")
        for error in entry.get("errors", []):
            # An error inside a linked node names the input of the node that links to it: not this node's.
            inner = error.get("type") == "exception_during_inner_validation"
            input_name = None if inner else (error.get("extra_info") or {}).get("input_name")
            details = str(error.get("details") or "")
            if input_name:
                details = _strip_input_name(details, input_name)
            message = (error.get("message") or error.get("type") or "invalid") + (f": {details}" if details else "")
            names = lines.setdefault((node_id, class_type, message + _inner_hint(error, prompt)), [])
            if input_name:
                names.append(input_name)
    return [f"  node {node_id} ({class_type})" + (f" input {', '.join(names)}" if names else "") + f": {message}"
            for (node_id, class_type, message), names in lines.items()]


def format_rejection(answer, prompt: dict) -> list[str]:
    """What the server said about a prompt it rejected (HTTP 400) or accepted in part (HTTP 200)."""
    if not isinstance(answer, dict):
        return [f"  {answer}"]
    lines = format_node_errors(answer.get("node_errors") or {}, prompt)
    error = answer.get("error")
    if isinstance(error, dict) and not lines:
        # Prompt-level problems (unknown node type, no output node) come without node_errors.
        lines.append(f"  {error.get('message', error.get('type', 'invalid prompt'))}"
                     + (f" ({error['details']})" if error.get("details") else ""))
    elif isinstance(error, str):
        lines.append(f"  {error}")
    return lines


class Progress:
    """Prints what the websocket says about one prompt to stderr; in a terminal the step counter is redrawn
    in place, in a log it is thinned to about ten lines per node."""

    def __init__(self, prompt: dict, prompt_id: str, stream=None):
        self.prompt, self.prompt_id = prompt, prompt_id
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.redrawing = False
        self.last_step = None

    def _line(self, text: str) -> None:
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def _step(self, value: int, total: int) -> None:
        if self.live:
            self.stream.write(f"\r\033[K  step {value}/{total}")
            self.redrawing = True
            self.stream.flush()
        elif value in (1, total) or self.last_step is None or value - self.last_step >= max(1, total // 10):
            self._line(f"  step {value}/{total}")
        else:
            return
        self.last_step = value

    def show(self, kind: str, data: dict) -> None:
        if data.get("prompt_id") not in (None, self.prompt_id):
            return
        if kind == "execution_start":
            self._line(f"prompt {self.prompt_id}: running")
        elif kind == "execution_cached" and data.get("nodes"):
            self._line(f"cached (not re-run): nodes {', '.join(map(str, data['nodes']))}")
        elif kind == "executing" and data.get("node") is not None:
            self._line(f"node {_describe(self.prompt, str(data['node']))}")
            self.last_step = None
        elif kind == "progress":
            self._step(int(data.get("value", 0)), max(1, int(data.get("max", 1))))

    def close(self) -> None:
        if self.redrawing:
            self.stream.write("\n")
            self.redrawing = False


# ----------------------------------------------------------------------------------------------- transport
def _unreachable(url: str, reason) -> SubmitError:
    return SubmitError(UNREACHABLE, f"cannot reach the ComfyUI server at {url} ({reason}). Is it running? "
                                    "Pass its address with --server.")


class Server:
    """The few HTTP routes the client uses. Connection failures become SubmitError(UNREACHABLE)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise SubmitError(REJECTED, f"--server {url!r}: expected an http:// or https:// address, "
                                        f"e.g. {DEFAULT_SERVER}")

    def _open(self, method: str, path: str, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            return urllib.request.urlopen(request, timeout=HTTP_TIMEOUT)
        except urllib.error.HTTPError:
            raise
        except (OSError, ValueError) as error:
            raise _unreachable(self.url, getattr(error, "reason", error)) from None

    def call(self, method: str, path: str, payload=None):
        """(HTTP status, decoded JSON body or the raw text); HTTP error statuses are returned, not raised."""
        try:
            with self._open(method, path, payload) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        except OSError as error:  # the connection broke while the answer was read
            raise _unreachable(self.url, error) from None
        text = body.decode("utf-8", errors="replace")
        try:
            return status, (json.loads(text) if text else None)
        except ValueError:
            return status, text

    def history(self, prompt_id: str):
        status, answer = self.call("GET", f"/history/{urllib.parse.quote(prompt_id)}")
        if status != 200:
            raise SubmitError(UNREACHABLE, f"GET /history/{prompt_id} answered HTTP {status}: {answer}")
        return (answer or {}).get(prompt_id) if isinstance(answer, dict) else None

    def download(self, item: dict, target: Path) -> None:
        query = urllib.parse.urlencode({key: item.get(key, "") for key in ("filename", "subfolder", "type")})
        try:
            with self._open("GET", f"/view?{query}") as response, open(target, "wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.HTTPError, OSError) as error:
            raise SubmitError(UNREACHABLE, f"downloading {item.get('filename')} (GET /view) failed: {error}") from None


class WebSocket:
    """Just enough of RFC 6455 to read ComfyUI's messages: handshake, (fragmented) frames, ping → pong."""

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, server_url: str, client_id: str, timeout: float = 10.0):
        parts = urllib.parse.urlsplit(server_url)
        secure = parts.scheme == "https"
        host, port = parts.hostname, parts.port or (443 if secure else 80)
        self.client_id = client_id
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if secure:
            self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=host)
        self.buffer = b""
        try:
            self._handshake(parts)
        except BaseException:
            self.sock.close()
            raise
        self.fragments, self.fragment_opcode = [], None

    def _handshake(self, parts) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path.rstrip("/") + "/ws?" + urllib.parse.urlencode({"clientId": self.client_id})
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("the server closed the connection during the websocket handshake")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        if status.split()[1:2] != ["101"] or headers.get("sec-websocket-accept") != accept:
            raise OSError(f"no websocket at {path}: {status}")

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        length = len(payload)
        header = bytes([0x80 | opcode])
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _frame(self):
        """(fin, opcode, payload) of the first complete frame in the buffer, or None."""
        if len(self.buffer) < 2:
            return None
        fin, opcode = self.buffer[0] & 0x80, self.buffer[0] & 0x0F
        masked, length, offset = self.buffer[1] & 0x80, self.buffer[1] & 0x7F, 2
        if length >= 126:
            size = 2 if length == 126 else 8
            if len(self.buffer) < offset + size:
                return None
            length = int.from_bytes(self.buffer[offset:offset + size], "big")
            offset += size
        mask = b""
        if masked:
            mask, offset = self.buffer[offset:offset + 4], offset + 4
        if len(self.buffer) < offset + length:
            return None
        payload, self.buffer = self.buffer[offset:offset + length], self.buffer[offset + length:]
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bool(fin), opcode, payload

    def receive(self, timeout: float):
        """The next text message (str), or None when none came within ``timeout`` s; binary messages (preview
        images) are skipped. Raises OSError when the connection ends."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame()
            if frame is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.sock.settimeout(remaining)
                try:
                    chunk = self.sock.recv(1 << 16)
                except socket.timeout:
                    return None
                if not chunk:
                    raise OSError("the server closed the websocket")
                self.buffer += chunk
                continue
            fin, opcode, payload = frame
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                raise OSError("the server closed the websocket")
            elif opcode in (0x0, 0x1, 0x2):
                if opcode:
                    self.fragment_opcode, self.fragments = opcode, []
                self.fragments.append(payload)
                if fin and self.fragment_opcode == 0x1:
                    return b"".join(self.fragments).decode("utf-8", errors="replace")

    def close(self) -> None:
        try:
            self._send(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


# ----------------------------------------------------------------------------------------------- the run
def _connect_events(server: Server, client_id: str):
    """The websocket, or None (polling only) when the server answers HTTP but offers no websocket."""
    try:
        return WebSocket(server.url, client_id)
    except (ConnectionRefusedError, socket.gaierror, socket.timeout) as error:
        raise _unreachable(server.url, error) from None
    except OSError as error:
        print(f"(no live progress: {error}; polling /history instead)", file=sys.stderr)
        return None


def wait_for(server: Server, prompt_id: str, events, progress: Progress, timeout: float | None) -> dict:
    """The prompt's history entry once the server has finished it (ComfyUI writes history last)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    next_poll, poll_every = 0.0, HISTORY_POLL_S
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise SubmitError(UNREACHABLE, f"gave up waiting after {timeout:g} s: prompt {prompt_id} is still queued "
                                           "or running on the server (POST /interrupt stops it).")
        if now >= next_poll:
            entry = server.history(prompt_id)
            if entry is not None:
                return entry
            next_poll = now + poll_every
        wait = max(0.05, next_poll - time.monotonic())
        if deadline is not None:
            wait = min(wait, max(0.05, deadline - time.monotonic()))
        if events is None:
            time.sleep(wait)
            continue
        try:
            text = events.receive(wait)
        except OSError:
            events = None
            continue
        if text is None:
            continue
        try:
            message = json.loads(text)
            kind, data = message["type"], message.get("data") or {}
        except (ValueError, KeyError, TypeError):
            continue
        progress.show(kind, data)
        finished = (kind in ("execution_success", "execution_error", "execution_interrupted")
                    or (kind == "executing" and data.get("node") is None))
        if finished and data.get("prompt_id") == prompt_id:
            next_poll, poll_every = 0.0, 0.2


def _make_folder(out_dir: Path) -> None:
    """Before queueing, so that a bad --out costs no server time."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SubmitError(REJECTED, f"--out {out_dir}: cannot create the folder ({error})") from None


def download_outputs(server: Server, entry: dict, out_dir: Path) -> list[Path]:
    """Every file the history lists (images, videos, gifs, …: any output item with a filename), saved flat into
    ``out_dir`` under its own name."""
    saved = []
    for node_output in (entry.get("outputs") or {}).values():
        for items in node_output.values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and item.get("filename"):
                    target = out_dir / Path(str(item["filename"])).name
                    server.download(item, target)
                    saved.append(target)
    return saved


def _outcome(entry: dict) -> tuple[int, str | None]:
    status = entry.get("status") or {}
    for kind, data in status.get("messages") or []:
        if kind == "execution_error":
            return FAILED, (f"execution error in node {data.get('node_id')} ({data.get('node_type')}): "
                            f"{data.get('exception_type', 'Exception')}: {data.get('exception_message', '').strip()}")
        if kind == "execution_interrupted":
            return FAILED, f"interrupted in node {data.get('node_id')} ({data.get('node_type')})"
    if status.get("status_str", "success") != "success":
        return FAILED, f"the server reports the prompt as {status.get('status_str')!r}"
    return OK, None


def _cancel(server: Server, prompt_id: str) -> None:
    """Ctrl-C: drop the prompt from the queue, or stop it if it is running."""
    try:
        server.call("POST", "/queue", {"delete": [prompt_id]})
        server.call("POST", "/interrupt", {"prompt_id": prompt_id})
    except SubmitError:
        pass


def submit(workflow: str, server_url: str = DEFAULT_SERVER, overrides=(), out: str | Path = ".",
           timeout: float | None = None) -> int:
    """Queue the workflow, follow it, download its files; prints as it goes and returns the exit code."""
    try:
        prompt = apply_overrides(load_workflow(workflow), list(overrides))
        server = Server(server_url)
        _make_folder(Path(out))
        client_id = uuid.uuid4().hex
        events = _connect_events(server, client_id)
        try:
            return _run(server, prompt, client_id, events, Path(out), timeout)
        finally:
            if events is not None:
                events.close()
    except SubmitError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code


def _run(server: Server, prompt: dict, client_id: str, events, out: Path, timeout: float | None) -> int:
    status, answer = server.call("POST", "/prompt", {"prompt": prompt, "client_id": client_id})
    if status == 400:
        print("error: the server rejected the workflow:", file=sys.stderr)
        print("\n".join(format_rejection(answer, prompt)), file=sys.stderr)
        return REJECTED
    if status != 200 or not isinstance(answer, dict) or "prompt_id" not in answer:
        raise SubmitError(UNREACHABLE, f"POST /prompt answered HTTP {status}: {str(answer)[:500]} — is "
                                       f"{server.url} a ComfyUI server?")
    prompt_id = answer["prompt_id"]
    code = OK
    if answer.get("node_errors"):
        print("error: some outputs were dropped by validation (the others run):", file=sys.stderr)
        print("\n".join(format_rejection({"node_errors": answer["node_errors"]}, prompt)), file=sys.stderr)
        code = REJECTED
    print(f"queued prompt {prompt_id} on {server.url}", file=sys.stderr)
    progress = Progress(prompt, prompt_id)
    try:
        entry = wait_for(server, prompt_id, events, progress, timeout)
    except KeyboardInterrupt:
        progress.close()
        _cancel(server, prompt_id)
        print(f"cancelled: asked the server to drop or interrupt prompt {prompt_id}", file=sys.stderr)
        return FAILED
    progress.close()
    outcome, message = _outcome(entry)
    for path in download_outputs(server, entry, out):
        print(path)
    if message:
        print(f"error: {message}", file=sys.stderr)
        return outcome
    return code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", help="API-format workflow JSON (e.g. workflows/api/t2v_basic.json)")
    parser.epilog = ("exit codes: 0 done, 2 rejected (file, --set or validation errors), 3 execution error or "
                     "interrupted, 4 server unreachable or timeout")
    parser.add_argument("--server", default=DEFAULT_SERVER, metavar="URL", help=f"ComfyUI address (default {DEFAULT_SERVER})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="change an input before queueing; NODE is a node id, title or class type; VALUE is "
                             "JSON when it parses (a string input keeps the text as is). Repeatable.")
    parser.add_argument("--out", default=".", metavar="DIR", help="folder for the downloaded outputs (default: here)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="give up waiting after S seconds (exit 4; the prompt keeps running). Default: wait")


def run_args(args) -> int:
    return submit(args.workflow, args.server, args.overrides, args.out, args.timeout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="client.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add_arguments(sub.add_parser("submit", help="queue a workflow and download its outputs"))
    return run_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
