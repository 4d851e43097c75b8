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
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections import deque
from dataclasses import asdict, dataclass

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


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, nargs="*", default=[103], help="queries per task (economics: 103)")
    parser.add_argument("--windows", type=int, nargs="*", default=[9, 19],
                        help="windows per query (9 = w20/s10 over 100, 19 = w10/s5)")
    parser.add_argument("--batch-limit", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object per configuration")
    args = parser.parse_args(argv)
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
