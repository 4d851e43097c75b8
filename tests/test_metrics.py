"""harness.metrics against pytrec_eval directly and against hand-computed values."""

from __future__ import annotations

import json
import math
import random

import pytest
import pytrec_eval

from harness.errors import HarnessError
from harness.metrics import evaluate, parse_metrics


def _reference(run, qrels, measure_key, measure):
    """Protocol by hand: drop excluded docs, score with pytrec_eval, average over all judged queries."""
    judged = {q: {d: g for d, g in docs.items() if g >= 0} for q, docs in qrels.items()}
    judged = {q: d for q, d in judged.items() if d}
    excluded = {q: {d for d, g in docs.items() if g < 0} for q, docs in qrels.items()}
    cleaned = {q: {d: s for d, s in hits if d not in excluded.get(q, set())} for q, hits in run.items()}
    cleaned = {q: h for q, h in cleaned.items() if h and q in judged}
    per = pytrec_eval.RelevanceEvaluator(judged, {measure}).evaluate(cleaned)
    return sum(per[q][measure_key] if q in per else 0.0 for q in judged) / len(judged)


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_pytrec_eval_on_random_runs_with_excluded_docs(seed):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(25):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 8))
        qrels[qid] = {d: rng.choice([0, 1, 1, 2]) for d in judged}
        for d in rng.sample([x for x in docs if x not in judged], rng.randint(0, 4)):
            qrels[qid][d] = -100
        if rng.random() < 0.85:  # some judged queries are missing from the run
            hits = rng.sample(docs, rng.randint(1, 40))
            # rounded scores create ties, which trec_eval breaks by docid
            run[qid] = [(d, round(rng.random(), 1)) for d in hits]
    run["unjudged"] = [("d1", 1.0)]
    result = evaluate(run, qrels, ("nDCG@10", "nDCG@5", "R@10", "R@100", "P@10", "AP", "nDCG"))
    for name, measure, key in [("nDCG@10", "ndcg_cut.10", "ndcg_cut_10"), ("nDCG@5", "ndcg_cut.5", "ndcg_cut_5"),
                               ("R@10", "recall.10", "recall_10"), ("R@100", "recall.100", "recall_100"),
                               ("P@10", "P.10", "P_10"), ("AP", "map", "map"), ("nDCG", "ndcg", "ndcg")]:
        assert math.isclose(result.means[name], _reference(run, qrels, key, measure), abs_tol=1e-9), name
    for value in result.means.values():
        assert 0.0 <= value <= 1.0


def test_hand_computed_ndcg_and_exclusion_frees_the_rank_slot():
    qrels = {"q": {"a": 1, "b": 1, "x": -100}}
    run = {"q": [("x", 3.0), ("c", 2.0), ("a", 1.0)]}
    result = evaluate(run, qrels, ("nDCG@10", "RR@10", "R@10"))
    # after removing x: c (rank 1), a (rank 2). DCG = 1/log2(3); IDCG = 1 + 1/log2(3)
    dcg = 1 / math.log2(3)
    assert result.means["nDCG@10"] == pytest.approx(dcg / (1 + dcg), abs=1e-12)
    assert result.means["RR@10"] == pytest.approx(0.5)
    assert result.means["R@10"] == pytest.approx(0.5)
    assert result.excluded_removed == 1


def test_missing_judged_query_counts_as_zero():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    result = evaluate({"q1": [("a", 1.0)]}, qrels, ("nDCG@10",))
    assert result.means["nDCG@10"] == pytest.approx(0.5)
    assert result.missing_queries == ["q2"]


def test_rr_cutoff_truncates_in_evaluation_order():
    # gold doc at evaluated rank 11 → RR@10 = 0, RR = 1/11
    run = {"q": [(f"d{i:02d}", 100.0 - i) for i in range(10)] + [("gold", 1.0)]}
    result = evaluate(run, {"q": {"gold": 1}}, ("RR@10", "RR"))
    assert result.means["RR@10"] == 0.0
    assert result.means["RR"] == pytest.approx(1 / 11)


def test_ties_are_broken_by_docid_descending_like_trec_eval():
    run = {"q": [("a", 1.0), ("b", 1.0)]}
    assert evaluate(run, {"q": {"b": 1}}, ("RR@10",)).means["RR@10"] == 1.0
    assert evaluate(run, {"q": {"a": 1}}, ("RR@10",)).means["RR@10"] == 0.5


@pytest.mark.parametrize("bad", ["ndcg@10", "nDCG@0", "R", "MAP", "foo"])
def test_unknown_metric_names_are_clear_errors(bad):
    with pytest.raises(HarnessError, match="(?i)metric"):
        parse_metrics(bad)


def test_eval_cli_json_matches_library(tmp_path, capsys):
    from harness.cli import main

    rng = random.Random(3)
    qrels_lines, run_lines, run, qrels = [], [], {}, {}
    for q in range(10):
        qid = str(q)
        gold = rng.sample(range(30), 3)
        qrels[qid] = {f"doc{g}": 1 for g in gold}
        qrels[qid][f"doc{(gold[0] + 1) % 30}"] = -100
        qrels_lines += [f"{qid} 0 {d} {g}" for d, g in qrels[qid].items()]
        hits = [(f"doc{i}", rng.random()) for i in rng.sample(range(30), 20)]
        run[qid] = hits
        run_lines += [f"{qid} Q0 {d} {r} {s!r} test" for r, (d, s) in enumerate(hits, 1)]
    (tmp_path / "qrels.txt").write_text("\n".join(qrels_lines) + "\n")
    (tmp_path / "run.trec").write_text("\n".join(run_lines) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--run", str(tmp_path / "run.trec"), "--qrels", str(tmp_path / "qrels.txt"),
              "--metrics", "nDCG@10,R@100", "--json"])
    assert exit_info.value.code in (0, None)
    printed = json.loads(capsys.readouterr().out)
    expected = evaluate(run, qrels, ("nDCG@10", "R@100")).means
    assert printed.keys() == expected.keys()
    for k in expected:
        assert abs(printed[k] - expected[k]) < 1e-9
