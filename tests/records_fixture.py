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

from harness.records import SCHEMA_VERSION, write_json_atomic, write_subset_record

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


def _provenance(argv: list[str]) -> dict[str, Any]:
    return {"harness_version": "0.1.0", "git_commit": "0" * 40, "git_dirty": False, "python": "3.11.7",
            "platform": "Linux-x86_64", "packages": {"harness": "0.1.0", "pytrec-eval-terrier": "0.5.11"},
            "started_utc": "2026-11-20T10:00:00Z", "finished_utc": "2026-11-20T10:30:00Z", "argv": argv}


def _record(*, group: str, benchmark: str, subset: str, revision: str, first_stage: str, reranker: str,
            model: str | None, window: int | None, step: int | None, top_k: int, metrics: dict[str, float],
            n_queries: int, judged: int, candidates: int, calls: int, parse_failures: int, seconds: float,
            in_tok: int, out_tok: int, gpu: Any, limit: int | None = None, query_field: str = "original",
            missing: int = 0) -> dict[str, Any]:
    params = {"window_size": window, "step": step} if window else {}
    options = {"model": model, "window_size": window, "step": step} if model else {}
    argv = ["harness", "run", "--task", f"{benchmark}", "--reranker", reranker]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "subset",
        "run_id": f"{group}/{subset}",
        "spec": {"task": benchmark, "reranker": reranker, "first_stage": first_stage, "top_k": top_k,
                 "limit": limit, "query_field": query_field, "metrics": list(metrics),
                 "results_dir": "results", "reranker_options": {k: v for k, v in options.items() if v},
                 "first_stage_extra": []},
        "task": {"name": f"{benchmark}/{subset}", "benchmark": benchmark, "subset": subset, "revision": revision,
                 "queries": n_queries, "judged_queries": judged, "evaluated_queries": judged},
        "first_stage": {"spec": first_stage, "source": "fixture", "sha256": None, "top_k": top_k,
                        "query_field": query_field, "params": {}, "report": {}},
        "reranker": {"name": reranker, "model": model, "revision": "abc123" if model else None,
                     "backend": "vllm" if model else None, "params": params,
                     "prompt_template_hash": "sha256:0123" if model else None},
        "metrics": metrics,
        "counts": {"queries": n_queries, "judged_queries": judged, "candidates": candidates, "model_calls": calls,
                   "cached_calls": 0, "parse_failures": parse_failures, "fallbacks": {"identity": parse_failures}
                   if parse_failures else {}, "missing_queries": missing, "excluded_removed": 0},
        "cost": {"wall_seconds": round(seconds * 1.2 + 1, 3), "rerank_wall_seconds": round(seconds * 1.1, 3),
                 "generation_seconds": round(seconds, 3), "call_seconds_sum": round(seconds * 3, 3),
                 "seconds_per_query": round(seconds / n_queries, 4) if n_queries else 0.0,
                 "wall_seconds_per_query": round(seconds * 1.1 / n_queries, 4) if n_queries else 0.0,
                 "input_tokens": in_tok, "output_tokens": out_tok,
                 "tokens_per_query": round((in_tok + out_tok) / n_queries, 1) if n_queries else 0.0, "gpu": gpu},
        "provenance": _provenance(argv),
    }


# --------------------------------------------------------------------------------------------------------------------
# tiny: real qrels, real scoring
# --------------------------------------------------------------------------------------------------------------------

def write_tiny_records(results_dir: Path) -> dict[str, Path]:
    """Three tiny runs (first stage only, oracle, a fake reasoning reranker with traces); returns subset dirs."""
    from harness.metrics import evaluate
    from harness.trec import read_run
    from tasks import resolve_tasks
    from tasks.tiny import FIRST_STAGE_RUN

    task = resolve_tasks("tiny")[0]
    first, _ = read_run(FIRST_STAGE_RUN)
    first = {q: [(d, s) for d, s in hits if d not in task.excluded.get(q, set())] for q, hits in first.items()}
    qrels = task.qrels
    runs = {
        "none": (first, None, 0.0, None),
        "oracle": ({q: sorted(hits, key=lambda h: (-qrels.get(q, {}).get(h[0], 0), h[0]))
                    for q, hits in first.items()}, None, 0.0, None),
        # a "reasoning" reranker that reverses the list: worse than the first stage, but it has traces
        "reasonrank": ({q: [(d, float(len(hits) - i)) for i, (d, _) in enumerate(reversed(hits))]
                        for q, hits in first.items()}, "liuwenhan/reasonrank-7B", 3.5, GPU),
    }
    out = {}
    for name, (ranking, model, seconds, gpu) in runs.items():
        # positional scores: rewrite so the file order equals the ranking order
        ranking = {q: [(d, float(len(hits) - i)) for i, (d, _) in enumerate(hits)] for q, hits in ranking.items()}
        result = evaluate(ranking, task.qrels_all, METRICS, excluded=task.excluded)
        group = f"tiny__run-first_stage.trec__{name}{'-reasonrank-7B' if model else ''}__0000000{len(out)}"
        n = len(ranking)
        calls = 2 * n if model else 0
        record = _record(group=group, benchmark="tiny", subset="tiny", revision=task.revision,
                         first_stage=f"run:{FIRST_STAGE_RUN}", reranker=name, model=model,
                         window=20 if model else None, step=10 if model else None, top_k=100,
                         metrics=result.means, n_queries=n, judged=result.judged_queries,
                         candidates=sum(len(h) for h in ranking.values()), calls=calls,
                         parse_failures=1 if model else 0, seconds=seconds * n, in_tok=4000 * calls,
                         out_tok=600 * calls, gpu=gpu or "cpu")
        per_query = [{"qid": q, "metrics": result.per_query[q], "in_run": q in ranking, "candidates":
                      len(ranking.get(q, [])), "input_tokens": 8000 if model else 0,
                      "output_tokens": 1200 if model else 0, "generation_seconds": seconds,
                      "model_calls": 2 if model else 0, "parse_failures": 0, "fallbacks": {}}
                     for q in sorted(result.per_query)]
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
        out[name] = write_subset_record(results_dir / group / "tiny", record, ranking, tag=name,
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
                        aggregate: bool = True) -> Path:
    """One run group over ``subsets`` with subset means ``targets`` (×100); returns the group directory."""
    model_slug = f"-{model.split('/')[-1]}" if model else ""
    group_id = f"{benchmark}__{first_stage.replace(':', '-').replace('*', '')}__{reranker}{model_slug}__{seed:08x}{tag}"
    group_dir = results_dir / group_id
    outcomes = []
    for s_index, (subset, target) in enumerate(zip(subsets, targets)):
        values = _values(target / 100.0, queries, seed * 1000 + s_index)
        qids = [f"{subset[:3].lower()}{i}" for i in range(queries)]
        metrics = {"nDCG@10": sum(values) / len(values)}
        run = {q: [(f"{subset}/doc{j}", float(top_k - j)) for j in range(min(top_k, 30))] for q in qids}
        calls = queries * (9 if window else (top_k if model else 0))
        record = _record(group=group_id, benchmark=benchmark, subset=subset, revision="fixture-rev",
                         first_stage=first_stage, reranker=reranker, model=model, window=window, step=step,
                         top_k=top_k, metrics=metrics, n_queries=queries, judged=queries,
                         candidates=queries * top_k, calls=calls, parse_failures=s_index % 3 if model else 0,
                         seconds=seconds_per_query * queries, in_tok=5200 * calls, out_tok=700 * calls,
                         gpu=GPU if model else "cpu", limit=limit)
        per_query = [{"qid": q, "metrics": {"nDCG@10": v}, "in_run": True, "candidates": top_k,
                      "input_tokens": 5200 * 9, "output_tokens": 700 * 9, "generation_seconds": seconds_per_query,
                      "model_calls": 9 if model else 0, "parse_failures": 0, "fallbacks": {}}
                     for q, v in zip(qids, values)]
        write_subset_record(group_dir / subset, record, run, tag=reranker, per_query=per_query)
        outcomes.append(record)
    if aggregate and len(subsets) > 1:
        n = sum(r["counts"]["queries"] for r in outcomes)
        gen = sum(r["cost"]["generation_seconds"] for r in outcomes)
        write_json_atomic(group_dir / "record.json", {
            "schema_version": SCHEMA_VERSION, "kind": "aggregate", "run_id": group_id, "spec": outcomes[0]["spec"],
            "benchmark": benchmark, "first_stage": {"spec": first_stage}, "reranker": outcomes[0]["reranker"],
            "subsets": [{"subset": r["task"]["subset"], "run_id": r["run_id"], "metrics": r["metrics"]}
                        for r in outcomes],
            "complete": True,
            "metrics": {"nDCG@10": sum(r["metrics"]["nDCG@10"] for r in outcomes) / len(outcomes)},
            "counts": {"queries": n, "model_calls": sum(r["counts"]["model_calls"] for r in outcomes),
                       "parse_failures": sum(r["counts"]["parse_failures"] for r in outcomes)},
            "cost": {"wall_seconds": 1.0, "generation_seconds": gen, "seconds_per_query": gen / n if n else 0.0,
                     "input_tokens": 0, "output_tokens": 0, "tokens_per_query": 0.0,
                     "gpu": outcomes[0]["cost"]["gpu"]},
            "provenance": _provenance(["harness", "run"]),
        })
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
