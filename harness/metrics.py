"""Evaluation with pytrec_eval (the pytrec-eval-terrier wheel), metrics named as in ir_measures.

Protocol (BRIGHT's official one, applied to every task):
* qrels with a negative grade mark excluded documents: they are removed from the run before scoring, so they
  never occupy rank slots, and never passed to the metric;
* the mean is over all judged queries; a judged query missing from the run scores 0 on every metric
  (pytrec_eval alone would silently shrink the denominator);
* metrics are floats in [0, 1].
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.errors import HarnessError
from harness.trec import evaluation_order
from harness.types import Qrels, Run

DEFAULT_METRICS = ("nDCG@10", "nDCG@5", "nDCG@1", "R@10", "R@100", "RR@10")
PRIMARY_METRIC = "nDCG@10"

# ir_measures name -> pytrec_eval measure family; "@k" handled below
_FAMILIES = {"nDCG": "ndcg_cut", "R": "recall", "P": "P", "AP": "map_cut", "RR": "recip_rank"}
_PLAIN = {"nDCG": "ndcg", "AP": "map", "RR": "recip_rank"}
_NAME = re.compile(r"^(nDCG|R|P|AP|RR)(?:@(\d+))?$")


@dataclass(frozen=True)
class _Measure:
    name: str
    measure: str  # pytrec_eval measure requested
    key: str  # key in pytrec_eval's output
    cutoff: int | None  # truncate the run before scoring (RR@k)


def _parse(name: str) -> _Measure:
    m = _NAME.match(name.strip())
    if not m:
        raise HarnessError(
            f"Unknown metric {name!r}. Use ir_measures names: nDCG@10, nDCG@5, R@100, P@10, RR@10, AP, AP@100, nDCG."
        )
    family, k = m.group(1), m.group(2)
    if k is None:
        if family not in _PLAIN:
            raise HarnessError(f"Metric {name!r} needs a cutoff, e.g. {family}@10.")
        return _Measure(name, _PLAIN[family], _PLAIN[family], None)
    if int(k) < 1:
        raise HarnessError(f"Metric {name!r}: the cutoff must be at least 1.")
    if family == "RR":
        return _Measure(name, "recip_rank", "recip_rank", int(k))
    base = _FAMILIES[family]
    return _Measure(name, f"{base}.{k}", f"{base}_{k}", None)


def parse_metrics(names: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    names = tuple(n.strip() for n in names)
    if not names:
        raise HarnessError("No metrics given; e.g. --metrics nDCG@10,R@100")
    for n in names:
        _parse(n)
    return names


@dataclass
class EvalResult:
    means: dict[str, float]
    per_query: dict[str, dict[str, float]]
    judged_queries: int
    missing_queries: list[str] = field(default_factory=list)  # judged but absent from the run
    unjudged_run_queries: int = 0  # in the run but not judged (ignored)
    excluded_removed: int = 0  # excluded docs found in the run and removed


def remove_excluded(run: Run, excluded: dict[str, set[str]]) -> tuple[Run, int]:
    removed = 0
    out: Run = {}
    for qid, hits in run.items():
        bad = excluded.get(qid)
        if bad:
            kept = [h for h in hits if h[0] not in bad]
            removed += len(hits) - len(kept)
            out[qid] = kept
        else:
            out[qid] = hits
    return out, removed


def split_qrels(qrels: Qrels) -> tuple[Qrels, dict[str, set[str]]]:
    """Separate scoring judgments (grade ≥ 0) from excluded documents (grade < 0)."""
    judged: Qrels = {}
    excluded: dict[str, set[str]] = {}
    for qid, docs in qrels.items():
        for docid, grade in docs.items():
            if grade < 0:
                excluded.setdefault(qid, set()).add(docid)
            else:
                judged.setdefault(qid, {})[docid] = int(grade)
    return judged, excluded


def evaluate(run: Run, qrels: Qrels, metrics=DEFAULT_METRICS, excluded: dict[str, set[str]] | None = None) -> EvalResult:
    """Score ``run`` against ``qrels``. Negative grades in ``qrels`` are treated as exclusions too."""
    import pytrec_eval

    measures = [_parse(m) for m in parse_metrics(metrics)]
    judged, excl_from_qrels = split_qrels(qrels)
    all_excluded = {q: set(v) for q, v in excl_from_qrels.items()}
    for q, v in (excluded or {}).items():
        all_excluded.setdefault(q, set()).update(v)
    run, removed = remove_excluded(run, all_excluded)

    per_query: dict[str, dict[str, float]] = {q: {m.name: 0.0 for m in measures} for q in judged}
    plain = [m for m in measures if m.cutoff is None]
    cut = [m for m in measures if m.cutoff is not None]
    scored_run = {q: {d: float(s) for d, s in hits} for q, hits in run.items() if q in judged and hits}
    if plain and scored_run:
        evaluator = pytrec_eval.RelevanceEvaluator(judged, {m.measure for m in plain})
        for qid, values in evaluator.evaluate(scored_run).items():
            for m in plain:
                per_query[qid][m.name] = float(values[m.key])
    for cutoff in sorted({m.cutoff for m in cut}):
        truncated = {q: dict(evaluation_order(hits)[:cutoff]) for q, hits in run.items() if q in judged and hits}
        if not truncated:
            continue
        group = [m for m in cut if m.cutoff == cutoff]
        evaluator = pytrec_eval.RelevanceEvaluator(judged, {m.measure for m in group})
        for qid, values in evaluator.evaluate(truncated).items():
            for m in group:
                per_query[qid][m.name] = float(values[m.key])

    n = len(judged)
    means = {m.name: (sum(per_query[q][m.name] for q in judged) / n if n else 0.0) for m in measures}
    missing = sorted(q for q in judged if q not in scored_run)
    return EvalResult(
        means=means,
        per_query=per_query,
        judged_queries=n,
        missing_queries=missing,
        unjudged_run_queries=sum(1 for q in run if q not in judged),
        excluded_removed=removed,
    )
