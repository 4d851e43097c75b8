"""Content-addressed cache of model calls, so re-running a finished run makes zero model calls and a killed run
resumes where it stopped.

Key = sha256 of (the backend's cache identity, exact prompt string, sampling parameters). For local engines the
identity is the weights, ``<model id>@<revision>`` (``harness.models.cache_model_key``), never the backend name: a
window answered by vLLM is a hit for the same prompt sent through transformers. A remote server's answers are keyed
by the server (``openai:<base url>|<served model>``), so a local cache never answers for a server it did not ask.

Storage: one SQLite database (WAL mode, ``calls.sqlite3``) in ``$HARNESS_CACHE_DIR/llm`` or
``RerankerOptions.cache_dir``. Every row stores the Generation as JSON plus a sha256 checksum of key and value; each
write is its own short transaction with a generous busy timeout, so two runs writing at once (two processes) are
safe and a ``kill -9`` loses at most the calls in flight.

Corruption is never used silently: a row whose checksum does not match is reported with a warning, deleted and
recomputed; a database SQLite cannot read is moved aside (``calls.sqlite3.corrupt-<time>``) with a warning and a
fresh one is started.

Cost of cached calls: a hit returns ``Generation(cached=True)`` with the token counts, the latency, **the engine-time
share and the hardware of the original call** (see ``harness.backends.metering``). A resumed or fully cached re-run
therefore reports the original generation cost; records count cached calls separately (``costs[].cached_calls``) so
nobody mistakes them for fresh measurements.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.llm import Backend, BackendWrapper, Generation, GenerationRequest

log = logging.getLogger(__name__)

DB_NAME = "calls.sqlite3"
KEY_VERSION = 1  # bump when the key recipe changes, so old rows are never mistaken for new ones
_BUSY_TIMEOUT_S = 60.0


class CacheCorruptionWarning(UserWarning):
    """A cache entry or database failed its integrity check and was not used."""


def call_key(model_key: str, prompt: str, params: dict[str, Any]) -> str:
    payload = json.dumps({"v": KEY_VERSION, "model": model_key, "prompt": prompt, "params": params},
                         sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _checksum(key: str, value: str) -> str:
    return hashlib.sha256(f"{key}\n{value}".encode("utf-8")).hexdigest()


def generation_to_json(gen: Generation) -> str:
    return json.dumps({
        "text": gen.text,
        "input_tokens": gen.input_tokens,
        "output_tokens": gen.output_tokens,
        "seconds": gen.seconds,
        "finish_reason": gen.finish_reason,
        "logprobs": None if gen.logprobs is None else [{str(k): v for k, v in pos.items()} for pos in gen.logprobs],
        "extra": gen.extra,
        "engine_seconds": gen.engine_seconds,
        "hardware": gen.hardware,
    }, ensure_ascii=False, separators=(",", ":"), default=str)


def generation_from_json(value: str) -> Generation:
    data = json.loads(value)
    logprobs = data.get("logprobs")
    return Generation(
        text=data["text"],
        input_tokens=int(data["input_tokens"]),
        output_tokens=int(data["output_tokens"]),
        seconds=float(data["seconds"]),
        finish_reason=data.get("finish_reason", "stop"),
        logprobs=None if logprobs is None else [{int(k): float(v) for k, v in pos.items()} for pos in logprobs],
        extra=dict(data.get("extra") or {}),
        engine_seconds=None if data.get("engine_seconds") is None else float(data["engine_seconds"]),
        hardware=data.get("hardware"),
    )


class CallCache:
    """The SQLite store. Safe to share between threads of one process and between processes."""

    def __init__(self, directory: str | os.PathLike | None = None):
        if directory is None:
            from harness.paths import cache_dir

            directory = cache_dir("llm")
        self.directory = Path(directory).expanduser()
        self.path = self.directory / DB_NAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.corrupt_entries = 0
        self.read_only = False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(f"Cannot create the model-call cache directory {self.directory} ({exc.strerror or exc})."
                               " Set HARNESS_CACHE_DIR to a writable directory or use --no-cache.") from exc
        if not os.access(self.directory, os.W_OK | os.X_OK):
            self._open_read_only()
            return
        self._open()

    def _open_read_only(self) -> None:
        """A cache directory the user cannot write: serve what it holds, store nothing (with a warning)."""
        self.read_only = True
        message = (f"The model-call cache {self.directory} is read-only: finished calls are served from it, new calls "
                   "are not stored (a killed run will not resume). Set HARNESS_CACHE_DIR to a writable directory to "
                   "cache them.")
        warnings.warn(message, stacklevel=3)
        log.warning(message)
        if not self.path.is_file():
            return
        try:
            # immutable: nothing writes a directory nobody can write to, so SQLite needs no lock or -shm file
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True,
                                         check_same_thread=False, isolation_level=None)
            self._conn.execute("SELECT count(*) FROM calls WHERE key = ''").fetchone()
        except sqlite3.DatabaseError as exc:
            warnings.warn(f"The read-only model-call cache {self.path} cannot be read ({exc}); not using it.",
                          CacheCorruptionWarning, stacklevel=3)
            self._conn = None

    # -- connection handling -------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # Two runs that open a new cache at the same moment race to switch it to WAL; SQLite answers that race with
        # SQLITE_BUSY at once, without calling the busy handler, so the set-up is retried here until the deadline.
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        delay = 0.005
        while True:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS calls ("
                    " key TEXT PRIMARY KEY, model TEXT NOT NULL, value TEXT NOT NULL, checksum TEXT NOT NULL,"
                    " created REAL NOT NULL)"
                )
                conn.execute("SELECT count(*) FROM calls WHERE key = ''").fetchone()  # touches the table's pages
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            except BaseException:
                conn.close()
                raise

    def _open(self) -> None:
        try:
            self._conn = self._connect()
        except sqlite3.OperationalError as exc:  # locked, unwritable, disk full: not corruption
            raise self._operational_error(exc) from exc
        except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
            self._quarantine(exc)
            self._conn = self._connect()

    def _operational_error(self, exc: sqlite3.OperationalError) -> HarnessError:
        if _is_busy(exc):
            return HarnessError(f"The model-call cache {self.path} stayed locked for {_BUSY_TIMEOUT_S:.0f} s by "
                                "another process. Retry, or use --no-cache.")
        return HarnessError(f"The model-call cache {self.path} cannot be used ({exc}). Set "
                            "HARNESS_CACHE_DIR to a writable directory, or use --no-cache.")

    def _quarantine(self, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{DB_NAME}.corrupt-{stamp}-{os.getpid()}")
        message = (f"Model-call cache {self.path} is unreadable ({exc}); moved it to {target} and started an empty "
                   "cache. Affected calls will be recomputed.")
        warnings.warn(message, CacheCorruptionWarning, stacklevel=3)
        log.warning(message)
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                try:
                    os.replace(src, Path(f"{target}{suffix}"))
                except OSError:
                    src.unlink(missing_ok=True)

    def _execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self.read_only:
            if self._conn is None or not sql.lstrip().upper().startswith("SELECT"):
                return []
            with self._lock:
                return self._conn.execute(sql, args).fetchall()
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                raise self._operational_error(exc) from exc
            except sqlite3.DatabaseError as exc:
                self._quarantine(exc)
            self._conn = self._connect()
            return self._conn.execute(sql, args).fetchall()

    # -- public API --------------------------------------------------------------------------------------------

    def get(self, key: str) -> Generation | None:
        rows = self._execute("SELECT value, checksum FROM calls WHERE key = ?", (key,))
        if not rows:
            return None
        value, checksum = rows[0]
        problem = None
        if _checksum(key, value) != checksum:
            problem = "checksum mismatch"
        else:
            try:
                return generation_from_json(value)
            except (ValueError, KeyError, TypeError) as exc:
                problem = f"undecodable entry ({exc})"
        self.corrupt_entries += 1
        message = (f"Model-call cache {self.path}: entry {key[:12]}… failed its integrity check ({problem}); "
                   "ignoring it and recomputing the call.")
        warnings.warn(message, CacheCorruptionWarning, stacklevel=2)
        log.warning(message)
        self._execute("DELETE FROM calls WHERE key = ?", (key,))
        return None

    def put(self, key: str, model_key: str, generation: Generation) -> None:
        value = generation_to_json(generation)
        self._execute("INSERT OR REPLACE INTO calls (key, model, value, checksum, created) VALUES (?, ?, ?, ?, ?)",
                      (key, model_key, value, _checksum(key, value), time.time()))

    def __len__(self) -> int:
        rows = self._execute("SELECT count(*) FROM calls")
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class CachedBackend(BackendWrapper):
    """Serves repeated calls from ``CallCache``; forwards misses to ``inner`` and stores their result.

    Only successful generations are stored (an exception is never cached). ``hits``/``misses`` count this run's calls.
    """

    def __init__(self, inner: Backend, cache: CallCache, model_key: str):
        super().__init__(inner)
        self.cache = cache
        self.model_key = model_key
        self.hits = 0
        self.misses = 0

    def key(self, request: GenerationRequest) -> str:
        params = request.params.as_dict()
        if request.kind != "generate":  # a score call never shares a key with a completion of the same text
            params = {**params, "kind": request.kind}
        return call_key(self.model_key, request.prompt, params)

    async def agenerate(self, request: GenerationRequest) -> Generation:
        key = self.key(request)
        started = time.perf_counter()
        hit = self.cache.get(key)
        if hit is not None:
            self.hits += 1
            hit.cached = True
            hit.extra = {**hit.extra, "cache": {"original_seconds": hit.seconds,
                                                "lookup_seconds": round(time.perf_counter() - started, 6)}}
            return hit
        self.misses += 1
        generation = await self.inner.agenerate(request)
        if not generation.cached:  # never re-store answers that came from another store (replay)
            self.cache.put(key, self.model_key, generation)
        return generation

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "cache": str(self.cache.path)}

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.cache.close()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)
