"""``harness sweep``: run a matrix of experiments (harness.sweep)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def sweep(
    sweep_file: Path = typer.Argument(..., metavar="SWEEP.yaml", help="Matrix file: base:, matrix:, cells:, "
                                      "exclude:, resources: (keys are harness run option names)."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Where every cell's records go."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the cells, their group ids, GPUs and status "
                                 "(done / partial / pending); run nothing."),
    retries: int = typer.Option(2, "--retries", help="Re-runs of a failed cell (on Ray: also after a lost node)."),
    max_parallel: int = typer.Option(1, "--max-parallel", help="Local cells at once, each a `harness run` process "
                                     "on its own GPUs (1: one after another in this process)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run the cells as Ray tasks: auto (the cluster this "
                                      "machine is part of, started with `ray start`), local (a one-machine Ray), "
                                      "or a cluster address such as ray://head:10001 (needs the ray extra)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live table; only the final summary."),
) -> None:
    """Run the leaderboard matrix: every cell is one experiment (its group id is the identity), cells already in
    --results-dir are skipped, failed cells are retried and reported, and a summary sweep-<name>.json (cells,
    status, time, GPU-hours) is written next to the records.

    Examples:

      harness sweep sweeps/bright.yaml --dry-run

      harness sweep sweeps/bright.yaml --max-parallel 4          # one machine, 4 cells at once

      harness sweep sweeps/bright.yaml --ray auto                 # a Ray cluster: each cell asks for its GPUs
    """
    from rich.console import Console

    from harness.sweep import cells_table, load_sweep, plan_cells, run_sweep

    console = Console(stderr=False, soft_wrap=True)
    cells = plan_cells(load_sweep(sweep_file), results_dir)
    name = sweep_file.stem
    if dry_run:
        console.print(cells_table(cells, f"harness sweep {name} (dry run, results in {results_dir})"))
        pending = sum(not c.done for c in cells)
        console.print(f"{len(cells)} cells: {len(cells) - pending} done, {pending} to run.", highlight=False)
        return
    if all(c.done for c in cells):
        console.print(f"All {len(cells)} cells of {sweep_file} are done (records in {results_dir}); nothing to run.",
                      highlight=False)
        return
    address = None if ray is None else ("auto" if ray == "auto" else ray)
    outcome = run_sweep(cells, results_dir, retries=retries, max_parallel=max_parallel, ray_address=address,
                        quiet=quiet, name=name)
    console.print(cells_table(outcome.cells, f"harness sweep {name}"))
    console.print(f"{sum(c.done for c in outcome.cells)}/{len(outcome.cells)} cells done; summary in "
                  f"{outcome.summary_path}", highlight=False)
    if outcome.failed:
        for cell in outcome.failed:
            typer.echo(f"failed: [{cell.name}] after {cell.attempts} attempt(s): {cell.error}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
