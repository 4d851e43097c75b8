"""Inference backend interface shared by the LLM rerankers and training data synthesis.

Rerankers build the exact prompt string themselves (chat template applied with the model's own tokenizer)
and hand it to a backend as a ``GenerationRequest``. Backends are registered in ``harness/backends/__init__.py``
("vllm", "hf", "openai", "replay"). Every backend exposes ``agenerate`` (async, one request) so that
rerankers can run each query's windows sequentially while many queries are in flight at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = -1  # -1: disabled
    min_p: float = 0.0
    max_tokens: int = 256
    min_tokens: int = 0
    stop: tuple[str, ...] = ()
    include_stop_str_in_output: bool = False
    logprobs: int | None = None  # top-n log-probs at each generated position
    allowed_token_ids: tuple[int, ...] | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None
    skip_special_tokens: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str  # the exact text sent to the model
    params: SamplingParams
    label: str = ""  # for errors and traces, e.g. "query 12, window 80-100"
    # "generate": a completion of ``prompt``. "score": a sequence-classification (cross-encoder) score of the pair
    # ``score_pair(prompt)`` = [query, document], answered as ``Generation.text = repr(score)`` so caching, traces
    # and replay treat it like any other call (backends with the ``score`` capability).
    kind: str = "generate"


def score_request(query: str, document: str, label: str = "") -> GenerationRequest:
    """A cross-encoder call: the pair travels as a JSON array in the prompt field."""
    import json

    return GenerationRequest(json.dumps([query, document], ensure_ascii=False), SamplingParams(max_tokens=1),
                             label=label, kind="score")


def score_pair(request: GenerationRequest) -> tuple[str, str]:
    import json

    query, document = json.loads(request.prompt)
    return str(query), str(document)


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    seconds: float  # wall time of the original call; cache hits and replays carry the original seconds (cached=True)
    finish_reason: str = "stop"  # "stop" | "length"
    # top log-probs at each generated position: list over positions of {token_id: logprob}; None if not asked
    logprobs: list[dict[int, float]] | None = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # This call's share of the engine's busy time (see harness.backends.metering), measured when the call was made;
    # cache hits and replays keep the original. None: unknown (e.g. traces written without timing).
    engine_seconds: float | None = None
    hardware: dict[str, Any] | None = None  # harness.schema.Hardware of the original call, as a dict


class Backend(ABC):
    """One model behind one engine. ``model_id``/``revision`` identify the weights for caching and records."""

    name: str = ""
    model_id: str = ""
    revision: str | None = None

    @abstractmethod
    async def agenerate(self, request: GenerationRequest) -> Generation:
        """Generate one completion. Many calls may be awaited concurrently."""

    def describe(self) -> dict[str, Any]:
        """Engine settings for the record's execution part (device, dtype, …); no machine paths."""
        return {}

    def hardware(self) -> dict[str, Any]:
        """Where this backend's calls run, as a ``harness.schema.Hardware`` dict."""
        return {"backend": self.name, "accelerator": "cpu", "count": 0, "tensor_parallel": 1, "data_parallel": 1}

    def capabilities(self) -> frozenset[str]:
        """What this backend can do (``harness.backends.servers.CAPABILITIES``): local generative engines can do
        everything except ``score`` (a sequence-classification head)."""
        from harness.backends.servers import CAPABILITIES

        return frozenset(CAPABILITIES) - {"score"}

    def bind_tokenizer(self, tokenizer) -> None:
        """The reranker's tokenizer, for backends that need to map token text to ids (no-op by default)."""

    def cache_identity(self) -> str:
        """What identifies this backend's answers in the model-call cache besides prompt and parameters: the
        weights for local engines (overridden by remote backends, whose answers depend on the server)."""
        from harness.models import cache_model_key

        return cache_model_key(self.model_id, self.revision)

    def close(self) -> None:
        pass


class BackendWrapper(Backend):
    """A backend that adds behaviour around another one (cache, traces) and otherwise looks like it."""

    def __init__(self, inner: Backend):
        self.inner = inner
        self.name = inner.name
        self.model_id = inner.model_id
        self.revision = inner.revision

    def __getattr__(self, name: str) -> Any:
        # only called for attributes the wrapper lacks: expose the wrapped backend's (retries, ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def hardware(self) -> dict[str, Any]:
        return self.inner.hardware()

    def capabilities(self) -> frozenset[str]:
        return self.inner.capabilities()

    def bind_tokenizer(self, tokenizer) -> None:
        self.inner.bind_tokenizer(tokenizer)

    def cache_identity(self) -> str:
        return self.inner.cache_identity()

    def close(self) -> None:
        self.inner.close()


def find_wrapper(backend: Backend | None, kind: type) -> Backend | None:
    """The wrapper (or engine) of type ``kind`` in a chain of BackendWrappers, or None."""
    while backend is not None:
        if isinstance(backend, kind):
            return backend
        backend = backend.__dict__.get("inner")
    return None
