"""The benchmark pipeline: task → first-stage candidates → reranker → metrics → record.

``run_experiment(experiment, execution)`` is the library entry point behind ``harness run``. It resolves the
experiment identity (``harness.spec``) and its group id before anything runs, then processes the subsets one at a
time; each record is written (or merged into the experiment's existing record) as soon as its subset finishes, so an
interrupted multi-subset run keeps its finished subsets.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError
from harness.first_stage import FirstStageOptions, build_first_stage
from harness.fusion import DEFAULT_WEIGHT, fuse
from harness.metrics import PRIMARY_METRIC, evaluate
from harness.provenance import gpu_info, provenance, utc_now
from harness.records import ensure_writable, records_by_group, write_aggregate_record, write_subset_record
from harness.schema import (
    SCHEMA_VERSION, AggregateCounts, AggregateRecord, CostEntry, Counts, Execution, FirstStageInfo, Hardware,
    PerQueryRow, Provenance, RerankerInfo, SubsetEntry, SubsetRecord, TaskInfo,
)
from harness.spec import IDENTITY_VERSION, ExecutionSpec, ExperimentSpec, canonical_json, group_id, slug
from harness.types import Candidate, RerankRequest, RerankResult

WARN_FAILURE_RATE = 0.1  # above this share of failed windows/pairs a run prints a warning
# first-stage report counters worth a console note (the others, e.g. beyond_top_k, are the normal cut)
_FIRST_STAGE_QUIRKS = ("malformed_lines", "malformed_entries", "duplicate_docids", "docids_with_spaces",
                       "dropped_lines", "unknown_queries", "missing_queries", "not_in_corpus", "empty_queries",
                       "empty_documents")


@dataclass
class SubsetOutcome:
    task: str
    directory: Path
    metrics: dict[str, float]
    record: SubsetRecord
    status: str  # new | merged | variant


@dataclass
class RunOutcome:
    group_id: str
    group_dir: Path
    identity: dict[str, Any]
    subsets: list[SubsetOutcome]

    @property
    def degenerate(self) -> list[SubsetOutcome]:
        return [o for o in self.subsets if o.record.counts.degenerate]


class _Progress:
    """rich progress on stderr; silent when disabled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def task(self, description: str, total: int | None) -> Callable[[int], None]:
        if self._progress is None:
            return lambda n=1: None
        from rich.markup import escape

        task_id = self._progress.add_task(escape(description), total=total)
        return lambda n=1: self._progress.advance(task_id, n)

    def log(self, message: str) -> None:
        if self._progress is not None:
            from rich.markup import escape

            self._progress.console.print(escape(message), highlight=False, soft_wrap=True)
        else:
            import sys

            print(message, file=sys.stderr)


def _check_permutation(request: RerankRequest, result: RerankResult, reranker: str) -> None:
    given = sorted(c.docid for c in request.candidates)
    got = sorted(d for d, _ in result.ranking)
    if given != got:
        raise HarnessError(
            f"Reranker {reranker!r} returned a ranking for query {request.qid!r} that is not a permutation of its "
            f"{len(given)} candidates. This is a bug in the reranker; please report it."
        )


# --------------------------------------------------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------------------------------------------------

def _sha(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]


def dataset_identity(tasks) -> dict[str, Any]:
    """The dataset part of the identity: a local directory by its content; a registered benchmark by the pinned
    revisions of its declared subsets (so `--task bright/biology` and `--task bright` are one experiment)."""
    first = tasks[0]
    if first.source == "directory":
        return {"benchmark": first.benchmark, "version": first.revision, "as": first.protocol_of,
                "directory": getattr(first, "path", Path(first.subset)).resolve().name}
    from tasks import TASK_FAMILIES

    family = TASK_FAMILIES.get(first.benchmark)
    pinned = {t.subset: t.pinned_revision for s in family.info.subset_names for t in family.resolve(s)}
    pinned.update({t.subset: t.pinned_revision for t in tasks})
    return {"benchmark": first.benchmark, "version": _sha(pinned), "as": None, "directory": None}


def protocol_identity(tasks, reranker) -> str:
    """Hash of what the reranker makes of every subset's declared protocol hints (its resolved settings per subset;
    empty for a plain directory). A hint the reranker does not read (another model's prompt) leaves it unchanged."""
    info = tasks[0].benchmark_info
    if tasks[0].source == "directory" and not tasks[0].protocol_of:
        return _sha({})
    declared = {s.name: dict(s.protocol) for s in (info.subsets + info.variants)} if info else {}
    declared.update({t.subset: dict(t.protocol) for t in tasks})
    return _sha({name: reranker.resolve(protocol) for name, protocol in declared.items()})


def engine_identity(execution: ExecutionSpec, reranker) -> dict[str, Any]:
    """Engine settings that change the model itself (declared ``identity=True``, e.g. vLLM quantization)."""
    if not reranker.needs_model:
        return {}
    from harness.backends import backend_options, resolve_backend_name

    name, _ = resolve_backend_name(execution.backend)
    options = backend_options(name)
    return {k: v for k, v in execution.backend_args if k in options and options.options[k].identity}


def check_fusion(experiment: ExperimentSpec, reranker) -> None:
    from harness.fusion import check

    check(experiment.fuse, experiment.fuse_weight, bool(getattr(reranker, "outputs_scores", True)),
          experiment.reranker)


def experiment_identity(experiment: ExperimentSpec, execution: ExecutionSpec, tasks, first_stage,
                        reranker) -> dict[str, Any]:
    return {
        "identity_version": IDENTITY_VERSION,
        "dataset": dataset_identity(tasks),
        "protocol": protocol_identity(tasks, reranker),
        "first_stage": {**first_stage.identity(), "settings": dict(experiment.first_stage_settings)},
        "top_k": experiment.top_k,
        "limit": experiment.limit,
        "query_field": experiment.query_field,
        "reranker": reranker.identity(),
        "engine": engine_identity(execution, reranker),
        # absent without fusion, so experiments from before fusion existed keep their group ids
        **({"fusion": {"method": experiment.fuse, "weight": DEFAULT_WEIGHT if experiment.fuse_weight is None
                       else float(experiment.fuse_weight)}} if experiment.fuse != "none" else {}),
    }


# --------------------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class ExperimentPlan:
    """An experiment resolved up to its identity, before anything runs (sweeps plan every cell this way)."""

    experiment: ExperimentSpec
    execution: ExecutionSpec
    tasks: list
    reranker: Any
    first_stage: Any
    fs_spec: str
    fs_options: FirstStageOptions
    identity: dict[str, Any]
    group: str
    group_dir: Path

    def finished_subsets(self) -> list[str]:
        """Subsets of this experiment whose records are already in the results directory."""
        found = records_by_group(self.group_dir.parent, strict=False).get(self.group_dir, {}).get("subsets", {})
        return [t.subset for t in self.tasks
                if t.subset in found and (found[t.subset][0] / "run.trec").is_file()]


def plan_experiment(experiment: ExperimentSpec, execution: ExecutionSpec | None = None) -> ExperimentPlan:
    """Resolve tasks, reranker (its backend stays unbuilt) and first stage, and the experiment's group id."""
    from rerankers import build_reranker
    from tasks import resolve_tasks

    execution = execution or ExecutionSpec()
    tasks = resolve_tasks(experiment.task, experiment.as_subset)
    reranker = build_reranker(experiment.reranker, experiment.settings, execution)
    check_fusion(experiment, reranker)
    fs_spec = experiment.first_stage or tasks[0].default_first_stage
    fs_options = FirstStageOptions(top_k=experiment.top_k, query_field=experiment.query_field,
                                   extra=experiment.first_stage_settings)
    first_stage = build_first_stage(fs_spec, fs_options).bind(tasks)
    identity = experiment_identity(experiment, execution, tasks, first_stage, reranker)
    group = group_id(identity)
    return ExperimentPlan(experiment, execution, tasks, reranker, first_stage, fs_spec, fs_options, identity, group,
                          Path(execution.results_dir) / group)


def run_experiment(experiment: ExperimentSpec, execution: ExecutionSpec | None = None, *,
                   argv: list[str] | None = None, log: Callable[[str], None] | None = None) -> RunOutcome:
    """Run ``experiment`` over every subset of its task; returns the outcome (records already written)."""
    execution = execution or ExecutionSpec()
    ensure_writable(execution.results_dir)
    plan = plan_experiment(experiment, execution)
    tasks, reranker, first_stage, fs_spec, fs_options = (plan.tasks, plan.reranker, plan.first_stage, plan.fs_spec,
                                                         plan.fs_options)
    identity, group, group_dir = plan.identity, plan.group, plan.group_dir
    started = utc_now()
    outcomes: list[SubsetOutcome] = []
    say: Callable[[str], None] = log or (lambda message: None)
    try:
        with _Progress(execution.progress) as progress:
            say = log or progress.log
            def report(outcome: SubsetOutcome) -> None:
                counts = outcome.record.counts
                line = f"{outcome.task}: {PRIMARY_METRIC} = {outcome.metrics[PRIMARY_METRIC]:.4f}"
                if reranker.needs_model:
                    cost = _current_cost(outcome.record)
                    spq = "—" if cost is None or cost.seconds_per_query is None else f"{cost.seconds_per_query:.3f}"
                    line += (f"  parse failures {counts.parse_failures}/{counts.windows + counts.pairs}"
                             f"  s/query {spq}")
                say(f"{line}  ({outcome.directory})")
                outcomes.append(outcome)

            if len(tasks) > 1 and execution.one_engine and hasattr(reranker, "rerank_many"):
                # every subset's queries in one engine at once (one subset alone rarely fills the batch); each
                # subset's record is still written the moment that subset finishes
                works = [_prepare_subset(experiment, execution, identity, group, task, first_stage, fs_spec,
                                         fs_options, reranker, group_dir, progress, argv, say) for task in tasks]
                t_rerank = time.perf_counter()

                def on_done(index: int, results: list[RerankResult]) -> None:
                    report(_finish_subset(works[index], results, time.perf_counter() - t_rerank))

                reranker.rerank_many([(w.requests, w.context, on_done) for w in works])
            else:
                for task in tasks:
                    report(_run_subset(experiment, execution, identity, group, task, first_stage, fs_spec,
                                       fs_options, reranker, group_dir, progress, argv, say))
            _write_aggregate(identity, group, group_dir, tasks, started, argv, reranker, fs_spec, say)
    except KeyboardInterrupt:
        done = ", ".join(o.task for o in outcomes) or "none"
        say(f"interrupted: finished subsets kept in {group_dir}: {done}. Run the same command again to resume "
            "(finished model calls come from the cache).")
        raise
    finally:
        reranker.close()
    return RunOutcome(group, group_dir, identity, outcomes)


def _current_cost(record: SubsetRecord) -> CostEntry | None:
    key = record.execution.hardware.key()
    for entry in record.costs:
        if entry.hardware.key() == key:
            return entry
    return record.costs[0] if record.costs else None


def _hardware(reranker) -> Hardware:
    backend = getattr(reranker, "_backend", None)
    if backend is None:
        return Hardware(backend=None, accelerator="cpu", count=0)
    return Hardware(**backend.hardware())


def _counter(backend, name: str) -> int:
    try:
        return int(getattr(backend, name, 0) or 0)
    except (TypeError, ValueError):
        return 0


@dataclass
class _SubsetWork:
    """One subset between its first stage and its record: what the finishing step needs."""

    experiment: ExperimentSpec
    execution: ExecutionSpec
    identity: dict[str, Any]
    group: str
    task: Any
    fs_spec: str
    reranker: Any
    group_dir: Path
    argv: list[str] | None
    say: Callable[[str], None]
    started: str
    t_start: float
    first: Any
    queries: dict[str, str]
    qids: list[str]
    requests: list[RerankRequest]
    judged_all: dict[str, dict[str, int]]
    context: Any
    retries_before: int
    timeouts_before: int


def _run_subset(experiment: ExperimentSpec, execution: ExecutionSpec, identity: dict[str, Any], group: str, task,
                first_stage, fs_spec: str, fs_options: FirstStageOptions, reranker, group_dir: Path, progress, argv,
                say: Callable[[str], None]) -> SubsetOutcome:
    work = _prepare_subset(experiment, execution, identity, group, task, first_stage, fs_spec, fs_options, reranker,
                           group_dir, progress, argv, say)
    t_rerank = time.perf_counter()
    results = reranker.rerank(work.requests, work.context) if work.requests else []
    return _finish_subset(work, results, time.perf_counter() - t_rerank)


def _prepare_subset(experiment: ExperimentSpec, execution: ExecutionSpec, identity: dict[str, Any], group: str, task,
                    first_stage, fs_spec: str, fs_options: FirstStageOptions, reranker, group_dir: Path, progress,
                    argv, say: Callable[[str], None]) -> _SubsetWork:
    from rerankers import RerankContext

    started = utc_now()
    t_start = time.perf_counter()
    task.require_judgments()
    tick = progress.task(f"{task.name}: first stage {fs_spec}", total=None)
    first = first_stage.retrieve(task, fs_options)
    tick(1)
    for name in _FIRST_STAGE_QUIRKS:
        if first.report.get(name):
            say(f"note: {task.name}: first stage {name.replace('_', ' ')}: {first.report[name]} (counted in the "
                "record's first_stage.report)")

    queries = task.queries()
    qids = [q for q in queries if q in first.run]
    if experiment.limit is not None:
        qids = qids[: experiment.limit]
    wanted = {d for q in qids for d, _ in first.run[q][: experiment.top_k]}
    texts = task.docs(wanted)
    requests = []
    for qid in qids:
        cands = tuple(Candidate(d, texts[d], s) for d, s in first.run[qid][: experiment.top_k] if d in texts)
        requests.append(RerankRequest(qid, queries[qid], cands))

    judged_all = task.qrels_all
    if experiment.limit is not None:
        judged_all = {q: judged_all[q] for q in qids if q in judged_all}
    context = RerankContext(
        task_name=task.name,
        protocol=task.protocol,
        qrels=task.qrels if experiment.reranker == "oracle" else None,
        progress=progress.task(f"{task.name}: rerank ({experiment.reranker})", total=len(requests)),
    )
    backend_before = getattr(reranker, "_backend", None)
    retries_before = _counter(backend_before, "retries")
    timeouts_before = _counter(backend_before, "timeouts")
    return _SubsetWork(experiment, execution, identity, group, task, fs_spec, reranker, group_dir, argv, say, started,
                       t_start, first, queries, qids, requests, judged_all, context, retries_before, timeouts_before)


def _finish_subset(work: _SubsetWork, results: list[RerankResult], rerank_wall: float) -> SubsetOutcome:
    """Metrics and record of one reranked subset, written at once (a later subset's crash cannot lose it)."""
    (experiment, execution, identity, group, task, fs_spec, reranker, group_dir, argv, say, started, t_start, first,
     queries, qids, requests, judged_all, context, retries_before, timeouts_before) = (
        work.experiment, work.execution, work.identity, work.group, work.task, work.fs_spec, work.reranker,
        work.group_dir, work.argv, work.say, work.started, work.t_start, work.first, work.queries, work.qids,
        work.requests, work.judged_all, work.context, work.retries_before, work.timeouts_before)
    if len(results) != len(requests):
        raise HarnessError(f"Reranker {experiment.reranker!r} returned {len(results)} results for {len(requests)} "
                           "queries.")
    for request, result in zip(requests, results):
        _check_permutation(request, result, experiment.reranker)
    for note in context.info.get("notes", []):
        say(f"note: {task.name}: {note}")

    if experiment.fuse != "none":
        firsts = {r.qid: [(c.docid, c.score) for c in r.candidates] for r in requests}
        for result in results:
            result.ranking = fuse(result.ranking, firsts[result.qid], experiment.fuse, experiment.fuse_weight)
    run = {r.qid: list(r.ranking) for r in results}
    evaluation = evaluate(run, judged_all, execution.metrics, excluded=task.excluded)
    by_qid = {r.qid: r for r in results}
    n_cands = {r.qid: len(r.candidates) for r in requests}
    order = {q: i for i, q in enumerate(qids)}
    per_query = []
    for qid in sorted(evaluation.per_query, key=lambda q: (order.get(q, len(order)), q)):
        res = by_qid.get(qid)
        gen = res.generation_seconds if res else 0.0
        per_query.append(PerQueryRow(
            qid=qid, metrics=evaluation.per_query[qid], in_run=res is not None, candidates=n_cands.get(qid, 0),
            input_tokens=res.input_tokens if res else 0, output_tokens=res.output_tokens if res else 0,
            generation_seconds=None if gen is None else round(gen, 6), model_calls=res.requests if res else 0,
            parse_failures=res.parse_failures if res else 0,
            fallbacks=dict(Counter(c.fallback for c in res.calls if c.fallback)) if res else {},
            # relevant documents of the query, so the site can mark gold hits without loading the task
            gold={d: g for d, g in judged_all.get(qid, {}).items() if g > 0},
        ))

    now_hardware = _hardware(reranker)
    units = [c for r in results for c in r.calls]
    failed = sum(1 for c in units if not c.parsed or c.fallback)
    failure_rate = failed / len(units) if units else 0.0
    unusable = sum(1 for c in units if c.unusable)
    unusable_rate = unusable / len(units) if units else 0.0
    degenerate = bool(units) and (unusable_rate >= 1.0 or unusable_rate > execution.max_failure_rate)
    if degenerate:
        say(f"warning: {task.name}: {unusable} of {len(units)} model answers decided nothing (no usable ranking or "
            f"score: {unusable_rate:.0%} > --max-failure-rate {execution.max_failure_rate:.0%}); the ranking is the "
            "fallback's, not the model's. The record is flagged degenerate (kept out of rank groups and claims).")
    if failure_rate > WARN_FAILURE_RATE:
        say(f"warning: {task.name}: {failed} of {len(units)} model answers ({failure_rate:.0%}) could not be parsed "
            f"cleanly or needed a fallback ({', '.join(f'{k} {v}' for k, v in Counter(c.fallback for c in units if c.fallback).most_common())}).")
    quirks = Counter(task.quirks)
    quirks.update(context.info.get("quirks", {}))
    quirks.update(_replay_quirks(reranker))
    for name, count in sorted(quirks.items()):
        if count:
            say(f"note: {task.name}: {name.replace('_', ' ')}: {count}")
    fallbacks: Counter[str] = Counter(c.fallback for c in units if c.fallback)
    backend = getattr(reranker, "_backend", None)
    record = SubsetRecord(
        schema_version=SCHEMA_VERSION,
        kind="subset",
        run_id=f"{group}/{task.subset}",
        group_id=group,
        experiment={**identity, "resolved": reranker.resolve(task.protocol)},
        task=TaskInfo(name=task.name, benchmark=task.benchmark, subset=task.subset, revision=str(task.revision),
                      queries=len(queries), judged_queries=len(task.qrels),
                      evaluated_queries=evaluation.judged_queries, source=task.source,
                      protocol_of=task.protocol_of, details=task.details()),
        first_stage=FirstStageInfo(
            spec=fs_spec if not fs_spec.startswith("run:") else identity["first_stage"].get("label", fs_spec),
            source=first.source, sha256=first.sha256, top_k=experiment.top_k,
            # a published run was retrieved with a fixed query text, whatever --query-field says
            query_field=first.params.get("retrieval_query_field", experiment.query_field),
            params=first.params, report=first.report),
        reranker=RerankerInfo(name=reranker.name, family=reranker.family, model=identity["reranker"]["model"],
                              revision=(backend.revision if backend is not None else None) or
                              identity["reranker"]["model_revision"] or identity["reranker"]["model_fingerprint"],
                              settings=reranker.resolve(task.protocol),
                              prompt_template_hash=identity["reranker"]["prompt_template_hash"]),
        metrics=evaluation.means,
        counts=Counts(
            queries=len(results), judged_queries=evaluation.judged_queries, candidates=sum(n_cands.values()),
            model_calls=sum(c.requests for c in units),
            windows=sum(1 for c in units if c.kind in ("window", "comparison")),
            pairs=sum(1 for c in units if c.kind == "pair"),
            parse_failures=sum(1 for c in units if not c.parsed), fallbacks=dict(fallbacks),
            failure_rate=round(failure_rate, 6), unusable_answers=unusable, degenerate=degenerate,
            missing_queries=len(evaluation.missing_queries), excluded_removed=evaluation.excluded_removed,
            qrels_unknown_queries=task.qrels_unknown_queries, quirks={k: v for k, v in quirks.items() if v}),
        costs=_costs(results, now_hardware, uses_model=reranker.needs_model),
        execution=Execution(
            backend=now_hardware.backend, hardware=now_hardware, concurrency=execution.concurrency,
            cache=execution.cache, traces=bool(execution.save_traces), base_url=execution.base_url,
            engine=reranker.execution_info(), wall_seconds=round(time.perf_counter() - t_start, 3),
            rerank_wall_seconds=round(rerank_wall, 3),
            wall_seconds_per_query=round(rerank_wall / len(results), 4) if results else None,
            fresh_calls=sum(c.requests - c.cached_requests for c in units),
            retries=_counter(backend, "retries") - retries_before,
            timeouts=_counter(backend, "timeouts") - timeouts_before,
            replay_checked=getattr(backend, "checked", None) if now_hardware.backend == "replay" else None),
        provenance=Provenance(**provenance(started, argv)),
        files=None,  # filled by the writer
        sha256={},
    )
    if record.execution.retries or record.execution.timeouts:
        say(f"note: {task.name}: {record.execution.retries} request(s) retried after a transient server failure "
            f"({record.execution.timeouts} timed out); see execution.retries in the record.")
    if now_hardware.backend == "replay" and record.execution.replay_checked is False:
        say(f"note: {task.name}: the traces carry no model or sampling parameters; replayed on the prompt alone "
            "(the record says so).")
    traces = _finish_traces(reranker)
    directory, status = write_subset_record(group_dir / task.subset, record, run, tag=slug(experiment.reranker),
                                            per_query=per_query, traces=traces, log=say)
    return SubsetOutcome(task.name, directory, evaluation.means, record, status)


def _replay_quirks(reranker) -> dict[str, int]:
    from harness.backends.replay import ReplayBackend
    from harness.llm import find_wrapper

    replay = find_wrapper(getattr(reranker, "_backend", None), ReplayBackend)
    return dict(replay.report) if replay is not None else {}


def _finish_traces(reranker) -> Path | None:
    """The traces file of the run so far (copied into the subset's record)."""
    from harness.llm import find_wrapper
    from harness.traces import TracesWriter

    writer = find_wrapper(getattr(reranker, "_backend", None), TracesWriter)
    return writer.snapshot() if writer is not None else None


def _costs(results: list[RerankResult], now: Hardware, uses_model: bool) -> list[CostEntry]:
    measured = utc_now()
    if not uses_model:
        return [CostEntry(hardware=now, queries=len(results), model_calls=0, cached_calls=0, generation_seconds=0.0,
                          call_seconds_sum=0.0, seconds_per_query=0.0, input_tokens=0, output_tokens=0,
                          tokens_per_query=0.0, complete=True, measured_utc=measured)]
    groups: dict[str, dict[str, Any]] = {}
    for result in results:
        for call in result.calls:
            hardware = Hardware(**call.hardware) if call.hardware else Hardware(backend=now.backend,
                                                                                accelerator="unknown", count=0)
            acc = groups.setdefault(hardware.key(), {"hardware": hardware, "queries": set(), "calls": 0, "cached": 0,
                                                     "engine": 0.0, "latency": 0.0, "in": 0, "out": 0})
            acc["queries"].add(result.qid)
            acc["calls"] += call.requests
            acc["cached"] += call.cached_requests
            acc["engine"] = None if acc["engine"] is None or call.engine_seconds is None else \
                acc["engine"] + call.engine_seconds
            acc["latency"] += call.seconds
            acc["in"] += call.input_tokens
            acc["out"] += call.output_tokens
    entries = []
    for acc in groups.values():
        n = len(acc["queries"])
        engine = acc["engine"]
        entries.append(CostEntry(
            hardware=acc["hardware"], queries=n, model_calls=acc["calls"], cached_calls=acc["cached"],
            generation_seconds=None if engine is None else round(engine, 3),
            call_seconds_sum=round(acc["latency"], 3),
            seconds_per_query=None if engine is None or not n else round(engine / n, 4),
            input_tokens=acc["in"], output_tokens=acc["out"],
            tokens_per_query=round((acc["in"] + acc["out"]) / n, 1) if n else None,
            complete=n == len(results), measured_utc=measured))
    return entries


def _write_aggregate(identity: dict[str, Any], group: str, group_dir: Path, tasks, started: str, argv, reranker,
                     fs_spec: str, say: Callable[[str], None]) -> None:
    """(Re)write the group's aggregate record from every subset record it has, when the benchmark averages."""
    info = tasks[0].benchmark_info
    if info is None or info.average != "mean" or not info.subsets:
        return
    found = records_by_group(group_dir.parent, strict=False).get(group_dir, {}).get("subsets", {})
    official = [s for s in info.subset_names if s in found]
    if len(found) < 2 and len(tasks) < 2:
        return
    subsets = official + sorted(set(found) - set(official))
    records = [found[s][1] for s in subsets]
    metrics = {m: sum(r.metrics[m] for r in records) / len(records)
               for m in records[0].metrics if all(m in r.metrics for r in records)}
    costs: dict[str, dict[str, Any]] = {}
    for record in records:
        for entry in record.costs:
            acc = costs.setdefault(entry.hardware.key(), {"entry": entry, "parts": []})
            acc["parts"].append(entry)
    total_queries = sum(r.counts.queries for r in records)
    summed = []
    for acc in costs.values():
        parts = acc["parts"]
        queries = sum(p.queries for p in parts)
        gen = None if any(p.generation_seconds is None for p in parts) else sum(p.generation_seconds for p in parts)
        tokens = sum(p.input_tokens + p.output_tokens for p in parts)
        summed.append(CostEntry(
            hardware=acc["entry"].hardware, queries=queries, model_calls=sum(p.model_calls for p in parts),
            cached_calls=sum(p.cached_calls for p in parts), generation_seconds=None if gen is None else round(gen, 3),
            call_seconds_sum=None if any(p.call_seconds_sum is None for p in parts) else
            round(sum(p.call_seconds_sum for p in parts), 3),
            seconds_per_query=None if gen is None or not queries else round(gen / queries, 4),
            input_tokens=sum(p.input_tokens for p in parts), output_tokens=sum(p.output_tokens for p in parts),
            tokens_per_query=round(tokens / queries, 1) if queries else None,
            complete=queries == total_queries and all(p.complete for p in parts), measured_utc=utc_now()))
    first = records[0]
    aggregate = AggregateRecord(
        schema_version=SCHEMA_VERSION, kind="aggregate", run_id=group, group_id=group, experiment=identity,
        benchmark=info.name, first_stage=first.first_stage.spec,
        reranker=RerankerInfo(name=first.reranker.name, family=first.reranker.family, model=first.reranker.model,
                              revision=first.reranker.revision, settings=identity["reranker"]["settings"],
                              prompt_template_hash=first.reranker.prompt_template_hash),
        subsets=[SubsetEntry(subset=s, run_id=found[s][1].run_id, metrics=found[s][1].metrics) for s in subsets],
        complete=set(info.subset_names) <= set(found),
        metrics=metrics,
        counts=AggregateCounts(queries=total_queries, model_calls=sum(r.counts.model_calls for r in records),
                               parse_failures=sum(r.counts.parse_failures for r in records),
                               degenerate_subsets=sum(1 for r in records if r.counts.degenerate)),
        costs=summed,
        provenance=Provenance(**provenance(started, argv)),
    )
    write_aggregate_record(group_dir, aggregate)
    if PRIMARY_METRIC in metrics:
        scope = f"{len(records)} of {len(info.subsets)} subsets" if not aggregate.complete else \
            f"{len(records)} subsets"
        say(f"{info.title} average {PRIMARY_METRIC} over {scope} = {metrics[PRIMARY_METRIC]:.4f}")


__all__ = ["run_experiment", "plan_experiment", "ExperimentPlan", "RunOutcome", "SubsetOutcome", "experiment_identity", "gpu_info"]
