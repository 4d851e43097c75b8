"""Traces of model calls: one JSON object per call in a JSONL file (``--save-traces PATH``).

Each line holds the exact ``prompt`` and ``response`` plus ``label`` (query and window), ``model`` (the weights'
cache key), ``params`` (sampling parameters), ``input_tokens``, ``output_tokens``, ``seconds``, ``engine_seconds``
(the call's share of engine-busy time), ``hardware``, ``finish_reason``, ``cached`` and ``logprobs``. Log-probs are
stored in full for short generations (≤ ``FULL_LOGPROB_POSITIONS`` positions) and otherwise only for the last
position — all Rank1 needs (the verdict token right after ``</think>``) — as
``{"positions": N, "last": {token_id: logprob}}``.

The writer appends to a private temporary file next to ``PATH`` (flushed line by line) and renames it to ``PATH``
when the run ends, so two runs saving to the same path never interleave: the file always holds one whole run. A run
killed with ``kill -9`` leaves its calls in ``.<name>.partial-<pid>``.

``load_traces`` reads such a file for the ``replay:PATH`` backend (ignoring a final line cut by a kill); the minimum a
line needs is ``prompt`` and ``response`` strings.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections import Counter
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
        "engine_seconds": None if generation.engine_seconds is None else round(generation.engine_seconds, 6),
        "hardware": generation.hardware,
        "finish_reason": generation.finish_reason,
        "cached": generation.cached,
        "logprobs": _encode_logprobs(generation.logprobs),
    }


class TracesWriter(BackendWrapper):
    """Backend wrapper that writes every call of ``inner`` (cached ones included) to ``path`` (see module doc)."""

    def __init__(self, inner: Backend, path: str | os.PathLike, model_key: str | None = None):
        super().__init__(inner)
        self.path = Path(path).expanduser()
        self.partial = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}-{id(self):x}")
        from harness.models import cache_model_key

        self.model_key = model_key or cache_model_key(inner.model_id, inner.revision)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.partial.open("w", encoding="utf-8")
        except OSError as exc:
            raise HarnessError(f"Cannot write the traces file {self.path} ({exc.strerror or exc}). "
                               "Pass a writable path to --save-traces.") from exc
        self.written = 0

    async def agenerate(self, request: GenerationRequest) -> Generation:
        generation = await self.inner.agenerate(request)
        line = json.dumps(trace_record(request, generation, self.model_key), ensure_ascii=False) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()  # a kill -9 keeps every finished call in the partial file
            self.written += 1
        return generation

    def snapshot(self) -> Path:
        """The file holding every call so far (flushed); the partial file until the run ends."""
        with self._lock:
            if self._fh.closed:
                return self.path
            self._fh.flush()
            return self.partial

    def finish(self) -> Path:
        """Close the file and move it to its final path (idempotent)."""
        with self._lock:
            if not self._fh.closed:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()
                os.replace(self.partial, self.path)
        return self.path

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.finish()


def _int_field(record: dict[str, Any], key: str, where: str) -> None:
    value = record.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise HarnessError(f"{where}: '{key}' must be a non-negative integer; got {value!r}.")


def _number_field(record: dict[str, Any], key: str, where: str) -> None:
    value = record.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                              or value != value):
        raise HarnessError(f"{where}: '{key}' must be a non-negative number; got {value!r}.")


def load_traces(path: str | os.PathLike) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """(exact prompt → its first recorded call, quirk counts). Raises HarnessError for unreadable files."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise HarnessError(f"Traces file {path} does not exist. Write one with `harness run ... --save-traces {path}`.")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        import gzip

        raw = gzip.decompress(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise HarnessError(f"{path}, line {line}: not UTF-8 text ({exc.reason}). A traces file is UTF-8 JSON lines."
                           ) from exc
    lines = text.split("\n")
    by_prompt: dict[str, dict[str, Any]] = {}
    quirks: Counter[str] = Counter()
    last_index = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path}, line {index + 1}"
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise TypeError("not a JSON object")
            prompt, response = record["prompt"], record["response"]
            if not isinstance(prompt, str) or not isinstance(response, str):
                raise TypeError("prompt and response must be strings")
        except (ValueError, KeyError, TypeError) as exc:
            if index == last_index and index == len(lines) - 1:
                # no final newline: the writer was killed mid-line; that call was never finished
                warnings.warn(f"{path}: ignoring an incomplete last line (the run was interrupted).", stacklevel=2)
                continue
            raise HarnessError(f"{where}: not a traces record ({exc}). Each line must be a JSON object with at "
                               "least 'prompt' and 'response' strings.") from exc
        for key in ("input_tokens", "output_tokens"):
            _int_field(record, key, where)
        for key in ("seconds", "engine_seconds"):
            _number_field(record, key, where)
        if record.get("params") is not None and not isinstance(record["params"], dict):
            raise HarnessError(f"{where}: 'params' must be a JSON object of sampling parameters.")
        if record.get("model") is not None and not isinstance(record["model"], str):
            raise HarnessError(f"{where}: 'model' must be a string.")
        try:
            decode_logprobs(record.get("logprobs"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HarnessError(f"{where}: 'logprobs' is malformed ({exc}).") from exc
        if prompt in by_prompt:
            quirks["duplicate_prompts"] += 1
            if by_prompt[prompt]["response"] != response:
                quirks["conflicting_duplicate_prompts"] += 1  # the first answer is served
            continue
        by_prompt[prompt] = record
    return by_prompt, dict(quirks)
