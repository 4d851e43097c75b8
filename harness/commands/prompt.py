"""``harness prompt``: print the exact prompt a reranker sends for one query and window, for auditing."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from harness.errors import HarnessError

def prompt(
    reranker: str = typer.Option(..., "--reranker", "-r", help="A model reranker, e.g. reasonrank, rank1, qwen3-reranker, rank-r1 (see `harness ls rerankers`)."),
    model: Optional[str] = typer.Option(None, "--model", help="Tokenizer: HF id, local directory or embedded model [default: the reranker's model]."),
    task: str = typer.Option(..., "--task", "-t", help="One task subset (bright/biology, tiny, …) or a BEIR-layout directory."),
    as_subset: Optional[str] = typer.Option(None, "--as", help="Run a local directory under a declared subset's protocol, e.g. bright/biology."),
    query: str = typer.Option(..., "--query", "-q", help="Query id."),
    window: int = typer.Option(0, "--window", "-w", help="Window in processing order (0 = first processed = bottom window); for pointwise rerankers the candidate index; for setwise ones the heap-building comparison."),
    first_stage: Optional[str] = typer.Option(None, "--first-stage", "-f", help="First-stage spec [default: the task's]."),
    top_k: int = typer.Option(100, "--top-k", min=1, help="Candidates taken from the first stage."),
    window_size: Optional[int] = typer.Option(None, "--window-size", help="Listwise window [default: 20]."),
    step: Optional[int] = typer.Option(None, "--step", help="Listwise step [default: 10]."),
    passage_length: Optional[int] = typer.Option(None, "--passage-length", help="Passage truncation (tokens for reasonrank, words for rankzephyr)."),
    prompt_mode: Optional[str] = typer.Option(None, "--prompt-mode", help="ReasonRank prompt mode: rank_GPT_reasoning or rank_GPT_qwen3."),
    reranker_arg: Optional[List[str]] = typer.Option(None, "--reranker-arg", help="Any declared reranker option as KEY=VALUE (repeatable)."),
    query_field: str = typer.Option("original", "--query-field", help="First-stage query text (the reranker always sees the original query)."),
) -> None:
    """Print the exact prompt (after the chat template) for one query and window of the first stage's candidates.

    Window 0 is exact. Later windows depend on the model's answers for the windows before them; they are shown
    over the first-stage order (a note on stderr says so).
    """
    from harness.first_stage import FirstStageOptions, build_first_stage
    from harness.options import parse_key_values
    from harness.types import Candidate, RerankRequest
    from rerankers import RERANKERS, build_reranker
    from tasks import resolve_tasks

    cls = RERANKERS.get(reranker)
    if not cls.needs_model:
        raise HarnessError(f"Reranker {reranker!r} sends no prompt to a model; `harness prompt` needs a model "
                           "reranker (see `harness ls rerankers`).")
    tasks = resolve_tasks(task, as_subset)
    if len(tasks) != 1:
        raise HarnessError(f"Task {task!r} has {len(tasks)} subsets; name one, e.g. {tasks[0].name}.")
    the_task = tasks[0]
    queries = the_task.queries()
    if query not in queries:
        raise HarnessError(f"Query {query!r} is not in {the_task.name} ({len(queries)} queries).")
    spec = first_stage or the_task.default_first_stage
    fs_options = FirstStageOptions(top_k=top_k, query_field=query_field)
    ranked = build_first_stage(spec, fs_options).retrieve(the_task, fs_options).run.get(query)
    if not ranked:
        raise HarnessError(f"First stage {spec!r} returned no candidates for query {query!r}.")
    ranked = ranked[:top_k]
    texts = the_task.docs(d for d, _ in ranked)
    request = RerankRequest(query, queries[query],
                            tuple(Candidate(d, texts[d], s) for d, s in ranked if d in texts))
    settings = {k: v for k, v in (("model", model), ("window_size", window_size), ("step", step),
                                  ("passage_length", passage_length), ("prompt_mode", prompt_mode)) if v is not None}
    settings.update(parse_key_values(reranker_arg, "--reranker-arg"))
    instance = build_reranker(reranker, settings)
    label, text = instance.preview_prompt(request, window, the_task.protocol)
    if window > 0 and instance.family in ("listwise", "setwise"):
        print(f"note: {label} shown over the first-stage order; in a run its passages depend on the answers for "
              f"the earlier {'windows' if instance.family == 'listwise' else 'comparisons'}.", file=sys.stderr)
    print(f"{the_task.name} query {query}, {label}", file=sys.stderr)
    sys.stdout.write(text)  # exactly the prompt bytes (no added newline), so it can be piped and diffed
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("prompt")(prompt)
