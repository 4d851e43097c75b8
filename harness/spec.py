"""What a run *is* (the experiment identity) versus how it is *executed*.

``ExperimentSpec`` holds everything that can change ``run.trec``: the task (and ``--as`` protocol), the first stage
and its settings, top-k, limit, query field, the reranker with every setting, and engine settings that change the
model (quantization). ``ExecutionSpec`` holds everything else: backend and its address, tensor/data parallel
sizes, concurrency, cache, traces, results directory, metrics to compute, progress display, retries.

The runner resolves an ``ExperimentSpec`` into the frozen identity dictionary (``experiment_identity``): the
dataset version, what the reranker makes of each subset's declared protocol, the first stage's resolved parameters (a run file by its sha256, never its
path), the reranker's model (a local checkpoint by its content fingerprint) and every reranker setting with its
default filled in. The group id hashes that identity only, so the same experiment run with other execution options
or on other hardware lands in the same ``results/<group_id>/``; changing any identity setting (say the window size)
gives a new group. The identity is saved in every record (``experiment``), next to the per-subset resolved settings.

Layout of the identity (``IDENTITY_VERSION`` 1)::

    {"identity_version": 1,
     "dataset": {"benchmark", "version", "as", "directory"},     # version: hash of the pinned revisions
     "protocol": "sha256:…",           # of the reranker's settings resolved from each subset's declared hints
     "first_stage": {"spec", …resolved parameters…},
     "top_k", "limit", "query_field",
     "reranker": {"name", "model", "model_revision", "model_fingerprint", "prompt_template_hash", "settings"},
     "engine": {…identity-relevant engine settings, e.g. quantization…},
     "fusion": {"method", "weight"}}                             # only when --fuse is not none
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from harness.errors import HarnessError
from harness.metrics import DEFAULT_METRICS, parse_metrics

IDENTITY_VERSION = 1


def _frozen_items(mapping: Mapping[str, Any] | tuple | None) -> tuple[tuple[str, Any], ...]:
    if mapping is None:
        return ()
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    return tuple(sorted((str(k), v) for k, v in items))


@dataclass(frozen=True)
class ExperimentSpec:
    """Everything that determines a run's output (see the module doc)."""

    task: str
    reranker: str = "none"
    reranker_settings: tuple[tuple[str, Any], ...] = ()  # validated against the reranker's declared options
    first_stage: str | None = None  # None → the task's declared default
    first_stage_settings: tuple[tuple[str, Any], ...] = ()  # bm25_backend, run_mode, …
    top_k: int = 100
    limit: int | None = None  # rerank only the first N queries of each subset (smoke runs)
    query_field: str = "original"  # first-stage query text; rerankers always see the original query
    as_subset: str | None = None  # `--as NAME/SUBSET`: run a local directory under a declared subset's protocol
    fuse: str = "none"  # harness.fusion: none | minmax | zscore | rrf
    fuse_weight: float | None = None  # the reranker's weight (None: harness.fusion.DEFAULT_WEIGHT)

    def __post_init__(self):
        for name in ("reranker_settings", "first_stage_settings"):
            object.__setattr__(self, name, _frozen_items(getattr(self, name)))
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise HarnessError(f"--top-k must be at least 1 (got {self.top_k!r}).")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise HarnessError(f"--limit must be at least 1 (got {self.limit!r}); leave it out to run every query.")

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.reranker_settings)


@dataclass(frozen=True)
class ExecutionSpec:
    """How a run is executed; never part of the group id."""

    backend: str | None = None  # vllm | hf | openai | replay:PATH; None → auto
    base_url: str | None = None
    tensor_parallel: int = 1
    data_parallel: int = 1
    concurrency: int = 64
    cache: bool = True
    cache_dir: str | None = None
    save_traces: str | None = None
    results_dir: str = "results"
    metrics: tuple[str, ...] = DEFAULT_METRICS  # always at least the defaults (records stay comparable)
    progress: bool = True
    backend_args: tuple[tuple[str, Any], ...] = ()  # validated against the backend's declared options
    max_failure_rate: float = 0.5  # above: the record is flagged degenerate and the command exits non-zero
    one_engine: bool = True  # a multi-subset run feeds every subset's queries into one engine at once

    def __post_init__(self):
        object.__setattr__(self, "backend_args", _frozen_items(self.backend_args))
        wanted = parse_metrics(self.metrics)
        object.__setattr__(self, "metrics", tuple(dict.fromkeys(DEFAULT_METRICS + tuple(wanted))))
        for name, value in (("--tensor-parallel", self.tensor_parallel), ("--data-parallel", self.data_parallel),
                            ("--concurrency", self.concurrency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HarnessError(f"{name} must be at least 1 (got {value!r}).")
        if not 0.0 <= float(self.max_failure_rate) <= 1.0:
            raise HarnessError(f"--max-failure-rate must be between 0 and 1 (got {self.max_failure_rate!r}).")

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.backend_args).get(key, default)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def identity_hash(identity: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest()


def slug(text: str) -> str:
    """A file-name-safe label: the last path component of a model or run path, punctuation folded to '-'."""
    text = str(text).rstrip("/\\")
    if text.startswith("run:"):
        text = "run-" + re.split(r"[/\\]", text[4:])[-1]
    elif "/" in text or "\\" in text:
        text = re.split(r"[/\\]", text)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "x"


def group_id(identity: Mapping[str, Any]) -> str:
    """``<benchmark>__<first stage>__<reranker>[-<model>]__<8 hex of the identity hash>``."""
    reranker = identity["reranker"]
    model = reranker.get("model")
    label = reranker["name"] + (f"-{slug(model)}" if model else "")
    first_stage = identity["first_stage"].get("label") or identity["first_stage"]["spec"]
    benchmark = identity["dataset"]["benchmark"]
    return f"{slug(benchmark)}__{slug(first_stage)}__{slug(label)}__{identity_hash(identity)[:8]}"


def flat_settings(identity: Mapping[str, Any], resolved: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The settings a published claim can name, flattened: benchmark, first_stage, reranker, model, model_revision,
    top_k, limit, query_field, plus every resolved reranker setting (``resolved`` = one subset's, else the
    group-level ones) and engine settings."""
    reranker = identity.get("reranker", {})
    out: dict[str, Any] = {
        "benchmark": identity.get("dataset", {}).get("benchmark"),
        "first_stage": identity.get("first_stage", {}).get("spec"),
        "first_stage_sha256": identity.get("first_stage", {}).get("sha256"),
        "reranker": reranker.get("name"),
        "model": reranker.get("model"),
        "model_revision": reranker.get("model_revision"),
        "top_k": identity.get("top_k"),
        "limit": identity.get("limit"),
        "query_field": identity.get("query_field"),
        "fuse": identity.get("fusion", {}).get("method", "none"),
        "fuse_weight": identity.get("fusion", {}).get("weight"),
    }
    out.update(identity.get("engine", {}))
    out.update(reranker.get("settings", {}) if resolved is None else resolved)
    return out
