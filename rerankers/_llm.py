"""Base class of the model-backed rerankers: model id, lazy tokenizer and backend, and time accounting."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from abc import abstractmethod
from typing import Any, Sequence

from harness.backends._busy import BusyClock
from harness.llm import Generation, GenerationRequest
from harness.types import RerankRequest, RerankResult
from rerankers.base import Reranker, RerankContext, RerankerOptions


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
    """Model-backed rerankers: the model id, a lazily loaded tokenizer and a lazily built inference backend.

    Every model call goes through ``generate``, which keeps a busy clock: the wall time during which at least one
    call was in flight. That is what the ReasonRank authors time (Σ wall time of their batched ``generate`` calls);
    the sum of per-call latencies overcounts as soon as calls overlap. ``rerank`` reports it to the runner as
    ``context.info["engine_busy_seconds"]``.
    """

    default_model = ""

    def engine_defaults(self) -> dict[str, Any]:
        """Engine settings of the reference runs (e.g. Rank1's max_model_len), applied unless the user set them."""
        return {}

    def __init__(self, options: RerankerOptions | None = None, *, backend=None, tokenizer=None):
        self.options = options or RerankerOptions()
        self.model = self.options.model or self.default_model
        self.revision = self.options.get("revision")
        self._backend = backend
        self._tokenizer = tokenizer
        self._busy = BusyClock()

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from rerankers._tokenizer import load_tokenizer

            self._tokenizer = load_tokenizer(self.model, self.revision)
        return self._tokenizer

    @property
    def backend(self):
        if self._backend is None:
            from harness.backends import build_backend

            extra = {**self.engine_defaults(), **dict(self.options.extra)}
            self._backend = build_backend(self.model, dataclasses.replace(self.options, extra=tuple(extra.items())))
        return self._backend

    async def generate(self, request: GenerationRequest) -> Generation:
        with self._busy:
            return await self.backend.agenerate(request)

    @abstractmethod
    async def _arerank(self, requests: Sequence[RerankRequest], context: RerankContext) -> list[RerankResult]:
        """Rerank every request; model calls go through ``self.generate``."""

    def rerank(self, requests, context: RerankContext) -> list[RerankResult]:
        self.backend  # build (and load) the engine before the clock starts
        before = self._busy.seconds
        results = run_coroutine(self._arerank(list(requests), context))
        context.info["engine_busy_seconds"] = self._busy.seconds - before
        return results

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
