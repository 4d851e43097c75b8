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
    "harness.commands.sweep",  # sweep (a matrix of runs, locally or on Ray)
    "harness.commands.models",  # models prepare | list
    "harness.commands.train",  # train synthesize | filter | convert | sft | grpo
]

app = typer.Typer(
    name="harness",
    help="Benchmark and leaderboard harness for reasoning-intensive reranking (BRIGHT, R2MED, BEIR dirs).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: …]" and file names with brackets stay visible
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def _click():
    """The click that typer uses (recent typer versions vendor their own copy as ``typer._click``)."""
    try:
        from typer import _click as vendored

        return vendored
    except ImportError:  # older typer: the click package itself
        import click

        return click


def print_error(message: str) -> None:
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, soft_wrap=True).print(Text("error: ", style="bold red") + Text(message), highlight=False)


def main(argv: list[str] | None = None) -> None:
    click = _click()
    try:
        code = app(args=argv, standalone_mode=False, prog_name="harness")  # returns a typer.Exit code
    except SystemExit:
        raise
    except HarnessError as exc:
        print_error(str(exc))
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors: bad flag, bad value for a typed flag
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted: finished subsets are kept (nothing is half-written); run the same command again to "
              "resume — finished model calls come from the cache.", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
