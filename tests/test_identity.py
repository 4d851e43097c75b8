"""Experiment identity vs execution: one group per experiment whatever the execution options, cost that survives the
cache, variants kept beside the canonical run, declared protocols instead of name sniffing, typed option errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.schema import load_record
from openai_server import ScriptedServer, reasonrank_answer


def _cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0)


@pytest.fixture
def fakegpu(monkeypatch, tmp_path):
    from harness.backends import BACKENDS

    monkeypatch.setitem(BACKENDS._targets, "fakegpu", "fake_engine:create")
    monkeypatch.setitem(BACKENDS._descriptions, "fakegpu", "test engine")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))


def _groups(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_execution_options_update_one_experiment_with_a_cost_entry_per_gpu_setup(fakegpu, tiny_model_dir,
                                                                                  tmp_path, capsys):
    results = tmp_path / "results"
    base = ["run", "--task", "tiny", "--reranker", "reasonrank", "--model", tiny_model_dir, "--backend", "fakegpu",
            "--window-size", "4", "--step", "2", "--results-dir", results, "-q"]
    assert _cli(*base) == 0  # 1× H100, cache on
    assert _cli(*base, "--no-cache", "--gpus", "2") == 0  # 2× H100, fresh calls
    assert _cli(*base, "--concurrency", "1") == 0  # served from the cache
    assert _cli(*base, "--save-traces", tmp_path / "traces.jsonl") == 0
    assert _cli(*base, "--metrics", "P@10") == 0
    [group] = _groups(results)
    record = load_record(group / "tiny" / "record.json")
    labels = sorted(c.hardware.label() for c in record.costs)
    assert labels == ["1× H100 80GB HBM3 (fakegpu)", "2× H100 80GB HBM3 (fakegpu, TP2×DP1)"]
    assert all(c.seconds_per_query and c.complete for c in record.costs)
    assert "P@10" in record.metrics and record.files.traces == "traces.jsonl" and not record.variants
    assert "variant" not in capsys.readouterr().err

    from harness.site import group_costs
    from harness.verify import collect_groups

    [collected] = collect_groups(results)
    assert len(group_costs(collected)) == 2  # one board row, s/query per GPU setup

    assert _cli(*base, "--window-size", "5") == 0  # another setting: another experiment
    assert len(_groups(results)) == 2


def test_a_cached_rerun_reports_the_original_cost(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    with ScriptedServer(reasonrank_answer, delay=0.05) as server:
        argv = ["run", "--task", "tiny", "--reranker", "reasonrank", "--model", tiny_model_dir, "--backend",
                "openai", "--base-url", server.base_url, "--window-size", "4", "--step", "2", "-q"]
        assert _cli(*argv, "--results-dir", tmp_path / "first") == 0
        calls = len(server.bodies)
        assert _cli(*argv, "--results-dir", tmp_path / "again") == 0
        assert len(server.bodies) == calls  # the re-run was served from the cache
    [first] = (tmp_path / "first").glob("*/tiny/record.json")
    [again] = (tmp_path / "again").glob("*/tiny/record.json")
    [fresh_cost] = load_record(first).costs
    [cached_cost] = load_record(again).costs
    assert fresh_cost.cached_calls == 0 and cached_cost.cached_calls == cached_cost.model_calls > 0
    assert fresh_cost.seconds_per_query > 0.05  # at least one 50 ms window per query
    assert cached_cost.seconds_per_query == pytest.approx(fresh_cost.seconds_per_query, rel=0.10)
    assert load_record(again).execution.fresh_calls == 0


def test_replayed_traces_without_timing_show_no_cost(tiny_model_dir, tmp_path):
    from harness.site import group_costs
    from harness.verify import collect_groups

    with ScriptedServer(reasonrank_answer) as server:
        traces = tmp_path / "t.jsonl"
        assert _cli("run", "--task", "tiny", "--reranker", "reasonrank", "--model", tiny_model_dir, "--backend",
                    "openai", "--base-url", server.base_url, "--no-cache", "--save-traces", traces,
                    "--results-dir", tmp_path / "a", "-q") == 0
    bare = tmp_path / "bare.jsonl"  # what another tool exports: prompt and response only
    bare.write_text("".join(json.dumps({"prompt": json.loads(line)["prompt"], "response": json.loads(line)["response"]})
                            + "\n" for line in traces.read_text().splitlines()))
    assert _cli("run", "--task", "tiny", "--reranker", "reasonrank", "--model", tiny_model_dir, "--backend",
                f"replay:{bare}", "--results-dir", tmp_path / "b", "-q") == 0
    [path] = (tmp_path / "b").glob("*/tiny/record.json")
    record = load_record(path)
    assert record.execution.replay_checked is False
    [cost] = record.costs
    assert cost.generation_seconds is None and cost.seconds_per_query is None  # unknown, never 0
    [group] = collect_groups(tmp_path / "b")
    assert group_costs(group)[0]["seconds_per_query"] is None


def test_a_rerun_with_a_different_run_file_is_kept_as_a_variant(fakegpu, tiny_model_dir, tmp_path, capsys):
    results = tmp_path / "results"
    base = ["run", "--task", "tiny", "--reranker", "reasonrank", "--model", tiny_model_dir, "--backend", "fakegpu",
            "--window-size", "4", "--step", "2", "--results-dir", results, "-q", "--no-cache"]
    assert _cli(*base) == 0
    [group] = _groups(results)
    canonical = (group / "tiny" / "run.trec").read_bytes()
    capsys.readouterr()
    assert _cli(*base, "--backend-arg", "flavour=1") == 0  # another engine's numerics: other answers
    assert "kept as variant" in capsys.readouterr().err
    assert _groups(results) == [group]
    record = load_record(group / "tiny" / "record.json")
    assert (group / "tiny" / "run.trec").read_bytes() == canonical  # never silently replaced
    [variant] = record.variants
    assert variant.differing_queries >= 1 and "nDCG@10" in variant.mean_delta
    variant_record = load_record(group / "tiny" / "variants" / variant.id / "record.json")
    assert variant_record.metrics["nDCG@10"] == pytest.approx(record.metrics["nDCG@10"] +
                                                              variant.mean_delta["nDCG@10"], abs=1e-6)
    from harness.records import iter_records

    assert len([r for _, r in iter_records(results)]) == 1  # variants are not separate leaderboard rows


def test_verify_lists_runs_with_other_settings_as_not_comparable(tmp_path):
    from records_fixture import REASONRANK_7B, BRIGHT, write_board_records

    from harness.verify import load_claims, render_report, verify

    results = tmp_path / "results"
    write_board_records(results, benchmark="bright", subsets=BRIGHT, targets=REASONRANK_7B,
                        first_stage="reasonir-published", reranker="reasonrank", model="liuwenhan/reasonrank-7B",
                        window=10, step=5, queries=6, seed=1)
    claims = load_claims([Path(__file__).resolve().parent.parent / "results" / "expected" / "reasonrank.yaml"])
    outcome = {r.claim.id: r for r in verify(claims, results)}
    result = outcome["reasonrank-t1-reasonrank-7b"]
    assert result.grade == "NOT COMPARABLE" and result.group_id is None
    [(group_id, diffs)] = result.not_comparable
    assert "window_size 10 ≠ 20" in diffs and "step 5 ≠ 10" in diffs
    report = render_report(list(outcome.values()))
    assert "NOT COMPARABLE" in report and "window_size 10 ≠ 20" in report
    assert "OK      reasonrank-t1-reasonrank-7b" not in report

    results2 = tmp_path / "results2"  # a longer reasoning budget is not comparable either
    write_board_records(results2, benchmark="bright", subsets=BRIGHT, targets=REASONRANK_7B,
                        first_stage="reasonir-published", reranker="reasonrank", model="liuwenhan/reasonrank-7B",
                        window=20, step=10, queries=6, seed=2, settings={"reasoning_budget": 4096})
    result = {r.claim.id: r for r in verify(claims, results2)}["reasonrank-t1-reasonrank-7b"]
    assert result.grade == "NOT COMPARABLE"
    assert any("reasoning_budget 4096 ≠ 3072" in d and "max_tokens 4196 ≠ 3172" in " ".join(ds)
               for _, ds in result.not_comparable for d in ds)


# --- declared protocols: --as, plain directories -------------------------------------------------------------

def _beir_copy(task, directory: Path) -> Path:
    """Write ``task`` as a BEIR-layout directory (the usual offline route for BRIGHT)."""
    (directory / "qrels").mkdir(parents=True)
    with (directory / "corpus.jsonl").open("w") as fh:
        for docid, text in task.iter_docs():
            fh.write(json.dumps({"_id": docid, "title": "", "text": text}) + "\n")
    with (directory / "queries.jsonl").open("w") as fh:
        for qid, text in task.queries().items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with (directory / "qrels" / "test.tsv").open("w") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in task.qrels_all.items():
            for docid, grade in docs.items():
                fh.write(f"{qid}\t{docid}\t{grade}\n")
    return directory


def test_a_beir_copy_run_as_a_bright_subset_gets_byte_identical_prompts(tiny_model_dir, tmp_path, capsys):
    from data_fixtures import write_bright_cache

    from tasks import resolve_tasks

    write_bright_cache(None, subsets=("aops", "biology"), n_queries=4, first_stage_dir=None)
    for subset in ("aops", "biology"):
        copy = _beir_copy(resolve_tasks(f"bright/{subset}")[0], tmp_path / f"copy-{subset}")
        qid = next(iter(resolve_tasks(f"bright/{subset}")[0].queries()))
        for reranker in ("reasonrank", "rank1"):
            common = ["prompt", "--reranker", reranker, "--model", tiny_model_dir, "--query", qid,
                      "--first-stage", "bm25", "--window", "0"]
            capsys.readouterr()
            assert _cli(*common, "--task", f"bright/{subset}") == 0
            original = capsys.readouterr().out
            assert _cli(*common, "--task", copy, "--as", f"bright/{subset}") == 0
            assert capsys.readouterr().out == original
            assert _cli(*common, "--task", copy) == 0
            plain = capsys.readouterr().out
            if reranker == "rank1":  # a plain directory has no declared Rank1 prompt: the raw query
                assert plain != original and "FILL_QUERY_HERE" not in original


def test_plain_directories_get_512_token_passages_and_named_beir_sets_100(tmp_path):
    from tasks import resolve_tasks
    from tasks.tiny import DATA_DIR

    from rerankers import build_reranker

    reranker = build_reranker("reasonrank")
    [plain] = resolve_tasks(str(DATA_DIR))
    assert reranker.resolve(plain.protocol)["passage_length"] == 512
    [scifact] = resolve_tasks(str(DATA_DIR), as_subset="beir/scifact")
    assert reranker.resolve(scifact.protocol)["passage_length"] == 100
    assert scifact.name == "beir/scifact" and scifact.protocol_of == "beir/scifact" and scifact.source == "directory"
    [bright_copy] = resolve_tasks(str(DATA_DIR), as_subset="bright/earth-science")
    assert bright_copy.benchmark == "bright" and bright_copy.subset == "earth_science"


# --- option errors -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (("--limit", "0"), "option 'limit' must be ≥ 1; got 0"),
    (("--top-k", "0"), "option 'top_k' must be ≥ 1; got 0"),
    (("--reranker", "reasonrank", "--window-size", "0"), "option 'window_size' must be ≥ 1; got 0"),
    (("--reranker", "reasonrank", "--passage-length", "0"), "option 'passage_length' must be ≥ 1; got 0"),
    (("--reranker", "reasonrank", "--reasoning-budget", "0"), "option 'reasoning_budget' must be ≥ 1; got 0"),
    (("--concurrency", "0"), "option 'concurrency' must be ≥ 1; got 0"),
    (("--reranker", "reasonrank", "--reranker-arg", "windw=3"), "no option 'windw'. Did you mean 'window_size'"),
    (("--reranker", "reasonrank", "--reranker-arg", "window_size"), "expected KEY=VALUE"),
    (("--reranker", "reasonrank", "--backend", "hf", "--backend-arg", "max_model_len=9"),
     "backend hf has no option 'max_model_len'"),
    (("--reranker", "rank1", "--window-size", "10"), "reranker rank1 has no option 'window_size'"),
    (("--reranker", "none", "--model", "x"), "reranker none has no option 'model'"),
    (("--reranker", "reasonrank", "--prompt-mode", "rank_GPT_reasonin"), "Did you mean 'rank_GPT_reasoning'"),
])
def test_bad_options_are_one_line_errors(args, needle, tmp_path, capsys):
    assert _cli("run", "--task", "tiny", "--results-dir", tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing was run, nothing written


@pytest.mark.parametrize("config, needle", [
    ("task: tiny\nrerankr: oracle\n", "unknown option 'rerankr'. Did you mean 'reranker'"),
    ("task: tiny\ntop_k: abc\n", "option 'top_k' must be ≥ 1; got 'abc'"),
    ("task: tiny\nreranker: reasonrank\nreranker_args: {window_size: -1}\n", "'window_size' must be ≥ 1"),
    ("- just\n- a list\n", "must be a mapping"),
])
def test_bad_config_files_are_one_line_errors(config, needle, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(config)
    assert _cli("run", "--config", path, "--results-dir", tmp_path / "r") == 2
    assert needle in capsys.readouterr().err


def test_config_keys_reach_the_plugins(tiny_model_dir, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"task: tiny\nreranker: reasonrank\nmodel: {tiny_model_dir}\nbackend: replay:{tmp_path / 'x'}\n"
                    "window_size: 7\nreranker_args: {{step: 3}}\nquiet: true\n".replace("{{", "{").replace("}}", "}"))
    from harness.run_options import build_specs, load_config

    experiment, execution = build_specs(load_config(path))
    assert experiment.settings == {"model": str(tiny_model_dir), "window_size": 7, "step": 3}
    assert execution.progress is False  # quiet from the config is honoured


# --- RankZephyr's shrinking loop with a negative budget ------------------------------------------------------

def _rank_llm_loop(tok, query, passages, words, context, window):
    """rank_llm's context-shrinking loop as the spec states it (no clamp: words[:n] with n < 0 drops the last
    |n| words)."""
    from rerankers.rankzephyr import _render, num_output_tokens
    from rerankers._text import fix_text

    reserve = num_output_tokens(tok, window)
    fixed = [fix_text(p.strip()) for p in passages]
    for _ in range(10_000):
        prompt = _render(tok, query, fixed, words)
        n = len(tok.encode(prompt))
        if n <= context - reserve:
            return prompt, words
        words -= max(1, (n - context + reserve) // (window * 4))
    raise AssertionError("did not fit")


def test_rankzephyr_keeps_slicing_with_a_negative_word_budget_like_rank_llm(tiny_model_dir):
    from harness.models import load_tokenizer
    from rerankers.rankzephyr import build_prompt

    import random

    tok = load_tokenizer(str(tiny_model_dir))
    rng = random.Random(0)
    # words of random letters cost many tokens each, so one shrinking step overshoots below zero words; from then
    # on words[:n] keeps all but the last |n| words of each passage, as rank_llm does
    passages = [" ".join("".join(rng.choice("qxzjkvwy") for _ in range(9)) for _ in range(n)) for n in (30, 30, 900)]
    empty = len(tok.encode(build_prompt(tok, "q", ["", "", ""], context_size=100_000)[0]))
    context = empty + 200
    prompt, n_tokens, words = build_prompt(tok, "q", passages, max_words=300, context_size=context)
    expected_prompt, expected_words = _rank_llm_loop(tok, "q", passages, 300, context, 3)
    assert words < 0 and words == expected_words and prompt == expected_prompt
    assert n_tokens <= context
    long_kept = prompt.split("[3] ", 1)[1].split("\n", 1)[0].split()
    # the short passages are gone, the long one keeps all but its last |n| words (a clamp at 0 would send nothing)
    assert "[1] \n" in prompt and long_kept == passages[2].split()[:words] and len(long_kept) == 900 + words > 0


def test_results_readme_documents_the_schema_as_generated():
    from harness.schema import schema_markdown

    readme = (Path(__file__).resolve().parent.parent / "results" / "README.md").read_text(encoding="utf-8")
    documented = readme.split("<!-- schema:begin -->\n", 1)[1].split("<!-- schema:end -->", 1)[0]
    assert documented == schema_markdown(), "regenerate results/README.md with `python -m harness.schema`"


def test_ls_verbose_lists_every_option_with_its_default(capsys):
    assert _cli("ls", "rerankers", "-v") == 0
    out = capsys.readouterr().out
    for needle in ("reasoning_budget", "3072", "ReasonRank DOC_MAXLEN", "context_size", "task_prompts", "window_size"):
        assert needle in out
    assert _cli("ls", "backends", "-v") == 0
    out = capsys.readouterr().out
    assert "max_model_len" in out and "request_timeout" in out and "dtype" in out


def test_help_shows_defaults_and_keeps_brackets(capsys):
    assert _cli("run", "--help") == 0
    out = capsys.readouterr().out
    assert "[default: 100]" in out and "[default: 20]" in out and "--reranker-arg" in out and "--as" in out
