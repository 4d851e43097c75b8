"""The vLLM conformance check: tests/fake_vllm.py and the harness's vLLM calls against the real package.

Runs when the real ``vllm`` is importable. It needs no GPU: the modules compared import on a CPU machine. Without a
full vLLM install, the wheel and the small packages its modules import can be put on a side path, e.g.::

    pip install --no-deps --target /tmp/vllmpkg vllm==0.33.0 msgspec cbor2 pyzmq aiohttp multidict attrs yarl \\
        propcache aiohappyeyeballs aiosignal frozenlist openai-harmony pillow pybase64 cachetools uvloop \\
        py-cpuinfo prometheus_client xgrammar apache-tvm-ffi partial_json_parser llguidance
    PYTHONPATH=/tmp/vllmpkg .venv/bin/python -m pytest tests/test_vllm_conformance.py
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import importlib.util
import inspect

import pytest

import fake_vllm

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None,
    reason="the real vllm package is not importable (see this file's docstring for a CPU-only side install)")

class _Required:
    def __repr__(self):
        return "<required>"


_MISSING = _Required()


def _fields(cls) -> dict[str, object]:
    """name → default (``_MISSING`` when required) of a dataclass or msgspec.Struct."""
    if dataclasses.is_dataclass(cls):
        out = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
            else:
                out[f.name] = _MISSING
        return out
    names = tuple(cls.__struct_fields__)
    defaults = tuple(cls.__struct_defaults__)
    required = len(names) - len(defaults)
    return {name: (_MISSING if i < required else defaults[i - required]) for i, name in enumerate(names)}


def _comparable(value):
    if isinstance(value, enum.Enum):
        return (type(value).__name__, value.name)
    return value


def _signature(func) -> list[tuple[str, str, object]]:
    params = inspect.signature(func).parameters.values()
    return [(p.name, p.kind.name, _comparable(p.default) if p.default is not inspect.Parameter.empty else _MISSING)
            for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]


def _bases(cls) -> list[str]:
    return [c.__name__ for c in cls.__mro__ if c not in (object, BaseException)]


def mismatches() -> list[str]:
    """Everything in the fake that differs from the installed vLLM, as readable lines (empty: conforms)."""
    found: list[str] = []
    real = importlib.import_module("vllm")
    for module_name, names in fake_vllm._LAYOUT.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            found.append(f"{module_name}: not importable ({exc})")
            continue
        for name in names:
            if not hasattr(module, name):
                found.append(f"{module_name}.{name}: missing")
    for name in fake_vllm._TOP_LEVEL + ["AsyncLLMEngine"]:
        if not hasattr(real, name):
            found.append(f"vllm.{name}: missing")
    if getattr(real, "AsyncLLMEngine", None) is not importlib.import_module("vllm.v1.engine.async_llm").AsyncLLM:
        found.append("vllm.AsyncLLMEngine is not vllm.v1.engine.async_llm.AsyncLLM")

    def mod(name):
        return importlib.import_module(name)

    for fake_cls, real_cls in [
        (fake_vllm.SamplingParams, mod("vllm.sampling_params").SamplingParams),
        (fake_vllm.AsyncEngineArgs, mod("vllm.engine.arg_utils").AsyncEngineArgs),
        (fake_vllm.Logprob, mod("vllm.logprobs").Logprob),
        (fake_vllm.CompletionOutput, mod("vllm.outputs").CompletionOutput),
    ]:
        real_fields = _fields(real_cls)
        for name, default in _fields(fake_cls).items():
            if name not in real_fields:
                found.append(f"{real_cls.__name__}.{name}: no such field")
            elif _comparable(real_fields[name]) != _comparable(default):
                found.append(f"{real_cls.__name__}.{name}: default {real_fields[name]!r}, fake has {default!r}")

    real_kind = mod("vllm.sampling_params").RequestOutputKind
    if {m.name: m.value for m in real_kind} != {m.name: m.value for m in fake_vllm.RequestOutputKind}:
        found.append(f"RequestOutputKind: {[m.name for m in real_kind]}")
    real_usage = {m.name for m in mod("vllm.usage.usage_lib").UsageContext}
    if not {m.name for m in fake_vllm.UsageContext} <= real_usage:
        found.append(f"UsageContext: {sorted(real_usage)}")

    real_llm = mod("vllm.v1.engine.async_llm").AsyncLLM
    for method in ("generate", "from_engine_args"):
        fake_sig = _signature(getattr(fake_vllm.AsyncLLM, method))
        real_sig = _signature(getattr(real_llm, method))
        if [(n, k) for n, k, _ in fake_sig] != [(n, k) for n, k, _ in real_sig]:
            found.append(f"AsyncLLM.{method}: real {real_sig}, fake {fake_sig}")
        else:
            for (name, _, real_default), (_, _, fake_default) in zip(real_sig, fake_sig):
                if real_default != fake_default:
                    found.append(f"AsyncLLM.{method}({name}=...): default {real_default!r}, fake {fake_default!r}")
    if not inspect.isasyncgenfunction(real_llm.generate):
        found.append("AsyncLLM.generate is no longer an async generator")
    real_output = _signature(mod("vllm.outputs").RequestOutput.__init__)
    fake_output = _signature(fake_vllm.RequestOutput.__init__)
    if [n for n, _, _ in real_output[:len(fake_output)]] != [n for n, _, _ in fake_output]:
        found.append(f"RequestOutput.__init__: real {[n for n, _, _ in real_output]}")

    inputs = mod("vllm.inputs")
    if _signature(inputs.tokens_input) != _signature(fake_vllm.tokens_input):
        found.append(f"tokens_input: real {_signature(inputs.tokens_input)}")
    for name in ("TokensPrompt", "TokensInput"):
        real_keys = getattr(getattr(inputs, name), "__annotations__", {})
        for key in getattr(fake_vllm, name).__annotations__:
            if key not in real_keys and key not in getattr(getattr(inputs, name), "__optional_keys__", ()):
                found.append(f"{name}: no key {key!r}")

    for module_name, names in [("vllm.exceptions", ["VLLMError", "VLLMClientError", "VLLMServerError",
                                                    "VLLMValidationError"]),
                               ("vllm.v1.engine.exceptions", ["EngineGenerateError", "EngineDeadError"])]:
        for name in names:
            real_exc, fake_exc = getattr(mod(module_name), name), getattr(fake_vllm, name)
            if _bases(real_exc) != _bases(fake_exc):
                found.append(f"{name}: bases {_bases(real_exc)}, fake {_bases(fake_exc)}")
            if _signature(real_exc.__init__) != _signature(fake_exc.__init__):
                found.append(f"{name}.__init__: real {_signature(real_exc.__init__)}")
    return found


def test_the_fake_follows_the_installed_vllm():
    found = mismatches()
    assert found == [], "tests/fake_vllm.py differs from the installed vLLM:\n" + "\n".join(found)


def test_the_backend_requests_are_valid_for_the_installed_vllm(tiny_model_dir):
    """The harness's own mapping, built against the real classes: their validation accepts every request shape."""
    vllm = importlib.import_module("vllm")
    from harness.backends.vllm import LOGPROBS_MODE, _API, sampling_params
    from harness.llm import SamplingParams

    api = _API(vllm)
    assert api.final_only is importlib.import_module("vllm.sampling_params").RequestOutputKind.FINAL_ONLY
    assert api.tokens_input is importlib.import_module("vllm.inputs").tokens_input
    assert api.dead_error is not None and api.generate_error is not None
    assert "logprobs_mode" in api.engine_fields and "logprob_token_ids" in api.sampling_fields
    assert api.disabled_top_k == 0
    for params in [SamplingParams(temperature=0.0, max_tokens=3172, stop=("</think> true",), logprobs=20,
                                  skip_special_tokens=False),
                   SamplingParams(temperature=0.0, max_tokens=1, logprobs=20, allowed_token_ids=(1, 2),
                                  skip_special_tokens=False),
                   SamplingParams(temperature=0.6, top_p=0.95, top_k=20, min_tokens=5, seed=3),
                   SamplingParams(temperature=0.7, top_k=-1)]:
        real = sampling_params(api, params)
        assert real.output_kind is api.final_only and real.top_k == (params.top_k if params.top_k > 0 else 0)
        if params.allowed_token_ids:
            assert real.logprob_token_ids == list(params.allowed_token_ids)
    args = vllm.AsyncEngineArgs(model=str(tiny_model_dir), tensor_parallel_size=2, enable_prefix_caching=True, disable_log_stats=True,
                                gpu_memory_utilization=0.9, logprobs_mode=LOGPROBS_MODE, max_model_len=16000)
    assert args.logprobs_mode == "processed_logprobs"
    assert api.prompt([1, 2, 3]) == {"type": "token", "prompt_token_ids": [1, 2, 3]}
    with pytest.raises(importlib.import_module("vllm.exceptions").VLLMValidationError):
        sampling_params(api, SamplingParams(temperature=3.0))
