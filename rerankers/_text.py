"""Text processing shared by the LLM rerankers, exactly as the reference implementations do it.

- ``replace_number``: ``[3]`` → ``(3)`` so passage text cannot be mistaken for a passage identifier.
- ``fix_text``: ftfy's default ``fix_text`` (pinned to ftfy 6.3.1 so prompts are reproducible). Note that ftfy
  stops unescaping HTML entities from the first line containing ``<`` onwards (reasonrank.md §4).
- ``truncate_tokens``: the reranker's own tokenizer, no special tokens, first N tokens, back to a string with
  ``convert_tokens_to_string`` (a cut inside a multi-byte character becomes U+FFFD with byte-level BPE).
- ``truncate_words``: first N whitespace-separated words joined by single spaces (RankZephyr).
"""

from __future__ import annotations

import re

_BRACKETED_NUMBER = re.compile(r"\[(\d+)\]")


def replace_number(text: str) -> str:
    return _BRACKETED_NUMBER.sub(r"(\1)", text)


def fix_text(text: str) -> str:
    import ftfy

    return ftfy.fix_text(text)


def truncate_tokens(tokenizer, text: str, max_length: int) -> str:
    tokens = tokenizer.tokenize(text)
    return tokenizer.convert_tokens_to_string(tokens[:max_length])


def truncate_words(text: str, max_words: int) -> str:
    return " ".join(text.split()[:max_words])
