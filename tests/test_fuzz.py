"""Generated fuzz suite of bad inputs: run files, qrels, BEIR directories, CLI options and config files, server
replies, replay traces, records for site/verify/submit, and file-system faults.

Every case runs the real CLI in-process and asserts: no traceback (an unexpected exception fails the case); bad input
exits non-zero with a message naming the input (its file, line, field or option); a tolerated oddity exits 0 and is
counted (a console note or a record counter). ``python -m pytest tests/test_fuzz.py -q`` prints one line per case;
``tests/test_fuzz.py::test_case_count`` keeps the suite at ≥ 150 cases.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from harness.cli import main
from tasks.tiny import DATA_DIR, FIRST_STAGE_RUN

ERROR, COUNTED, OK = "error", "counted", "ok"


@dataclass
class Case:
    id: str
    category: str
    build: Callable[["Env"], list[str]]  # writes the bad input, returns the CLI arguments
    expect: str  # error | counted | ok
    needle: str | Callable[["Env"], str] = ""  # must appear in the output (stderr + stdout)
    code: int | None = None  # an exact exit code, when it matters
    server: Callable | None = None  # respond(body, hit) of a scripted OpenAI-compatible server
    check: Callable[["Env"], None] | None = None  # extra assertion after the run


@dataclass
class Env:
    tmp: Path
    model: Path
    server_url: str = ""
    files: dict[str, Path] = field(default_factory=dict)

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path


CASES: list[Case] = []


def case(id: str, category: str, expect: str, needle: Any = "", **kw):
    def register(build):
        CASES.append(Case(id, category, build, expect, needle, **kw))
        return build
    return register


def add(id: str, category: str, build, expect: str, needle: Any = "", **kw) -> None:
    CASES.append(Case(id, category, build, expect, needle, **kw))


# --------------------------------------------------------------------------------------------------------------------
# A. run files (harness eval --run, harness run --first-stage run:FILE)
# --------------------------------------------------------------------------------------------------------------------

GOOD_RUN = FIRST_STAGE_RUN.read_text()
_RUNS = {
    "empty": ("", ERROR, "no valid lines"),
    "blank-lines": ("\n \n\t\n", ERROR, "no valid lines"),
    "binary": (b"\x00\xff\xfe garbage \x89PNG\r\n", ERROR, "no valid lines"),
    "header-only": ("qid Q0 docid rank score tag\n", ERROR, "no valid lines"),
    "rank-inf": (GOOD_RUN + "q1 Q0 bio/photo_1 inf 1.0 t\n", COUNTED, "malformed_lines: 1"),
    "rank-nan": (GOOD_RUN + "q1 Q0 bio/photo_1 nan 1.0 t\n", COUNTED, "malformed_lines: 1"),
    "score-inf": (GOOD_RUN + "q1 Q0 bio/photo_1 1 inf t\n", COUNTED, "malformed_lines: 1"),
    "score-nan": (GOOD_RUN + "q1 Q0 bio/photo_1 1 nan t\n", COUNTED, "malformed_lines: 1"),
    "score-overflow": (GOOD_RUN + "q1 Q0 bio/photo_1 1 1e400 t\n", COUNTED, "malformed_lines: 1"),
    "score-text": (GOOD_RUN + "q1 Q0 bio/photo_1 1 high t\n", COUNTED, "malformed_lines: 1"),
    "five-columns": (GOOD_RUN + "q1 Q0 bio/photo_1 1 1.0\n", COUNTED, "malformed_lines: 1"),
    "duplicate-docid": (GOOD_RUN + "q1 Q0 code/dfs_1 11 0.01 t\n", COUNTED, "duplicate_docids"),
    "docid-spaces": ("q1 Q0 doc with spaces 1 1.0 t\nq1 Q0 bio/photo_1 2 0.5 t\n", COUNTED, "docids_with_spaces"),
    "other-task": ("zz1 Q0 d 1 1.0 x\nzz2 Q0 d 1 1.0 x\n", ERROR, "different task"),
    "header-line": ("qid Q0 docid rank score tag\n" + GOOD_RUN, COUNTED, "malformed_lines: 1"),
    "crlf": (GOOD_RUN.replace("\n", "\r\n"), OK, ""),
    "tabs": (GOOD_RUN.replace(" ", "\t"), COUNTED, "docids_with_spaces"),
    "negative-rank": ("q1 Q0 bio/photo_1 -3 1.0 t\n", OK, ""),
    "fractional-rank": ("q1 Q0 bio/photo_1 1.5 1.0 t\n", OK, ""),
    "non-utf8-docid": (b"q1 Q0 bio/photo_\xff 1 1.0 t\nq1 Q0 bio/photo_1 2 0.5 t\n", OK, ""),
}
for _name, (_content, _expect, _needle) in _RUNS.items():
    def _eval(env, content=_content, name=_name):
        return ["eval", "--run", str(env.write(f"runs/{name}.trec", content)), "--task", "tiny"]

    def _eval_needle(env, needle=_needle, name=_name, expect=_expect):
        return needle if needle else ""

    add(f"eval-run-{_name}", "run files", _eval, _expect, _needle)
    if _expect != OK:
        def _run(env, content=_content, name=_name):
            path = env.write(f"runs2/{name}.trec", content)
            return ["run", "--task", "tiny", "--reranker", "none", "--first-stage", f"run:{path}", "--results-dir",
                    str(env.tmp / "results"), "-q"]
        needle = {"different task": "shares no query id", "no valid lines": "no usable lines"}.get(_needle, _needle)
        if needle.startswith("malformed_lines"):
            needle = "first stage malformed lines: 1"
        elif needle in ("duplicate_docids", "docids_with_spaces"):
            needle = "first stage " + needle.replace("_", " ")
        add(f"run-first-stage-{_name}", "run files", _run, _expect, needle)

add("eval-run-missing", "run files", lambda env: ["eval", "--run", str(env.tmp / "nope.trec"), "--task", "tiny"],
    ERROR, "nope.trec does not exist")
add("eval-run-directory", "run files", lambda env: ["eval", "--run", str(env.tmp), "--task", "tiny"], ERROR,
    "is not a file")
add("run-first-stage-json-not-object", "run files",
    lambda env: ["run", "--task", "tiny", "--first-stage", f"run:{env.write('s.json', '[1, 2]')}", "-q",
                 "--results-dir", str(env.tmp / "r")], ERROR, "s.json: expected a JSON object")
add("run-first-stage-json-invalid", "run files",
    lambda env: ["run", "--task", "tiny", "--first-stage", f"run:{env.write('s.json', '{oops')}", "-q",
                 "--results-dir", str(env.tmp / "r")], ERROR, "s.json is not a valid JSON score file")
add("run-first-stage-json-text-scores", "run files",
    lambda env: ["run", "--task", "tiny", "--first-stage",
                 f"run:{env.write('s.json', json.dumps({'q1': {'bio/photo_1': 'x', 'bio/photo_2': 0.5}}))}", "-q",
                 "--results-dir", str(env.tmp / "r")], COUNTED, "first stage malformed entries: 1")
add("run-first-stage-missing", "run files",
    lambda env: ["run", "--task", "tiny", "--first-stage", f"run:{env.tmp / 'gone.trec'}", "-q"], ERROR,
    "gone.trec does not exist")

# --------------------------------------------------------------------------------------------------------------------
# B. qrels files (harness eval --qrels)
# --------------------------------------------------------------------------------------------------------------------

_QRELS = {
    "grade-inf": ("q1\tbio/photo_1\tinf\n", ERROR, "q.tsv:1: grade 'inf'"),
    "grade-nan": ("q1\tbio/photo_1\tnan\n", ERROR, "q.tsv:1: grade 'nan'"),
    "grade-text": ("q1\tbio/photo_1\tgood\n", ERROR, "q.tsv:1: grade 'good' is not a number"),
    "grade-huge": ("q1\tbio/photo_1\t1e300\n", ERROR, "within ±2,147,483,647"),
    "grade-fraction": ("q1\tbio/photo_1\t1.9\nq2\tbio/sleep_1\t1\n", COUNTED, "non_integer_grades: 1"),
    "five-columns": ("q1 0 bio/photo_1 1 extra\n", ERROR, "q.tsv:1: expected"),
    "two-columns": ("q1 bio/photo_1\n", ERROR, "q.tsv:1: expected"),
    "empty": ("", ERROR, "q.tsv has no judgment with a grade ≥ 0"),
    "header-only": ("query-id\tcorpus-id\tscore\n", ERROR, "q.tsv has no judgment with a grade ≥ 0"),
    "only-negative": ("q1\tbio/photo_1\t-1\nq2\tbio/sleep_1\t-100\n", ERROR, "no judgment with a grade ≥ 0"),
    "conflicting": ("q1\tbio/photo_1\t1\nq1\tbio/photo_1\t2\n", COUNTED, "conflicting_judgments: 1"),
    "duplicates": ("q1\tbio/photo_1\t1\nq1\tbio/photo_1\t1\n", COUNTED, "duplicate_judgments: 1"),
    "non-utf8": (b"q1\tbio/photo_\xff\t1\nq1\tbio/photo_1\t1\n", OK, ""),
    "trec-format": ("q1 0 bio/photo_1 1\nq2 0 bio/sleep_1 2\n", OK, ""),
    "unknown-queries": ("zz\tbio/photo_1\t1\n", ERROR, "shares no query id"),
    "negative-and-positive": ("q1\tbio/photo_1\t1\nq1\tbio/photo_2\t-100\n", COUNTED, "excluded docs removed"),
}
for _name, (_content, _expect, _needle) in _QRELS.items():
    def _qrels(env, content=_content):
        return ["eval", "--run", str(FIRST_STAGE_RUN), "--qrels", str(env.write("q.tsv", content))]
    add(f"eval-qrels-{_name}", "qrels files", _qrels, _expect, _needle)
add("eval-qrels-missing", "qrels files",
    lambda env: ["eval", "--run", str(FIRST_STAGE_RUN), "--qrels", str(env.tmp / "none.tsv")], ERROR,
    "none.tsv does not exist")
add("eval-both-task-and-qrels", "qrels files",
    lambda env: ["eval", "--run", str(FIRST_STAGE_RUN), "--task", "tiny", "--qrels", str(env.tmp / "x")], ERROR,
    "exactly one of --task or --qrels")
add("eval-bad-metric", "qrels files", lambda env: ["eval", "--run", str(FIRST_STAGE_RUN), "--task", "tiny",
                                                   "--metrics", "nDCG@0"], ERROR, "nDCG@0")
add("eval-unknown-metric", "qrels files", lambda env: ["eval", "--run", str(FIRST_STAGE_RUN), "--task", "tiny",
                                                       "--metrics", "MAP@10"], ERROR, "Unknown metric 'MAP@10'")
add("eval-multi-subset-task", "qrels files", lambda env: ["eval", "--run", str(FIRST_STAGE_RUN), "--task",
                                                          "bright"], ERROR, "has 12 subsets")

# --------------------------------------------------------------------------------------------------------------------
# C. BEIR-layout directories (harness run --task DIR)
# --------------------------------------------------------------------------------------------------------------------


def _beir(env: Env, name: str, corpus: Any = None, queries: Any = None, qrels: Any = None,
          drop: tuple[str, ...] = ()) -> Path:
    root = env.tmp / "beir" / name
    shutil.copytree(DATA_DIR, root)
    for part, content in (("corpus.jsonl", corpus), ("queries.jsonl", queries), ("qrels/test.tsv", qrels)):
        if content is not None:
            path = root / part
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
    for part in drop:
        (root / part).unlink()
    return root


def _beir_run(env: Env, root: Path, *extra: str) -> list[str]:
    return ["run", "--task", str(root), "--reranker", "none", "--first-stage", "bm25", "--results-dir",
            str(env.tmp / "results"), "-q", *extra]


QUERIES = (DATA_DIR / "queries.jsonl").read_text()
QRELS = (DATA_DIR / "qrels" / "test.tsv").read_text()
CORPUS = (DATA_DIR / "corpus.jsonl").read_text()
_BEIR = {
    "no-corpus": (dict(drop=("corpus.jsonl",)), ERROR, "missing corpus.jsonl"),
    "no-qrels": (dict(drop=("qrels/test.tsv",)), ERROR, "missing qrels/test.tsv"),
    "no-queries": (dict(drop=("queries.jsonl",)), ERROR, "missing queries.jsonl"),
    "empty-queries": (dict(queries=""), ERROR, "has no queries"),
    "blank-queries": (dict(queries="\n\n"), ERROR, "has no queries"),
    "queries-not-json": (dict(queries=QUERIES + "{broken\n"), ERROR, "queries.jsonl:6: not valid JSON"),
    "queries-bom": (dict(queries="\ufeff" + QUERIES), ERROR, "queries.jsonl:1"),
    "query-is-list": (dict(queries=QUERIES + "[1, 2]\n"), ERROR, "queries.jsonl:6: expected a JSON object"),
    "query-no-id": (dict(queries=QUERIES + '{"text": "x"}\n'), ERROR, "queries.jsonl:6: expected a JSON object with an '_id'"),
    "query-id-list": (dict(queries=QUERIES + '{"_id": [1], "text": "x"}\n'), ERROR, "queries.jsonl:6: '_id' must be"),
    "query-text-number": (dict(queries=QUERIES + '{"_id": "q9", "text": 5}\n'), ERROR, "queries.jsonl:6: 'text' must be"),
    "duplicate-query-ids": (dict(queries=QUERIES + '{"_id": "q1", "text": "again"}\n'), COUNTED,
                            "duplicate query ids: 1"),
    "qrels-header-only": (dict(qrels="query-id\tcorpus-id\tscore\n"), ERROR, "has no judgments"),
    "qrels-only-negative": (dict(qrels="query-id\tcorpus-id\tscore\nq1\tbio/photo_1\t-1\n"), ERROR,
                            "has only negative (excluded) judgments"),
    "qrels-unknown-queries-only": (dict(qrels="query-id\tcorpus-id\tscore\nzz\tbio/photo_1\t1\n"), ERROR,
                                   "judges none of its queries"),
    "qrels-grade-inf": (dict(qrels=QRELS + "q1\tbio/photo_1\tinf\n"), ERROR, "test.tsv:13: grade 'inf'"),
    "qrels-two-columns": (dict(qrels=QRELS + "q1\tbio/photo_1\n"), ERROR, "test.tsv:13: expected 3 tab-separated"),
    "qrels-fraction": (dict(qrels=QRELS + "q5\tmisc/noise 4\t1.5\n"), COUNTED, "non integer grades: 1"),
    "qrels-conflict": (dict(qrels=QRELS + "q1\tbio/photo_1\t2\n"), COUNTED, "conflicting judgments: 1"),
    "qrels-unknown-query": (dict(qrels=QRELS + "ghost\tbio/photo_1\t1\n"), OK, ""),
    "qrels-non-utf8": (dict(qrels=QRELS.encode() + b"q1\tbio/photo_\xff\t1\n"), OK, ""),
    "empty-corpus": (dict(corpus=""), ERROR, "has an empty corpus"),
    "corpus-not-json": (dict(corpus=CORPUS + "not json\n"), ERROR, "corpus.jsonl:"),
    "corpus-title-number": (dict(corpus=CORPUS + '{"_id": "x", "title": 5, "text": "t"}\n'), ERROR,
                            "'title' and 'text' must be strings"),
    "corpus-duplicate-ids": (dict(corpus=CORPUS + '{"_id": "bio/photo_1", "title": "", "text": "dup"}\n'), COUNTED,
                             "duplicate docids"),
    "corpus-non-utf8": (dict(corpus=CORPUS.encode() + b'{"_id": "zz", "title": "", "text": "caf\xe9"}\n'), OK, ""),
}
for _name, (_kw, _expect, _needle) in _BEIR.items():
    add(f"beir-{_name}", "BEIR directories", lambda env, kw=_kw, name=_name: _beir_run(env, _beir(env, name, **kw)),
        _expect, _needle)
add("beir-queries-is-directory", "BEIR directories",
    lambda env: _beir_run(env, _replace_with_dir(_beir(env, "qdir"), "queries.jsonl")), ERROR, "missing queries.jsonl")
add("task-is-a-file", "BEIR directories", lambda env: ["run", "--task", str(FIRST_STAGE_RUN), "-q"], ERROR,
    "is a file, not a task")
add("task-missing-dir", "BEIR directories", lambda env: ["run", "--task", "./no/such/dir", "-q"], ERROR,
    "Task directory './no/such/dir' does not exist")
add("task-unknown-subset", "BEIR directories", lambda env: ["run", "--task", "tiny/anything", "-q"], ERROR,
    "Unknown tiny (smoke fixture) subset 'anything'")
add("task-bright-typo", "BEIR directories", lambda env: ["run", "--task", "bright/biolgy", "-q"], ERROR,
    "Did you mean 'bright/biology'")
add("as-on-registry-task", "BEIR directories", lambda env: ["run", "--task", "tiny", "--as", "bright/biology", "-q"],
    ERROR, "--as bright/biology applies to a local BEIR-layout directory")
add("as-unknown-subset", "BEIR directories",
    lambda env: ["run", "--task", str(DATA_DIR), "--as", "bright/biolgy", "-q"], ERROR, "Did you mean 'bright/biology'")
add("as-no-subset", "BEIR directories", lambda env: ["run", "--task", str(DATA_DIR), "--as", "bright", "-q"], ERROR,
    "--as 'bright': name one declared subset")
add("as-unknown-benchmark", "BEIR directories",
    lambda env: ["run", "--task", str(DATA_DIR), "--as", "brigth/biology", "-q"], ERROR, "Did you mean 'bright'")
add("task-empty-name", "BEIR directories", lambda env: ["run", "--task", "", "-q"], ERROR, "No task given")
add("declaration-only-task", "BEIR directories", lambda env: ["run", "--task", "beir/scifact", "-q"], ERROR,
    "--task DIR --as beir/scifact")


def _replace_with_dir(root: Path, name: str) -> Path:
    (root / name).unlink()
    (root / name).mkdir()
    return root


# --------------------------------------------------------------------------------------------------------------------
# D. command-line options and config files
# --------------------------------------------------------------------------------------------------------------------

_RUN = ["run", "--task", "tiny"]
_OPTIONS = {
    "limit-0": (["--limit", "0"], "option 'limit' must be ≥ 1; got 0"),
    "limit-negative": (["--limit", "-3"], "option 'limit' must be ≥ 1; got -3"),
    "top-k-0": (["--top-k", "0"], "option 'top_k' must be ≥ 1; got 0"),
    "top-k-text": (["--top-k", "abc"], "Invalid value for '--top-k'"),
    "concurrency-0": (["--concurrency", "0"], "option 'concurrency' must be ≥ 1"),
    "gpus-0": (["--gpus", "0"], "option 'gpus' must be ≥ 1"),
    "window-0": (["--reranker", "reasonrank", "--window-size", "0"], "option 'window_size' must be ≥ 1"),
    "step-negative": (["--reranker", "reasonrank", "--step", "-1"], "option 'step' must be ≥ 1"),
    "passage-0": (["--reranker", "reasonrank", "--passage-length", "0"], "option 'passage_length' must be ≥ 1"),
    "budget-0": (["--reranker", "reasonrank", "--reasoning-budget", "0"], "option 'reasoning_budget' must be ≥ 1"),
    "max-tokens-0": (["--reranker", "rank1", "--max-tokens", "0"], "option 'max_tokens' must be ≥ 1"),
    "context-tiny": (["--reranker", "rankzephyr", "--context-size", "3"], "option 'context_size' must be ≥ 16"),
    "temperature-negative": (["--reranker", "reasonrank", "--temperature", "-1"], "option 'temperature' must be ≥ 0"),
    "prompt-mode": (["--reranker", "reasonrank", "--prompt-mode", "bogus"], "option 'prompt_mode' must be one of"),
    "unknown-reranker": (["--reranker", "reasonrnak"], "Did you mean 'reasonrank'"),
    "unknown-first-stage": (["--first-stage", "bm52"], "Did you mean 'bm25'"),
    "unknown-backend": (["--reranker", "reasonrank", "--backend", "vlm"], "Did you mean 'vllm'"),
    "replay-no-path": (["--reranker", "reasonrank", "--backend", "replay"], "--backend replay needs the traces file"),
    "backend-with-argument": (["--reranker", "reasonrank", "--backend", "hf:x"], "only 'replay' takes an argument"),
    "bad-metric": (["--metrics", "bogus"], "Unknown metric 'bogus'"),
    "metric-cutoff-0": (["--metrics", "nDCG@0"], "nDCG@0"),
    "query-field": (["--first-stage", "bm25", "--query-field", "nope"], "has no query field 'nope'"),
    "failure-rate": (["--max-failure-rate", "2"], "option 'max_failure_rate' must be 0..1"),
    "reranker-arg-no-equals": (["--reranker", "reasonrank", "--reranker-arg", "window_size"], "expected KEY=VALUE"),
    "reranker-arg-twice": (["--reranker", "reasonrank", "--reranker-arg", "step=2", "--reranker-arg", "step=3"],
                           "'step' is given twice"),
    "reranker-arg-unknown": (["--reranker", "reasonrank", "--reranker-arg", "windw=3"], "Did you mean 'window_size'"),
    "reranker-arg-type": (["--reranker", "reasonrank", "--reranker-arg", "step=two"], "option 'step' must be ≥ 1; got 'two'"),
    "backend-arg-unknown": (["--reranker", "reasonrank", "--backend", "hf", "--backend-arg", "max_model_len=9"],
                            "backend hf has no option 'max_model_len'"),
    "backend-arg-choice": (["--reranker", "reasonrank", "--backend", "hf", "--dtype", "int3"],
                           "option 'dtype' must be one of"),
    "flag-not-for-reranker": (["--reranker", "rank1", "--window-size", "3"], "reranker rank1 has no option 'window_size'"),
    "engine-for-no-model": (["--reranker", "none", "--device", "cpu"], "uses no model; engine settings (device)"),
    "model-for-no-model": (["--reranker", "oracle", "--model", "x"], "reranker oracle has no option 'model'"),
    "bm25-backend": (["--bm25-backend", "java"], "option 'bm25_backend' must be one of"),
    "run-mode": (["--run-mode", "strict"], "option 'run_mode' must be one of"),
    "as-bad": (["--as", "bright"], "applies to a local BEIR-layout directory"),
    "unknown-flag": (["--windw-size", "3"], "No such option: --windw-size"),
}
for _name, (_args, _needle) in _OPTIONS.items():
    add(f"option-{_name}", "CLI options", lambda env, args=_args: [*_RUN, *args, "-q", "--results-dir",
                                                                   str(env.tmp / "results")], ERROR, _needle)
add("option-no-task", "CLI options", lambda env: ["run", "--reranker", "none"], ERROR, "No task given")
add("option-results-dir-under-file", "CLI options",
    lambda env: [*_RUN, "--results-dir", str(env.write("blocker", "x") / "sub"), "-q"], ERROR, "is not writable")
add("option-save-traces-under-file", "CLI options",
    lambda env: [*_RUN, "--reranker", "reasonrank", "--model", str(env.model), "--backend",
                 f"replay:{env.write('t.jsonl', '')}", "--save-traces", str(env.write("blocker2", "x") / "t.jsonl"),
                 "-q", "--results-dir", str(env.tmp / "r")], ERROR, "Cannot write the traces file")
add("option-window-gap-counted", "CLI options",
    lambda env: [*_RUN, "--reranker", "reasonrank", "--model", str(env.model), "--backend", "openai", "--base-url",
                 env.server_url, "--window-size", "3", "--step", "5", "-q", "--results-dir", str(env.tmp / "r")],
    COUNTED, "never shown to the model", server=lambda body, hit: (200, _answer(body)))

_CONFIGS = {
    "not-yaml": ("task: [tiny\n", "is not valid YAML"),
    "a-list": ("- task\n- tiny\n", "must be a mapping of option names"),
    "unknown-key": ("task: tiny\nrerankr: oracle\n", "unknown option 'rerankr'. Did you mean 'reranker'"),
    "top-k-text": ("task: tiny\ntop_k: abc\n", "option 'top_k' must be ≥ 1; got 'abc'"),
    "top-k-0": ("task: tiny\ntop_k: 0\n", "option 'top_k' must be ≥ 1; got 0"),
    "reranker-args-list": ("task: tiny\nreranker: reasonrank\nreranker_args: [1, 2]\n", "'reranker_args' must be a mapping"),
    "backend-args-text": ("task: tiny\nreranker: reasonrank\nbackend_args: fast\n", "'backend_args' must be a mapping"),
    "quiet-maybe": ("task: tiny\nquiet: maybe\n", "option 'quiet' must be true or false"),
    "task-mapping": ("task: {a: 1}\n", "option 'task' must be text"),
    "window-float": ("task: tiny\nreranker: reasonrank\nwindow_size: 2.5\n", "option 'window_size' must be ≥ 1; got 2.5"),
    "window-bool": ("task: tiny\nreranker: reasonrank\nwindow_size: true\n", "option 'window_size' must be ≥ 1; got True"),
    "limit-negative": ("task: tiny\nlimit: -1\n", "option 'limit' must be ≥ 1"),
    "non-utf8": (b"task: tiny\nreranker: \xff\xfe\n", "is not valid YAML"),
    "nested-reranker-arg": ("task: tiny\nreranker: reasonrank\nreranker_args: {step: 0}\n", "option 'step' must be ≥ 1"),
}
for _name, (_content, _needle) in _CONFIGS.items():
    add(f"config-{_name}", "config files",
        lambda env, content=_content: ["run", "--config", str(env.write("c.yaml", content)), "--results-dir",
                                       str(env.tmp / "r")], ERROR, _needle)
add("config-missing", "config files", lambda env: ["run", "--config", str(env.tmp / "gone.yaml")], ERROR,
    "gone.yaml does not exist")
add("config-nulls-are-unset", "config files",
    lambda env: ["run", "--config", str(env.write("c.yaml", "task: tiny\nreranker: oracle\nlimit: null\n")),
                 "--results-dir", str(env.tmp / "r"), "-q"], OK, "nDCG@10 = 1.0000")


# --------------------------------------------------------------------------------------------------------------------
# E. OpenAI-compatible server replies
# --------------------------------------------------------------------------------------------------------------------

def _answer(body) -> dict:
    from openai_server import reasonrank_answer

    return reasonrank_answer(body, 1)[1]


def _completion(**choice) -> dict:
    base = {"index": 0, "text": "<think>x</think> <answer>[1]</answer>", "finish_reason": "stop", "logprobs": None}
    base.update(choice)
    return {"choices": [base], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}


def _server_case(id: str, respond, expect: str, needle: str, reranker: str = "reasonrank", *extra: str,
                 code: int | None = None) -> None:
    def build(env, extra=extra, reranker=reranker):
        argv = ["run", "--task", "tiny", "--reranker", reranker, "--model", str(env.model), "--backend", "openai",
                "--base-url", env.server_url, "--results-dir", str(env.tmp / "results"), "-q", "--no-cache",
                "--max-retries", "1"]
        if reranker in ("reasonrank", "rankzephyr"):
            argv += ["--window-size", "5", "--step", "5"]
        return argv + list(extra)
    add(f"server-{id}", "server replies", build, expect, needle, server=respond, code=code)


_server_case("text-null", lambda b, h: (200, _completion(text=None)), ERROR, "returned no completion text")
_server_case("text-number", lambda b, h: (200, _completion(text=42)), ERROR, "text is int, not a string")
_server_case("no-choices", lambda b, h: (200, {"usage": {}}), ERROR, "returned no completion text")
_server_case("empty-choices", lambda b, h: (200, {"choices": []}), ERROR, "returned no completion text")
_server_case("choice-is-text", lambda b, h: (200, {"choices": ["hello"]}), ERROR, "returned no completion text")
_server_case("usage-text", lambda b, h: (200, {**_completion(), "usage": {"prompt_tokens": "many"}}), ERROR,
             "usage.prompt_tokens = 'many', not a token count")
_server_case("usage-negative", lambda b, h: (200, {**_completion(), "usage": {"completion_tokens": -4}}), ERROR,
             "usage.completion_tokens = -4")
_server_case("usage-fraction", lambda b, h: (200, {**_completion(), "usage": {"prompt_tokens": 2.5}}), ERROR,
             "usage.prompt_tokens = 2.5")
_server_case("usage-not-object", lambda b, h: (200, {**_answer(b), "usage": "n/a"}), OK, "")
_server_case("finish-null", lambda b, h: (200, {**_answer(b)}), OK, "")
_server_case("http-400", lambda b, h: (400, {"error": "bad"}), ERROR, "rejected a request")
_server_case("http-401", lambda b, h: (401, {"error": "no key"}), ERROR, "Set OPENAI_API_KEY")
_server_case("http-404", lambda b, h: (404, {"error": "no"}), ERROR, "Check --base-url")
_server_case("http-422", lambda b, h: (422, {"detail": "Unexpected fields"}), ERROR, "HTTP 422")
_server_case("http-503-always", lambda b, h: (503, {"error": "busy"}), ERROR, "kept failing")
_server_case("http-500-then-ok", lambda b, h: (500, {"error": "x"}) if h == 1 else (200, _answer(b)), COUNTED,
             "request(s) retried after a transient server failure")
_server_case("empty-answers", lambda b, h: (200, _completion(text="")), ERROR, "the run is degenerate", code=1)
_server_case("rankzephyr-non-answers", lambda b, h: (200, _completion(text="I cannot rank these.")), ERROR,
             "the run is degenerate", "rankzephyr", code=1)
_server_case("rank1-no-logprobs", lambda b, h: (200, _completion(text="</think> true")), ERROR,
             "returned no log-probs", "rank1", "--max-tokens", "8")
_server_case("rank1-text-keyed-logprobs",
             lambda b, h: (200, _completion(text="x", logprobs={"top_logprobs": [{" true": -0.1}]})), ERROR,
             "log-probs keyed by token text", "rank1", "--max-tokens", "8")
_server_case("rank1-logprobs-not-list",
             lambda b, h: (200, _completion(text="x", logprobs={"top_logprobs": "lots"})), ERROR,
             "malformed log-probs", "rank1", "--max-tokens", "8")
_server_case("rank1-logprob-text",
             lambda b, h: (200, _completion(text="x", logprobs={"top_logprobs": [{"token_id:5": "high"}]})), ERROR,
             "not a number", "rank1", "--max-tokens", "8")
_server_case("not-json", lambda b, h: (200, None), OK, "")  # the scripted server sends {"error": …}: no choices
CASES[-1].expect, CASES[-1].needle = ERROR, "returned no completion text"

add("server-refused", "server replies",
    lambda env: ["run", "--task", "tiny", "--reranker", "reasonrank", "--model", str(env.model), "--backend", "openai",
                 "--base-url", "http://127.0.0.1:9/v1", "--max-retries", "0", "--no-cache", "-q", "--results-dir",
                 str(env.tmp / "r")], ERROR, "Is the server running")
add("server-timeout", "server replies",
    lambda env: ["run", "--task", "tiny", "--reranker", "reasonrank", "--model", str(env.model), "--backend", "openai",
                 "--base-url", env.server_url, "--max-retries", "0", "--request-timeout", "1", "--no-cache", "-q",
                 "--results-dir", str(env.tmp / "r")], ERROR, "ReadTimeout",
    server=lambda b, h: (__import__("time").sleep(2.5), (200, _answer(b)))[1])
add("server-no-base-url", "server replies",
    lambda env: ["run", "--task", "tiny", "--reranker", "reasonrank", "--model", str(env.model), "--backend", "openai",
                 "-q", "--results-dir", str(env.tmp / "r")], ERROR, "--backend openai needs the server address")
add("server-timeout-option", "server replies",
    lambda env: ["run", "--task", "tiny", "--reranker", "reasonrank", "--backend", "openai", "--request-timeout",
                 "0", "-q"], ERROR, "option 'request_timeout' must be ≥ 1")


# --------------------------------------------------------------------------------------------------------------------
# F. replay traces
# --------------------------------------------------------------------------------------------------------------------

def _traces(env: Env) -> Path:
    """Real traces of a tiny ReasonRank run (made once per session by the fixture)."""
    return env.files["traces"]


def _replay_case(id: str, mutate: Callable[[list[dict]], Any], expect: str, needle: str, raw: bool = False) -> None:
    def build(env, mutate=mutate):
        lines = [json.loads(line) for line in _traces(env).read_text().splitlines()]
        content = mutate(lines)
        if not isinstance(content, (str, bytes)):
            content = "".join(json.dumps(r) + "\n" for r in content)
        path = env.write("replay.jsonl", content)
        return ["run", "--task", "tiny", "--reranker", "reasonrank", "--model", str(env.model), "--backend",
                f"replay:{path}", "--window-size", "5", "--step", "5", "-q", "--results-dir", str(env.tmp / "r")]
    add(f"replay-{id}", "replay traces", build, expect, needle)


def _set(index: int, **fields):
    def mutate(lines):
        lines[index].update(fields)
        return lines
    return mutate


_replay_case("complete", lambda lines: lines, OK, "")
_replay_case("empty-file", lambda lines: "", ERROR, "has no recorded response")
_replay_case("bad-middle-line", lambda lines: json.dumps(lines[0]) + "\n{oops\n" + "".join(
    json.dumps(r) + "\n" for r in lines[1:]), ERROR, "replay.jsonl, line 2: not a traces record")
_replay_case("line-is-list", lambda lines: "[1, 2]\n" + "".join(json.dumps(r) + "\n" for r in lines), ERROR,
             "line 1: not a traces record")
_replay_case("no-prompt", _set(0, prompt=None), ERROR, "line 1: not a traces record")
_replay_case("prompt-number", _set(0, prompt=7), ERROR, "line 1: not a traces record")
_replay_case("response-null", _set(0, response=None), ERROR, "line 1: not a traces record")
_replay_case("tokens-text", _set(0, output_tokens="many"), ERROR, "line 1: 'output_tokens' must be a non-negative")
_replay_case("tokens-negative", _set(1, input_tokens=-3), ERROR, "line 2: 'input_tokens' must be a non-negative")
_replay_case("seconds-text", _set(0, seconds="slow"), ERROR, "line 1: 'seconds' must be a non-negative number")
_replay_case("engine-negative", _set(0, engine_seconds=-1.0), ERROR, "'engine_seconds' must be a non-negative")
_replay_case("params-text", _set(0, params="greedy"), ERROR, "'params' must be a JSON object")
_replay_case("model-number", _set(0, model=3), ERROR, "'model' must be a string")
_replay_case("logprobs-malformed", _set(0, logprobs={"positions": "x"}), ERROR, "'logprobs' is malformed")
_replay_case("non-utf8", lambda lines: b'{"prompt": "\xff", "response": "r"}\n', ERROR, "line 1: not UTF-8")
_replay_case("other-params", lambda lines: [{**r, "params": {**r["params"], "max_tokens": 7}} for r in lines], ERROR,
             "max_tokens: traces 7 ≠ this run 3172")
_replay_case("other-model", lambda lines: [{**r, "model": "someone/else@x"} for r in lines], ERROR,
             "model: traces 'someone/else@x'")
_replay_case("duplicates", lambda lines: lines + [{**lines[0], "response": "other"}], COUNTED,
             "conflicting duplicate prompts: 1")
_replay_case("prompt-and-response-only", lambda lines: [{"prompt": r["prompt"], "response": r["response"]}
                                                        for r in lines], COUNTED, "replayed on the prompt alone")
_replay_case("cut-last-line", lambda lines: "".join(json.dumps(r) + "\n" for r in lines) + '{"prompt": "x", "resp',
             OK, "")
add("replay-missing-file", "replay traces",
    lambda env: ["run", "--task", "tiny", "--reranker", "reasonrank", "--model", str(env.model), "--backend",
                 f"replay:{env.tmp / 'gone.jsonl'}", "-q", "--results-dir", str(env.tmp / "r")], ERROR,
    "gone.jsonl does not exist")


# --------------------------------------------------------------------------------------------------------------------
# G. records read by site build, verify and submit validate
# --------------------------------------------------------------------------------------------------------------------

def _corrupt(env: Env, edit) -> Path:
    """A copy of a valid results tree with one record corrupted; returns the results dir."""
    results = env.tmp / "records"
    shutil.copytree(env.files["records"], results)
    [record] = sorted(results.glob("*oracle*/tiny/record.json"))
    text = record.read_text()
    new = edit(json.loads(text)) if not isinstance(edit, str) else edit
    if isinstance(new, bytes):
        record.write_bytes(new)
    else:
        record.write_text(new if isinstance(new, str) else json.dumps(new))
    env.files["bad"] = record
    return results


_RECORD_EDITS = {
    "json-list": (lambda r: [r], "a record must be a JSON object"),
    "experiment-text": (lambda r: {**r, "experiment": "x"}, "experiment must be a JSON object"),
    "metric-text": (lambda r: {**r, "metrics": {**r["metrics"], "nDCG@10": "0.9"}}, "metrics.nDCG@10 must be"),
    "metric-nan": (lambda r: json.dumps(r).replace('"nDCG@10": 1.0', '"nDCG@10": NaN'), "metrics.nDCG@10 must be"),
    "metric-above-1": (lambda r: {**r, "metrics": {**r["metrics"], "nDCG@10": 1.5}}, "must be a number in [0, 1]"),
    "files-run-number": (lambda r: {**r, "files": {**r["files"], "run": 7}}, "files.run must be a string"),
    "files-traces-absolute": (lambda r: {**r, "files": {**r["files"], "traces": "/etc/passwd"}},
                              "files.traces must be a plain file name"),
    "files-traces-parent": (lambda r: {**r, "files": {**r["files"], "traces": "../../../secret"}},
                            "files.traces must be a plain file name"),
    "task-name-number": (lambda r: {**r, "task": {**r["task"], "name": 5}}, "task.name must be a string"),
    "schema-v1": (lambda r: {**r, "schema_version": 1}, "schema_version 1; this harness reads version 2"),
    "kind-unknown": (lambda r: {**r, "kind": "summary"}, "kind must be 'subset' or 'aggregate'"),
    "truncated": (lambda r: json.dumps(r)[:200], "not valid UTF-8 JSON"),
    "non-utf8": (lambda r: json.dumps(r).encode()[:-10] + b"\xff\xfe}", "not valid UTF-8 JSON"),
    "unknown-field": (lambda r: {**r, "bonus": 1}, "unknown field(s) bonus"),
    "costs-entry-text": (lambda r: {**r, "costs": ["cheap"]}, "costs[0] must be a JSON object"),
}
for _name, (_edit, _needle) in _RECORD_EDITS.items():
    add(f"site-build-{_name}", "records", lambda env, edit=_edit: ["site", "build", "--results", str(_corrupt(env, edit)),
                                                                   "--out", str(env.tmp / "site"), "--resamples", "100"],
        COUNTED, _needle)
    add(f"verify-{_name}", "records", lambda env, edit=_edit: ["verify", "--results", str(_corrupt(env, edit))],
        COUNTED, _needle)
    add(f"submit-{_name}", "records", lambda env, edit=_edit: ["submit", "validate", str(_corrupt(env, edit).joinpath(
        env.files["bad"].parent.relative_to(env.tmp / "records")))], ERROR, _needle, code=1)
add("site-build-strict", "records",
    lambda env: ["site", "build", "--results", str(_corrupt(env, lambda r: {**r, "kind": "x"})), "--out",
                 str(env.tmp / "site"), "--strict"], ERROR, "kind must be 'subset' or 'aggregate'")
add("verify-strict", "records",
    lambda env: ["verify", "--strict", "--results", str(_corrupt(env, lambda r: {**r, "kind": "x"}))], ERROR,
    "kind must be 'subset' or 'aggregate'")
add("submit-traces-outside", "records",
    lambda env: ["submit", "validate", str(_corrupt_traces(env))], ERROR, "files.traces must be a plain file name",
    code=1)
add("submit-aggregate-foreign-subset", "records", lambda env: ["submit", "validate", str(_foreign_aggregate(env))],
    ERROR, "belongs to another group", code=1)
add("submit-aggregate-escaping-subset", "records", lambda env: ["submit", "validate", str(_escaping_aggregate(env))],
    ERROR, "subsets[0].subset must be a plain file name", code=1)
add("submit-not-a-record", "records", lambda env: ["submit", "validate", str(env.tmp)], ERROR, "not a record directory")


def _corrupt_traces(env: Env) -> Path:
    results = _corrupt(env, lambda r: {**r, "files": {**r["files"], "traces": "../../../../../etc/hostname"}})
    return env.files["bad"].parent


def _aggregate_dir(env: Env) -> Path:
    results = env.tmp / "agg"
    shutil.copytree(env.files["twosub"], results)
    [record] = [p for p in results.glob("*/record.json")]
    return record


def _foreign_aggregate(env: Env) -> Path:
    record = _aggregate_dir(env)
    group = record.parent
    foreign = json.loads((group / "first" / "record.json").read_text())
    foreign["group_id"] = "someone_else"
    (group / "first" / "record.json").write_text(json.dumps(foreign))
    return group


def _escaping_aggregate(env: Env) -> Path:
    record = _aggregate_dir(env)
    data = json.loads(record.read_text())
    data["subsets"][0]["subset"] = "../../elsewhere"
    record.write_text(json.dumps(data))
    return record.parent


# --------------------------------------------------------------------------------------------------------------------
# H. file-system faults and output paths
# --------------------------------------------------------------------------------------------------------------------

add("site-out-under-file", "file system",
    lambda env: ["site", "build", "--results", str(env.files["records"]), "--out",
                 str(env.write("blocker", "x") / "site"), "--resamples", "100"], ERROR, "Cannot write the site to")
add("site-out-foreign-dir", "file system",
    lambda env: ["site", "build", "--results", str(env.files["records"]), "--out",
                 str(env.write("mine/notes.txt", "keep me").parent), "--resamples", "100"], ERROR,
    "is not a site built by the harness")
add("site-resamples-0", "file system", lambda env: ["site", "build", "--results", str(env.files["records"]), "--out",
                                                    str(env.tmp / "s"), "--resamples", "0"], ERROR,
    "option 'resamples' must be 100..1,000,000")
add("site-resamples-negative", "file system",
    lambda env: ["site", "build", "--results", str(env.files["records"]), "--out", str(env.tmp / "s"),
                 "--resamples", "-5"], ERROR, "option 'resamples' must be")
add("site-results-missing", "file system",
    lambda env: ["site", "build", "--results", str(env.tmp / "none"), "--out", str(env.tmp / "s")], ERROR,
    "none does not exist")
add("retrieve-output-under-file", "file system",
    lambda env: ["retrieve", "--task", "tiny", "--first-stage", "bm25", "--output",
                 str(env.write("blocker3", "x") / "run.trec")], ERROR, "Cannot write the run file")
add("retrieve-top-k-0", "file system",
    lambda env: ["retrieve", "--task", "tiny", "--first-stage", "bm25", "--top-k", "0", "--output",
                 str(env.tmp / "r.trec")], ERROR, "option 'top_k' must be ≥ 1; got 0")
add("prompt-no-model-reranker", "file system",
    lambda env: ["prompt", "--reranker", "none", "--task", "tiny", "--query", "q1"], ERROR, "sends no prompt")
add("prompt-unknown-query", "file system",
    lambda env: ["prompt", "--reranker", "reasonrank", "--model", str(env.model), "--task", "tiny", "--query", "q9"],
    ERROR, "Query 'q9' is not in tiny/tiny")
add("ls-unknown", "file system", lambda env: ["ls", "rerankerz"], ERROR, "Did you mean 'rerankers'")
add("models-unknown", "file system", lambda env: ["models", "prepare", "smollm3"], ERROR, "Did you mean 'smollm2-135m'")


@contextmanager
def read_only(path: Path):
    """Make ``path`` read-only for this process: chmod for a normal user; a read-only bind mount as root (root ignores
    permission bits); skip when neither is possible here."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    bind = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot make a read-only directory as root here ({bind.stderr.decode().strip()})")
    try:
        ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here ({ro.stderr.decode().strip()})")
        yield
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)


def _answer_all(body, hit):
    return 200, _answer(body)


# --------------------------------------------------------------------------------------------------------------------
# Running the cases
# --------------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_model_dir):
    """Files the cases corrupt: real traces of a tiny ReasonRank run, and valid record trees."""
    from openai_server import ScriptedServer, reasonrank_answer
    from records_fixture import write_tiny_records

    root = tmp_path_factory.mktemp("fuzz-shared")
    traces = root / "traces.jsonl"
    with ScriptedServer(reasonrank_answer) as server:
        with pytest.raises(SystemExit) as exc:
            main(["run", "--task", "tiny", "--reranker", "reasonrank", "--model", str(tiny_model_dir), "--backend",
                  "openai", "--base-url", server.base_url, "--window-size", "5", "--step", "5", "--no-cache",
                  "--save-traces", str(traces), "-q", "--results-dir", str(root / "traced")])
        assert exc.value.code == 0
    write_tiny_records(root / "records")
    import test_runner  # a two-subset benchmark with an aggregate record

    from harness.runner import run_experiment
    from harness.spec import ExecutionSpec, ExperimentSpec
    from tasks import TASK_FAMILIES

    TASK_FAMILIES._targets["twosub"] = "test_runner:TWO_SUBSETS"
    TASK_FAMILIES._descriptions["twosub"] = "test only"
    try:
        run_experiment(ExperimentSpec(task="twosub", reranker="oracle"),
                       ExecutionSpec(results_dir=str(root / "twosub"), progress=False), log=lambda m: None)
    finally:
        del TASK_FAMILIES._targets["twosub"], TASK_FAMILIES._descriptions["twosub"]
    assert test_runner.TWO_SUBSETS
    return {"traces": traces, "records": root / "records", "twosub": root / "twosub"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, shared, tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    env = Env(tmp=tmp_path, model=tiny_model_dir, files=dict(shared))
    server = None
    if case.server is not None:
        from openai_server import ScriptedServer

        server = ScriptedServer(case.server).__enter__()
        env.server_url = server.base_url
    try:
        argv = case.build(env)
        with pytest.raises(SystemExit) as exc:  # anything else escaping main() is a traceback: the case fails
            main([str(a) for a in argv])
        code = int(exc.value.code or 0)
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    out = capsys.readouterr()
    text = out.err + out.out
    assert "Traceback" not in text
    needle = case.needle(env) if callable(case.needle) else case.needle
    if case.expect == ERROR:
        assert code != 0, f"exit 0 for a bad input; output: {text[-800:]}"
        if case.code is not None:
            assert code == case.code, text[-800:]
    else:
        assert code == 0, f"exit {code}: {text[-800:]}"
    assert needle in " ".join(text.split()), f"{needle!r} not in: {text[-1500:]}"
    if case.check:
        case.check(env)


def test_case_count():
    by_category: dict[str, int] = {}
    for c in CASES:
        by_category[c.category] = by_category.get(c.category, 0) + 1
    assert len(CASES) >= 150, by_category
    assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------------------------------------------------
# Read-only caches (needs a real read-only directory)
# --------------------------------------------------------------------------------------------------------------------

def test_read_only_caches_serve_what_they_hold(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from openai_server import ScriptedServer, reasonrank_answer

    cache = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    with ScriptedServer(reasonrank_answer) as server:
        argv = ["run", "--task", "tiny", "--reranker", "reasonrank", "--model", str(tiny_model_dir), "--backend",
                "openai", "--base-url", server.base_url, "--first-stage", "bm25", "--window-size", "5", "--step",
                "5", "-q"]
        with pytest.raises(SystemExit) as exc:
            main(argv + ["--results-dir", str(tmp_path / "a")])
        assert exc.value.code == 0
        calls = len(server.bodies)
        with read_only(cache):
            with pytest.warns(UserWarning, match="read-only"):
                with pytest.raises(SystemExit) as exc:
                    main(argv + ["--results-dir", str(tmp_path / "b")])
        assert exc.value.code == 0
        assert len(server.bodies) == calls  # every call came from the read-only cache, the BM25 index too
    assert (tmp_path / "a").glob("*/tiny/run.trec")
    [a] = (tmp_path / "a").glob("*/tiny/run.trec")
    [b] = (tmp_path / "b").glob("*/tiny/run.trec")
    assert a.read_bytes() == b.read_bytes()
    assert "Traceback" not in capsys.readouterr().err


def test_read_only_cache_without_an_index_still_runs(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    (cache / "bm25").mkdir(parents=True)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(cache))
    with read_only(cache):
        with pytest.raises(SystemExit) as exc:
            main(["run", "--task", "tiny", "--reranker", "none", "--first-stage", "bm25", "-q", "--results-dir",
                  str(tmp_path / "r")])
    assert exc.value.code == 0
    assert list((tmp_path / "r").glob("*/tiny/record.json"))
