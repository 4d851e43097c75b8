"""The benchmark pipeline: task → first-stage candidates → reranker → metrics → record.

``run_benchmark`` is the library entry point behind ``harness run``. Subsets are processed one at a time and each
record is written as soon as its subset finishes, so an interrupted multi-subset run keeps its finished subsets.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError
from harness.first_stage import FirstStageOptions, build_first_stage
from harness.metrics import DEFAULT_METRICS, PRIMARY_METRIC, evaluate, parse_metrics
from harness.provenance import gpu_info, provenance, utc_now
from harness.records import (
    SCHEMA_VERSION, ensure_writable, slug, spec_hash, write_json_atomic, write_subset_record,
)
from harness.types import Candidate, RerankRequest, RerankResult
from rerankers import RerankContext, RerankerOptions, build_reranker


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's output. Saved, resolved, in every record."""

    task: str
    reranker: str = "none"
    first_stage: str | None = None  # None → the task's default (e.g. reasonir-published for BRIGHT)
    top_k: int = 100
    limit: int | None = None  # rerank only the first N queries (smoke runs); metrics then cover those queries
    query_field: str = "original"  # first-stage query text; rerankers always see the original query
    metrics: tuple[str, ...] = DEFAULT_METRICS
    results_dir: str = "results"
    reranker_options: RerankerOptions = field(default_factory=RerankerOptions)
    first_stage_extra: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        if self.top_k < 1:
            raise HarnessError(f"--top-k must be at least 1 (got {self.top_k}).")
        if self.limit is not None and self.limit < 1:
            raise HarnessError(f"--limit must be at least 1 (got {self.limit}).")
        object.__setattr__(self, "metrics", parse_metrics(self.metrics))

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["reranker_options"] = {k: v for k, v in d["reranker_options"].items() if v not in (None, (), False)}
        return d


@dataclass
class SubsetOutcome:
    task: str
    directory: Path
    metrics: dict[str, float]
    record: dict[str, Any]


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
        task_id = self._progress.add_task(description, total=total)
        return lambda n=1: self._progress.advance(task_id, n)

    def log(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message, highlight=False, soft_wrap=True)


def _check_permutation(request: RerankRequest, result: RerankResult, reranker: str) -> None:
    given = sorted(c.docid for c in request.candidates)
    got = sorted(d for d, _ in result.ranking)
    if given != got:
        raise HarnessError(
            f"Reranker {reranker!r} returned a ranking for query {request.qid!r} that is not a permutation of its "
            f"{len(given)} candidates. This is a bug in the reranker; please report it."
        )


def _group_id(spec: RunSpec, benchmark: str, first_stage: str, reranker_desc: dict[str, Any]) -> str:
    model = reranker_desc.get("model")
    rr = spec.reranker + (f"-{slug(str(model))}" if model else "")
    identity = {k: v for k, v in spec.as_dict().items() if k != "results_dir"}  # same run, any location
    return f"{slug(benchmark)}__{slug(first_stage)}__{slug(rr)}__{spec_hash(identity)}"


def run_benchmark(spec: RunSpec, *, show_progress: bool = True, argv: list[str] | None = None,
                  log: Callable[[str], None] | None = None) -> list[SubsetOutcome]:
    """Run ``spec`` over every subset of its task; returns one outcome per subset (records already written)."""
    from tasks import resolve_tasks

    results_root = ensure_writable(spec.results_dir)
    tasks = resolve_tasks(spec.task)
    started = utc_now()
    reranker = build_reranker(spec.reranker, spec.reranker_options)
    outcomes: list[SubsetOutcome] = []
    try:
        with _Progress(show_progress) as progress:
            say = log or progress.log
            reranker_desc = reranker.describe()
            fs_name = spec.first_stage or tasks[0].default_first_stage
            group = _group_id(spec, tasks[0].benchmark, fs_name, reranker_desc)
            for task in tasks:
                outcome = _run_subset(spec, task, reranker, reranker_desc, results_root / group, progress, argv)
                say(f"{task.name}: {PRIMARY_METRIC} = {outcome.metrics[PRIMARY_METRIC]:.4f}  ({outcome.directory})")
                outcomes.append(outcome)
            if len(tasks) > 1:
                _write_aggregate(spec, tasks, outcomes, results_root / group, started, argv, reranker_desc)
                mean = sum(o.metrics[PRIMARY_METRIC] for o in outcomes) / len(outcomes)
                say(f"{tasks[0].benchmark} average {PRIMARY_METRIC} over {len(outcomes)} subsets = {mean:.4f}")
    finally:
        reranker.close()
    return outcomes


def _run_subset(spec: RunSpec, task, reranker, reranker_desc: dict[str, Any], group_dir: Path, progress,
                argv) -> SubsetOutcome:
    started = utc_now()
    t_start = time.perf_counter()
    fs_spec = spec.first_stage or task.default_first_stage
    fs_options = FirstStageOptions(top_k=spec.top_k, query_field=spec.query_field, extra=spec.first_stage_extra)
    tick = progress.task(f"{task.name}: first stage {fs_spec}", total=None)
    first = build_first_stage(fs_spec, fs_options).retrieve(task, fs_options)
    tick(1)

    queries = task.queries()
    qids = [q for q in queries if q in first.run]
    if spec.limit is not None:
        qids = qids[: spec.limit]
    wanted = {d for q in qids for d, _ in first.run[q][: spec.top_k]}
    texts = task.docs(wanted)
    requests = []
    for qid in qids:
        cands = tuple(Candidate(d, texts[d], s) for d, s in first.run[qid][: spec.top_k] if d in texts)
        requests.append(RerankRequest(qid, queries[qid], cands))

    judged_all = task.qrels_all
    if spec.limit is not None:
        judged_all = {q: judged_all[q] for q in qids if q in judged_all}
    context = RerankContext(
        task_name=task.name,
        qrels=task.qrels if spec.reranker == "oracle" else None,
        progress=progress.task(f"{task.name}: rerank ({spec.reranker})", total=len(requests)),
    )
    t_rerank = time.perf_counter()
    results = reranker.rerank(requests, context) if requests else []
    rerank_wall = time.perf_counter() - t_rerank
    if len(results) != len(requests):
        raise HarnessError(f"Reranker {spec.reranker!r} returned {len(results)} results for {len(requests)} queries.")
    for request, result in zip(requests, results):
        _check_permutation(request, result, spec.reranker)

    run = {r.qid: list(r.ranking) for r in results}
    evaluation = evaluate(run, judged_all, spec.metrics, excluded=task.excluded)
    by_qid = {r.qid: r for r in results}
    n_cands = {r.qid: len(r.candidates) for r in requests}
    per_query = []
    for qid in sorted(evaluation.per_query, key=lambda q: (qids.index(q) if q in by_qid else len(qids), q)):
        res = by_qid.get(qid)
        per_query.append({
            "qid": qid,
            "metrics": evaluation.per_query[qid],
            "in_run": res is not None,
            "candidates": n_cands.get(qid, 0),
            "input_tokens": res.input_tokens if res else 0,
            "output_tokens": res.output_tokens if res else 0,
            "generation_seconds": round(res.generation_seconds, 6) if res else 0.0,
            "model_calls": len(res.calls) if res else 0,
            "parse_failures": res.parse_failures if res else 0,
            "fallbacks": dict(Counter(c.fallback for c in res.calls if c.fallback)) if res else {},
            # relevant documents of the query, so the site can mark gold hits without loading the task
            "gold": {d: g for d, g in judged_all.get(qid, {}).items() if g > 0},
        })

    fallbacks: Counter[str] = Counter()
    for res in results:
        fallbacks.update(c.fallback for c in res.calls if c.fallback)
    n_queries = len(results)
    call_seconds = sum(r.generation_seconds for r in results)
    # Engine-busy time (wall time with at least one model call in flight) is what the ReasonRank authors time; the
    # sum of per-call latencies overcounts whenever calls overlap. Rerankers without model calls report nothing.
    gen_seconds = float(context.info.get("engine_busy_seconds", call_seconds))
    in_tok = sum(r.input_tokens for r in results)
    out_tok = sum(r.output_tokens for r in results)
    wall = time.perf_counter() - t_start
    record = {
        "schema_version": SCHEMA_VERSION,
        "kind": "subset",
        "run_id": f"{group_dir.name}/{task.subset}",
        "spec": spec.as_dict(),
        "task": {**task.describe(), "evaluated_queries": evaluation.judged_queries},
        "first_stage": {
            "spec": fs_spec, "source": first.source, "sha256": first.sha256, "top_k": spec.top_k,
            # a published run was retrieved with a fixed query text, whatever --query-field says
            "query_field": first.params.get("retrieval_query_field", spec.query_field),
            "params": first.params, "report": first.report,
        },
        "reranker": {
            "name": spec.reranker,
            "model": reranker_desc.get("model"),
            "revision": reranker_desc.get("revision"),
            "backend": reranker_desc.get("backend"),
            "params": {k: v for k, v in reranker_desc.items()
                       if k not in ("name", "model", "revision", "backend", "prompt_template_hash")},
            "prompt_template_hash": reranker_desc.get("prompt_template_hash"),
        },
        "metrics": evaluation.means,
        "counts": {
            "queries": n_queries,
            "judged_queries": evaluation.judged_queries,
            "candidates": sum(n_cands.values()),
            "model_calls": sum(len(r.calls) for r in results),
            "cached_calls": sum(1 for r in results for c in r.calls if c.cached),
            "parse_failures": sum(r.parse_failures for r in results),
            "fallbacks": dict(fallbacks),
            "missing_queries": len(evaluation.missing_queries),
            "excluded_removed": evaluation.excluded_removed,
            "qrels_unknown_queries": task.qrels_unknown_queries,
        },
        "cost": {
            "wall_seconds": round(wall, 3),
            "rerank_wall_seconds": round(rerank_wall, 3),
            "generation_seconds": round(gen_seconds, 3),
            "call_seconds_sum": round(call_seconds, 3),
            "seconds_per_query": round(gen_seconds / n_queries, 4) if n_queries else 0.0,
            "wall_seconds_per_query": round(rerank_wall / n_queries, 4) if n_queries else 0.0,
            "input_tokens": in_tok,
            "output_tokens": out_tok,
            "tokens_per_query": round((in_tok + out_tok) / n_queries, 1) if n_queries else 0.0,
            "gpu": gpu_info() if reranker_desc.get("backend") not in (None, "replay") else "cpu",
        },
        "provenance": provenance(started, argv),
    }
    traces = spec.reranker_options.save_traces
    directory = write_subset_record(group_dir / task.subset, record, run, tag=slug(spec.reranker),
                                    per_query=per_query, traces=Path(traces) if traces else None)
    return SubsetOutcome(task.name, directory, evaluation.means, record)


def _write_aggregate(spec: RunSpec, tasks, outcomes: list[SubsetOutcome], group_dir: Path, started: str,
                     argv, reranker_desc: dict[str, Any]) -> None:
    from tasks import list_subsets

    benchmark = tasks[0].benchmark
    metrics = {m: sum(o.metrics[m] for o in outcomes) / len(outcomes) for m in spec.metrics}
    costs = [o.record["cost"] for o in outcomes]
    queries = sum(o.record["counts"]["queries"] for o in outcomes)
    gen = sum(c["generation_seconds"] for c in costs)
    in_tok = sum(c["input_tokens"] for c in costs)
    out_tok = sum(c["output_tokens"] for c in costs)
    expected = set(list_subsets(benchmark)) if benchmark in ("bright", "r2med") else {t.subset for t in tasks}
    record = {
        "schema_version": SCHEMA_VERSION,
        "kind": "aggregate",
        "run_id": group_dir.name,
        "spec": spec.as_dict(),
        "benchmark": benchmark,
        "first_stage": {"spec": outcomes[0].record["first_stage"]["spec"]},
        "reranker": outcomes[0].record["reranker"],
        "subsets": [{"subset": o.record["task"]["subset"], "run_id": o.record["run_id"], "metrics": o.metrics}
                    for o in outcomes],
        "complete": expected <= {o.record["task"]["subset"] for o in outcomes},
        "metrics": metrics,
        "counts": {
            "queries": queries,
            "model_calls": sum(o.record["counts"]["model_calls"] for o in outcomes),
            "parse_failures": sum(o.record["counts"]["parse_failures"] for o in outcomes),
        },
        "cost": {
            "wall_seconds": round(sum(c["wall_seconds"] for c in costs), 3),
            "generation_seconds": round(gen, 3),
            "seconds_per_query": round(gen / queries, 4) if queries else 0.0,
            "input_tokens": in_tok,
            "output_tokens": out_tok,
            "tokens_per_query": round((in_tok + out_tok) / queries, 1) if queries else 0.0,
            "gpu": costs[0]["gpu"],
        },
        "provenance": provenance(started, argv),
    }
    write_json_atomic(group_dir / "record.json", record)
