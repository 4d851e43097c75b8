"""The hf backend for real on the tiny random Qwen2 model: chat template, token counts, stop strings, log-probs,
allowed tokens, explicit decoding (no generation_config leaks), and Rank1 scoring through it."""

from __future__ import annotations

import asyncio
import json
import math
import shutil

import pytest

from harness.llm import GenerationRequest, SamplingParams


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    from harness.backends.hf import create

    b = create(str(tiny_model_dir), None, None, {})
    yield b
    b.close()


@pytest.fixture(scope="module")
def prompt(backend):
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Rank [1] and [2], please."}]
    text = backend.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nRank [1] and [2], please.<|im_end|>\n" \
                   "<|im_start|>assistant\n"
    return text


def run(backend, prompt, **params):
    return backend.generate(GenerationRequest(prompt, SamplingParams(**params)))


def test_greedy_token_counts_and_length_finish(backend, prompt):
    g = run(backend, prompt, max_tokens=12)
    assert g.input_tokens == len(backend.tokenizer.encode(prompt))
    assert (g.output_tokens, g.finish_reason) == (12, "length")
    assert g.seconds > 0 and g.logprobs is None
    assert run(backend, prompt, max_tokens=12).text == g.text  # greedy is repeatable


def test_checkpoint_generation_config_does_not_leak(tiny_model_dir, tmp_path, backend, prompt):
    from harness.backends.hf import create

    leaky = tmp_path / "leaky"
    shutil.copytree(tiny_model_dir, leaky)
    config = json.loads((leaky / "generation_config.json").read_text())
    config.update({"do_sample": True, "temperature": 5.0, "top_k": 3, "repetition_penalty": 9.0,
                   "no_repeat_ngram_size": 1, "max_new_tokens": 2})
    (leaky / "generation_config.json").write_text(json.dumps(config))
    other = create(str(leaky), None, None, {})
    try:
        assert run(other, prompt, max_tokens=15).text == run(backend, prompt, max_tokens=15).text
    finally:
        other.close()


def test_stop_strings_cut_text_and_count_the_completing_token(backend, prompt):
    free = run(backend, prompt, max_tokens=40, temperature=1.0, seed=7)
    assert len(free.text) > 10
    stop = free.text[8:11]
    before = free.text[: free.text.find(stop)]
    g = run(backend, prompt, max_tokens=40, temperature=1.0, seed=7, stop=(stop, "\x00never"))
    assert (g.text, g.finish_reason) == (before, "stop")
    assert g.output_tokens < free.output_tokens
    # generation stopped at the token that completed the stop string, and that token is counted
    ids = g.extra["token_ids"]
    assert len(ids) == g.output_tokens and ids == free.extra["token_ids"][: len(ids)]
    assert stop in backend.tokenizer.decode(ids) and stop not in backend.tokenizer.decode(ids[:-1])
    kept = run(backend, prompt, max_tokens=40, temperature=1.0, seed=7, stop=(stop,), include_stop_str_in_output=True)
    assert kept.text == before + stop


def test_min_tokens_and_top_logprobs(backend, prompt):
    g = run(backend, prompt, max_tokens=6, min_tokens=6, logprobs=5)
    assert g.output_tokens == 6 and len(g.logprobs) == 6
    ids = g.extra["token_ids"]
    for position, token_id in zip(g.logprobs, ids):
        assert 5 <= len(position) <= 6 and all(v <= 0 for v in position.values())
        assert max(position, key=position.get) == token_id  # greedy picks the top entry


def test_allowed_token_ids(backend, prompt):
    true_id, false_id = backend.tokenizer.convert_tokens_to_ids([" true", " false"])
    g = run(backend, prompt, max_tokens=1, logprobs=20, allowed_token_ids=(true_id, false_id),
            skip_special_tokens=False)
    assert g.text in (" true", " false") and g.output_tokens == 1
    assert set(g.logprobs[0]) == {true_id, false_id}
    assert math.exp(g.logprobs[0][true_id]) + math.exp(g.logprobs[0][false_id]) == pytest.approx(1.0, abs=1e-5)


def test_concurrent_agenerate_is_serialised_and_equal_to_sequential(backend, prompt):
    requests = [GenerationRequest(prompt + str(i), SamplingParams(max_tokens=5)) for i in range(3)]

    async def all_at_once():
        return await asyncio.gather(*(backend.agenerate(r) for r in requests))

    together = asyncio.run(all_at_once())
    assert [g.text for g in together] == [backend.generate(r).text for r in requests]


def test_rank1_through_the_hf_backend_scores_from_real_logits(tiny_model_dir, backend):
    """With 4 reasoning tokens no verdict is reached: the fix pass forces one token, and the score equals the
    2-way softmax of the model's logits for ' true' / ' false' after the fix prompt."""
    import torch

    from harness.types import Candidate, RerankRequest
    from rerankers import RerankContext
    from rerankers.rank1 import Rank1Reranker, fix_prompt

    reranker = Rank1Reranker({"model": str(tiny_model_dir), "max_tokens": 4}, backend=backend)
    request = RerankRequest("q", "Why do moths fly to lamps?",
                            (Candidate("a", "Moths navigate by the moon.", 1.0), Candidate("b", "Bananas.", 0.5)))
    [result] = reranker.rerank([request], RerankContext("tiny/tiny"))
    tok = backend.tokenizer
    true_id, false_id = tok.convert_tokens_to_ids([" true", " false"])
    for docid, score in result.ranking:
        call = next(c for c in result.calls if c.label == f"doc {docid}")
        assert call.fallback == "fix_pass" and call.output_tokens == 4 + 1
        text = next(c.text for c in request.candidates if c.docid == docid)
        first_prompt = reranker.pair_prompt(request.query, text, {})
        reasoning = backend.generate(GenerationRequest(first_prompt, reranker.sampling_params())).text
        ids = tok(fix_prompt(first_prompt, reasoning), return_tensors="pt").input_ids
        with torch.no_grad():
            logits = backend.model(ids).logits[0, -1]
        expected = torch.softmax(logits[[true_id, false_id]].double(), dim=0)[0].item()
        assert score == pytest.approx(expected, rel=1e-4)


def test_missing_models_are_user_errors(tmp_path):
    from harness.backends.hf import create
    from harness.errors import HarnessError
    from harness.models import load_tokenizer

    with pytest.raises(HarnessError, match="hf download no-such-org/no-such-model"):
        load_tokenizer("no-such-org/no-such-model")
    with pytest.raises(HarnessError, match="directory does not exist"):
        load_tokenizer(str(tmp_path / "missing"))
    with pytest.raises(HarnessError, match="model \\(hf backend\\)"):
        create("no-such-org/no-such-model", None, None, {})
