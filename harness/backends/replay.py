"""``replay:PATH``: answer every call from a traces file written by ``--save-traces`` instead of a model.

Calls are matched by the exact prompt string, so a replayed run reproduces the original one exactly (same
prompts → same responses → same parses) with zero model calls — e.g. to re-score saved outputs with new metrics or
qrels without a GPU. Replayed generations carry the recorded token counts and seconds and are marked ``cached``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.llm import Backend, Generation, GenerationRequest
from harness.traces import decode_logprobs, load_traces


def create(model: str, options, argument: str | None) -> "ReplayBackend":
    if not argument:
        raise HarnessError("--backend replay needs a traces file: --backend replay:PATH.")
    return ReplayBackend(model, argument)


class ReplayBackend(Backend):
    name = "replay"

    def __init__(self, model: str, path: str):
        self.model_id = model
        self.revision = None
        self.path = Path(path).expanduser()
        self._records = load_traces(self.path)
        self.served = 0

    async def agenerate(self, request: GenerationRequest) -> Generation:
        record = self._records.get(request.prompt)
        if record is None:
            where = request.label or "a model call"
            raise HarnessError(
                f"The traces file {self.path} has no recorded response for {where} (prompt of "
                f"{len(request.prompt)} characters starting {request.prompt[:80]!r}). Replay needs the same task, "
                "first stage, model/tokenizer and reranker settings (window, step, passage length, prompt mode) as "
                "the run that saved the traces, and that run must have finished this call."
            )
        self.served += 1
        return Generation(
            text=record["response"],
            input_tokens=int(record.get("input_tokens") or 0),
            output_tokens=int(record.get("output_tokens") or 0),
            seconds=float(record.get("seconds") or 0.0),
            finish_reason=record.get("finish_reason") or "stop",
            logprobs=decode_logprobs(record.get("logprobs")),
            cached=True,
            extra={"replayed": True},
        )

    def describe(self) -> dict[str, Any]:
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest() if self.path.is_file() else None
        return {**super().describe(), "traces": str(self.path), "traces_sha256": digest,
                "recorded_calls": len(self._records)}
