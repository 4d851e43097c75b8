"""First-stage runs published by the ReasonRank authors (8421BCD/ReasonRank, MIT licence, © 2025 8421BCD).

* ``reasonir-published`` (BRIGHT): ReasonIR-8B top-100 over GPT-4 reasoning-expanded queries, excluded ids removed.
* ``e5-mistral-published`` (R2MED): E5-Mistral-7B-Instruct top-100 over the original queries.

Files are taken from a pinned commit by URL, downloaded once into ``<harness cache>/first-stage/`` and checked
against the sha256 table below. A local mirror with the layout ``<key>/<file>.trec`` (e.g. a copy of the project's
shared first-stage directory) is used first when ``HARNESS_FIRST_STAGE_DIR`` is set; it is sha256-checked too.
The run is then fitted to the task exactly as ``run:`` does (see ``run_file.fit_to_task``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.download import fetch, quarantine
from harness.files import sha256_file
from harness.errors import HarnessError
from harness.first_stage.base import FirstStage, FirstStageOptions, FirstStageResult
from harness.first_stage.run_file import load_candidates, run_mode
from harness.paths import ENV_FIRST_STAGE_DIR, cache_dir

COMMIT = "06721fd6ef3766c0e00d59a87d2696a0b4b0c17a"
URL = "https://raw.githubusercontent.com/8421BCD/ReasonRank/{commit}/runs/{key}/{file}.txt"
ATTRIBUTION = "Runs from 8421BCD/ReasonRank (MIT licence, © 2025 8421BCD), commit " + COMMIT

REASONIR_FILE = "reasonir_gpt4cot_top100"
E5_MISTRAL_FILE = "e5-mistral-7b-instruct_top100"

# (key, file) -> sha256 of the published file (the repo's .txt is byte-identical to the shared .trec copy)
SHA256 = {
    ("aops", REASONIR_FILE): "643b4a6b2301f4e317ddd68fc6db786463a907b5017657680f75c3f3f7451a37",
    ("biology", REASONIR_FILE): "73b94a17655022369ca72efc663aa8e71440f6a9b5f0771d5838304cdbc17a18",
    ("earth_science", REASONIR_FILE): "dbdcbcf68f18a9030ebf650d7a7d32d91570c6922a001b65b1240639902cb944",
    ("economics", REASONIR_FILE): "0db447e73ddcefbf6093d5ea8fa974758382f46f231f78bc19cb9436cfbc1bd3",
    ("leetcode", REASONIR_FILE): "a76b4d4e2eeac600f33dfb5d1b890adbc53fd27733bf5c329f43e6258d70f590",
    ("pony", REASONIR_FILE): "20236a85d79387d0dd30e8a69a74ec543ad2663de20950761bb8268a9ad7fe53",
    ("psychology", REASONIR_FILE): "964a201f808956e6a4195899068c89dea2a9df0c5fb6ea6ee176691286f0e31d",
    ("robotics", REASONIR_FILE): "a20d0be2e8251720c96b9797982eb6e5566e6d9406f444f4aee836689cba951b",
    ("stackoverflow", REASONIR_FILE): "0c66b00beb608cf6f6d804ddd103fac3e35a67eed12ec4bc3550e4c67f667454",
    ("sustainable_living", REASONIR_FILE): "b2837cad8197e2388aee9a4e58caabe89b2dc1328e428808cb00c4d973f8ec3e",
    ("theoremqa_questions", REASONIR_FILE): "b5e20fed8b09f868ac04a40780d0e16a882123ec4d2c6601ca2af0b2f96d9c1e",
    ("theoremqa_theorems", REASONIR_FILE): "fb0fdc969138a3e5700e881c92693dea0e8c8600b8ba3ba35357348065dc3461",
    ("r2med_Bioinformatics", E5_MISTRAL_FILE): "5d2293fc1b0b1d8b355e2d84c33a5d4ee5902ca87b2d442f0b1d7e4aae93f5b1",
    ("r2med_Biology", E5_MISTRAL_FILE): "030a9b57ccd490cd323584d48a62b107a5ec819648d6bfe43b445276ff8cefb8",
    ("r2med_IIYi-Clinical", E5_MISTRAL_FILE): "9a3eb715588ed0d403bc5321254d58b28e0239bf4a3ff3f996b85620805b6bb5",
    ("r2med_MedQA-Diag", E5_MISTRAL_FILE): "78b85cdb1318adf8c5f676453f17d42df868f65670b00fde34f38dc6ae96c477",
    ("r2med_MedXpertQA-Exam", E5_MISTRAL_FILE): "1b1adb954a3403e6afa7c5f1aa646bb0973971692f9f65b703637212f987a76d",
    ("r2med_Medical-Sciences", E5_MISTRAL_FILE): "5ac2ed013b8f479207803efde372cabe5ccb509fd5f269aeada9cb11e371c5ca",
    ("r2med_PMC-Clinical", E5_MISTRAL_FILE): "eba75b32dedc0329ba00bca448044018122ba5a0acd33d7f259fbaf383b6702f",
    ("r2med_PMC-Treatment", E5_MISTRAL_FILE): "787cab99d594b1c7b163377218aa476d8812938bc285d72ca4a03636ad0c4911",
}


@dataclass(frozen=True)
class _Family:
    spec: str
    file: str
    benchmark: str
    description: str
    retrieval_query_field: str  # which query text the authors retrieved with (fixed in the file, not an option)


_REASONIR = _Family("reasonir-published", REASONIR_FILE, "bright",
                    "ReasonIR-8B top-100 over GPT-4 reasoning queries (BRIGHT)", "gpt4_reason")
_E5_MISTRAL = _Family("e5-mistral-published", E5_MISTRAL_FILE, "r2med",
                      "E5-Mistral-7B-Instruct top-100 over the original queries (R2MED)", "original")


def reasonir_published(argument: str | None, options: FirstStageOptions) -> "PublishedRun":
    return PublishedRun(_REASONIR, argument, run_mode(options))


def e5_mistral_published(argument: str | None, options: FirstStageOptions) -> "PublishedRun":
    return PublishedRun(_E5_MISTRAL, argument, run_mode(options))


def published_url(key: str, file: str) -> str:
    return URL.format(commit=COMMIT, key=key, file=file)


class PublishedRun(FirstStage):
    def __init__(self, family: _Family, argument: str | None, mode: str = "robust"):
        if argument:
            raise HarnessError(f"First stage {family.spec!r} takes no argument (got {family.spec}:{argument}); "
                               "use run:PATH_OR_URL for other run files.")
        self.family = family
        self.name = family.spec
        self.mode = mode

    def identity(self) -> dict[str, Any]:
        return {"spec": self.family.spec, "commit": COMMIT, "file": self.family.file, "mode": self.mode,
                "sha256": None}

    def _key(self, task) -> str:
        if task.benchmark != self.family.benchmark:
            raise HarnessError(
                f"First stage {self.family.spec!r} has runs for {self.family.benchmark} only, not for task "
                f"{task.name}. Use that task's default (--first-stage {task.default_first_stage}) or run:PATH_OR_URL."
            )
        key = task.published_run_key()
        if (key, self.family.file) not in SHA256:
            raise HarnessError(
                f"The ReasonRank authors published no {self.family.file} run for {task.name} (key {key!r}); "
                "use --first-stage run:PATH_OR_URL or bm25."
            )
        return key

    def pinned_sha256(self, task) -> str | None:
        return SHA256[(self._key(task), self.family.file)]

    def _local_file(self, key: str) -> Path:
        """The verified local copy: the HARNESS_FIRST_STAGE_DIR mirror, else the download cache (fetched once)."""
        file = self.family.file
        expected = SHA256[(key, file)]
        mirror = os.environ.get(ENV_FIRST_STAGE_DIR)
        if mirror:
            path = Path(mirror).expanduser() / key / f"{file}.trec"
            if path.is_file():
                actual = sha256_file(path)
                if actual != expected:
                    raise HarnessError(
                        f"{path} (from {ENV_FIRST_STAGE_DIR}) has sha256 {actual}, expected {expected} for the "
                        f"published {key}/{file} run. Replace it with the original file or unset {ENV_FIRST_STAGE_DIR}."
                    )
                return path
        url = published_url(key, file)
        path = cache_dir("first-stage") / key / f"{file}.txt"
        if path.is_file():
            actual = sha256_file(path)
            if actual != expected:
                bad = quarantine(path)
                raise HarnessError(
                    f"Cached run {path} has sha256 {actual}, expected {expected}; it was moved to {bad}. "
                    f"Run again to download {url} afresh."
                )
            return path
        return fetch(url, path, sha256=expected)

    @staticmethod
    def _origin(path: Path) -> str:
        """Where the verified copy came from, without machine paths (records must stay portable)."""
        return "download cache" if path.is_relative_to(cache_dir("first-stage")) else ENV_FIRST_STAGE_DIR

    def retrieve(self, task, options: FirstStageOptions) -> FirstStageResult:
        key = self._key(task)
        path = self._local_file(key)
        expected = SHA256[(key, self.family.file)]
        return load_candidates(
            path, task, options, source=published_url(key, self.family.file), mode=self.mode, sha256=expected,
            params={"commit": COMMIT, "key": key, "file": self.family.file, "copy": self._origin(path),
                    "license": "MIT", "attribution": ATTRIBUTION, "description": self.family.description,
                    "retrieval_query_field": self.family.retrieval_query_field},
        )
