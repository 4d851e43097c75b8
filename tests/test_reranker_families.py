"""The reranker families: pointwise (qwen3-reranker, retro-star, cross-encoder), setwise (rank-r1) and the new listwise
models (rearank, rankgpt); score fusion; backend capabilities. Prompts are checked byte for byte against strings taken
from the originals (the Qwen3-Reranker model card, VectorSpaceLab Retro*, ielab Rank-R1, lezhang7/Rearank,
sunnweiwei/RankGPT)."""

from __future__ import annotations

import asyncio
import io
import json
import math
import random
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.llm import Generation, GenerationRequest
from harness.schema import load_record
from harness.types import Candidate, RerankRequest
from rerankers import RERANKERS, RerankContext
from test_rerankers import ScriptedBackend

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def qwen3_tok(tiny_qwen3_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_qwen3_dir)


def _request(n: int, qid: str = "q1") -> RerankRequest:
    return RerankRequest(qid, "why do moths circle lamps?",
                         tuple(Candidate(f"d{i}", f"passage number {i} about lamps", 10.0 - i) for i in range(n)))


# --- every new reranker end to end on the tiny task, on the hf backend, with a tiny model of its architecture -------

@pytest.mark.parametrize("reranker", ["qwen3-reranker", "retro-star", "rank-r1", "rearank", "rankgpt",
                                      "cross-encoder"])
def test_every_new_reranker_runs_end_to_end_on_the_hf_backend(reranker, tiny_qwen3_dir, tiny_cross_encoder_dir,
                                                               tmp_path):
    model = tiny_cross_encoder_dir if reranker == "cross-encoder" else tiny_qwen3_dir
    extra = {"retro-star": ["--max-tokens", "8", "--reranker-arg", "context_length=1024"],
             "rank-r1": ["--max-tokens", "8", "--reranker-arg", "num_child=4"],
             "rearank": ["--max-tokens", "8"], "rankgpt": ["--max-tokens", "8"]}.get(reranker, [])
    code, _, err = _cli("run", "--task", "tiny", "--reranker", reranker, "--model", model, "--backend", "hf",
                        "--results-dir", tmp_path, "--no-cache", "-q", *extra)
    # random weights rarely write a valid answer: a degenerate run (exit 1) is the honest outcome for the generative
    # ones; label-log-prob and classification-head rerankers always score
    assert code in (0, 1), err
    [path] = tmp_path.glob("*/tiny/record.json")
    record = load_record(path)
    assert record.reranker.name == reranker
    assert record.reranker.family == RERANKERS.get(reranker).family
    assert record.counts.queries == 5 and record.costs and record.costs[0].model_calls > 0
    if reranker in ("qwen3-reranker", "cross-encoder"):
        assert code == 0 and record.counts.parse_failures == 0
        scores = [float(line.split()[-2]) for line in (path.parent / "run.trec").read_text().splitlines()]
        assert len(set(scores)) > 5  # real, distinct scores from the model
        if reranker == "qwen3-reranker":
            assert all(0.0 < s < 1.0 for s in scores)


@pytest.mark.parametrize("reranker", ["qwen3-reranker", "retro-star", "rank-r1", "rearank", "rankgpt"])
def test_harness_prompt_prints_the_prompt_of_every_new_reranker(reranker, tiny_qwen3_dir):
    code, out, err = _cli("prompt", "--reranker", reranker, "--model", tiny_qwen3_dir, "--task", "tiny", "--query",
                          "q1", "--top-k", "3")
    assert code == 0, err
    thinking_off = reranker in ("qwen3-reranker", "retro-star")  # an empty think block opens the answer
    assert out.startswith("<|im_start|>") and out.endswith("</think>\n\n" if thinking_off
                                                           else "<|im_start|>assistant\n")


def test_harness_prompt_prints_the_cross_encoder_pair(tiny_cross_encoder_dir):
    code, out, err = _cli("prompt", "--reranker", "cross-encoder", "--model", tiny_cross_encoder_dir, "--task",
                          "tiny", "--query", "q1")
    assert code == 0, err
    assert out.startswith("[CLS]Why are insects attracted to light at night?[SEP]") and out.endswith("[SEP]")


# --- Qwen3-Reranker ----------------------------------------------------------------------------------------------

def test_qwen3_reranker_prompt_is_the_model_cards(qwen3_tok):
    from rerankers.qwen3_reranker import Qwen3Reranker

    reranker = Qwen3Reranker({}, tokenizer=qwen3_tok)
    expected = ('<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the '
                'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
                "<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n"
                "<Query>: What is the capital of China?\n<Document>: The capital of China is Beijing."
                "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert reranker.pair_prompt("What is the capital of China?", "The capital of China is Beijing.", {}) == expected
    bright = reranker.pair_prompt("q", "d", {"instruction": "Given a Biology post, retrieve relevant passages "
                                                            "that help answer the post"})
    assert "<Instruct>: Given a Biology post, retrieve relevant passages that help answer the post\n" in bright
    override = Qwen3Reranker({"instruction": "Find it"}, tokenizer=qwen3_tok)
    assert "<Instruct>: Find it\n" in override.pair_prompt("q", "d", {"instruction": "ignored"})


def test_qwen3_reranker_truncates_the_body_to_its_first_tokens(qwen3_tok):
    from rerankers.qwen3_reranker import PREFIX, SUFFIX, Qwen3Reranker

    reranker = Qwen3Reranker({"max_length": 120}, tokenizer=qwen3_tok)
    prompt = reranker.pair_prompt("a query", "word " * 500, {})
    assert prompt.startswith(PREFIX) and prompt.endswith(SUFFIX)
    frame = len(qwen3_tok(PREFIX, add_special_tokens=False).input_ids) + \
        len(qwen3_tok(SUFFIX, add_special_tokens=False).input_ids)
    body = prompt[len(PREFIX):-len(SUFFIX)]
    assert len(qwen3_tok(body, add_special_tokens=False).input_ids) == 120 - frame
    assert body.startswith("<Instruct>: Given a web search query")  # the end is cut, not the instruction


def test_qwen3_reranker_scores_p_yes_over_yes_and_no(qwen3_tok):
    from rerankers.qwen3_reranker import Qwen3Reranker

    yes, no = qwen3_tok.convert_tokens_to_ids(["yes", "no"])

    def respond(request):
        assert request.params.max_tokens == 1 and set(request.params.allowed_token_ids) == {yes, no}
        p = 0.9 if "number 2" in request.prompt else 0.2
        return Generation("yes", 100, 1, 0.1, logprobs=[{yes: math.log(p), no: math.log(1 - p)}])

    backend = ScriptedBackend(respond)
    [result] = Qwen3Reranker({}, backend=backend, tokenizer=qwen3_tok).rerank([_request(4)], RerankContext("t"))
    assert result.ranking[0] == ("d2", pytest.approx(0.9))
    assert [d for d, _ in result.ranking[1:]] == ["d0", "d1", "d3"]  # ties keep the first-stage order
    assert all(c.parsed and c.kind == "pair" for c in result.calls)


def test_a_backend_that_drops_a_label_scores_half_and_is_counted(qwen3_tok):
    from rerankers.qwen3_reranker import Qwen3Reranker

    yes = qwen3_tok.convert_tokens_to_ids("yes")
    backend = ScriptedBackend(lambda r: Generation("yes", 1, 1, 0.1, logprobs=[{yes: -0.1}]))
    [result] = Qwen3Reranker({}, backend=backend, tokenizer=qwen3_tok).rerank([_request(2)], RerankContext("t"))
    assert {s for _, s in result.ranking} == {0.5}
    assert all(c.fallback == "score_0.5" and c.unusable for c in result.calls)


# --- Retro* -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, score", [
    ("analysis ... <score> 85 </score>", 85), ("<score>\n72\n</score>", 72), ("<score>7</score> then <score>9</score>", 7),
    ("<score>abc</score>", None), ("no score at all", None), ("<score>120</score>", 120),
])
def test_retro_star_score_parsing(text, score):
    from rerankers.retro_star import parse_score

    assert parse_score(text) == score


def test_retro_star_prompt_and_mean_score_over_samples(qwen3_tok):
    from rerankers.retro_star import RetroStarReranker

    reranker = RetroStarReranker({"samples": 3, "context_length": 2048, "max_tokens": 64}, tokenizer=qwen3_tok)
    relevance = {"query_type": "biology post", "doc_type": "passage", "definition": "DEF"}
    prompt = reranker.pair_prompt("Q?", "D.", {"relevance": relevance})
    assert prompt.startswith("<|im_start|>user\nHere is the **relevance definition** in a retrieval task: DEF\n\n"
                             "Now given a **query** (biology post) and a **document** (passage) in this retrieval")
    assert prompt.endswith("Query (biology post):\n[Begin of Query]\nQ?\n[End of Query]\n\nDocument (passage):\n"
                           "[Begin of Document]\nD.\n[End of Document]\n<|im_end|>\n<|im_start|>assistant\n"
                           "<think>\n\n</think>\n\n")  # enable_thinking=False, as the BRIGHT scripts run it
    answers = {0: "<score>90</score>", 1: "<score>60</score>", 2: "rambling"}

    def respond(request):
        assert request.params.temperature == 0.6 and request.params.top_k == 40
        return answers[request.params.seed - 42] if "number 1" in request.prompt else "<score>10</score>"

    backend = ScriptedBackend(respond)
    [result] = reranker.__class__({"samples": 3, "context_length": 2048, "max_tokens": 64}, backend=backend,
                                  tokenizer=qwen3_tok).rerank([_request(3)], RerankContext("t"))
    assert result.ranking[0] == ("d1", pytest.approx(50.0))  # (90 + 60 + 0) / 3
    top = result.calls[1]
    assert top.requests == 3 and not top.parsed and top.fallback == "score_0" and not top.unusable


# --- setwise ------------------------------------------------------------------------------------------------------

def _run_sort(sort, items, k, num_child, relevance, fail_every=0):
    calls = []

    async def choose(shown):
        calls.append(len(shown))
        if fail_every and len(calls) % fail_every == 0:
            return None
        return max(range(len(shown)), key=lambda j: (relevance[shown[j]], -j))  # ties: the first shown

    return asyncio.run(sort(items, k, num_child, choose)), calls


def test_setwise_heapsort_top_k_equals_brute_force_with_ties():
    from rerankers._setwise import heapsort_top_k

    rng = random.Random(7)
    for _ in range(400):
        n, k, num_child = rng.randint(1, 45), rng.randint(1, 12), rng.randint(1, 9)
        relevance = {i: rng.randint(0, 4) for i in range(n)}  # many ties
        order, calls = _run_sort(heapsort_top_k, list(range(n)), k, num_child, relevance)
        assert sorted(order) == list(range(n))  # a permutation
        brute = sorted(range(n), key=lambda i: -relevance[i])[:k]
        assert [relevance[i] for i in order[:k]] == [relevance[i] for i in brute]  # the top k, in order
        top = set(order[:k])
        assert order[k:] == [i for i in range(n) if i not in top]  # the rest keep the first-stage order
        assert all(2 <= c <= num_child + 1 for c in calls)  # a node with at least one child


def test_setwise_bubblesort_keeps_llm_rankers_early_stop():
    """llm-rankers' bubblesort always finds the top document, but its ``last_start`` bookkeeping can skip the bottom
    of the list in later passes; the driver keeps that behaviour (published runs used it), traced by hand here."""
    from rerankers._setwise import bubblesort_top_k

    rng = random.Random(7)
    for _ in range(400):
        n, k, num_child = rng.randint(1, 45), rng.randint(1, 12), rng.randint(1, 9)
        relevance = {i: rng.randint(0, 4) for i in range(n)}
        order, calls = _run_sort(bubblesort_top_k, list(range(n)), k, num_child, relevance)
        assert sorted(order) == list(range(n)) and relevance[order[0]] == max(relevance.values())
        assert all(2 <= c <= num_child + 1 for c in calls)  # windows of one document are never sent
    # relevance [1, 3, 0, 2], windows of 3, top 2: pass 1 brings doc 1 up; pass 2 starts at the window the first
    # pass changed and never looks at doc 3 again
    order, calls = _run_sort(bubblesort_top_k, [0, 1, 2, 3], 2, 2, {0: 1, 1: 3, 2: 0, 3: 2})
    assert order == [1, 0, 2, 3] and calls == [3, 2, 2]


def test_setwise_heapsort_comparisons_follow_llm_rankers():
    """Hand-traced: 7 docs, 2 children, top 2 (heap build from node 7 // 2 = 3 down to 0, then 2 extractions)."""
    from rerankers._setwise import heapsort_top_k

    relevance = {0: 1, 1: 5, 2: 3, 3: 0, 4: 9, 5: 2, 6: 4}
    order, calls = _run_sort(heapsort_top_k, list(range(7)), 2, 2, relevance)
    assert order[:2] == [4, 1] and order[2:] == [0, 2, 3, 5, 6]
    # node 3 has no children; node 2 (5, 6) -> 6; node 1 (3, 4) -> 4; node 0 (1, 2) -> 4, then 0 sinks to (3, 4)
    # -> 1; extraction 1 swaps 4 out and heapifies 7 - 1 = 6 elements; the 2nd extraction stops
    assert calls == [3, 3, 3, 3, 3, 3]


def test_an_unreadable_comparison_keeps_the_parent():
    from rerankers._setwise import heapsort_top_k

    relevance = {i: i for i in range(5)}
    order, calls = _run_sort(heapsort_top_k, list(range(5)), 5, 4, relevance, fail_every=1)
    assert order == [4, 3, 2, 1, 0][: len(order)] or sorted(order) == list(range(5))
    assert calls  # every comparison was asked, every answer failed, nothing moved up


@pytest.mark.parametrize("completion, size, expected", [
    ("<think> hmm </think> <answer>[3]</answer>", 5, 2), ("<THINK>x</THINK>\n<ANSWER> [1] </ANSWER>", 2, 0),
    ("<think> x </think> <answer>[7]</answer>", 5, None), ("<think> x </think> <answer>3</answer>", 5, None),
    ("<answer>[2]</answer>", 5, None), ("<think> cut off", 5, None), ("<think></think><answer>[0]</answer>", 5, None),
])
def test_rank_r1_answer_parsing(completion, size, expected):
    from rerankers.rank_r1 import parse_choice

    assert parse_choice(completion, size) == expected


def test_rank_r1_prompt_and_shuffled_comparisons(qwen3_tok):
    from rerankers.rank_r1 import RankR1Reranker

    reranker = RankR1Reranker({"num_child": 2, "k": 2}, tokenizer=qwen3_tok)
    prompt = reranker.compare_prompt("q?", ["alpha", "beta"], {})
    assert ('<|im_start|>user\nGiven the query: "q?", which of the following documents is most relevant?\n'
            "[1] alpha\n[2] beta\nAfter completing the reasoning process, please provide only the label of the most "
            "relevant document to the query, enclosed in square brackets, within the answer tags. For example, if "
            "the third document is the most relevant, the answer should be: <think> reasoning process here "
            "</think> <answer>[3]</answer>.<|im_end|>\n<|im_start|>assistant\n") in prompt
    assert prompt.startswith("<|im_start|>system\nA conversation between User and Assistant.")
    orders = {tuple(reranker.shown_order("q1", n, 3)) for n in range(30)}
    assert len(orders) > 1 and reranker.shown_order("q1", 4, 3) == reranker.shown_order("q1", 4, 3)

    def respond(request):  # always pick the document that mentions "number 4", wherever it is shown
        lines = [line for line in request.prompt.splitlines() if line.startswith("[")]
        best = next((i for i, line in enumerate(lines) if "number 4" in line), 0)
        return f"<think> ok </think> <answer>[{best + 1}]</answer>"

    backend = ScriptedBackend(respond)
    [result] = RankR1Reranker({"num_child": 2, "k": 2}, backend=backend, tokenizer=qwen3_tok).rerank(
        [_request(6)], RerankContext("t"))
    assert result.ranking[0][0] == "d4" and [s for _, s in result.ranking] == [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]
    assert all(c.kind == "comparison" and c.parsed for c in result.calls)


# --- listwise: REARANK and RankGPT ---------------------------------------------------------------------------------

def test_rearank_messages_are_the_originals():
    from rerankers.rearank import rearank_messages

    messages = rearank_messages("q?", ["Title: Content: first   passage\n text", "x" * 500])
    assert messages[1]["content"] == (
        "I will provide you with passages, each indicated by number identifier []. Rank the passages based on their "
        "relevance to the search query.Search Query: q?. \nRank the 2 passages above based on their relevance to the "
        "search query.The passages should be listed in descending order using identifiers. The most relevant "
        "passages should be listed first. The output format should be <answer> [] > [] </answer>, e.g., <answer> "
        "[1] > [2] </answer>.")
    assert messages[3] == {"role": "user", "content": "[1] first passage text"}
    assert messages[4] == {"role": "assistant", "content": "Received passage [1]."}
    assert messages[5]["content"] == "[2] " + "x" * 400
    assert messages[-1]["content"].startswith('Please rank these passages according to their relevance to the search '
                                              'query: "q?"\n            Follow these steps exactly:\n')


@pytest.mark.parametrize("response, expected", [
    ("<think>[9] first</think><answer>[2] > [1]</answer>", "[2] > [1]"),
    ("<think>thinking [3]</think> [1] > [2]", " [1] > [2]"), ("[2] > [1]", "[2] > [1]"),
    ("<answer>[1] > [2]", "<answer>[1] > [2]"),
])
def test_rearank_answer_extraction(response, expected):
    from rerankers.rearank import answer_text

    assert answer_text(response) == expected


@pytest.mark.parametrize("response, order, fallback", [
    ("[2] > [3] > [1]", [1, 2, 0], None), ("[2] > [2] > [1]", [1, 0, 2], "permutation_repaired"),
    ("3 > 9 > 1", [2, 0, 1], "permutation_repaired"), ("no idea", [0, 1, 2], "no_ids_window_unchanged"),
    ("[0] > [1]", [0, 1, 2], "permutation_repaired"),
])
def test_rankgpt_digit_parsing(response, order, fallback):
    from rerankers._listwise import digits_permutation

    assert digits_permutation(response, 3) == (order, fallback)


def test_rankgpt_schedule_and_messages():
    from rerankers._listwise import rankgpt_schedule
    from rerankers.rankgpt import rankgpt_messages

    assert rankgpt_schedule(100, 20, 10) == [(80, 100), (70, 90), (60, 80), (50, 70), (40, 60), (30, 50), (20, 40),
                                             (10, 30), (0, 20)]
    assert rankgpt_schedule(25, 20, 10) == [(5, 25)]  # RankGPT never clamps: the top 5 are not shown
    assert rankgpt_schedule(8, 20, 10) == [(0, 8)]
    messages = rankgpt_messages("q", ["a  b\nc", "w " * 400])
    assert messages[0]["content"] == ("You are RankGPT, an intelligent assistant that can rank passages based on "
                                      "their relevancy to the query.")
    assert messages[1]["content"] == ("I will provide you with 2 passages, each indicated by number identifier []. "
                                      "\nRank the passages based on their relevance to query: q.")
    assert messages[3]["content"] == "[1] a b c" and len(messages[5]["content"].split()) == 301  # "[2]" + 300 words
    assert messages[-1]["content"].startswith("Search Query: q. \nRank the 2 passages above")


def test_rankgpt_shrinks_words_until_the_messages_fit(qwen3_tok):
    from rerankers.rankgpt import ANSWER_ROOM, RankGPTReranker, rankgpt_messages

    reranker = RankGPTReranker({"context_size": 900}, tokenizer=qwen3_tok)
    passages = [f"passage {i} " + "lamp light moth " * 60 for i in range(4)]
    prompt = reranker.window_prompt("q", passages, {})
    budget = 900 - ANSWER_ROOM

    def tokens(words):
        text = qwen3_tok.apply_chat_template(rankgpt_messages("q", passages, words), tokenize=False,
                                             add_generation_prompt=True)
        return len(qwen3_tok(text, add_special_tokens=False).input_ids), text

    linear = next(w for w in range(300, -1, -1) if tokens(w)[0] <= budget)  # RankGPT's own loop
    assert prompt == tokens(linear)[1] and linear < 300


# --- fusion -------------------------------------------------------------------------------------------------------

def test_fusion_by_hand():
    from harness.fusion import fuse

    first = [("a", 10.0), ("b", 8.0), ("c", 2.0)]
    reranked = [("c", 0.9), ("b", 0.5), ("a", 0.1)]
    # minmax: reranker c 1, b .5, a 0; first stage a 1, b .75, c 0 -> w = .5: a .5, b .625, c .5 (c keeps its place)
    assert fuse(reranked, first, "minmax", 0.5) == [("b", 0.625), ("c", 0.5), ("a", 0.5)]
    z = fuse(reranked, first, "zscore", 1.0)
    assert [d for d, _ in z] == ["c", "b", "a"]  # w = 1: the reranker alone
    rrf = dict(fuse(reranked, first, "rrf", 0.5))
    assert rrf["b"] == pytest.approx(0.5 / 62 + 0.5 / 62) and rrf["c"] == pytest.approx(0.5 / 61 + 0.5 / 63)
    assert fuse(reranked, first, "none", None) == reranked


def test_fusion_is_part_of_the_identity_and_refused_for_orders(tmp_path):
    code, _, err = _cli("run", "--task", "tiny", "--reranker", "oracle", "--results-dir", tmp_path, "-q")
    assert code == 0, err
    code, _, err = _cli("run", "--task", "tiny", "--reranker", "oracle", "--fuse", "rrf", "--fuse-weight", "0.7",
                        "--results-dir", tmp_path, "-q")
    assert code == 0, err
    records = [load_record(p) for p in tmp_path.glob("*/tiny/record.json")]
    assert len(records) == 2  # a fused run is another experiment
    fused = next(r for r in records if "fusion" in r.experiment)
    assert fused.experiment["fusion"] == {"method": "rrf", "weight": 0.7}
    code, _, err = _cli("run", "--task", "tiny", "--reranker", "rankgpt", "--fuse", "minmax", "--results-dir",
                        tmp_path, "-q")
    assert code != 0 and "outputs an order, not scores" in err and "--fuse rrf" in err
    code, _, err = _cli("run", "--task", "tiny", "--reranker", "oracle", "--fuse-weight", "0.3", "--results-dir",
                        tmp_path, "-q")
    assert code != 0 and "--fuse-weight needs a fusion method" in err


# --- capabilities ---------------------------------------------------------------------------------------------------

def test_a_backend_without_a_capability_fails_at_start_up_naming_one_that_has_it(monkeypatch, tiny_qwen3_dir,
                                                                                tmp_path):
    import fake_vllm

    fake_vllm.install(monkeypatch)
    code, _, err = _cli("run", "--task", "tiny", "--reranker", "cross-encoder", "--model", tiny_qwen3_dir,
                        "--backend", "vllm", "--results-dir", tmp_path, "-q")
    assert code != 0 and "needs score" in err and "--backend hf (sequence-classification head)" in err


def test_the_transformers_server_profile_cannot_serve_label_log_probs(tiny_qwen3_dir, tmp_path):
    from openai_server import ScriptedServer, completion

    with ScriptedServer(lambda body, hit: (200, completion("yes")), owned_by="local") as server:
        code, _, err = _cli("run", "--task", "tiny", "--reranker", "qwen3-reranker", "--model", tiny_qwen3_dir,
                            "--backend", "openai", "--base-url", server.base_url, "--results-dir", tmp_path, "-q")
    assert code != 0 and "needs label_logprobs" in err and "vllm serve" in err


def test_cross_encoder_scores_equal_the_head_and_go_through_vllm_serve_score_api(tiny_cross_encoder_dir, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from harness.backends.hf import HFScoreBackend
    from harness.llm import score_request

    backend = HFScoreBackend(str(tiny_cross_encoder_dir), batch_size=4)
    pairs = [("moths and lamps", f"doc {i} " * (i + 1)) for i in range(6)]

    async def score_all():
        return await asyncio.gather(*(backend.agenerate(score_request(q, d)) for q, d in pairs))
    try:
        scores = [float(g.text) for g in asyncio.run(score_all())]
    finally:
        backend.close()
    tok = AutoTokenizer.from_pretrained(tiny_cross_encoder_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder_dir).eval()
    with torch.inference_mode():
        direct = [float(model(**tok(q, d, return_tensors="pt")).logits[0, 0]) for q, d in pairs]
    assert scores == pytest.approx(direct, abs=1e-5)  # batched with padding = one at a time

    from openai_server import ScriptedServer

    seen = []

    def respond(body, hit):
        seen.append(body)
        return 200, {"data": [{"index": 0, "score": len(body["text_2"]) / 100}], "usage": {"prompt_tokens": 9}}

    with ScriptedServer(respond) as server:
        code, _, err = _cli("run", "--task", "tiny", "--reranker", "cross-encoder", "--model",
                            tiny_cross_encoder_dir, "--backend", "openai", "--base-url", server.base_url,
                            "--served-model", "ms-marco", "--results-dir", tmp_path, "--no-cache", "-q")
    assert code == 0, err
    assert seen and set(seen[0]) == {"model", "text_1", "text_2"} and seen[0]["model"] == "ms-marco"


# --- documentation --------------------------------------------------------------------------------------------------

def test_rerankers_readme_documents_every_registered_reranker():
    text = (ROOT / "rerankers" / "README.md").read_text(encoding="utf-8")
    for name in list(RERANKERS):
        assert f"`{name}`" in text, f"rerankers/README.md does not document {name}"


def test_qwen3_reranker_over_a_vllm_server_reads_token_id_log_probs(tiny_qwen3_dir, qwen3_tok, tmp_path):
    from openai_server import ScriptedServer, completion

    yes, no = qwen3_tok.convert_tokens_to_ids(["yes", "no"])

    def respond(body, hit):
        assert body["max_tokens"] == 1 and sorted(body["allowed_token_ids"]) == sorted([yes, no])
        p = 0.8 if "phototaxis" in body["prompt"].lower() else 0.3
        return 200, completion("yes", top_logprobs=[{f"token_id:{yes}": math.log(p),
                                                     f"token_id:{no}": math.log(1 - p)}])

    with ScriptedServer(respond) as server:
        code, _, err = _cli("run", "--task", "tiny", "--reranker", "qwen3-reranker", "--model", tiny_qwen3_dir,
                            "--backend", "openai", "--base-url", server.base_url, "--results-dir", tmp_path,
                            "--no-cache", "-q")
    assert code == 0, err
    [path] = tmp_path.glob("*/tiny/record.json")
    scores = {float(line.split()[-2]) for line in (path.parent / "run.trec").read_text().splitlines()}
    assert {round(s, 6) for s in scores} == {0.8, 0.3}
