"""Validation of a submitted record directory (``harness submit validate PATH``).

A submission is what ``harness run`` writes: a subset record directory (record.json, run.trec, per_query.jsonl,
optional traces.jsonl) or a run-group directory (subset directories plus an aggregate record.json). Submitted
numbers are never trusted: the run file is re-scored against the task's qrels with ``harness.metrics.evaluate`` and
every discrepancy is reported, together with schema, provenance, hash, coverage and exclusion problems.

Identity is checked too, not only arithmetic:

* provenance is complete (a harness commit, the package versions, the command line);
* a first stage that pins its files (the published runs) has exactly the pinned sha256;
* the first stage is re-created (``--first-stage-dir`` locates ``run:`` files) and every query's ranking must be a
  permutation of its top-k candidates (for ``--reranker none``: the candidates in their order);
* a model reranker's record has model calls and tokens, and the prompt-template hash the harness computes for that
  reranker and those settings;
* ``require_traces``: the saved traces are replayed through the harness's own reranker (``--backend replay:``) and
  the replayed ranking must equal the submitted one — the only check a run sorted by the answers cannot pass.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.files import sha256_content, sha256_file, stored_file
from harness.schema import RECORD_FILE, AggregateRecord, RecordError, SubsetRecord, load_record

METRIC_TOLERANCE = 1e-6  # records keep full float precision; anything larger is an edit or a different scorer


@dataclass
class ValidationReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what was checked, for the summary
    notes: list[str] = field(default_factory=list)  # worth a reviewer's eye, not a reason to reject

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        head = f"{self.path}: {'VALID' if self.ok else f'INVALID ({len(self.problems)} problem(s))'}"
        lines = [head] + [f"  ✗ {p}" for p in self.problems] + [f"  ! {n}" for n in self.notes] + \
            [f"  ✓ {c}" for c in self.checked]
        return "\n".join(lines)


@dataclass(frozen=True)
class Checks:
    first_stage_dir: Path | None = None  # where ``run:`` first-stage files are found (by name, or DIR/<subset>/NAME)
    require_traces: bool = False
    model: str | None = None  # a local checkpoint standing in for the record's model (its tokenizer builds prompts)


def validate(path: str | os.PathLike, *, first_stage_dir: str | os.PathLike | None = None,
             require_traces: bool = False, model: str | None = None) -> ValidationReport:
    """Validate a subset record directory or a run-group directory; never raises for a bad submission."""
    root = Path(path)
    checks = Checks(Path(first_stage_dir) if first_stage_dir else None, require_traces, model)
    report = ValidationReport(root)
    record_path = root / RECORD_FILE
    subset_records = sorted(root.glob(f"*/{RECORD_FILE}")) if root.is_dir() else []
    if not record_path.is_file() and subset_records:
        return _validate_group_without_aggregate(root, subset_records, report, checks)
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
        _validate_aggregate(root, record, report, checks)
    else:
        _validate_subset(root, record, report, prefix="", checks=checks)
    return report


def _validate_group_without_aggregate(root: Path, paths: list[Path], report: ValidationReport,
                                      checks: Checks) -> ValidationReport:
    """A group directory of a single-subset run (no aggregate record): every subset record in it is validated."""
    groups = set()
    for path in paths:
        try:
            record = load_record(path)
        except RecordError as exc:
            report.problems.append(f"{path.parent.name}/record.json: {exc}")
            continue
        if not isinstance(record, SubsetRecord):
            report.problems.append(f"{path.parent.name}/record.json: not a subset record")
            continue
        groups.add(record.group_id)
        _validate_subset(path.parent, record, report, prefix=f"{path.parent.name}/", checks=checks)
    if len(groups) > 1:
        report.problems.append(f"{root}: records of {len(groups)} different groups; a group directory holds one")
    report.checked.append("schema")
    return report


def _close(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=METRIC_TOLERANCE)
    except (TypeError, ValueError):
        return False


def _validate_subset(root: Path, record: SubsetRecord, report: ValidationReport, prefix: str,
                     checks: Checks = Checks()) -> dict[str, float]:
    """Checks one subset record; returns the re-scored metric means (empty when re-scoring was impossible)."""
    from harness.metrics import evaluate
    from harness.trec import read_run

    # files and hashes (the schema already guarantees plain file names inside the directory)
    files = record.files
    for role, name in (("run", files.run), ("per_query", files.per_query), ("traces", files.traces)):
        if not name:
            continue
        file_path = stored_file(root, name)
        if not file_path.is_file():
            report.problems.append(f"{prefix}{name}: listed in files.{role} but absent")
            continue
        expected = record.sha256.get(name)
        if expected is None:
            report.problems.append(f"{prefix}{name}: no sha256 in the record")
        elif sha256_content(file_path) != expected:
            report.problems.append(f"{prefix}{name}: sha256 mismatch (file changed after the record was written)")
    report.checked.append(f"{prefix}file hashes")

    _check_provenance(record, report, prefix)
    _check_reranker(record, report, prefix)
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

    run_path = stored_file(root, files.run)
    if not run_path.is_file():
        return {}
    run, quirks = read_run(run_path)
    _check_first_stage(record, task, run, report, prefix, checks)
    if checks.require_traces:
        _check_traces(root, record, run, report, prefix, checks)
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


def _validate_aggregate(root: Path, record: AggregateRecord, report: ValidationReport, checks: Checks) -> None:
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
        means = _validate_subset(sub_dir, sub_record, report, prefix=f"{subset}/", checks=checks)
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


# --------------------------------------------------------------------------------------------------------------------
# Identity checks
# --------------------------------------------------------------------------------------------------------------------

def _check_provenance(record: SubsetRecord, report: ValidationReport, prefix: str) -> None:
    import re

    prov = record.provenance
    where = f"{prefix}record.json: provenance"
    for key in ("harness_version", "python", "platform", "started_utc", "finished_utc"):
        if not getattr(prov, key):
            report.problems.append(f"{where}.{key} is empty")
    if not prov.git_commit or not re.fullmatch(r"[0-9a-f]{40}", str(prov.git_commit)):
        report.problems.append(f"{where}.git_commit is {prov.git_commit!r}: a submission must name the harness "
                               "commit that produced it (run from a git checkout of the harness)")
    if not prov.packages or "harness" not in prov.packages:
        report.problems.append(f"{where}.packages is empty or lacks the harness: the versions that produced the "
                               "numbers are part of the submission")
    if not prov.argv:
        report.problems.append(f"{where}.argv is empty: the command line that produced the run is required")
    if prov.git_dirty:
        report.notes.append(f"{prefix}the harness tree had uncommitted changes (provenance.git_dirty)")
    report.checked.append(f"{prefix}provenance complete")


def _check_reranker(record: SubsetRecord, report: ValidationReport, prefix: str) -> None:
    """A model reranker's record must show model work and the harness's own prompt hash for those settings."""
    from rerankers import RERANKERS, build_reranker

    name = record.reranker.name
    if name not in RERANKERS:
        report.problems.append(f"{prefix}reranker {name!r} is not a harness reranker; submissions are produced by a "
                               "registered reranker (a new one is one file under rerankers/ and one registry line)")
        return
    identity = record.experiment.get("reranker") or {}
    try:
        expected = build_reranker(name, _reranker_settings(record)).identity()
    except HarnessError as exc:
        report.problems.append(f"{prefix}reranker settings cannot be resolved by this harness: {exc}")
        return
    if expected.get("prompt_template_hash") != record.reranker.prompt_template_hash or \
            expected.get("prompt_template_hash") != identity.get("prompt_template_hash"):
        report.problems.append(f"{prefix}record.json: reranker.prompt_template_hash "
                               f"{record.reranker.prompt_template_hash} is not the hash of the harness's {name} "
                               f"prompt for these settings ({expected.get('prompt_template_hash')})")
    if expected.get("model"):
        counts = record.counts
        tokens = sum(c.input_tokens + c.output_tokens for c in record.costs)
        if counts.model_calls <= 0 or tokens <= 0:
            report.problems.append(f"{prefix}record.json: reranker {name} with model {record.reranker.model} made "
                                   f"{counts.model_calls} model call(s) and used {tokens} token(s); a model reranker "
                                   "that never ran its model did not produce this ranking")
    report.checked.append(f"{prefix}reranker identity (registered, prompt hash, model work)")


def _reranker_settings(record: SubsetRecord) -> dict[str, Any]:
    """The reranker settings the run was started with, as the identity keeps them (model included)."""
    identity = record.experiment.get("reranker") or {}
    settings = dict(identity.get("settings") or {})
    if identity.get("model") and "model" not in settings:
        settings["model"] = identity["model"]
    return settings


def _first_stage_spec(record: SubsetRecord, task, checks: Checks) -> str | None:
    """A spec that re-creates the record's first stage here, or None when its file cannot be found."""
    spec = record.first_stage.spec
    if not spec.startswith("run:"):
        return spec
    identity = record.experiment.get("first_stage") or {}
    name = identity.get("file") or Path(record.first_stage.params.get("location", "")).name
    template = identity.get("template")
    candidates = []
    if checks.first_stage_dir is not None:
        if template:
            candidates.append(checks.first_stage_dir / template.replace("{subset}", task.subset))
        if name:
            candidates += [checks.first_stage_dir / name, checks.first_stage_dir / task.subset / name]
    default = task.default_first_stage or ""
    if default.startswith("run:") and Path(default[4:]).name == name:
        candidates.append(Path(default[4:]))
    for path in candidates:
        if path.is_file() and sha256_file(path) == record.first_stage.sha256:
            return f"run:{path}"
    return None


def _check_first_stage(record: SubsetRecord, task, run: dict, report: ValidationReport, prefix: str,
                       checks: Checks) -> None:
    from harness.first_stage import FirstStageOptions, build_first_stage

    fs = record.first_stage
    identity = record.experiment.get("first_stage") or {}
    options = FirstStageOptions(top_k=fs.top_k, query_field=str(record.experiment.get("query_field") or "original"),
                                extra=tuple(sorted((identity.get("settings") or {}).items())))
    spec = _first_stage_spec(record, task, checks)
    if spec is None:
        report.problems.append(
            f"{prefix}first stage {fs.spec} (sha256 {str(fs.sha256)[:12]}…) cannot be re-created to check the "
            "ranking: pass --first-stage-dir DIR holding that file (DIR/FILE or DIR/<subset>/FILE)")
        return
    try:
        stage = build_first_stage(spec, options)
        pinned = stage.pinned_sha256(task)
        if pinned is not None and fs.sha256 != pinned:
            report.problems.append(f"{prefix}record.json: first_stage.sha256 {fs.sha256} is not the pinned sha256 "
                                   f"of {fs.spec} for {task.name} ({pinned})")
            return
        candidates = stage.retrieve(task, options).run
    except HarnessError as exc:
        report.problems.append(f"{prefix}first stage {fs.spec} cannot be re-created here ({exc})")
        return
    not_permutation = [q for q, hits in run.items()
                       if sorted(d for d, _ in hits) != sorted(d for d, _ in candidates.get(q, []))]
    if not_permutation:
        report.problems.append(f"{prefix}{len(not_permutation)} query(ies) rank documents other than the first "
                               f"stage's top-{fs.top_k} ({', '.join(not_permutation[:5])}): a reranked run is a "
                               "permutation of its candidates")
    elif record.reranker.name == "none" and record.experiment.get("fusion") is None:
        reordered = [q for q, hits in run.items() if [d for d, _ in hits] != [d for d, _ in candidates.get(q, [])]]
        if reordered:
            report.problems.append(f"{prefix}reranker none, but {len(reordered)} query(ies) are not in first-stage "
                                   f"order ({', '.join(reordered[:5])})")
    report.checked.append(f"{prefix}first stage re-created; every ranking is a permutation of its candidates")


def _check_traces(root: Path, record: SubsetRecord, run: dict, report: ValidationReport, prefix: str,
                  checks: Checks) -> None:
    """Replay the saved traces through the harness's reranker; the replayed ranking must equal the submitted one."""
    import tempfile

    from harness.runner import run_experiment
    from harness.spec import ExecutionSpec, ExperimentSpec
    from harness.trec import read_run
    from tasks import resolve_tasks

    if not record.files.traces or not stored_file(root, record.files.traces).is_file():
        report.problems.append(f"{prefix}no traces file: --require-traces needs the model calls that produced the "
                               "ranking (run with --save-traces)")
        return
    if not (record.experiment.get("reranker") or {}).get("model"):
        report.checked.append(f"{prefix}traces not needed (model-free reranker)")
        return
    task = resolve_tasks(record.task.name)[0]
    spec = _first_stage_spec(record, task, checks)
    if spec is None:
        return  # already reported by the first-stage check
    identity = record.experiment
    fusion = identity.get("fusion") or {}
    experiment = ExperimentSpec(
        task=record.task.name, reranker=record.reranker.name,
        reranker_settings={**_reranker_settings(record), **({"model": checks.model} if checks.model else {})},
        first_stage=spec,
        first_stage_settings=(identity.get("first_stage") or {}).get("settings") or {}, top_k=record.first_stage.top_k,
        query_field=str(identity.get("query_field") or "original"), fuse=fusion.get("method", "none"),
        fuse_weight=fusion.get("weight"))
    with tempfile.TemporaryDirectory(prefix="harness-replay-") as scratch:
        execution = ExecutionSpec(backend=f"replay:{stored_file(root, record.files.traces)}", cache=False, progress=False,
                                  results_dir=scratch, max_failure_rate=1.0)
        try:
            outcome = run_experiment(experiment, execution, argv=["submit", "validate", "--require-traces"],
                                     log=lambda message: None)
        except HarnessError as exc:
            hint = "" if checks.model else " (a run on a local checkpoint needs --model PATH for its tokenizer)"
            report.problems.append(f"{prefix}the traces do not replay through the harness's {record.reranker.name} "
                                   f"reranker{hint}: {exc}")
            return
        [replayed_path] = list(Path(outcome.group_dir).glob(f"*/{record.files.run}"))
        replayed, _ = read_run(replayed_path)
    differ = [q for q in run if [d for d, _ in run[q]] != [d for d, _ in replayed.get(q, [])]]
    if differ:
        report.problems.append(f"{prefix}replaying the traces gives a different ranking for {len(differ)} of "
                               f"{len(run)} query(ies) ({', '.join(differ[:5])}): the run was not produced by "
                               "these model calls")
    else:
        report.checked.append(f"{prefix}traces replayed: the ranking equals the submitted one")


# --------------------------------------------------------------------------------------------------------------------
# Intake: ``harness submit add``
# --------------------------------------------------------------------------------------------------------------------

SUBMISSION_FILE = "submission.json"
BOARD_DIR = "results/board"  # the committed results tree the public board is built from
COMPRESSED = ("run", "traces")  # file roles stored gzip-compressed in the results tree
_REQUIRED = ("team", "contact", "license")


def add(path: str | os.PathLike, results_tree: str | os.PathLike, *, team: str, contact: str, license: str,
        link: str | None = None, paper: str | None = None, code: str | None = None,
        model: dict[str, Any] | None = None, first_stage_dir: str | os.PathLike | None = None,
        require_traces: bool = False, model_path: str | None = None,
        clock=None) -> tuple[ValidationReport, Path | None]:
    """Validate ``path`` (a group or subset record directory) and copy it into ``results_tree/<group_id>/`` with
    its run and traces files gzip-compressed, cost entries marked self-reported and a ``submission.json``
    (team, contact, links, licence, model card, what was validated). Nothing is written when validation fails."""
    import datetime
    import gzip
    import json
    import shutil

    from harness.files import TempDir
    from harness.model_cards import ModelCard
    from harness.provenance import git_state

    for name, value in (("team", team), ("contact", contact), ("license", license)):
        if not value or not str(value).strip():
            raise HarnessError(f"harness submit add needs --{name} (who submits, how to reach them, the licence of "
                               "the submitted files).")
    source = Path(path)
    report = validate(source, first_stage_dir=first_stage_dir, require_traces=require_traces, model=model_path)
    if not report.ok:
        return report, None
    top = load_record(source / RECORD_FILE) if (source / RECORD_FILE).is_file() else None
    aggregate = isinstance(top, AggregateRecord)
    records = [source / RECORD_FILE] if top is not None and not aggregate else sorted(source.glob(f"*/{RECORD_FILE}"))
    group_dir_records = [load_record(p) for p in records]
    group_id = group_dir_records[0].group_id
    card = ModelCard.from_mapping(group_dir_records[0].reranker.model or "", model or {}, "--model fields") \
        if group_dir_records[0].reranker.model else None
    now = (clock or datetime.datetime.now)(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    submission = {
        "group_id": group_id, "team": team, "contact": contact, "license": license, "link": link, "paper": paper,
        "code": code, "model": card.to_dict() if card else None, "submitted_utc": now,
        "validated": {"harness_commit": git_state().get("git_commit"), "require_traces": require_traces, "checked": report.checked,
                      "notes": report.notes},
        "costs_self_reported": True,
    }
    final = Path(results_tree) / group_id
    final.parent.mkdir(parents=True, exist_ok=True)
    with TempDir(final) as staging:
        if aggregate:
            shutil.copyfile(source / RECORD_FILE, staging / RECORD_FILE)
        for record_path, record in zip(records, group_dir_records):
            target = staging / record.task.subset
            target.mkdir()
            data = json.loads(record_path.read_text(encoding="utf-8"))
            for cost in data.get("costs") or []:
                cost["self_reported"] = True  # timings come from the submitter's machine, not from the maintainers
            (target / RECORD_FILE).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            for role in ("run", "per_query", "traces"):
                name = getattr(record.files, role)
                if not name:
                    continue
                src = stored_file(record_path.parent, name)
                if role in COMPRESSED and src.suffix != ".gz":
                    with open(src, "rb") as raw, gzip.GzipFile(target / f"{name}.gz", "wb", mtime=0) as packed:
                        shutil.copyfileobj(raw, packed)
                else:
                    shutil.copyfile(src, target / src.name)
        (staging / SUBMISSION_FILE).write_text(json.dumps(submission, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
    return report, final


def load_submission(group_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``submission.json`` of a group directory of the results tree, or None for the maintainers' own runs."""
    import json

    path = Path(group_dir) / SUBMISSION_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path} is not valid JSON ({exc}); re-create it with `harness submit add`.") from exc
    missing = [k for k in _REQUIRED if not data.get(k)]
    if missing:
        raise HarnessError(f"{path} lacks {', '.join(missing)}; re-create it with `harness submit add`.")
    return data
