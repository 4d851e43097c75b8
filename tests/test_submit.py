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
