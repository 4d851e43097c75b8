"""What a benchmark declares about itself: subsets, display names, default first stage, how the average is computed,
and the protocol hints rerankers read.

Each task family declares one ``BenchmarkInfo`` in its own file (``tasks/bright.py`` …); the runner, the rerankers,
``harness verify`` and the site read these declarations and never look at a task's name. Unknowns are stated as
None (e.g. the expected query count of a local directory).

Protocol hints (``SubsetInfo.protocol``), read by rerankers through ``RerankContext.protocol``:

* ``passage_tokens`` (int): ReasonRank's passage truncation for the dataset (its ``DOC_MAXLEN`` table: 512 for
  BRIGHT, R2MED and the math training sets, 100 for TREC DL and the named BEIR sets). Absent: 512.
* ``rank1_prompt`` (str): Rank1's dataset prompt, with ``FILL_QUERY_HERE`` where the query goes
  (orionw/rank1 ``prompts.py``). Absent: the raw query.
* ``instruction`` (str): a retrieval instruction for instruction-following rerankers (Qwen3-Reranker); absent: the
  model's generic default.
* ``domain`` (str): the subset's domain group, e.g. "StackExchange", "coding", "theorem-based", "medical".
* ``relevance`` (dict): Retro*'s ``query_type``, ``doc_type`` and relevance ``definition`` for the subset
  (VectorSpaceLab/agentic-search ``reranker_prompts.py``); absent: its generic definition.

A reranker's identity records what it makes of these hints (its resolved settings per subset), so declaring a hint
for one model never changes another model's experiments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

PROTOCOL_KEYS = ("passage_tokens", "rank1_prompt", "instruction", "domain", "relevance")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    unknown = set(mapping or {}) - set(PROTOCOL_KEYS)
    if unknown:
        raise ValueError(f"unknown protocol hint(s) {sorted(unknown)}; declared hints: {PROTOCOL_KEYS}")
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class SubsetInfo:
    name: str  # canonical key, e.g. "earth_science", "Medical-Sciences"
    title: str = ""  # display name, e.g. "Earth Science"
    short: str = ""  # column header, e.g. "Earth"
    queries: int | None = None  # expected number of queries in the pinned version (None: unknown)
    protocol: Mapping[str, Any] = field(default_factory=dict)
    published_run_key: str | None = None  # key of the subset in published first-stage runs (e.g. "r2med_Biology")

    def __post_init__(self):
        object.__setattr__(self, "protocol", _frozen(self.protocol))
        if not self.title:
            object.__setattr__(self, "title", self.name)
        if not self.short:
            object.__setattr__(self, "short", self.title)


@dataclass(frozen=True)
class BenchmarkInfo:
    name: str  # "bright"
    title: str  # "BRIGHT"
    description: str = ""
    subsets: tuple[SubsetInfo, ...] = ()  # official subsets, in published column order (empty: an open set)
    variants: tuple[SubsetInfo, ...] = ()  # other valid subsets, never part of the average (e.g. BRIGHT -long)
    default_first_stage: str | None = None
    average: str | None = "mean"  # "mean": unweighted mean over `subsets`; None: no benchmark average
    board: bool = True  # shown on the leaderboard by default (the smoke fixture is not)
    board_order: int = 100
    source: str = ""  # citation / URL
    loadable: bool = True  # False: declaration only (run a local copy with `--task DIR --as NAME/SUBSET`)

    def subset(self, name: str) -> SubsetInfo | None:
        for info in self.subsets + self.variants:
            if info.name == name:
                return info
        return None

    @property
    def subset_names(self) -> list[str]:
        return [s.name for s in self.subsets]


GENERIC = SubsetInfo(name="", title="", protocol={})
