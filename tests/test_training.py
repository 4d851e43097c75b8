"""Training pipeline smoke test on CPU: synthesize (scripted OpenAI-compatible teacher on 127.0.0.1) → filter →
convert → 2 SFT steps → 2 GRPO steps → evaluate the checkpoint with `harness run --backend hf`."""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness.commands.train import register
from training.data import (assistant_target, load_grpo_dataset, load_ranking_examples, load_sft_dataset,
                           ranking_string, read_jsonl)
from training.filter import filter_examples, self_consistency
from training.rewards import multi_view_reward

CONFIGS = Path(__file__).resolve().parent.parent / "training" / "configs"


# -- scripted teacher -----------------------------------------------------------------------------------------

def _scripted_answer(prompt: str) -> tuple[str, str]:
    """(reasoning, answer) of a deterministic teacher: rank by word overlap with the query; mark the top two as
    relevant, except for the cats query, where it marks the bottom two (an inconsistent example to filter out)."""
    query = re.search(r"search query: (.*?)\.\n", prompt).group(1)
    passages = re.findall(r"^\[(\d+)\] (.*)$", prompt, flags=re.M)
    words = set(re.findall(r"\w+", query.lower()))
    order = sorted(passages, key=lambda p: (-len(words & set(re.findall(r"\w+", p[1].lower()))), int(p[0])))
    ids = [int(i) for i, _ in order]
    if "Identify every passage" in prompt:
        chosen = ids[-2:] if "cats" in query.lower() else ids[:2]
        return "checking each passage", " ".join(f"[{i}]" for i in chosen)
    return f"comparing {len(ids)} passages by overlap", " > ".join(f"[{i}]" for i in ids)


class _Teacher(BaseHTTPRequestHandler):
    calls: list[str] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(self.path)
        usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        if self.path.endswith("/chat/completions"):
            prompt = body["messages"][-1]["content"]
            reasoning, answer = _scripted_answer(prompt)
            message = {"role": "assistant", "reasoning_content": reasoning, "content": f"<answer>{answer}</answer>"}
            payload = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage}
        elif self.path.endswith("/completions"):
            reasoning, answer = _scripted_answer(body["prompt"])
            payload = {"choices": [{"index": 0, "text": f"<think>{reasoning}</think> <answer>{answer}</answer>",
                                    "finish_reason": "stop"}], "usage": usage}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def teacher_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Teacher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _cli(*args: str) -> str:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `train` a sub-command group
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


# -- pieces -----------------------------------------------------------------------------------------------------

def test_ranking_string_and_target():
    assert ranking_string(["a", "b", "c"], ["c", "a", "b"]) == "[3] > [1] > [2]"
    target = assistant_target("why", "[3] > [1] > [2]")
    assert target == "<think>why</think> <answer>[3] > [1] > [2]</answer>"
    assert multi_view_reward(completions=[target], ground_truth=["[3] > [1] > [2]"], initial_list=[["a", "b", "c"]],
                             relevant_docids=[["c"]]) == [pytest.approx(1.3)]


def test_filter_self_consistency_per_domain():
    from training.data import RankingExamples

    rows = [
        {"dataset": "x", "qid": "1", "initial_list": list("abcdefghij"), "final_list": list("abcdefghij"),
         "relevant_docids": ["a"]},
        {"dataset": "x", "qid": "2", "initial_list": list("abcdefghij"), "final_list": list("abcdefghij"),
         "relevant_docids": ["i", "j"]},
        {"dataset": "y", "qid": "3", "initial_list": list("ab"), "final_list": list("ab"), "relevant_docids": []},
    ]
    assert self_consistency(rows[0]) == 1.0
    kept, report = filter_examples(RankingExamples(rows=rows), 0.4)
    assert [r["qid"] for r in kept.rows] == ["1"]
    assert report.per_domain == {"x": {"kept": 1, "total": 2}, "y": {"kept": 0, "total": 1}}
    assert "all" in report.table()


def test_offline_hub_dataset_error_names_dataset(monkeypatch):
    from harness.errors import DataNotAvailableError
    from training.data import resolve_source

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataNotAvailableError, match="liuwenhan/reasonrank_data_rl"):
        resolve_source("rl")


def test_published_layouts(tmp_path):
    import pandas as pd

    alpaca = [{"instruction": "rank these", "input": "", "output": "<think>x</think> <answer>[1]</answer>",
               "system": "sys"}]
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "reasonrank_sft-data.json").write_text(json.dumps(alpaca))
    rows = load_sft_dataset(str(tmp_path / "sft"))
    assert rows == [{"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "rank these"},
                                  {"role": "assistant", "content": "<think>x</think> <answer>[1]</answer>"}]}]
    (tmp_path / "rl").mkdir()
    pd.DataFrame([{
        "data_source": "ranking", "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "reward_model": {"ground_truth": "[2] > [1]", "style": "rule"},
        "extra_info": {"initial_list": ["d1", "d2"], "final_list": ["d2", "d1"], "relevant_docids": ["d2"],
                       "index": 0},
    }]).to_parquet(tmp_path / "rl" / "train.parquet")
    rl = load_grpo_dataset(str(tmp_path / "rl"))
    assert rl[0]["prompt"][1] == {"role": "user", "content": "u"}
    assert (rl[0]["ground_truth"], rl[0]["initial_list"], rl[0]["relevant_docids"]) == ("[2] > [1]", ["d1", "d2"], ["d2"])


# -- the whole pipeline -----------------------------------------------------------------------------------------

def test_pipeline_synthesize_filter_convert_sft_grpo_eval(tmp_path, teacher_url, tiny_model_dir):
    from harness.cli import main as harness_main
    from rerankers import reasonrank
    from harness.models import load_tokenizer

    tokenizer = str(tiny_model_dir)
    synth = tmp_path / "synth"
    _Teacher.calls.clear()
    out = _cli("train", "synthesize", "--task", "tiny", "--teacher", "scripted-r1", "--base-url", teacher_url,
               "--out", str(synth), "--tokenizer", tokenizer, "--concurrency", "4")
    assert "examples" in out
    first_calls = len(_Teacher.calls)
    examples = load_ranking_examples(synth)
    assert len(examples.rows) == 5 and first_calls == 10
    row = examples.rows[0]
    assert sorted(row["final_list"]) == sorted(row["initial_list"]) and row["reasoning"].startswith("comparing")
    assert set(row["relevant_docids"]) <= set(row["initial_list"]) and len(row["relevant_docids"]) == 2
    assert row["usage"]["input_tokens"] == 200 and row["usage"]["output_tokens"] == 40
    assert set(examples.docs) >= set(row["initial_list"]) and row["qid"] in examples.queries
    report = json.loads((synth / "synthesis_report.json").read_text())
    assert report["calls"] == 10 and report["input_tokens"] == 1000

    # resumable / cached: a second run makes no teacher calls
    _cli("train", "synthesize", "--task", "tiny", "--teacher", "scripted-r1", "--base-url", teacher_url,
         "--out", str(tmp_path / "synth2"), "--tokenizer", tokenizer)
    assert len(_Teacher.calls) == first_calls
    assert json.loads((tmp_path / "synth2" / "synthesis_report.json").read_text())["cached_calls"] == 10

    # the completions API path (templated prompt string, like the rerankers send)
    _cli("train", "synthesize", "--task", "tiny", "--teacher", "scripted-r1", "--base-url", teacher_url,
         "--out", str(tmp_path / "synth3"), "--api", "completions", "--tokenizer", tokenizer, "--limit", "1")
    assert _Teacher.calls[-1].endswith("/v1/completions")
    assert load_ranking_examples(tmp_path / "synth3").rows[0]["final_list"] == row["final_list"]

    # self-consistency filter drops the inconsistent cats query
    filtered = tmp_path / "filtered"
    table = _cli("train", "filter", str(synth), "--out", str(filtered), "--threshold", "0.4")
    assert "all" in table
    kept = load_ranking_examples(filtered)
    assert len(kept.rows) == 4 and json.loads((filtered / "filter_report.json").read_text())["kept"] == 4

    # convert: system + user exactly as inference builds the prompt
    sft_file, grpo_file = tmp_path / "sft.jsonl", tmp_path / "grpo.jsonl"
    _cli("train", "convert", str(filtered), "--to", "sft", "--out", str(sft_file), "--tokenizer", tokenizer)
    _cli("train", "convert", str(filtered), "--to", "grpo", "--out", str(grpo_file), "--tokenizer", tokenizer)
    sft_rows, grpo_rows = read_jsonl(sft_file), read_jsonl(grpo_file)
    tok = load_tokenizer(tokenizer)
    first = kept.rows[0]
    expected_prompt = reasonrank.build_prompt(tok, kept.queries[first["qid"]],
                                              [kept.docs[d] for d in first["initial_list"]])
    messages = sft_rows[0]["messages"]
    assert tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True) == expected_prompt
    assert messages[2]["content"] == assistant_target(first["reasoning"],
                                                      ranking_string(first["initial_list"], first["final_list"]))
    assert grpo_rows[0]["prompt"] == messages[:2]
    assert multi_view_reward(completions=[[messages[2]]], **{k: [grpo_rows[0][k]] for k in
                                                             ("ground_truth", "initial_list", "relevant_docids")})[0] > 1.0

    # 2 SFT steps, then 2 GRPO steps on the SFT checkpoint
    sft_out, grpo_out = tmp_path / "ckpt-sft", tmp_path / "ckpt-grpo"
    _cli("train", "sft", "--config", str(CONFIGS / "sft_tiny.yaml"), "--model", tokenizer, "--data", str(sft_file),
         "--output-dir", str(sft_out))
    assert (sft_out / "model.safetensors").is_file() and (sft_out / "tokenizer.json").is_file()
    # LoRA (the 32B recipe) on the tiny model: adapters merged into plain weights on save
    from safetensors import safe_open
    from training.sft import load_config, train_sft

    lora_out = train_sft(load_config(CONFIGS / "sft_tiny.yaml", {
        "model": tokenizer, "data": str(sft_file), "output_dir": str(tmp_path / "ckpt-lora"),
        "lora": {"r": 4, "alpha": 8, "target_modules": "all-linear"}}))
    assert not (lora_out / "adapter_config.json").exists()
    with safe_open(str(lora_out / "model.safetensors"), "pt") as merged, \
            safe_open(str(sft_out / "model.safetensors"), "pt") as full:
        assert set(merged.keys()) == set(full.keys())
    _cli("train", "grpo", "--config", str(CONFIGS / "grpo_tiny.yaml"), "--model", str(sft_out), "--data",
         str(grpo_file), "--output-dir", str(grpo_out))
    assert (grpo_out / "model.safetensors").is_file()

    # evaluate the trained checkpoint with the harness
    if importlib.util.find_spec("harness.backends.hf") is None:
        pytest.skip("harness.backends.hf not available yet")
    results = tmp_path / "results"
    try:  # two steps on a random model cannot learn the format: the run is degenerate (exit 1) but recorded
        harness_main(["run", "--task", "tiny", "--reranker", "reasonrank", "--backend", "hf", "--model",
                      str(grpo_out), "--reasoning-budget", "16", "--results-dir", str(results), "--quiet"])
    except SystemExit as exc:
        assert exc.code in (0, 1)
    records = list(results.rglob("*.json"))
    assert records, "harness run wrote no record"


def test_full_size_configs_carry_the_paper_settings():
    from training.sft import load_config

    sft7, sft32 = load_config(CONFIGS / "sft_7b_full.yaml"), load_config(CONFIGS / "sft_32b_lora.yaml")
    grpo7, grpo32 = load_config(CONFIGS / "grpo_7b.yaml"), load_config(CONFIGS / "grpo_32b_lora.yaml")
    assert (sft7.model, sft7.lora, sft7.trainer["learning_rate"]) == ("Qwen/Qwen2.5-7B-Instruct", None, 5e-6)
    assert sft32.lora["r"] == 32 and sft32.lora["alpha"] == 32 and sft32.trainer["learning_rate"] == 1e-4
    for cfg in (sft7, sft32):
        t = cfg.trainer
        assert (t["per_device_train_batch_size"], t["gradient_accumulation_steps"], t["max_length"]) == (1, 8, 23552)
        assert (t["lr_scheduler_type"], t["warmup_ratio"]) == ("cosine", 0.1)
    assert grpo7.trainer["learning_rate"] == 1e-6 and grpo32.trainer["learning_rate"] == 1e-5
    for cfg in (grpo7, grpo32):
        t = cfg.trainer
        assert (t["num_generations"], t["beta"], t["max_completion_length"]) == (8, 0.001, 3072)
        assert cfg.max_prompt_length == 20480


def test_training_prompt_is_byte_identical_to_inference_prompt(tiny_model_dir):
    from rerankers import reasonrank
    from harness.models import load_tokenizer
    from training.data import PromptBuilder

    tok = load_tokenizer(str(tiny_model_dir))
    query = "  What’s “ﬁne” &amp; <b>bold</b> [3]?\r\nsecond line Ã© "
    passages = ["a &amp; b “quoted” ﬁle\r\nline2 <tag> &lt; e\u0301", "Title? x &amp; y", "plain [12] text ’s"]
    messages = PromptBuilder(tok, 512).messages(query, passages)
    templated = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert templated == reasonrank.build_prompt(tok, query, passages)


def test_13k_text_directories_are_read_tolerantly(tmp_path):
    (tmp_path / "id_query").mkdir()
    (tmp_path / "id_doc" / "math").mkdir(parents=True)
    (tmp_path / "id_query" / "q.json").write_text(json.dumps({"q1": "query one"}))
    (tmp_path / "id_doc" / "math" / "a.jsonl").write_text(json.dumps({"docid": "d1", "contents": "doc one"}) + "\n")
    (tmp_path / "id_doc" / "b.tsv").write_text("d2\tdoc two\n")
    (tmp_path / "id_doc" / "c.json").write_text(json.dumps([{"_id": "d3", "text": "doc three", "title": "T"}]))
    (tmp_path / "training_data_all.jsonl").write_text(json.dumps({
        "dataset": "math-qa", "qid": "q1", "initial_list": ["d1", "d2", "d3"], "final_list": ["d3", "d1", "d2"],
        "reasoning": "r", "relevant_docids": ["d3"]}) + "\n")
    examples = load_ranking_examples(tmp_path)
    assert examples.queries == {"q1": "query one"}
    assert examples.docs == {"d1": "doc one", "d2": "doc two", "d3": "Title: T Content: doc three"}
    assert ranking_string(examples.rows[0]["initial_list"], examples.rows[0]["final_list"]) == "[3] > [1] > [2]"
