"""vLLM backend against a fake ``vllm`` module injected at the import boundary (no GPU, no vllm here)."""

from __future__ import annotations

import asyncio
import sys
import types
from dataclasses import dataclass

import pytest

from harness.backends import build_backend
from harness.errors import HarnessError, MissingExtraError
from harness.llm import GenerationRequest, SamplingParams
from harness.spec import ExecutionSpec


@dataclass
class FakeLogprob:
    logprob: float
    rank: int = 1


@dataclass
class FakeCompletion:
    text: str
    token_ids: list[int]
    logprobs: list | None
    finish_reason: str = "stop"


@dataclass
class FakeRequestOutput:
    prompt_token_ids: list[int]
    outputs: list[FakeCompletion]
    finished: bool = True


class FakeEngine:
    """Mimics AsyncLLM: its output handler binds to the loop of the first request; later requests must use it."""

    def __init__(self, args):
        self.args = args
        self.loop = None
        self.active = 0
        self.max_active = 0
        self.requests: list[tuple[str, object, str]] = []
        self.shut_down = False

    async def generate(self, prompt, sampling_params, request_id):
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
        assert loop is self.loop, "request submitted from a different event loop than the engine's"
        self.requests.append((prompt, sampling_params, request_id))
        if prompt == "too long":
            raise ValueError("The decoder prompt (length 40000) is longer than the maximum model length")
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            n = sampling_params.kwargs["max_tokens"]
            await asyncio.sleep(0.05)  # every request in flight at once overlaps here: continuous batching
            logprobs = None
            if sampling_params.kwargs["logprobs"] is not None:
                logprobs = [{7: FakeLogprob(-0.25), 8: FakeLogprob(-1.5)} for _ in range(2)]
            yield FakeRequestOutput(list(range(len(prompt))), [FakeCompletion(
                f"echo:{prompt}", list(range(min(n, 4))), logprobs, "length" if n <= 4 else "stop")])
        finally:
            self.active -= 1

    def shutdown(self):
        self.shut_down = True


def _fake_vllm():
    module = types.ModuleType("vllm")
    module.__version__ = "0.0.fake"
    module.engines = []

    class AsyncEngineArgs:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class SamplingParams_:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class AsyncLLMEngine:
        @staticmethod
        def from_engine_args(args):
            engine = FakeEngine(args)
            module.engines.append(engine)
            return engine

    module.AsyncEngineArgs = AsyncEngineArgs
    module.SamplingParams = SamplingParams_
    module.AsyncLLMEngine = AsyncLLMEngine
    return module


@pytest.fixture
def fake_vllm(monkeypatch):
    module = _fake_vllm()
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def _gather(backend, requests):
    async def main():
        return await asyncio.gather(*(backend.agenerate(r) for r in requests))
    return asyncio.run(main())


def test_engine_arguments_and_sampling_mapping(fake_vllm):
    options = ExecutionSpec(backend="vllm", tensor_parallel=4, cache=False, backend_args={"max_model_len": 16000})
    backend = build_backend("liuwenhan/reasonrank-7B", options)
    assert fake_vllm.engines == []  # loaded on the first call only: cached reruns never load the weights
    params = SamplingParams(temperature=0.0, max_tokens=3172, stop=("</think> true",), logprobs=20,
                            allowed_token_ids=(7, 8), skip_special_tokens=False)
    [gen] = _gather(backend, [GenerationRequest("prompt text", params, label="q1")])
    [engine] = fake_vllm.engines
    assert engine.args.kwargs == dict(model="liuwenhan/reasonrank-7B", tensor_parallel_size=4,
                                      enable_prefix_caching=True, gpu_memory_utilization=0.9,
                                      disable_log_stats=True, max_model_len=16000)
    sent = engine.requests[0][1].kwargs
    assert sent == dict(n=1, temperature=0.0, top_p=1.0, top_k=-1, min_p=0.0, max_tokens=3172, min_tokens=0,
                        stop=["</think> true"], include_stop_str_in_output=False, logprobs=20,
                        repetition_penalty=1.0, seed=None, skip_special_tokens=False, allowed_token_ids=[7, 8])
    assert gen.text == "echo:prompt text" and gen.input_tokens == len("prompt text") and gen.output_tokens == 4
    assert gen.logprobs == [{7: -0.25, 8: -1.5}, {7: -0.25, 8: -1.5}] and gen.finish_reason == "stop"
    desc = backend.describe()
    assert desc["vllm_version"] == "0.0.fake" and desc["tensor_parallel_size"] == 4 and backend.hardware()["tensor_parallel"] == 4
    backend.close()
    assert engine.shut_down


def test_requests_are_submitted_as_they_come(fake_vllm):
    backend = build_backend("m", ExecutionSpec(backend="vllm", cache=False))
    requests = [GenerationRequest(f"p{i}", SamplingParams(max_tokens=2)) for i in range(30)]
    gens = _gather(backend, requests)
    assert [g.text for g in gens] == [f"echo:p{i}" for i in range(30)]
    assert [g.finish_reason for g in gens] == ["length"] * 30
    assert fake_vllm.engines[0].max_active == 30  # all in the engine at once, not one by one
    assert 0.04 < backend.clock.busy_seconds < 0.5 * sum(g.seconds for g in gens)
    assert sum(g.engine_seconds for g in gens) == pytest.approx(backend.clock.busy_seconds, rel=1e-6)
    assert len({rid for _, _, rid in fake_vllm.engines[0].requests}) == 30
    # a second asyncio.run (e.g. the next subset) still reaches the engine on its own loop
    assert _gather(backend, requests[:2])[0].text == "echo:p0"
    backend.close()


def test_validation_errors_become_harness_errors(fake_vllm):
    backend = build_backend("m", ExecutionSpec(backend="vllm", cache=False))
    with pytest.raises(HarnessError, match="window 80-100.*--passage-length"):
        _gather(backend, [GenerationRequest("too long", SamplingParams(), label="query 3, window 80-100")])
    backend.close()


def test_engine_load_failure_is_a_clear_error(fake_vllm, monkeypatch):
    def boom(args):
        raise RuntimeError("CUDA out of memory")
    monkeypatch.setattr(fake_vllm.AsyncLLMEngine, "from_engine_args", staticmethod(boom))
    backend = build_backend("org/model", ExecutionSpec(backend="vllm", cache=False, tensor_parallel=2))
    with pytest.raises(HarnessError, match="could not load 'org/model' on 2 GPU.*out of memory"):
        _gather(backend, [GenerationRequest("p", SamplingParams())])
    backend.close()


def test_missing_vllm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(MissingExtraError, match=r"\[vllm\]"):
        build_backend("m", ExecutionSpec(backend="vllm", cache=False))
