"""Traces of model calls: one JSON object per call, appended to a JSONL file (``--save-traces PATH``).

Each line holds the exact ``prompt`` and ``response`` plus ``label`` (query and window), ``model``, ``params``,
``input_tokens``, ``output_tokens``, ``seconds``, ``finish_reason``, ``cached`` and ``logprobs``. Log-probs are
stored in full for short generations (≤ ``FULL_LOGPROB_POSITIONS`` positions) and otherwise only for the last
position — all Rank1 needs (the verdict token right after ``</think>``) — as
``{"positions": N, "last": {token_id: logprob}}``.

Lines are flushed one by one, so a killed run keeps every finished call. ``load_traces`` reads such a file
(ignoring a final line cut by a kill) for the ``replay:PATH`` backend, which matches calls by exact prompt string.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.llm import Backend, BackendWrapper, Generation, GenerationRequest

FULL_LOGPROB_POSITIONS = 32


def _encode_logprobs(logprobs: list[dict[int, float]] | None) -> Any:
    if logprobs is None:
        return None
    if len(logprobs) <= FULL_LOGPROB_POSITIONS:
        return [{str(k): v for k, v in pos.items()} for pos in logprobs]
    return {"positions": len(logprobs), "last": {str(k): v for k, v in logprobs[-1].items()}}


def decode_logprobs(value: Any) -> list[dict[int, float]] | None:
    """Inverse of the stored form. A last-position-only record becomes N positions whose earlier ones are empty."""
    if value is None:
        return None
    if isinstance(value, list):
        return [{int(k): float(v) for k, v in pos.items()} for pos in value]
    positions = int(value["positions"])
    last = {int(k): float(v) for k, v in value["last"].items()}
    return [{} for _ in range(max(positions - 1, 0))] + [last]


def trace_record(request: GenerationRequest, generation: Generation, model: str) -> dict[str, Any]:
    return {
        "label": request.label,
        "model": model,
        "prompt": request.prompt,
        "response": generation.text,
        "params": request.params.as_dict(),
        "input_tokens": generation.input_tokens,
        "output_tokens": generation.output_tokens,
        "seconds": round(generation.seconds, 6),
        "finish_reason": generation.finish_reason,
        "cached": generation.cached,
        "logprobs": _encode_logprobs(generation.logprobs),
    }


class TracesWriter(BackendWrapper):
    """Backend wrapper that writes every call of ``inner`` (cached ones included) to ``path``.

    The file is truncated when the writer is created: one traces file describes one run. A resumed run rewrites the
    calls served from the cache, so its file is complete too.
    """

    def __init__(self, inner: Backend, path: str | os.PathLike, model_key: str | None = None):
        super().__init__(inner)
        self.path = Path(path).expanduser()
        self.model_key = model_key or inner.model_id
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise HarnessError(f"Cannot write the traces file {self.path} ({exc.strerror or exc}). "
                               "Pass a writable path to --save-traces.") from exc
        self.written = 0

    async def agenerate(self, request: GenerationRequest) -> Generation:
        generation = await self.inner.agenerate(request)
        line = json.dumps(trace_record(request, generation, self.model_key), ensure_ascii=False) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()  # a kill -9 keeps every finished call
            self.written += 1
        return generation

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "traces": str(self.path)}

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            with self._lock:
                if not self._fh.closed:
                    self._fh.close()


def load_traces(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Map exact prompt string → its first recorded call. Raises HarnessError for unreadable files."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise HarnessError(f"Traces file {path} does not exist. Write one with `harness run ... --save-traces {path}`.")
    by_prompt: dict[str, dict[str, Any]] = {}
    with path.open("r", encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    last_index = max(i for i, line in enumerate(lines) if line.strip()) if any(s.strip() for s in lines) else -1
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            prompt, response = record["prompt"], record["response"]
            if not isinstance(prompt, str) or not isinstance(response, str):
                raise TypeError("prompt and response must be strings")
        except (ValueError, KeyError, TypeError) as exc:
            if index == last_index and index == len(lines) - 1:
                # no final newline: the writer was killed mid-line; that call was never finished
                warnings.warn(f"{path}: ignoring an incomplete last line (the run was interrupted).", stacklevel=2)
                continue
            raise HarnessError(f"{path}, line {index + 1}: not a traces record ({exc}). Each line must be a JSON "
                               "object with at least 'prompt' and 'response' strings.") from exc
        by_prompt.setdefault(prompt, record)
    return by_prompt
