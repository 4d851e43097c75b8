"""What the leaderboard says about a model: parameters, base model, licence, link, open weights, trained on BRIGHT.

Cards are declared here for every model a built-in reranker or recipe defaults to (and the field's usual variants);
a submission supplies the same fields in its ``submission.json`` (``harness submit add --params-b …``). Unknown facts
stay ``None`` and are shown as unknown — a card never guesses. ``trained_on_bright`` is ``"yes"``, ``"no"`` or
``"unknown"``: "no" only where the training data is documented and predates or excludes BRIGHT.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from harness.errors import HarnessError

TRAINED_ON_BRIGHT = ("yes", "no", "unknown")


@dataclass(frozen=True)
class ModelCard:
    model: str
    parameters_b: float | None = None  # billions of parameters
    base_model: str | None = None
    license: str | None = None
    link: str | None = None
    open_weights: bool | None = None
    trained_on_bright: str = "unknown"

    def __post_init__(self):
        if self.trained_on_bright not in TRAINED_ON_BRIGHT:
            raise HarnessError(f"model card {self.model}: trained_on_bright must be one of "
                               f"{', '.join(TRAINED_ON_BRIGHT)} (got {self.trained_on_bright!r}).")
        if self.parameters_b is not None and not self.parameters_b > 0:
            raise HarnessError(f"model card {self.model}: parameters_b must be a positive number of billions.")

    @property
    def size(self) -> str:
        """``7.6B``, ``135M`` or ``n/a``."""
        if self.parameters_b is None:
            return "n/a"
        if self.parameters_b < 1:
            return f"{self.parameters_b * 1000:.0f}M"
        return f"{self.parameters_b:.3g}B"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, model: str, data: Mapping[str, Any], where: str) -> "ModelCard":
        known = {f.name for f in fields(cls)} - {"model"}
        unknown = set(data) - known
        if unknown:
            raise HarnessError(f"{where}: unknown model field(s) {', '.join(sorted(unknown))}; the fields are "
                               f"{', '.join(sorted(known))}.")
        values = dict(data)
        if values.get("parameters_b") is not None:
            try:
                values["parameters_b"] = float(values["parameters_b"])
            except (TypeError, ValueError):
                raise HarnessError(f"{where}: parameters_b must be a number of billions (got "
                                   f"{values['parameters_b']!r}).") from None
        values.setdefault("trained_on_bright", "unknown")
        return cls(model=model, **values)


def _hf(model: str) -> str:
    return f"https://huggingface.co/{model}"


_CARDS = [
    ModelCard("liuwenhan/reasonrank-7B", 7.62, "Qwen/Qwen2.5-7B-Instruct", None, _hf("liuwenhan/reasonrank-7B"), True),
    ModelCard("liuwenhan/reasonrank-32B", 32.8, "Qwen/Qwen2.5-32B-Instruct", None, _hf("liuwenhan/reasonrank-32B"),
              True),
    ModelCard("liuwenhan/reasonrank-8B", 8.19, "Qwen/Qwen3-8B", None, _hf("liuwenhan/reasonrank-8B"), True),
    ModelCard("lwhlwh/reasonrank-8B", 8.19, "Qwen/Qwen3-8B", None, _hf("lwhlwh/reasonrank-8B"), True),
    # RankZephyr (Dec 2023) and the MS MARCO cross-encoder were trained before BRIGHT existed (Jul 2024)
    ModelCard("castorini/rank_zephyr_7b_v1_full", 7.24, "HuggingFaceH4/zephyr-7b-beta", "MIT",
              _hf("castorini/rank_zephyr_7b_v1_full"), True, "no"),
    ModelCard("cross-encoder/ms-marco-MiniLM-L-6-v2", 0.0227, "nreimers/MiniLM-L6-H384-uncased", "Apache-2.0",
              _hf("cross-encoder/ms-marco-MiniLM-L-6-v2"), True, "no"),
    ModelCard("jhu-clsp/rank1-7b", 7.62, "Qwen/Qwen2.5-7B-Instruct", None, _hf("jhu-clsp/rank1-7b"), True),
    ModelCard("jhu-clsp/rank1-32b", 32.8, "Qwen/Qwen2.5-32B-Instruct", None, _hf("jhu-clsp/rank1-32b"), True),
    ModelCard("ielabgroup/Rank-R1-7B-v0.1", 7.62, "Qwen/Qwen2.5-7B-Instruct", None, _hf("ielabgroup/Rank-R1-7B-v0.1"),
              True),
    ModelCard("le723z/Rearank-7B", 7.62, "Qwen/Qwen2.5-7B-Instruct", None, _hf("le723z/Rearank-7B"), True),
    ModelCard("ljw13/retro-star-qwen3-8b-0928", 8.19, "Qwen/Qwen3-8B", None, _hf("ljw13/retro-star-qwen3-8b-0928"),
              True),
    ModelCard("Qwen/Qwen3-Reranker-0.6B", 0.596, "Qwen/Qwen3-0.6B-Base", "Apache-2.0", _hf("Qwen/Qwen3-Reranker-0.6B"),
              True),
    ModelCard("Qwen/Qwen2.5-7B-Instruct", 7.62, "Qwen/Qwen2.5-7B", "Apache-2.0", _hf("Qwen/Qwen2.5-7B-Instruct"), True),
    ModelCard("HuggingFaceTB/SmolLM2-135M-Instruct", 0.135, "HuggingFaceTB/SmolLM2-135M", "Apache-2.0",
              _hf("HuggingFaceTB/SmolLM2-135M-Instruct"), True),
]
CARDS: dict[str, ModelCard] = {c.model.lower(): c for c in _CARDS}
ALIASES = {"smollm2-135m": "huggingfacetb/smollm2-135m-instruct"}  # the embedded-model registry's name
_SIZE = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)\s*([bBmM])(?![A-Za-z])")


def card_for(model: str | None, submitted: Mapping[str, Any] | None = None) -> ModelCard | None:
    """The declared card of ``model`` (case-insensitive id), else one from a submission's ``model`` fields, else
    a card with only the size read from the model's name (``…-7B``), else None for model-free rerankers."""
    if not model:
        return None
    if submitted:
        return ModelCard.from_mapping(model, submitted, "submission.json model")
    key = str(model).rstrip("/").lower()
    key = ALIASES.get(key, key)
    if key in CARDS:
        return CARDS[key]
    name = key.split("/")[-1]
    m = _SIZE.search(name)
    if m:
        value = float(m.group(1)) / (1000 if m.group(2).lower() == "m" else 1)
        return ModelCard(str(model), parameters_b=value)
    return ModelCard(str(model))
