"""Task registry. ``resolve_tasks("bright")`` → 12 tasks; ``"bright/biology"`` → one; a directory → a BEIR task."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.registry import Registry

TASK_FAMILIES: Registry = Registry("task", cli_hint="see `harness ls tasks`, or pass a BEIR-layout directory")
TASK_FAMILIES.register("bright", "tasks.bright:resolve", "BRIGHT, 12 reasoning-intensive subsets (ir_datasets)")
TASK_FAMILIES.register("r2med", "tasks.r2med:resolve", "R2MED, 8 medical reasoning subsets (Hugging Face)")
TASK_FAMILIES.register("tiny", "tasks.tiny:resolve", "5-query fixture shipped with the package (smoke tests)")


def resolve_tasks(name: str):
    """Turn a task name or a BEIR directory path into a list of Task objects."""
    from tasks.beir import BeirDirTask

    path = Path(name).expanduser()
    if path.is_dir():
        return [BeirDirTask(path)]
    family, _, subset = name.partition("/")
    if family not in TASK_FAMILIES and ("/" in name or "\\" in name or name.startswith(".")) and not path.exists():
        raise HarnessError(f"Task directory {name!r} does not exist (and it is not a task name; see `harness ls tasks`).")
    resolver = TASK_FAMILIES.get(family)
    return resolver(subset or None)


def list_subsets(family: str) -> list[str]:
    from importlib import import_module

    module_name = TASK_FAMILIES._targets[TASK_FAMILIES.canonical(family)].split(":")[0]
    return list(getattr(import_module(module_name), "SUBSETS", []))
