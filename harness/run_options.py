"""The options of ``harness run`` — flags, ``--config`` YAML keys and sweep cells all go through ``build_specs``.

Keys are the flag names with underscores (``window_size`` for ``--window-size``). Run-level keys (task, first
stage, execution) are declared in ``RUN_OPTIONS``; reranker settings (``--window-size``, ``--reranker-arg k=v``,
config ``reranker_args: {k: v}``) are validated against the chosen reranker's declared options, engine settings
(``--device``, ``--backend-arg k=v``, config ``backend_args``) against the chosen backend's. An unknown key lists
the valid ones with a did-you-mean; a bad value names the option and its range.
"""

from __future__ import annotations

import difflib
from typing import Any, Mapping

from harness.errors import HarnessError
from harness.options import Option, OptionSet
from harness.spec import ExecutionSpec, ExperimentSpec

RUN_OPTIONS = OptionSet("harness run", [
    Option("task", str, None, "task or BEIR-layout directory"),
    Option("as_subset", str, None, "run a local directory under a declared subset's protocol (--as)"),
    Option("reranker", str, "none", "reranker name"),
    Option("first_stage", str, None, "first stage (default: the task's)"),
    Option("top_k", int, 100, "candidates per query", minimum=1),
    Option("limit", int, None, "only the first N queries of each subset (smoke runs)", minimum=1),
    Option("query_field", str, "original", "first-stage query text"),
    Option("fuse", str, "none", "fuse the reranker with the first stage (harness.fusion)",
           choices=("none", "minmax", "zscore", "rrf")),
    Option("fuse_weight", float, None, "the reranker's weight in the fusion [default: 0.5]", minimum=0.0, maximum=1.0),
    Option("bm25_backend", str, None, "BM25 engine", choices=("python", "pyserini")),
    Option("run_mode", str, None, "reading TREC runs", choices=("robust", "reference")),
    Option("backend", str, None, "vllm, hf, openai or replay:PATH"),
    Option("base_url", str, None, "OpenAI-compatible server"),
    Option("gpus", int, 1, "tensor-parallel GPUs", minimum=1),
    Option("data_parallel", int, 1, "engine replicas", minimum=1),
    Option("concurrency", int, 64, "queries in flight", minimum=1),
    Option("no_cache", bool, False, "bypass the model-call cache"),
    Option("one_subset_at_a_time", bool, False, "rerank a multi-subset task subset by subset (default: all subsets' "
           "queries in one engine at once)"),
    Option("save_traces", str, None, "traces JSONL to write"),
    Option("results_dir", str, "results", "records directory"),
    Option("metrics", str, None, "extra metrics (comma-separated)"),
    Option("quiet", bool, False, "no progress bars"),
    Option("max_failure_rate", float, 0.5, "share of failed windows/pairs above which the run counts as degenerate",
           minimum=0.0, maximum=1.0),
])
# Flags that set a reranker option / an engine option of the same name.
RERANKER_FLAGS = ("model", "revision", "tokenizer", "window_size", "step", "passage_length", "reasoning_budget",
                  "max_tokens", "prompt_mode", "context_size", "temperature", "seed")
BACKEND_FLAGS = ("device", "dtype", "served_model", "request_timeout", "max_retries", "max_model_len",
                 "enforce_eager", "quantization", "max_num_seqs", "server_profile")
MAPPINGS = ("reranker_args", "backend_args")
ALL_KEYS = tuple(RUN_OPTIONS.options) + RERANKER_FLAGS + BACKEND_FLAGS + MAPPINGS + ("no_server_extensions",)


def unknown_key_error(key: str, where: str) -> HarnessError:
    close = difflib.get_close_matches(key, ALL_KEYS, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return HarnessError(f"{where}: unknown option {key!r}.{hint} Valid keys: {', '.join(sorted(ALL_KEYS))}.")


def _mapping(value: Any, key: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise HarnessError(f"{where}: {key!r} must be a mapping of option names to values.")
    return {str(k).replace("-", "_"): v for k, v in value.items()}


def build_specs(values: Mapping[str, Any], where: str = "harness run") -> tuple[ExperimentSpec, ExecutionSpec]:
    """Validated (experiment, execution) specs from a flat mapping of run option names."""
    from harness.backends import backend_options, resolve_backend_name
    from harness.metrics import DEFAULT_METRICS
    from rerankers import RERANKERS

    values = {str(k).replace("-", "_"): v for k, v in values.items() if v is not None}
    for key in values:
        if key not in ALL_KEYS:
            raise unknown_key_error(key, where)
    run = RUN_OPTIONS.resolved(RUN_OPTIONS.validate({k: v for k, v in values.items() if k in RUN_OPTIONS}, where))
    if not run["task"]:
        raise HarnessError("No task given: pass --task (e.g. --task tiny, --task bright/biology, "
                           "--task path/to/beir_dir).")
    reranker_cls = RERANKERS.get(run["reranker"])
    settings = {k: values[k] for k in RERANKER_FLAGS if k in values}
    for key, value in _mapping(values.get("reranker_args"), "reranker_args", where).items():
        if key in settings and settings[key] != value:
            raise HarnessError(f"{where}: {key!r} is given twice ({settings[key]!r} and {value!r}).")
        settings[key] = value
    settings = reranker_cls.options.validate(settings, where)

    engine = {k: values[k] for k in BACKEND_FLAGS if k in values}
    if values.get("no_server_extensions"):
        engine["server_extensions"] = False
    engine.update(_mapping(values.get("backend_args"), "backend_args", where))
    if reranker_cls.needs_model:
        backend_name, _ = resolve_backend_name(run["backend"])
        engine = backend_options(backend_name).validate(engine, where)
    elif engine:
        raise HarnessError(f"{where}: reranker {run['reranker']!r} uses no model; engine settings "
                           f"({', '.join(sorted(engine))}) do not apply.")

    first_stage_settings = {k: run[k] for k in ("bm25_backend", "run_mode") if run[k] is not None}
    metrics = tuple(m.strip() for m in str(run["metrics"]).split(",") if m.strip()) if run["metrics"] else ()
    experiment = ExperimentSpec(
        task=run["task"], reranker=run["reranker"], reranker_settings=settings, first_stage=run["first_stage"],
        first_stage_settings=first_stage_settings, top_k=run["top_k"], limit=run["limit"],
        query_field=run["query_field"], as_subset=run["as_subset"], fuse=run["fuse"], fuse_weight=run["fuse_weight"],
    )
    execution = ExecutionSpec(
        backend=run["backend"], base_url=run["base_url"], tensor_parallel=run["gpus"],
        data_parallel=run["data_parallel"], concurrency=run["concurrency"], cache=not run["no_cache"],
        save_traces=run["save_traces"], results_dir=run["results_dir"], metrics=DEFAULT_METRICS + metrics,
        progress=not run["quiet"], backend_args=engine, max_failure_rate=run["max_failure_rate"],
        one_engine=not run["one_subset_at_a_time"],
    )
    return experiment, execution


def read_yaml_mapping(path, what: str, shape: str) -> dict[Any, Any]:
    """The mapping in YAML file ``path`` (empty file: {}); ``what`` names the file kind in errors ("Config file")
    and ``shape`` says what the mapping holds."""
    from pathlib import Path

    import yaml

    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{what} {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{what} {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise HarnessError(f"{what} {path} must be a mapping of {shape}.")
    return data


def load_config(path) -> dict[str, Any]:
    """A YAML mapping of run option names (command-line values override it)."""
    data = read_yaml_mapping(path, "Config file", "option names to values")
    out = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in ALL_KEYS:
            raise unknown_key_error(name, f"Config file {path}")
        out[name] = value
    return out
