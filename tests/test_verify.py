"""Claims and `harness verify`: OK, OKish, FAIL and MISSING against the shipped claims files."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness.errors import HarnessError
from harness.verify import grade_value, load_claims, verify
from records_fixture import write_fake_boards

EXPECTED = Path(__file__).resolve().parent.parent / "results" / "expected"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("verify") / "results"
    write_fake_boards(root, queries=8)
    return root


def _by_id(outcome):
    return {r.claim.id: r for r in outcome}


def test_shipped_claims_load_as_fractions():
    claims = {c.id: c for c in load_claims([EXPECTED])}
    leaderboard = claims["reasonrank-t10-leaderboard-reasonrank-32b-rader-w10s5"]
    assert leaderboard.values["average"] == pytest.approx(0.4080)
    assert leaderboard.settings["window_size"] == 10 and leaderboard.settings["step"] == 5
    assert claims["reasonrank-t1-reasonrank-7b"].values["average"] == pytest.approx(0.3574)
    assert claims["reasonrank-t1-reasonrank-32b"].values["average"] == pytest.approx(0.3803)
    assert claims["bright-bm25-original"].values["average"] == pytest.approx(0.145)
    assert claims["bright-bm25-gpt4-reasoning"].values["average"] == pytest.approx(0.270)
    assert claims["pyserini-bm25-flat-original"].values["average"] == pytest.approx(0.1369)
    assert claims["reasonrank-t2-reasonrank-32b"].values["average"] == pytest.approx(0.4285)
    assert claims["rank1-t1-rank1-32b"].values["average"] == pytest.approx(0.294)
    for c in claims.values():
        assert all(0 <= v <= 1 for v in c.values.values())
    assert "40.6" in (EXPECTED / "reasonrank.yaml").read_text()  # the abstract's number is explained


def test_grades(results):
    outcome = _by_id(verify(load_claims([EXPECTED]), results))
    ok = outcome["reasonrank-t1-reasonrank-7b"]
    assert ok.grade == "OK" and ok.group_id.startswith("bright__reasonir-published__reasonrank-reasonrank-7B")
    assert "smoke" not in ok.group_id  # --limit runs never match a claim
    okish = outcome["reasonrank-t1-reasonrank-32b"]
    assert okish.grade == "OKish"
    bio = next(c for c in okish.cells if c.key == "biology")
    assert bio.grade == "OKish" and bio.delta == pytest.approx(0.02)
    fail = outcome["reasonrank-t1-rank1-7b"]
    assert fail.grade == "FAIL"
    assert next(c for c in fail.cells if c.key == "economics").grade == "FAIL"
    assert outcome["reasonrank-t1-rank-k-32b"].grade == "MISSING"
    assert outcome["reasonrank-t10-leaderboard-reasonrank-32b-rader-w10s5"].grade == "MISSING"
    assert outcome["reasonrank-t2-reasonrank-7b"].grade == "OK"  # R2MED board
    partial = outcome["reasonrank-t1-rankzephyr-7b"]  # 3 of 12 subsets run: those graded, the rest MISSING
    grades = {c.key: c.grade for c in partial.cells}
    assert partial.grade == "OK" and grades["biology"] == "OK"
    assert grades["pony"] == "MISSING" and grades["average"] == "MISSING"


def test_grade_boundaries():
    tol = {"ok": 0.5, "okish": 1.5}
    assert grade_value(0.30, 0.305, tol) == "OK"  # Δ = 0.5 points, inclusive
    assert grade_value(0.30, 0.2851, tol) == "OKish"
    assert grade_value(0.30, 0.284, tol) == "FAIL"
    assert grade_value(0.30, None, tol) == "MISSING"


def test_bad_claims_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scale: 100\nclaims:\n  - id: x\n    settings: {benchmark: bright, reranker: x, window: 20}\n"
                   "    values: {biology: 40}\n")
    with pytest.raises(HarnessError, match="unknown setting 'window'. Did you mean 'window_size'"):
        load_claims([bad])
    bad.write_text("scale: 100\nclaims:\n  - id: x\n    settings: {benchmark: bright, reranker: none}\n"
                   "    values: {biology: 4000}\n")
    with pytest.raises(HarnessError, match="outside"):
        load_claims([bad])


def _cli():
    from harness.commands.leaderboard import register

    app = typer.Typer()
    register(app)
    return app


def test_cli_exit_codes(results, tmp_path):
    runner = CliRunner()
    out = runner.invoke(_cli(), ["verify", "--claims", str(EXPECTED), "--results", str(results)])
    assert out.exit_code == 1, out.output  # a FAIL
    assert "FAIL    reasonrank-t1-rank1-7b" in out.output and "MISSING:" in out.output
    assert "economics" in out.output and "-5.00" in out.output
    import yaml

    doc = yaml.safe_load((EXPECTED / "reasonrank.yaml").read_text())
    doc["claims"] = [c for c in doc["claims"] if c["id"] == "reasonrank-t1-reasonrank-7b"]
    only_ok = tmp_path / "ok.yaml"
    only_ok.write_text(yaml.safe_dump(doc))
    out = runner.invoke(_cli(), ["verify", "--claims", str(only_ok), "--results", str(results)])
    assert out.exit_code == 0, out.output
    assert "summary: 1 OK, 0 OKish, 0 FAIL, 0 NOT COMPARABLE, 0 MISSING" in out.output
    assert "limit 5 (a smoke run)" in out.output  # the smoke run of the same system is listed, not graded
