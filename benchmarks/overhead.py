"""Harness overhead per listwise window (prompt build + parse + scheduling), with a zero-latency backend.

    .venv/bin/python benchmarks/overhead.py [--tokenizer ID_OR_DIR] [--queries 20] [--candidates 100]
                                            [--passage-chars 4000] [--reranker reasonrank|rankzephyr]

The backend answers instantly with a valid ``<think>…</think> <answer>[..] > …</answer>``, so the measured wall time
is everything the harness adds around the model: passage processing (ftfy, tokenizer truncation), chat template,
second ftfy pass, token counting fallback, parsing, permutation bookkeeping and the asyncio pipeline.
Without ``--tokenizer`` the tiny test tokenizer is built in a temporary directory (a real Qwen tokenizer has a
larger vocabulary: fewer tokens per passage, similar cost per token).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.llm import Backend, Generation  # noqa: E402
from harness.types import Candidate, RerankRequest  # noqa: E402
from rerankers import RerankContext  # noqa: E402

_IDS = re.compile(r"^\[(\d+)\] ", re.MULTILINE)


class InstantBackend(Backend):
    name = "instant"
    model_id = "instant"

    async def agenerate(self, request):
        n = len(_IDS.findall(request.prompt.split("<|im_start|>user", 1)[-1]))
        order = list(range(1, n + 1))
        random.Random(len(request.prompt)).shuffle(order)
        answer = " > ".join(f"[{i}]" for i in order)
        return Generation(f"<think>ok</think> <answer>{answer}</answer>", 1, 1, 0.0)


def _corpus_text() -> str:
    import collections
    import json
    import pathlib

    parts = []
    for module in (json, collections, pathlib, argparse, asyncio):
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj)
            if doc:
                parts.append(doc)
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", help="tokenizer id or directory (default: tiny test tokenizer)")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--passage-chars", type=int, default=4000)
    parser.add_argument("--reranker", default="reasonrank", choices=("reasonrank", "rankzephyr"))
    args = parser.parse_args()

    tokenizer_path = args.tokenizer
    if tokenizer_path is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_model import build_tiny_model

        tokenizer_path = str(build_tiny_model(Path(tempfile.mkdtemp(prefix="tiny-model-"))))
    from harness.models import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_path)
    text = _corpus_text()
    rng = random.Random(0)
    requests = []
    for q in range(args.queries):
        cands = []
        for i in range(args.candidates):
            start = rng.randrange(0, max(1, len(text) - args.passage_chars))
            cands.append(Candidate(f"d{i}", text[start:start + args.passage_chars], 100.0 - i))
        requests.append(RerankRequest(f"q{q}", f"What does [{q}] mean for query {q}?", tuple(cands)))

    if args.reranker == "reasonrank":
        from rerankers.reasonrank import ReasonRankReranker as cls
    else:
        from rerankers.rankzephyr import RankZephyrReranker as cls
    reranker = cls({"model": tokenizer_path}, backend=InstantBackend(), tokenizer=tokenizer)
    context = RerankContext("bright/biology")
    settings = reranker.resolve({})

    # parse cost alone, on a typical 20-passage answer with reasoning text
    from rerankers.reasonrank import parse_answer

    answer = "<think>" + "Passage [3] discusses the concept; [7] less so. " * 60 + "</think> <answer>" + \
             " > ".join(f"[{i}]" for i in range(20, 0, -1)) + "</answer>"
    t = time.perf_counter()
    for _ in range(2000):
        parse_answer(answer, 20)
    parse_ms = (time.perf_counter() - t) / 2000 * 1000

    # prompt build alone (one 20-passage window)
    window_texts = [c.text for c in requests[0].candidates[:20]]
    samples = []
    for _ in range(5):
        getattr(reranker, "_processed", {}).clear()  # cold: no passage processed before
        t = time.perf_counter()
        reranker.window_prompt(requests[0].query, window_texts, settings)
        samples.append(time.perf_counter() - t)
    build_ms = statistics.median(samples) * 1000
    getattr(reranker, "_processed", {}).clear()

    t = time.perf_counter()
    results = reranker.rerank(requests, context)
    wall = time.perf_counter() - t
    windows = sum(len(r.calls) for r in results)
    prompt_tokens = len(tokenizer.encode(reranker.window_prompt(requests[0].query, window_texts, settings)))
    print(f"reranker={args.reranker} tokenizer={tokenizer_path} queries={args.queries} "
          f"candidates={args.candidates} passage_chars={args.passage_chars}")
    print(f"windows={windows} total_wall_s={wall:.3f} overhead_per_window_ms={wall / windows * 1000:.2f}")
    print(f"cold_prompt_build_per_window_ms={build_ms:.2f} (20 new passages; prompt of {prompt_tokens} tokens) "
          f"parse_per_window_ms={parse_ms:.3f}")


if __name__ == "__main__":
    main()
