"""Validation of a submitted record directory (``harness submit validate PATH``).

A submission is what ``harness run`` writes: a subset record directory (record.json, run.trec, per_query.jsonl,
optional traces.jsonl) or a run-group directory (subset directories plus an aggregate record.json). Submitted
numbers are never trusted: the run file is re-scored against the task's qrels with ``harness.metrics.evaluate`` and
every discrepancy is reported, together with schema, provenance, hash, coverage and exclusion problems.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.files import sha256_file
from harness.schema import RECORD_FILE, AggregateRecord, RecordError, SubsetRecord, load_record

METRIC_TOLERANCE = 1e-6  # records keep full float precision; anything larger is an edit or a different scorer


@dataclass
class ValidationReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what was checked, for the summary

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        head = f"{self.path}: {'VALID' if self.ok else f'INVALID ({len(self.problems)} problem(s))'}"
        lines = [head] + [f"  ✗ {p}" for p in self.problems] + [f"  ✓ {c}" for c in self.checked]
        return "\n".join(lines)


def validate(path: str | os.PathLike) -> ValidationReport:
    """Validate a subset record directory or a run-group directory; never raises for a bad submission."""
    root = Path(path)
    report = ValidationReport(root)
    record_path = root / RECORD_FILE
    if not record_path.is_file():
        raise HarnessError(f"{root} is not a record directory (no {RECORD_FILE}). Pass a directory written by "
                           "`harness run`, e.g. results/<group_id>/<subset> or results/<group_id>.")
    try:
        record = load_record(record_path)
    except RecordError as exc:
        report.problems.append(f"record.json: {exc}")
        return report
    report.checked.append("schema")
    if isinstance(record, AggregateRecord):
        _validate_aggregate(root, record, report)
    else:
        _validate_subset(root, record, report, prefix="")
    return report


def _close(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=METRIC_TOLERANCE)
    except (TypeError, ValueError):
        return False


def _validate_subset(root: Path, record: SubsetRecord, report: ValidationReport, prefix: str) -> dict[str, float]:
    """Checks one subset record; returns the re-scored metric means (empty when re-scoring was impossible)."""
    from harness.metrics import evaluate
    from harness.trec import read_run

    # files and hashes (the schema already guarantees plain file names inside the directory)
    files = record.files
    for role, name in (("run", files.run), ("per_query", files.per_query), ("traces", files.traces)):
        if not name:
            continue
        file_path = root / name
        if not file_path.is_file():
            report.problems.append(f"{prefix}{name}: listed in files.{role} but absent")
            continue
        expected = record.sha256.get(name)
        if expected is None:
            report.problems.append(f"{prefix}{name}: no sha256 in the record")
        elif sha256_file(file_path) != expected:
            report.problems.append(f"{prefix}{name}: sha256 mismatch (file changed after the record was written)")
    report.checked.append(f"{prefix}file hashes")

    # provenance values
    prov = record.provenance
    for key in ("harness_version", "python", "started_utc", "finished_utc"):
        if not getattr(prov, key):
            report.problems.append(f"{prefix}record.json: provenance.{key} is empty")
    if record.experiment.get("limit") is not None:
        report.problems.append(f"{prefix}record.json: limit = {record.experiment['limit']} — a smoke run over the "
                               "first queries cannot be submitted; re-run without --limit")

    # the task, its revision and judgments
    from tasks import resolve_tasks

    task_name = record.task.name
    try:
        tasks = resolve_tasks(task_name)
    except HarnessError as exc:
        report.problems.append(f"{prefix}task {task_name!r} cannot be loaded to re-score the run: {exc}")
        return {}
    if len(tasks) != 1:
        report.problems.append(f"{prefix}task {task_name!r} names {len(tasks)} subsets; a subset record needs one")
        return {}
    task = tasks[0]
    if str(task.revision) != str(record.task.revision):
        report.problems.append(f"{prefix}task revision {record.task.revision!r} differs from the local "
                               f"data's {task.revision!r}")

    run_path = root / files.run
    if not run_path.is_file():
        return {}
    run, quirks = read_run(run_path)
    if quirks.get("malformed_lines"):
        report.problems.append(f"{prefix}{run_path.name}: {quirks['malformed_lines']} malformed line(s)")
    if quirks.get("duplicate_docids"):
        report.problems.append(f"{prefix}{run_path.name}: {quirks['duplicate_docids']} duplicate docid(s) in a query")

    judged = task.qrels
    missing = sorted(q for q in judged if not run.get(q))
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        report.problems.append(f"{prefix}{run_path.name}: {len(missing)} judged query(ies) missing: {shown}")
    unknown = sorted(set(run) - set(task.queries()))
    if unknown:
        report.problems.append(f"{prefix}{run_path.name}: {len(unknown)} query id(s) not in the task: "
                               + ", ".join(unknown[:10]))
    report.checked.append(f"{prefix}query coverage ({len(judged) - len(missing)}/{len(judged)} judged queries)")

    leaked = [(q, d) for q, hits in run.items() for d, _ in hits if d in task.excluded.get(q, ())]
    if leaked:
        shown = ", ".join(f"{q}:{d}" for q, d in leaked[:5])
        report.problems.append(f"{prefix}{run_path.name}: {len(leaked)} excluded document(s) present ({shown}); "
                               "excluded documents must be removed before the run is written")
    report.checked.append(f"{prefix}excluded documents absent")

    top_k = record.first_stage.top_k
    long_queries = [q for q, hits in run.items() if len(hits) > top_k]
    if long_queries:
        report.problems.append(f"{prefix}{run_path.name}: {len(long_queries)} query(ies) rank more than "
                               f"top_k = {top_k} documents")

    metric_names = tuple(record.metrics) or ("nDCG@10",)
    try:
        result = evaluate(run, task.qrels_all, metric_names, excluded=task.excluded)
    except HarnessError as exc:
        report.problems.append(f"{prefix}record.json: metrics cannot be re-scored ({exc})")
        return {}
    for name, claimed in record.metrics.items():
        if not _close(claimed, result.means[name]):
            report.problems.append(f"{prefix}record.json: metrics.{name} = {claimed} but the run re-scores to "
                                   f"{result.means[name]:.6f}")
    counts = record.counts
    if counts.judged_queries != result.judged_queries:
        report.problems.append(f"{prefix}record.json: counts.judged_queries = {counts.judged_queries} but the "
                               f"task has {result.judged_queries}")
    if counts.missing_queries != len(result.missing_queries):
        report.problems.append(f"{prefix}record.json: counts.missing_queries = {counts.missing_queries} but "
                               f"{len(result.missing_queries)} judged query(ies) are missing from the run")
    report.checked.append(f"{prefix}metrics re-scored from the run ({', '.join(metric_names)})")

    per_query_path = root / files.per_query
    if per_query_path.is_file():
        _check_per_query(per_query_path, result.per_query, report, prefix)
    return result.means


def _check_per_query(path: Path, rescored: dict[str, dict[str, float]], report: ValidationReport,
                     prefix: str) -> None:
    from harness.schema import read_per_query

    try:
        rows = read_per_query(path)
    except HarnessError as exc:
        report.problems.append(f"{prefix}{path.name}: {exc}")
        return
    seen: set[str] = set()
    wrong: list[str] = []
    for row in rows:
        seen.add(row.qid)
        if row.qid not in rescored:
            report.problems.append(f"{prefix}{path.name}: query {row.qid!r} is not judged")
            continue
        if any(name in rescored[row.qid] and not _close(v, rescored[row.qid][name]) for name, v in row.metrics.items()):
            wrong.append(row.qid)
    if wrong:
        report.problems.append(f"{prefix}{path.name}: per-query metrics differ from the re-scored run for "
                               f"{len(wrong)} query(ies): " + ", ".join(wrong[:10]))
    absent = sorted(set(rescored) - seen)
    if absent:
        report.problems.append(f"{prefix}{path.name}: {len(absent)} judged query(ies) have no line: "
                               + ", ".join(absent[:10]))
    report.checked.append(f"{prefix}per-query metrics")


def _validate_aggregate(root: Path, record: AggregateRecord, report: ValidationReport) -> None:
    rescored: dict[str, dict[str, float]] = {}
    for entry in record.subsets:
        subset = entry.subset  # a plain name (schema-checked): always a directory inside this group
        sub_dir = root / subset
        if not (sub_dir / RECORD_FILE).is_file():
            report.problems.append(f"{subset}: listed in the aggregate record but {sub_dir} has no record")
            continue
        try:
            sub_record = load_record(sub_dir / RECORD_FILE)
        except RecordError as exc:
            report.problems.append(f"{subset}/record.json: {exc}")
            continue
        if not isinstance(sub_record, SubsetRecord) or sub_record.group_id != record.group_id:
            report.problems.append(f"{subset}: its record belongs to another group; an aggregate may only list its "
                                   "own subsets")
            continue
        means = _validate_subset(sub_dir, sub_record, report, prefix=f"{subset}/")
        rescored[subset] = means
        for name, value in entry.metrics.items():
            if name in means and not _close(value, means[name]):
                report.problems.append(f"record.json: subsets[{subset}].metrics.{name} = {value} but the run "
                                       f"re-scores to {means[name]:.6f}")
    if rescored and all(rescored.values()):
        for name, value in record.metrics.items():
            values = [m[name] for m in rescored.values() if name in m]
            if len(values) == len(rescored) and not _close(value, sum(values) / len(values)):
                report.problems.append(f"record.json: metrics.{name} = {value} but the mean of the re-scored "
                                       f"subsets is {sum(values) / len(values):.6f}")
    report.checked.append("aggregate means re-computed from the re-scored subsets")
