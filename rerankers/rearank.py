"""REARANK (le723z/Rearank-7B, on Qwen2.5-7B-Instruct): listwise reasoning reranker trained with RL.

As lezhang7/Rearank ``rank_gpt.py`` (``create_permutation_instruction_rearank``, ``clean_response``,
``receive_permutation``) and ``agent.py`` run it: the DeepRerank system turn, the instruction, one user turn
``[i] passage`` (whitespace-normalised, first 400 characters) and one assistant turn ``Received passage [i].`` per
passage, then the step-by-step request (its line breaks and indentation are part of the prompt); chat template with
the generation prompt; greedy decoding (temperature 0, top-p 1, repetition penalty 1), 2,048 new tokens; windows of
20, step 10, RankGPT's schedule over the top 100. The answer: the ``<answer>…</answer>`` content when present, then
whatever follows the last ``</think>``, then RankGPT's digit parsing. Positional scores.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping, Sequence

from harness.llm import Generation, SamplingParams
from harness.options import Option
from rerankers._listwise import ListwiseLLMReranker, digits_permutation, listwise_options, rankgpt_schedule

DEFAULT_MODEL = "le723z/Rearank-7B"
SYSTEM = ("You are DeepRerank, an intelligent assistant that can rank passages based on their relevancy to the "
          "search query. You first thinks about the reasoning process in the mind and then provides the user with "
          "the answer.")
INSTRUCTION = ("I will provide you with passages, each indicated by number identifier []. Rank the passages based on "
               "their relevance to the search query."
               "Search Query: {query}. \nRank the {num} passages above based on their relevance to the search query."
               "The passages should be listed in descending order using identifiers. The most relevant passages should "
               "be listed first. The output format should be <answer> [] > [] </answer>, e.g., <answer> [1] > [2] "
               "</answer>.")
ASSISTANT = "Okay, please provide the passages."
RECEIVED = "Received passage [{rank}]."
FINAL = """Please rank these passages according to their relevance to the search query: "{query}"
            Follow these steps exactly:
            1. First, within <think> tags, analyze EACH passage individually:
            - Evaluate how well it addresses the query
            - Note specific relevant information or keywords

            2. Then, within <answer> tags, provide ONLY the final ranking in descending order of relevance using the format: [X] > [Y] > [Z]"""
PASSAGE_CHARS = 400
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
PROMPT_TEMPLATE_HASH = "sha256:" + hashlib.sha256(
    json.dumps([SYSTEM, INSTRUCTION, ASSISTANT, RECEIVED, FINAL]).encode("utf-8")).hexdigest()


def rearank_messages(query: str, passages: Sequence[str]) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": INSTRUCTION.format(query=query, num=len(passages))},
                {"role": "assistant", "content": ASSISTANT}]
    for rank, passage in enumerate(passages, start=1):
        content = " ".join(passage.replace("Title: Content: ", "").strip().split())
        messages.append({"role": "user", "content": f"[{rank}] {content[:PASSAGE_CHARS]}"})
        messages.append({"role": "assistant", "content": RECEIVED.format(rank=rank)})
    messages.append({"role": "user", "content": FINAL.format(query=query)})
    return messages


def answer_text(response: str) -> str:
    """REARANK's ``clean_response`` before the digit pass."""
    if "<answer>" in response:
        match = ANSWER.search(response)
        response = match.group(1).strip() if match else response.strip()
    if "<think>" in response:
        response = response.split("</think>")[-1]
    return response


OPTIONS = listwise_options("reranker rearank", [
    Option("max_tokens", int, 2048, "new tokens per window", minimum=1, source="Rearank agent.py max_tokens 2048"),
])


class RearankReranker(ListwiseLLMReranker):
    name = "rearank"
    default_model = DEFAULT_MODEL
    options = OPTIONS
    schedule = staticmethod(rankgpt_schedule)

    def resolve(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "window_size": self.window_size, "step": self.step, "schedule": "RankGPT sliding_windows",
            "passage_truncation": f"whitespace-normalised, first {PASSAGE_CHARS} characters",
            "sampling": self.sampling_params(0, {}).as_dict(),
            "scores": "positional (first-stage score sequence kept, docids move)",
            **({"tokenizer": self.values["tokenizer"]} if self.values.get("tokenizer") else {}),
        }

    def prompt_template_hash(self) -> str:
        return PROMPT_TEMPLATE_HASH

    def window_prompt(self, query: str, passages: Sequence[str], settings: Mapping[str, Any]) -> str:
        return self.tokenizer.apply_chat_template(rearank_messages(query, passages), tokenize=False,
                                                  add_generation_prompt=True)

    def sampling_params(self, window_len: int, settings: Mapping[str, Any]) -> SamplingParams:
        return SamplingParams(temperature=0.0, top_p=1.0, repetition_penalty=1.0,
                              max_tokens=int(self.values["max_tokens"]))

    def read_answer(self, generation: Generation, window_len: int) -> tuple[list[int], bool, str | None]:
        has_answer = ANSWER.search(generation.text) is not None
        order, fallback = digits_permutation(answer_text(generation.text), window_len)
        if fallback is None and not has_answer:
            fallback = "no_answer_tags"  # the order still came from the text, like the original
        return order, fallback is None, fallback
