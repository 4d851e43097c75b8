"""Significance of differences between leaderboard rows, from per-query metrics.

Procedure (stated on every board page, see ``METHOD``):

* **Paired randomization test** (sign-flip permutation test). Two rows are compared on the queries they share, subset
  by subset. The statistic is the board's own average: the unweighted mean over subsets of the per-subset mean
  difference, i.e. Σ w_i d_i with d_i the per-query difference and w_i = 1 / (subsets × queries of i's subset).
  Under the null hypothesis the two systems are exchangeable on each query, so each d_i's sign is flipped at random.
  Two-sided p-value = share of sign vectors whose |statistic| ≥ the observed one: exact enumeration when
  2^n ≤ ``n_resamples``, otherwise ``n_resamples`` seeded random sign vectors with the (count + 1) / (R + 1)
  estimate (never exactly 0).
* **Bootstrap confidence interval** of an average: queries are resampled with replacement within each subset
  (stratified), the board average is recomputed per resample; the percentile interval is reported.
* **Holm–Bonferroni** correction over the comparisons made against one group leader.
* **Rank groups**: rows sorted by average, best first. The best row not yet grouped leads a new group; it is compared
  with every other ungrouped row; the p-values of that family are Holm-adjusted; rows with adjusted p ≥ α join the
  leader's group. Repeat until every row is grouped. Rows in one group are not significantly worse than its leader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

ALPHA = 0.05
N_RESAMPLES = 10_000
SEED = 0
_CHUNK = 2_000  # sign vectors per matrix product; bounds memory to CHUNK × n floats

METHOD = (
    "Paired two-sided randomization test (sign flips of per-query nDCG@10 differences, {n:,} seeded resamples, "
    "exact enumeration for small query sets) on the board average (mean over subsets of per-subset means); "
    "Holm–Bonferroni correction over each group leader's comparisons at α = {alpha}. A rank group holds the rows "
    "not significantly worse than its leader. 95% confidence intervals: percentile bootstrap over queries, "
    "resampled within each subset ({n:,} resamples)."
)


def method_text(alpha: float = ALPHA, n_resamples: int = N_RESAMPLES) -> str:
    return METHOD.format(n=n_resamples, alpha=alpha)


# Per-query values of one row: subset -> {qid: value}
PerQuery = Mapping[str, Mapping[str, float]]


def paired_randomization_test(a: Sequence[float], b: Sequence[float], *, weights: Sequence[float] | None = None,
                              n_resamples: int = N_RESAMPLES, seed: int = SEED) -> float:
    """Two-sided p-value for "a and b have the same (weighted) mean", pairing a[i] with b[i]."""
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diffs.ndim != 1:
        raise ValueError("paired_randomization_test expects one value per query")
    n = diffs.size
    if n == 0:
        return 1.0
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != diffs.shape:
        raise ValueError("weights must have one value per query")
    wd = w * diffs
    observed = abs(float(wd.sum()))
    tol = 1e-12 * max(1.0, float(np.abs(wd).sum()))  # float noise must not decide ties
    if n <= 30 and 2 ** n <= n_resamples:
        signs = _all_sign_vectors(n)
        stats = np.abs(signs @ wd)
        return float(np.mean(stats >= observed - tol))
    rng = np.random.default_rng(seed)
    hits = 0
    done = 0
    while done < n_resamples:
        size = min(_CHUNK, n_resamples - done)
        signs = rng.integers(0, 2, size=(size, n), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ wd) >= observed - tol))
        done += size
    return (hits + 1) / (n_resamples + 1)


def _all_sign_vectors(n: int) -> np.ndarray:
    codes = np.arange(2 ** n, dtype=np.int64)[:, None]
    bits = (codes >> np.arange(n, dtype=np.int64)) & 1
    return (bits * 2 - 1).astype(float)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (monotone, capped at 1), in the input order."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, (m - rank) * p[idx])
        adjusted[idx] = min(1.0, running)
    return adjusted.tolist()


def _aligned(a: PerQuery, b: PerQuery, subsets: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values of a and b on their shared queries of ``subsets``, with weights giving the board average."""
    xs, ys, ws = [], [], []
    for subset in subsets:
        qa, qb = a.get(subset, {}), b.get(subset, {})
        shared = sorted(set(qa) & set(qb))
        if not shared:
            continue
        xs.extend(qa[q] for q in shared)
        ys.extend(qb[q] for q in shared)
        ws.extend([1.0 / len(shared)] * len(shared))
    w = np.asarray(ws, dtype=float)
    present = sum(1 for s in subsets if set(a.get(s, {})) & set(b.get(s, {})))
    if present:
        w /= present
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), w


def compare_rows(a: PerQuery, b: PerQuery, subsets: Sequence[str], *, n_resamples: int = N_RESAMPLES,
                 seed: int = SEED) -> float:
    """p-value of the paired test between two rows on the board average over ``subsets``."""
    x, y, w = _aligned(a, b, subsets)
    return paired_randomization_test(x, y, weights=w, n_resamples=n_resamples, seed=seed)


def bootstrap_ci(per_subset: Sequence[Sequence[float]], *, confidence: float = 0.95,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Percentile CI of the unweighted mean over subsets of per-subset means, resampling queries within subsets."""
    groups = [np.asarray(g, dtype=float) for g in per_subset if len(g)]
    if not groups:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    totals = np.zeros(n_resamples)
    for g in groups:
        done = 0
        while done < n_resamples:
            size = min(_CHUNK, n_resamples - done)
            idx = rng.integers(0, g.size, size=(size, g.size))
            totals[done:done + size] += g[idx].mean(axis=1)
            done += size
    totals /= len(groups)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(totals, [tail, 1.0 - tail])
    return float(lo), float(hi)


@dataclass(frozen=True)
class GroupResult:
    group: dict[str, int]  # row key -> rank group (1 = best)
    pvalues: dict[str, float]  # row key -> Holm-adjusted p-value against its group's leader (leaders: absent)
    leaders: dict[int, str]  # group -> leader's row key


def rank_groups(rows: Mapping[str, PerQuery], averages: Mapping[str, float], subsets: Sequence[str], *,
                alpha: float = ALPHA, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> GroupResult:
    """Rank groups of ``rows`` (key -> per-query values) ordered by ``averages``; procedure in the module doc."""
    order = sorted(rows, key=lambda k: (-averages[k], k))
    group: dict[str, int] = {}
    pvalues: dict[str, float] = {}
    leaders: dict[int, str] = {}
    remaining = list(order)
    number = 0
    while remaining:
        number += 1
        leader, rest = remaining[0], remaining[1:]
        group[leader] = number
        leaders[number] = leader
        raw = [compare_rows(rows[leader], rows[k], subsets, n_resamples=n_resamples, seed=seed) for k in rest]
        adjusted = holm(raw)
        still = []
        for key, p in zip(rest, adjusted):
            if p >= alpha:
                group[key] = number
                pvalues[key] = p
            else:
                still.append(key)
        remaining = still
    return GroupResult(group, pvalues, leaders)
