"""OpenAI-compatible backend against a real HTTP server on 127.0.0.1 (scripted answers)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from harness.backends import build_backend
from harness.backends.openai import OpenAIBackend
from harness.errors import HarnessError
from harness.llm import GenerationRequest, SamplingParams
from openai_server import ScriptedServer, completion
from harness.spec import ExecutionSpec


def _backend(url: str, **kw) -> OpenAIBackend:
    kw.setdefault("retry_base_seconds", 0.01)
    return OpenAIBackend("org/model", url, **kw)


def _run(backend, *requests):
    async def main():
        return await asyncio.gather(*(backend.agenerate(r) for r in requests))
    return asyncio.run(main())


def test_completion_request_and_logprob_conversion():
    top = [{"token_id:17": -0.5, "token_id:3": -1.2}, {"token_id:42": -0.01, "token_id:43": -4.6}]
    with ScriptedServer(lambda body, hit: (200, completion("</think> true", 123, 2, "stop", top))) as server:
        backend = _backend(server.base_url, api_key="secret")
        params = SamplingParams(temperature=0.0, max_tokens=8192, logprobs=20, stop=("</think> true", "</think> false"),
                                skip_special_tokens=False, allowed_token_ids=(42, 43))
        [gen] = _run(backend, GenerationRequest("exact prompt <think>", params, label="q1 doc d1"))
    # a server that returns the stop string inside the text (vLLM would not) is cut the way vLLM cuts
    assert gen.text == "" and gen.input_tokens == 123 and gen.output_tokens == 2
    assert gen.logprobs == [{17: -0.5, 3: -1.2}, {42: -0.01, 43: -4.6}]
    assert gen.finish_reason == "stop" and gen.seconds > 0 and not gen.cached
    body = server.bodies[0]
    assert body["prompt"] == "exact prompt <think>" and body["model"] == "org/model"
    assert body["return_tokens_as_token_ids"] is True and body["logprobs"] == 20
    assert body["stop"] == ["</think> true", "</think> false"] and body["allowed_token_ids"] == [42, 43]
    # explicit defaults so the server never applies the checkpoint's generation_config
    assert body["repetition_penalty"] == 1.0 and body["top_k"] == 0 and body["top_p"] == 1.0  # vLLM's "off"
    assert body["temperature"] == 0.0 and body["max_tokens"] == 8192 and body["skip_special_tokens"] is False


def test_text_keyed_logprobs_are_a_clear_error():
    top = [{" true": -0.1}]
    with ScriptedServer(lambda body, hit: (200, completion("x", top_logprobs=top))) as server:
        with pytest.raises(HarnessError, match="keyed by token text"):
            _run(_backend(server.base_url), GenerationRequest("p", SamplingParams(logprobs=5)))


def test_retries_transient_errors_then_succeeds():
    def respond(body, hit):
        if hit <= 2:
            return 503, {"error": "overloaded"}
        if hit == 3:
            return 429, {"error": "slow down"}
        return 200, completion("ok")
    with ScriptedServer(respond) as server:
        backend = _backend(server.base_url)
        [gen] = _run(backend, GenerationRequest("p", SamplingParams()))
    assert gen.text == "ok" and backend.retries == 3 and len(server.bodies) == 4


def test_permanent_error_names_url_and_label():
    with ScriptedServer(lambda body, hit: (400, {"error": "prompt too long"})) as server:
        backend = _backend(server.base_url)
        with pytest.raises(HarnessError) as info:
            _run(backend, GenerationRequest("p", SamplingParams(), label="query 7, window 80-100"))
    message = str(info.value)
    assert server.base_url + "/completions" in message and "query 7, window 80-100" in message
    assert "HTTP 400" in message and len(server.bodies) == 1  # no retry on a client error


def test_unreachable_server_gives_up_with_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    backend = _backend(url, max_retries=2)
    with pytest.raises(HarnessError, match=f"127.0.0.1:{port}/v1/completions.*3 attempts"):
        _run(backend, GenerationRequest("p", SamplingParams()))
    assert backend.retries == 2


def test_concurrency_limit_and_engine_time_shares():
    from harness.backends.metering import MeteredBackend

    with ScriptedServer(lambda body, hit: (200, completion(body["prompt"])), delay=0.15) as server:
        backend = MeteredBackend(_backend(server.base_url, concurrency=3))
        gens = _run(backend, *(GenerationRequest(f"p{i}", SamplingParams()) for i in range(10)))
    assert [g.text for g in gens] == [f"p{i}" for i in range(10)]
    assert server.max_concurrent == 3
    # engine-busy time counts overlapping calls once: 4 rounds of 0.15 s, well below the 10 × 0.15 s latency sum;
    # the calls' shares add up to exactly that busy time
    busy = backend.clock.busy_seconds
    assert 0.55 < busy < 0.8 * sum(g.seconds for g in gens)
    assert sum(g.engine_seconds for g in gens) == pytest.approx(busy, rel=1e-6)
    assert all(g.hardware["accelerator"] == "remote" for g in gens)


def test_client_survives_several_event_loops():
    with ScriptedServer(lambda body, hit: (200, completion("ok"))) as server:
        backend = _backend(server.base_url)
        for _ in range(2):  # a reranker may call asyncio.run once per subset
            assert _run(backend, GenerationRequest("p", SamplingParams()))[0].text == "ok"
        backend.close()


def test_build_backend_openai_with_cache(tmp_path):
    with ScriptedServer(lambda body, hit: (200, completion("ok"))) as server:
        options = ExecutionSpec(backend="openai", base_url=server.base_url, cache_dir=str(tmp_path))
        backend = build_backend("org/model", options)
        first, = _run(backend, GenerationRequest("p", SamplingParams()))
        second, = _run(backend, GenerationRequest("p", SamplingParams()))
        backend.close()
    assert not first.cached and second.cached and len(server.bodies) == 1
    assert second.engine_seconds == first.engine_seconds > 0  # a cache hit keeps the original engine time
    assert backend.retries == 0  # wrappers expose the wrapped backend's attributes
    assert backend.hardware()["accelerator"] == "remote"


def test_missing_base_url():
    with pytest.raises(HarnessError, match="--base-url"):
        build_backend("org/model", ExecutionSpec(backend="openai", cache=False))


def test_strict_hosted_api_mode_sends_only_standard_fields_and_refuses_what_needs_extensions():
    greedy = SamplingParams(temperature=0.0, max_tokens=3172)
    with ScriptedServer(lambda body, hit: (200, completion("<think>x</think> <answer>[1]</answer>"))) as server:
        backend = _backend(server.base_url, server_extensions=False)
        [gen] = _run(backend, GenerationRequest("prompt", greedy, label="query 1, window 0-20"))
    body = server.bodies[0]
    assert gen.text.startswith("<think>")
    assert set(body) == {"model", "prompt", "max_tokens", "temperature", "top_p", "n", "stream"}
    rank1_like = SamplingParams(max_tokens=8192, logprobs=20, stop=("</think> true",), skip_special_tokens=False)
    with pytest.raises(HarnessError, match="query 1, doc d1 needs token-id log-probs, skip_special_tokens, which a strict-openai server"):
        _run(_backend("http://127.0.0.1:9", server_extensions=False),
             GenerationRequest("p", rank1_like, label="query 1, doc d1"))
    from harness.backends.openai import create

    options = ExecutionSpec(base_url="http://127.0.0.1:9/v1")
    assert create("org/model", None, options, {"server_extensions": False}).server_extensions is False
