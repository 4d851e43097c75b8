"""RankGPT's zero-shot listwise prompt for any chat model (Qwen3, Qwen2.5-Instruct, gpt-oss, QwQ, a hosted model
behind ``--backend openai --api chat``).

As sunnweiwei/RankGPT ``rank_gpt.py`` builds it: a system turn, a user/assistant exchange announcing ``num``
passages, one user turn ``[i] passage`` and one assistant turn ``Received passage [i].`` per passage, and the final
instruction; passages are whitespace-normalised and cut to their first 300 words, and while the messages exceed the
context budget (``context_size - 200`` tokens, RankGPT's ``max_tokens(model) - 200``) the word limit drops by one.
The answer is read the RankGPT way (every non-digit a space, duplicates and unknown ids dropped, missing ids
appended). Windows of 20, step 10, RankGPT's schedule; positional scores.

Tokens are counted with the model's own tokenizer and chat template (RankGPT counts with tiktoken for the GPT
models it was written for). Decoding is greedy with ``max_tokens`` new tokens (default 200, the room RankGPT's budget
leaves for the answer; raise it for thinking models, e.g. ``--max-tokens 16384`` with ``--enable-thinking``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

from harness.llm import Generation, SamplingParams
from harness.options import Option
from rerankers._listwise import ListwiseLLMReranker, digits_permutation, listwise_options, rankgpt_schedule

DEFAULT_MODEL = "Qwen/Qwen2.5-7B-Instruct"
SYSTEM = "You are RankGPT, an intelligent assistant that can rank passages based on their relevancy to the query."
PREFIX_USER = ("I will provide you with {num} passages, each indicated by number identifier []. \n"
               "Rank the passages based on their relevance to query: {query}.")
PREFIX_ASSISTANT = "Okay, please provide the passages."
RECEIVED = "Received passage [{rank}]."
POST = ("Search Query: {query}. \nRank the {num} passages above based on their relevance to the search query. The "
        "passages should be listed in descending order using identifiers. The most relevant passages should be "
        "listed first. The output format should be [] > [], e.g., [1] > [2]. Only response the ranking results, do "
        "not say any word or explain.")
MAX_WORDS = 300
ANSWER_ROOM = 200
PROMPT_TEMPLATE_HASH = "sha256:" + hashlib.sha256(
    json.dumps([SYSTEM, PREFIX_USER, PREFIX_ASSISTANT, RECEIVED, POST]).encode("utf-8")).hexdigest()


def rankgpt_messages(query: str, passages: Sequence[str], max_words: int = MAX_WORDS) -> list[dict[str, str]]:
    num = len(passages)
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": PREFIX_USER.format(num=num, query=query)},
                {"role": "assistant", "content": PREFIX_ASSISTANT}]
    for rank, passage in enumerate(passages, start=1):
        content = " ".join(passage.replace("Title: Content: ", "").strip().split()[:max_words])
        messages.append({"role": "user", "content": f"[{rank}] {content}"})
        messages.append({"role": "assistant", "content": RECEIVED.format(rank=rank)})
    messages.append({"role": "user", "content": POST.format(query=query, num=num)})
    return messages


OPTIONS = listwise_options("reranker rankgpt", [
    Option("context_size", int, 4096, "prompt budget: messages are cut to context_size - 200 tokens", minimum=256,
           source="RankGPT max_tokens(model): 4096 (8192 for GPT-4)"),
    Option("max_tokens", int, ANSWER_ROOM, "new tokens per window", minimum=1,
           source="RankGPT leaves 200 tokens of the context for the answer"),
    Option("enable_thinking", bool, None, "the chat template's thinking switch (Qwen3); unset: the template's default"),
])


class RankGPTReranker(ListwiseLLMReranker):
    name = "rankgpt"
    default_model = DEFAULT_MODEL
    options = OPTIONS
    schedule = staticmethod(rankgpt_schedule)

    def resolve(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "window_size": self.window_size, "step": self.step, "schedule": "RankGPT sliding_windows",
            "passage_truncation": f"first {MAX_WORDS} words, fewer until the messages fit context_size - 200 tokens",
            "context_size": int(self.values["context_size"]),
            "sampling": self.sampling_params(0, {}).as_dict(),
            "enable_thinking": self.values.get("enable_thinking"),
            "scores": "positional (first-stage score sequence kept, docids move)",
            **({"tokenizer": self.values["tokenizer"]} if self.values.get("tokenizer") else {}),
        }

    def prompt_template_hash(self) -> str:
        return PROMPT_TEMPLATE_HASH

    def _render(self, messages) -> str:
        extra = {} if self.values.get("enable_thinking") is None else {"enable_thinking": self.values["enable_thinking"]}
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)

    def _fits(self, text: str) -> bool:
        budget = int(self.values["context_size"]) - ANSWER_ROOM
        return len(self.tokenizer(text, add_special_tokens=False).input_ids) <= budget

    def window_prompt(self, query: str, passages: Sequence[str], settings: Mapping[str, Any]) -> str:
        prompt = self._render(rankgpt_messages(query, passages))
        if self._fits(prompt):
            return prompt
        # RankGPT lowers the word limit by one until the messages fit; the token count grows with the limit, so the
        # largest limit that fits is found by bisection (the same limit, fewer tokenizer calls).
        low, high = 0, MAX_WORDS - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self._fits(self._render(rankgpt_messages(query, passages, middle))):
                low = middle
            else:
                high = middle - 1
        return self._render(rankgpt_messages(query, passages, low))

    def sampling_params(self, window_len: int, settings: Mapping[str, Any]) -> SamplingParams:
        return SamplingParams(temperature=0.0, max_tokens=int(self.values["max_tokens"]))

    def read_answer(self, generation: Generation, window_len: int) -> tuple[list[int], bool, str | None]:
        text = generation.text
        if "</think>" in text:  # a thinking model's reasoning is not part of the ranking
            text = text.split("</think>")[-1]
        order, fallback = digits_permutation(text, window_len)
        return order, fallback is None, fallback
