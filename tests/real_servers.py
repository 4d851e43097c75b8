"""Real OpenAI-compatible servers that this project did not write, started by tests on 127.0.0.1.

* ``transformers_serve(model)``: transformers' own server (``transformers serve``, extra ``transformers[serving]``
  in the dev install).
* ``llama_cpp_server(gguf)``: llama-cpp-python's server, when ``llama_cpp`` is importable in this interpreter or in
  the interpreter named by ``HARNESS_LLAMA_CPP_PYTHON`` (it builds from source: about 24 minutes on 2 cores).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the server did not come up in {timeout:.0f} s: {log.read_text()[-2000:]}")


@contextmanager
def _serve(argv: list[str], health: str, log: Path, timeout: float = 180.0):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with log.open("w") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        _wait(health, proc, log, timeout)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def transformers_serve(model: str | Path, log: Path):
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("transformers serve needs fastapi and uvicorn (pip install 'transformers[serving]')")
    exe = Path(sys.executable).with_name("transformers")
    command = [str(exe)] if exe.exists() else [shutil.which("transformers") or "transformers"]
    port = _free_port()
    with _serve([*command, "serve", str(model), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                 "--log-level", "warning"], f"http://127.0.0.1:{port}/health", log):
        yield f"http://127.0.0.1:{port}/v1"


def llama_cpp_python() -> str | None:
    candidate = os.environ.get("HARNESS_LLAMA_CPP_PYTHON")
    if candidate:
        return candidate
    return sys.executable if importlib.util.find_spec("llama_cpp") is not None else None


@contextmanager
def llama_cpp_server(gguf: str | Path, log: Path):
    python = llama_cpp_python()
    if python is None:
        pytest.skip("llama_cpp is not importable (pip install 'llama-cpp-python[server]' builds llama.cpp from "
                    "source, ~24 min on 2 cores; or set HARNESS_LLAMA_CPP_PYTHON to an interpreter that has it)")
    port = _free_port()
    with _serve([python, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port",
                 str(port), "--n_ctx", "4096"], f"http://127.0.0.1:{port}/v1/models", log):
        yield f"http://127.0.0.1:{port}/v1"
