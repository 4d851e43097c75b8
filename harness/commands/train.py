"""``harness train …``: synthesize, filter, convert, sft, grpo (thin wrappers over ``training/``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from harness.errors import HarnessError

train_app = typer.Typer(
    name="train",
    help="Build ReasonRank-style training data and train rerankers (SFT, then GRPO with the multi-view reward).",
    no_args_is_help=True,
)


@train_app.command()
def synthesize(
    task: str = typer.Option(..., "--task", "-t", help="Task name (bright/biology, tiny, …) or a BEIR-layout directory."),
    teacher: str = typer.Option(..., "--teacher", help="Teacher model name as the server serves it (e.g. deepseek-reasoner), or 'judgments': ranking and relevant ids from the task's qrels with a templated rationale (no model; a format and ranking teacher, not a reasoning teacher)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server, e.g. https://api.deepseek.com/v1 or http://localhost:8000/v1 (not with --teacher judgments)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (13k layout: training_data_all.jsonl, id_query/, id_doc/)."),
    first_stage: Optional[str] = typer.Option(None, "--first-stage", "-f", help="First-stage spec (bm25, run:PATH, …); default: the task's."),
    top_k: int = typer.Option(20, "--top-k", help="Candidates per query."),
    window_size: int = typer.Option(20, "--window-size", help="Passages per teacher call (at most 20)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N queries of each subset."),
    api: str = typer.Option("chat", "--api", help="chat (/chat/completions, messages) or completions (templated prompt string)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Tokenizer for 512-token passage truncation (and the chat template with --api completions)."),
    passage_length: int = typer.Option(512, "--passage-length", help="Passage truncation: tokens with --tokenizer, else words."),
    max_tokens: int = typer.Option(16384, "--max-tokens", help="Teacher completion budget per call."),
    temperature: float = typer.Option(0.6, "--temperature"),
    top_p: float = typer.Option(0.95, "--top-p"),
    concurrency: int = typer.Option(16, "--concurrency", help="Teacher requests in flight."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Bypass the model-call cache (no resume)."),
    query_field: str = typer.Option("original", "--query-field", help="Query field for the first stage."),
    shuffle_windows: Optional[int] = typer.Option(None, "--shuffle-windows", help="Permute each window's passages with this seed (per query and window), so the relevant passage is not mostly in first position; the labels follow the permuted order."),
) -> None:
    """Label candidate windows with a teacher: reasoning, final ranking, relevant ids (cached, resumable)."""
    import sys

    from training.synthesize import SynthesisSpec, synthesize as run

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            print(f"labelled {done}/{total} windows", file=sys.stderr, flush=True)

    report = run(SynthesisSpec(task=task, teacher=teacher, base_url=base_url, out_dir=str(out), first_stage=first_stage,
                               top_k=top_k, window_size=window_size, limit=limit, api=api, tokenizer=tokenizer,
                               passage_length=passage_length, max_tokens=max_tokens, temperature=temperature,
                               top_p=top_p, concurrency=concurrency, cache=not no_cache, query_field=query_field,
                               shuffle_seed=shuffle_windows),
                 progress=progress)
    typer.echo(f"{report.examples} examples → {out} | calls {report.calls} ({report.cached_calls} cached) | "
               f"tokens in {report.input_tokens:,} out {report.output_tokens:,} | teacher {report.teacher_seconds:.1f}s")


@train_app.command(name="filter")
def filter_command(
    source: str = typer.Argument(..., help="13k-layout directory (or liuwenhan/reasonrank_data_13k)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (same layout, kept examples only)."),
    threshold: float = typer.Option(0.4, "--threshold", help="Keep examples whose self-consistency NDCG@10 ≥ this."),
) -> None:
    """Self-consistency filter: NDCG@10 of the teacher ranking against its own relevant ids ≥ threshold."""
    from training.filter import filter_dir

    report = filter_dir(source, out, threshold)
    typer.echo(report.table())


@train_app.command()
def convert(
    source: str = typer.Argument(..., help="13k-layout dir, published SFT/RL set (sft, rl, 13k or a hub id) or a JSONL."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL."),
    to: str = typer.Option(..., "--to", help="sft (messages rows) or grpo (prompt + reward columns)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="The model to train (its tokenizer truncates passages; needed for 13k dirs)."),
    passage_length: int = typer.Option(512, "--passage-length", help="Passage truncation in tokens."),
    split: str = typer.Option("train", "--split", help="Split of the published RL set (train or val)."),
) -> None:
    """Convert training data to trl rows (system + user exactly as the reasonrank reranker builds them)."""
    from training.data import load_grpo_dataset, load_sft_dataset, write_jsonl

    tok = None
    if tokenizer:
        from harness.models import load_tokenizer

        tok = load_tokenizer(tokenizer)
    if to == "sft":
        rows = load_sft_dataset(source, tokenizer=tok, passage_length=passage_length)
    elif to == "grpo":
        rows = load_grpo_dataset(source, split=split, tokenizer=tok, passage_length=passage_length)
    else:
        raise HarnessError(f"--to {to!r}: use sft or grpo.")
    write_jsonl(out, rows)
    typer.echo(f"{len(rows)} {to} rows → {out}")


def _overrides(model: Optional[str], data: Optional[str], output_dir: Optional[Path], limit: Optional[int]) -> dict:
    return {"model": model, "data": data, "output_dir": str(output_dir) if output_dir else None, "limit": limit}


@train_app.command()
def sft(
    config: Path = typer.Option(..., "--config", "-c", help="Training YAML (e.g. training/configs/sft_7b_full.yaml)."),
    model: Optional[str] = typer.Option(None, "--model", help="Override the config's base model."),
    data: Optional[str] = typer.Option(None, "--data", help="Override the config's data source."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Override the config's output directory."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N rows."),
) -> None:
    """Supervised fine-tuning (trl SFTTrainer); saves a checkpoint `harness run --model DIR` can evaluate."""
    from training.sft import load_config, train_sft

    out = train_sft(load_config(config, _overrides(model, data, output_dir, limit)))
    typer.echo(json.dumps({"checkpoint": str(out)}))


@train_app.command()
def grpo(
    config: Path = typer.Option(..., "--config", "-c", help="Training YAML (e.g. training/configs/grpo_7b.yaml)."),
    model: Optional[str] = typer.Option(None, "--model", help="Override the config's policy (the SFT checkpoint)."),
    data: Optional[str] = typer.Option(None, "--data", help="Override the config's data source."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Override the config's output directory."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N prompts."),
) -> None:
    """GRPO with the multi-view ranking reward (trl GRPOTrainer)."""
    from training.grpo import train_grpo
    from training.sft import load_config

    out = train_grpo(load_config(config, _overrides(model, data, output_dir, limit)))
    typer.echo(json.dumps({"checkpoint": str(out)}))


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
