"""``replay:PATH``: answer every call from a traces file written by ``--save-traces`` instead of a model.

A call is matched by its exact prompt string; when the trace line also records the model and the sampling
parameters (the harness always writes them) they must equal this run's, or the call fails with an error naming the
differing field — a replay never passes off answers of another model or other decoding as this run's. Traces that
carry only ``prompt`` and ``response`` (the documented minimum, also what other tools export) still replay, matched on
the prompt alone; the record then says that model and parameters were not checked (``execution.replay_checked``).

Replayed generations carry the recorded token counts, seconds and engine-time shares and are marked ``cached``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.llm import Backend, Generation, GenerationRequest
from harness.options import OptionSet
from harness.traces import decode_logprobs, load_traces

OPTIONS = OptionSet("backend replay", [])


def create(model: str, revision: str | None, execution, engine: dict, argument: str | None) -> "ReplayBackend":
    if not argument:
        raise HarnessError("--backend replay needs a traces file: --backend replay:PATH.")
    return ReplayBackend(model, argument, revision=revision)


def _normalised(params: Any) -> Any:
    return json.loads(json.dumps(params, sort_keys=True, default=list))


class ReplayBackend(Backend):
    name = "replay"

    def __init__(self, model: str, path: str, revision: str | None = None):
        self.model_id = model
        self.revision = revision
        self.path = Path(path).expanduser()
        self._records, self.report = load_traces(self.path)
        self.served = 0
        self.unchecked = 0

    def capabilities(self) -> frozenset[str]:
        from harness.backends.servers import CAPABILITIES

        return frozenset(CAPABILITIES)  # it serves whatever was recorded, generations and scores alike

    def _model_key(self) -> str:
        from harness.models import cache_model_key, resolve_model_revision

        return cache_model_key(self.model_id, self.revision or resolve_model_revision(self.model_id))

    def _check(self, record: dict[str, Any], request: GenerationRequest, where: str) -> None:
        recorded_model, recorded_params = record.get("model"), record.get("params")
        if recorded_model is None or recorded_params is None:
            self.unchecked += 1
            return
        problems = []
        if recorded_model != self._model_key():
            problems.append(f"model: traces {recorded_model!r} ≠ this run {self._model_key()!r}")
        wanted = _normalised(request.params.as_dict())
        recorded = _normalised(recorded_params) if isinstance(recorded_params, dict) else {}
        for key in sorted(set(wanted) | set(recorded)):
            if wanted.get(key) != recorded.get(key):
                problems.append(f"{key}: traces {recorded.get(key)!r} ≠ this run {wanted.get(key)!r}")
        if problems:
            raise HarnessError(
                f"The traces file {self.path} answered {where} with another configuration ({'; '.join(problems)}). "
                "Replay with the model and settings of the run that saved the traces.")

    async def agenerate(self, request: GenerationRequest) -> Generation:
        where = request.label or "a model call"
        record = self._records.get(request.prompt)
        if record is None:
            raise HarnessError(
                f"The traces file {self.path} has no recorded response for {where} (prompt of "
                f"{len(request.prompt)} characters starting {request.prompt[:80]!r}). Replay needs the same task, "
                "first stage, model/tokenizer and reranker settings (window, step, passage length, prompt mode) as "
                "the run that saved the traces, and that run must have finished this call."
            )
        self._check(record, request, where)
        self.served += 1
        engine_seconds = record.get("engine_seconds")
        return Generation(
            text=record["response"],
            input_tokens=int(record.get("input_tokens") or 0),
            output_tokens=int(record.get("output_tokens") or 0),
            seconds=float(record.get("seconds") or 0.0),
            finish_reason=record.get("finish_reason") or "stop",
            logprobs=decode_logprobs(record.get("logprobs")),
            cached=True,
            extra={"replayed": True},
            engine_seconds=float(engine_seconds) if engine_seconds is not None else None,
            hardware=record.get("hardware"),
        )

    @property
    def checked(self) -> bool:
        return self.unchecked == 0

    def describe(self) -> dict[str, Any]:
        from harness.files import sha256_file

        digest = sha256_file(self.path) if self.path.is_file() else None
        return {"traces_file": self.path.name, "traces_sha256": digest, "recorded_calls": len(self._records),
                **({"quirks": self.report} if self.report else {})}

    def hardware(self) -> dict[str, Any]:
        return {"backend": self.name, "accelerator": "cpu", "count": 0, "tensor_parallel": 1, "data_parallel": 1}
