"""Traces writer → replay backend round trip, and build_backend's wiring (auto, replay, cache, traces)."""

from __future__ import annotations

import asyncio
import json

import pytest

from harness.backends import build_backend, cache_model_key, resolve_backend_name, resolve_model_revision
from harness.backends.replay import ReplayBackend
from harness.errors import HarnessError
from harness.llm import Backend, Generation, GenerationRequest, SamplingParams
from harness.traces import FULL_LOGPROB_POSITIONS, TracesWriter, load_traces
from harness.llm import find_wrapper
from harness.spec import ExecutionSpec


class ScriptBackend(Backend):
    name = "script"
    model_id = "m"

    def __init__(self, positions: int = 2):
        self.calls = 0
        self.positions = positions

    async def agenerate(self, request):
        self.calls += 1
        logprobs = [{i: -float(i), 1000 + i: -9.0} for i in range(self.positions)]
        return Generation(text=f"reply[{request.prompt}]", input_tokens=len(request.prompt), output_tokens=3,
                          seconds=0.75, finish_reason="stop", logprobs=logprobs)


def _req(prompt, label="", **params):
    return GenerationRequest(prompt, SamplingParams(**params), label=label)


def _gather(backend, requests):
    async def main():
        return await asyncio.gather(*(backend.agenerate(r) for r in requests))
    return asyncio.run(main())


def test_traces_round_trip(tmp_path):
    path = tmp_path / "traces.jsonl"
    writer = TracesWriter(ScriptBackend(), path, model_key="m@r")
    prompts = ["<|im_start|>system\nA<|im_end|>\n", "ünïcode [1] > [2]\n", "third"]
    originals = _gather(writer, [_req(p, label=f"q{i} window 0-20", logprobs=20) for i, p in enumerate(prompts)])
    writer.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    record = json.loads(lines[0])
    assert {"prompt", "response", "params", "input_tokens", "output_tokens", "seconds", "finish_reason",
            "logprobs", "label", "model", "cached"} <= set(record)
    replay = ReplayBackend("m", str(path), revision="r")
    replayed = _gather(replay, [_req(p, logprobs=20) for p in prompts])
    for original, again in zip(originals, replayed):
        assert again.text == original.text and again.logprobs == original.logprobs
        assert (again.input_tokens, again.output_tokens, again.seconds) == (original.input_tokens, 3, 0.75)
        assert again.cached
    assert replay.served == 3


def test_long_generations_keep_last_position_logprobs(tmp_path):
    path = tmp_path / "t.jsonl"
    writer = TracesWriter(ScriptBackend(positions=FULL_LOGPROB_POSITIONS + 50), path)
    [original] = _gather(writer, [_req("p", logprobs=20)])
    writer.close()
    [again] = _gather(ReplayBackend("m", str(path)), [_req("p", logprobs=20)])
    assert len(again.logprobs) == len(original.logprobs)
    assert again.logprobs[-1] == original.logprobs[-1]  # what Rank1 scores from


def test_missing_prompt_names_label_and_file(tmp_path):
    path = tmp_path / "t.jsonl"
    writer = TracesWriter(ScriptBackend(), path)
    _gather(writer, [_req("known")])
    writer.close()
    with pytest.raises(HarnessError) as info:
        _gather(ReplayBackend("m", str(path)), [_req("unknown", label="query q7, window 80-100")])
    assert "query q7, window 80-100" in str(info.value) and str(path) in str(info.value)


def test_interrupted_last_line_is_ignored_but_bad_middle_line_is_an_error(tmp_path):
    path = tmp_path / "t.jsonl"
    good = json.dumps({"prompt": "p", "response": "r"})
    path.write_text(good + "\n" + '{"prompt": "q", "resp', encoding="utf-8")
    with pytest.warns(UserWarning, match="incomplete last line"):
        assert list(load_traces(path)[0]) == ["p"]
    path.write_text('{"prompt": "q", "resp\n' + good + "\n", encoding="utf-8")
    with pytest.raises(HarnessError, match="line 1"):
        load_traces(path)
    with pytest.raises(HarnessError, match="does not exist"):
        load_traces(tmp_path / "nope.jsonl")


def test_build_backend_replay_is_not_cached_and_guards_its_file(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"prompt": "p", "response": "r", "output_tokens": 4}) + "\n", encoding="utf-8")
    backend = build_backend("m", ExecutionSpec(backend=f"replay:{path}", cache_dir=str(tmp_path / "cache")))
    assert find_wrapper(backend, ReplayBackend) is not None
    from harness.cache import CachedBackend

    assert find_wrapper(backend, CachedBackend) is None
    assert _gather(backend, [_req("p")])[0].output_tokens == 4
    assert not (tmp_path / "cache").exists()
    assert backend.checked is False  # minimal traces: matched on the prompt alone
    with pytest.raises(HarnessError, match="erase"):
        build_backend("m", ExecutionSpec(backend=f"replay:{path}", save_traces=str(path)))
    traced = build_backend("m", ExecutionSpec(backend=f"replay:{path}", save_traces=str(tmp_path / "new.jsonl")))
    assert isinstance(traced, TracesWriter)
    _gather(traced, [_req("p")])
    traced.close()
    assert json.loads((tmp_path / "new.jsonl").read_text())["response"] == "r"


def test_backend_names():
    assert resolve_backend_name("replay:/a/b:c.jsonl") == ("replay", "/a/b:c.jsonl")
    assert resolve_backend_name(None)[0] in ("vllm", "hf")
    with pytest.raises(HarnessError, match="replay:PATH"):
        resolve_backend_name("replay")
    with pytest.raises(HarnessError, match="Did you mean 'openai'"):
        resolve_backend_name("opnai")


def test_model_revision(tmp_path):
    model = tmp_path / "ckpt"
    model.mkdir()
    assert resolve_model_revision(str(model)) is None
    (model / "config.json").write_text('{"a": 1}')
    (model / "model.safetensors").write_bytes(b"w" * 100)
    rev = resolve_model_revision(str(model))
    assert rev.startswith("sha256:") and rev == resolve_model_revision(str(model))
    key = cache_model_key(str(model), rev)
    moved = tmp_path / "elsewhere"
    model.rename(moved)
    assert cache_model_key(str(moved), resolve_model_revision(str(moved))) == key
    (moved / "model.safetensors").write_bytes(b"v" * 100)
    assert resolve_model_revision(str(moved)) != rev
    assert resolve_model_revision("org/not-cached-anywhere") is None
    assert resolve_model_revision("served-name") is None


def test_replay_with_other_sampling_parameters_or_model_is_a_clear_error(tmp_path):
    path = tmp_path / "traces.jsonl"
    writer = TracesWriter(ScriptBackend(), path, model_key="m@r")
    _gather(writer, [_req("p", label="query 1, window 0-20", temperature=0.0, max_tokens=3172)])
    writer.close()
    replay = ReplayBackend("m", str(path), revision="r")
    assert _gather(replay, [_req("p", temperature=0.0, max_tokens=3172)])[0].text == "reply[p]"
    with pytest.raises(HarnessError, match=r"max_tokens: traces 3172 ≠ this run 100") as caught:
        _gather(replay, [_req("p", label="query 1, window 0-20", temperature=0.0, max_tokens=100)])
    assert "query 1, window 0-20" in str(caught.value)
    with pytest.raises(HarnessError, match=r"temperature: traces 0.0 ≠ this run 0.6"):
        _gather(replay, [_req("p", temperature=0.6, max_tokens=3172)])
    with pytest.raises(HarnessError, match=r"model: traces 'm@r' ≠ this run 'other@r'"):
        _gather(ReplayBackend("other", str(path), revision="r"), [_req("p", temperature=0.0, max_tokens=3172)])


def test_traces_of_two_concurrent_writers_never_interleave(tmp_path):
    path = tmp_path / "traces.jsonl"
    first = TracesWriter(ScriptBackend(), path, model_key="a")
    second = TracesWriter(ScriptBackend(), path, model_key="b")
    _gather(first, [_req(f"a{i}") for i in range(5)])
    _gather(second, [_req(f"b{i}") for i in range(3)])
    _gather(first, [_req("a-last")])
    second.close()
    first.close()
    models = {json.loads(line)["model"] for line in path.read_text().splitlines()}
    assert models == {"a"} and len(path.read_text().splitlines()) == 6  # one whole run, the last to finish
    assert not list(tmp_path.glob(".traces.jsonl.partial-*"))


def test_malformed_traces_are_clear_errors(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"prompt": "p", "response": "r", "output_tokens": "many"}) + "\n", encoding="utf-8")
    with pytest.raises(HarnessError, match="line 1: 'output_tokens' must be a non-negative integer"):
        load_traces(path)
    path.write_bytes(b'{"prompt": "p", "response": "\xff"}\n')
    with pytest.raises(HarnessError, match="line 1: not UTF-8"):
        load_traces(path)
    path.write_text("\n".join(json.dumps({"prompt": "p", "response": r}) for r in ("a", "b", "a")) + "\n")
    records, quirks = load_traces(path)
    assert records["p"]["response"] == "a"
    assert quirks == {"duplicate_prompts": 2, "conflicting_duplicate_prompts": 1}
