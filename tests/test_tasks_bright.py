"""BRIGHT task: names, and loading fixture parquet files through the real ir_datasets code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from data_fixtures import BRIGHT_SUBSETS, bright_file_names, write_bright_cache
from harness.errors import DataNotAvailableError, HarnessError
from tasks import bright

ROOT = Path(__file__).resolve().parent.parent


def test_subsets_in_spec_order():
    assert bright.SUBSETS == BRIGHT_SUBSETS
    assert len(bright.LONG_SUBSETS) == 8 and "pony-long" in bright.LONG_SUBSETS


def test_resolve_names():
    tasks = bright.resolve(None)
    assert [t.subset for t in tasks] == list(bright.SUBSETS)
    assert all(t.benchmark == "bright" and t.default_first_stage == "reasonir-published" for t in tasks)
    (es,) = bright.resolve("earth-science")
    assert es.subset == "earth_science" and es.irds_id == "bright/earth-science"
    assert es.name == "bright/earth_science" and es.published_run_key() == "earth_science"
    (long,) = bright.resolve("sustainable_living-long")
    assert long.subset == "sustainable_living-long" and long.irds_id == "bright/sustainable-living-long"
    assert long.long and long.base_subset == "sustainable_living"


def test_unknown_subset_did_you_mean():
    with pytest.raises(HarnessError, match="Did you mean 'bright/biology'"):
        bright.resolve("biolgy")
    with pytest.raises(HarnessError, match="Unknown BRIGHT subset 'leetcode-long'"):
        bright.resolve("leetcode-long")


def test_registry_resolves_bright():
    from tasks import resolve_tasks

    assert [t.subset for t in resolve_tasks("bright/theoremqa_questions")] == ["theoremqa_questions"]
    assert len(resolve_tasks("bright")) == 12


def test_fixture_file_names_match_ir_datasets():
    """The fixture writer's file names (with the quirks) are exactly ir_datasets' cache paths."""
    import ir_datasets

    table = json.loads((Path(ir_datasets.__file__).parent / "etc" / "downloads.json").read_text())["bright"]
    for subset in BRIGHT_SUBSETS:
        names = bright_file_names(subset)
        hyphen = subset.replace("_", "-")
        assert table[f"{hyphen}/docs"]["cache_path"] == names["docs"]
        assert table[f"{hyphen}/queries"]["cache_path"] == names["queries"]
        for config in ("gpt4_reason", "claude-3-opus_reason", "Gemini-1.0_reason", "llama3-70b_reason", "grit_reason"):
            assert table[f"{hyphen}/{config}/queries"]["cache_path"] == names[config]
        if f"{hyphen}-long/docs" in table:
            assert table[f"{hyphen}-long/docs"]["cache_path"] == names["long_docs"]
    assert bright_file_names("earth_science")["docs"] == "earth'science.docs.parquet"


@pytest.fixture
def theorem_cache():
    """Synthetic aops + pony caches (no published runs needed): 5 queries each."""
    return write_bright_cache(None, subsets=("aops", "pony"), n_queries=5, first_stage_dir=None, long=True)


def test_loads_through_ir_datasets(theorem_cache):
    (task,) = bright.resolve("aops")
    fixture = theorem_cache["aops"]
    queries = task.queries()
    assert list(queries) == fixture["qids"] == ["0", "1", "2", "3", "4"]
    assert queries["0"] == "aops question 0"
    assert task.query_fields() == ["original", "gpt4_reason", "claude_3_opus_reason", "gemini_1_0_reason",
                                   "llama3_70b_reason", "grit_reason"]
    # the reasoning-expanded text comes from the `query` column, not ir_datasets' `reasoning` column
    assert task.queries("gpt4_reason")["3"] == "gpt4_reason expanded query for aops 3"
    assert task.queries("gemini_1_0_reason")["3"] == "Gemini-1.0_reason expanded query for aops 3"
    assert set(task.query_field_columns.values()) == {"query"}
    assert task.details()["query_field_columns"]["gpt4_reason"] == "query"
    assert {q: sorted(d) for q, d in task.qrels.items()} == {q: sorted(g) for q, g in fixture["gold"].items()}
    assert all(r == 1 for d in task.qrels.values() for r in d.values())
    assert {q: set(v) for q, v in task.excluded.items()} == {q: set(v) for q, v in fixture["excluded"].items()}
    assert all(r == -100 for d in task.qrels_all.values() for r in d.values() if r < 0)

    wanted = fixture["docids"][:3] + ["no/such_doc.txt"]
    texts = task.docs(wanted)
    assert set(texts) == set(fixture["docids"][:3])
    assert texts[wanted[0]] == f"Text of {wanted[0]} in aops."
    assert [d for d, _ in task.iter_docs()] == fixture["docids"]
    with pytest.raises(HarnessError, match="no query field 'gpt5_reason'"):
        task.queries("gpt5_reason")


def test_na_excluded_ids_are_skipped(theorem_cache):
    (pony,) = bright.resolve("pony")
    assert pony.excluded == {} and len(pony.qrels) == 5


def test_revision_records_ir_datasets_version_and_md5(theorem_cache):
    import ir_datasets

    (task,) = bright.resolve("aops")
    rev = task.revision
    assert rev.startswith(f"ir_datasets-{ir_datasets.__version__};docs-md5=")
    assert "queries-md5=" in rev
    assert "differs-from-ir_datasets-pin" in rev  # fixture files are not the pinned originals


def test_long_variant(theorem_cache):
    (task,) = bright.resolve("pony-long")
    assert task.qrels == {q: {f"pony/long_{q}.txt": 1} for q in theorem_cache["pony"]["qids"]}
    assert task.docs(["pony/long_2.txt"]) == {"pony/long_2.txt": "Long text pony/long_2.txt"}
    assert task.queries() == bright.resolve("pony")[0].queries()


_OFFLINE_PROBE = textwrap.dedent("""
    from harness.errors import DataNotAvailableError
    from tasks.bright import resolve
    task = resolve("theoremqa_theorems")[0]
    try:
        task.qrels
    except DataNotAvailableError as exc:
        print("DNA:", exc)
""")


@pytest.mark.parametrize("offline_flag", ["1", ""])
def test_not_cached_offline_error(tmp_path, offline_flag):
    """A fresh IR_DATASETS_HOME with no network: a clear DataNotAvailableError naming the files to provide."""
    env = dict(os.environ, IR_DATASETS_HOME=str(tmp_path / "irds"), HF_HUB_OFFLINE=offline_flag,
               PYTHONPATH=str(ROOT),
               # if the machine has network, make the download attempt fail at once instead of fetching BRIGHT
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="")
    probe = subprocess.run([sys.executable, "-c", _OFFLINE_PROBE], env=env, capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
    out = probe.stdout
    assert out.startswith("DNA:"), probe.stdout + probe.stderr
    assert "bright/theoremqa_theorems" in out and "bright/theoremqa-theorems" in out
    assert "theoremqa-theorems.queries.parquet" in out and "IR_DATASETS_HOME" in out
    assert "harness run --task PATH" in out
    if offline_flag:
        assert "HF_HUB_OFFLINE" in out
    else:
        assert "ConnectionError" in out or "ProxyError" in out


def test_offline_error_is_raised_in_process(monkeypatch, tmp_path):
    """With HF_HUB_OFFLINE=1 and a file missing, the error comes before ir_datasets tries any download."""
    (task,) = bright.resolve("theoremqa_theorems")
    task.__dict__["cache_dir"] = tmp_path  # an empty cache directory (cached_property override)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataNotAvailableError, match="theoremqa-theorems.docs.parquet <- https://huggingface.co/"):
        task.docs(["x"])
    with pytest.raises(DataNotAvailableError, match="theoremqa-theorems.gpt4_reason.queries.parquet"):
        task.queries()


def test_reasoning_column_fallback(theorem_cache):
    """A *_reason parquet without a `query` column: the field falls back to ir_datasets' `reasoning` value."""
    import pyarrow.parquet as pq

    (task,) = bright.resolve("aops")
    path = task.cache_dir / bright_file_names("aops")["grit_reason"]
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["query"]), path)
    assert task.queries("grit_reason")["1"] == "gold human reasoning for aops query 1"
    assert task.query_field_columns["grit_reason"] == "reasoning"
    assert task.query_field_columns["gpt4_reason"] == "query"
