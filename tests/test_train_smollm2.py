"""CI smoke of benchmarks/train_smollm2.py: the real model (SmolLM2-135M) through judgments teacher → filter → SFT →
GRPO → held-out evaluation, a few steps and a handful of queries; the loss falls and the checkpoint reranks through
``harness run``."""

from __future__ import annotations

import importlib.util
import io
import json
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from harness.cli import main as harness_main
from harness.schema import load_record

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smollm2():
    from harness.embedded import prepared_path
    from harness.errors import DataNotAvailableError

    pytest.importorskip("trl", reason="the train extra is not installed")
    try:
        return prepared_path("smollm2-135m")
    except DataNotAvailableError as exc:
        pytest.skip(f"SmolLM2 could not be prepared here: {exc}")


def test_the_prepared_model_is_plain_float32_weights(smollm2):
    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config  # trainers refuse "purely quantized" models


def test_judgments_teacher_labels_and_the_filter_runs(smollm2, tmp_path):
    from training.filter import filter_dir
    from training.synthesize import JUDGMENTS_KIND, SynthesisSpec, synthesize

    report = synthesize(SynthesisSpec(task="pydocs/train", teacher="judgments", base_url=None,
                                      out_dir=str(tmp_path / "l"), top_k=10, window_size=10, limit=20,
                                      tokenizer=str(smollm2), passage_length=64))
    assert report.examples == 20 and report.calls == 0
    rows = [json.loads(line) for line in (tmp_path / "l" / "training_data_all.jsonl").read_text().splitlines()]
    assert all(r["teacher"]["kind"] == JUDGMENTS_KIND for r in rows)
    with_relevant = [r for r in rows if r["relevant_docids"]]
    assert all(r["final_list"][0] in r["relevant_docids"] for r in with_relevant)
    assert all(sorted(r["final_list"]) == sorted(r["initial_list"]) for r in rows)
    filtered = filter_dir(tmp_path / "l", tmp_path / "f")
    assert filtered.kept == len(with_relevant) < filtered.total  # windows without a relevant passage go


def test_shuffled_windows_are_seeded_permutations_of_the_first_stage_windows(smollm2, tmp_path):
    from training.synthesize import SynthesisSpec, synthesize

    def rows(seed, name):
        synthesize(SynthesisSpec(task="pydocs/train", teacher="judgments", base_url=None, out_dir=str(tmp_path / name),
                                 top_k=10, window_size=10, limit=12, tokenizer=str(smollm2), passage_length=32,
                                 shuffle_seed=seed))
        return [json.loads(line) for line in (tmp_path / name / "training_data_all.jsonl").read_text().splitlines()]

    plain, shuffled, again = rows(None, "plain"), rows(7, "a"), rows(7, "b")
    assert [r["initial_list"] for r in shuffled] == [r["initial_list"] for r in again]  # seeded
    assert all(sorted(a["initial_list"]) == sorted(b["initial_list"]) for a, b in zip(plain, shuffled))
    assert any(a["initial_list"] != b["initial_list"] for a, b in zip(plain, shuffled))
    assert all(r["final_list"][0] in r["relevant_docids"] for r in shuffled if r["relevant_docids"])


@pytest.mark.slow
def test_train_smollm2_smoke_loss_falls_and_the_checkpoint_reranks(smollm2, tmp_path):
    spec = importlib.util.spec_from_file_location("train_smollm2", ROOT / "benchmarks" / "train_smollm2.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rows = script.main(["--quick", "--out", str(tmp_path / "out"), "--json", str(tmp_path / "rows.json"),
                        "--train-queries", "40", "--sft-steps", "3", "--grpo-steps", "1", "--eval-queries", "2"])
    assert [r["model"] for r in rows] == ["first-stage", "base", "sft", "grpo"]
    assert json.loads((tmp_path / "rows.json").read_text()) == rows
    table = json.loads((tmp_path / "out" / "table.json").read_text())
    losses = [loss for _, loss in table["sft_loss"]]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    assert len(table["grpo_reward"]) == 1
    # the trained checkpoint is a plain model directory: harness run loads it and reranks
    checkpoint = tmp_path / "out" / "checkpoints" / "grpo"
    err = io.StringIO()
    with redirect_stderr(err), pytest.raises(SystemExit) as exc:
        harness_main(["run", "--task", "pydocs/demo", "--limit", "1", "--top-k", "5", "--reranker", "reasonrank",
                      "--model", str(checkpoint), "--backend", "hf", "--device", "cpu", "--window-size", "5",
                      "--passage-length", "32", "--reasoning-budget", "16", "--results-dir", str(tmp_path / "r"),
                      "--no-cache", "-q"])
    assert exc.value.code in (0, 1, None), err.getvalue()  # 1: a 3-step model may still be degenerate
    [path] = (tmp_path / "r").glob("*/*/record.json")
    record = load_record(path)
    assert record.counts.model_calls == 1 and record.reranker.model.endswith("grpo")
