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
    """One unit of reranker work (a window for listwise rerankers, a pair for pointwise ones, a comparison for
    setwise ones) and the model requests it took (a Rank1 pair with its fix pass is two)."""

    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0  # Σ latencies of its requests
    parsed: bool = True
    fallback: str | None = None
    cached: bool = False  # every request was served from the cache or a traces file
    label: str = ""  # e.g. "window 80-100" or "doc <docid>"
    kind: str = "window"  # window | pair | comparison | batch
    requests: int = 1
    cached_requests: int = 0
    engine_seconds: float | None = 0.0  # Σ engine-time shares of its requests; None when one is unknown
    hardware: dict | None = None  # where its (first) request ran
    unusable: bool = False  # the model's answer decided nothing (e.g. no valid id: the window kept its order)

    @classmethod
    def of(cls, generations, label: str, kind: str, parsed: bool = True, fallback: str | None = None,
           input_tokens: int | None = None) -> "CallStats":
        """Stats of the requests ``generations`` (harness.llm.Generation) that made one unit of work."""
        generations = list(generations)
        engine = [g.engine_seconds for g in generations]
        return cls(
            input_tokens=sum(g.input_tokens for g in generations) if input_tokens is None else input_tokens,
            output_tokens=sum(g.output_tokens for g in generations),
            seconds=sum(g.seconds for g in generations),
            parsed=parsed, fallback=fallback, cached=all(g.cached for g in generations), label=label, kind=kind,
            requests=len(generations), cached_requests=sum(1 for g in generations if g.cached),
            engine_seconds=None if any(e is None for e in engine) else sum(engine),
            hardware=next((g.hardware for g in generations if g.hardware), None),
        )


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
    def generation_seconds(self) -> float | None:
        """Σ engine-time shares of the query's requests (None when one is unknown)."""
        values = [c.engine_seconds for c in self.calls]
        return None if any(v is None for v in values) else sum(values)

    @property
    def requests(self) -> int:
        return sum(c.requests for c in self.calls)

    @property
    def parse_failures(self) -> int:
        return sum(1 for c in self.calls if not c.parsed)
