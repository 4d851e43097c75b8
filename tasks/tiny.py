"""``tiny``: a five-query BEIR-layout fixture shipped in the package, for smoke runs and tests.

It contains a docid with a space and an excluded document (negative qrel), like real BRIGHT data, and a
packaged first-stage run (``first_stage.trec``) that is the default first stage. Its board is hidden on the
leaderboard unless asked for (``harness site build --boards tiny``).
"""

from __future__ import annotations

from pathlib import Path

from harness.benchmark import BenchmarkInfo, SubsetInfo
from tasks.base import TaskFamily, unknown_subset
from tasks.beir import BeirDirTask

DATA_DIR = Path(__file__).parent / "data" / "tiny"
FIRST_STAGE_RUN = DATA_DIR / "first_stage.trec"

INFO = BenchmarkInfo(
    name="tiny",
    title="tiny (smoke fixture)",
    description="5-query fixture shipped with the package (smoke tests)",
    subsets=(SubsetInfo("tiny", title="tiny", queries=5),),
    default_first_stage=f"run:{FIRST_STAGE_RUN}",
    board=False,
    board_order=1000,
)


def resolve(subset: str | None) -> list[BeirDirTask]:
    if subset not in (None, "", "tiny"):
        raise unknown_subset(INFO, subset)
    return [BeirDirTask(DATA_DIR, benchmark="tiny", subset="tiny", benchmark_info=INFO, subset_info=INFO.subsets[0])]


FAMILY = TaskFamily(INFO, resolve)
