"""RankZephyr (castorini/rank_zephyr_7b_v1_full): listwise reranker as castorini/rank_llm runs it.

Faithful to shared/spec/rankzephyr.md: its own template (no blank line after the prefix, "relevancy" without a
final period, ", Answer concisely"), query not stripped, passages ftfy-fixed then cut to N words (300), the context
shrinking loop (fewer words until the prompt fits ``context_size - num_output_tokens``), greedy decoding with
``min_tokens = max_tokens = num_output_tokens(window)``, and parsing with look-alike digits mapped to ASCII.
Window 20 / stride 10 bottom-up and positional scores, exactly as ReasonRank.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Mapping, Sequence

from harness.llm import Generation, SamplingParams
from harness.options import Option
from rerankers._listwise import ListwiseLLMReranker, listwise_options
from rerankers._text import fix_text, replace_number, truncate_words
from rerankers.reasonrank import digits_to_order

log = logging.getLogger(__name__)

DEFAULT_MODEL = "castorini/rank_zephyr_7b_v1_full"
DEFAULT_CONTEXT_SIZE = 4096
DEFAULT_PASSAGE_WORDS = 300

SYSTEM_MESSAGE = (
    "You are RankLLM, an intelligent assistant that can rank passages based on their relevancy to the query"
)
_PREFIX = (
    "I will provide you with {num} passages, each indicated by a numerical identifier []. "
    "Rank the passages based on their relevance to the search query: {query}.\n"
)
_BODY = "[{rank}] {candidate}\n"
_SUFFIX = (
    "Search Query: {query}.\n"
    "Rank the {num} passages above based on their relevance to the search query. All the passages should be "
    "included and listed using identifiers, in descending order of relevance. The output format should be [] > [], "
    "e.g., [2] > [1], Answer concisely and directly and only respond with the ranking results, do not say any word "
    "or explain."
)
PROMPT_TEMPLATE_HASH = "sha256:" + hashlib.sha256(
    json.dumps([SYSTEM_MESSAGE, _PREFIX, _BODY, _SUFFIX]).encode("utf-8")).hexdigest()

# Look-alike digits → ASCII (rank_llm's clean_ranking_response).
_LOOKALIKE = {}
for _ascii, _chars in enumerate(zip("⁰¹²³⁴⁵⁶⁷⁸⁹", "₀₁₂₃₄₅₆₇₈₉", "０１２３４５６７８９",
                                     [chr(0x1F100 + i) for i in range(10)])):
    for _char in _chars:
        _LOOKALIKE[ord(_char)] = str(_ascii)
for _i in range(9):  # circled ①–⑨ and negative circled ❶–❾ → 1–9
    _LOOKALIKE[0x2460 + _i] = str(_i + 1)
    _LOOKALIKE[0x2776 + _i] = str(_i + 1)


def process_query(query: str) -> str:
    return replace_number(query)  # rank_llm does not strip the query


def process_passage(text: str, max_words: int = DEFAULT_PASSAGE_WORDS) -> str:
    """strip → ftfy → first ``max_words`` words joined by single spaces → replace_number."""
    return replace_number(truncate_words(fix_text(text.strip()), max_words))


def build_messages(query: str, passages: Sequence[str]) -> list[dict[str, str]]:
    """``passages`` already processed; the query is processed here."""
    query = process_query(query)
    num = len(passages)
    user = _PREFIX.format(num=num, query=query)
    user += "".join(_BODY.format(rank=rank, candidate=content) for rank, content in enumerate(passages, 1))
    user += _SUFFIX.format(num=num, query=query)
    return [{"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": user}]


def num_output_tokens(tokenizer, window_len: int) -> int:
    """Tokens of a full permutation string ``[1] > [2] > … > [w]`` (no special tokens)."""
    text = " > ".join(f"[{i}]" for i in range(1, window_len + 1))
    return len(tokenizer.encode(text, add_special_tokens=False))


def _render(tokenizer, query: str, fixed_texts: Sequence[str], max_words: int) -> str:
    """``fixed_texts`` = ``fix_text(text.strip())`` of each passage (independent of the word limit, so the
    shrinking loop computes it once; truncating afterwards gives exactly ``process_passage``)."""
    messages = build_messages(query, [replace_number(truncate_words(t, max_words)) for t in fixed_texts])
    try:
        templated = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                  enable_thinking=False)
    except TypeError:  # very old tokenizers do not forward template kwargs
        templated = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return fix_text(templated)


def build_prompt(tokenizer, query: str, passage_texts: Sequence[str], max_words: int = DEFAULT_PASSAGE_WORDS,
                 context_size: int = DEFAULT_CONTEXT_SIZE) -> tuple[str, int, int]:
    """The prompt after the context shrinking loop: (prompt, input tokens, words per passage used).

    As in rank_llm, the word budget keeps shrinking by ``max(1, excess // (window × 4))`` until the prompt fits, and
    it may go negative: ``words[:n]`` with n < 0 keeps all but the last |n| words of each passage. The loop ends
    when the prompt fits, or when every passage is already empty (nothing left to cut: the prompt is returned as
    is and the engine decides)."""
    window_len = len(passage_texts)
    reserve = num_output_tokens(tokenizer, window_len)
    fixed = [fix_text(text.strip()) for text in passage_texts]
    longest = max((len(t.split()) for t in fixed), default=0)
    while True:
        prompt = _render(tokenizer, query, fixed, max_words)
        n_tokens = len(tokenizer.encode(prompt))
        if n_tokens <= context_size - reserve:
            return prompt, n_tokens, max_words
        if max_words <= 0 and -max_words >= longest or max_words == 0:
            return prompt, n_tokens, max_words  # every passage is empty already
        max_words -= max(1, (n_tokens - context_size + reserve) // (window_len * 4))


def parse_permutation(response: str, window_len: int) -> tuple[list[int], bool, str | None]:
    """(order, parsed, fallback): text after the last ``</think>``, look-alike digits mapped, digits read,
    duplicates/out-of-range dropped, missing appended; any exception keeps the window order."""
    try:
        if "</think>" in response:
            response = response[response.rfind("</think>") + len("</think>"):]
        order, duplicates, out_of_range, missing = digits_to_order(response.translate(_LOOKALIKE), window_len)
    except Exception:  # rank_llm keeps the original order on any exception
        log.debug("RankZephyr output could not be parsed; window left unchanged")
        return list(range(window_len)), False, "exception_window_unchanged"
    if missing == window_len:
        return order, False, "no_ids_window_unchanged"
    if duplicates or out_of_range or missing:
        return order, True, "permutation_repaired"
    return order, True, None


OPTIONS = listwise_options("reranker rankzephyr", [
    Option("passage_length", int, DEFAULT_PASSAGE_WORDS, "passage truncation in words (then context shrinking)",
           minimum=1, source="rank_llm max_passage_words 300"),
    Option("context_size", int, DEFAULT_CONTEXT_SIZE, "prompt + answer budget in tokens", minimum=16,
           source="rank_llm ZephyrReranker context_size 4096"),
    Option("max_tokens", int, None, "answer length in tokens, forced with min_tokens (default: "
           "num_output_tokens(window), the length of a full permutation)", minimum=1,
           source="rank_llm num_output_tokens"),
])


class RankZephyrReranker(ListwiseLLMReranker):
    name = "rankzephyr"
    default_model = DEFAULT_MODEL
    options = OPTIONS
    required_capabilities = frozenset({"generate", "min_tokens"})

    @property
    def passage_words(self) -> int:
        return int(self.values["passage_length"])

    @property
    def context_size(self) -> int:
        return int(self.values["context_size"])

    def engine_defaults(self) -> dict[str, dict[str, Any]]:
        # castorini/rank_llm: trust_remote_code=True, max_model_len = context_size + the permutation's length
        return {"vllm": {"trust_remote_code": True,
                         "max_model_len": self.context_size + self._answer_tokens(self.window_size)}}

    def _answer_tokens(self, window_len: int) -> int:
        if self.values.get("max_tokens") is not None:
            return int(self.values["max_tokens"])
        return num_output_tokens(self.tokenizer, window_len)

    def resolve(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "window_size": self.window_size,
            "step": self.step,
            "passage_length": self.passage_words,
            "passage_truncation": "words, then context shrinking",
            "context_size": self.context_size,
            "temperature": 0.0,
            "max_tokens": (int(self.values["max_tokens"]) if self.values.get("max_tokens") is not None
                           else "num_output_tokens(window)"),
            "sampling": ("greedy, min_tokens = max_tokens" if self.values.get("max_tokens") is not None
                         else "greedy, min_tokens = max_tokens = num_output_tokens(window)"),
            "scores": "positional (first-stage score sequence kept, docids move)",
            **({"tokenizer": self.values["tokenizer"]} if self.values.get("tokenizer") else {}),
        }

    def prompt_template_hash(self) -> str:
        return PROMPT_TEMPLATE_HASH

    def window_prompt(self, query: str, passages: Sequence[str], settings: Mapping[str, Any]) -> str:
        return build_prompt(self.tokenizer, query, passages, self.passage_words, self.context_size)[0]

    def sampling_params(self, window_len: int, settings: Mapping[str, Any]) -> SamplingParams:
        n = self._answer_tokens(window_len)
        return SamplingParams(temperature=0.0, max_tokens=n, min_tokens=n)

    def read_answer(self, generation: Generation, window_len: int):
        order, parsed, fallback = parse_permutation(generation.text, window_len)
        return order, parsed and fallback is None, fallback
