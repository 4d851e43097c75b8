"""ReasonRank (liuwenhan/reasonrank-7B/-32B, Qwen3-based 8B): listwise reasoning reranker, as its authors ran it.

Faithful to 8421BCD/ReasonRank (shared/spec/reasonrank.md): the exact prompt bytes (typo and blank line included),
query/passage processing (replace_number, strip, ftfy before 512-token truncation with the model's tokenizer, ftfy
again on the chat-templated prompt), greedy decoding with ``max_tokens = reasoning budget + 100`` (3172), the
answer regex on the lower-cased response and every fallback, window 20 / step 10 bottom-up, positional scores.

Prompt modes: ``rank_GPT_reasoning`` (7B, 32B) and ``rank_GPT_qwen3`` (8B: its own system prompt and suffix,
sampled decoding). The mode comes from the ``prompt_mode`` option, else from ``KNOWN_MODEL_MODES`` (exact ids
only), else ``rank_GPT_reasoning``; the record says which mode was used and why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from harness.errors import HarnessError
from harness.llm import Generation, SamplingParams
from harness.options import Option
from rerankers._listwise import ListwiseLLMReranker, listwise_options
from rerankers._text import fix_text, replace_number, truncate_tokens

log = logging.getLogger(__name__)

DEFAULT_MODEL = "liuwenhan/reasonrank-7B"
REASONING = "rank_GPT_reasoning"
QWEN3 = "rank_GPT_qwen3"
PROMPT_MODES = (REASONING, QWEN3)
# Exact model ids whose prompt mode is known; anything else defaults to rank_GPT_reasoning (never guessed).
KNOWN_MODEL_MODES = {
    "liuwenhan/reasonrank-7B": REASONING,
    "liuwenhan/reasonrank-32B": REASONING,
    "liuwenhan/reasonrank-8B": QWEN3,
    "lwhlwh/reasonrank-8B": QWEN3,
}
DEFAULT_REASONING_BUDGET = 3072  # the authors' reasoning_maxlen; max_tokens = budget + 100
# DOC_MAXLEN of the reference code: 512 tokens for BRIGHT/R2MED; datasets declare theirs (passage_tokens).
DEFAULT_PASSAGE_TOKENS = 512
_PROCESSED_CACHE_SIZE = 50_000  # processed passages kept (a few BRIGHT tasks' candidates; each ≤ 512 tokens)

SYSTEM_PROMPT = (
    "You are RankLLM, an intelligent assistant that can rank passages based on their relevance to the query. "
    "Given a query and a passage list, you first thinks about the reasoning process in the mind and then provides "
    "the answer (i.e., the reranked passage list). The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
    "<answer> answer here </answer>."
)
QWEN3_SYSTEM_PROMPT = (
    "You are RankLLM, an intelligent assistant that can rank passages based on their relevance to the query."
)
_PREFIX = (
    "I will provide you with {num} passages, each indicated by a numerical identifier []. "
    "Rank the passages based on their relevance to the search query: {query}.\n"
)
_PASSAGE_LINE = "[{rank}] {content}\n"
_POST_REASONING = (
    "Search Query: {query}.\n"
    "Rank the {num} passages above based on their relevance to the search query. All the passages should be "
    "included and listed using identifiers, in descending order of relevance. The format of the answer should be "
    "[] > [], e.g., [2] > [1]."
)
_POST_QWEN3 = (
    "Search Query: {query}.\n"
    "Rank the {num} passages above based on their relevance to the search query. All the passages should be "
    "included and listed using identifiers, in descending order of relevance. The final ranked list should be "
    "enclosed within <answer> </answer> tags, i.e., <answer> ranked list here </answer>. The format of ranked list "
    "should be [] > [], e.g., [2] > [1]. Only respond with the ranking results, do not say any word or explain."
)
_TEMPLATES = {
    REASONING: (SYSTEM_PROMPT, _PREFIX, _PASSAGE_LINE, _POST_REASONING),
    QWEN3: (QWEN3_SYSTEM_PROMPT, _PREFIX, _PASSAGE_LINE, _POST_QWEN3),
}


def template_hash(mode: str = REASONING) -> str:
    """``sha256:`` of the exact template strings of one prompt mode (system, prefix, passage line, suffix)."""
    return "sha256:" + hashlib.sha256(json.dumps(_TEMPLATES[_check_mode(mode)]).encode("utf-8")).hexdigest()


def _check_mode(mode: str) -> str:
    if mode not in _TEMPLATES:
        raise HarnessError(f"Unknown ReasonRank prompt mode {mode!r}; use one of: {', '.join(PROMPT_MODES)}.")
    return mode


PROMPT_TEMPLATE_HASH = template_hash(REASONING)


# -- prompt ----------------------------------------------------------------------------------------------------

def process_query(query: str) -> str:
    """``replace_number`` then ``strip`` (ftfy only reaches the query through the whole-prompt pass)."""
    return replace_number(query).strip()


def process_passage(tokenizer, text: str, max_length: int = DEFAULT_PASSAGE_TOKENS) -> str:
    """strip → ftfy → first ``max_length`` tokens of the model's tokenizer → replace_number."""
    return replace_number(truncate_tokens(tokenizer, fix_text(text.strip()), max_length))


def build_messages(query: str, passages: Sequence[str], mode: str = REASONING) -> list[dict[str, str]]:
    """System + user messages for one window. ``passages`` are already processed; ``query`` is processed here
    (``process_query`` is idempotent, so an already processed query is fine)."""
    system, prefix, line, post = _TEMPLATES[_check_mode(mode)]
    query = process_query(query)
    num = len(passages)
    user = prefix.format(num=num, query=query) + "\n"
    user += "".join(line.format(rank=rank, content=content) for rank, content in enumerate(passages, 1))
    user += post.format(num=num, query=query)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def build_prompt(tokenizer, query: str, passage_texts: Sequence[str], mode: str = REASONING,
                 max_length: int = DEFAULT_PASSAGE_TOKENS) -> str:
    """The exact string sent to the engine: processed passages, chat template, second ftfy pass."""
    return render_prompt(tokenizer, query, [process_passage(tokenizer, t, max_length) for t in passage_texts], mode)


def render_prompt(tokenizer, query: str, processed_passages: Sequence[str], mode: str = REASONING) -> str:
    """``build_prompt`` for passages that went through ``process_passage`` already."""
    messages = build_messages(query, processed_passages, mode)
    templated = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return fix_text(templated)


# -- parsing ---------------------------------------------------------------------------------------------------

_ANSWER_RE = re.compile(r"<think>.*?</think>\s*<answer>(.*?)</answer>", re.DOTALL)


@dataclass(frozen=True)
class ParseOutcome:
    order: list[int]  # 0-based permutation of the window
    parsed: bool  # the answer regex matched (no fallback extraction)
    source: str  # answer_regex | last_answer_tag | whole_response | int_error_window_unchanged
    duplicates: int = 0
    out_of_range: int = 0
    missing_appended: int = 0

    @property
    def fallback(self) -> str | None:
        """What the records count: ``no_ids_window_unchanged`` when the answer named no valid identifier (the
        window keeps its order: the model's answer decided nothing), else the extraction fallback, or
        ``permutation_repaired`` for a matched answer that had duplicates, out-of-range or missing ids; None for a
        clean answer."""
        if self.source == "int_error_window_unchanged" or (self.order and self.missing_appended == len(self.order)):
            return "no_ids_window_unchanged" if self.source != "int_error_window_unchanged" else self.source
        if self.source != "answer_regex":
            return self.source
        if self.duplicates or self.out_of_range or self.missing_appended:
            return "permutation_repaired"
        return None


def digits_to_order(text: str, window_len: int) -> tuple[list[int], int, int, int]:
    """Non-digits → spaces, ``int`` each token (may raise ValueError), 0-based, drop later duplicates, drop out of
    range, append missing in original order. Returns (order, duplicates, out_of_range, missing_appended)."""
    numbers = [int(token) - 1 for token in "".join(c if c.isdigit() else " " for c in text).split()]
    seen: set[int] = set()
    unique: list[int] = []
    for n in numbers:
        if n not in seen:
            seen.add(n)
            unique.append(n)
    in_range = [n for n in unique if 0 <= n < window_len]
    present = set(in_range)
    missing = [i for i in range(window_len) if i not in present]
    return (in_range + missing, len(numbers) - len(unique), len(unique) - len(in_range), len(missing))


def parse_answer(response: str, window_len: int) -> ParseOutcome:
    """ReasonRank's parsing (reasonrank.md §7): never raises, always returns a permutation of the window."""
    match = _ANSWER_RE.search(response.lower())
    if match:
        answer, source = match.group(1).strip(), "answer_regex"
    elif "<answer>" in response:
        answer, source = response[response.rfind("<answer>") + len("<answer>"):], "last_answer_tag"
    else:
        log.debug("the reasoning length is too long.")
        answer, source = response, "whole_response"
    try:
        order, duplicates, out_of_range, missing = digits_to_order(answer, window_len)
    except ValueError:  # e.g. a superscript digit: isdigit() but not a decimal
        log.debug("unexcepted output!")
        return ParseOutcome(list(range(window_len)), False, "int_error_window_unchanged")
    return ParseOutcome(order, source == "answer_regex", source, duplicates, out_of_range, missing)


# -- reranker ----------------------------------------------------------------------------------------------------

def resolve_prompt_mode(model: str, explicit: str | None) -> tuple[str, str]:
    """(mode, why): the explicit option, else the known-model table, else the default."""
    if explicit:
        return _check_mode(explicit), "option"
    if model in KNOWN_MODEL_MODES:
        return KNOWN_MODEL_MODES[model], "known model id"
    return REASONING, "default (model id not in the known-model table)"


def _sampling_settings(params: SamplingParams) -> dict[str, Any]:
    """The decoding settings a claim can name (max_tokens, temperature) plus every sampling field."""
    return {"max_tokens": params.max_tokens, "temperature": params.temperature, "sampling": params.as_dict()}


OPTIONS = listwise_options("reranker reasonrank", [
    Option("passage_length", int, None, "passage truncation in the model's tokens (default: the dataset's "
           "declared passage_tokens, else 512)", minimum=1, source="ReasonRank DOC_MAXLEN"),
    Option("reasoning_budget", int, DEFAULT_REASONING_BUDGET, "reasoning tokens; max_tokens = budget + 100",
           minimum=1, source="run_rank_llm.sh reasoning_maxlen 3072"),
    Option("max_tokens", int, None, "new-token limit (default: reasoning_budget + 100)", minimum=1),
    Option("prompt_mode", str, None, "prompt template (default: by known model id, else rank_GPT_reasoning)",
           choices=PROMPT_MODES),
    Option("temperature", float, None, "sampling temperature (default: 0 = greedy; 0.6 for rank_GPT_qwen3)",
           minimum=0.0),
    Option("seed", int, None, "sampling seed (sampled decoding only)", minimum=0),
])


class ReasonRankReranker(ListwiseLLMReranker):
    name = "reasonrank"
    default_model = DEFAULT_MODEL
    options = OPTIONS

    def __init__(self, settings=None, execution=None, *, backend=None, tokenizer=None):
        super().__init__(settings, execution, backend=backend, tokenizer=tokenizer)
        self.prompt_mode, self.prompt_mode_source = resolve_prompt_mode(self.model, self.values["prompt_mode"])
        self.reasoning_budget = int(self.values["reasoning_budget"])
        self._processed: dict[tuple[bytes, int], str] = {}  # (digest of the raw text, max_length) -> processed

    def required_capabilities_now(self) -> frozenset[str]:
        sampled = self.sampling_params(self.window_size, {}).temperature > 0
        return frozenset({"generate", "sampling"} if sampled else {"generate"})

    def passage_length_for(self, protocol: Mapping[str, Any]) -> int:
        return int(self.values["passage_length"] or protocol.get("passage_tokens") or DEFAULT_PASSAGE_TOKENS)

    def resolve(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "window_size": self.window_size,
            "step": self.step,
            "passage_length": self.passage_length_for(protocol),
            "passage_truncation": "tokens (model tokenizer)",
            "reasoning_budget": self.reasoning_budget,
            "prompt_mode": self.prompt_mode,
            "prompt_mode_source": self.prompt_mode_source,
            **_sampling_settings(self.sampling_params(self.window_size, {})),
            "scores": "positional (first-stage score sequence kept, docids move)",
            **({"tokenizer": self.values["tokenizer"]} if self.values.get("tokenizer") else {}),
        }

    def prompt_template_hash(self) -> str:
        return template_hash(self.prompt_mode)

    def window_prompt(self, query: str, passages: Sequence[str], settings: Mapping[str, Any]) -> str:
        max_length = int(settings.get("passage_length") or DEFAULT_PASSAGE_TOKENS)
        processed = [self._process_passage(text, max_length) for text in passages]
        return render_prompt(self.tokenizer, query, processed, self.prompt_mode)

    def _process_passage(self, text: str, max_length: int) -> str:
        # With step 10 / window 20 most passages appear in two windows; ftfy + tokenization dominate prompt
        # building, so each distinct passage is processed once per run.
        key = (hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest(), max_length)
        processed = self._processed.get(key)
        if processed is None:
            if len(self._processed) >= _PROCESSED_CACHE_SIZE:
                self._processed.clear()
            processed = self._processed[key] = process_passage(self.tokenizer, text, max_length)
        return processed

    def sampling_params(self, window_len: int, settings: Mapping[str, Any]) -> SamplingParams:
        max_tokens = int(self.values["max_tokens"] or self.reasoning_budget + 100)
        temperature = self.values["temperature"]
        seed = self.values["seed"]
        if self.prompt_mode == QWEN3:
            return SamplingParams(temperature=0.6 if temperature is None else temperature, top_p=0.95, top_k=20,
                                  min_p=0.0, max_tokens=max_tokens, seed=seed)
        if temperature:
            return SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
        return SamplingParams(temperature=0.0, max_tokens=max_tokens)

    def read_answer(self, generation: Generation, window_len: int):
        outcome = parse_answer(generation.text, window_len)
        return outcome.order, outcome.parsed and outcome.fallback is None, outcome.fallback
