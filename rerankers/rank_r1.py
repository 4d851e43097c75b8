"""Rank-R1 (ielabgroup/Rank-R1-3B/7B/14B-v0.1, LoRA adapters on Qwen2.5-*-Instruct): setwise reasoning reranker.

As ielab/llm-rankers ``Rank-R1/run_setwise.py`` (``R1SetwiseLlmRanker``) with ``prompts/prompt_setwise-R1.toml``
runs it on BRIGHT (``Rank-R1/README.md``): heapsort with ``num_child 19`` (20 documents per comparison) for the top
``k 10`` of the top 100; query and passages cut to their first 1,024 tokens with the tokenizer
(``convert_tokens_to_string(tokenize(text)[:n])``); each comparison shows its documents **in a random order**
(``random.sample`` even with one permutation) labelled ``[1]``…``[n]``, one per line (``"[i] text"`` joined by
``\\n``), in the system + user messages below through the chat template; greedy decoding, 2,048 new tokens; the
answer is ``<think>.*?</think>\\s*<answer>(.*?)</answer>`` on the lower-cased completion and must be one of the labels,
otherwise the comparison keeps the parent (the heap's fallback).

Shuffling: the original draws from Python's global ``random`` seeded once with 929, so its orders depend on every
earlier draw in the process; here each comparison shuffles with its own generator seeded by (``seed``, query id,
comparison number), reproducible and independent of the other queries. ``--reranker-arg shuffle=false`` shows the
documents in heap order.

The -v0.2 model (Qwen3 base, "You are RankLLM…" prompt, 10 documents per comparison) is not shipped: its prompt file
declares a document separator and prefix that the published ``compare`` code does not read, so how it was run
cannot be determined from the code.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any, Mapping, Sequence

from harness.llm import GenerationRequest, SamplingParams
from harness.options import Option
from harness.types import CallStats, RerankRequest
from rerankers._llm import MODEL_OPTIONS
from rerankers._setwise import SORTS, SetwiseLLMReranker
from rerankers._text import truncate_tokens

DEFAULT_MODEL = "ielabgroup/Rank-R1-7B-v0.1"
SYSTEM_PROMPT = ("A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
                 "The assistant first thinks about the reasoning process in the mind and then provides the user with "
                 "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
                 "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
                 "</answer>.")
USER_PROMPT = ('Given the query: "{query}", which of the following documents is most relevant?\n{docs}\n'
               "After completing the reasoning process, please provide only the label of the most relevant document "
               "to the query, enclosed in square brackets, within the answer tags. For example, if the third document "
               "is the most relevant, the answer should be: <think> reasoning process here </think> "
               "<answer>[3]</answer>.")
ANSWER_PATTERN = re.compile(r"<think>.*?</think>\s*<answer>(.*?)</answer>", re.DOTALL)
PROMPT_TEMPLATE_HASH = "sha256:" + hashlib.sha256(json.dumps([SYSTEM_PROMPT, USER_PROMPT]).encode()).hexdigest()


def parse_choice(completion: str, size: int) -> int | None:
    """0-based index of the chosen label among ``[1]``…``[size]``, or None."""
    match = ANSWER_PATTERN.search(completion.lower())
    if not match:
        return None
    answer = match.group(1).strip()
    labels = [f"[{i + 1}]" for i in range(size)]
    return labels.index(answer) if answer in labels else None


OPTIONS = MODEL_OPTIONS.extended("reranker rank-r1", [
    Option("num_child", int, 19, "children per heap node (a comparison shows num_child + 1 documents)", minimum=1,
           source="Rank-R1 README BRIGHT: --num_child 19"),
    Option("k", int, 10, "how many top documents are sorted", minimum=1, source="Rank-R1 README: --k 10"),
    Option("method", str, "heapsort", "sort driver", choices=tuple(SORTS), source="Rank-R1 README: heapsort"),
    Option("passage_length", int, 1024, "passage truncation in tokens", minimum=1,
           source="Rank-R1 README BRIGHT: --passage_length 1024"),
    Option("query_length", int, 1024, "query truncation in tokens", minimum=1,
           source="Rank-R1 README BRIGHT: --query_length 1024"),
    Option("max_tokens", int, 2048, "new tokens per comparison", minimum=1, source="run_setwise.py max_tokens 2048"),
    Option("shuffle", bool, True, "show each comparison's documents in a random order", source="run_setwise.py"),
    Option("seed", int, 929, "seed of the per-comparison shuffles", minimum=0, source="run_setwise.py random.seed(929)"),
])


class RankR1Reranker(SetwiseLLMReranker):
    name = "rank-r1"
    default_model = DEFAULT_MODEL
    options = OPTIONS

    def resolve(self, protocol: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "num_child": self.num_child, "k": self.top_k, "method": self.method,
            "passage_length": int(self.values["passage_length"]), "query_length": int(self.values["query_length"]),
            "shuffle": bool(self.values["shuffle"]), "seed": int(self.values["seed"]),
            "sampling": self.sampling_params().as_dict(),
            "scores": "-rank: sorted top k, then the first-stage order",
            **({"tokenizer": self.values["tokenizer"]} if self.values.get("tokenizer") else {}),
        }

    def prompt_template_hash(self) -> str:
        return PROMPT_TEMPLATE_HASH

    def sampling_params(self) -> SamplingParams:
        return SamplingParams(temperature=0.0, max_tokens=int(self.values["max_tokens"]))

    def compare_prompt(self, query: str, passages: Sequence[str], protocol: Mapping[str, Any]) -> str:
        query = truncate_tokens(self.tokenizer, query, int(self.values["query_length"]))
        docs = "\n".join(f"[{i + 1}] {truncate_tokens(self.tokenizer, p, int(self.values['passage_length']))}"
                         for i, p in enumerate(passages))
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": USER_PROMPT.format(query=query, docs=docs)}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def shown_order(self, qid: str, number: int, size: int) -> list[int]:
        order = list(range(size))
        if self.values["shuffle"]:
            seed = int(hashlib.sha256(f"{self.values['seed']}:{qid}:{number}".encode()).hexdigest()[:16], 16)
            random.Random(seed).shuffle(order)
        return order

    async def compare(self, request: RerankRequest, indices: list[int], protocol: Mapping[str, Any],
                      number: int) -> tuple[int | None, CallStats]:
        shown = self.shown_order(request.qid, number, len(indices))
        prompt = self.compare_prompt(request.query, [request.candidates[indices[j]].text for j in shown], protocol)
        label = f"query {request.qid}, comparison {number + 1}"
        generation = await self.generate(GenerationRequest(prompt, self.sampling_params(), label=label))
        picked = parse_choice(generation.text, len(indices))
        stats = CallStats.of([generation], f"comparison {number + 1}", "comparison", parsed=picked is not None,
                             fallback=None if picked is not None else "first_document_kept")
        stats.unusable = picked is None
        return (shown[picked] if picked is not None else None), stats
