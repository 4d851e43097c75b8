"""Real models and real servers end to end: the tiny random model behind ``transformers serve`` (default suite), and
SmolLM2-135M-Instruct (the embedded model) through all three rerankers on the hf backend and behind real servers
(slow tests, run in CI too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.schema import load_record
from real_servers import llama_cpp_server, transformers_serve


def _cli(*args) -> tuple[int, str]:
    import io
    from contextlib import redirect_stderr

    buffer = io.StringIO()
    with redirect_stderr(buffer), pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), buffer.getvalue()


def _record(results: Path):
    [path] = results.glob("*/*/record.json")
    return load_record(path)


def _run(results: Path, *args):
    return ["run", "--results-dir", results, "-q", *args]


@pytest.fixture(scope="module")
def smollm2():
    from harness.embedded import prepared_path
    from harness.errors import DataNotAvailableError

    try:
        return prepared_path("smollm2-135m")
    except DataNotAvailableError as exc:
        pytest.skip(f"SmolLM2 could not be prepared here: {exc}")


# --- the tiny random model behind transformers serve --------------------------------------------------------------

def test_transformers_serve_with_the_tiny_model(tiny_model_dir, tmp_path):
    with transformers_serve(tiny_model_dir, tmp_path / "serve.log") as url:
        common = ["--task", "tiny", "--model", tiny_model_dir, "--backend", "openai", "--base-url", url,
                  "--served-model", tiny_model_dir, "--no-cache"]
        code, err = _cli(*_run(tmp_path / "rr", *common, "--reranker", "reasonrank", "--reasoning-budget", "8",
                              "--window-size", "5", "--step", "5"))
        assert code in (0, 1), err  # a random model: the run completes (and may be degenerate)
        record = _record(tmp_path / "rr")
        assert record.execution.engine["server_profile"] == "transformers"  # detected from GET /v1/models
        assert "detected" in record.execution.engine["server_profile_source"]
        assert record.counts.model_calls == 10 and record.costs[0].input_tokens > 0  # 2 windows × 5 queries
        code, err = _cli(*_run(tmp_path / "rz", *common, "--reranker", "rankzephyr", "--window-size", "5",
                              "--step", "5"))
        assert code in (0, 1), err
        # Rank1 needs token-id log-probs, which transformers serve does not return: refused before any call
        code, err = _cli(*_run(tmp_path / "r1", *common, "--reranker", "rank1", "--max-tokens", "4"))
        assert code == 2 and "needs allowed_token_ids, logprobs" in err and "transformers" in err


# --- SmolLM2 -------------------------------------------------------------------------------------------------------

DEMO = {"reasonrank": ["--window-size", "10", "--passage-length", "48", "--reasoning-budget", "64"],
        "rankzephyr": ["--window-size", "10", "--passage-length", "40"],
        "rank1": ["--max-tokens", "32"]}


@pytest.mark.slow
@pytest.mark.parametrize("reranker", ["reasonrank", "rankzephyr", "rank1"])
def test_smollm2_through_every_reranker_on_the_hf_backend(smollm2, reranker, tmp_path):
    code, err = _cli(*_run(tmp_path, "--task", "pydocs/demo", "--reranker", reranker, "--model", "smollm2-135m",
                           "--backend", "hf", "--top-k", "10", "--limit", "2", *DEMO[reranker]))
    assert code == 0, err
    record = _record(tmp_path)
    counts = record.counts
    assert counts.queries == 2 and counts.model_calls >= (2 if reranker != "rank1" else 20)
    assert counts.parse_failures <= counts.windows + counts.pairs  # counted, whatever the model does
    [cost] = record.costs
    assert cost.hardware.backend == "hf" and cost.generation_seconds > 0 and cost.output_tokens > 0
    if reranker == "rank1":  # real probabilities from the model's log-probs (directly or by the fix pass)
        run = (next(tmp_path.glob("*/*/run.trec"))).read_text().split("\n")
        scores = [float(line.split()[4]) for line in run if line]
        assert all(0.0 < s < 1.0 for s in scores) and len(set(scores)) > 1
        assert counts.fallbacks.get("score_0.5", 0) == 0


@pytest.mark.slow
def test_the_readme_main_job_command_on_fewer_queries(smollm2, tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if line.startswith(".venv/bin/harness run --task pydocs/demo"))
    import shlex

    args = shlex.split(command.split(" # ")[0])[1:]
    code, err = _cli(*args, "--limit", "2", "--results-dir", tmp_path, "-q")
    assert code == 0, err
    assert "pydocs/demo: nDCG@10 = " in err and "parse failures" in err and "s/query" in err


@pytest.mark.slow
def test_smollm2_hf_batching_gives_the_tokens_of_one_at_a_time(smollm2):
    from harness.backends.hf import HFBackend
    from harness.llm import GenerationRequest, SamplingParams
    from tasks import resolve_tasks

    task = resolve_tasks("pydocs/demo")[0]
    docs = task.docs([d for q in task.qrels.values() for d in q])
    prompts = [f"<|im_start|>user\nSummarise: {text[:400]}<|im_end|>\n<|im_start|>assistant\n" for text in docs.values()]
    backend = HFBackend(str(smollm2), batch_size=8)
    params = SamplingParams(temperature=0.0, max_tokens=24)
    try:
        alone = [backend.generate(GenerationRequest(p, params)) for p in prompts]
        together = backend.generate_batch([GenerationRequest(p, params) for p in prompts])
    finally:
        backend.close()
    assert [g.extra["token_ids"] for g in together] == [g.extra["token_ids"] for g in alone]
    assert [g.text for g in together] == [g.text for g in alone]


@pytest.mark.slow
def test_smollm2_behind_transformers_serve_agrees_with_the_hf_backend(smollm2, tmp_path):
    args = ["--task", "pydocs/demo", "--reranker", "reasonrank", "--model", "smollm2-135m", "--top-k", "10",
            "--limit", "2", "--no-cache", *DEMO["reasonrank"], "--save-traces"]
    code, err = _cli(*_run(tmp_path / "hf", *args, tmp_path / "hf.jsonl", "--backend", "hf"))
    assert code == 0, err
    with transformers_serve(smollm2, tmp_path / "serve.log") as url:
        code, err = _cli(*_run(tmp_path / "srv", *args, tmp_path / "srv.jsonl", "--backend", "openai",
                               "--base-url", url, "--served-model", smollm2))
    assert code == 0, err
    hf = [json.loads(line)["response"] for line in (tmp_path / "hf.jsonl").read_text().splitlines()]
    served = [json.loads(line)["response"] for line in (tmp_path / "srv.jsonl").read_text().splitlines()]
    assert served == hf  # greedy decoding of the same prompt strings: the same answers
    assert next((tmp_path / "hf").glob("*/*/run.trec")).read_text().replace("hf", "") == \
        next((tmp_path / "srv").glob("*/*/run.trec")).read_text().replace("hf", "")


@pytest.mark.slow
def test_smollm2_behind_llama_cpp(smollm2, tmp_path):
    """llama.cpp serves the GGUF itself (Q4_1 arithmetic, so answers may differ from the de-quantized float32 model);
    its log-probs come keyed by token text and are mapped to ids with the tokenizer."""
    from harness.embedded import gguf_copy

    gguf = gguf_copy("smollm2-135m")
    if gguf is None:
        pytest.skip("the prepared SmolLM2 has no GGUF copy (re-run `harness models prepare smollm2-135m --force`)")
    with llama_cpp_server(gguf, tmp_path / "llama.log") as url:
        for reranker in ("reasonrank", "rank1"):
            code, err = _cli(*_run(tmp_path / reranker, "--task", "pydocs/demo", "--reranker", reranker, "--model",
                                   "smollm2-135m", "--backend", "openai", "--base-url", url, "--top-k", "10",
                                   "--limit", "2", "--no-cache", *DEMO[reranker]))
            assert code == 0, err
            record = _record(tmp_path / reranker)
            assert record.execution.engine["server_profile"] == "llama.cpp"
            if reranker == "rank1":
                run = next((tmp_path / reranker).glob("*/*/run.trec")).read_text().split("\n")
                scores = [float(line.split()[4]) for line in run if line]
                assert sum(0.0 < s < 1.0 and s != 0.5 for s in scores) > len(scores) / 2
