"""A real OpenAI-compatible server for the tests: `transformers serve` of the bundled
SmolLM2-135M-Instruct on 127.0.0.1, behind a small counting proxy that records every request
it forwards (and which were answered), so tests can check what reached the server.

It serves saescope's fp32 cache of the bundled GGUF (built by load_model("smollm2")): the same
weights as the GGUF file, which `transformers serve DIR:SmolLM2-135M-Instruct.Q4_1.gguf` also
serves, but it starts in seconds instead of minutes of tokenizer conversion and dequantising.
One torch thread: on a shared 2-core machine, contending threads make it 20x slower.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

START_TIMEOUT_S = 300


def signature(body: dict) -> str:
    """What identifies a chat request: its messages and sampling parameters."""
    key = {k: body.get(k) for k in ("messages", "max_tokens", "temperature")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Counter:
    received: list[str] = field(default_factory=list)  # signature of each POST, in order
    answered: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0  # the most requests the server had at once
    fail_next: int = 0  # answer this many POSTs with HTTP 503 instead of forwarding them
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.answered.clear()
            self.max_in_flight = 0


def _proxy_handler(upstream_port: int, counter: Counter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _forward(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            digest = signature(json.loads(body)) if method == "POST" else ""
            if method == "POST":
                with counter.lock:
                    failing = counter.fail_next > 0
                    counter.fail_next -= failing
                if failing:
                    self._overloaded()
                    return
                with counter.lock:
                    counter.received.append(digest)
                    counter.in_flight += 1
                    counter.max_in_flight = max(counter.max_in_flight, counter.in_flight)
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=600)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            try:
                conn.request(method, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
            finally:
                if method == "POST":
                    with counter.lock:
                        counter.in_flight -= 1
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()
            if method == "POST":
                with counter.lock:
                    counter.answered.append(digest)

        def _overloaded(self) -> None:
            data = b'{"error": {"message": "overloaded", "type": "server_error"}}'
            self.send_response(503)
            self.send_header("content-type", "application/json")
            self.send_header("retry-after", "0")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._forward("GET")

        def do_POST(self) -> None:
            self._forward("POST")

    return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client killed mid-answer (the SIGKILL test) is expected


@dataclass
class LLMServer:
    process: subprocess.Popen
    proxy: ThreadingHTTPServer
    counter: Counter
    model: str  # the id the server lists
    base_url: str  # through the proxy
    direct_url: str  # the server itself
    log: Path

    def stop(self) -> None:
        self.proxy.shutdown()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def served_model_dir() -> Path:
    from saescope.models.loading import gguf_cache_dir, smollm2_gguf

    target = gguf_cache_dir(smollm2_gguf())
    if not (target / "config.json").is_file():
        raise RuntimeError(f"the fp32 cache of the bundled model is missing at {target}")
    return target


def start() -> LLMServer:
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent))
    if exe is None:
        raise RuntimeError("`transformers` CLI not found next to the Python running the tests")
    model_dir = served_model_dir()
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"saescope-transformers-serve-{port}.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [exe, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
             "--device", "cpu", "--dtype", "float32", "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    direct = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"`transformers serve` exited with {process.returncode}; its log: "
                f"{log.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"{direct}/models", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(
                f"`transformers serve` did not answer within {START_TIMEOUT_S} s; its log: "
                f"{log.read_text()[-2000:]}"
            )
        time.sleep(1)
    counter = Counter()
    proxy = QuietServer(("127.0.0.1", free_port()), _proxy_handler(port, counter))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return LLMServer(
        process=process,
        proxy=proxy,
        counter=counter,
        model=str(model_dir),
        base_url=f"http://127.0.0.1:{proxy.server_address[1]}/v1",
        direct_url=direct,
        log=log,
    )
