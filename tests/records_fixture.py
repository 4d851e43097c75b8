"""Builders of realistic run records (schema of results/README.md) for leaderboard, verify and submit tests.

* ``write_tiny_records``: real records for the packaged ``tiny`` task, scored with harness.metrics.evaluate against
  its real qrels (so ``harness submit validate`` accepts them), with per-query files, run files and, for the
  model-reranker row, a traces file whose reasoning contains ``<script>alert(1)</script>``.
* ``write_board_records``: fake BRIGHT / R2MED boards whose per-subset means are set exactly (per-query values are
  target ± symmetric offsets), plus aggregate records — enough for boards, significance and claim grading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import dataclasses

from harness.records import write_aggregate_record, write_subset_record
from harness.schema import (
    SCHEMA_VERSION, AggregateCounts, AggregateRecord, CostEntry, Counts, Execution, FirstStageInfo, Hardware,
    PerQueryRow, Provenance, RerankerInfo, SubsetEntry, SubsetRecord, TaskInfo,
)

XSS = "<script>alert(1)</script>"
METRICS = ("nDCG@10", "nDCG@5", "R@10", "R@100", "RR@10")
GPU = {"name": "NVIDIA H100 80GB HBM3", "count": 1}
BRIGHT = ("biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow", "sustainable_living",
          "leetcode", "pony", "aops", "theoremqa_questions", "theoremqa_theorems")
R2MED = ("Biology", "Bioinformatics", "Medical-Sciences", "MedXpertQA-Exam", "MedQA-Diag", "PMC-Treatment",
         "PMC-Clinical", "IIYi-Clinical")
# Published values (×100) used by the shipped claims (results/expected/*.yaml)
REASONRANK_7B = (56.70, 47.75, 35.05, 47.77, 31.22, 32.47, 40.87, 23.17, 24.95, 7.68, 39.49, 41.80)
REASONRANK_32B = (58.17, 48.90, 36.64, 53.27, 33.88, 38.68, 45.97, 25.78, 20.93, 9.41, 38.46, 46.28)
RANK1_7B = (39.91, 38.91, 25.34, 35.32, 16.77, 24.81, 33.47, 12.71, 28.14, 2.58, 30.67, 38.18)
RANKZEPHYR = (34.90, 17.36, 19.87, 24.72, 12.35, 13.35, 22.34, 29.29, 32.37, 6.05, 28.98, 30.07)
REASONIR = (43.49, 43.00, 32.65, 39.57, 20.82, 30.96, 27.34, 31.69, 19.55, 7.37, 33.93, 36.68)
R2MED_REASONRANK_7B = (46.80, 59.70, 60.11, 16.48, 24.92, 39.21, 39.13, 29.85)
R2MED_E5 = (18.28, 41.47, 41.01, 6.44, 11.38, 19.81, 30.97, 21.37)


def _provenance(argv: list[str]) -> Provenance:
    return Provenance(harness_version="0.1.0", git_commit="0" * 40, git_dirty=False, python="3.11.7",
                      platform="Linux-x86_64", packages={"harness": "0.1.0", "pytrec-eval-terrier": "0.5.11"},
                      started_utc="2026-11-20T10:00:00Z", finished_utc="2026-11-20T10:30:00Z", argv=argv)


def _settings(model: str | None, window: int | None, step: int | None) -> dict[str, Any]:
    settings: dict[str, Any] = {"model": model} if model else {}
    if window:
        settings.update(window_size=window, step=step)
    return settings


def identity_for(benchmark: str, first_stage: str, reranker: str, settings: dict[str, Any], top_k: int,
                 limit: int | None):
    """(experiment identity, reranker) exactly as `harness run` resolves them (no data or model is loaded)."""
    from harness.first_stage import FirstStageOptions, build_first_stage
    from harness.runner import experiment_identity
    from harness.spec import ExecutionSpec, ExperimentSpec
    from rerankers import build_reranker
    from tasks import resolve_tasks

    experiment = ExperimentSpec(task=benchmark, reranker=reranker, reranker_settings=settings,
                                first_stage=first_stage, top_k=top_k, limit=limit)
    tasks = resolve_tasks(benchmark)
    stage = build_first_stage(first_stage, FirstStageOptions(top_k=top_k))
    instance = build_reranker(reranker, settings)
    return experiment_identity(experiment, ExecutionSpec(), tasks, stage, instance), instance, tasks


def _record(*, identity: dict[str, Any], reranker, task, revision: str, metrics: dict[str, float],
            n_queries: int, judged: int, candidates: int, calls: int, parse_failures: int, seconds: float,
            in_tok: int, out_tok: int, gpu: Any, query_field: str = "original", missing: int = 0,
            first_stage_spec: str | None = None) -> SubsetRecord:
    from harness.spec import group_id

    group = group_id(identity)
    model = identity["reranker"]["model"]
    hardware = Hardware(backend="vllm", accelerator=gpu["name"], count=gpu["count"]) if model else \
        Hardware(backend=None, accelerator="cpu", count=0)
    resolved = reranker.resolve(task.protocol)
    argv = ["harness", "run", "--task", task.benchmark, "--reranker", reranker.name]
    return SubsetRecord(
        schema_version=SCHEMA_VERSION, kind="subset", run_id=f"{group}/{task.subset}", group_id=group,
        experiment={**identity, "resolved": resolved},
        task=TaskInfo(name=task.name, benchmark=task.benchmark, subset=task.subset, revision=revision,
                      queries=n_queries, judged_queries=judged, evaluated_queries=judged),
        first_stage=FirstStageInfo(spec=first_stage_spec or identity["first_stage"].get("label") or
                                   identity["first_stage"]["spec"], source="fixture", sha256=identity["first_stage"].get("sha256"),
                                   top_k=identity["top_k"], query_field=query_field),
        reranker=RerankerInfo(name=reranker.name, family=reranker.family, model=model,
                              revision="abc123" if model else None, settings=resolved,
                              prompt_template_hash=identity["reranker"]["prompt_template_hash"]),
        metrics=metrics,
        counts=Counts(queries=n_queries, judged_queries=judged, candidates=candidates, model_calls=calls,
                      windows=calls if reranker.family == "listwise" else 0,
                      pairs=calls if reranker.family == "pointwise" else 0, parse_failures=parse_failures,
                      fallbacks={"permutation_repaired": parse_failures} if parse_failures else {},
                      failure_rate=parse_failures / calls if calls else 0.0, missing_queries=missing),
        costs=[CostEntry(hardware=hardware, queries=n_queries, model_calls=calls, cached_calls=0,
                         generation_seconds=round(seconds, 3), call_seconds_sum=round(seconds * 3, 3),
                         seconds_per_query=round(seconds / n_queries, 4) if n_queries else None,
                         input_tokens=in_tok, output_tokens=out_tok,
                         tokens_per_query=round((in_tok + out_tok) / n_queries, 1) if n_queries else None,
                         complete=True, measured_utc="2026-11-20T10:30:00Z")],
        execution=Execution(backend=hardware.backend, hardware=hardware, concurrency=64, cache=True, traces=False,
                            wall_seconds=round(seconds * 1.2 + 1, 3), rerank_wall_seconds=round(seconds * 1.1, 3)),
        provenance=_provenance(argv), files=None, sha256={},
    )


def _rows(result, ranking, **fields) -> list[PerQueryRow]:
    return [PerQueryRow(qid=q, metrics=result.per_query[q], in_run=q in ranking, candidates=len(ranking.get(q, [])),
                        input_tokens=fields.get("input_tokens", 0), output_tokens=fields.get("output_tokens", 0),
                        generation_seconds=fields.get("generation_seconds", 0.0),
                        model_calls=fields.get("model_calls", 0), parse_failures=0, fallbacks={}, gold={})
            for q in sorted(result.per_query)]


# --------------------------------------------------------------------------------------------------------------------
# tiny: real qrels, real scoring
# --------------------------------------------------------------------------------------------------------------------

def write_tiny_records(results_dir: Path) -> dict[str, Path]:
    """Three tiny runs (first stage only, oracle, a fake reasoning reranker with traces); returns subset dirs."""
    from harness.metrics import evaluate
    from harness.trec import read_run
    from tasks.tiny import FIRST_STAGE_RUN

    first, _ = read_run(FIRST_STAGE_RUN)
    out = {}
    for name, model, seconds in (("none", None, 0.0), ("oracle", None, 0.0),
                                 ("reasonrank", "liuwenhan/reasonrank-7B", 3.5)):
        identity, reranker, tasks = identity_for("tiny", f"run:{FIRST_STAGE_RUN}", name,
                                                 _settings(model, 20 if model else None, 10 if model else None),
                                                 100, None)
        task = tasks[0]
        qrels = task.qrels
        kept = {q: [(d, s) for d, s in hits if d not in task.excluded.get(q, set())] for q, hits in first.items()}
        if name == "oracle":
            ranking = {q: sorted(hits, key=lambda h: (-qrels.get(q, {}).get(h[0], 0), h[0])) for q, hits in kept.items()}
        elif name == "reasonrank":  # a "reasoning" reranker that reverses the list: worse, but it has traces
            ranking = {q: list(reversed(hits)) for q, hits in kept.items()}
        else:
            ranking = kept
        # positional scores: rewrite so the file order equals the ranking order
        ranking = {q: [(d, float(len(hits) - i)) for i, (d, _) in enumerate(hits)] for q, hits in ranking.items()}
        result = evaluate(ranking, task.qrels_all, METRICS, excluded=task.excluded)
        n = len(ranking)
        calls = 2 * n if model else 0
        record = _record(identity=identity, reranker=reranker, task=task, revision=task.revision,
                         metrics=result.means, n_queries=n, judged=result.judged_queries,
                         candidates=sum(len(h) for h in ranking.values()), calls=calls,
                         parse_failures=1 if model else 0, seconds=seconds * n, in_tok=4000 * calls,
                         out_tok=600 * calls, gpu=GPU)
        per_query = _rows(result, ranking, input_tokens=8000 if model else 0, output_tokens=1200 if model else 0,
                          generation_seconds=seconds, model_calls=2 if model else 0)
        for row in per_query:
            row.gold = {d: g for d, g in task.qrels_all.get(row.qid, {}).items() if g > 0}
        traces = None
        if model:
            traces = results_dir / f".traces-{name}.jsonl"
            traces.parent.mkdir(parents=True, exist_ok=True)
            with traces.open("w", encoding="utf-8") as fh:
                for q in ranking:
                    for w in ("0-20", "10-30"):
                        fh.write(json.dumps({
                            "label": f"query {q}, window {w}", "model": model, "prompt": "PROMPT",
                            "response": f"<think>Passage [1] looks relevant {XSS} & <b>bold</b></think>"
                                        f"<answer>[2] > [1]</answer>",
                            "params": {}, "input_tokens": 4000, "output_tokens": 600, "seconds": seconds / 2,
                            "finish_reason": "stop", "cached": False, "logprobs": None}) + "\n")
        out[name], _ = write_subset_record(results_dir / record.group_id / "tiny", record, ranking, tag=name,
                                           per_query=per_query, traces=traces)
        if traces is not None:
            traces.unlink()
    return out


# --------------------------------------------------------------------------------------------------------------------
# fake BRIGHT / R2MED boards with exact subset means
# --------------------------------------------------------------------------------------------------------------------

def _values(target: float, n: int, seed: int) -> list[float]:
    """n per-query values with mean exactly ``target`` (pairs target ± d; no clipping needed)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    room = min(target, 1.0 - target)
    offsets = rng.uniform(0, room, size=n // 2)
    values = [target + o for o in offsets] + [target - o for o in offsets]
    if n % 2:
        values.append(target)
    order = rng.permutation(n)
    return [float(values[i]) for i in order]


def write_board_records(results_dir: Path, *, benchmark: str, subsets: Sequence[str], targets: Sequence[float],
                        first_stage: str, reranker: str, model: str | None = None, window: int | None = None,
                        step: int | None = None, top_k: int = 100, seconds_per_query: float = 0.0,
                        queries: int = 24, seed: int = 0, tag: str = "", limit: int | None = None,
                        aggregate: bool = True, settings: dict[str, Any] | None = None,
                        first_stage_spec: str | None = None) -> Path:
    """One run group over ``subsets`` with subset means ``targets`` (×100); returns the group directory.

    ``first_stage`` must be a first stage whose identity needs no file (e.g. a published run); ``first_stage_spec``
    overrides the recorded spec (e.g. a ``run:`` file name) and, with ``seed``, keeps groups apart."""
    from harness.spec import group_id as make_group_id

    chosen = {**_settings(model, window, step), **(settings or {})}
    identity, instance, tasks = identity_for(benchmark, first_stage, reranker, chosen, top_k, limit)
    identity = {**identity, "fixture": f"{seed}{tag}"}  # keeps fixture groups of equal settings apart
    by_subset = {t.subset: t for t in tasks}
    group_id = make_group_id(identity)
    group_dir = results_dir / group_id
    records = []
    for s_index, (subset, target) in enumerate(zip(subsets, targets)):
        values = _values(target / 100.0, queries, seed * 1000 + s_index)
        qids = [f"{subset[:3].lower()}{i}" for i in range(queries)]
        metrics = {"nDCG@10": sum(values) / len(values), "R@100": min(1.0, 1.6 * sum(values) / len(values))}
        run = {q: [(f"{subset}/doc{j}", float(top_k - j)) for j in range(min(top_k, 30))] for q in qids}
        calls = queries * (9 if window else (top_k if model else 0))
        record = _record(identity=identity, reranker=instance, task=by_subset[subset], revision="fixture-rev",
                         metrics=metrics, n_queries=queries, judged=queries, candidates=queries * top_k, calls=calls,
                         parse_failures=s_index % 3 if model else 0, seconds=seconds_per_query * queries,
                         in_tok=5200 * calls, out_tok=700 * calls, gpu=GPU, first_stage_spec=first_stage_spec)
        per_query = [PerQueryRow(qid=q, metrics={"nDCG@10": v}, in_run=True, candidates=top_k,
                                 input_tokens=5200 * 9, output_tokens=700 * 9, generation_seconds=seconds_per_query,
                                 model_calls=9 if model else 0, parse_failures=0, fallbacks={}, gold={})
                     for q, v in zip(qids, values)]
        write_subset_record(group_dir / subset, record, run, tag=reranker, per_query=per_query)
        records.append(record)
    if aggregate and len(subsets) > 1:
        n = sum(r.counts.queries for r in records)
        gen = sum(r.costs[0].generation_seconds for r in records)
        cost = dataclasses.replace(records[0].costs[0], queries=n, generation_seconds=gen,
                                   seconds_per_query=gen / n if n else None)
        write_aggregate_record(group_dir, AggregateRecord(
            schema_version=SCHEMA_VERSION, kind="aggregate", run_id=group_id, group_id=group_id,
            experiment=identity, benchmark=benchmark, first_stage=records[0].first_stage.spec,
            reranker=records[0].reranker,
            subsets=[SubsetEntry(subset=r.task.subset, run_id=r.run_id, metrics=r.metrics) for r in records],
            complete=True, metrics={"nDCG@10": sum(r.metrics["nDCG@10"] for r in records) / len(records)},
            counts=AggregateCounts(queries=n, model_calls=sum(r.counts.model_calls for r in records),
                                   parse_failures=sum(r.counts.parse_failures for r in records)),
            costs=[cost], provenance=_provenance(["harness", "run"])))
    return group_dir


def write_fake_boards(results_dir: Path, *, queries: int = 24) -> dict[str, Path]:
    """BRIGHT: ReasonRank-7B exact (OK), ReasonRank-32B with biology +2.0 (OKish), Rank1-7B with economics −5
    (FAIL), the ReasonIR first stage, a smoke run, RankZephyr on 3 subsets only; R2MED: ReasonRank-7B exact and the E5 first stage."""
    out = {}
    kw = dict(benchmark="bright", subsets=BRIGHT, queries=queries)
    out["rr7"] = write_board_records(results_dir, targets=REASONRANK_7B, first_stage="reasonir-published",
                                     reranker="reasonrank", model="liuwenhan/reasonrank-7B", window=20, step=10,
                                     seconds_per_query=2.1, seed=1, **kw)
    okish = list(REASONRANK_32B)
    okish[0] += 2.0
    out["rr32"] = write_board_records(results_dir, targets=okish, first_stage="reasonir-published",
                                      reranker="reasonrank", model="liuwenhan/reasonrank-32B", window=20, step=10,
                                      seconds_per_query=6.3, seed=2, **kw)
    fail = list(RANK1_7B)
    fail[2] -= 5.0
    out["rank1"] = write_board_records(results_dir, targets=fail, first_stage="reasonir-published",
                                       reranker="rank1", model="jhu-clsp/rank1-7b", seconds_per_query=4.8, seed=3,
                                       **kw)
    out["first"] = write_board_records(results_dir, targets=REASONIR, first_stage="reasonir-published",
                                       reranker="none", seed=4, **kw)
    out["smoke"] = write_board_records(results_dir, targets=REASONRANK_7B, first_stage="reasonir-published",
                                       reranker="reasonrank", model="liuwenhan/reasonrank-7B", window=20, step=10,
                                       seconds_per_query=2.0, seed=5, limit=5, tag="-smoke", **kw)
    # an incomplete run (3 of 12 subsets, no aggregate): shown with a partial mean, never ranked
    out["partial"] = write_board_records(results_dir, benchmark="bright", subsets=BRIGHT[:3],
                                         targets=RANKZEPHYR[:3], first_stage="reasonir-published",
                                         reranker="rankzephyr", model="castorini/rank_zephyr_7b_v1_full", window=20,
                                         step=10, seconds_per_query=0.9, seed=8, queries=queries, aggregate=False)
    kw = dict(benchmark="r2med", subsets=R2MED, queries=queries)
    out["r2med_rr7"] = write_board_records(results_dir, targets=R2MED_REASONRANK_7B,
                                           first_stage="e5-mistral-published", reranker="reasonrank",
                                           model="liuwenhan/reasonrank-7B", window=20, step=10,
                                           seconds_per_query=1.9, seed=6, **kw)
    out["r2med_e5"] = write_board_records(results_dir, targets=R2MED_E5, first_stage="e5-mistral-published",
                                          reranker="none", seed=7, **kw)
    return out
