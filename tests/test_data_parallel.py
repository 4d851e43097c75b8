"""``--data-parallel N``: engine replicas in their own processes; the run file equals ``--data-parallel 1``."""

from __future__ import annotations

import asyncio
import io
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from harness.backends.data_parallel import DataParallelBackend, device_slices
from harness.cli import main
from harness.errors import HarnessError
from harness.llm import GenerationRequest, SamplingParams
from harness.schema import load_record
from harness.spec import ExecutionSpec


def _cli(*args) -> tuple[int, str]:
    buffer = io.StringIO()
    with redirect_stderr(buffer), pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), buffer.getvalue()


def test_device_slices_split_the_visible_gpus():
    assert device_slices(2, 2, "4,5,6,7", 0) == [{"CUDA_VISIBLE_DEVICES": "4,5"}, {"CUDA_VISIBLE_DEVICES": "6,7"}]
    assert device_slices(3, 1, None, 4) == [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(3)]
    assert device_slices(2, 1, None, 0) == [{}, {}]  # CPU: replicas share the machine
    with pytest.raises(HarnessError, match=r"needs 4 GPUs; this machine shows 2"):
        device_slices(2, 2, "0,1", 0)


def test_servers_do_data_parallel_themselves():
    with pytest.raises(HarnessError, match="vllm serve MODEL --data-parallel-size 2"):
        DataParallelBackend("openai", "m", None, ExecutionSpec(data_parallel=2), {}, replicas=2)


def test_replicas_answer_like_one_engine_and_share_the_calls(tiny_model_dir):
    from harness.backends.hf import HFBackend

    prompts = [f"Query {i}: rank the passages" for i in range(8)]
    params = SamplingParams(max_tokens=6)
    single = HFBackend(str(tiny_model_dir), device="cpu")

    async def ask(backend):
        return await asyncio.gather(*(backend.agenerate(GenerationRequest(p, params)) for p in prompts))

    expected = [g.text for g in asyncio.run(ask(single))]
    backend = DataParallelBackend("hf", str(tiny_model_dir), None, ExecutionSpec(data_parallel=2),
                                  {"device": "cpu"}, replicas=2)
    try:
        got = asyncio.run(ask(backend))
        assert [g.text for g in got] == expected
        assert all(n > 0 for n in backend.calls_per_replica) and sum(backend.calls_per_replica) == len(prompts)
        assert backend.hardware()["data_parallel"] == 2 and backend.describe()["data_parallel"] == 2
    finally:
        backend.close()
    assert all(not p.is_alive() for p in backend._procs)


def test_data_parallel_2_gives_the_run_file_of_data_parallel_1(tiny_model_dir, tmp_path):
    common = ["--task", "tiny", "--reranker", "reasonrank", "--model", tiny_model_dir, "--backend", "hf",
              "--device", "cpu", "--reasoning-budget", "8", "--window-size", "5", "--step", "5", "--no-cache", "-q"]
    runs = {}
    for dp in (1, 2):
        code, err = _cli("run", "--results-dir", tmp_path / f"dp{dp}", "--data-parallel", dp, *common)
        assert code in (0, 1), err  # a random model may be degenerate; the run completes
        [path] = (tmp_path / f"dp{dp}").glob("*/*/record.json")
        runs[dp] = (path.parent.parent.name, (path.parent / "run.trec").read_bytes(), load_record(path))
    assert runs[1][0] == runs[2][0], "data parallel is execution, not identity: one group"
    assert runs[1][1] == runs[2][1]
    assert runs[2][2].execution.hardware.data_parallel == 2 and runs[1][2].execution.hardware.data_parallel == 1
    assert runs[1][2].metrics == runs[2][2].metrics
