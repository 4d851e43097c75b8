"""``harness site build``, ``harness verify``, ``harness submit validate``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def site_build(
    results: Path = typer.Option(Path("results"), "--results", help="Directory of run records."),
    out: Path = typer.Option(Path("_site"), "--out", help="Output directory for the static site."),
    task_data: bool = typer.Option(False, "--task-data", help="Show query texts and gold marks in the query "
                                   "explorer, read from locally available task data (queries and qrels)."),
    resamples: int = typer.Option(10_000, "--resamples", help="Resamples of the significance tests and "
                                  "bootstrap intervals (100 to 1,000,000)."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first record that does not follow the "
                                "schema (default: skip it with a warning naming it)."),
) -> None:
    """Generate the static leaderboard from run records (deployable as-is, e.g. to GitHub Pages).

    Example: harness site build --results results --out _site
    """
    from harness.options import Option
    from harness.site import build, task_data_loader

    Option("resamples", int, minimum=100, maximum=1_000_000).convert(resamples, "harness site build")
    index = build(results, out, task_data=task_data_loader() if task_data else None, n_resamples=resamples,
                  strict=strict, warn=lambda message: typer.echo(f"warning: {message}", err=True))
    typer.echo(f"site written to {index.parent} (open {index})")


def verify(
    claims: Optional[List[Path]] = typer.Option(None, "--claims", help="Claims YAML file or directory (repeatable) "
                                                "[default: <results>/expected]."),
    results: Path = typer.Option(Path("results"), "--results", help="Directory of run records."),
    claim: Optional[List[str]] = typer.Option(None, "--claim", help="Only this claim id (repeatable); prints its "
                                              "full block: every subset, coverage, tolerance, source, note and "
                                              "the command that reproduces it."),
    fail_on_missing: bool = typer.Option(False, "--fail-on-missing", help="Also exit non-zero when a claim is not "
                                         "fully reproduced (PARTIAL, MISSING or NOT COMPARABLE)."),
    hide_missing: bool = typer.Option(False, "--hide-missing", help="Do not list claims without a matching record."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first record that does not follow the "
                                "schema (default: skip it with a warning naming it)."),
) -> None:
    """Grade run records against published claims: OK / OKish / FAIL per value, PARTIAL n/N when a run covers only
    some subsets; exits 1 on FAIL (and, with --fail-on-missing, on anything not fully reproduced).

    Examples: harness verify --results results;
    harness verify --claim reasonrank-t10-leaderboard-reasonrank-32b-rader-w10s5
    """
    from harness import verify as _verify

    paths = list(claims) if claims else [_verify.default_claims_dir(results)]
    chosen = _verify.load_claims(paths)
    if claim:
        chosen = _verify.select_claims(chosen, claim)
    outcome = _verify.verify(chosen, results, strict=strict, allow_empty=bool(claim),
                             warn=lambda message: typer.echo(f"warning: {message}", err=True))
    typer.echo(_verify.render_report(outcome, show_missing=not hide_missing, detail=bool(claim)))
    raise typer.Exit(_verify.exit_code(outcome, fail_on_missing=fail_on_missing))


def submit_validate(
    path: Path = typer.Argument(..., help="Record directory: results/<group_id>/<subset> or results/<group_id>."),
    first_stage_dir: Optional[Path] = typer.Option(None, "--first-stage-dir", help="Directory holding the run "
                                                   "files of a run:FILE first stage (DIR/FILE or DIR/<subset>/FILE), "
                                                   "to re-create the candidates."),
    require_traces: bool = typer.Option(False, "--require-traces", help="Replay the saved traces through the "
                                        "harness's reranker and require the same ranking (no GPU needed)."),
    model: Optional[str] = typer.Option(None, "--model", help="With --require-traces: a local checkpoint (or hub id) "
                                        "whose tokenizer builds the prompts, for runs made on a local checkpoint."),
) -> None:
    """Check a submission: re-score the run against the task's qrels; check schema, hashes, coverage, excluded
    documents, complete provenance, pinned first-stage files, that every ranking is a permutation of the re-created
    first stage's candidates, and that a model reranker did model work with the harness's prompt; exits 1 when
    anything is wrong.

    Example: harness submit validate results/<group_id> --require-traces
    """
    from harness.submit import validate

    report = validate(path, first_stage_dir=first_stage_dir, require_traces=require_traces, model=model)
    typer.echo(report.render())
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer) -> None:
    site_app = typer.Typer(help="Static leaderboard site.", no_args_is_help=True)
    site_app.command("build")(site_build)
    app.add_typer(site_app, name="site")
    app.command("verify")(verify)
    submit_app = typer.Typer(help="Leaderboard submissions.", no_args_is_help=True)
    submit_app.command("validate")(submit_validate)
    app.add_typer(submit_app, name="submit")
