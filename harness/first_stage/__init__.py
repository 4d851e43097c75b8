"""First-stage registry. Specs look like ``bm25``, ``run:PATH_OR_URL``, ``dense:MODEL``."""

from __future__ import annotations

from harness.first_stage.base import FirstStage, FirstStageOptions, FirstStageResult
from harness.registry import Registry

FIRST_STAGES: Registry = Registry("first stage", cli_hint="see `harness ls first-stages`")
FIRST_STAGES.register("run", "harness.first_stage.run_file:from_spec",
                      "any TREC run file or URL: run:PATH_OR_URL")
FIRST_STAGES.register("reasonir-published", "harness.first_stage.published:reasonir_published",
                      "ReasonIR-8B top-100 over GPT-4 reasoning queries, as published by the ReasonRank authors (BRIGHT)")
FIRST_STAGES.register("e5-mistral-published", "harness.first_stage.published:e5_mistral_published",
                      "E5-Mistral-7B-Instruct top-100, as published by the ReasonRank authors (R2MED)")
FIRST_STAGES.register("bm25", "harness.first_stage.bm25:bright_bm25",
                      "BRIGHT's official BM25 (Lucene English analyzer + query-side BM25, k1=0.9 b=0.4)",
                      aliases=("bm25-bright",))
FIRST_STAGES.register("bm25-lucene", "harness.first_stage.bm25:lucene_bm25",
                      "standard Lucene/Anserini BM25 (k1=0.9 b=0.4, 1-byte length encoding)")
FIRST_STAGES.register("reasonir", "harness.first_stage.dense:reasonir",
                      "live dense retrieval with reasonir/ReasonIR-8B (GPU)")
FIRST_STAGES.register("dense", "harness.first_stage.dense:from_spec",
                      "any sentence-embedding model: dense:MODEL_ID_OR_PATH")


def build_first_stage(spec: str, options: FirstStageOptions) -> FirstStage:
    name, sep, argument = spec.partition(":")
    factory = FIRST_STAGES.get(name)
    return factory(argument if sep else None, options)


__all__ = ["FIRST_STAGES", "FirstStage", "FirstStageOptions", "FirstStageResult", "build_first_stage"]
