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
RERANKERS.register("qwen3-reranker", "rerankers.qwen3_reranker:Qwen3Reranker",
                   "Qwen3-Reranker pointwise (Qwen/Qwen3-Reranker-0.6B/-4B/-8B), P(yes) vs P(no)")
RERANKERS.register("retro-star", "rerankers.retro_star:RetroStarReranker",
                   "Retro* pointwise reasoning with a 0-100 rubric (ljw13/retro-star-*), mean score over samples")
RERANKERS.register("cross-encoder", "rerankers.cross_encoder:CrossEncoderReranker",
                   "any sequence-classification cross-encoder (ms-marco-MiniLM, bge-reranker-v2-m3, ...)")
RERANKERS.register("rank-r1", "rerankers.rank_r1:RankR1Reranker",
                   "Rank-R1 setwise reasoning reranker (ielabgroup/Rank-R1-*-v0.1), heapsort top-k")
RERANKERS.register("rearank", "rerankers.rearank:RearankReranker",
                   "REARANK listwise reasoning reranker (le723z/Rearank-7B), sliding window")
RERANKERS.register("rankgpt", "rerankers.rankgpt:RankGPTReranker",
                   "RankGPT zero-shot listwise prompt for any chat model, sliding window")


def build_reranker(name: str, settings: Mapping[str, Any] | None = None, execution=None) -> Reranker:
    return RERANKERS.get(name)(settings, execution)


def reranker_options(name: str):
    return RERANKERS.get(name).options


__all__ = ["RERANKERS", "Reranker", "RerankContext", "build_reranker", "reranker_options"]
