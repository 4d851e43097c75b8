"""The multi-view reward (training.rewards): spec test vectors, hand-computed cases, pytrec_eval agreement."""

from __future__ import annotations

import math
import random

import pytest

from training.rewards import average_overlap, multi_view_reward, ndcg_recall_at_k, ranking_reward

INITIAL = [f"d{i}" for i in range(1, 21)]
RELEVANT = ["d3", "d7", "d15"]
GT_IDS = [3, 7, 15] + [i for i in range(1, 21) if i not in (3, 7, 15)]


def ranking(ids) -> str:
    return " > ".join(f"[{i}]" for i in ids)


GROUND_TRUTH = ranking(GT_IDS)


def wrap(answer: str, sep: str = " ") -> str:
    return f"<think>ok</think>{sep}<answer>{answer}</answer>"


# -- spec test vectors (training.md §5) ---------------------------------------------------------------

@pytest.mark.parametrize("response, expected", [
    (wrap(GROUND_TRUTH), 1.3),
    (wrap(ranking(range(1, 21)), "\n"), 0.600891),
    (wrap(ranking(range(20, 0, -1)), "\n"), 0.270178),
    (GROUND_TRUTH, -1.0),
    ("<THINK>ok</THINK> <answer>" + GROUND_TRUTH + "</answer>", -1.0),
    (wrap(ranking(range(1, 20))), 0.0),
])
def test_spec_vectors(response, expected):
    assert ranking_reward(response, GROUND_TRUTH, INITIAL, RELEVANT) == pytest.approx(expected, abs=1e-6)


def test_spec_vector_components():
    ndcg, recall = ndcg_recall_at_k(INITIAL, set(RELEVANT))
    assert ndcg == pytest.approx(0.391066, abs=1e-6)
    assert recall == pytest.approx(2 / 3, abs=1e-6)
    assert average_overlap([str(i) for i in range(1, 21)], [str(i) for i in GT_IDS]) == pytest.approx(0.764922, abs=1e-6)
    ndcg, recall = ndcg_recall_at_k(INITIAL[::-1], set(RELEVANT))
    assert (ndcg, recall) == (pytest.approx(0.167160, abs=1e-6), pytest.approx(1 / 3, abs=1e-6))


# -- hand-computed cases on a 4-passage list -----------------------------------------------------------

SMALL = ["a", "b", "c", "d"]
SMALL_REL = ["a"]
SMALL_GT = "[1] > [2] > [3] > [4]"


def small(answer: str) -> float:
    return ranking_reward(wrap(answer), SMALL_GT, SMALL, SMALL_REL)


def test_perfect():
    assert small("[1] > [2] > [3] > [4]") == pytest.approx(1.0 + 0.2 + 0.1)


def test_reversed():
    # relevant doc at rank 4: NDCG = 1/log2(5); recall 1; AO = (0 + 0 + 2/3 + 1) / 4
    expected = 1 / math.log2(5) + 0.2 + 0.1 * ((2 / 3 + 1) / 4)
    assert small("[4] > [3] > [2] > [1]") == pytest.approx(expected)


def test_one_swap():
    # relevant doc at rank 2: NDCG = 1/log2(3); AO = (0 + 1 + 1 + 1) / 4
    expected = 1 / math.log2(3) + 0.2 + 0.1 * 0.75
    assert small("[2] > [1] > [3] > [4]") == pytest.approx(expected)


def test_bad_format():
    for bad in ("[1] > [2] > [3] > [4]", "<think>x</think> [1] > [2]", "<answer>[1] > [2] > [3] > [4]</answer>",
                "<think>x<answer>[1] > [2] > [3] > [4]</answer>", "<think>x</think> text <answer>[1]</answer>"):
        assert ranking_reward(bad, SMALL_GT, SMALL, SMALL_REL) == -1.0


def test_wrong_length():
    assert small("[1] > [2] > [3]") == 0.0
    assert small("[1] > [2] > [3] > [4] > [5]") == 0.0


def test_duplicates():
    # same length, fewer distinct identifiers than the reference
    assert small("[1] > [1] > [3] > [4]") == 0.0


def test_unparseable_digit_gives_zero():
    assert small("[1] > [2] > [3] > [²]") == 0.0


def test_identifier_zero_is_dropped_not_wrapped():
    # Original: [0] -> initial_list[-1] = "d" (the last passage). Here it names no passage.
    initial = ["a", "b", "c", "d"]
    with_zero = ranking_reward(wrap("[0] > [2] > [3] > [1]"), SMALL_GT, initial, ["d"])
    # relevant "d" never appears in the mapped order -> NDCG 0, recall 0; AO on strings ["0","2","3","1"] vs 1..4
    ao = average_overlap(["0", "2", "3", "1"], ["1", "2", "3", "4"])
    assert with_zero == pytest.approx(0.1 * ao)
    out_of_range = ranking_reward(wrap("[9] > [2] > [3] > [4]"), SMALL_GT, initial, ["b"])
    assert out_of_range == pytest.approx(1.0 + 0.2 + 0.1 * average_overlap(["9", "2", "3", "4"], ["1", "2", "3", "4"]))


def test_whitespace_and_newlines_between_tags():
    assert ranking_reward("<think>a\nb</think>\n\n <answer>\n[1] > [2] > [3] > [4]\n</answer> trailing",
                          SMALL_GT, SMALL, SMALL_REL) == pytest.approx(1.3)


def test_no_relevant_docs_scores_only_rbo():
    assert ranking_reward(wrap("[1] > [2] > [3] > [4]"), SMALL_GT, SMALL, []) == pytest.approx(0.1)


# -- trl call convention ----------------------------------------------------------------------------

def test_trl_signature_with_chat_completions_and_strings():
    completions = [[{"role": "assistant", "content": wrap(GROUND_TRUTH)}], wrap(ranking(range(1, 21)), "\n"),
                   [{"role": "assistant", "content": "no tags"}]]
    rewards = multi_view_reward(
        prompts=[[{"role": "user", "content": "p"}]] * 3, completions=completions,
        ground_truth=[GROUND_TRUTH] * 3, initial_list=[INITIAL] * 3, relevant_docids=[RELEVANT] * 3,
        completion_ids=[[1]] * 3, trainer_state=None, log_extra=lambda *a, **k: None, dataset=["x"] * 3)
    assert rewards == [pytest.approx(1.3), pytest.approx(0.600891, abs=1e-6), -1.0]


def test_trl_positional_completions():
    assert multi_view_reward(None, [wrap(GROUND_TRUTH)], ground_truth=[GROUND_TRUTH], initial_list=[INITIAL],
                             relevant_docids=[RELEVANT]) == [pytest.approx(1.3)]


def test_mismatched_columns_raise():
    with pytest.raises(ValueError):
        multi_view_reward(completions=["a", "b"], ground_truth=["x"], initial_list=[["a"]], relevant_docids=[["a"]])


# -- agreement with pytrec_eval -------------------------------------------------------------------

def test_agrees_with_pytrec_eval_on_random_cases():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 20)
        initial = [f"doc{rng.randint(0, 10_000)}_{i}" for i in range(n)]
        relevant = rng.sample(initial, rng.randint(1, n))
        relevant += ["unretrieved"] * rng.randint(0, 1)
        order = initial[:]
        rng.shuffle(order)
        order = order[: rng.randint(1, n)]
        qrels = {"q": {d: 1 for d in relevant}}
        run = {"q": {d: float(-rank) for rank, d in enumerate(order)}}
        ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10"}).evaluate(run)["q"]
        ndcg, recall = ndcg_recall_at_k(order, set(relevant))
        assert ndcg == pytest.approx(ref["ndcg_cut_10"], abs=1e-9)
        assert recall == pytest.approx(ref["recall_10"], abs=1e-9)


def test_full_reward_matches_pytrec_eval_composition():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(11)
    for _ in range(50):
        ids = list(range(1, 21))
        rng.shuffle(ids)
        gt_ids = list(range(1, 21))
        rng.shuffle(gt_ids)
        relevant = rng.sample(INITIAL, rng.randint(1, 6))
        order = [INITIAL[i - 1] for i in ids]
        run = {"q": {d: float(-r) for r, d in enumerate(order)}}
        ref = pytrec_eval.RelevanceEvaluator({"q": {d: 1 for d in relevant}}, {"ndcg_cut.10", "recall.10"}).evaluate(run)["q"]
        expected = ref["ndcg_cut_10"] + 0.2 * ref["recall_10"] + 0.1 * average_overlap(
            [str(i) for i in ids], [str(i) for i in gt_ids])
        got = ranking_reward(wrap(ranking(ids)), ranking(gt_ids), INITIAL, relevant)
        assert got == pytest.approx(expected, abs=1e-9)


def test_average_overlap_edge_cases():
    assert average_overlap([], []) == 1.0
    assert average_overlap(["1"], []) == 0.0
    assert average_overlap(["1", "2"], ["2", "1"]) == pytest.approx((0 + 1) / 2)
    assert average_overlap(["1", "2", "3"], ["1", "2"]) == pytest.approx(1.0)
