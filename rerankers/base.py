"""Reranker interface.

A reranker is one file in ``rerankers/`` plus one registry line in ``rerankers/__init__.py``. The class declares
its options (``options``: an ``harness.options.OptionSet``), which the CLI, ``--reranker-arg`` and config files are
validated against, and is constructed as ``Reranker(settings, execution)`` with the user's settings and the
``harness.spec.ExecutionSpec``.

``resolve(protocol)`` gives every setting as it applies to one subset (e.g. ReasonRank's passage length from the
subset's declared ``passage_tokens``); it is recorded and is part of the experiment identity. ``rerank`` receives
every query of a subset at once, so LLM rerankers can schedule model calls across queries, and the subset's
protocol hints in the context; rerankers never look at task names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

from harness.options import OptionSet
from harness.spec import ExecutionSpec
from harness.types import Qrels, RerankRequest, RerankResult


@dataclass
class RerankContext:
    """What the runner hands a reranker besides the requests."""

    task_name: str  # for messages only
    protocol: Mapping[str, Any] = field(default_factory=dict)  # the subset's declared protocol hints
    qrels: Qrels | None = None  # only the oracle may look at judgments
    progress: Callable[[int], None] = lambda n: None  # call with the number of queries just finished
    info: dict[str, Any] = field(default_factory=dict)  # reranker → runner: quirks, notes
    # queries in flight across every subset of a run that feeds one engine (None: --concurrency for this call)
    limit: Any = None


class Reranker(ABC):
    name: str = ""
    family: str = "baseline"  # listwise | pointwise | setwise | cross-encoder | baseline
    outputs_scores: ClassVar[bool] = True  # False: the output is an order (listwise, setwise), not scores to fuse
    options: ClassVar[OptionSet] = OptionSet("reranker", [])
    needs_model: ClassVar[bool] = False

    def __init__(self, settings: Mapping[str, Any] | None = None, execution: ExecutionSpec | None = None):
        self.settings = type(self).options.validate(dict(settings or {}))
        self.values = type(self).options.resolved(self.settings)
        self.execution = execution or ExecutionSpec()

    def resolve(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        """Every setting that determines the output, as it applies to a subset with these protocol hints."""
        return {k: v for k, v in self.values.items() if v is not None}

    def identity(self) -> dict[str, Any]:
        """The reranker part of the experiment identity: name, model and revision, prompt hash, settings."""
        return {"name": self.name, "model": None, "model_revision": None, "model_fingerprint": None,
                "prompt_template_hash": None, "settings": self.values}

    @abstractmethod
    def rerank(self, requests: Sequence[RerankRequest], context: RerankContext) -> list[RerankResult]:
        """Return one result per request, in the same order; each ranking is a permutation of its candidates."""

    def execution_info(self) -> dict[str, Any]:
        """How the model ran (engine settings, backend, server), for the record's execution part."""
        return {}

    def preview_prompt(self, request: RerankRequest, index: int, protocol: Mapping[str, Any]) -> tuple[str, str]:
        from harness.errors import HarnessError

        raise HarnessError(f"Reranker {self.name!r} sends no prompt to a model.")

    def close(self) -> None:
        """Release model/engine resources."""
