"""The cost of the sweep paths on CPU: a matrix of model-free cells run in this process, as ``harness run``
subprocesses (``--max-parallel``), and as Ray tasks on a local multi-node cluster with logical GPUs.

    .venv/bin/python benchmarks/sweep.py [--cells 8] [--nodes 3] [--max-parallel 2] [--json]

Every cell is one small experiment on the shipped ``tiny`` task (reranker none/oracle × top_k values), so the
figures are the per-cell overhead of each path (planning, process or Ray task start, the worker's record hand-off
to the driver), not model time. The Ray figure excludes the cluster start, which is printed separately. Each path
writes into its own results directory, and the run files of all three are checked byte-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _sweep_file(directory: Path, cells: int) -> Path:
    import yaml

    top_ks = list(range(2, 2 + (cells + 1) // 2))
    data = {"base": {"task": "tiny"}, "matrix": {"reranker": ["none", "oracle"], "top_k": top_ks}}
    path = directory / "bench.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run(path: Path, results: Path, **kwargs) -> tuple[float, int]:
    from harness.sweep import load_sweep, plan_cells, run_sweep

    cells = plan_cells(load_sweep(path), results)
    start = time.perf_counter()
    outcome = run_sweep(cells, results, quiet=True, name="bench", **kwargs)
    seconds = time.perf_counter() - start
    bad = [c for c in outcome.cells if not c.done]
    if bad:
        raise SystemExit(f"cells failed: {[(c.name, c.error) for c in bad]}")
    return seconds, len(outcome.cells)


def _runs(results: Path) -> dict[str, bytes]:
    return {str(p.relative_to(results)): p.read_bytes() for p in sorted(results.glob("*/*/run.trec"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=3, help="Ray worker nodes (1 logical GPU each)")
    parser.add_argument("--max-parallel", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("HARNESS_CACHE_DIR", tempfile.mkdtemp(prefix="harness-bench-cache-"))
    work = Path(tempfile.mkdtemp(prefix="harness-bench-sweep-"))
    path = _sweep_file(work, args.cells)
    rows = []
    seconds, n = _run(path, work / "in-process")
    rows.append(("in process (--max-parallel 1)", seconds, n))
    seconds, n = _run(path, work / "subprocesses", max_parallel=args.max_parallel)
    rows.append((f"harness run processes (--max-parallel {args.max_parallel})", seconds, n))

    import ray
    from ray.cluster_utils import Cluster

    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    for _ in range(args.nodes):
        cluster.add_node(num_cpus=1, num_gpus=1)
    ray.init(address=cluster.address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    cluster.wait_for_nodes()
    cluster_start = time.perf_counter() - t0
    try:
        seconds, n = _run(path, work / "ray", ray_address="auto")
        rows.append((f"Ray, {args.nodes} nodes (first use: worker start-up)", seconds, n))
        import shutil

        shutil.rmtree(work / "ray")
        seconds, n = _run(path, work / "ray", ray_address="auto")
        rows.append((f"Ray, {args.nodes} nodes (warm workers)", seconds, n))
    finally:
        ray.shutdown()
        cluster.shutdown()

    identical = _runs(work / "in-process") == _runs(work / "subprocesses") == _runs(work / "ray")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    if args.json:
        print(json.dumps({"machine": machine, "cluster_start_s": round(cluster_start, 2), "identical": identical,
                          "rows": [{"path": r, "seconds": round(s, 3), "cells": c, "per_cell_s": round(s / c, 3)}
                                   for r, s, c in rows]}, indent=2))
        return
    print(f"sweep paths on {machine}; {n} model-free cells (tiny task); Ray cluster start {cluster_start:.1f} s")
    print(f"{'path':<52} {'wall s':>8} {'s/cell':>8}")
    for label, seconds, cells in rows:
        print(f"{label:<52} {seconds:8.2f} {seconds / cells:8.3f}")
    print(f"run files identical across paths: {identical}")


if __name__ == "__main__":
    main()
