"""Reranker registry: one file per reranker, one line here."""

from __future__ import annotations

from typing import Any, Mapping

from harness.registry import Registry
from rerankers.base import Reranker, RerankContext

RERANKERS: Registry = Registry("reranker", cli_hint="see `harness ls rerankers`")
RERANKERS.register("none", "rerankers.none:NoReranker", "keep the first-stage order")
RERANKERS.register("oracle", "rerankers.oracle:OracleReranker", "sort candidates by qrels (upper bound, sanity check)")
RERANKERS.register("reasonrank", "rerankers.reasonrank:ReasonRankReranker",
                   "ReasonRank listwise reasoning reranker (liuwenhan/reasonrank-7B/-32B/-8B), sliding window")
RERANKERS.register("rankzephyr", "rerankers.rankzephyr:RankZephyrReranker",
                   "RankZephyr listwise reranker (castorini/rank_zephyr_7b_v1_full), sliding window")
RERANKERS.register("rank1", "rerankers.rank1:Rank1Reranker",
                   "Rank1 pointwise reasoning reranker (jhu-clsp/rank1-*), P(true) from log-probs")


def build_reranker(name: str, settings: Mapping[str, Any] | None = None, execution=None) -> Reranker:
    return RERANKERS.get(name)(settings, execution)


def reranker_options(name: str):
    return RERANKERS.get(name).options


__all__ = ["RERANKERS", "Reranker", "RerankContext", "build_reranker", "reranker_options"]
