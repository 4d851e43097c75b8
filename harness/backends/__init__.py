"""Inference backend registry ("vllm", "hf", "openai", "replay:PATH").

Each entry is a factory ``f(model: str, options: RerankerOptions, argument: str | None) -> harness.llm.Backend``.
``build_backend`` resolves "auto", then wraps the backend with the model-call cache and the traces writer.
"""

from __future__ import annotations

from harness.registry import Registry

BACKENDS: Registry = Registry("backend", cli_hint="use --backend vllm|hf|openai|replay:PATH")
BACKENDS.register("vllm", "harness.backends.vllm:create", "vLLM offline engine (GPU; extra 'vllm')")
BACKENDS.register("hf", "harness.backends.hf:create", "transformers generate (CPU or GPU; extra 'hf')")
BACKENDS.register("openai", "harness.backends.openai:create", "any OpenAI-compatible server via --base-url")
BACKENDS.register("replay", "harness.backends.replay:create", "answers from a saved traces file: replay:PATH")
