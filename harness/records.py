"""Writing and reading run records (schema: ``harness.schema``; documented in results/README.md).

A subset's record directory is written into a temporary sibling and renamed into place, so a crash or Ctrl-C never
leaves a half-written record; finished subsets of a multi-subset run stay written.

One experiment, one directory: a later run of the same experiment (same group id) is merged into the existing
record. When its run file is byte-identical, its cost entries (per hardware configuration) and its execution are
added; when the run file differs (another backend's numerics, a sampled model), the canonical run is kept and the
new one is stored beside it in ``variants/<id>/`` with the per-query difference reported — never silently replaced.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from harness.errors import HarnessError
from harness.files import (
    TempDir, atomic_write_text, install_directory, new_temp_dir, recover_directory, sha256_bytes, sha256_file,
)
from harness.schema import (
    PER_QUERY_FILE, RECORD_FILE, RUN_FILE, SCHEMA_VERSION, TRACES_FILE, VARIANTS_DIR, AggregateRecord, CostEntry,
    Files, PerQueryRow, Record, RecordError, SubsetRecord, Variant, load_record, record_json, to_dict,
)
from harness.trec import format_run, read_run
from harness.types import Run

__all__ = ["SCHEMA_VERSION", "RECORD_FILE", "RUN_FILE", "PER_QUERY_FILE", "TRACES_FILE", "ensure_writable",
           "write_subset_record", "write_aggregate_record", "iter_records", "load_record"]


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


def _per_query_text(rows: Iterable[PerQueryRow]) -> str:
    return "".join(json.dumps(to_dict(row), ensure_ascii=False, allow_nan=False) + "\n" for row in rows)


def _fill_files(directory: Path, record: SubsetRecord, traces: Path | None) -> None:
    files = Files(run=RUN_FILE, per_query=PER_QUERY_FILE, traces=None)
    if traces is not None and traces.is_file():
        shutil.copyfile(traces, directory / TRACES_FILE)
        files.traces = TRACES_FILE
    record.files = files
    record.sha256 = {name: sha256_file(directory / name) for name in (files.run, files.per_query, files.traces)
                     if name}


def _write_fresh(directory: Path, record: SubsetRecord, run_text: str, per_query: list[PerQueryRow],
                 traces: Path | None) -> None:
    with TempDir(directory) as tmp:
        (tmp / RUN_FILE).write_text(run_text, encoding="utf-8")
        (tmp / PER_QUERY_FILE).write_text(_per_query_text(per_query), encoding="utf-8")
        _fill_files(tmp, record, traces)
        (tmp / RECORD_FILE).write_text(record_json(record), encoding="utf-8")


def merge_costs(old: list[CostEntry], new: list[CostEntry]) -> list[CostEntry]:
    """One entry per hardware configuration; a new measurement replaces the old one of the same configuration."""
    merged = {entry.hardware.key(): entry for entry in old}
    for entry in new:
        merged[entry.hardware.key()] = entry
    return list(merged.values())


def _ranking_differences(old: Run, new: Run) -> int:
    return sum(1 for q in set(old) | set(new) if old.get(q) != new.get(q))


def write_subset_record(directory: Path, record: SubsetRecord, run: Run, tag: str, per_query: list[PerQueryRow],
                        traces: Path | None = None, log: Callable[[str], None] = lambda message: None
                        ) -> tuple[Path, str]:
    """Write or merge one subset record; returns (directory, what happened: "new", "merged" or "variant")."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    run_text = format_run(run, tag)
    recover_directory(directory)
    existing: SubsetRecord | None = None
    if (directory / RECORD_FILE).is_file():
        try:
            loaded = load_record(directory / RECORD_FILE)
            existing = loaded if isinstance(loaded, SubsetRecord) else None
        except RecordError as exc:
            log(f"note: replacing an unreadable record ({exc})")
    if existing is None:
        _write_fresh(directory, record, run_text, per_query, traces)
        return directory, "new"

    old_run_text = (directory / existing.files.run).read_text(encoding="utf-8") \
        if (directory / existing.files.run).is_file() else None
    if old_run_text == run_text:
        existing.costs = merge_costs(existing.costs, record.costs)
        existing.execution = record.execution
        existing.metrics = {**record.metrics, **existing.metrics}
        new_dir = new_temp_dir(directory)
        try:
            shutil.copyfile(directory / existing.files.run, new_dir / RUN_FILE)
            if (directory / VARIANTS_DIR).is_dir():
                shutil.copytree(directory / VARIANTS_DIR, new_dir / VARIANTS_DIR)
            (new_dir / PER_QUERY_FILE).write_text(_per_query_text(per_query), encoding="utf-8")
            traces_source = traces if traces is not None and traces.is_file() else (
                directory / existing.files.traces if existing.files.traces else None)
            _fill_files(new_dir, existing, traces_source)
            (new_dir / RECORD_FILE).write_text(record_json(existing), encoding="utf-8")
            install_directory(new_dir, directory)
        except BaseException:
            shutil.rmtree(new_dir, ignore_errors=True)
            raise
        return directory, "merged"

    # Same experiment, another run file: keep both.
    variant_id = sha256_bytes(run_text.encode("utf-8"))[:12]
    old_run = read_run(directory / existing.files.run)[0] if old_run_text is not None else {}
    variant_dir = directory / VARIANTS_DIR / variant_id
    variant_record = dataclasses.replace(record, run_id=f"{record.run_id}/{VARIANTS_DIR}/{variant_id}")
    _write_fresh(variant_dir, variant_record, run_text, per_query, traces)
    delta = {name: round(record.metrics[name] - existing.metrics[name], 6)
             for name in record.metrics if name in existing.metrics}
    variant = Variant(id=variant_id, hardware=record.execution.hardware,
                      differing_queries=_ranking_differences(old_run, run), mean_delta=delta,
                      finished_utc=record.provenance.finished_utc)
    existing.variants = [v for v in existing.variants if v.id != variant_id] + [variant]
    existing.costs = merge_costs(existing.costs, record.costs)
    atomic_write_text(directory / RECORD_FILE, record_json(existing))
    primary = "nDCG@10" if "nDCG@10" in delta else next(iter(delta), None)
    log(f"note: this run's ranking differs from the experiment's recorded run on {variant.differing_queries} "
        f"quer{'y' if variant.differing_queries == 1 else 'ies'}"
        + (f" (Δ{primary} = {delta[primary]:+.4f})" if primary else "")
        + f"; kept as variant {variant_id} beside the recorded run ({variant_dir}).")
    return directory, "variant"


def write_aggregate_record(group_dir: Path, record: AggregateRecord) -> Path:
    atomic_write_text(group_dir / RECORD_FILE, record_json(record))
    return group_dir / RECORD_FILE


def iter_records(results_dir: str | os.PathLike, *, strict: bool = True,
                 on_error: Callable[[Path, RecordError], None] | None = None) -> Iterator[tuple[Path, Record]]:
    """Every record under ``results_dir`` (subset and aggregate), skipping temporary directories and variants.

    A record that does not follow the schema raises (``strict``) or is reported to ``on_error`` (default: a
    warning naming it) and skipped."""
    root = Path(results_dir)
    if not root.is_dir():
        return
    for path in sorted(root.rglob(RECORD_FILE)):
        parts = path.relative_to(root).parts
        if any(part.startswith(".") for part in parts) or VARIANTS_DIR in parts[:-1]:
            continue
        try:
            yield path.parent, load_record(path)
        except RecordError as exc:
            if strict:
                raise
            if on_error is not None:
                on_error(path, exc)
            else:
                warnings.warn(f"skipping {exc}", stacklevel=2)


def records_by_group(results_dir: str | os.PathLike, **kwargs: Any) -> dict[Path, dict[str, Any]]:
    """``{group directory: {"subsets": {subset: (dir, SubsetRecord)}, "aggregate": AggregateRecord | None}}``."""
    groups: dict[Path, dict[str, Any]] = {}
    for directory, record in iter_records(results_dir, **kwargs):
        if isinstance(record, AggregateRecord):
            groups.setdefault(directory, {"subsets": {}, "aggregate": None})["aggregate"] = record
        else:
            group = groups.setdefault(directory.parent, {"subsets": {}, "aggregate": None})
            group["subsets"][record.task.subset] = (directory, record)
    return groups
