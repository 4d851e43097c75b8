"""Loading a reranker's own tokenizer (used for passage truncation, chat templates and token counts)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from harness.errors import HarnessError, require


def model_not_available(model_or_path: str, what: str, exc: Exception) -> HarnessError:
    """The user-facing error for a model/tokenizer that cannot be loaded offline (shared with the hf backend)."""
    looks_like_path = model_or_path.startswith((".", "/", "~")) or Path(model_or_path).expanduser().exists()
    if looks_like_path and not Path(model_or_path).expanduser().is_dir():
        return HarnessError(f"Cannot load the {what} of {model_or_path!r}: that directory does not exist. "
                            "Pass --model with a Hugging Face id or an existing checkpoint directory.")
    return HarnessError(
        f"Cannot load the {what} of {model_or_path!r}: it is not in the Hugging Face cache and could not be "
        "downloaded (offline, HF_HUB_OFFLINE=1, gated or misspelled). Download it first "
        f"(`hf download {model_or_path}`) or pass --model with a local checkpoint directory. Details: {exc}"
    )


@lru_cache(maxsize=8)
def load_tokenizer(model_or_path: str, revision: str | None = None):
    """``transformers.AutoTokenizer`` for an HF id or a local directory; cached per (model, revision)."""
    transformers = require("transformers", "hf", "Building reranker prompts with the model's tokenizer")
    try:
        return transformers.AutoTokenizer.from_pretrained(model_or_path, revision=revision)
    except (OSError, ValueError) as exc:  # ValueError: huggingface_hub rejects a malformed repo id
        raise model_not_available(model_or_path, "tokenizer", exc) from exc
