"""``--first-stage 'run:DIR/{subset}/FILE'``: one run file per BRIGHT subset in one ``--task bright`` run (one group,
one aggregate, every file pinned), and the Table 10 claim (40.8) graded on it with ``harness verify --claim``."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from openai_server import ScriptedServer, reasonrank_answer

from harness.cli import main
from harness.first_stage.run_file import git_blob_id
from harness.schema import load_record

ROOT = Path(__file__).resolve().parent.parent
CLAIM = "reasonrank-t10-leaderboard-reasonrank-32b-rader-w10s5"
TEMPLATE = "{subset}/hybrid_BM25_Rader.json"


@pytest.fixture()
def rader_dir(tmp_path):
    """RaDeR-style score files ({qid: {docid: score}}) for the fixture BRIGHT subsets, one folder per subset."""
    from data_fixtures import BRIGHT_SUBSETS, write_bright_cache

    written = write_bright_cache(None, n_queries=2, first_stage_dir=None)
    root = tmp_path / "RaDeR-gte-Qwen2-LLMq_CoT_lexical"
    for subset in BRIGHT_SUBSETS:
        info = written[subset]
        scores = {q: {d: round(1.0 - i / 100, 4) for i, d in enumerate(reversed(info["docids"][:10]))}
                  for q in info["qids"]}
        (root / subset).mkdir(parents=True)
        (root / subset / "hybrid_BM25_Rader.json").write_text(json.dumps(scores, indent=2))
    return root


def _cli(*args) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return int(exc.value.code or 0), out.getvalue() + err.getvalue()


def test_one_group_for_twelve_per_subset_files_and_the_40_8_claim(rader_dir, tiny_model_dir, tmp_path):
    results = tmp_path / "results"
    with ScriptedServer(reasonrank_answer) as server:
        code, out = _cli("run", "--task", "bright", "--first-stage", f"run:{rader_dir}/{TEMPLATE}",
                         "--reranker", "reasonrank", "--model", "liuwenhan/reasonrank-32B",
                         "--tokenizer", tiny_model_dir, "--window-size", "10", "--step", "5",
                         "--backend", "openai", "--base-url", server.base_url, "--results-dir", results, "-q")
    assert code == 0, out
    [group] = [p for p in results.iterdir() if p.is_dir()]
    assert group.name.startswith("bright__run-hybrid_BM25_Rader.json__reasonrank-reasonrank-32B__")
    aggregate = load_record(group / "record.json")
    assert len(aggregate.subsets) == 12
    identity = aggregate.experiment["first_stage"]
    assert identity["label"] == f"run:{TEMPLATE}" and str(tmp_path) not in json.dumps(aggregate.experiment)
    pins = {}
    for subset_dir in sorted(p for p in group.iterdir() if p.is_dir()):
        record = load_record(subset_dir / "record.json")
        file = rader_dir / subset_dir.name / "hybrid_BM25_Rader.json"
        assert record.first_stage.params["git_blob"] == git_blob_id(file)
        assert identity["files"][subset_dir.name] == record.first_stage.sha256
        assert str(tmp_path) not in (subset_dir / "record.json").read_text()  # no machine path in any record
        pins[subset_dir.name] = f"git-blob:{record.first_stage.params['git_blob']}"

    from harness.site import first_stage_display
    from harness.verify import collect_groups

    [run_group] = collect_groups(results)
    assert first_stage_display(run_group) == "RaDeR-gte-Qwen2-LLMq_CoT_lexical/hybrid_BM25_Rader.json · 12 files"

    # the shipped claim pins the real RaDeR files: these fixture files are not them
    code, out = _cli("verify", "--results", results, "--claim", CLAIM)
    assert code == 0 and "NOT COMPARABLE" in out and "first stage of biology: git-blob" in out, out

    # the same claim pinned to these files: every subset printed, coverage 12/12, the note about 40.6
    doc = yaml.safe_load((ROOT / "results" / "expected" / "reasonrank.yaml").read_text())
    [claim] = [c for c in doc["claims"] if c["id"] == CLAIM]
    claim["settings"]["first_stage_files"] = pins
    doc["claims"] = [claim]
    claims = tmp_path / "pinned.yaml"
    claims.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out = _cli("verify", "--results", results, "--claims", claims, "--claim", CLAIM)
    assert "coverage 12/12 + average" in out and "40.6" in out and "40.80" in out, out
    for subset in pins:
        assert f"        {subset} " in out
    assert code == 1 and out.startswith("FAIL")  # a tiny random model is not ReasonRank-32B


def test_a_missing_subset_file_is_named(rader_dir, tmp_path):
    (rader_dir / "pony" / "hybrid_BM25_Rader.json").unlink()
    code, out = _cli("run", "--task", "bright", "--first-stage", f"run:{rader_dir}/{TEMPLATE}",
                     "--results-dir", tmp_path / "r", "-q")
    assert code != 0 and "1 of 12 subset file(s) do not exist (pony:" in out, out


def test_records_keep_no_machine_path_in_the_command_line(tmp_path, monkeypatch):
    from harness.provenance import portable_arg, provenance

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    argv = ["harness", "run", "--first-stage", f"run:{tmp_path}/RaDeR/{{subset}}/f.json",
            "--model", f"{tmp_path}/home/models/x", "--top-k", "100"]
    assert [portable_arg(a) for a in argv] == ["harness", "run", "--first-stage", "run:RaDeR/{subset}/f.json",
                                               "--model", "home/models/x", "--top-k", "100"]
    assert str(tmp_path) not in " ".join(provenance("2026-12-03T00:00:00Z", argv)["argv"])
    monkeypatch.chdir("/")
    assert portable_arg(f"{tmp_path}/home/models/x") == "~/models/x"
