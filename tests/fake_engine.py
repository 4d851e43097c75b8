"""A scripted engine at the backend boundary for CPU tests: it reports GPU hardware (name × tensor-parallel size from
the execution spec), sleeps like a real engine and answers ReasonRank windows with a valid permutation.

Registered by tests as backend ``fakegpu`` (``monkeypatch.setitem(BACKENDS._targets, "fakegpu",
"fake_engine:create")``). Option ``flavour`` changes the permutation (another engine's numerics).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from harness.llm import Backend, Generation, GenerationRequest
from harness.options import Option, OptionSet

OPTIONS = OptionSet("backend fakegpu", [
    Option("delay", float, 0.02, "seconds per call", minimum=0.0),
    Option("flavour", int, 0, "changes the answers", minimum=0),
])
_WINDOW = re.compile(r"I will provide you with (\d+) passages")
CALLS: list[str] = []


def create(model: str, revision: str | None, execution, engine: dict, head: str = "causal-lm") -> "FakeGPUBackend":
    return FakeGPUBackend(model, execution.tensor_parallel, float(engine.get("delay", 0.02)),
                          int(engine.get("flavour", 0)))


class FakeGPUBackend(Backend):
    name = "fakegpu"

    def __init__(self, model: str, gpus: int, delay: float, flavour: int):
        self.model_id = model
        self.revision = None
        self.gpus = gpus
        self.delay = delay
        self.flavour = flavour

    async def agenerate(self, request: GenerationRequest) -> Generation:
        CALLS.append(request.prompt)
        await asyncio.sleep(self.delay)
        match = _WINDOW.search(request.prompt)
        n = int(match.group(1)) if match else 1
        seed = int(hashlib.sha256(f"{self.flavour}:{request.prompt}".encode()).hexdigest(), 16)
        order = sorted(range(1, n + 1), key=lambda i: (seed >> (i % 200)) % 997 * 1000 + i)
        text = f"<think>thinking</think> <answer>{' > '.join(f'[{i}]' for i in order)}</answer>"
        return Generation(text=text, input_tokens=len(request.prompt) // 4, output_tokens=10 + n,
                          seconds=self.delay)

    def describe(self) -> dict[str, Any]:
        return {"delay": self.delay, "flavour": self.flavour}

    def hardware(self) -> dict[str, Any]:
        return {"backend": self.name, "accelerator": "NVIDIA H100 80GB HBM3", "count": self.gpus,
                "tensor_parallel": self.gpus, "data_parallel": 1}
