"""ReasonRank / RankZephyr / Rank1 with scripted fake backends: window schedule, positional scores, per-query
pipelining (equal to lock-step), call records, Rank1 scoring and fallbacks; plus one end-to-end CLI run."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re

import pytest

from harness.llm import Backend, Generation, GenerationRequest
from harness.types import Candidate, RerankRequest
from harness.spec import ExecutionSpec
from rerankers import RerankContext
from rerankers._listwise import apply_permutation, window_schedule
from rerankers.rank1 import Rank1Reranker
from rerankers.rankzephyr import RankZephyrReranker, build_prompt as zephyr_prompt, num_output_tokens
from rerankers.reasonrank import ReasonRankReranker, resolve_prompt_mode


class ScriptedBackend(Backend):
    """Answers with ``respond(request)`` (a text or a Generation) after an optional per-request delay."""

    name = "scripted"
    model_id = "scripted"

    def __init__(self, respond, delay=lambda request: 0.0):
        self.respond = respond
        self.delay = delay
        self.requests: list[GenerationRequest] = []
        self.events: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def agenerate(self, request):
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.events.append(("start", request.label))
        await asyncio.sleep(self.delay(request))
        self.in_flight -= 1
        self.events.append(("end", request.label))
        out = self.respond(request)
        if isinstance(out, Generation):
            return out
        return Generation(text=out, input_tokens=7, output_tokens=3, seconds=0.25)


_LINE = re.compile(r"^\[(\d+)\] doc(\d+) rel=(\d+)$", re.MULTILINE)


def oracle_answer(request: GenerationRequest) -> str:
    """Ranks the window's passages by the relevance written in their text."""
    lines = _LINE.findall(request.prompt)
    best = sorted(lines, key=lambda m: -int(m[2]))
    return "<think>easy</think> <answer>" + " > ".join(f"[{m[0]}]" for m in best) + "</answer>"


def make_request(qid: str, n: int, seed: int) -> RerankRequest:
    rng = random.Random(seed)
    rels = rng.sample(range(1000), n)
    scores = [round(100 - i * 0.5, 2) for i in range(n)]
    return RerankRequest(qid, f"query {qid}", tuple(Candidate(f"d{i}", f"doc{i} rel={rels[i]}", scores[i])
                                                   for i in range(n)))


BIOLOGY = {"passage_tokens": 512, "domain": "StackExchange"}


def _aops():
    from tasks import declared_subset

    return declared_subset("bright/aops")[1].protocol


AOPS = _aops()


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from harness.models import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


# -- schedule and permutation ----------------------------------------------------------------------------------

def test_window_schedule_table_of_the_spec():
    assert window_schedule(100) == [(80, 100), (70, 90), (60, 80), (50, 70), (40, 60), (30, 50), (20, 40),
                                    (10, 30), (0, 20)]
    w95 = window_schedule(95)
    assert len(w95) == 9 and w95[0] == (75, 95) and w95[1] == (65, 85) and w95[-2:] == [(5, 25), (0, 15)]
    w98 = window_schedule(98)
    assert len(w98) == 9 and w98[0] == (78, 98) and w98[-2:] == [(8, 28), (0, 18)]
    for n in (1, 7, 20):
        assert window_schedule(n) == [(0, n)]
    assert window_schedule(0) == []
    w10 = window_schedule(100, 10, 5)
    assert len(w10) == 19 and w10[:2] == [(90, 100), (85, 95)] and w10[-1] == (0, 10)
    assert window_schedule(25) == [(5, 25), (0, 15)]


def test_apply_permutation_keeps_scores_at_positions():
    cands = [Candidate(f"d{i}", "", s) for i, s in enumerate([9.0, 8.0, 8.0, 7.0])]
    apply_permutation(cands, (1, 4), [2, 0, 1])
    assert [(c.docid, c.score) for c in cands] == [("d0", 9.0), ("d3", 8.0), ("d1", 8.0), ("d2", 7.0)]


# -- ReasonRank with a scripted backend ------------------------------------------------------------------------

def test_sliding_window_bubbles_the_best_up_with_positional_scores(tok):
    backend = ScriptedBackend(oracle_answer)
    reranker = ReasonRankReranker({"model": "any/model"}, backend=backend, tokenizer=tok)
    request = make_request("q", 100, seed=1)
    finished = []
    [result] = reranker.rerank([request], RerankContext("bright/biology", BIOLOGY, progress=finished.append))
    assert finished == [1]
    assert sorted(d for d, _ in result.ranking) == sorted(c.docid for c in request.candidates)
    assert [s for _, s in result.ranking] == [c.score for c in request.candidates]
    rel = {c.docid: int(c.text.split("=")[1]) for c in request.candidates}
    top10 = [d for d, _ in result.ranking[:10]]
    assert top10 == sorted(rel, key=lambda d: -rel[d])[:10]
    assert [c.label for c in result.calls] == [f"window {s}-{e}" for s, e in window_schedule(100)]
    assert all(c.parsed and c.fallback is None and c.input_tokens == 7 and c.output_tokens == 3
               for c in result.calls)
    assert sum(c.seconds for c in result.calls) == pytest.approx(9 * 0.25)
    assert result.generation_seconds is None  # an unmetered engine reports no engine time: unknown, never 0
    params = backend.requests[0].params
    assert (params.temperature, params.max_tokens, params.min_tokens, params.stop) == (0.0, 3172, 0, ())
    assert backend.requests[0].label == "query q, window 80-100"


def _lockstep(requests, respond, reranker):
    """The authors' order: window position k for every query, then k+1."""
    lists = {r.qid: list(r.candidates) for r in requests}
    schedules = {r.qid: window_schedule(len(r.candidates), reranker.window_size, reranker.step) for r in requests}
    for k in range(max(len(s) for s in schedules.values())):
        for r in requests:
            if k < len(schedules[r.qid]):
                start, end = schedules[r.qid][k]
                settings = reranker.resolve(BIOLOGY)
                prompt = reranker.window_prompt(r.query, [c.text for c in lists[r.qid][start:end]], settings)
                text = respond(GenerationRequest(prompt, reranker.sampling_params(end - start, settings)))
                order, _, _ = reranker.read_answer(Generation(text, 0, 0, 0.0), end - start)
                apply_permutation(lists[r.qid], (start, end), order)
    return {q: [(c.docid, c.score) for c in cands] for q, cands in lists.items()}


def test_pipelined_results_equal_lockstep_order(tok):
    def noisy(request):  # deterministic in the prompt, sometimes malformed
        digest = sum(request.prompt.encode()) % 7
        return oracle_answer(request) if digest else "<think>cut off at [3] and [1]"

    rng = random.Random(3)
    requests = [make_request(f"q{i}", n, seed=i) for i, n in enumerate([100, 95, 98, 20, 7, 1, 0, 33])]
    reranker = ReasonRankReranker(
        {"window_size": 10, "step": 5}, ExecutionSpec(concurrency=3),
        backend=ScriptedBackend(noisy, delay=lambda r: rng.random() * 0.002), tokenizer=tok)
    results = reranker.rerank(requests, RerankContext("bright/x", BIOLOGY))
    assert [r.qid for r in results] == [r.qid for r in requests]
    assert {r.qid: r.ranking for r in results} == _lockstep(requests, noisy, reranker)
    assert reranker.backend.max_in_flight <= 3
    fallbacks = {c.fallback for r in results for c in r.calls}
    assert "whole_response" in fallbacks


def test_each_query_advances_as_soon_as_its_previous_window_returns(tok):
    backend = ScriptedBackend(oracle_answer, delay=lambda r: 0.2 if r.label.startswith("query slow") else 0.001)
    reranker = ReasonRankReranker({}, ExecutionSpec(concurrency=8), backend=backend, tokenizer=tok)
    reranker.rerank([make_request("slow", 40, 1), make_request("fast", 100, 2)], RerankContext("bright/x", BIOLOGY))
    first_slow_end = backend.events.index(("end", "query slow, window 20-40"))
    fast_ends = [i for i, (kind, label) in enumerate(backend.events) if kind == "end" and "fast" in label]
    assert len(fast_ends) == 9 and max(fast_ends) < first_slow_end


def test_prompt_mode_resolution_uses_only_the_table_or_the_option():
    assert resolve_prompt_mode("liuwenhan/reasonrank-8B", None)[0] == "rank_GPT_qwen3"
    assert resolve_prompt_mode("liuwenhan/reasonrank-32B", None)[0] == "rank_GPT_reasoning"
    assert resolve_prompt_mode("/ckpt/my-reasonrank-8B-qwen3", None) == (
        "rank_GPT_reasoning", "default (model id not in the known-model table)")
    assert resolve_prompt_mode("/ckpt/x", "rank_GPT_qwen3") == ("rank_GPT_qwen3", "option")
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="prompt mode"):
        resolve_prompt_mode("x", "rank_GPT_nope")


def test_qwen3_sampling_and_resolved_settings(tok):
    options = {"model": "liuwenhan/reasonrank-8B", "reasoning_budget": 500, "window_size": 10, "step": 5}
    reranker = ReasonRankReranker(options, backend=ScriptedBackend(oracle_answer), tokenizer=tok)
    p = reranker.sampling_params(10, {})
    assert (p.temperature, p.top_p, p.top_k, p.min_p, p.max_tokens) == (0.6, 0.95, 20, 0.0, 600)
    d = reranker.resolve(BIOLOGY)
    assert d["prompt_mode"] == "rank_GPT_qwen3" and d["prompt_mode_source"] == "known model id"
    assert (d["window_size"], d["step"], d["reasoning_budget"], d["max_tokens"]) == (10, 5, 500, 600)
    identity = reranker.identity()
    assert identity["prompt_template_hash"].startswith("sha256:") and identity["model"] == "liuwenhan/reasonrank-8B"
    # the passage length comes from the dataset's declaration, never from its name
    assert reranker.resolve({"passage_tokens": 100})["passage_length"] == 100
    assert reranker.resolve({})["passage_length"] == 512 and d["passage_length"] == 512


def test_bad_options_are_user_errors():
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="option 'step' must be ≥ 1; got 0"):
        ReasonRankReranker({"step": 0})
    with pytest.raises(HarnessError, match="no option 'windw_size'. Did you mean 'window_size'"):
        ReasonRankReranker({"windw_size": 3})
    with pytest.raises(HarnessError, match="no option 'window_size'"):
        Rank1Reranker({"window_size": 3})


# -- RankZephyr ---------------------------------------------------------------------------------------------------

def test_rankzephyr_context_shrinking_with_the_tiny_tokenizer(tok):
    passages = [" ".join(f"w{i}x{j}" for j in range(400)) for i in range(5)]
    reserve = num_output_tokens(tok, 5)
    assert reserve == len(tok.encode("[1] > [2] > [3] > [4] > [5]", add_special_tokens=False))
    prompt, n_tokens, words = zephyr_prompt(tok, "q", passages, max_words=300, context_size=1500)
    assert n_tokens <= 1500 - reserve and words < 300
    assert n_tokens == len(tok.encode(prompt))
    assert f"[1] {' '.join(f'w0x{j}' for j in range(words))}\n" in prompt
    unshrunk, _, words_big = zephyr_prompt(tok, "q", passages, max_words=300, context_size=100000)
    assert words_big == 300 and "w0x299\n" in unshrunk and "w0x300" not in unshrunk


def test_rankzephyr_reranker_decoding_and_parsing(tok):
    def answer(request):
        return "[2] > [1] > [2] > [①]"

    backend = ScriptedBackend(answer)
    reranker = RankZephyrReranker({}, backend=backend, tokenizer=tok)
    request = RerankRequest("q", "query", tuple(Candidate(f"d{i}", f"text {i}", 3.0 - i) for i in range(3)))
    [result] = reranker.rerank([request], RerankContext("bright/x", BIOLOGY))
    assert result.ranking == [("d1", 3.0), ("d0", 2.0), ("d2", 1.0)]
    params = backend.requests[0].params
    assert params.min_tokens == params.max_tokens == num_output_tokens(tok, 3) and params.temperature == 0.0
    # a repaired answer (duplicates, missing ids) is a parse failure, not a clean parse
    assert result.calls[0].fallback == "permutation_repaired" and not result.calls[0].parsed
    assert reranker.resolve({})["passage_length"] == 300
    capped = RankZephyrReranker({"max_tokens": 5}, backend=backend, tokenizer=tok)
    capped.rerank([request], RerankContext("bright/x", BIOLOGY))
    assert backend.requests[-1].params.min_tokens == backend.requests[-1].params.max_tokens == 5
    assert capped.resolve({})["max_tokens"] == 5 and reranker.resolve({})["max_tokens"] == "num_output_tokens(window)"


# -- Rank1 --------------------------------------------------------------------------------------------------------

def test_rank1_scores_fix_pass_and_fallback(tok):
    true_id, false_id = tok.convert_tokens_to_ids([" true", " false"])

    def lp(p_true, p_false):
        return {true_id: math.log(p_true), false_id: math.log(p_false), 7: math.log(0.01)}

    def respond(request):
        prompt = request.prompt
        if "(fix pass)" in request.label:
            assert request.params.max_tokens == 1 and request.params.allowed_token_ids == (true_id, false_id)
            if "doc B" in prompt:
                return Generation(" false", 50, 1, 0.1, logprobs=[lp(0.3, 0.7)])
            return Generation("", 50, 1, 0.1, logprobs=[{7: -0.1}])  # doc C: ids missing again
        assert prompt.endswith("<think>") and request.params.stop == ("</think> true", "</think> false")
        assert request.params.logprobs == 20 and not request.params.skip_special_tokens
        if "doc A" in prompt:
            return Generation("It fits.\n", 40, 12, 0.5, logprobs=[{5: -1.0}, lp(0.8, 0.2)])
        return Generation("It is about cats. Then the dog wa", 40, 8192, 2.0, finish_reason="length",
                          logprobs=[{5: -1.0}, {6: -0.5}])

    backend = ScriptedBackend(respond)
    reranker = Rank1Reranker({}, backend=backend, tokenizer=tok)
    request = RerankRequest("q1", "Why?", tuple(Candidate(d, f"doc {d}", 0.0) for d in "BCA"))
    [result] = reranker.rerank([request], RerankContext("bright/aops", AOPS))
    assert [d for d, _ in result.ranking] == ["A", "C", "B"]
    scores = dict(result.ranking)
    assert scores["A"] == pytest.approx(0.8) and scores["B"] == pytest.approx(0.3) and scores["C"] == 0.5
    by_label = {c.label: c for c in result.calls}
    assert by_label["doc A"].fallback is None and by_label["doc A"].parsed
    assert by_label["doc B"].fallback == "fix_pass" and not by_label["doc B"].parsed
    assert by_label["doc C"].fallback == "score_0.5"
    assert by_label["doc B"].input_tokens == 90 and by_label["doc B"].output_tokens == 8193
    fix = next(r for r in backend.requests if r.label == "query q1, doc B (fix pass)")
    first = next(r for r in backend.requests if r.label == "query q1, doc B")
    assert fix.prompt == first.prompt + "\nIt is about cats.\n</think>"
    assert "Find different but similar math problems to Why?" in first.prompt


# -- end to end -------------------------------------------------------------------------------------------------

def test_end_to_end_reasonrank_hf_on_tiny(tiny_model_dir, tmp_path):
    from harness.cli import main
    from harness.records import iter_records

    def cli(*args, code=0):
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        assert exc.value.code == code

    # a random model never writes a parsable answer: the run completes, is flagged degenerate and exits 1
    cli("run", "--task", "tiny", "--reranker", "reasonrank", "--backend", "hf", "--model", str(tiny_model_dir),
        "--results-dir", str(tmp_path / "rr"), "--reasoning-budget", "32", "-q", code=1)
    [(directory, record)] = [(d, r) for d, r in iter_records(tmp_path / "rr") if r.kind == "subset"]
    assert record.execution.backend == "hf" and record.reranker.settings["prompt_mode"] == "rank_GPT_reasoning"
    assert record.reranker.prompt_template_hash.startswith("sha256:")
    counts = record.counts
    assert counts.queries == 5 and counts.model_calls == 5 and counts.parse_failures == 5 and counts.windows == 5
    assert sum(counts.fallbacks.values()) == 5 and set(counts.fallbacks) <= {"whole_response", "last_answer_tag",
                                                                           "no_ids_window_unchanged"}
    assert counts.unusable_answers == counts.fallbacks.get("no_ids_window_unchanged", 0)
    assert counts.degenerate  # every window fell back: a random model cannot rank
    [cost] = record.costs
    assert cost.output_tokens > 0 and cost.input_tokens > 0 and cost.generation_seconds > 0
    from harness.trec import read_run

    cli("run", "--task", "tiny", "--reranker", "none", "--results-dir", str(tmp_path / "none"), "-q")
    [(none_dir, _)] = [(d, r) for d, r in iter_records(tmp_path / "none") if r.kind == "subset"]
    first, _ = read_run(none_dir / "run.trec")
    reranked, _ = read_run(directory / "run.trec")
    assert reranked.keys() == first.keys()
    for qid, ranking in reranked.items():  # a permutation of the first stage's candidates
        assert sorted(d for d, _ in ranking) == sorted(d for d, _ in first[qid])
    rows = [json.loads(line) for line in (directory / "per_query.jsonl").read_text().splitlines()]
    assert all(r["model_calls"] == 1 for r in rows if r["in_run"])


def test_preview_prompt_counts_windows_in_processing_order(tok):
    reranker = ReasonRankReranker({}, backend=ScriptedBackend(oracle_answer), tokenizer=tok)
    request = make_request("q", 100, seed=4)
    label, prompt = reranker.preview_prompt(request, 0, BIOLOGY)
    assert label == "window 80-100" and f"[1] {request.candidates[80].text}\n" in prompt
    assert reranker.preview_prompt(request, 8, BIOLOGY)[0] == "window 0-20"
    zephyr = RankZephyrReranker({"window_size": 10, "step": 5}, backend=None, tokenizer=tok)
    assert zephyr.preview_prompt(request, 1, BIOLOGY)[0] == "window 85-95"


def test_engine_time_shares_do_not_double_count_overlapping_calls(tok):
    """Four queries in flight at once, one 0.2 s window each: the engine was busy ≈0.2 s, not 4 × 0.2 s."""
    from harness.backends.metering import MeteredBackend

    backend = MeteredBackend(ScriptedBackend(oracle_answer, delay=lambda request: 0.2))
    reranker = ReasonRankReranker({}, ExecutionSpec(concurrency=8), backend=backend, tokenizer=tok)
    results = reranker.rerank([make_request(f"q{i}", 5, seed=i) for i in range(4)], RerankContext("b", BIOLOGY))
    engine = sum(r.generation_seconds for r in results)
    assert 0.19 <= engine < 0.6 and engine == pytest.approx(backend.clock.busy_seconds, rel=1e-6)
    assert sum(c.seconds for r in results for c in r.calls) == pytest.approx(4 * 0.25)  # latencies as reported


def test_reference_engine_settings_reach_the_backend_unless_overridden(tok, monkeypatch):
    import harness.backends

    seen = {}

    def fake_build_backend(model, execution, revision=None, engine_defaults=None, head="causal-lm"):
        seen[model] = harness.backends.engine_settings("vllm", engine_defaults, dict(execution.backend_args))
        seen[model + ":hf"] = harness.backends.engine_settings("hf", engine_defaults, {})
        return ScriptedBackend(lambda r: "")

    monkeypatch.setattr(harness.backends, "build_backend", fake_build_backend)
    Rank1Reranker({"model": "m1"}, tokenizer=tok).backend
    assert seen["m1"] == {"max_model_len": 16000, "dtype": "float16", "trust_remote_code": True}
    assert seen["m1:hf"] == {}  # the vLLM reference settings never reach another engine (no fp16 on a CPU)
    Rank1Reranker({"model": "m2"}, ExecutionSpec(backend_args={"dtype": "bfloat16"}), tokenizer=tok).backend
    assert seen["m2"]["dtype"] == "bfloat16"
    RankZephyrReranker({"model": "m3"}, tokenizer=tok).backend
    assert seen["m3"]["trust_remote_code"] is True and seen["m3"]["max_model_len"] > 4096
    ReasonRankReranker({"model": "m4"}, tokenizer=tok).backend
    assert seen["m4"] == {}  # the authors pass neither dtype nor max_model_len
