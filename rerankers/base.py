"""Reranker interface.

A reranker is one file in ``rerankers/`` plus one registry line in ``rerankers/__init__.py``. The registry
entry is a factory ``f(options: RerankerOptions) -> Reranker``.

``rerank`` receives every query of a task at once, so LLM rerankers can schedule model calls across
queries (e.g. let each query advance to its next window as soon as its previous one returns).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from harness.types import Qrels, RerankRequest, RerankResult


@dataclass(frozen=True)
class RerankerOptions:
    """Options common to all rerankers; plugin-specific ones go in ``extra``."""

    model: str | None = None  # HF id or local directory; None -> the reranker's default model
    backend: str | None = None  # "vllm" | "hf" | "openai" | "replay:PATH"; None -> auto
    window_size: int | None = None
    step: int | None = None
    passage_length: int | None = None
    reasoning_budget: int | None = None
    gpus: int = 1
    base_url: str | None = None
    concurrency: int = 64
    cache: bool = True
    cache_dir: str | None = None
    save_traces: str | None = None  # path of a traces JSONL to write
    extra: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.extra).get(key, default)


@dataclass
class RerankContext:
    """What the runner hands a reranker besides the requests."""

    task_name: str  # e.g. "bright/biology"; LLM rerankers pick task-specific prompts/lengths from it
    qrels: Qrels | None = None  # only the oracle may look at judgments
    progress: Callable[[int], None] = lambda n: None  # call with the number of queries just finished
    info: dict[str, Any] = field(default_factory=dict)


class Reranker(ABC):
    name: str = ""

    @abstractmethod
    def rerank(self, requests: Sequence[RerankRequest], context: RerankContext) -> list[RerankResult]:
        """Return one result per request, in the same order; each ranking is a permutation of its candidates."""

    def describe(self) -> dict[str, Any]:
        """Everything that determines the output, for the run record: model, revision, params, prompt hash."""
        return {"name": self.name}

    def close(self) -> None:
        """Release model/engine resources."""

