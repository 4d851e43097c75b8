"""vLLM backend against tests/fake_vllm.py (vLLM 0.33's API, no GPU, no vllm here)."""

from __future__ import annotations

import asyncio
import math
import sys

import pytest

import fake_vllm
from harness.backends import build_backend
from harness.errors import HarnessError, MissingExtraError
from harness.llm import GenerationRequest, SamplingParams
from harness.spec import ExecutionSpec


@pytest.fixture
def vllm(monkeypatch):
    return fake_vllm.install(monkeypatch)


def _backend(model="m", **execution):
    backend = build_backend(model, ExecutionSpec(backend="vllm", cache=False, **execution))
    backend.bind_tokenizer(fake_vllm.ByteTokenizer())
    return backend


def _gather(backend, requests):
    async def main():
        return await asyncio.gather(*(backend.agenerate(r) for r in requests))
    return asyncio.run(main())


def test_engine_arguments_and_sampling_mapping(vllm):
    backend = _backend("liuwenhan/reasonrank-7B", tensor_parallel=4, backend_args={"max_model_len": 16000})
    assert vllm.engines == []  # loaded on the first call only: cached reruns never load the weights
    params = SamplingParams(temperature=0.0, max_tokens=3172, stop=("</think> true",), logprobs=20,
                            skip_special_tokens=False)
    [gen] = _gather(backend, [GenerationRequest("prompt text", params, label="q1")])
    [engine] = vllm.engines
    assert engine.args == fake_vllm.AsyncEngineArgs(
        model="liuwenhan/reasonrank-7B", tensor_parallel_size=4, enable_prefix_caching=True,
        gpu_memory_utilization=0.9, disable_log_stats=True, max_model_len=16000, logprobs_mode="processed_logprobs")
    prompt, sent, _ = engine.requests[0]
    assert prompt == {"type": "token", "prompt_token_ids": list(b"prompt text")}  # token ids, not a raw string
    assert engine.deprecations == []
    assert sent == fake_vllm.SamplingParams(
        n=1, temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, max_tokens=3172, min_tokens=0,
        stop=["</think> true"], include_stop_str_in_output=False, logprobs=20, repetition_penalty=1.0, seed=None,
        skip_special_tokens=False, output_kind=fake_vllm.RequestOutputKind.FINAL_ONLY)
    assert engine.outputs_yielded == 1  # FINAL_ONLY: no per-token outputs
    assert gen.text == "echo:prompt text" and gen.input_tokens == len("prompt text") and gen.output_tokens == 4
    assert len(gen.logprobs) == 4 and all(20 <= len(position) <= 21 for position in gen.logprobs)
    desc = backend.describe()
    assert desc["vllm_version"] == "0.33.0" and desc["tensor_parallel_size"] == 4
    assert desc["logprobs_mode"] == "processed_logprobs" and backend.hardware()["tensor_parallel"] == 4
    backend.close()
    assert engine.shut_down


def test_top_k_disabled_is_zero_and_a_set_top_k_passes_through(vllm):
    backend = _backend()
    _gather(backend, [GenerationRequest("a", SamplingParams(temperature=0.7, top_k=-1)),
                      GenerationRequest("b", SamplingParams(temperature=0.7, top_k=20))])
    sent = {prompt["prompt_token_ids"][0]: params.top_k for prompt, params, _ in vllm.engines[0].requests}
    assert sent == {ord("a"): 0, ord("b"): 20}
    backend.close()


def test_forced_choice_returns_both_verdicts_from_the_masked_distribution(vllm):
    """Rank1's forced pass: under raw log-probs the unsampled verdict can fall outside the top 20 (score 0.5)."""
    prompt = "query and passage"
    raw = fake_vllm._log_softmax(fake_vllm._logits(list(prompt.encode())))
    ranked = sorted(range(fake_vllm.VOCAB), key=lambda v: -raw[v])
    near, far = ranked[0], ranked[60]  # `far` is nowhere near the raw top 20
    params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=20, allowed_token_ids=(near, far))

    backend = _backend()
    [gen] = _gather(backend, [GenerationRequest(prompt, params)])
    sent = vllm.engines[0].requests[0][1]
    assert sent.allowed_token_ids == [near, far] and sent.logprob_token_ids == [near, far]
    position = gen.logprobs[0]
    assert set(position) == {near, far}
    assert math.exp(position[near]) + math.exp(position[far]) == pytest.approx(1.0)  # a real probability
    assert 0.0 < math.exp(position[far]) < 1.0
    backend.close()

    # what the harness avoids: the engine's default mode without logprob_token_ids loses the far verdict
    engine = fake_vllm.AsyncLLM(fake_vllm.AsyncEngineArgs(model="m"))
    default = fake_vllm.SamplingParams(temperature=0.0, max_tokens=1, logprobs=20, allowed_token_ids=[near, far],
                                       output_kind=fake_vllm.RequestOutputKind.FINAL_ONLY)

    async def first():
        async for output in engine.generate(fake_vllm.tokens_input(list(prompt.encode())), default, "r"):
            return output
    assert far not in asyncio.run(first()).outputs[0].logprobs[0]


def test_requests_are_submitted_as_they_come(vllm):
    backend = _backend()
    requests = [GenerationRequest(f"p{i}", SamplingParams(max_tokens=2)) for i in range(30)]
    gens = _gather(backend, requests)
    assert [g.text for g in gens] == [f"echo:p{i}" for i in range(30)]
    assert [g.finish_reason for g in gens] == ["length"] * 30
    assert vllm.engines[0].max_active == 30  # all in the engine at once, not one by one
    assert 0.04 < backend.clock.busy_seconds < 0.5 * sum(g.seconds for g in gens)
    assert sum(g.engine_seconds for g in gens) == pytest.approx(backend.clock.busy_seconds, rel=1e-6)
    assert len({rid for _, _, rid in vllm.engines[0].requests}) == 30
    # a second asyncio.run (e.g. the next subset) still reaches the engine on its own loop
    assert _gather(backend, requests[:2])[0].text == "echo:p0"
    backend.close()


def test_a_too_long_prompt_is_a_harness_error_with_the_fix(vllm):
    backend = _backend(backend_args={"max_model_len": 32})
    with pytest.raises(HarnessError, match=r"window 80-100 \(40 prompt tokens\).*longer than the maximum model "
                                           r"length of 32.*--passage-length.*max_model_len"):
        _gather(backend, [GenerationRequest("x" * 40, SamplingParams(), label="query 3, window 80-100")])
    backend.close()


def test_engine_failures_name_the_request_and_the_cause(vllm):
    backend = _backend()
    with pytest.raises(HarnessError, match="vLLM failed on query 7: RuntimeError: CUDA error"):
        _gather(backend, [GenerationRequest("crash", SamplingParams(), label="query 7")])
    with pytest.raises(HarnessError, match="vLLM rejected query 8.*max allowed: 20"):
        _gather(backend, [GenerationRequest("ok", SamplingParams(logprobs=50), label="query 8")])
    backend.close()


def test_a_dead_engine_says_so(vllm, monkeypatch):
    async def dead(self, prompt, sampling_params, request_id, **kwargs):
        raise fake_vllm.EngineDeadError()
        yield  # an async generator, like the real one

    monkeypatch.setattr(fake_vllm.AsyncLLM, "generate", dead)
    backend = _backend()
    with pytest.raises(HarnessError, match="engine died while serving query 1.*rerun to resume"):
        _gather(backend, [GenerationRequest("p", SamplingParams(), label="query 1")])
    backend.close()


def test_invalid_sampling_values_are_rejected_before_reaching_the_engine(vllm):
    backend = _backend()
    with pytest.raises(HarnessError, match="vLLM rejected query 2.*temperature must be in"):
        _gather(backend, [GenerationRequest("p", SamplingParams(temperature=3.0), label="query 2")])
    backend.close()


def test_engine_load_failure_is_a_clear_error(vllm, monkeypatch):
    def boom(cls, args, *rest, **kwargs):
        raise RuntimeError("CUDA out of memory")
    monkeypatch.setattr(fake_vllm.AsyncLLM, "from_engine_args", classmethod(boom))
    backend = _backend("org/model", tensor_parallel=2)
    with pytest.raises(HarnessError, match="could not load 'org/model' on 2 GPU.*out of memory"):
        _gather(backend, [GenerationRequest("p", SamplingParams())])
    backend.close()


def test_older_vllm_without_the_new_fields_gets_what_it_understands(vllm, monkeypatch):
    """Before logprobs_mode / logprob_token_ids / tokens_input existed (e.g. 0.8), top_k=-1 disabled top-k."""
    from dataclasses import make_dataclass, fields

    old_sampling = make_dataclass("SamplingParams", [(f.name, f.type, field_default(f)) for f in
                                                     fields(fake_vllm.SamplingParams)
                                                     if f.name not in ("logprob_token_ids", "top_k")] +
                                  [("top_k", int, -1)])
    old_args = make_dataclass("AsyncEngineArgs", [(f.name, f.type, field_default(f)) for f in
                                                  fields(fake_vllm.AsyncEngineArgs) if f.name != "logprobs_mode"])
    monkeypatch.setattr(vllm, "SamplingParams", old_sampling)
    monkeypatch.setattr(vllm, "AsyncEngineArgs", old_args)
    monkeypatch.delattr(sys.modules["vllm.inputs"], "tokens_input")
    backend = _backend()
    _gather(backend, [GenerationRequest("p", SamplingParams(temperature=0.5, logprobs=2, allowed_token_ids=(1, 2)))])
    prompt, sent, _ = vllm.engines[0].requests[0]
    assert prompt == {"prompt_token_ids": [ord("p")]} and sent.top_k == -1
    assert not hasattr(sent, "logprob_token_ids") and "logprobs_mode" not in backend.engine_args
    backend.close()


def field_default(f):
    from dataclasses import field as make_field

    return make_field(default=f.default)


def test_missing_vllm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(MissingExtraError, match=r"\[vllm\]"):
        build_backend("m", ExecutionSpec(backend="vllm", cache=False))
