"""Plain data types shared by tasks, first stages, rerankers and the runner."""

from __future__ import annotations

from dataclasses import dataclass, field

# A ranked list per query, best first: qid -> [(docid, score), ...]
Run = dict[str, list[tuple[str, float]]]
# Relevance judgments: qid -> {docid: grade}. Negative grades mark excluded documents.
Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Candidate:
    docid: str
    text: str
    score: float


@dataclass(frozen=True)
class RerankRequest:
    """One query to rerank. ``query`` is always the task's original query text."""

    qid: str
    query: str
    candidates: tuple[Candidate, ...]


@dataclass
class CallStats:
    """One model call (a window for listwise rerankers, a pair for pointwise ones)."""

    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    parsed: bool = True
    fallback: str | None = None
    cached: bool = False
    label: str = ""  # e.g. "window 80-100" or "doc <docid>"


@dataclass
class RerankResult:
    qid: str
    ranking: list[tuple[str, float]]  # best first
    calls: list[CallStats] = field(default_factory=list)

    @property
    def input_tokens(self) -> int:
        return sum(c.input_tokens for c in self.calls)

    @property
    def output_tokens(self) -> int:
        return sum(c.output_tokens for c in self.calls)

    @property
    def generation_seconds(self) -> float:
        return sum(c.seconds for c in self.calls)

    @property
    def parse_failures(self) -> int:
        return sum(1 for c in self.calls if not c.parsed)
