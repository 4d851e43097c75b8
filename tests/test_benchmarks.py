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


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"bench_{name}"] = module
    spec.loader.exec_module(module)
    return module


def test_overhead_script_runs(tmp_path):
    """The per-window overhead script stays in step with the reranker API (it had rotted once)."""
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "overhead.py"), "--queries", "2",
                           "--candidates", "10", "--passage-chars", "200"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "overhead_per_window_ms=" in done.stdout


def test_bm25_parity_is_tie_aware_and_real_corpus_is_reproducible(tmp_path):
    bm25 = _load("bm25")
    ours, ref = tmp_path / "ours.trec", tmp_path / "ref.trec"
    rows = lambda hits: "".join(f"q1 Q0 {d} {i + 1} {s} x\n" for i, (d, s) in enumerate(hits))  # noqa: E731
    top = [(f"d{i}", 20.0 - i) for i in range(9)]
    ref.write_text(rows(top + [("d9", 5.0), ("d10", 5.0)]))
    ours.write_text(rows(top + [("d10", 5.2), ("d9", 5.2)]))  # other scale, same tie at the 10th place
    assert bm25.top10_parity(ours, ref) == (1, 1)
    ours.write_text(rows(top + [("d11", 5.2), ("d9", 4.0)]))  # a document the reference never ranks there
    assert bm25.top10_parity(ours, ref) == (0, 1)
    first, second = tmp_path / "a", tmp_path / "b"
    info = bm25.make_real_corpus(first, n_passages=300, n_queries=5)
    bm25.make_real_corpus(second, n_passages=300, n_queries=5)
    assert info["passages"] == 300 and info["queries"] == 5
    assert (first / "corpus.jsonl").read_bytes() == (second / "corpus.jsonl").read_bytes()
