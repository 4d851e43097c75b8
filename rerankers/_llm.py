"""Base class of the model-backed rerankers: the common model options, a lazy tokenizer and backend.

Every model call goes through ``generate`` → the backend built by ``harness.backends.build_backend`` (metered, so
each call carries its share of engine-busy time; cached; traced). Cost therefore needs no clock here.
"""

from __future__ import annotations

import asyncio
import threading
from abc import abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

from harness.llm import Generation, GenerationRequest
from harness.options import Option, OptionSet
from harness.types import RerankRequest, RerankResult
from rerankers.base import Reranker, RerankContext

MODEL_OPTIONS = OptionSet("reranker", [
    Option("model", str, None, "HF id, local checkpoint directory or embedded model (default: the reranker's)"),
    Option("revision", str, None, "hub revision (commit, branch or tag) of the weights; pins the experiment"),
    Option("tokenizer", str, None, "tokenizer for prompts and truncation (default: the model's own)"),
])


# which backends have each capability (harness.backends.servers profiles; local engines), for start-up errors
_WHO_HAS = {
    "score": "--backend hf (sequence-classification head), or `vllm serve` of the cross-encoder behind --backend "
             "openai",
    "label_logprobs": "--backend hf or vllm, or `vllm serve` / SGLang / llama.cpp behind --backend openai",
    "logprobs": "--backend hf or vllm, or `vllm serve` / SGLang / llama.cpp behind --backend openai",
    "allowed_token_ids": "--backend hf or vllm, or `vllm serve` / SGLang / llama.cpp behind --backend openai",
}


def backends_with(capabilities) -> str:
    if any(c in ("score",) for c in capabilities):
        return _WHO_HAS["score"]
    return next((_WHO_HAS[c] for c in capabilities if c in _WHO_HAS),
                "--backend hf or vllm, or an OpenAI-compatible server whose profile has it (vllm serve, SGLang, "
                "llama.cpp)")


def run_coroutine(coroutine):
    """``asyncio.run`` that also works when the caller is already inside an event loop (runs in a thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, object] = {}

    def target():
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="rerank-loop")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


class LLMReranker(Reranker):
    """Model-backed rerankers: the model id, a lazily loaded tokenizer and a lazily built inference backend."""

    default_model = ""
    needs_model: ClassVar[bool] = True
    # backend capabilities this reranker cannot work without (harness.backends.servers.CAPABILITIES)
    required_capabilities: ClassVar[frozenset[str]] = frozenset({"generate"})
    # what the weights are loaded as: "causal-lm" (generation) or "sequence-classification" (cross-encoders)
    model_head: ClassVar[str] = "causal-lm"
    options: ClassVar[OptionSet] = MODEL_OPTIONS

    def engine_defaults(self) -> dict[str, dict[str, Any]]:
        """Engine settings of the reference runs per backend (e.g. Rank1's max_model_len on vLLM), applied unless
        the user sets them."""
        return {}

    def __init__(self, settings: Mapping[str, Any] | None = None, execution=None, *, backend=None, tokenizer=None):
        super().__init__(settings, execution)
        self.model = self.values.get("model") or self.default_model
        self.revision = self.values.get("revision")
        self._backend = backend
        self._tokenizer = tokenizer

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from harness.models import load_tokenizer

            self._tokenizer = load_tokenizer(self.values.get("tokenizer") or self.model, self.revision)
        return self._tokenizer

    @property
    def backend(self):
        if self._backend is None:
            from harness.backends import build_backend

            backend = build_backend(self.model, self.execution, revision=self.revision,
                                    engine_defaults=self.engine_defaults(), head=self.model_head)
            missing = sorted(self.required_capabilities_now() - backend.capabilities())
            if missing:
                backend.close()
                from harness.errors import HarnessError

                described = backend.describe()
                where = described.get("server_profile") or backend.name
                raise HarnessError(
                    f"Reranker {self.name} needs {', '.join(missing)}, which the {backend.name} backend "
                    f"({where}) cannot provide. Use a backend that has it: {backends_with(missing)}.")
            backend.bind_tokenizer(self.tokenizer)
            self._backend = backend
        return self._backend

    def required_capabilities_now(self) -> frozenset[str]:
        """The capabilities this configuration needs (e.g. sampled decoding needs ``sampling``)."""
        return self.required_capabilities

    async def generate(self, request: GenerationRequest) -> Generation:
        return await self.backend.agenerate(request)

    def prompt_template_hash(self) -> str | None:
        return None

    def identity(self) -> dict[str, Any]:
        from harness.models import model_fingerprint, model_label

        settings = {k: v for k, v in self.values.items() if k not in ("model", "revision")}
        tokenizer = settings.get("tokenizer")
        if tokenizer is not None and model_fingerprint(tokenizer):
            settings["tokenizer"] = {"label": model_label(tokenizer), "fingerprint": model_fingerprint(tokenizer)}
        return {
            "name": self.name,
            "model": model_label(self.model),
            "model_revision": self.revision,
            # a local checkpoint is identified by its content: retraining into the same directory is a new experiment
            "model_fingerprint": model_fingerprint(self.model),
            "prompt_template_hash": self.prompt_template_hash(),
            "settings": settings,
        }

    def execution_info(self) -> dict[str, Any]:
        return dict(self._backend.describe()) if self._backend is not None else {}

    @abstractmethod
    async def _arerank(self, requests: Sequence[RerankRequest], context: RerankContext) -> list[RerankResult]:
        """Rerank every request; model calls go through ``self.generate``."""

    def rerank(self, requests, context: RerankContext) -> list[RerankResult]:
        self.backend  # build (and load) the engine first
        return run_coroutine(self._arerank(list(requests), context))

    def rerank_many(self, batches) -> list[list[RerankResult]]:
        """Several subsets' ``(requests, context)`` in one event loop on one engine, so the engine's batch holds
        every subset's queries at once; ``on_done(index, results)`` of each batch runs as soon as that subset is
        finished. Rankings equal one subset at a time: each query's calls depend only on that query."""
        self.backend

        async def run_all():
            limit = asyncio.Semaphore(max(1, self.execution.concurrency))
            out: list = [None] * len(batches)

            async def one(index, requests, context, on_done):
                context.limit = limit
                results = await self._arerank(list(requests), context)
                out[index] = results
                on_done(index, results)

            await asyncio.gather(*(one(i, *batch) for i, batch in enumerate(batches)))
            return out

        return run_coroutine(run_all())

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
