"""GRPO with trl's ``GRPOTrainer`` and the multi-view reward (training.md §4), configured from a YAML file.

Same top-level keys as ``training/sft.py`` (``model`` = the SFT checkpoint, ``data`` = the published RL set, a
prompt-rows JSONL or a 13k-layout dir, ``lora``, ``merge_lora``, ``trainer``) plus ``max_prompt_length``: prompts
whose chat-templated length exceeds it are dropped before training (verl's ``filter_overlong_prompts``).

The reward is ``training.rewards.multi_view_reward``; the dataset columns ``ground_truth``, ``initial_list`` and
``relevant_docids`` reach it as keyword arguments. vLLM generation (``use_vllm``, colocated) is switched on
when a GPU and the vllm package are present, unless the YAML sets ``use_vllm`` itself; on CPU it is always off.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, require
from training.sft import (
    TrainConfig, has_gpu, load_model_and_tokenizer, make_trainer_config, peft_config, save_final, trainer_args,
)

GRPO_DEFAULTS: dict[str, Any] = {
    "report_to": "none",
    "logging_steps": 1,
    "num_generations": 8,
    "beta": 0.001,
    "learning_rate": 1e-6,
    "max_completion_length": 3072,
    "dataloader_num_workers": 0,
}
_REWARD_COLUMNS = ("ground_truth", "initial_list", "relevant_docids")


def _drop_overlong(rows: list[dict[str, Any]], tokenizer, max_prompt_length: int | None) -> list[dict[str, Any]]:
    if not max_prompt_length:
        return rows
    kept = []
    for row in rows:
        ids = tokenizer.apply_chat_template(row["prompt"], tokenize=True, add_generation_prompt=True)
        if hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding
            ids = ids["input_ids"]
        if len(ids) <= max_prompt_length:
            kept.append(row)
    return kept


def train_grpo(config: TrainConfig) -> Path:
    """Run GRPO as configured and return the directory of the saved (merged) checkpoint."""
    trl = require("trl", "train", "GRPO training")
    datasets = require("datasets", "train", "GRPO training")
    from training.data import load_grpo_dataset
    from training.rewards import multi_view_reward

    model, tokenizer = load_model_and_tokenizer(config)
    rows = load_grpo_dataset(config.data, split=config.split, tokenizer=tokenizer,
                             passage_length=config.passage_length)
    if config.limit:
        rows = rows[: config.limit]
    before = len(rows)
    rows = _drop_overlong(rows, tokenizer, config.max_prompt_length)
    if not rows:
        raise HarnessError(f"No GRPO prompts left from {config.data} ({before} read; all longer than "
                           f"max_prompt_length={config.max_prompt_length}).")
    missing = [c for c in _REWARD_COLUMNS if c not in rows[0]]
    if missing:
        raise HarnessError(f"GRPO rows from {config.data} lack the reward columns {missing}.")
    columns = ("prompt",) + _REWARD_COLUMNS
    dataset = datasets.Dataset.from_list([{k: row[k] for k in columns} for row in rows])

    defaults = dict(GRPO_DEFAULTS)
    if "use_vllm" not in config.trainer:
        defaults["use_vllm"] = has_gpu() and importlib.util.find_spec("vllm") is not None
    args = trainer_args(config, defaults)
    if not has_gpu():
        args["use_vllm"] = False
    if args.get("use_vllm"):
        args.setdefault("vllm_mode", "colocate")
    grpo_args = make_trainer_config(trl.GRPOConfig, args, config)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=[multi_view_reward], args=grpo_args, train_dataset=dataset,
                              processing_class=tokenizer, peft_config=peft_config(config))
    trainer.train()
    return save_final(trainer, tokenizer, config)
