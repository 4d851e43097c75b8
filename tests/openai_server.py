"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: scripted ``/v1/completions`` answers.

``ScriptedServer(respond)`` runs ``http.server.ThreadingHTTPServer`` in a thread; ``respond(body, hit_number)``
returns ``(status, json_or_None)``. Every request body is recorded in ``bodies``; ``max_concurrent`` is the largest
number of requests handled at the same time.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Respond = Callable[[dict[str, Any], int], "tuple[int, dict[str, Any] | None]"]


def completion(text: str, prompt_tokens: int = 10, completion_tokens: int = 5, finish_reason: str = "stop",
               top_logprobs: list[dict[str, float]] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}
    if top_logprobs is not None:
        choice["logprobs"] = {"tokens": [k for k in (max(p, key=p.get) for p in top_logprobs)],
                              "token_logprobs": [max(p.values()) for p in top_logprobs],
                              "top_logprobs": top_logprobs, "text_offset": list(range(len(top_logprobs)))}
    return {"id": "cmpl-test", "object": "text_completion", "model": "m", "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


_WINDOW = re.compile(r"I will provide you with (\d+) passages")


def reasonrank_answer(body: dict[str, Any], hit: int) -> tuple[int, dict[str, Any]]:
    """A valid ReasonRank completion: a deterministic (prompt-hash-seeded) permutation of the window."""
    prompt = body["prompt"]
    match = _WINDOW.search(prompt)
    n = int(match.group(1)) if match else 1
    seed = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    order = sorted(range(1, n + 1), key=lambda i: (seed >> (i % 200)) % 997 * 1000 + i)
    text = f"<think>reasoning about {n} passages</think> <answer>{' > '.join(f'[{i}]' for i in order)}</answer>"
    return 200, completion(text, prompt_tokens=len(prompt) // 4, completion_tokens=20 + n)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that gave up (timeout tests) must not print a server-side traceback into another test


class ScriptedServer:
    def __init__(self, respond: Respond, delay: float = 0.0, owned_by: str | None = "vllm"):
        self.respond = respond
        self.owned_by = owned_by  # what GET /v1/models says (None: no such route)
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.prompt_hits: Counter[str] = Counter()
        self.max_concurrent = 0
        self._active = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models" and server.owned_by is not None:
                    status, payload = 200, {"object": "list", "data": [{"id": "m", "object": "model",
                                                                         "owned_by": server.owned_by}]}
                else:
                    status, payload = 404, {"error": {"message": f"no route {self.path}"}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.bodies.append(body)
                    server.prompt_hits[body.get("prompt", "")] += 1
                    hit = server.prompt_hits[body.get("prompt", "")]
                    server._active += 1
                    server.max_concurrent = max(server.max_concurrent, server._active)
                try:
                    if server.delay:
                        time.sleep(server.delay)
                    if self.path.rstrip("/") not in ("/v1/completions", "/v1/score"):
                        status, payload = 404, {"error": {"message": f"no route {self.path}"}}
                    else:
                        status, payload = server.respond(body, hit)
                finally:
                    with server._lock:
                        server._active -= 1
                data = json.dumps(payload if payload is not None else {"error": "scripted"}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no request is being handled (a killed client's request may still be in a handler thread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._active == 0:
                    return
            time.sleep(0.01)
        raise TimeoutError("the scripted server stayed busy")

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
