"""Cold-start SFT with trl's ``SFTTrainer`` (training.md §3), configured from a YAML file.

Config keys (see ``training/configs/sft_7b_full.yaml``)::

    model: Qwen/Qwen2.5-7B-Instruct        # HF id or local directory
    data: liuwenhan/reasonrank_data_sft     # messages JSONL | published SFT set | 13k-layout dir | hub id
    output_dir: checkpoints/reasonrank-7b-sft
    passage_length: 512                     # token truncation when converting a 13k-layout dir
    limit: null                             # use only the first N rows (smoke runs)
    attn_implementation: flash_attention_2  # replaced by sdpa when there is no GPU
    lora: {r: 32, alpha: 32, dropout: 0.0, target_modules: all-linear}   # omit for full fine-tuning
    merge_lora: true                        # save merged weights (default) or only the adapter
    trainer: {learning_rate: 5.0e-6, ...}   # passed verbatim to trl.SFTConfig

Rows are trained as prompt/completion pairs (system + user → assistant) so the loss covers the assistant turn
only, like LLaMA-Factory's ``qwen`` template. The final model (LoRA merged unless ``merge_lora: false``) and
its tokenizer are saved to ``output_dir``; ``harness run --reranker reasonrank --model <output_dir>`` evaluates it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, require

log = logging.getLogger(__name__)

_TOP_LEVEL = {"model", "data", "output_dir", "passage_length", "limit", "attn_implementation", "lora", "merge_lora",
              "trainer", "split", "max_prompt_length", "seed"}


@dataclass
class TrainConfig:
    """A parsed training YAML. ``trainer`` holds the trl config arguments, passed through unchanged."""

    model: str
    data: str
    output_dir: str
    passage_length: int = 512
    limit: int | None = None
    attn_implementation: str | None = None
    lora: dict[str, Any] | None = None
    merge_lora: bool = True
    split: str = "train"
    max_prompt_length: int | None = None
    trainer: dict[str, Any] = field(default_factory=dict)
    path: str = ""


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a training YAML; ``overrides`` (e.g. from the command line) replace top-level keys."""
    import yaml

    path = Path(path)
    if not path.is_file():
        packaged = Path(__file__).parent / "configs" / path.name
        if packaged.is_file() and path.parent == Path("."):
            path = packaged
        else:
            raise HarnessError(f"Training config {path} does not exist (packaged configs: "
                               f"{', '.join(sorted(p.name for p in (Path(__file__).parent / 'configs').glob('*.yaml')))}).")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise HarnessError(f"Training config {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise HarnessError(f"Training config {path} must be a mapping.")
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(raw) - _TOP_LEVEL)
    if unknown:
        raise HarnessError(f"Training config {path}: unknown keys {unknown}; known: {sorted(_TOP_LEVEL)} "
                           "(trl arguments go under 'trainer:').")
    for key in ("model", "data", "output_dir"):
        if not raw.get(key):
            raise HarnessError(f"Training config {path} needs '{key}'.")
    raw["trainer"] = dict(raw.get("trainer") or {})
    if "seed" in raw:  # convenience: a top-level seed is the trainer's seed
        raw["trainer"].setdefault("seed", raw.pop("seed"))
    return TrainConfig(**{k: v for k, v in raw.items()}, path=str(path))


def has_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def trainer_args(config: TrainConfig, defaults: dict[str, Any]) -> dict[str, Any]:
    """trl config arguments: defaults < YAML ``trainer`` < CPU adjustments (no bf16/fp16 without a GPU)."""
    args = {**defaults, **config.trainer, "output_dir": config.output_dir}
    if "warmup_ratio" in args and not _accepts("warmup_ratio"):
        # transformers 5 folded warmup_ratio into warmup_steps (a float below 1 is a ratio of the total steps)
        ratio = args.pop("warmup_ratio")
        if args.get("warmup_steps"):
            raise HarnessError(f"Training config {config.path}: give warmup_ratio or warmup_steps, not both.")
        args["warmup_steps"] = float(ratio)
    if not has_gpu():
        args.update(use_cpu=True, bf16=False, fp16=False)
        args.pop("deepspeed", None)
        if args.get("optim", "").startswith(("adamw_torch_fused", "paged_", "adamw_bnb")):
            args["optim"] = "adamw_torch"
    return args


def _accepts(name: str) -> bool:
    import inspect

    transformers = require("transformers", "train", "Training")
    return name in inspect.signature(transformers.TrainingArguments.__init__).parameters


def make_trainer_config(cls, args: dict[str, Any], config: TrainConfig):
    """``cls(**args)`` (trl.SFTConfig / GRPOConfig), with an unknown or bad ``trainer:`` key as a clear error."""
    import inspect

    known = set(inspect.signature(cls.__init__).parameters)
    unknown = sorted(set(args) - known)
    if unknown:
        import difflib

        hints = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
        named = ", ".join(f"{k!r}" + (f" (did you mean {hints[k][0]!r}?)" if hints[k] else "") for k in unknown)
        raise HarnessError(f"Training config {config.path}: trainer: {named} not accepted by this trl/transformers "
                           f"({cls.__name__}); remove or rename them.")
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise HarnessError(f"Training config {config.path}: trainer settings rejected by {cls.__name__}: {exc}") from exc


def load_model_and_tokenizer(config: TrainConfig):
    transformers = require("transformers", "train", "Training")
    torch = require("torch", "train", "Training")
    gpu = has_gpu()
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if gpu else torch.float32}
    if config.attn_implementation:
        attn = config.attn_implementation
        if not gpu or (attn == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None):
            if gpu:
                log.warning("flash_attention_2 requested but the flash-attn package is not installed; using sdpa.")
            attn = "sdpa"
        kwargs["attn_implementation"] = attn
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(config.model)
        model = transformers.AutoModelForCausalLM.from_pretrained(config.model, **kwargs)
    except OSError as exc:
        raise HarnessError(f"Cannot load model {config.model!r}: not a local directory and not downloadable here "
                           f"(HF_HUB_OFFLINE or no network). Download it first or point 'model:' at a local "
                           f"directory. Details: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def peft_config(config: TrainConfig):
    if not config.lora:
        return None
    peft = require("peft", "train", "LoRA training")
    lora = dict(config.lora)
    return peft.LoraConfig(
        r=int(lora.get("r", 32)),
        lora_alpha=int(lora.get("alpha", lora.get("lora_alpha", 32))),
        lora_dropout=float(lora.get("dropout", lora.get("lora_dropout", 0.0))),
        target_modules=lora.get("target_modules", "all-linear"),
        task_type="CAUSAL_LM",
    )


def save_final(trainer, tokenizer, config: TrainConfig) -> Path:
    """Save the trained model to ``output_dir`` so the hf/vllm backends can load it directly.

    Full fine-tunes are saved with ``trainer.save_model`` (which gathers ZeRO-3/FSDP shards). LoRA runs save the
    adapter to ``output_dir/adapter`` and, with ``merge_lora: true`` (the default), the main process reloads the
    base model, merges the adapter (``merge_and_unload``) and writes plain weights to ``output_dir``; with
    ``merge_lora: false`` only the adapter is written (to ``output_dir``; merge it later the same way).
    """
    out = Path(config.output_dir)
    accelerator = trainer.accelerator
    merge = bool(config.lora and config.merge_lora)
    trainer.save_model(str(out / "adapter" if merge else out))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if merge:
            merge_adapter(config.model, out / "adapter", out)
        tokenizer.save_pretrained(out)
        (out / "harness_training.json").write_text(json.dumps({
            "config": config.path, "base_model": config.model, "data": config.data,
            "lora": config.lora, "lora_merged": merge,
            # per-step loss / reward as the trainer logged them (plots and the training README's figures)
            "log_history": _plain_log(trainer.state.log_history),
        }, indent=2) + "\n", encoding="utf-8")
    accelerator.wait_for_everyone()
    return out


def _plain_log(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    plain = []
    for entry in history:
        plain.append({k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in entry.items()})
    return plain


def merge_adapter(base_model: str, adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Merge a LoRA adapter into its base model and save plain weights (loadable without peft)."""
    transformers = require("transformers", "train", "Merging LoRA adapters")
    peft = require("peft", "train", "Merging LoRA adapters")
    base = transformers.AutoModelForCausalLM.from_pretrained(base_model, dtype="auto")
    merged = peft.PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out_dir), safe_serialization=True)
    return Path(out_dir)


def _prompt_completion(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """messages rows → prompt/completion rows: loss on the final assistant turn only."""
    out = []
    for row in rows:
        messages = row["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            raise HarnessError("Every SFT row must end with an assistant message (the training target).")
        out.append({"prompt": [{"role": m["role"], "content": m["content"]} for m in messages[:-1]],
                    "completion": [{"role": "assistant", "content": messages[-1]["content"]}]})
    return out


SFT_DEFAULTS: dict[str, Any] = {
    "report_to": "none",
    "logging_steps": 10,
    "save_strategy": "epoch",
    "save_only_model": True,
    "completion_only_loss": True,
    "dataloader_num_workers": 0,
}


def train_sft(config: TrainConfig) -> Path:
    """Run SFT as configured and return the directory of the saved (merged) checkpoint."""
    trl = require("trl", "train", "SFT training")
    datasets = require("datasets", "train", "SFT training")
    from training.data import load_sft_dataset

    model, tokenizer = load_model_and_tokenizer(config)
    rows = load_sft_dataset(config.data, tokenizer=tokenizer, passage_length=config.passage_length)
    if config.limit:
        rows = rows[: config.limit]
    if not rows:
        raise HarnessError(f"No SFT rows in {config.data}.")
    dataset = datasets.Dataset.from_list(_prompt_completion(rows))
    args = make_trainer_config(trl.SFTConfig, trainer_args(config, SFT_DEFAULTS), config)
    trainer = trl.SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=peft_config(config))
    trainer.train()
    return save_final(trainer, tokenizer, config)
