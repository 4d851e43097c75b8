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
    boards: Optional[str] = typer.Option(None, "--boards", help="Comma-separated benchmarks to show, or 'all' "
                                         "[default: every benchmark except the tiny smoke fixture]."),
    only_validated: bool = typer.Option(False, "--only-validated", help="Only rows added with `harness submit "
                                        "add` (validated submissions)."),
    reported: bool = typer.Option(True, "--reported/--no-reported", help="Show the claims files' published "
                                  "numbers as 'paper, not reproduced' rows."),
    releases_dir: Optional[Path] = typer.Option(None, "--releases-dir", help="Committed directory of releases "
                                                "(board downloads per release), published under releases/."),
    release: Optional[str] = typer.Option(None, "--release", help="Also store this build's downloads as release "
                                          "NAME (e.g. 2026-12-03) in --releases-dir; 'latest' points to the newest."),
) -> None:
    """Generate the static leaderboard from run records (deployable as-is, e.g. to GitHub Pages).

    The output directory is rendered aside and swapped in whole: nothing of an earlier build survives.

    Examples: harness site build --results results --out _site;
    harness site build --results results/board --only-validated --releases-dir results/releases --release 2026-12-03
    """
    from harness.options import Option
    from harness.site import build, task_data_loader

    Option("resamples", int, minimum=100, maximum=1_000_000).convert(resamples, "harness site build")
    wanted = [b.strip() for b in boards.split(",") if b.strip()] if boards else None
    index = build(results, out, task_data=task_data_loader() if task_data else None, n_resamples=resamples,
                  strict=strict, warn=lambda message: typer.echo(f"warning: {message}", err=True), boards=wanted,
                  only_validated=only_validated, reported=reported, releases_dir=releases_dir, release=release)
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


def submit_add(
    path: Path = typer.Argument(..., help="Record directory written by `harness run`: results/<group_id>."),
    team: str = typer.Option(..., "--team", help="Team or author name shown on the board."),
    contact: str = typer.Option(..., "--contact", help="E-mail or handle the maintainers can reach."),
    license: str = typer.Option(..., "--license", help="Licence of the submitted run files, e.g. CC-BY-4.0."),
    link: Optional[str] = typer.Option(None, "--link", help="Project or model page."),
    paper: Optional[str] = typer.Option(None, "--paper", help="Paper URL (arXiv, ACL Anthology, …)."),
    code: Optional[str] = typer.Option(None, "--code", help="Code URL."),
    params_b: Optional[float] = typer.Option(None, "--params-b", help="Model parameters in billions."),
    base_model: Optional[str] = typer.Option(None, "--base-model", help="Model it was fine-tuned from."),
    model_license: Optional[str] = typer.Option(None, "--model-license", help="Licence of the model weights."),
    model_link: Optional[str] = typer.Option(None, "--model-link", help="Where the weights are."),
    open_weights: Optional[bool] = typer.Option(None, "--open-weights/--closed-weights",
                                                help="Whether the weights are downloadable."),
    trained_on_bright: str = typer.Option("unknown", "--trained-on-bright", help="yes, no or unknown: was BRIGHT "
                                          "(or data derived from it) in the training data?"),
    results_tree: Path = typer.Option(Path("results/board"), "--results-tree", help="The committed results tree "
                                      "the public board is built from."),
    first_stage_dir: Optional[Path] = typer.Option(None, "--first-stage-dir", help="As for `submit validate`."),
    require_traces: bool = typer.Option(False, "--require-traces", help="As for `submit validate`."),
    model: Optional[str] = typer.Option(None, "--model", help="As for `submit validate --model`."),
) -> None:
    """Validate a run and add it to the committed results tree (records copied, run and traces files
    gzip-compressed, submission.json with team, contact, links, licence and model card); then open a pull request.

    Example: harness submit add results/<group_id> --team "IR Lab" --contact ir@example.org --license CC-BY-4.0
    --params-b 7.6 --base-model Qwen/Qwen2.5-7B-Instruct --open-weights --trained-on-bright no --require-traces
    """
    from harness.submit import add

    fields = {"parameters_b": params_b, "base_model": base_model, "license": model_license, "link": model_link,
              "open_weights": open_weights, "trained_on_bright": trained_on_bright}
    report, target = add(path, results_tree, team=team, contact=contact, license=license, link=link, paper=paper,
                         code=code, model={k: v for k, v in fields.items() if v is not None},
                         first_stage_dir=first_stage_dir, require_traces=require_traces, model_path=model)
    typer.echo(report.render())
    if target is None:
        typer.echo("not added: fix the problems above and run `harness submit add` again.", err=True)
        raise typer.Exit(1)
    typer.echo(f"added to {target}; commit it and open a pull request (the results workflow re-validates it).")


def register(app: typer.Typer) -> None:
    site_app = typer.Typer(help="Static leaderboard site.", no_args_is_help=True)
    site_app.command("build")(site_build)
    app.add_typer(site_app, name="site")
    app.command("verify")(verify)
    submit_app = typer.Typer(help="Leaderboard submissions.", no_args_is_help=True)
    submit_app.command("validate")(submit_validate)
    submit_app.command("add")(submit_add)
    app.add_typer(submit_app, name="submit")
