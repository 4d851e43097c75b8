"""Submission validation re-scores the run and catches edited metrics, missing queries and excluded documents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness.errors import HarnessError
from harness.submit import validate
from records_fixture import write_tiny_records


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, Path]:
    return write_tiny_records(tmp_path_factory.mktemp("submit") / "results")


@pytest.fixture
def submission(pristine, tmp_path) -> Path:
    target = tmp_path / "sub"
    shutil.copytree(pristine["reasonrank"], target)
    return target


def test_valid_submission(pristine):
    for directory in pristine.values():
        report = validate(directory)
        assert report.ok, report.render()
        assert any("re-scored" in c for c in report.checked)


def test_edited_metric_is_caught(submission):
    record = json.loads((submission / "record.json").read_text())
    record["metrics"]["nDCG@10"] += 0.05
    (submission / "record.json").write_text(json.dumps(record))
    report = validate(submission)
    assert not report.ok
    assert any("metrics.nDCG@10" in p and "re-scores" in p for p in report.problems), report.render()


def test_edited_per_query_metric_is_caught(submission):
    lines = (submission / "per_query.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["metrics"]["nDCG@10"] = 1.0
    lines[0] = json.dumps(row)
    (submission / "per_query.jsonl").write_text("\n".join(lines) + "\n")
    problems = validate(submission).problems
    assert any("per_query.jsonl: sha256 mismatch" in p for p in problems)
    assert any("per-query metrics differ" in p for p in problems)


def test_missing_query_is_caught(submission):
    run = submission / "run.trec"
    run.write_text("".join(line for line in run.read_text().splitlines(True) if not line.startswith("q3 ")))
    problems = validate(submission).problems
    assert any("judged query(ies) missing: q3" in p for p in problems), problems
    assert any("run.trec: sha256 mismatch" in p for p in problems)
    assert any("metrics.nDCG@10" in p for p in problems)  # the missing query scores 0 on re-scoring
    assert any("counts.missing_queries" in p for p in problems)


def test_excluded_document_is_caught(submission):
    run = submission / "run.trec"
    run.write_text(run.read_text() + "q4 Q0 math/ineq_2_dup 99 0.001 reasonrank\n")
    problems = validate(submission).problems
    assert any("excluded document(s) present (q4:math/ineq_2_dup)" in p for p in problems), problems


@pytest.mark.parametrize("edit, needle", [
    (lambda r: r["provenance"].pop("git_commit"), "provenance.git_commit is missing"),
    (lambda r: r.update(counts="many"), "counts must be a JSON object"),
    (lambda r: r["metrics"].update({"nDCG@10": "0.9"}), "metrics.nDCG@10 must be a finite number"),
    (lambda r: r["files"].update(run="../../etc/passwd"), "files.run must be a plain file name"),
    (lambda r: r.update(schema_version=1), "schema_version 1; this harness reads version 2"),
    (lambda r: r["experiment"].update(limit=2), "a smoke run over the first queries cannot be submitted"),
])
def test_schema_and_provenance_problems(submission, edit, needle):
    record = json.loads((submission / "record.json").read_text())
    edit(record)
    (submission / "record.json").write_text(json.dumps(record))
    problems = validate(submission).problems
    assert any(needle in p for p in problems), problems


def test_not_a_record_directory(tmp_path):
    with pytest.raises(HarnessError, match="not a record directory"):
        validate(tmp_path)


def test_cli(pristine, submission):
    from harness.commands.leaderboard import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    ok = runner.invoke(app, ["submit", "validate", str(pristine["oracle"])])
    assert ok.exit_code == 0 and "VALID" in ok.output, ok.output
    record = json.loads((submission / "record.json").read_text())
    record["metrics"]["R@10"] = 0.0
    (submission / "record.json").write_text(json.dumps(record))
    bad = runner.invoke(app, ["submit", "validate", str(submission)])
    assert bad.exit_code == 1 and "INVALID" in bad.output and "metrics.R@10" in bad.output


# --------------------------------------------------------------------------------------------------------------------
# Forged submissions (observation 3 of the leaderboard issue): each used to pass validate
# --------------------------------------------------------------------------------------------------------------------

def _rewrite(directory: Path, ranking: dict, *, reranker: str, model: str | None, calls: int, tokens: int,
             first_stage: str = "run:", task_name: str = "tiny", sha256: str | None = None) -> Path:
    """A self-consistent forged record (metrics re-scored, hashes recomputed) written with the harness's writer."""
    from harness.metrics import evaluate
    from records_fixture import GPU, METRICS, _record, _rows, identity_for
    from harness.records import write_subset_record
    from tasks.tiny import FIRST_STAGE_RUN

    spec = f"run:{FIRST_STAGE_RUN}" if first_stage == "run:" else first_stage
    settings = {"model": model, "window_size": 20, "step": 10} if model else {}
    identity, instance, tasks = identity_for(task_name, spec, reranker, settings, 100, None)
    task = tasks[0]
    result = evaluate(ranking, task.qrels_all, METRICS, excluded=task.excluded)
    record = _record(identity=identity, reranker=instance, task=task, revision=task.revision, metrics=result.means,
                     n_queries=len(ranking), judged=result.judged_queries,
                     candidates=sum(len(h) for h in ranking.values()), calls=calls, parse_failures=0,
                     seconds=0.01 * len(ranking), in_tok=tokens, out_tok=0, gpu=GPU)
    if sha256 is not None:
        record.first_stage.sha256 = sha256
    rows = _rows(result, ranking, input_tokens=tokens, output_tokens=0, generation_seconds=0.01, model_calls=calls)
    out, _ = write_subset_record(directory / record.group_id / task.subset, record, ranking, tag="forged",
                                 per_query=rows)
    return out


def _first_stage_ranking() -> dict:
    from harness.trec import read_run
    from tasks import resolve_tasks
    from tasks.tiny import FIRST_STAGE_RUN

    task = resolve_tasks("tiny")[0]
    first, _ = read_run(FIRST_STAGE_RUN)
    return {q: [(d, s) for d, s in hits if d not in task.excluded.get(q, set())] for q, hits in first.items()}


def test_hollow_provenance_is_rejected(submission):
    record = json.loads((submission / "record.json").read_text())
    record["provenance"].update(git_commit="", packages={}, argv=[])
    (submission / "record.json").write_text(json.dumps(record))
    problems = " | ".join(validate(submission).problems)
    assert "provenance.git_commit is ''" in problems and "provenance.packages is empty" in problems
    assert "provenance.argv is empty" in problems


def test_first_stage_relabelled_as_a_model_reranker_is_rejected(tmp_path):
    forged = _rewrite(tmp_path, _first_stage_ranking(), reranker="reasonrank", model="liuwenhan/reasonrank-32B",
                      calls=0, tokens=0)
    problems = validate(forged).problems
    assert any("made 0 model call(s) and used 0 token(s)" in p for p in problems), problems


def test_prompt_hash_of_another_prompt_is_rejected(submission):
    record = json.loads((submission / "record.json").read_text())
    record["reranker"]["prompt_template_hash"] = "sha256:" + "1" * 64
    (submission / "record.json").write_text(json.dumps(record))
    assert any("is not the hash of the harness's reasonrank prompt" in p for p in validate(submission).problems)


def test_a_ranking_that_is_not_a_permutation_of_the_first_stage_is_rejected(tmp_path):
    ranking = _first_stage_ranking()
    q = sorted(ranking)[0]
    ranking[q] = ranking[q][:-1] + [("not-a-candidate", 0.0)]
    problems = validate(_rewrite(tmp_path, ranking, reranker="none", model=None, calls=0, tokens=0)).problems
    assert any("rank documents other than the first stage's top-100" in p for p in problems), problems


def test_oracle_sorted_run_under_a_new_name_needs_traces(tmp_path):
    from tasks import resolve_tasks

    qrels = resolve_tasks("tiny")[0].qrels_all
    ranking = {q: sorted(hits, key=lambda h: (-qrels.get(q, {}).get(h[0], 0), h[0]))
               for q, hits in _first_stage_ranking().items()}
    forged = _rewrite(tmp_path, ranking, reranker="reasonrank", model="org/SuperRank-7B", calls=10, tokens=40_000)
    assert validate(forged).ok  # arithmetic, hashes and identity all consistent: only the traces can tell
    problems = validate(forged, require_traces=True).problems
    assert any("no traces file: --require-traces" in p for p in problems), problems


def test_published_first_stage_with_a_zeroed_sha_is_rejected(tmp_path):
    from data_fixtures import write_bright_cache

    written = write_bright_cache(None, subsets=["biology"], n_queries=2, first_stage_dir=None)["biology"]
    ranking = {q: [(d, 1.0 - i / 10) for i, d in enumerate(written["docids"][:5])] for q in written["qids"]}
    forged = _rewrite(tmp_path, ranking, reranker="none", model=None, calls=0, tokens=0,
                      first_stage="reasonir-published", task_name="bright/biology", sha256="0" * 64)
    problems = validate(forged).problems
    assert any("first_stage.sha256 " + "0" * 64 + " is not the pinned sha256" in p for p in problems), problems


def test_real_run_with_traces_replays_and_a_forged_ranking_does_not(tiny_model_dir, tmp_path):
    """A real run (tiny model behind a local OpenAI-compatible server) validates with --require-traces; the same
    traces under an oracle-sorted run do not."""
    import io
    from contextlib import redirect_stderr

    from openai_server import ScriptedServer, reasonrank_answer

    from harness.cli import main

    results = tmp_path / "results"
    with ScriptedServer(reasonrank_answer) as server, redirect_stderr(io.StringIO()), \
            pytest.raises(SystemExit) as exc:
        main(["run", "--task", "tiny", "--reranker", "reasonrank", "--model", str(tiny_model_dir), "--window-size",
              "4", "--step", "2", "--backend", "openai", "--base-url", server.base_url, "--save-traces",
              str(tmp_path / "traces.jsonl"), "--results-dir", str(results), "-q"])
    assert exc.value.code in (0, None)
    [group] = [p for p in results.iterdir() if p.is_dir()]
    report = validate(group, require_traces=True, model=str(tiny_model_dir))  # a one-subset group directory validates (observation 4)
    assert report.ok, report.render()
    assert any("traces replayed: the ranking equals the submitted one" in c for c in report.checked)

    subset = group / "tiny"
    record = json.loads((subset / "record.json").read_text())
    from harness.trec import read_run, write_run
    from tasks import resolve_tasks

    qrels = resolve_tasks("tiny")[0].qrels_all
    run, _ = read_run(subset / "run.trec")
    oracle = {q: sorted(hits, key=lambda h: (-qrels.get(q, {}).get(h[0], 0), h[0])) for q, hits in run.items()}
    oracle = {q: [(d, float(len(h) - i)) for i, (d, _) in enumerate(h)] for q, h in oracle.items()}
    write_run(subset / "run.trec", oracle, tag="forged")
    from harness.files import sha256_file

    record["sha256"]["run.trec"] = sha256_file(subset / "run.trec")
    (subset / "record.json").write_text(json.dumps(record))
    problems = validate(subset, require_traces=True, model=str(tiny_model_dir)).problems
    assert any("replaying the traces gives a different ranking" in p for p in problems), problems


def test_submit_add_writes_a_compressed_validated_copy(tiny_model_dir, tmp_path):
    """`harness submit add` validates, then copies the group into the results tree: run/traces gzip-compressed,
    costs self-reported, submission.json with the model card; the copy validates again and builds a site."""
    import io
    from contextlib import redirect_stderr

    from openai_server import ScriptedServer, reasonrank_answer

    from harness.cli import main
    from harness.commands.leaderboard import register
    from harness.site import build

    results = tmp_path / "results"
    with ScriptedServer(reasonrank_answer) as server, redirect_stderr(io.StringIO()), \
            pytest.raises(SystemExit):
        main(["run", "--task", "tiny", "--reranker", "reasonrank", "--model", str(tiny_model_dir), "--window-size",
              "4", "--step", "2", "--backend", "openai", "--base-url", server.base_url, "--save-traces",
              str(tmp_path / "traces.jsonl"), "--results-dir", str(results), "-q"])
    [group] = [p for p in results.iterdir() if p.is_dir()]
    app = typer.Typer()
    register(app)
    tree = tmp_path / "board"
    runner = CliRunner()
    missing = runner.invoke(app, ["submit", "add", str(group), "--team", "T", "--contact", "t@example.org"])
    assert missing.exit_code != 0 and "--license" in missing.output
    out = runner.invoke(app, ["submit", "add", str(group), "--team", "IR Lab", "--contact", "ir@example.org",
                              "--license", "CC-BY-4.0", "--params-b", "0.001", "--base-model", "none",
                              "--open-weights", "--trained-on-bright", "no", "--results-tree", str(tree),
                              "--require-traces", "--model", str(tiny_model_dir)])
    assert out.exit_code == 0, out.output
    copy = tree / group.name
    assert sorted(p.name for p in (copy / "tiny").iterdir()) == ["per_query.jsonl", "record.json", "run.trec.gz",
                                                                 "traces.jsonl.gz"]
    submission = json.loads((copy / "submission.json").read_text())
    assert submission["team"] == "IR Lab" and submission["model"]["parameters_b"] == 0.001
    assert submission["model"]["trained_on_bright"] == "no" and submission["validated"]["require_traces"]
    assert all(c["self_reported"] for c in json.loads((copy / "tiny" / "record.json").read_text())["costs"])
    assert validate(copy, require_traces=True, model=str(tiny_model_dir)).ok  # the compressed copy validates
    index = build(tree, tmp_path / "site", n_resamples=200, boards=["tiny"], only_validated=True)
    assert "IR Lab" in (index.parent / "runs" / group.name / "index.html").read_text()
    board = (index.parent / "board-tiny.html").read_text()
    assert "validated · IR Lab" in board and "self-reported" in board

    # a submission that fails validation writes nothing
    record = json.loads((group / "tiny" / "record.json").read_text())
    record["metrics"]["nDCG@10"] = 0.99
    (group / "tiny" / "record.json").write_text(json.dumps(record))
    bad = runner.invoke(app, ["submit", "add", str(group), "--team", "X", "--contact", "x", "--license", "MIT",
                              "--results-tree", str(tmp_path / "other")])
    assert bad.exit_code == 1 and not (tmp_path / "other").exists()
