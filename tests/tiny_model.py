"""Tiny random models with a byte-level BPE tokenizer, built offline in seconds (environment.md §5).

``build_tiny_model(dir)``: a Qwen2 causal LM (ChatML template). ``build_tiny_model(dir, "qwen3")``: a Qwen3 causal LM
whose template knows ``enable_thinking`` like Qwen3's (an empty think block when it is false) and whose vocabulary
holds "yes" / "no" as single tokens (Qwen3-Reranker). ``build_tiny_model(dir, "cross-encoder")``: a BERT
sequence-classification model with one label and ``[CLS] query [SEP] document [SEP]`` pairs (ms-marco-MiniLM's
shape).

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
QWEN3_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}"
    "{% endif %}"
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


def build_tiny_model(directory, architecture: str = "qwen2") -> Path:
    """Build, save and return the directory of the tiny model + tokenizer (idempotent)."""
    directory = Path(directory)
    if (directory / "config.json").is_file() and (directory / "tokenizer.json").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    if architecture == "cross-encoder":
        return _build_cross_encoder(directory)

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_training_text(), trainer=trainer)

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        additional_special_tokens=["<|im_start|>"])
    tokenizer.add_tokens(ATOMIC_TOKENS + (["yes", "no"] if architecture == "qwen3" else []))
    tokenizer.chat_template = QWEN3_TEMPLATE if architecture == "qwen3" else CHATML_TEMPLATE
    tokenizer.model_max_length = 2048

    torch.manual_seed(0)
    shape = dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    if architecture == "qwen3":
        model = Qwen3ForCausalLM(Qwen3Config(head_dim=16, **shape))
    elif architecture == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**shape))
    else:
        raise ValueError(f"unknown tiny architecture {architecture!r}")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _build_cross_encoder(directory: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_training_text(), trainer=trainer)
    cls, sep = bpe.token_to_id("[CLS]"), bpe.token_to_id("[SEP]")
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]",
                                        model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    tokenizer.model_max_length = 128
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1,
                        pad_token_id=tokenizer.pad_token_id)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


if __name__ == "__main__":
    import sys
    import tempfile

    print(build_tiny_model(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="tiny-model-")))
