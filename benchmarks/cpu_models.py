"""The embedded real model (SmolLM2-135M) on CPU: generation speed per backend, and every reranker end to end.

    .venv/bin/python benchmarks/cpu_models.py [--prompts 8] [--new-tokens 48] [--batch-size 8]
                                              [--queries 8] [--rerankers reasonrank,rankzephyr,rank1]
                                              [--servers transformers,llama.cpp] [--skip-throughput]
                                              [--skip-rerankers] [--json]

Part 1, tokens/s on the same prompts (pydocs/demo passages in a ChatML "summarise" prompt), greedy:

* ``generate``: plain ``transformers`` ``model.generate`` one prompt at a time (the baseline);
* ``hf batch=1`` / ``hf batch=B``: the harness's hf backend, one request at a time and ``B`` in flight (left padding,
  one ``generate`` per batch); its tokens are checked equal to the baseline's;
* ``llama.cpp``: llama-cpp-python's server on the GGUF file, all requests sent at once (when ``llama_cpp`` is
  importable here or ``HARNESS_LLAMA_CPP_PYTHON`` names an interpreter that has it).

Part 2, every reranker through ``harness run`` on pydocs/demo (top 10, short windows and passages, capped budgets:
the README's CPU sizes) on each backend: the hf backend, and ``--backend openai`` against ``transformers serve``
and the llama.cpp server. A reranker a server cannot serve (e.g. Rank1 needs token log-probs) is reported with the
harness's start-up refusal. Columns: reranking wall seconds (model load included, first stage not), generation
seconds (engine-busy time), s/query (reranking wall / queries), parse-failure rate, nDCG@10, and the share of the
reranking wall time spent outside generation (prompt building, parsing, scheduling, model load, HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEMO_FLAGS = {"reasonrank": ["--window-size", "10", "--passage-length", "48", "--reasoning-budget", "64"],
              "rankzephyr": ["--window-size", "10", "--passage-length", "40"],
              "rank1": ["--max-tokens", "32"]}


def _prompts(n: int) -> list[str]:
    from tasks import resolve_tasks

    task = resolve_tasks("pydocs/demo")[0]
    docs = task.docs(sorted({d for q in task.qrels.values() for d in q}))
    texts = list(docs.values())[:n]
    return [f"<|im_start|>user\nSummarise: {text[:400]}<|im_end|>\n<|im_start|>assistant\n" for text in texts]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _server(argv: list[str], health: str, log: Path, timeout: float = 240.0):
    import httpx

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with log.open("w") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: {log.read_text()[-1500:]}")
            try:
                if httpx.get(health, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{argv[0]} did not come up in {timeout:.0f} s")
            time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _llama_python() -> str | None:
    if os.environ.get("HARNESS_LLAMA_CPP_PYTHON"):
        return os.environ["HARNESS_LLAMA_CPP_PYTHON"]
    return sys.executable if importlib.util.find_spec("llama_cpp") is not None else None


@contextmanager
def llama_cpp(gguf: Path, log: Path):
    port = _free_port()
    with _server([_llama_python(), "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                  "--port", str(port), "--n_ctx", "4096"], f"http://127.0.0.1:{port}/v1/models", log):
        yield f"http://127.0.0.1:{port}/v1"


@contextmanager
def transformers_serve(model: Path, log: Path):
    exe = Path(sys.executable).with_name("transformers")
    port = _free_port()
    with _server([str(exe) if exe.exists() else (shutil.which("transformers") or "transformers"), "serve",
                  str(model), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
                  "--log-level", "warning"], f"http://127.0.0.1:{port}/health", log):
        yield f"http://127.0.0.1:{port}/v1"


# --- part 1: tokens/s ---------------------------------------------------------------------------------------------
def throughput(model: Path, prompts: list[str], new_tokens: int, batch_size: int, servers: list[str],
               workdir: Path) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.backends.hf import HFBackend
    from harness.llm import GenerationRequest, SamplingParams

    rows = []
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model)
    lm = AutoModelForCausalLM.from_pretrained(model, torch_dtype=torch.float32)
    lm.eval()
    with torch.inference_mode():
        warm = tokenizer(prompts[0], return_tensors="pt")
        lm.generate(**warm, max_new_tokens=2, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        baseline_ids, started = [], time.perf_counter()
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt")
            out = lm.generate(**ids, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id)
            baseline_ids.append(out[0, ids["input_ids"].shape[1]:].tolist())
    seconds = time.perf_counter() - started
    rows.append(_row("transformers generate (one at a time)", baseline_ids, seconds, "baseline"))
    del lm

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens)
    for size in sorted({1, batch_size}):
        backend = HFBackend(str(model), batch_size=size)
        try:
            backend.generate(GenerationRequest(prompts[0], SamplingParams(temperature=0.0, max_tokens=2)))  # load
            started = time.perf_counter()
            if size == 1:
                gens = [backend.generate(GenerationRequest(p, params)) for p in prompts]
            else:
                gens = backend.generate_batch([GenerationRequest(p, params) for p in prompts])
            seconds = time.perf_counter() - started
        finally:
            backend.close()
        ids = [g.extra["token_ids"] for g in gens]
        rows.append(_row(f"harness hf backend, batch {size}", ids, seconds, ids == baseline_ids))

    if "llama.cpp" in servers:
        from harness.embedded import gguf_copy

        gguf = gguf_copy("smollm2-135m")
        if _llama_python() is None or gguf is None:
            rows.append({"engine": "llama.cpp server", "skipped": "llama_cpp not importable (or no GGUF copy)"})
        else:
            from harness.backends.openai import OpenAIBackend

            with llama_cpp(gguf, workdir / "llama-throughput.log") as url:
                backend = OpenAIBackend(str(model), url, request_timeout=600)
                backend.bind_tokenizer(tokenizer)

                async def send_all():
                    return await asyncio.gather(*(backend.agenerate(GenerationRequest(p, params)) for p in prompts))
                started = time.perf_counter()
                gens = asyncio.run(send_all())
                seconds = time.perf_counter() - started
                backend.close()
            rows.append({"engine": "llama.cpp server (Q4_1 GGUF), all sent at once", "prompts": len(gens),
                         "new_tokens": sum(g.output_tokens for g in gens), "seconds": round(seconds, 2),
                         "tokens_per_s": round(sum(g.output_tokens for g in gens) / seconds, 1),
                         "same_tokens_as_generate": "n/a (quantized weights)"})
    return rows


def _row(engine: str, ids: list[list[int]], seconds: float, same) -> dict:
    total = sum(len(x) for x in ids)
    return {"engine": engine, "prompts": len(ids), "new_tokens": total, "seconds": round(seconds, 2),
            "tokens_per_s": round(total / seconds, 1), "same_tokens_as_generate": same}


# --- part 2: rerankers end to end -----------------------------------------------------------------------------------
def rerank(rerankers: list[str], servers: list[str], queries: int, workdir: Path, model: Path) -> list[dict]:
    harness = Path(sys.executable).with_name("harness")
    setups: list[tuple[str, list[str], object]] = [("hf", ["--backend", "hf"], None)]
    if "transformers" in servers:
        setups.append(("transformers serve", ["--served-model", str(model)], lambda: transformers_serve(
            model, workdir / "serve.log")))
    if "llama.cpp" in servers:
        from harness.embedded import gguf_copy

        gguf = gguf_copy("smollm2-135m")
        if _llama_python() is not None and gguf is not None:
            setups.append(("llama.cpp server", [], lambda: llama_cpp(gguf, workdir / "llama.log")))
    rows = []
    for label, extra, server in setups:
        context = server() if server else _null()
        with context as url:
            for reranker in rerankers:
                results = workdir / f"{label.replace(' ', '-')}-{reranker}"
                argv = [str(harness), "run", "--task", "pydocs/demo", "--reranker", reranker, "--model",
                        "smollm2-135m", "--top-k", "10", "--limit", str(queries), "--no-cache", "-q",
                        "--results-dir", str(results), *DEMO_FLAGS[reranker], *extra]
                if url:
                    argv += ["--backend", "openai", "--base-url", url]
                started = time.perf_counter()
                proc = subprocess.run(argv, capture_output=True, text=True,
                                      env={**os.environ, "HF_HUB_OFFLINE": "1"})
                elapsed = time.perf_counter() - started
                rows.append(_reranker_row(label, reranker, proc, elapsed, results))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


@contextmanager
def _null():
    yield None


def _reranker_row(backend: str, reranker: str, proc, elapsed: float, results: Path) -> dict:
    from harness.schema import load_record

    row = {"reranker": reranker, "backend": backend}
    records = list(results.glob("*/*/record.json"))
    if proc.returncode != 0 or not records:
        last = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        row["refused"] = last[-1][:300] if last else f"exit {proc.returncode}"
        return row
    record = load_record(records[0])
    generation = sum(c.generation_seconds or 0.0 for c in record.costs)
    wall = record.execution.rerank_wall_seconds
    counts = record.counts
    units = counts.windows or counts.pairs or counts.model_calls
    row.update(queries=counts.queries, process_seconds=round(elapsed, 1), rerank_wall_seconds=round(wall, 1),
               generation_seconds=round(generation, 1), seconds_per_query=round(wall / max(counts.queries, 1), 2),
               parse_failure_rate=round(counts.failure_rate, 3),
               parse_failures=f"{counts.parse_failures}/{units}", fallbacks=counts.fallbacks,
               ndcg_at_10=round(record.metrics.get("nDCG@10", float("nan")), 4),
               outside_generation_share=round(max(wall - generation, 0.0) / wall, 3) if wall else None,
               output_tokens=sum(c.output_tokens for c in record.costs))
    return row


def _table(rows: list[dict], columns: list[str]) -> str:
    lines = [" | ".join(columns), " | ".join("---" for _ in columns)]
    for row in rows:
        lines.append(" | ".join(str(row.get(c, "")) for c in columns))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--rerankers", default="reasonrank,rankzephyr,rank1")
    parser.add_argument("--servers", default="transformers,llama.cpp",
                        help="comma-separated: transformers (transformers serve), llama.cpp; empty for none")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-rerankers", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from harness.embedded import prepared_path

    model = prepared_path("smollm2-135m")
    servers = [s for s in args.servers.split(",") if s]
    out: dict = {"model": "smollm2-135m", "cpu_threads": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="harness-cpu-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_throughput:
            out["throughput"] = throughput(model, _prompts(args.prompts), args.new_tokens, args.batch_size,
                                           servers, work)
        if not args.skip_rerankers:
            out["rerankers"] = rerank(args.rerankers.split(","), servers, args.queries, work, model)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if "throughput" in out:
        print(_table(out["throughput"], ["engine", "prompts", "new_tokens", "seconds", "tokens_per_s",
                                         "same_tokens_as_generate", "skipped"]))
        print()
    if "rerankers" in out:
        print(_table(out["rerankers"], ["reranker", "backend", "queries", "rerank_wall_seconds", "generation_seconds",
                                        "seconds_per_query", "parse_failure_rate", "ndcg_at_10",
                                        "outside_generation_share", "refused"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
