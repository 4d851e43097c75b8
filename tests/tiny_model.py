"""A tiny random Qwen2 causal LM with a byte-level BPE tokenizer, built offline in seconds (environment.md §5).

Random weights produce junk text; tests that need a well-formed answer script a fake backend instead. The
tokenizer is real enough for byte-exact prompt tests: ChatML template, byte-level BPE (a cut inside a multi-byte
character decodes to U+FFFD), and the tokens Rank1 scores with (" true", " false", "<think>", "</think>") are
single tokens.
"""

from __future__ import annotations

import inspect
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Plain (non-special) added tokens: matched before BPE, so each is exactly one token.
ATOMIC_TOKENS = [" true", " false", "<think>", "</think>"]


def _training_text() -> list[str]:
    """Local English-ish text: docstrings of a few standard-library modules (deterministic, offline)."""
    import collections
    import json
    import pathlib
    import re
    import string
    import textwrap

    lines: list[str] = []
    for module in (json, re, string, textwrap, collections, pathlib):
        for _, obj in inspect.getmembers(module):
            doc = inspect.getdoc(obj)
            if doc:
                lines.extend(doc.splitlines())
    lines.extend(["[1] > [2] > [3]", "<think> reasoning </think> <answer> [2] > [1] </answer>"] * 20)
    return lines


def build_tiny_model(directory) -> Path:
    """Build, save and return the directory of the tiny model + tokenizer (idempotent)."""
    directory = Path(directory)
    if (directory / "config.json").is_file() and (directory / "tokenizer.json").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_training_text(), trainer=trainer)

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        additional_special_tokens=["<|im_start|>"])
    tokenizer.add_tokens(ATOMIC_TOKENS)
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.model_max_length = 2048

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


if __name__ == "__main__":
    import sys
    import tempfile

    print(build_tiny_model(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="tiny-model-")))
