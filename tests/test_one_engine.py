"""A multi-subset run feeds every subset's queries into one engine at once; rankings equal subset-by-subset runs,
records are written per subset, and a run killed mid-way resumes to the same files."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr
from pathlib import Path

import pytest
from openai_server import ScriptedServer, reasonrank_answer

from harness.cli import main
from harness.schema import load_record

ROOT = Path(__file__).resolve().parent.parent
ALONE = ("biology", "aops")  # checked against single-subset runs (all twelve are checked against --one-subset-at-a-time)


@pytest.fixture(autouse=True)
def bright_fixture():
    from data_fixtures import BRIGHT_SUBSETS, write_bright_cache

    write_bright_cache(None, n_queries=2, first_stage_dir=None)  # every test that reads BRIGHT writes its own first
    return BRIGHT_SUBSETS


def _cli(*args) -> tuple[int, str]:
    buffer = io.StringIO()
    with redirect_stderr(buffer), pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), buffer.getvalue()


def _argv(server, model, results: Path, task: str = "bright", *extra) -> list[str]:
    return ["run", "--task", task, "--first-stage", "bm25", "--limit", "2", "--top-k", "6", "--reranker", "reasonrank", "--model", str(model),
            "--backend", "openai", "--base-url", server.base_url, "--window-size", "4", "--step", "2",
            "--concurrency", "3", "--results-dir", str(results), "-q", *extra]


def _runs(results: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in results.glob("*/*/run.trec")}


def test_one_engine_equals_subset_by_subset_and_fills_the_batch(tiny_model_dir, tmp_path, bright_fixture):
    with ScriptedServer(reasonrank_answer, delay=0.05) as server:
        code, err = _cli(*_argv(server, tiny_model_dir, tmp_path / "together", "bright", "--no-cache"))
        assert code == 0, err
        together = server.max_concurrent
        server.max_concurrent = 0
        code, err = _cli(*_argv(server, tiny_model_dir, tmp_path / "apart", "bright", "--no-cache",
                                "--one-subset-at-a-time"))
        assert code == 0, err
        apart = server.max_concurrent
        for subset in ALONE:
            code, err = _cli(*_argv(server, tiny_model_dir, tmp_path / f"alone-{subset}", f"bright/{subset}",
                                    "--no-cache"))
            assert code == 0, err
    runs = _runs(tmp_path / "together")
    assert sorted(runs) == sorted(bright_fixture)
    assert runs == _runs(tmp_path / "apart")
    for subset in ALONE:
        assert _runs(tmp_path / f"alone-{subset}") == {subset: runs[subset]}
    # --concurrency 3 is one limit for the whole run, not 3 per subset
    assert apart <= 3 and together <= 3
    for path in (tmp_path / "together").glob("*/*/record.json"):
        record = load_record(path)
        assert record.counts.queries == 2 and record.counts.parse_failures == 0
    [aggregate] = (tmp_path / "together").glob("*/record.json")
    assert len(load_record(aggregate).subsets) == 12


def test_every_subset_s_queries_are_in_flight_together(tiny_model_dir, tmp_path):
    with ScriptedServer(reasonrank_answer, delay=0.1) as server:
        code, err = _cli(*_argv(server, tiny_model_dir, tmp_path / "r", "bright", "--no-cache", "--concurrency",
                                "64"))
        assert code == 0, err
        together = server.max_concurrent
        server.max_concurrent = 0
        code, err = _cli(*_argv(server, tiny_model_dir, tmp_path / "s", "bright", "--no-cache", "--concurrency",
                                "64", "--one-subset-at-a-time"))
        assert code == 0, err
    assert together > 2 >= server.max_concurrent, (together, server.max_concurrent)  # 2 queries per subset


def test_a_killed_multi_subset_run_resumes_to_the_same_files(tiny_model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    with ScriptedServer(reasonrank_answer, delay=0.25) as server:
        env = dict(os.environ, HARNESS_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *_argv(server, tiny_model_dir, tmp_path / "r")],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and len(server.bodies) < 10:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        server.wait_idle()
        answered = len(server.bodies)
        server.delay = 0.0
        code, err = _cli(*_argv(server, tiny_model_dir, tmp_path / "r"))
        assert code == 0, err
        resumed_calls = len(server.bodies) - answered
        code, err = _cli(*_argv(server, tiny_model_dir, tmp_path / "ref", "bright", "--no-cache"))
        assert code == 0, err
        total = len(server.bodies) - answered - resumed_calls
    assert _runs(tmp_path / "r") == _runs(tmp_path / "ref") and len(_runs(tmp_path / "r")) == 12
    assert resumed_calls <= total - answered + 3  # the resumed run re-sent at most the calls in flight at the kill
