"""``tiny``: a five-query BEIR-layout fixture shipped in the package, for smoke runs and tests.

It contains a docid with a space and an excluded document (negative qrel), like real BRIGHT data, and a
packaged first-stage run (``first_stage.trec``) that is the default first stage.
"""

from __future__ import annotations

from pathlib import Path

from tasks.beir import BeirDirTask

DATA_DIR = Path(__file__).parent / "data" / "tiny"
FIRST_STAGE_RUN = DATA_DIR / "first_stage.trec"


def resolve(subset: str | None) -> list[BeirDirTask]:
    return [BeirDirTask(DATA_DIR, benchmark="tiny", subset=subset or "tiny",
                        default_first_stage=f"run:{FIRST_STAGE_RUN}")]
