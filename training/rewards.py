"""ReasonRank's multi-view ranking reward, usable directly as a trl reward function.

``multi_view_reward`` reproduces the reward of the original verl code (``reward_score/ranking.py``) for one
completion at a time:

1. The completion must match ``<think>.*?</think>\\s*<answer>(.*?)</answer>`` (``re.search``, DOTALL,
   **case-sensitive**). Otherwise the reward is **-1** (format failure).
2. Identifiers are the digit runs of the answer (every character for which ``str.isdigit()`` is false becomes a
   space); the reference identifiers are the digit runs of ``ground_truth``. If the counts differ, or the numbers
   of distinct identifiers differ, the reward is **0**. An identifier that ``int()`` rejects (e.g. ``²``, which
   is ``isdigit()`` but not decimal) also gives **0**.
3. Identifier ``i`` names ``initial_list[i - 1]``; the mapped document order is scored against
   ``relevant_docids`` (relevance 1) with NDCG@10 and Recall@10 exactly as pytrec_eval's ``ndcg_cut.10`` and
   ``recall.10`` compute them (run scores = -rank, so the predicted order is the evaluated order).
4. RBO between the predicted and the reference identifier strings with the rbo package's defaults
   (``p = 1.0``), which is the plain average overlap ``(1/k) * sum_{d=1..k} |S[:d] & T[:d]| / d`` with
   ``k = min(len(S), len(T))``, clamped to [0, 1] (both empty -> 1, one empty -> 0).
5. ``reward = NDCG@10 + 0.2 * Recall@10 + 0.1 * RBO`` (at most 1.3).

Deliberate differences from the original, all in inputs the original mishandles:

- **Identifier 0 and identifiers above ``len(initial_list)``**: the original computes ``initial_list[int(x) - 1]``
  and only drops indices ``>= len``, so ``[0]`` silently becomes the *last* passage through Python's negative
  indexing. Here identifiers outside ``1..len(initial_list)`` are dropped (they name no passage). Rewards differ
  from the original only for completions that contain ``[0]``.
- **Duplicated identifiers in both lists** (possible only when the reference itself has duplicates): the rbo
  package would raise an assertion error; here RBO is computed on both lists with later duplicates removed.
- **Nothing left to evaluate** (every identifier dropped, or no relevant documents): pytrec_eval would return no
  entry for the query (the original then fails); here NDCG@10 and Recall@10 are 0.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence

ANSWER_PATTERN = re.compile(r"<think>.*?</think>\s*<answer>(.*?)</answer>", re.DOTALL)
FORMAT_FAILURE = -1.0
RECALL_WEIGHT = 0.2  # phi in the paper
RBO_WEIGHT = 0.1  # gamma in the paper
CUTOFF = 10


def ranking_reward(response: str, ground_truth: str, initial_list: Sequence[str],
                   relevant_docids: Iterable[str]) -> float:
    """Reward of one decoded completion (see the module docstring for the exact rules)."""
    match = ANSWER_PATTERN.search(response)
    if match is None:
        return FORMAT_FAILURE
    predicted = _identifiers(match.group(1))
    reference = _identifiers(ground_truth)
    if len(predicted) != len(reference) or len(set(predicted)) != len(set(reference)):
        return 0.0
    try:
        indices = [int(x) - 1 for x in predicted]
    except ValueError:
        return 0.0
    docids = [str(initial_list[i]) for i in indices if 0 <= i < len(initial_list)]
    relevant = {str(d) for d in relevant_docids}
    ndcg, recall = ndcg_recall_at_k(docids, relevant, CUTOFF)
    return ndcg + RECALL_WEIGHT * recall + RBO_WEIGHT * average_overlap(predicted, reference)


def multi_view_reward(prompts: Any = None, completions: Sequence[Any] | None = None, *,
                      ground_truth: Sequence[str] | str, initial_list: Sequence[Sequence[str]],
                      relevant_docids: Sequence[Sequence[str]], **kwargs: Any) -> list[float]:
    """trl reward function: one float per completion.

    ``completions`` are plain strings or chat messages (``[{"role": "assistant", "content": text}]``, as trl
    passes them for conversational prompts). ``ground_truth`` (the teacher ranking string ``[3] > [1] > …``),
    ``initial_list`` (docids in prompt order) and ``relevant_docids`` are the dataset columns, one entry per
    completion, as trl passes them; a single (non-list) example is broadcast. Other keyword arguments trl adds
    (``completion_ids``, ``trainer_state``, logging hooks, extra columns) are ignored.
    """
    if completions is None:
        raise TypeError("multi_view_reward needs completions")
    n = len(completions)
    truths = [ground_truth] * n if isinstance(ground_truth, str) else list(ground_truth)
    lists = _per_completion(initial_list, n)
    relevants = _per_completion(relevant_docids, n)
    if not (len(truths) == len(lists) == len(relevants) == n):
        raise ValueError(
            f"multi_view_reward got {n} completions but {len(truths)} ground_truth, {len(lists)} initial_list and "
            f"{len(relevants)} relevant_docids entries; pass one of each per completion."
        )
    return [ranking_reward(_completion_text(c), t, l, r)
            for c, t, l, r in zip(completions, truths, lists, relevants)]


def ndcg_recall_at_k(ranked_docids: Sequence[str], relevant: set[str], k: int = CUTOFF) -> tuple[float, float]:
    """pytrec_eval's ``ndcg_cut.k`` and ``recall.k`` for one query with binary judgments.

    Mirrors how the original builds the run: a dict ``{docid: -rank}`` (a repeated docid keeps its last, i.e.
    lowest, score), evaluated in decreasing score order.
    """
    if not relevant:
        return 0.0, 0.0
    scores: dict[str, int] = {}
    for rank, docid in enumerate(ranked_docids):
        scores[docid] = -rank
    order = sorted(scores, key=lambda d: (-scores[d], _reverse_key(d)))[:k]
    if not order:
        return 0.0, 0.0
    dcg = sum(1.0 / math.log2(pos + 2) for pos, d in enumerate(order) if d in relevant)
    idcg = sum(1.0 / math.log2(pos + 2) for pos in range(min(len(relevant), k)))
    hits = sum(1 for d in order if d in relevant)
    return dcg / idcg, hits / len(relevant)


def average_overlap(s: Sequence[str], t: Sequence[str]) -> float:
    """RBO with p = 1 (the rbo package's default): mean over depths 1..k of |S[:d] ∩ T[:d]| / d."""
    s, t = _dedupe(s), _dedupe(t)
    if not s and not t:
        return 1.0
    if not s or not t:
        return 0.0
    k = min(len(s), len(t))
    seen_s: set[str] = set()
    seen_t: set[str] = set()
    overlap = 0
    total = 0.0
    for depth in range(k):
        a, b = s[depth], t[depth]
        if a == b:
            overlap += 1
        else:
            overlap += (a in seen_t) + (b in seen_s)
        seen_s.add(a)
        seen_t.add(b)
        total += overlap / (depth + 1)
    return min(1.0, max(0.0, total / k))


def _identifiers(text: str) -> list[str]:
    return "".join(ch if ch.isdigit() else " " for ch in text).split()


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _reverse_key(docid: str):
    # trec_eval breaks score ties by docid in decreasing order; scores here are distinct, so this never decides.
    return tuple(-ord(c) for c in docid)


def _per_completion(column: Any, n: int) -> list[Sequence[str]]:
    column = list(column)
    if not column or all(isinstance(x, str) for x in column):
        return [column] * n  # one example's list passed unbatched, broadcast to every completion
    return column


def _completion_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content", ""))
    messages = list(completion)
    assistant = [m for m in messages if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
    chosen = assistant[-1] if assistant else (messages[-1] if messages else {"content": ""})
    return _content_text(chosen.get("content", "") if isinstance(chosen, dict) else str(chosen))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal-style parts: [{"type": "text", "text": ...}]
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)
