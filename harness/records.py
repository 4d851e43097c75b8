"""Run records: the only input of the leaderboard. Schema documented in results/README.md.

Every record directory is written into a temporary sibling and renamed into place, so a crash or Ctrl-C never
leaves a half-written record; finished subsets of a multi-subset run stay written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from harness.errors import HarnessError
from harness.trec import format_run
from harness.types import Run

SCHEMA_VERSION = 1
RECORD_FILE = "record.json"
RUN_FILE = "run.trec"
PER_QUERY_FILE = "per_query.jsonl"
TRACES_FILE = "traces.jsonl"


def slug(text: str) -> str:
    text = text.rstrip("/").split("/")[-1] if ("/" in text and not text.startswith("run:")) else text
    text = re.sub(r"^run:.*[/\\]", "run-", text)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "x"


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_writable(results_dir: str | os.PathLike) -> Path:
    path = Path(results_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise HarnessError(
            f"Results directory {path} is not writable ({exc.strerror or exc}). "
            "Pass a writable directory with --results-dir."
        ) from exc
    return path


def _json_dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str) + "\n"


def _install(tmp: Path, final: Path) -> None:
    """Move a finished temporary directory into place, replacing an older record of the same spec."""
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


def write_subset_record(directory: Path, record: dict[str, Any], run: Run, tag: str,
                        per_query: Iterable[dict[str, Any]], traces: Path | None = None) -> Path:
    """Write run.trec, per_query.jsonl, optional traces and record.json into ``directory`` atomically."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        (tmp / RUN_FILE).write_text(format_run(run, tag), encoding="utf-8")
        with (tmp / PER_QUERY_FILE).open("w", encoding="utf-8") as fh:
            for row in per_query:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        files = {"run": RUN_FILE, "per_query": PER_QUERY_FILE, "traces": None}
        if traces is not None and traces.is_file():
            shutil.copyfile(traces, tmp / TRACES_FILE)
            files["traces"] = TRACES_FILE
        record = dict(record)
        record["files"] = files
        record["sha256"] = {name: sha256_file(tmp / name) for name in files.values() if name}
        (tmp / RECORD_FILE).write_text(_json_dump(record), encoding="utf-8")
        _install(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def write_json_atomic(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_json_dump(obj))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def iter_records(results_dir: str | os.PathLike) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every record.json under ``results_dir`` (subset and aggregate), skipping temporary directories."""
    root = Path(results_dir)
    if not root.is_dir():
        return
    for path in sorted(root.rglob(RECORD_FILE)):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            yield path.parent, json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise HarnessError(f"Record {path} is unreadable ({exc}). Remove it or re-run that job.") from exc
