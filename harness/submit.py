"""Validation of a submitted record directory (``harness submit validate PATH``).

A submission is what ``harness run`` writes: a subset record directory (record.json, run.trec, per_query.jsonl,
optional traces.jsonl) or a run-group directory (subset directories plus an aggregate record.json). Submitted
numbers are never trusted: the run file is re-scored against the task's qrels with ``harness.metrics.evaluate`` and
every discrepancy is reported, together with schema, provenance, hash, coverage and exclusion problems.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.records import PER_QUERY_FILE, RECORD_FILE, sha256_file

METRIC_TOLERANCE = 1e-6  # records keep full float precision; anything larger is an edit or a different scorer

_SUBSET_KEYS = {
    "schema_version": int, "kind": str, "run_id": str, "spec": dict, "task": dict, "first_stage": dict,
    "reranker": dict, "metrics": dict, "counts": dict, "cost": dict, "provenance": dict, "files": dict, "sha256": dict,
}
_AGGREGATE_KEYS = {
    "schema_version": int, "kind": str, "run_id": str, "spec": dict, "first_stage": dict, "reranker": dict,
    "subsets": list, "metrics": dict, "cost": dict, "provenance": dict, "complete": bool,
}
_NESTED = {
    "task": ("name", "benchmark", "subset", "revision", "queries", "judged_queries"),
    "first_stage": ("spec", "source", "sha256", "top_k", "query_field", "params", "report"),
    "reranker": ("name", "model", "revision", "backend", "params", "prompt_template_hash"),
    "counts": ("queries", "judged_queries", "candidates", "model_calls", "parse_failures", "fallbacks",
               "missing_queries", "excluded_removed"),
    "cost": ("wall_seconds", "generation_seconds", "seconds_per_query", "input_tokens", "output_tokens",
             "tokens_per_query", "gpu"),
    "provenance": ("harness_version", "git_commit", "git_dirty", "python", "platform", "packages", "started_utc",
                   "finished_utc", "argv"),
}


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
    record = _load_json(record_path, report)
    if record is None:
        return report
    if record.get("kind") == "aggregate":
        _validate_aggregate(root, record, report)
    else:
        _validate_subset(root, record, report, prefix="")
    return report


def _load_json(path: Path, report: ValidationReport) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        report.problems.append(f"{path.name}: not valid JSON ({exc})")
        return None
    if not isinstance(data, dict):
        report.problems.append(f"{path.name}: must be a JSON object")
        return None
    return data


def _check_schema(record: dict[str, Any], keys: dict[str, type], report: ValidationReport, prefix: str) -> bool:
    ok = True
    for key, typ in keys.items():
        if key not in record:
            report.problems.append(f"{prefix}record.json: missing field '{key}'")
            ok = False
        elif not isinstance(record[key], typ) or (typ is int and isinstance(record[key], bool)):
            report.problems.append(f"{prefix}record.json: field '{key}' must be {typ.__name__}, "
                                   f"got {type(record[key]).__name__}")
            ok = False
    if record.get("schema_version") not in (None, 1) and isinstance(record.get("schema_version"), int):
        report.problems.append(f"{prefix}record.json: schema_version {record['schema_version']} (expected 1)")
        ok = False
    for section, names in _NESTED.items():
        if section in keys and isinstance(record.get(section), dict):
            for name in names:
                if name not in record[section]:
                    report.problems.append(f"{prefix}record.json: missing field '{section}.{name}'")
                    ok = False
    return ok


def _close(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=METRIC_TOLERANCE)
    except (TypeError, ValueError):
        return False


def _validate_subset(root: Path, record: dict[str, Any], report: ValidationReport, prefix: str) -> dict[str, float]:
    """Checks one subset record; returns the re-scored metric means (empty when re-scoring was impossible)."""
    from harness.metrics import evaluate
    from harness.trec import read_run

    if record.get("kind") != "subset":
        report.problems.append(f"{prefix}record.json: kind must be 'subset' or 'aggregate', got {record.get('kind')!r}")
        return {}
    if not _check_schema(record, _SUBSET_KEYS, report, prefix):
        return {}
    report.checked.append(f"{prefix}schema and provenance fields")

    # files and hashes
    files = record["files"]
    hashes = record["sha256"]
    for role in ("run", "per_query"):
        if not files.get(role):
            report.problems.append(f"{prefix}record.json: files.{role} is missing")
    for role, name in files.items():
        if not name:
            continue
        file_path = root / name
        if not file_path.is_file():
            report.problems.append(f"{prefix}{name}: listed in files.{role} but absent")
            continue
        expected = hashes.get(name)
        if expected is None:
            report.problems.append(f"{prefix}{name}: no sha256 in the record")
        elif sha256_file(file_path) != expected:
            report.problems.append(f"{prefix}{name}: sha256 mismatch (file changed after the record was written)")
    report.checked.append(f"{prefix}file hashes")

    # provenance values
    prov = record["provenance"]
    for key in ("harness_version", "python", "started_utc", "finished_utc"):
        if not prov.get(key):
            report.problems.append(f"{prefix}record.json: provenance.{key} is empty")
    if record["spec"].get("limit") is not None:
        report.problems.append(f"{prefix}record.json: spec.limit = {record['spec']['limit']} — a smoke run over the "
                               "first queries cannot be submitted; re-run without --limit")

    # the task, its revision and judgments
    from tasks import resolve_tasks

    task_name = record["task"].get("name", "")
    try:
        tasks = resolve_tasks(task_name)
    except HarnessError as exc:
        report.problems.append(f"{prefix}task {task_name!r} cannot be loaded to re-score the run: {exc}")
        return {}
    if len(tasks) != 1:
        report.problems.append(f"{prefix}task {task_name!r} names {len(tasks)} subsets; a subset record needs one")
        return {}
    task = tasks[0]
    if str(task.revision) != str(record["task"].get("revision")):
        report.problems.append(f"{prefix}task revision {record['task'].get('revision')!r} differs from the local "
                               f"data's {task.revision!r}")

    run_path = root / str(files.get("run") or "run.trec")
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

    top_k = record["first_stage"].get("top_k")
    if isinstance(top_k, int):
        long_queries = [q for q, hits in run.items() if len(hits) > top_k]
        if long_queries:
            report.problems.append(f"{prefix}{run_path.name}: {len(long_queries)} query(ies) rank more than "
                                   f"top_k = {top_k} documents")

    metric_names = tuple(record["metrics"]) or ("nDCG@10",)
    try:
        result = evaluate(run, task.qrels_all, metric_names, excluded=task.excluded)
    except HarnessError as exc:
        report.problems.append(f"{prefix}record.json: metrics cannot be re-scored ({exc})")
        return {}
    for name, claimed in record["metrics"].items():
        if not _close(claimed, result.means[name]):
            report.problems.append(f"{prefix}record.json: metrics.{name} = {claimed} but the run re-scores to "
                                   f"{result.means[name]:.6f}")
    counts = record["counts"]
    if counts.get("judged_queries") != result.judged_queries:
        report.problems.append(f"{prefix}record.json: counts.judged_queries = {counts.get('judged_queries')} but the "
                               f"task has {result.judged_queries}")
    if counts.get("missing_queries") != len(result.missing_queries):
        report.problems.append(f"{prefix}record.json: counts.missing_queries = {counts.get('missing_queries')} but "
                               f"{len(result.missing_queries)} judged query(ies) are missing from the run")
    report.checked.append(f"{prefix}metrics re-scored from the run ({', '.join(metric_names)})")

    per_query_path = root / str(files.get("per_query") or PER_QUERY_FILE)
    if per_query_path.is_file():
        _check_per_query(per_query_path, result.per_query, report, prefix)
    return result.means


def _check_per_query(path: Path, rescored: dict[str, dict[str, float]], report: ValidationReport,
                     prefix: str) -> None:
    seen: set[str] = set()
    wrong: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            qid = str(row["qid"])
            metrics = dict(row["metrics"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            report.problems.append(f"{prefix}{path.name}: line {lineno} is not a per-query object")
            continue
        seen.add(qid)
        if qid not in rescored:
            report.problems.append(f"{prefix}{path.name}: query {qid!r} is not judged")
            continue
        if any(name in rescored[qid] and not _close(v, rescored[qid][name]) for name, v in metrics.items()):
            wrong.append(qid)
    if wrong:
        report.problems.append(f"{prefix}{path.name}: per-query metrics differ from the re-scored run for "
                               f"{len(wrong)} query(ies): " + ", ".join(wrong[:10]))
    absent = sorted(set(rescored) - seen)
    if absent:
        report.problems.append(f"{prefix}{path.name}: {len(absent)} judged query(ies) have no line: "
                               + ", ".join(absent[:10]))
    report.checked.append(f"{prefix}per-query metrics")


def _validate_aggregate(root: Path, record: dict[str, Any], report: ValidationReport) -> None:
    if not _check_schema(record, _AGGREGATE_KEYS, report, ""):
        return
    rescored: dict[str, dict[str, float]] = {}
    for entry in record["subsets"]:
        subset = str(entry.get("subset", ""))
        sub_dir = root / subset
        sub_record = _load_json(sub_dir / RECORD_FILE, report) if (sub_dir / RECORD_FILE).is_file() else None
        if sub_record is None:
            report.problems.append(f"{subset}: listed in the aggregate record but {sub_dir} has no record")
            continue
        means = _validate_subset(sub_dir, sub_record, report, prefix=f"{subset}/")
        rescored[subset] = means
        for name, value in (entry.get("metrics") or {}).items():
            if name in means and not _close(value, means[name]):
                report.problems.append(f"record.json: subsets[{subset}].metrics.{name} = {value} but the run "
                                       f"re-scores to {means[name]:.6f}")
    if rescored and all(rescored.values()):
        for name, value in record["metrics"].items():
            values = [m[name] for m in rescored.values() if name in m]
            if len(values) == len(rescored) and not _close(value, sum(values) / len(values)):
                report.problems.append(f"record.json: metrics.{name} = {value} but the mean of the re-scored "
                                       f"subsets is {sum(values) / len(values):.6f}")
    report.checked.append("aggregate means re-computed from the re-scored subsets")
