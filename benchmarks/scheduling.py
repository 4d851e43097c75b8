"""Lock-step vs per-query pipelined window scheduling on a simulated continuous-batching engine.

The ReasonRank reference runs window position k of every query in one ``generate`` call and waits for the slowest
reasoning chain before any query starts window k+1. The harness instead submits a query's next window as soon as its
previous one returns. Both orders give identical rankings (the windows of one query stay sequential); this script
measures how much engine time the pipelined order saves.

Engine model (vLLM-like continuous batching): at most ``--batch-limit`` sequences decode together; a decode step
costs ``step_base + step_per_seq × batch`` seconds and emits one token per running sequence; a newly admitted request
first costs ``prompt_tokens / prefill_rate`` seconds of prefill. New requests join as soon as a slot is free.

Output lengths per window follow the reference logs: a log-normal body (median ``--median-tokens``) plus a small
share of chains that hit the 3,172-token cap (reasoning cut), giving ~600–750 tokens per window on average (the
authors' logs: 695,504 output tokens / 927 windows = 750 on economics, 614 on robotics).

    python benchmarks/scheduling.py                      # BRIGHT-sized defaults (103 queries × 9 windows)
    python benchmarks/scheduling.py --queries 1384 --json
    python benchmarks/scheduling.py --bright [--sensitivity]   # the realistic engine over all 12 BRIGHT subsets

``--bright`` uses the realistic engine model (``RealisticEngine``) on BRIGHT's real query counts per subset and
compares three orders: the authors' (lock-step within a subset, subsets one after another), per-query pipelining
within a subset (subsets still one after another; ``harness run --one-subset-at-a-time``), and every subset's
queries in one engine at once (``harness run --task bright``). ``--sensitivity`` varies one assumption at a time.

Calibration of the realistic defaults (a 7B model, bf16, one H100-80GB, vLLM), from published figures:

* decode step at batch 1 ≈ 7 ms: a 7–8B model decodes ≈75 tok/s for one request on an A100-40GB (1.55 TB/s,
  J. Musgrave, "vLLM throughput-latency sweep on NVIDIA A100", Llama-3.1-8B, vLLM 0.23); H100 SXM has 3.35 TB/s, so
  reading the 15 GB of weights per step takes ≈4.5 ms plus overheads;
* per running sequence ≈ 0.05 ms per step: ≈12,500 output tok/s for Llama-3.1-8B on one H100 at full batch
  (morphllm.com "vLLM Benchmarks", 2026; LambdaLabsML/vllm-benchmark reports the same order), i.e. ≈20 ms per
  step at 256 sequences;
* per context token ≈ 1.7e-8 s per step: the KV cache of Qwen2.5-7B (28 layers × 4 KV heads × 128 × 2 × 2 bytes
  = 57 KB per token) read at 3.35 TB/s;
* KV-cache capacity ≈ 1.0 M tokens: (0.9 × 80 GB − 15 GB of weights) / 57 KB; a 32B model on TP=2 leaves ≈0.35 M;
* prefill ≈ 25,000 tokens/s (about 40 % of the H100's bf16 peak at 2 × 7e9 FLOPs per token); the shared instruction
  prefix of the ReasonRank prompt (≈260 tokens) is served from vLLM's prefix cache after the first window; with
  chunked prefill (vLLM V1's default) prompt chunks ride in the decode steps, so a stretch costs the larger of its
  prefill compute and its decode memory time;
* output lengths: a per-query random effect (σ 0.3 in log space) on top of the per-window body, so a query's windows
  are correlated (hard queries reason long in every window).
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

MAX_TOKENS = 3172  # reasoning_maxlen 3072 + 100


@dataclass(frozen=True)
class EngineModel:
    batch_limit: int = 256  # vLLM max_num_seqs
    step_base: float = 0.012  # s per decode step at batch 1 (7B model, one H100-class GPU)
    step_per_seq: float = 0.00008  # extra s per decode step per running sequence
    prefill_rate: float = 25_000.0  # prompt tokens per second
    prompt_tokens: int = 5_700  # per window (reference: 5,687 economics, 5,019 robotics)


@dataclass(frozen=True)
class Outcome:
    mode: str
    engine_seconds: float
    decode_steps: int
    mean_batch: float
    output_tokens: int


def draw_lengths(queries: int, windows: int, rng: random.Random, median: float = 620.0, sigma: float = 0.35,
                 cap_share: float = 0.015) -> list[list[int]]:
    """Output tokens per (query, window): log-normal body, ``cap_share`` of chains cut at MAX_TOKENS."""
    lengths = []
    for _ in range(queries):
        row = []
        for _ in range(windows):
            if rng.random() < cap_share:
                row.append(MAX_TOKENS)
            else:
                row.append(int(min(MAX_TOKENS, max(40, rng.lognormvariate(math.log(median), sigma)))))
        lengths.append(row)
    return lengths


def simulate(lengths: list[list[int]], mode: str, engine: EngineModel) -> Outcome:
    """Event-driven simulation: between two completions the batch is constant, so whole stretches are jumped."""
    if mode not in ("lockstep", "pipelined"):
        raise ValueError(mode)
    queries, windows = len(lengths), len(lengths[0])
    waiting: deque[tuple[int, int]] = deque((q, 0) for q in range(queries))
    running: dict[tuple[int, int], int] = {}
    position = 0
    clock = 0.0
    steps = 0
    token_steps = 0
    while waiting or running:
        admitted = 0
        while waiting and len(running) < engine.batch_limit:
            q, w = waiting.popleft()
            running[(q, w)] = lengths[q][w]
            admitted += 1
        clock += admitted * engine.prompt_tokens / engine.prefill_rate
        batch = len(running)
        jump = min(running.values())
        clock += jump * (engine.step_base + engine.step_per_seq * batch)
        steps += jump
        token_steps += jump * batch
        finished = [key for key, left in running.items() if left == jump]
        for key in running:
            running[key] -= jump
        for key in finished:
            del running[key]
            q, w = key
            if mode == "pipelined" and w + 1 < windows:
                waiting.append((q, w + 1))
        if mode == "lockstep" and not running and not waiting:
            position += 1
            if position < windows:
                waiting.extend((q, position) for q in range(queries))
    return Outcome(mode, clock, steps, token_steps / steps if steps else 0.0, sum(map(sum, lengths)))


def compare(queries: int, windows: int, engine: EngineModel, seeds: int = 5) -> dict[str, float]:
    lock, pipe, mean_tokens, lock_batch, pipe_batch = [], [], [], [], []
    for seed in range(seeds):
        lengths = draw_lengths(queries, windows, random.Random(seed))
        a, b = simulate(lengths, "lockstep", engine), simulate(lengths, "pipelined", engine)
        lock.append(a.engine_seconds)
        pipe.append(b.engine_seconds)
        lock_batch.append(a.mean_batch)
        pipe_batch.append(b.mean_batch)
        mean_tokens.append(a.output_tokens / (queries * windows))
    avg = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "queries": queries, "windows_per_query": windows, "batch_limit": engine.batch_limit, "seeds": seeds,
        "mean_output_tokens_per_window": round(avg(mean_tokens), 1),
        "lockstep_engine_seconds": round(avg(lock), 1),
        "pipelined_engine_seconds": round(avg(pipe), 1),
        "speedup": round(avg(lock) / avg(pipe), 2),
        "lockstep_seconds_per_query": round(avg(lock) / queries, 3),
        "pipelined_seconds_per_query": round(avg(pipe) / queries, 3),
        "lockstep_mean_batch": round(avg(lock_batch), 1),
        "pipelined_mean_batch": round(avg(pipe_batch), 1),
    }



# --------------------------------------------------------------------------------------------------------------------
# The realistic engine: KV capacity, prefix caching, context-dependent decode cost, correlated lengths
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RealisticEngine:
    max_num_seqs: int = 256  # vLLM's default cap on running sequences
    kv_capacity_tokens: int = 1_000_000  # 7B on one 80 GB GPU; 32B on TP=2: ~350,000
    step_base: float = 0.007  # s per decode step at batch 1
    step_per_seq: float = 0.00005  # s per decode step per running sequence
    step_per_ctx_token: float = 1.7e-8  # s per decode step per token of context held by the running sequences
    prefill_rate: float = 25_000.0  # prompt tokens per second
    prompt_tokens: int = 5_700  # per window (reference logs: 5,687 economics, 5,019 robotics)
    shared_prefix_tokens: int = 260  # instruction prefix served from the prefix cache after the first window
    query_sigma: float = 0.3  # per-query random effect on log output length (correlated windows)
    chunked_prefill: bool = True  # vLLM V1 default: prefill chunks ride in decode steps (compute under memory time)


BRIGHT_WINDOWS = 9  # window 20 / step 10 over the top 100


def bright_query_counts() -> dict[str, int]:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tasks.bright import INFO

    return {s.name: int(s.queries) for s in INFO.subsets}


def draw_correlated(queries: int, windows: int, rng: random.Random, sigma_query: float,
                    median: float = 620.0, sigma: float = 0.35, cap_share: float = 0.015) -> list[list[int]]:
    lengths = []
    for _ in range(queries):
        effect = rng.gauss(0.0, sigma_query)
        row = []
        for _ in range(windows):
            if rng.random() < cap_share:
                row.append(MAX_TOKENS)
            else:
                row.append(int(min(MAX_TOKENS, max(40, rng.lognormvariate(math.log(median) + effect, sigma)))))
        lengths.append(row)
    return lengths


def simulate_realistic(subsets: list[list[list[int]]], order: str, engine: RealisticEngine) -> dict[str, float]:
    """Engine seconds of BRIGHT under one order. ``subsets``: per subset, per query, output tokens per window.

    ``authors``: lock-step within a subset, subsets in sequence; ``pipelined``: per-query pipelining within a
    subset, subsets in sequence; ``one-engine``: every subset's queries pipelined in one engine at once."""
    if order not in ("authors", "pipelined", "one-engine"):
        raise ValueError(order)
    clock, steps, token_steps = 0.0, 0, 0
    prefix_cached = False
    groups = [list(range(len(subsets)))] if order == "one-engine" else [[i] for i in range(len(subsets))]
    for group in groups:
        keys = [(s, q) for s in group for q in range(len(subsets[s]))]
        windows = {key: len(subsets[key[0]][key[1]]) for key in keys}
        waiting: deque[tuple[int, int, int]] = deque((s, q, 0) for s, q in keys)
        running: dict[tuple[int, int, int], list[int]] = {}  # key -> [tokens left, context tokens]
        position = 0
        while waiting or running:
            admitted_tokens = 0
            used = sum(ctx for _, ctx in running.values())
            while waiting and len(running) < engine.max_num_seqs:
                s, q, w = waiting[0]
                need = engine.prompt_tokens
                if running and used + need > engine.kv_capacity_tokens:
                    break  # no room in the KV cache: wait for a sequence to finish
                waiting.popleft()
                running[(s, q, w)] = [subsets[s][q][w], engine.prompt_tokens]
                used += need
                admitted_tokens += engine.prompt_tokens - (engine.shared_prefix_tokens if prefix_cached else 0)
                prefix_cached = True
            prefill = admitted_tokens / engine.prefill_rate
            batch = len(running)
            # decode until the first sequence finishes or the KV cache would overflow (then the batch changes)
            jump = min(left for left, _ in running.values())
            free = engine.kv_capacity_tokens - used
            if free < batch * jump and batch:
                jump = max(1, free // batch)
            context = used + batch * (jump - 1) / 2  # mean context over the stretch
            decode = jump * (engine.step_base + engine.step_per_seq * batch + engine.step_per_ctx_token * context)
            # chunked prefill: compute-bound prompt chunks overlap the memory-bound decode steps they ride in
            clock += max(prefill, decode) if engine.chunked_prefill else prefill + decode
            steps += jump
            token_steps += jump * batch
            finished = []
            for key, state in running.items():
                state[0] -= jump
                state[1] += jump
                if state[0] <= 0:
                    finished.append(key)
            if not finished and engine.kv_capacity_tokens - sum(c for _, c in running.values()) <= 0:
                # vLLM preempts the newest sequence (recomputed later): model it as a restart of that window
                key = max(running)
                del running[key]
                waiting.appendleft(key)
                continue
            for key in finished:
                del running[key]
                s, q, w = key
                if order != "authors" and w + 1 < windows[(s, q)]:
                    waiting.append((s, q, w + 1))
            if order == "authors" and not running and not waiting:
                position += 1
                if position < max(windows.values()):
                    waiting.extend((s, q, position) for s, q in keys)
    return {"engine_seconds": clock, "mean_batch": token_steps / steps if steps else 0.0}


def bright_orders(engine: RealisticEngine, seeds: int = 3) -> dict[str, Any]:
    counts = bright_query_counts()
    totals = {order: 0.0 for order in ("authors", "pipelined", "one-engine")}
    batches = {order: 0.0 for order in totals}
    for seed in range(seeds):
        rng = random.Random(seed)
        subsets = [draw_correlated(n, BRIGHT_WINDOWS, rng, engine.query_sigma) for n in counts.values()]
        for order in totals:
            out = simulate_realistic(subsets, order, engine)
            totals[order] += out["engine_seconds"] / seeds
            batches[order] += out["mean_batch"] / seeds
    return {"queries": sum(counts.values()), "subsets": len(counts),
            **{f"{o}_hours": round(t / 3600, 3) for o, t in totals.items()},
            **{f"{o}_mean_batch": round(b, 1) for o, b in batches.items()},
            "pipelined_speedup": round(totals["authors"] / totals["pipelined"], 2),
            "one_engine_speedup": round(totals["authors"] / totals["one-engine"], 2)}


SENSITIVITY = [
    ("defaults", {}),
    ("KV 350k tokens (32B, TP=2)", {"kv_capacity_tokens": 350_000}),
    ("KV 2M tokens", {"kv_capacity_tokens": 2_000_000}),
    ("max_num_seqs 64", {"max_num_seqs": 64}),
    ("max_num_seqs 512", {"max_num_seqs": 512}),
    ("step base 15 ms (slower GPU)", {"step_base": 0.015}),
    ("no per-context-token cost", {"step_per_ctx_token": 0.0}),
    ("2× per-context-token cost", {"step_per_ctx_token": 3.4e-8}),
    ("prefill 10k tok/s", {"prefill_rate": 10_000.0}),
    ("prefill not overlapped (no chunking)", {"chunked_prefill": False}),
    ("uncorrelated windows (σ_query 0)", {"query_sigma": 0.0}),
    ("strongly correlated (σ_query 0.6)", {"query_sigma": 0.6}),
]


def _bright_main(sensitivity: bool, seeds: int, as_json: bool) -> list[dict[str, Any]]:
    from dataclasses import replace

    cases = SENSITIVITY if sensitivity else SENSITIVITY[:1]
    rows = []
    for label, change in cases:
        row = {"assumption": label, **bright_orders(replace(RealisticEngine(), **change), seeds)}
        rows.append(row)
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return rows
    print("realistic engine:", json.dumps(asdict(RealisticEngine())))
    print(f"BRIGHT: {rows[0]['queries']} queries in {rows[0]['subsets']} subsets × {BRIGHT_WINDOWS} windows; "
          f"engine hours (mean of {seeds} seeds) and speed-up over the authors' order")
    print(f"{'assumption':<38} {'authors h':>9} {'pipelined h':>11} {'one-engine h':>12} {'pipe ×':>6} "
          f"{'one-eng ×':>9} {'batch a/p/o':>16}")
    for r in rows:
        batches = f"{r['authors_mean_batch']:.0f}/{r['pipelined_mean_batch']:.0f}/{r['one-engine_mean_batch']:.0f}"
        print(f"{r['assumption']:<38} {r['authors_hours']:>9.2f} {r['pipelined_hours']:>11.2f} "
              f"{r['one-engine_hours']:>12.2f} {r['pipelined_speedup']:>6.2f} {r['one_engine_speedup']:>9.2f} "
              f"{batches:>16}")
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, nargs="*", default=[103], help="queries per task (economics: 103)")
    parser.add_argument("--windows", type=int, nargs="*", default=[9, 19],
                        help="windows per query (9 = w20/s10 over 100, 19 = w10/s5)")
    parser.add_argument("--batch-limit", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object per configuration")
    parser.add_argument("--bright", action="store_true", help="the realistic engine over BRIGHT's 12 subsets: the "
                        "authors' order, per-query pipelining per subset, all subsets in one engine")
    parser.add_argument("--sensitivity", action="store_true", help="with --bright (implied): one assumption varied "
                        "at a time")
    args = parser.parse_args(argv)
    if args.bright or args.sensitivity:
        return _bright_main(args.sensitivity, min(args.seeds, 3), args.json)
    rows = []
    for queries in args.queries:
        for windows in args.windows:
            for limit in args.batch_limit:
                rows.append(compare(queries, windows, EngineModel(batch_limit=limit), args.seeds))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return rows
    print("engine model:", json.dumps(asdict(EngineModel())))
    header = (f"{'queries':>7} {'win/q':>5} {'batch':>5} {'tok/win':>7} {'lockstep s':>10} {'pipelined s':>11} "
              f"{'speedup':>7} {'lock s/q':>8} {'pipe s/q':>8} {'lock batch':>10} {'pipe batch':>10}")
    print(header)
    for r in rows:
        print(f"{r['queries']:>7} {r['windows_per_query']:>5} {r['batch_limit']:>5} "
              f"{r['mean_output_tokens_per_window']:>7} {r['lockstep_engine_seconds']:>10} "
              f"{r['pipelined_engine_seconds']:>11} {r['speedup']:>7} {r['lockstep_seconds_per_query']:>8} "
              f"{r['pipelined_seconds_per_query']:>8} {r['lockstep_mean_batch']:>10} {r['pipelined_mean_batch']:>10}")
    return rows


if __name__ == "__main__":
    main()
