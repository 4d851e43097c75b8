"""``harness sweep``: the matrix file, local execution, and a 3-node Ray cluster with logical GPUs and a lost node."""

from __future__ import annotations

import io
import json
import threading
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.errors import HarnessError
from harness.schema import load_record
from harness.sweep import load_sweep, plan_cells, run_sweep

from openai_server import ScriptedServer, reasonrank_answer


def _cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), out.getvalue(), err.getvalue()


def _write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# --- the sweep file -------------------------------------------------------------------------------------------------

def test_matrix_exclude_and_extra_cells(tmp_path):
    path = _write(tmp_path / "s.yaml", {
        "base": {"task": "tiny", "top_k": 5},
        "matrix": {"reranker": ["none", "oracle"], "top_k": [3, 5]},
        "exclude": [{"reranker": "none", "top_k": 5}],
        "cells": [{"reranker": "oracle", "top_k": 2}, {"reranker": "oracle", "top_k": 3}],
    })
    cells = load_sweep(path)
    assert [c.name for c in cells] == ["reranker=none top_k=3", "reranker=oracle top_k=3",
                                       "reranker=oracle top_k=5", "reranker=oracle top_k=2",
                                       "reranker=oracle top_k=3"]
    assert cells[0].values == {"task": "tiny", "top_k": 3, "reranker": "none"}
    planned = plan_cells(cells, tmp_path / "r")
    assert len(planned) == 4, "one experiment reached twice is one cell"
    assert all(c.status == "pending" and c.num_gpus == 0 and c.group for c in planned)


@pytest.mark.parametrize("data, message", [
    ({"matrix": {"reranker": "oracle"}}, "must be a non-empty list"),
    ({"base": {"windowsize": 10}, "matrix": {"reranker": ["oracle"]}}, "Did you mean 'window_size'"),
    ({"base": {"results_dir": "x"}, "cells": [{"task": "tiny"}]}, "set by the sweep for every cell"),
    ({"matrix": {"task": ["tiny"]}, "grid": {}}, "unknown key 'grid'"),
    ({"exclude": [{"reranker": "none"}], "matrix": {"reranker": ["none"]}}, "has no cells"),
    ({"cells": [{"task": "tiny"}], "resources": {"num_gpus": -1}}, "resources must map"),
])
def test_bad_sweep_files_are_clear_errors(tmp_path, data, message):
    with pytest.raises(HarnessError, match=message):
        load_sweep(_write(tmp_path / "s.yaml", data))


def test_an_option_the_reranker_lacks_names_the_cell(tmp_path):
    path = _write(tmp_path / "s.yaml", {"base": {"task": "tiny", "backend": "hf"},
                                        "matrix": {"reranker": ["rank1"], "window_size": [20]}})
    with pytest.raises(HarnessError, match=r"sweep cell \[reranker=rank1 window_size=20\].*window_size"):
        plan_cells(load_sweep(path), tmp_path / "r")


def test_a_bad_cell_is_named_before_anything_runs(tmp_path):
    path = _write(tmp_path / "s.yaml", {"base": {"task": "tiny"}, "matrix": {"reranker": ["oracle", "nope"]}})
    code, out, err = _cli("sweep", path, "--results-dir", tmp_path / "r")
    assert code == 2 and "reranker=nope" in err and "Did you mean" in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


# --- local execution ------------------------------------------------------------------------------------------------

def _matrix(tiny_model_dir, base_url: str) -> dict:
    return {
        "base": {"backend": "openai", "base_url": base_url, "model": str(tiny_model_dir), "no_cache": True,
                 "step": 2},
        "matrix": {"reranker": ["reasonrank", "rankzephyr"], "task": ["tiny", "pydocs/demo"],
                   "window_size": [5, 3]},
        "resources": {"num_gpus": 1},
    }


def _alone(tmp_path: Path, values: dict, results: Path) -> None:
    """The cell run on its own with harness run (the reference the sweep must equal byte for byte)."""
    config = _write(tmp_path / "cell.yaml", values)
    code, out, err = _cli("run", "--config", config, "--results-dir", results, "-q")
    assert code == 0, err


def _same_records(a: Path, b: Path, groups: list[str]) -> None:
    for group in groups:
        runs_a = sorted((a / group).glob("*/run.trec"))
        assert runs_a, f"no records for {group} in {a}"
        for run in runs_a:
            other = b / group / run.parent.name / "run.trec"
            assert other.read_bytes() == run.read_bytes(), f"{group}/{run.parent.name}: run files differ"
            assert load_record(other.parent / "record.json").metrics == load_record(run.parent / "record.json").metrics


def test_local_sweep_equals_harness_run_per_cell_and_a_rerun_runs_nothing(tiny_model_dir, tmp_path):
    with ScriptedServer(reasonrank_answer) as server:
        data = _matrix(tiny_model_dir, server.base_url)
        data["matrix"]["window_size"] = [5]
        data.pop("resources")
        path = _write(tmp_path / "m.yaml", data)
        code, out, _ = _cli("sweep", path, "--results-dir", tmp_path / "sweep", "--dry-run")
        assert code == 0 and out.count("pending") == 4 and "4 cells: 0 done, 4 to run." in out
        code, out, err = _cli("sweep", path, "--results-dir", tmp_path / "sweep", "-q")
        assert code == 0, err
        cells = plan_cells(load_sweep(path), tmp_path / "sweep")
        assert all(c.done for c in cells)
        for i, cell in enumerate(cells):
            _alone(tmp_path, cell.values, tmp_path / "alone")
        _same_records(tmp_path / "sweep", tmp_path / "alone", [c.group for c in cells])
        calls = len(server.bodies)
        code, out, _ = _cli("sweep", path, "--results-dir", tmp_path / "sweep")
        assert code == 0 and "All 4 cells" in out and "nothing to run" in out and len(server.bodies) == calls
        code, out, _ = _cli("sweep", path, "--results-dir", tmp_path / "sweep", "--dry-run")
        assert out.count(" done ") >= 4 and "4 cells: 4 done, 0 to run." in out
    summary = json.loads((tmp_path / "sweep" / "sweep-m.json").read_text())
    assert [c["status"] for c in summary["cells"]] == ["done"] * 4 and summary["execution"] == "local"


def test_max_parallel_runs_harness_run_processes_and_reports_a_failed_cell(tmp_path):
    path = _write(tmp_path / "p.yaml", {"base": {"task": "tiny"},
                                        "matrix": {"reranker": ["none", "oracle"]},
                                        "cells": [{"task": str(tmp_path / "no-such-dir")}]})
    with pytest.raises(HarnessError, match="no-such-dir"):  # planning names the bad cell before any run
        plan_cells(load_sweep(path), tmp_path / "r")
    path = _write(tmp_path / "p.yaml", {"base": {"task": "tiny"}, "matrix": {"reranker": ["none", "oracle"]}})
    outcome = run_sweep(plan_cells(load_sweep(path), tmp_path / "r"), tmp_path / "r", max_parallel=2, quiet=True)
    assert [c.status for c in outcome.cells] == ["done", "done"] and outcome.ran == 2
    assert len(list((tmp_path / "r").glob("*/tiny/run.trec"))) == 2


def test_a_cell_needing_more_gpus_than_the_machine_fails_at_once(tmp_path):
    path = _write(tmp_path / "g.yaml", {"base": {"task": "tiny"}, "matrix": {"reranker": ["oracle"]},
                                        "resources": {"num_gpus": 4}})
    outcome = run_sweep(plan_cells(load_sweep(path), tmp_path / "r"), tmp_path / "r", quiet=True)
    [cell] = outcome.failed
    assert cell.status == "unplaceable" and "needs 4 GPUs; this machine has 0" in cell.error


# --- Ray ------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    workers = [cluster.add_node(num_cpus=2, num_gpus=1), cluster.add_node(num_cpus=2, num_gpus=1),
               cluster.add_node(num_cpus=2, num_gpus=2)]
    ray.init(address=cluster.address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.slow
def test_ray_sweep_survives_a_killed_node_with_records_equal_to_harness_run(ray_cluster, tiny_model_dir, tmp_path):
    cluster, workers = ray_cluster
    victim = workers[0]
    killed: dict[str, list[str]] = {"cells": []}

    def on_change(cells):
        if killed["cells"]:
            return
        on_victim = [c for c in cells if c.status == "running" and c.node_id == victim.node_id]
        if on_victim:
            killed["cells"] = [c.group for c in on_victim]
            killed["done_before"] = [c.group for c in cells if c.done]
            cluster.remove_node(victim, allow_graceful=False)  # SIGKILL of the node's raylet and workers

    with ScriptedServer(reasonrank_answer, delay=0.05) as server:
        path = _write(tmp_path / "r.yaml", _matrix(tiny_model_dir, server.base_url))
        cells = plan_cells(load_sweep(path), tmp_path / "ray")
        assert len(cells) == 8 and all(c.num_gpus == 1 for c in cells)
        outcome = run_sweep(cells, tmp_path / "ray", ray_address="auto", retries=2, quiet=True, name="r",
                            on_change=on_change)
        assert [c.status for c in outcome.cells] == ["done"] * 8, [c.error for c in outcome.cells]
        assert killed["cells"], "the victim node never ran a cell"
        for cell in outcome.cells:
            expected = 2 if cell.group in killed["cells"] else 1
            assert cell.attempts == expected, (cell.name, cell.attempts, killed)
        for cell in cells:
            _alone(tmp_path, cell.values, tmp_path / "alone")
    _same_records(tmp_path / "ray", tmp_path / "alone", [c.group for c in cells])
    summary = json.loads((tmp_path / "ray" / "sweep-r.json").read_text())
    assert summary["execution"] == "ray" and summary["gpu_hours"] > 0

    # a cell bigger than every node: refused at submission, never queued forever
    big = _write(tmp_path / "big.yaml", {"base": {"task": "tiny"}, "matrix": {"reranker": ["oracle"]},
                                         "resources": {"num_gpus": 3}})
    outcome = run_sweep(plan_cells(load_sweep(big), tmp_path / "ray2"), tmp_path / "ray2", ray_address="auto",
                        quiet=True)
    [cell] = outcome.failed
    assert cell.status == "unplaceable" and "largest node of this cluster has 2 GPUs" in cell.error


def test_the_readme_sweep_file_is_the_committed_one_and_loads():
    import re

    root = Path(__file__).resolve().parent.parent
    block = re.search(r"```yaml\n# sweeps/bright.yaml\n(.*?)```", (root / "README.md").read_text(), re.S).group(1)
    committed = (root / "sweeps" / "bright.yaml").read_text()
    assert yaml.safe_load(block) == yaml.safe_load(committed)
    cells = load_sweep(root / "sweeps" / "bright.yaml")
    assert len(cells) == 7  # 2 × 2 × 2, minus rankzephyr at window 10 on both tasks, plus one extra cell
    assert cells[-1].values == {"backend": "vllm", "task": "bright", "reranker": "rank1"}


def test_a_ray_head_that_does_not_answer_fails_at_once(tmp_path):
    path = _write(tmp_path / "s.yaml", {"base": {"task": "tiny"}, "matrix": {"reranker": ["oracle"]}})
    from harness.sweep import _check_reachable

    with pytest.raises(HarnessError, match="nothing answers there"):
        _check_reachable("127.0.0.1:9")
    _check_reachable("auto")  # resolved by Ray itself
    assert load_sweep(path)


def test_max_parallel_gives_each_cell_its_own_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # two GPUs as far as the sweep's placement is concerned
    path = _write(tmp_path / "g.yaml", {"base": {"task": "tiny"}, "matrix": {"reranker": ["none", "oracle"],
                                                                          "top_k": [2, 3]},
                                        "resources": {"num_gpus": 1}})
    seen: list[list[str]] = []

    def on_change(cells):
        seen.append([c.node for c in cells if c.status == "running"])

    outcome = run_sweep(plan_cells(load_sweep(path), tmp_path / "r"), tmp_path / "r", max_parallel=3, quiet=True,
                        on_change=on_change)
    assert [c.status for c in outcome.cells] == ["done"] * 4
    assert max(len(running) for running in seen) <= 2  # three slots, but only two GPUs
    for running in seen:
        assert len(set(running)) == len(running) and all(n in ("local GPU 0", "local GPU 1") for n in running)
