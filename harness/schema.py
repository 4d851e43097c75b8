"""The one run-record schema: typed, versioned, used by every writer and reader (runner, verify, site, submit, tests).

Records are dataclasses; ``to_dict`` gives the JSON written to ``record.json`` and ``load_record`` is the only way
files are read back: it checks every field's type (and that metrics are fractions in [0, 1] and file names stay
inside the record directory), so a malformed or hostile record is a ``RecordError`` naming the file and the field,
never a crash further down. ``results/README.md`` embeds ``schema_markdown()``; a test keeps the two equal
(``python -m harness.schema`` prints it).

Version history: 1 — single ``cost`` block, ``spec`` as given; 2 — experiment identity separate from execution,
``costs`` per hardware configuration, run variants. Version-1 records are refused with a message saying how to
re-create them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from harness.errors import HarnessError

SCHEMA_VERSION = 2
RECORD_FILE = "record.json"
RUN_FILE = "run.trec"
PER_QUERY_FILE = "per_query.jsonl"
TRACES_FILE = "traces.jsonl"
VARIANTS_DIR = "variants"


class RecordError(HarnessError):
    """A record file that does not follow the schema."""


def _doc(text: str, check: str | None = None, **kw) -> Any:
    metadata = {"doc": text}
    if check:
        metadata["check"] = check
    return field(metadata=metadata, **kw)


# ---------------------------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class TaskInfo:
    name: str = _doc("task subset as run, e.g. `bright/biology`")
    benchmark: str = _doc("benchmark the subset belongs to (its declared name), e.g. `bright`, `beir`")
    subset: str = _doc("subset key, e.g. `biology`")
    revision: str = _doc("dataset version: ir_datasets version + file md5s, HF dataset commit, or sha256 of a "
                         "local directory")
    queries: int = _doc("queries in the task")
    judged_queries: int = _doc("queries with at least one judgment of grade ≥ 0")
    evaluated_queries: int = _doc("queries the metrics are averaged over")
    source: str = _doc("`registry` (a named task) or `directory` (a local BEIR-layout directory)", default="registry")
    protocol_of: Union[str, None] = _doc("with `--as NAME/SUBSET`: the declared subset whose protocol a local "
                                         "directory was run under", default=None)
    details: dict[str, Any] = _doc("family-specific facts (ir_datasets id, HF dataset, query-field columns)",
                                   default_factory=dict)


@dataclass
class FirstStageInfo:
    spec: str = _doc("first stage as given, e.g. `reasonir-published`, `bm25`, `run:FILE`")
    source: str = _doc("where the candidates came from: URL, file name or method description")
    sha256: Union[str, None] = _doc("sha256 of the run file the candidates were read from, or null")
    top_k: int = _doc("candidates per query")
    query_field: str = _doc("query text the first stage retrieved with (published runs: the one they used)")
    params: dict[str, Any] = _doc("resolved parameters (k1, b, analyzer, commit, …)", default_factory=dict)
    report: dict[str, int] = _doc("quirk counters: duplicate_docids, docids_with_spaces, unknown_queries, "
                                  "missing_queries, not_in_corpus, excluded_removed, malformed_lines, …",
                                  default_factory=dict)


@dataclass
class RerankerInfo:
    name: str = _doc("registered reranker name, e.g. `reasonrank`")
    family: Union[str, None] = _doc("paradigm: listwise, pointwise, setwise, cross-encoder, baseline", default=None)
    model: Union[str, None] = _doc("model id or checkpoint name (null for model-free rerankers)", default=None)
    revision: Union[str, None] = _doc("weights revision: hub snapshot commit or `sha256:` fingerprint of a local "
                                      "checkpoint (null when unknown)", default=None)
    settings: dict[str, Any] = _doc("every setting that determines the output, as resolved for this subset "
                                    "(window, step, passage length, budget, sampling, prompt mode…)",
                                    default_factory=dict)
    prompt_template_hash: Union[str, None] = _doc("`sha256:` of the exact prompt template strings", default=None)


@dataclass
class Counts:
    queries: int = _doc("queries reranked")
    judged_queries: int = _doc("judged queries of the task")
    candidates: int = _doc("candidates reranked, summed over queries")
    model_calls: int = _doc("requests sent to the model (fix passes included), fresh or served from the cache")
    windows: int = _doc("listwise windows / setwise comparisons", default=0)
    pairs: int = _doc("pointwise (query, passage) pairs scored", default=0)
    parse_failures: int = _doc("model answers the reranker's parser could not read cleanly", default=0)
    fallbacks: dict[str, int] = _doc("which fallback fired, `{name: count}`", default_factory=dict)
    failure_rate: float = _doc("share of windows/pairs with a parse failure or a fallback", check="fraction",
                               default=0.0)
    unusable_answers: int = _doc("windows/pairs whose model answer decided nothing (no valid identifier, no "
                                 "score): the fallback's order or 0.5 stands", default=0)
    degenerate: bool = _doc("the share of unusable answers exceeded `--max-failure-rate` (or was 100 %): kept out "
                            "of rank groups and claim grading", default=False)
    missing_queries: int = _doc("judged queries absent from the run (they score 0)", default=0)
    excluded_removed: int = _doc("excluded documents removed from the run before scoring", default=0)
    qrels_unknown_queries: int = _doc("judgments for query ids the task does not have (dropped, not scored)",
                                      default=0)
    quirks: dict[str, int] = _doc("tolerated oddities of the inputs, counted (duplicate query ids, conflicting "
                                  "judgments, non-integer grades, unreachable candidates, …)", default_factory=dict)


@dataclass
class Hardware:
    backend: Union[str, None] = _doc("inference backend: vllm, hf, openai, replay; null without a model")
    accelerator: str = _doc("`cpu`, the GPU name, or `remote` (an OpenAI-compatible server)")
    count: int = _doc("accelerators used (tensor parallel × data parallel on GPUs; 0 on CPU or remote)")
    tensor_parallel: int = _doc("tensor-parallel size", default=1)
    data_parallel: int = _doc("engine replicas (data parallel)", default=1)

    def key(self) -> str:
        return f"{self.backend}|{self.accelerator}|{self.count}|tp{self.tensor_parallel}|dp{self.data_parallel}"

    def label(self) -> str:
        if self.backend is None:
            return "no model"
        if self.accelerator in ("cpu", "remote"):
            return f"{self.accelerator} ({self.backend})"
        name = self.accelerator.removeprefix("NVIDIA ").strip()
        layout = f", TP{self.tensor_parallel}×DP{self.data_parallel}" if self.count > 1 else ""
        return f"{self.count}× {name} ({self.backend}{layout})"


@dataclass
class CostEntry:
    hardware: Hardware = _doc("where the model calls ran")
    queries: int = _doc("queries whose calls ran on this hardware")
    model_calls: int = _doc("model calls counted in this entry")
    cached_calls: int = _doc("of which served from the model-call cache or a traces file (with their original "
                             "timing)")
    generation_seconds: Union[float, None] = _doc("engine-busy seconds of these calls (each call's share of the "
                                                  "time during which the engine was busy; the ReasonRank authors' "
                                                  "`time_cost`); null when some call carried no timing")
    call_seconds_sum: Union[float, None] = _doc("Σ per-call latencies (exceeds generation_seconds when calls "
                                                "overlap); null when unknown")
    seconds_per_query: Union[float, None] = _doc("generation_seconds / queries; null when unknown")
    input_tokens: int = _doc("prompt tokens")
    output_tokens: int = _doc("generated tokens")
    tokens_per_query: Union[float, None] = _doc("(input + output tokens) / queries")
    complete: bool = _doc("this entry covers every reranked query")
    measured_utc: str = _doc("when the entry was written")
    self_reported: bool = _doc("a submitted figure the harness could not re-measure", default=False)


@dataclass
class Execution:
    backend: Union[str, None] = _doc("backend of the latest execution")
    hardware: Hardware = _doc("hardware of the latest execution")
    concurrency: int = _doc("queries in flight")
    cache: bool = _doc("model-call cache on")
    traces: bool = _doc("traces were saved")
    base_url: Union[str, None] = _doc("OpenAI-compatible server address", default=None)
    server: dict[str, Any] = _doc("what the server reported (profile, `/v1/models`)", default_factory=dict)
    engine: dict[str, Any] = _doc("engine settings (device, dtype, max_model_len, …)", default_factory=dict)
    wall_seconds: float = _doc("end-to-end seconds of the subset in this execution (first stage included)",
                               default=0.0)
    rerank_wall_seconds: float = _doc("seconds spent reranking in this execution", default=0.0)
    wall_seconds_per_query: Union[float, None] = _doc("rerank_wall_seconds / queries", default=None)
    fresh_calls: int = _doc("model calls actually computed in this execution", default=0)
    retries: int = _doc("requests retried after a transient failure", default=0)
    timeouts: int = _doc("requests that timed out", default=0)
    replay_checked: Union[bool, None] = _doc("replay only: whether model and sampling parameters were checked "
                                             "against the traces", default=None)


@dataclass
class Provenance:
    harness_version: str = _doc("harness version")
    git_commit: Union[str, None] = _doc("commit of the harness source tree (null outside a checkout)")
    git_dirty: Union[bool, None] = _doc("uncommitted changes in the harness tree")
    python: str = _doc("Python version")
    platform: str = _doc("OS and architecture")
    packages: dict[str, str] = _doc("versions of the packages that matter (`{name: version}`)")
    started_utc: str = _doc("start time (UTC, ISO 8601)")
    finished_utc: str = _doc("end time (UTC, ISO 8601)")
    argv: list[str] = _doc("command line")


@dataclass
class Files:
    run: str = _doc("reranked run (TREC, sorted by score desc then docid desc)", check="filename")
    per_query: str = _doc("one JSON line per judged query (schema below)", check="filename")
    traces: Union[str, None] = _doc("model calls (prompt, response, …) when `--save-traces` was given",
                                    check="filename", default=None)


@dataclass
class Variant:
    id: str = _doc("short hash of the variant's run file; its files are in `variants/<id>/`", check="filename")
    hardware: Hardware = _doc("where the variant ran")
    differing_queries: int = _doc("queries whose ranking differs from the group's canonical run")
    mean_delta: dict[str, float] = _doc("variant − canonical, mean over judged queries, per metric")
    finished_utc: str = _doc("when it was recorded")


@dataclass
class SubsetRecord:
    schema_version: int = _doc(f"`{SCHEMA_VERSION}`")
    kind: str = _doc("`subset`")
    run_id: str = _doc("`<group_id>/<subset>`")
    group_id: str = _doc("`<benchmark>__<first stage>__<reranker>[-<model>]__<8 hex of the experiment hash>`")
    experiment: dict[str, Any] = _doc("the frozen experiment identity the group id hashes (task, first stage, "
                                      "reranker, model, every setting as resolved per subset); see "
                                      "`harness/spec.py`")
    task: TaskInfo = _doc("the task subset")
    first_stage: FirstStageInfo = _doc("where the candidates came from")
    reranker: RerankerInfo = _doc("the reranker, model and resolved settings")
    metrics: dict[str, float] = _doc("`{\"nDCG@10\": 0.3412, …}`: floats in [0, 1], mean over judged queries",
                                     check="metrics")
    counts: Counts = _doc("what happened")
    costs: list[CostEntry] = _doc("model cost, one entry per hardware configuration the calls ran on")
    execution: Execution = _doc("how the latest execution ran")
    provenance: Provenance = _doc("versions, commit, times, command line of the canonical run")
    files: Files = _doc("the record directory's files (plain names inside it)")
    sha256: dict[str, str] = _doc("`{file name: sha256}` of every listed file")
    variants: list[Variant] = _doc("later runs of the same experiment whose run file differed (e.g. another "
                                   "backend's numerics), kept beside the canonical one", default_factory=list)


@dataclass
class SubsetEntry:
    subset: str = _doc("subset key", check="filename")
    run_id: str = _doc("run id of the subset record")
    metrics: dict[str, float] = _doc("its metrics", check="metrics")


@dataclass
class AggregateCounts:
    queries: int = _doc("queries reranked over all subsets")
    model_calls: int = _doc("model calls over all subsets")
    parse_failures: int = _doc("parse failures over all subsets")
    degenerate_subsets: int = _doc("subsets flagged degenerate", default=0)


@dataclass
class AggregateRecord:
    schema_version: int = _doc(f"`{SCHEMA_VERSION}`")
    kind: str = _doc("`aggregate`")
    run_id: str = _doc("`<group_id>`")
    group_id: str = _doc("the group id")
    experiment: dict[str, Any] = _doc("the frozen experiment identity (as in the subset records)")
    benchmark: str = _doc("benchmark name")
    first_stage: str = _doc("first-stage spec")
    reranker: RerankerInfo = _doc("reranker and model (settings as given; per-subset values are in the subset "
                                  "records)")
    subsets: list[SubsetEntry] = _doc("the subsets present, each with its metrics")
    complete: bool = _doc("every official subset of the benchmark is present")
    metrics: dict[str, float] = _doc("unweighted mean over the subsets of each metric (how BRIGHT and R2MED "
                                     "report averages)", check="metrics")
    counts: AggregateCounts = _doc("summed counts")
    costs: list[CostEntry] = _doc("costs summed per hardware configuration")
    provenance: Provenance = _doc("of the run that wrote the aggregate")


@dataclass
class PerQueryRow:
    qid: str = _doc("query id")
    metrics: dict[str, float] = _doc("this query's metrics", check="metrics")
    in_run: bool = _doc("the query has a ranking in the run")
    candidates: int = _doc("candidates reranked")
    input_tokens: int = _doc("prompt tokens of its calls")
    output_tokens: int = _doc("generated tokens of its calls")
    generation_seconds: Union[float, None] = _doc("Σ engine-time shares of its calls (null when unknown)")
    model_calls: int = _doc("model calls")
    parse_failures: int = _doc("parse failures")
    fallbacks: dict[str, int] = _doc("fallbacks that fired")
    gold: dict[str, int] = _doc("the query's relevant documents (grade > 0), so the site can mark gold hits "
                                "without the task data")


Record = Union[SubsetRecord, AggregateRecord]
_UNIONS = (Union, types.UnionType)


# ---------------------------------------------------------------------------------------------------------------
# Loading and dumping
# ---------------------------------------------------------------------------------------------------------------

def to_dict(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def plain_file_name(name: str) -> bool:
    """A name inside the record directory: no separators, no parent references, not absolute, not hidden."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and not name.startswith(".") and "\x00" not in name and not os.path.isabs(name))


def _check(kind: str, value: Any, where: str) -> None:
    if kind == "fraction":
        if not (_finite(value) and 0.0 <= value <= 1.0):
            raise RecordError(f"{where} must be a number in [0, 1]; got {value!r}.")
    elif kind == "metrics":
        for name, metric in value.items():
            if not (_finite(metric) and -1e-9 <= metric <= 1.0 + 1e-9):
                raise RecordError(f"{where}.{name} must be a number in [0, 1] (metrics are fractions); got "
                                  f"{metric!r}.")
    elif kind == "filename":
        if value is not None and not plain_file_name(value):
            raise RecordError(f"{where} must be a plain file name inside the record directory; got {value!r}.")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in _UNIONS:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args) + " or null"
    if origin in (list, dict):
        return "a JSON array" if origin is list else "a JSON object"
    if dataclasses.is_dataclass(tp):
        return "a JSON object"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _load(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in _UNIONS:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        if value is None:
            raise RecordError(f"{where} must be {_type_name(tp)}; got null.")
        return _load(inner, value, where)
    if dataclasses.is_dataclass(tp):
        return _load_dataclass(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"{where} must be a JSON array; got {type(value).__name__}.")
        (inner,) = typing.get_args(tp)
        return [_load(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where} must be a JSON object; got {type(value).__name__}.")
        key_type, inner = typing.get_args(tp)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise RecordError(f"{where} keys must be strings.")
            out[k] = _load(inner, v, f"{where}.{k}")
        return out
    if tp is bool:
        if not isinstance(value, bool):
            raise RecordError(f"{where} must be true or false; got {value!r}.")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(f"{where} must be an integer; got {value!r}.")
        return value
    if tp is float:
        if not _finite(value):
            raise RecordError(f"{where} must be a finite number; got {value!r}.")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise RecordError(f"{where} must be a string; got {value!r}.")
        return value
    raise TypeError(f"schema type {tp!r} not handled")


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _load_dataclass(cls, value: Any, where: str):
    if not isinstance(value, dict):
        raise RecordError(f"{where} must be a JSON object; got {type(value).__name__}.")
    hints = _hints(cls)
    kwargs = {}
    names = set()
    for f in dataclasses.fields(cls):
        names.add(f.name)
        here = f"{where}.{f.name}" if where else f.name
        if f.name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(f"{here} is missing.")
            continue
        loaded = _load(hints[f.name], value[f.name], here)
        check = f.metadata.get("check")
        if check and loaded is not None:
            _check(check, loaded, here)
        kwargs[f.name] = loaded
    unknown = sorted(set(value) - names)
    if unknown:
        raise RecordError(f"{where or 'record'} has unknown field(s) {', '.join(unknown)}.")
    return cls(**kwargs)


def from_dict(cls, data: Any, where: str = ""):
    """Build ``cls`` from parsed JSON, checking every field (raises RecordError naming the field)."""
    return _load_dataclass(cls, data, where)


def parse_record(data: Any, where: str) -> Record:
    if not isinstance(data, dict):
        raise RecordError(f"{where}: a record must be a JSON object; got {type(data).__name__}.")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        argv = (data.get("provenance") or {}).get("argv") if isinstance(data.get("provenance"), dict) else None
        again = f" Re-create it with the same command: {' '.join(map(str, argv))}." if isinstance(argv, list) else \
            " Re-create it by running the experiment again."
        raise RecordError(f"{where}: schema_version {version!r}; this harness reads version {SCHEMA_VERSION} "
                          f"(see results/README.md).{again}")
    kind = data.get("kind")
    cls = {"subset": SubsetRecord, "aggregate": AggregateRecord}.get(kind)
    if cls is None:
        raise RecordError(f"{where}: kind must be 'subset' or 'aggregate'; got {kind!r}.")
    try:
        return from_dict(cls, data, "")
    except RecordError as exc:
        raise RecordError(f"{where}: {exc}") from None


def load_record(path: str | os.PathLike) -> Record:
    """Read and check one ``record.json``."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RecordError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError(f"{path}: not valid UTF-8 JSON ({exc}).") from exc
    return parse_record(data, str(path))


def record_json(record: Record) -> str:
    from harness.files import json_text

    return json_text(to_dict(record))


def read_per_query(path: str | os.PathLike) -> list[PerQueryRow]:
    """The rows of a ``per_query.jsonl``, each checked against ``PerQueryRow``."""
    from harness.jsonl import read_jsonl

    return [from_dict(PerQueryRow, obj, f"{path}:{lineno}") for lineno, obj in read_jsonl(Path(path))]


# ---------------------------------------------------------------------------------------------------------------
# Documentation
# ---------------------------------------------------------------------------------------------------------------

_DOCUMENTED = (SubsetRecord, TaskInfo, FirstStageInfo, RerankerInfo, Counts, CostEntry, Hardware, Execution,
               Provenance, Files, Variant, AggregateRecord, SubsetEntry, AggregateCounts, PerQueryRow)


def schema_markdown() -> str:
    """Markdown tables of every record section (embedded in results/README.md)."""
    hints_cache = {cls: _hints(cls) for cls in _DOCUMENTED}
    parts = []
    for cls in _DOCUMENTED:
        parts.append(f"### `{cls.__name__}`\n")
        parts.append("| field | type | meaning |")
        parts.append("|---|---|---|")
        for f in dataclasses.fields(cls):
            tp = hints_cache[cls][f.name]
            type_text = _type_name(tp)
            if dataclasses.is_dataclass(tp):
                type_text = f"`{tp.__name__}`"
            elif typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
                type_text = f"list of `{typing.get_args(tp)[0].__name__}`"
            optional = "" if (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING) \
                else " (optional)"
            parts.append(f"| `{f.name}` | {type_text}{optional} | {f.metadata.get('doc', '')} |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    print(schema_markdown(), end="")
