"""Resume and replay, end to end through the CLI against a scripted OpenAI-compatible server on 127.0.0.1.

1. A real ``harness run`` subprocess is killed with SIGKILL after some windows were answered.
2. The same command again resumes: windows answered before the kill are never sent to the server again.
3. Its run.trec is byte-identical to an uninterrupted run (fresh results dir, no cache); re-running the finished
   run makes zero model calls; ``--backend replay:TRACES --no-cache`` reproduces it with zero model calls.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.schema import load_record
from openai_server import ScriptedServer, reasonrank_answer

ROOT = Path(__file__).resolve().parent.parent
WINDOWS = 20  # tiny: 5 queries × 10 candidates, window 4 / step 2 → 4 windows per query


def _argv(server, model, results, *extra):
    return ["run", "--task", "tiny", "--reranker", "reasonrank", "--backend", "openai", "--base-url",
            server.base_url, "--model", str(model), "--results-dir", str(results), "--window-size", "4",
            "--step", "2", "--concurrency", "1", "-q", *extra]


def _cli(argv):
    from harness.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code in (0, None)


def _only(results: Path, name: str) -> Path:
    [path] = results.glob(f"*/*/{name}")
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_killed_run_resumes_byte_identical(tiny_model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    with ScriptedServer(reasonrank_answer, delay=0.3) as server:
        # 1. interrupted run, in a real process
        traces_killed = tmp_path / "killed.jsonl"
        env = dict(os.environ, HARNESS_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli",
                                 *_argv(server, tiny_model_dir, tmp_path / "r1", "--save-traces", str(traces_killed))],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120

        def partial() -> list[Path]:  # the traces of a running (or killed) run live in a private partial file
            return list(tmp_path.glob(f".{traces_killed.name}.partial-*"))

        while time.monotonic() < deadline and proc.poll() is None:
            if partial() and len(partial()[0].read_text(encoding="utf-8").splitlines()) >= 5:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()[1][-2000:]!r}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        server.wait_idle()  # the killed client's last request may still be in a handler
        answered = {r["prompt"] for r in _lines(partial()[0])}
        assert 5 <= len(answered) < WINDOWS
        assert not traces_killed.exists(), "a killed run's traces stay in its partial file"
        assert not list((tmp_path / "r1").glob("*/*/run.trec")), "a killed run must not leave a record"
        before = dict(server.prompt_hits)

        # 2. resume: same command
        server.delay = 0.0
        traces = tmp_path / "resumed.jsonl"
        _cli(_argv(server, tiny_model_dir, tmp_path / "r1", "--save-traces", str(traces)))
        server.wait_idle()
        assert len(server.prompt_hits) == WINDOWS
        for prompt in answered:
            assert server.prompt_hits[prompt] == before[prompt], "a window answered before the kill was sent again"
        sent_again = [p for p in before if server.prompt_hits[p] > before[p]]
        assert len(sent_again) <= 1  # only the call in flight at the kill (concurrency 1) may be repeated
        resumed_run = _only(tmp_path / "r1", "run.trec").read_bytes()
        record = load_record(_only(tmp_path / "r1", "record.json"))
        assert record.counts.model_calls == WINDOWS and record.counts.parse_failures == 0
        assert sum(c.cached_calls for c in record.costs) >= len(answered)
        assert record.execution.backend == "openai"
        assert all(c.generation_seconds > 0 for c in record.costs)
        resumed_traces = _lines(traces)
        assert len(resumed_traces) == WINDOWS  # cached calls are traced too: the file describes the whole run
        assert _lines(_only(tmp_path / "r1", "traces.jsonl")) == resumed_traces

        # 3a. re-running the finished run makes zero model calls
        hits = len(server.bodies)
        _cli(_argv(server, tiny_model_dir, tmp_path / "r2"))
        assert len(server.bodies) == hits
        assert _only(tmp_path / "r2", "run.trec").read_bytes() == resumed_run

        # 3b. an uninterrupted run without the cache gives the same bytes
        _cli(_argv(server, tiny_model_dir, tmp_path / "r3", "--no-cache"))
        assert len(server.bodies) == hits + WINDOWS
        assert _only(tmp_path / "r3", "run.trec").read_bytes() == resumed_run

        # 3c. replay of the saved traces: same bytes, zero model calls (the server URL is not even needed)
        hits = len(server.bodies)
        replay_argv = _argv(server, tiny_model_dir, tmp_path / "r4", "--no-cache")
        replay_argv[replay_argv.index("openai")] = f"replay:{traces}"
        _cli(replay_argv)
        assert len(server.bodies) == hits
        assert _only(tmp_path / "r4", "run.trec").read_bytes() == resumed_run
        replayed = load_record(_only(tmp_path / "r4", "record.json"))
        assert replayed.execution.backend == "replay" and replayed.execution.replay_checked is True
        assert sum(c.cached_calls for c in replayed.costs) == WINDOWS
        assert replayed.metrics == record.metrics


def test_replay_of_different_settings_is_a_clear_error(tiny_model_dir, tmp_path, capsys):
    traces = tmp_path / "t.jsonl"
    with ScriptedServer(reasonrank_answer) as server:
        _cli(_argv(server, tiny_model_dir, tmp_path / "a", "--no-cache", "--save-traces", str(traces)))
        argv = _argv(server, tiny_model_dir, tmp_path / "b", "--no-cache")
        argv[argv.index("openai")] = f"replay:{traces}"
        argv[argv.index("--window-size") + 1] = "5"  # different windows → prompts not in the traces
        from harness.cli import main

        with pytest.raises(SystemExit) as exit_info:
            main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no recorded response" in err and "window" in err and str(traces) in err.replace("\n", "")
