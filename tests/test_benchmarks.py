"""The engine model of benchmarks/scheduling.py: its orders and limits behave as documented."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _scheduling():
    spec = importlib.util.spec_from_file_location("scheduling", ROOT / "benchmarks" / "scheduling.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["scheduling"] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def test_bright_counts_come_from_the_declaration():
    counts = _scheduling().bright_query_counts()
    assert len(counts) == 12 and sum(counts.values()) == 1384 and counts["theoremqa_questions"] == 194


def test_one_engine_beats_pipelining_beats_the_authors_order():
    sched = _scheduling()
    rng = random.Random(0)
    subsets = [sched.draw_correlated(n, 3, rng, 0.3) for n in (40, 30, 20)]
    engine = sched.RealisticEngine()
    times = {o: sched.simulate_realistic(subsets, o, engine)["engine_seconds"] for o in
             ("authors", "pipelined", "one-engine")}
    assert times["one-engine"] < times["pipelined"] < times["authors"]


def test_kv_capacity_caps_the_batch():
    sched = _scheduling()
    rng = random.Random(1)
    subsets = [sched.draw_correlated(200, 2, rng, 0.3)]
    small = sched.RealisticEngine(kv_capacity_tokens=60_000)  # room for ~10 prompts of 5,700 tokens
    out = sched.simulate_realistic(subsets, "one-engine", small)
    assert out["mean_batch"] <= 60_000 / small.prompt_tokens
    big = sched.simulate_realistic(subsets, "one-engine", sched.RealisticEngine())
    assert big["mean_batch"] > out["mean_batch"] and big["engine_seconds"] < out["engine_seconds"]


def test_the_cli_prints_the_three_orders(capsys):
    rows = _scheduling().main(["--bright", "--seeds", "1"])
    out = capsys.readouterr().out
    assert "authors h" in out and "one-engine h" in out and rows[0]["one_engine_speedup"] > 1.0
