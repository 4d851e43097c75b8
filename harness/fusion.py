"""Score fusion with the first stage, a protocol setting (``--fuse``, ``--fuse-weight``) recorded in the identity.

Several published BRIGHT rows interpolate the reranker with the first stage (ERank: z-scores, Rank-R1-v0.2:
min-max, JudgeRank and ReasonIR's reranker: weighted sums). Per query, over its reranked candidates:

* ``minmax``: ``w · mm(reranker) + (1 − w) · mm(first stage)``, ``mm(x) = (x − min) / (max − min)`` (0 when all equal);
* ``zscore``: the same with ``(x − mean) / population std`` (0 when the std is 0);
* ``rrf``: ``w / (60 + rank_reranker) + (1 − w) / (60 + rank_first_stage)`` (ranks from 1; k = 60 as in Cormack et
  al.), the only choice for listwise and setwise rerankers, whose output is an order, not scores.

Equal fused scores keep the reranker's order. ``w`` (default 0.5) has no published default across papers.
"""

from __future__ import annotations

import math
from typing import Sequence

from harness.errors import HarnessError

METHODS = ("none", "minmax", "zscore", "rrf")
RRF_K = 60
DEFAULT_WEIGHT = 0.5


def check(method: str, weight: float | None, outputs_scores: bool, reranker: str) -> None:
    if method not in METHODS:
        raise HarnessError(f"--fuse {method!r} is not a fusion method; choose one of {', '.join(METHODS)}.")
    if weight is not None and not 0.0 <= float(weight) <= 1.0:
        raise HarnessError(f"--fuse-weight must be between 0 and 1 (got {weight!r}).")
    if method == "none" and weight is not None:
        raise HarnessError("--fuse-weight needs a fusion method: add --fuse minmax, zscore or rrf.")
    if method in ("minmax", "zscore") and not outputs_scores:
        raise HarnessError(f"Reranker {reranker!r} outputs an order, not scores (its scores are positions or the "
                           f"first stage's, moved); --fuse {method} would fuse meaningless numbers. Use --fuse rrf.")


def _minmax(values: Sequence[float]) -> list[float]:
    low, high = min(values), max(values)
    return [0.0 if high == low else (v - low) / (high - low) for v in values]


def _zscore(values: Sequence[float]) -> list[float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return [0.0 if std == 0 else (v - mean) / std for v in values]


def fuse(ranking: Sequence[tuple[str, float]], first_stage: Sequence[tuple[str, float]], method: str,
         weight: float | None) -> list[tuple[str, float]]:
    """The reranked list re-sorted by the fused score; ``first_stage`` holds the same docids in first-stage order."""
    if method == "none" or not ranking:
        return list(ranking)
    w = DEFAULT_WEIGHT if weight is None else float(weight)
    docids = [d for d, _ in ranking]
    first = {d: s for d, s in first_stage}
    if method == "rrf":
        first_rank = {d: i + 1 for i, (d, _) in enumerate(first_stage)}
        fused = [w / (RRF_K + i + 1) + (1 - w) / (RRF_K + first_rank[d]) for i, d in enumerate(docids)]
    else:
        normal = _minmax if method == "minmax" else _zscore
        reranked = normal([s for _, s in ranking])
        original = normal([first[d] for d in docids])
        fused = [w * r + (1 - w) * f for r, f in zip(reranked, original)]
    order = sorted(range(len(docids)), key=lambda i: (-fused[i], i))
    return [(docids[i], fused[i]) for i in order]
