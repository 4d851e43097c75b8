"""Significance code checked against scipy and hand-computed cases."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats

from harness.significance import (
    bootstrap_ci, compare_rows, holm, method_text, paired_randomization_test, rank_groups,
)


def test_exact_enumeration_hand_computed():
    # d = [1, 2, 3]: the 8 signed sums are ±6, ±4, ±2, 0, 0; |sum| >= 6 for 2 of 8
    assert paired_randomization_test([1, 2, 3], [0, 0, 0]) == pytest.approx(0.25)
    # identical systems: every sign vector ties the observed 0
    assert paired_randomization_test([0.3, 0.5], [0.3, 0.5]) == 1.0


def test_exact_matches_scipy_permutation_test():
    rng = np.random.default_rng(7)
    a = rng.uniform(0, 1, 11)
    b = np.clip(a - rng.normal(0.1, 0.15, 11), 0, 1)
    ours = paired_randomization_test(a, b, n_resamples=10_000)  # 2^11 = 2048 ≤ 10000 → exact
    ref = stats.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), vectorized=True,
                                 permutation_type="samples", alternative="two-sided", n_resamples=np.inf)
    assert ours == pytest.approx(ref.pvalue, abs=1e-12)


def test_randomized_close_to_scipy_and_vectorised_fast():
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, 60)
    b = np.clip(a - rng.normal(0.03, 0.2, 60), 0, 1)
    ours = paired_randomization_test(a, b, n_resamples=20_000, seed=1)
    ref = stats.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), vectorized=True,
                                 permutation_type="samples", n_resamples=20_000, random_state=2)
    assert ours == pytest.approx(ref.pvalue, abs=0.02)
    assert paired_randomization_test(a, b, seed=1) == paired_randomization_test(a, b, seed=1)  # seeded
    big_a, big_b = rng.uniform(0, 1, 1384), rng.uniform(0, 1, 1384)  # all of BRIGHT
    start = time.perf_counter()
    paired_randomization_test(big_a, big_b, n_resamples=10_000)
    assert time.perf_counter() - start < 5.0


def test_holm_hand_computed():
    # sorted p: 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04 → monotone 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_bootstrap_ci_matches_scipy_for_one_subset():
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, 80)
    lo, hi = bootstrap_ci([x], n_resamples=20_000, seed=0)
    ref = stats.bootstrap((x,), np.mean, method="percentile", n_resamples=20_000, random_state=0)
    assert lo == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=0.01)
    assert lo < x.mean() < hi


def test_board_average_weights_subsets_equally():
    # subset s1 has 2 queries, s2 has 4; the board average weights each subset 1/2, not each query 1/6
    a = {"s1": {"q1": 1.0, "q2": 1.0}, "s2": {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}}
    b = {"s1": {"q1": 0.0, "q2": 0.0}, "s2": {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}}
    # weighted diffs: 0.25, 0.25 (s1) and 0 × 4 (s2): |sum| ≥ 0.5 only when both s1 signs are +, or both −
    assert compare_rows(a, b, ["s1", "s2"]) == pytest.approx(0.5)


def test_rank_groups():
    rng = np.random.default_rng(11)
    subsets = ["s1", "s2"]
    base = {s: {f"q{i}": float(v) for i, v in enumerate(rng.uniform(0.2, 0.8, 50))} for s in subsets}
    rows = {
        "best": {s: {q: min(1.0, v + 0.2) for q, v in base[s].items()} for s in subsets},
        "tie": {s: {q: min(1.0, v + 0.2 + (0.01 if i % 2 else -0.01)) for i, (q, v) in enumerate(base[s].items())}
                for s in subsets},
        "worse": base,
    }
    averages = {k: np.mean([np.mean(list(r[s].values())) for s in subsets]) for k, r in rows.items()}
    result = rank_groups(rows, averages, subsets, n_resamples=2000)
    assert result.group["best"] == result.group["tie"] == 1
    assert result.group["worse"] == 2
    assert result.leaders[2] == "worse"
    assert "Holm" in method_text() and "randomization" in method_text()
