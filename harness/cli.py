"""The ``harness`` command line. Commands are thin wrappers over the library; each command module in
``COMMAND_MODULES`` exposes ``register(app: typer.Typer)``."""

from __future__ import annotations

import importlib
import sys

import typer

from harness.errors import HarnessError

COMMAND_MODULES = [
    "harness.commands.core",  # run, eval, ls, doctor
    "harness.commands.retrieve",  # retrieve (first-stage run on its own)
    "harness.commands.prompt",  # prompt (print the exact reranker prompt)
    "harness.commands.leaderboard",  # site build, verify, submit validate
    "harness.commands.train",  # train synthesize | filter | convert | sft | grpo
]

app = typer.Typer(
    name="harness",
    help="Benchmark and leaderboard harness for reasoning-intensive reranking (BRIGHT, R2MED, BEIR dirs).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=True)
    except HarnessError as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; finished subsets are kept, nothing half-written.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
