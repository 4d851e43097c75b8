"""``harness retrieve``: write a first-stage run on its own (the same code ``harness run`` uses)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def retrieve(
    task: str = typer.Option(..., "--task", "-t", help="Task name (tiny, bright/biology, ...) or a BEIR-layout directory."),
    first_stage: str = typer.Option("bm25", "--first-stage", "-f", help="bm25 (BRIGHT's official), bm25-lucene, dense:MODEL, reasonir, run:PATH."),
    top_k: int = typer.Option(100, "--top-k", help="Documents per query (excluded documents are removed before the cut)."),
    output: Path = typer.Option(..., "--output", "-o", help="TREC run to write. For a multi-subset task (e.g. bright) one file per subset: RUN.<subset>.trec."),
    query_field: str = typer.Option("original", "--query-field", help="original, or a reasoning-expanded field such as gpt4_reason."),
    bm25_backend: Optional[str] = typer.Option(None, "--bm25-backend", help="python (default) or pyserini (Lucene itself; extra 'pyserini', Java ≥ 21)."),
) -> None:
    """Retrieve top-k candidates for every query of a task and write them as a TREC run.

    Example: harness retrieve --task bright/biology --first-stage bm25 --query-field gpt4_reason --output bm25.trec
    """
    from harness.first_stage import FirstStageOptions, build_first_stage
    from harness.trec import write_run
    from tasks import resolve_tasks

    from harness.run_options import RUN_OPTIONS

    RUN_OPTIONS.options["top_k"].convert(top_k, "harness retrieve")
    tasks = resolve_tasks(task)
    extra = (("bm25_backend", bm25_backend),) if bm25_backend else ()
    options = FirstStageOptions(top_k=top_k, query_field=query_field, extra=extra)
    stage = build_first_stage(first_stage, options)
    for t in tasks:
        result = stage.retrieve(t, options)
        path = output if len(tasks) == 1 else output.with_name(f"{output.stem}.{t.subset}{output.suffix or '.trec'}")
        write_run(path, result.run, tag=first_stage.replace(":", "-").replace("/", "_"))
        notes = ", ".join(f"{k} {v}" for k, v in result.report.items())
        typer.echo(f"{t.name}: {len(result.run)} queries → {path}" + (f" ({notes})" if notes else ""), err=True)


def register(app: typer.Typer) -> None:
    app.command("retrieve")(retrieve)
