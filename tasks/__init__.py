"""Task registry. ``resolve_tasks("bright")`` → 12 tasks; ``"bright/biology"`` → one; a directory → a BEIR task.

Each entry names a family's ``FAMILY`` (``tasks.base.TaskFamily``: its declared ``BenchmarkInfo`` and resolver).
"""

from __future__ import annotations

from pathlib import Path

from harness.benchmark import BenchmarkInfo
from harness.errors import HarnessError
from harness.registry import Registry

TASK_FAMILIES: Registry = Registry("task", cli_hint="see `harness ls tasks`, or pass a BEIR-layout directory")
TASK_FAMILIES.register("bright", "tasks.bright:FAMILY", "BRIGHT, 12 reasoning-intensive subsets (ir_datasets)")
TASK_FAMILIES.register("r2med", "tasks.r2med:FAMILY", "R2MED, 8 medical reasoning subsets (Hugging Face)")
TASK_FAMILIES.register("tiny", "tasks.tiny:FAMILY", "5-query fixture shipped with the package (smoke tests)")
TASK_FAMILIES.register("pydocs", "tasks.pydocs:FAMILY",
                       "real-text task from Python standard-library docstrings: train, test, demo (CPU demo)")
TASK_FAMILIES.register("beir", "tasks.beir:FAMILY", "named BEIR sets (declarations; run a local copy with --as)")


def benchmark_info(name: str) -> BenchmarkInfo | None:
    """The declaration of a registered benchmark, or None for an unregistered name."""
    if name not in TASK_FAMILIES:
        return None
    return TASK_FAMILIES.get(name).info


def declared_subset(name: str):
    """``bright/biology`` → (BenchmarkInfo, SubsetInfo) of a declared subset; HarnessError otherwise."""
    family, sep, subset = name.partition("/")
    if not sep or not subset:
        raise HarnessError(f"--as {name!r}: name one declared subset, e.g. --as bright/biology.")
    found = TASK_FAMILIES.get(family)
    return found.info, found.subset(subset)


def resolve_tasks(name: str, as_subset: str | None = None):
    """Turn a task name or a BEIR directory path into a list of Task objects. ``as_subset`` (``--as``) runs a local
    directory under a declared subset's protocol."""
    from tasks.beir import BeirDirTask

    path = Path(name).expanduser()
    if as_subset is not None:
        if not path.is_dir():
            raise HarnessError(f"--as {as_subset} applies to a local BEIR-layout directory; {name!r} is not one.")
        info, subset_info = declared_subset(as_subset)
        return [BeirDirTask(path, benchmark=info.name, subset=subset_info.name, benchmark_info=info,
                            subset_info=subset_info, protocol_of=f"{info.name}/{subset_info.name}")]
    if path.is_dir():
        return [BeirDirTask(path)]
    if path.exists():
        raise HarnessError(f"Task {name!r} is a file, not a task: pass a task name (see `harness ls tasks`) or a "
                           "BEIR-layout directory (corpus.jsonl, queries.jsonl, qrels/test.tsv).")
    family, _, subset = name.partition("/")
    if family not in TASK_FAMILIES and ("/" in name or "\\" in name or name.startswith(".")):
        raise HarnessError(f"Task directory {name!r} does not exist (and it is not a task name; see `harness ls tasks`).")
    if not family:
        raise HarnessError(f"Task name {name!r} is empty; see `harness ls tasks`.")
    return TASK_FAMILIES.get(family).resolve(subset or None)


def list_subsets(family: str) -> list[str]:
    info = benchmark_info(family)
    return info.subset_names if info else []
