"""Model-call cache: hits and misses, two writer processes at once, corruption detected and never used."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.cache import DB_NAME, CacheCorruptionWarning, CachedBackend, CallCache, call_key
from harness.llm import Backend, Generation, GenerationRequest, SamplingParams

ROOT = Path(__file__).resolve().parent.parent


class CountingBackend(Backend):
    name = "counting"
    model_id = "m"

    def __init__(self, fail: bool = False):
        self.calls: list[str] = []
        self.fail = fail

    async def agenerate(self, request: GenerationRequest) -> Generation:
        self.calls.append(request.prompt)
        if self.fail:
            raise RuntimeError("engine exploded")
        return Generation(text=f"answer to {request.prompt}", input_tokens=11, output_tokens=7, seconds=1.25,
                          finish_reason="length", logprobs=[{5: -0.1, 9: -2.5}])


def _req(prompt: str, **params) -> GenerationRequest:
    return GenerationRequest(prompt, SamplingParams(**params), label=f"label {prompt}")


def test_hit_and_miss(tmp_path):
    inner = CountingBackend()
    backend = CachedBackend(inner, CallCache(tmp_path), model_key="org/model@abc")
    first = asyncio.run(backend.agenerate(_req("p1")))
    assert not first.cached and inner.calls == ["p1"]
    second = asyncio.run(backend.agenerate(_req("p1")))
    assert inner.calls == ["p1"], "a repeated call must not reach the model"
    assert second.cached and second.text == first.text
    assert (second.input_tokens, second.output_tokens, second.finish_reason) == (11, 7, "length")
    assert second.seconds == 1.25 and second.extra["cache"]["original_seconds"] == 1.25
    assert second.logprobs == [{5: -0.1, 9: -2.5}]
    # other sampling params, other model revision or other prompt → miss
    asyncio.run(backend.agenerate(_req("p1", max_tokens=3172)))
    asyncio.run(CachedBackend(inner, CallCache(tmp_path), "org/model@def").agenerate(_req("p1")))
    asyncio.run(backend.agenerate(_req("p1 ")))
    assert len(inner.calls) == 4
    assert (backend.hits, backend.misses) == (1, 3)
    # persisted: a new process-level cache object (a resumed run) hits
    again = CachedBackend(CountingBackend(), CallCache(tmp_path), "org/model@abc")
    assert asyncio.run(again.agenerate(_req("p1"))).cached
    assert again.inner.calls == []


def test_failures_are_not_cached(tmp_path):
    backend = CachedBackend(CountingBackend(fail=True), CallCache(tmp_path), "m@r")
    with pytest.raises(RuntimeError):
        asyncio.run(backend.agenerate(_req("p")))
    assert len(backend.cache) == 0


def test_key_is_content_addressed():
    params = SamplingParams().as_dict()
    assert call_key("m@r", "p", params) == call_key("m@r", "p", dict(reversed(list(params.items()))))
    assert call_key("m@r", "p", params) != call_key("m@r", "p", {**params, "temperature": 0.6})


_WRITER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    from harness.cache import CallCache, call_key
    from harness.llm import Generation
    directory, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cache = CallCache(directory)
    open(os.path.join(directory, "ready-" + tag), "w").close()
    deadline = time.monotonic() + 300  # an orphaned writer must not wait forever
    while not os.path.exists(os.path.join(directory, "go")):  # start both writers at the same moment
        if time.monotonic() > deadline:
            sys.exit("no go signal within 300 s")
        time.sleep(0.005)
    for i in range(n):
        key = call_key("m@r", f"prompt {{i}}", {{}})  # both writers write the same keys
        cache.put(key, "m@r", Generation(text=f"text {{i}}", input_tokens=i, output_tokens=1, seconds=0.5))
        cache.put(call_key("m@r", f"{{tag}} {{i}}", {{}}), "m@r", Generation(text=tag, input_tokens=0,
                  output_tokens=0, seconds=0.0))
        assert cache.get(key) is not None
    print("done", tag)
""")


def test_two_writer_processes(tmp_path):
    n = 1500
    directory = tmp_path / "c"
    directory.mkdir()
    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(root=str(ROOT)))
    procs = [subprocess.Popen([sys.executable, "-W", "error::UserWarning", str(script), str(directory), tag, str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    try:
        deadline = time.monotonic() + 120
        while not all((directory / f"ready-{tag}").exists() for tag in ("a", "b")):
            dead = [p for p in procs if p.poll() is not None]
            # a writer that died before "go" would leave the other waiting forever: report it instead
            assert not dead, "a writer died before the start: " + dead[0].communicate()[1]
            assert time.monotonic() < deadline, "the writers did not start within 120 s"
            time.sleep(0.005)
        (directory / "go").touch()
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    cache = CallCache(directory)
    assert len(cache) == 3 * n
    for i in range(n):
        hit = cache.get(call_key("m@r", f"prompt {i}", {}))
        assert hit is not None and hit.text == f"text {i}" and hit.input_tokens == i
        assert cache.get(call_key("m@r", f"a {i}", {})).text == "a"
        assert cache.get(call_key("m@r", f"b {i}", {})).text == "b"
    assert cache.corrupt_entries == 0


def test_tampered_entry_is_detected_and_recomputed(tmp_path):
    inner = CountingBackend()
    backend = CachedBackend(inner, CallCache(tmp_path), "m@r")
    asyncio.run(backend.agenerate(_req("p")))
    backend.cache.close()
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("UPDATE calls SET value = replace(value, 'answer', 'forged')")
    backend = CachedBackend(inner, CallCache(tmp_path), "m@r")
    with pytest.warns(CacheCorruptionWarning, match="integrity check"):
        result = asyncio.run(backend.agenerate(_req("p")))
    assert not result.cached and result.text == "answer to p" and len(inner.calls) == 2
    assert asyncio.run(backend.agenerate(_req("p"))).cached  # the recomputed entry replaced the bad one


def test_unreadable_database_is_quarantined(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"this is not a sqlite database at all" * 200)
    with pytest.warns(CacheCorruptionWarning, match="unreadable"):
        cache = CallCache(tmp_path)
    assert len(cache) == 0
    quarantined = list(tmp_path.glob(f"{DB_NAME}.corrupt-*"))
    assert quarantined and quarantined[0].read_bytes().startswith(b"this is not")
    backend = CachedBackend(CountingBackend(), cache, "m@r")
    asyncio.run(backend.agenerate(_req("p")))
    assert asyncio.run(backend.agenerate(_req("p"))).cached


_OPENER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    from harness.cache import CallCache, call_key
    from harness.llm import Generation
    directory, tag = sys.argv[1], sys.argv[2]
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(directory, "go")) and time.monotonic() < deadline:
        time.sleep(0.0005)
    cache = CallCache(directory)
    cache.put(call_key("m@r", tag, {{}}), "m@r", Generation(text=tag, input_tokens=1, output_tokens=1, seconds=0.1))
    print("ok")
""")


def test_runs_opening_a_new_cache_at_the_same_moment_all_succeed(tmp_path):
    """Reproduction: SQLite answers the race to switch a new database to WAL with an immediate 'database is locked'
    (no busy wait), so one of two runs started together failed (about 3 % of opens on a 2-core machine)."""
    script = tmp_path / "opener.py"
    script.write_text(_OPENER.format(root=str(ROOT)))
    rounds, per_round = 8, 5
    for r in range(rounds):
        directory = tmp_path / f"c{r}"
        directory.mkdir()
        procs = [subprocess.Popen([sys.executable, str(script), str(directory), f"t{i}"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(per_round)]
        time.sleep(0.4)  # let every process reach the start line
        (directory / "go").touch()
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0 and out.strip() == "ok", err
        assert len(CallCache(directory)) == per_round
