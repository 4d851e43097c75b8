"""End-to-end pipeline on the shipped `tiny` task and on BEIR directories: records, oracle, none, bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.metrics import evaluate
from harness.records import iter_records
from harness.runner import run_experiment
from harness.spec import ExecutionSpec, ExperimentSpec
from harness.trec import read_run
from tasks import TASK_FAMILIES, resolve_tasks
from tasks.tiny import DATA_DIR, FIRST_STAGE_RUN


def _cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _only_record(results: Path, kind: str = "subset"):
    found = [(d, r) for d, r in iter_records(results) if r.kind == kind]
    assert len(found) == 1, found
    return found[0]


def _run(task: str, reranker: str, results: Path, **kw):
    return run_experiment(ExperimentSpec(task=task, reranker=reranker, **kw),
                          ExecutionSpec(results_dir=str(results), progress=False), log=lambda message: None)


def test_oracle_on_tiny_scores_one(tmp_path):
    assert _cli("run", "--task", "tiny", "--reranker", "oracle", "--results-dir", str(tmp_path), "-q") == 0
    directory, record = _only_record(tmp_path)
    assert record.metrics["nDCG@10"] == pytest.approx(1.0)
    assert record.task.name == "tiny/tiny"
    assert record.counts.queries == 5
    assert set(os.listdir(directory)) == {"record.json", "run.trec", "per_query.jsonl"}
    rows = [json.loads(line) for line in (directory / "per_query.jsonl").read_text().splitlines()]
    assert {r["qid"] for r in rows} == {"q1", "q2", "q3", "q4", "q5"}
    for value in record.metrics.values():
        assert 0.0 <= value <= 1.0
    # the excluded document of q4 was removed before scoring and is not in the written run
    run, _ = read_run(directory / "run.trec")
    assert "math/ineq_2_dup" not in {d for d, _ in run["q4"]}
    assert record.provenance.packages["pytrec-eval-terrier"]
    assert record.sha256["run.trec"]
    assert "/" not in record.first_stage.source  # a local run file by name and sha256, no machine path


def test_none_reranker_equals_eval_of_the_first_stage_run(tmp_path, capsys):
    assert _cli("run", "--task", "tiny", "--reranker", "none", "--results-dir", str(tmp_path / "r"), "-q") == 0
    _, record = _only_record(tmp_path / "r")
    capsys.readouterr()
    assert _cli("eval", "--run", str(FIRST_STAGE_RUN), "--task", "tiny", "--json",
                "--metrics", ",".join(record.metrics)) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated == record.metrics


def test_written_run_rescored_gives_the_recorded_metrics(tmp_path, capsys):
    _run("tiny", "oracle", tmp_path)
    directory, record = _only_record(tmp_path)
    capsys.readouterr()
    assert _cli("eval", "--run", str(directory / "run.trec"), "--task", "tiny", "--json",
                "--metrics", ",".join(record.metrics)) == 0
    assert json.loads(capsys.readouterr().out) == record.metrics


def test_beir_directory_with_limit_and_config_file(tmp_path):
    beir = tmp_path / "mytask"
    shutil.copytree(DATA_DIR, beir)
    config = tmp_path / "run.yaml"
    config.write_text(f"reranker: oracle\nfirst-stage: run:{FIRST_STAGE_RUN}\nlimit: 2\nresults_dir: {tmp_path / 'res'}\n")
    assert _cli("run", "--task", str(beir), "--config", str(config), "-q") == 0
    _, record = _only_record(tmp_path / "res")
    assert record.task.benchmark == "beir" and record.task.subset == "mytask" and record.task.source == "directory"
    assert record.counts.queries == 2 and record.task.evaluated_queries == 2
    assert record.experiment["limit"] == 2


def test_unknown_config_key_and_missing_task_are_clear_errors(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("task: tiny\nrerankr: oracle\n")
    assert _cli("run", "--config", str(config)) == 2
    assert "rerankr" in capsys.readouterr().err
    assert _cli("run", "--reranker", "oracle") == 2
    assert "--task" in capsys.readouterr().err


@pytest.mark.parametrize("args,needle", [
    (("run", "--task", "tiny", "--reranker", "reasonrnak"), "Did you mean 'reasonrank'"),
    (("run", "--task", "tnyi", "--reranker", "none"), "Did you mean 'tiny'"),
    (("run", "--task", "tiny", "--first-stage", "bm52"), "Did you mean 'bm25'"),
    (("ls", "rerankerz"), "Did you mean 'rerankers'"),
    (("eval", "--run", "nope.trec", "--task", "tiny"), "does not exist"),
])
def test_bad_names_exit_2_with_one_line_message(args, needle, capsys, tmp_path):
    assert _cli(*args, "--results-dir", str(tmp_path)) == 2 if args[0] == "run" else _cli(*args) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_results_dir_not_writable(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _cli("run", "--task", "tiny", "--reranker", "none", "--results-dir", str(blocker / "sub")) == 2
    assert "not writable" in capsys.readouterr().err


def test_malformed_and_empty_runs_and_wrong_task(tmp_path, capsys):
    empty = tmp_path / "empty.trec"
    empty.write_text("")
    assert _cli("eval", "--run", str(empty), "--task", "tiny") == 2
    assert "no valid lines" in capsys.readouterr().err
    wrong = tmp_path / "wrong.trec"
    wrong.write_text("zz1 Q0 d 1 1.0 x\nzz2 Q0 d 1 1.0 x\n")
    assert _cli("eval", "--run", str(wrong), "--task", "tiny") == 2
    assert "different task" in capsys.readouterr().err
    messy = tmp_path / "messy.trec"
    messy.write_text("q1 Q0 bio/photo_1 1 2.0 x\nthis line is broken\nq1 Q0 bio/photo_1 2 1.0 x\n")
    assert _cli("eval", "--run", str(messy), "--task", "tiny") == 0
    out = capsys.readouterr().out
    assert "malformed_lines: 1" in out and "duplicate_docids: 1" in out


def test_qrels_that_reference_unknown_queries_are_dropped_and_counted(tmp_path):
    beir = tmp_path / "ghosts"
    shutil.copytree(DATA_DIR, beir)
    with (beir / "qrels" / "test.tsv").open("a") as fh:
        fh.write("ghost-query\tbio/photo_1\t1\n")
    _run(str(beir), "oracle", tmp_path / "res", first_stage=f"run:{FIRST_STAGE_RUN}")
    _, record = _only_record(tmp_path / "res")
    assert record.counts.qrels_unknown_queries == 1
    assert record.metrics["nDCG@10"] == pytest.approx(1.0)  # not dragged down by an unrunnable query
    # `harness eval` on a bare qrels file keeps pytrec_eval's view: a judged query absent from the run scores 0
    result = evaluate({"q1": [("bio/photo_1", 1.0)]}, {"q1": {"bio/photo_1": 1}, "ghost": {"x": 1}}, ("nDCG@10",))
    assert result.missing_queries == ["ghost"] and result.means["nDCG@10"] == pytest.approx(0.5)


# --- interruption: finished subsets stay, nothing half-written --------------------------------------------

def _two_subsets():
    from harness.benchmark import BenchmarkInfo, SubsetInfo
    from tasks.base import TaskFamily
    from tasks.beir import BeirDirTask

    info = BenchmarkInfo("twosub", "two subsets", subsets=(SubsetInfo("first"), SubsetInfo("second")),
                         default_first_stage=f"run:{FIRST_STAGE_RUN}")

    def resolve(subset):
        names = [subset] if subset else ["first", "second"]
        return [BeirDirTask(DATA_DIR, benchmark="twosub", subset=s, benchmark_info=info, subset_info=info.subset(s))
                for s in names]

    return TaskFamily(info, resolve)


TWO_SUBSETS = _two_subsets()


def _register_two_subsets(monkeypatch):
    monkeypatch.setitem(TASK_FAMILIES._targets, "twosub", "test_runner:TWO_SUBSETS")
    monkeypatch.setitem(TASK_FAMILIES._descriptions, "twosub", "test only")


from rerankers.none import NoReranker  # noqa: E402


class _InterruptOnSecond(NoReranker):
    name = "interrupting"
    calls = 0

    def rerank(self, requests, context):
        type(self).calls += 1
        if type(self).calls == 2:
            raise KeyboardInterrupt
        return super().rerank(requests, context)


def test_ctrl_c_keeps_finished_subsets_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    from rerankers import RERANKERS

    _register_two_subsets(monkeypatch)
    monkeypatch.setitem(RERANKERS._targets, "interrupting", "test_runner:_InterruptOnSecond")
    monkeypatch.setitem(RERANKERS._descriptions, "interrupting", "test only")
    _InterruptOnSecond.calls = 0
    with pytest.raises(KeyboardInterrupt):
        _run("twosub", "interrupting", tmp_path)
    records = list(iter_records(tmp_path))
    assert [r.task.subset for _, r in records] == ["first"]
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_interrupt_while_writing_leaves_no_partial_record(tmp_path, monkeypatch):
    import harness.records as records

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(records, "format_run", boom)
    with pytest.raises(KeyboardInterrupt):
        _run("tiny", "none", tmp_path)
    assert list(iter_records(tmp_path)) == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_ls_and_doctor_run(capsys):
    assert _cli("ls", "tasks") == 0
    out = capsys.readouterr().out
    assert "bright" in out and "r2med" in out and "tiny" in out
    assert _cli("ls", "rerankers") == 0
    assert "reasonrank" in capsys.readouterr().out
    assert _cli("ls", "first-stages") == 0
    assert "reasonir-published" in capsys.readouterr().out
    assert _cli("doctor") == 0
    assert "extra" in capsys.readouterr().out


def test_multi_subset_run_writes_one_record_per_subset_plus_aggregate(tmp_path, monkeypatch):
    _register_two_subsets(monkeypatch)
    outcome = _run("twosub", "oracle", tmp_path)
    assert [o.task for o in outcome.subsets] == ["twosub/first", "twosub/second"]
    directory, aggregate = _only_record(tmp_path, kind="aggregate")
    assert [s.subset for s in aggregate.subsets] == ["first", "second"]
    assert aggregate.complete is True
    assert aggregate.metrics["nDCG@10"] == pytest.approx(1.0)
    assert aggregate.counts.queries == 10
    assert {p.name for p in directory.iterdir()} == {"record.json", "first", "second"}


def test_bright_none_over_published_runs_gives_the_first_stage_row(tmp_path, monkeypatch, shared_first_stage):
    """`harness run --task bright --reranker none --first-stage reasonir-published` on fixture caches: 12 subsets
    with the spec's query counts + the unweighted average, each equal to `harness eval` of the published run."""
    from data_fixtures import write_bright_cache

    from harness.metrics import evaluate
    from tasks.bright import SUBSETS

    monkeypatch.setenv("HARNESS_FIRST_STAGE_DIR", str(shared_first_stage))
    write_bright_cache(None)
    assert _cli("run", "--task", "bright", "--reranker", "none", "--first-stage", "reasonir-published",
                "--results-dir", str(tmp_path), "-q") == 0
    records = dict((r.task.subset, r) for _, r in iter_records(tmp_path) if r.kind == "subset")
    assert list(records) == sorted(SUBSETS) or set(records) == set(SUBSETS)
    expected_queries = dict(zip(SUBSETS, (103, 116, 103, 101, 101, 117, 108, 142, 112, 111, 194, 76)))
    for subset, record in records.items():
        assert record.counts.queries == expected_queries[subset]
        task = resolve_tasks(f"bright/{subset}")[0]
        run, _ = read_run(shared_first_stage / subset / "reasonir_gpt4cot_top100.trec")
        direct = evaluate(run, task.qrels_all, ("nDCG@10",)).means["nDCG@10"]
        assert record.metrics["nDCG@10"] == pytest.approx(direct, abs=1e-12)
        assert record.first_stage.sha256
    _, aggregate = _only_record(tmp_path, kind="aggregate")
    assert aggregate.complete is True and len(aggregate.subsets) == 12
    mean = sum(r.metrics["nDCG@10"] for r in records.values()) / 12
    assert aggregate.metrics["nDCG@10"] == pytest.approx(mean, abs=1e-12)
