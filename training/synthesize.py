"""Teacher-labelled training data (paper §4.1): ask a strong reasoning model, through an OpenAI-compatible API, to
rerank candidate windows with the ReasonRank prompt and to mark the relevant passages.

For every query of a task (any registered task or BEIR-layout directory) the first stage supplies the top-k
candidates, which are cut into consecutive windows of at most ``window_size`` (20) passages. Each window gets two
teacher calls:

1. **Listwise ranking** with the inference prompt of the ``reasonrank`` reranker (``build_messages``): the
   teacher's reasoning (``reasoning_content`` of chat APIs, or the text inside ``<think>…</think>``) and its final
   ranking (``<answer>`` content, else the text after ``</think>``; parsed like inference does: digits, later
   duplicates and out-of-range ids dropped, missing ids appended in prompt order).
2. **Positive selection**: the same passages, asking for the identifiers of every relevant passage as
   ``[2] [4]`` or ``None`` (``RELEVANCE_PROMPT``; the paper's selection prompts also show the gold answer, which a
   generic task does not have).

Output (``out_dir``) is the ``reasonrank_data_13k`` layout — ``training_data_all.jsonl`` rows with ``dataset``,
``qid``, ``initial_list``, ``final_list``, ``reasoning``, ``relevant_docids`` plus ``window``, ``teacher`` and
``usage`` (token counts of both calls) — with the texts in ``id_query/`` and ``id_doc/``, and a
``synthesis_report.json`` (calls, cached calls, tokens, teacher seconds).

Teacher API (``api``):

- ``chat`` (default): ``<base_url>/chat/completions`` with the system + user messages; works with hosted
  reasoning APIs (DeepSeek-R1 returns ``reasoning_content``) and ``vllm serve --reasoning-parser``.
- ``completions``: the harness ``openai`` backend, sending the chat-templated prompt string (template from
  ``tokenizer``, default the teacher id) to ``<base_url>/completions``, exactly as the rerankers do.

**Judgments teacher** (``teacher="judgments"``, no model, no server): for offline proofs of the recipe, the task's
own judgments give the ranking (judged-relevant passages first, by grade, then the others in first-stage order),
``relevant_docids`` are the judged-relevant passages, and the reasoning is a short *templated* rationale naming them.
It is a format and ranking teacher, not a reasoning teacher; every row says so in ``teacher.kind``. The
self-consistency filter runs on its rows like on any other (windows without a relevant passage score 0 and go).

Model teachers go through the model-call cache (``harness.cache``), so an interrupted run resumes where it stopped and a
finished one re-runs with zero calls; ``concurrency`` bounds the requests in flight.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError
from harness.llm import Backend, Generation, GenerationRequest, SamplingParams
from training.data import RankingExamples, write_ranking_examples

RELEVANCE_PROMPT = (
    "I will provide you with {num} passages, each indicated by a numerical identifier []. Identify every passage "
    "that is relevant to the search query: {query}.\n"
)
RELEVANCE_POST = (
    "Search Query: {query}.\n"
    "List the identifiers of all passages above that are relevant to the search query, e.g., [2] [4]. "
    "If none of the passages is relevant, answer None."
)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


JUDGMENTS_TEACHER = "judgments"
JUDGMENTS_KIND = "judgments: ranking and relevant ids from the task's qrels, templated rationale (not a reasoning teacher)"


@dataclass(frozen=True)
class SynthesisSpec:
    task: str
    teacher: str  # model name the server serves (e.g. deepseek-reasoner, deepseek-ai/DeepSeek-R1)
    base_url: str | None
    out_dir: str
    first_stage: str | None = None  # None: the task's default first stage
    top_k: int = 20
    window_size: int = 20
    limit: int | None = None  # first N queries per subset
    api: str = "chat"  # chat | completions
    tokenizer: str | None = None  # passage truncation (and the chat template for api=completions)
    passage_length: int = 512  # tokens with a tokenizer, else words
    max_tokens: int = 16384
    temperature: float = 0.6
    top_p: float = 0.95
    concurrency: int = 16
    cache: bool = True
    cache_dir: str | None = None
    query_field: str = "original"
    api_key: str | None = None
    # permute each window's passages (seeded per query and window) so the relevant passage is not mostly first:
    # a small student trained on first-stage order learns "answer [1]" (the first stage's own ranking)
    shuffle_seed: int | None = None


@dataclass
class SynthesisReport:
    examples: int = 0
    calls: int = 0
    cached_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    teacher_seconds: float = 0.0
    unparsed_rankings: int = 0
    per_domain: dict[str, int] | None = None


def synthesize(spec: SynthesisSpec, progress: Callable[[int, int], None] | None = None) -> SynthesisReport:
    """Label every window of every query with the teacher and write the 13k layout to ``spec.out_dir``."""
    from harness.first_stage import FirstStageOptions, build_first_stage
    from tasks import resolve_tasks

    if spec.api not in ("chat", "completions"):
        raise HarnessError(f"--api {spec.api!r}: use chat or completions.")
    if not 1 <= spec.window_size <= 20:
        raise HarnessError(f"--window-size must be between 1 and 20 (got {spec.window_size}); ReasonRank's data "
                           "uses windows of at most 20 passages.")
    tokenizer = _load_tokenizer(spec)
    items: list[dict[str, Any]] = []
    queries_text: dict[str, str] = {}
    docs_text: dict[str, str] = {}
    judgments: dict[str, dict[str, int]] = {}
    tasks = resolve_tasks(spec.task)
    for task in tasks:
        # several subsets (e.g. "bright") reuse qids such as "0": namespace ids so the merged texts stay unique
        ns = f"{task.subset}:" if len(tasks) > 1 else ""
        fs_options = FirstStageOptions(top_k=spec.top_k, query_field=spec.query_field)
        first = build_first_stage(spec.first_stage or task.default_first_stage, fs_options).retrieve(task, fs_options)
        queries = task.queries()  # the teacher, like the reranker, sees the original query text
        qids = [q for q in queries if q in first.run][: spec.limit]
        texts = task.docs({d for q in qids for d, _ in first.run[q][: spec.top_k]})
        if spec.teacher == JUDGMENTS_TEACHER:
            task.require_judgments()
            judgments.update({ns + q: {ns + d: int(g) for d, g in task.qrels.get(q, {}).items()} for q in qids})
        for qid in qids:
            docids = [d for d, _ in first.run[qid][: spec.top_k] if d in texts]
            queries_text[ns + qid] = queries[qid]
            for start in range(0, len(docids), spec.window_size):
                window = docids[start:start + spec.window_size]
                if spec.shuffle_seed is not None:
                    import random

                    random.Random(f"{spec.shuffle_seed}:{ns}{qid}:{start}").shuffle(window)
                docs_text.update({ns + d: texts[d] for d in window})
                items.append({"dataset": task.subset, "qid": ns + qid, "initial_list": [ns + d for d in window],
                              "window": [start, start + len(window)]})
    if not items:
        raise HarnessError(f"No candidates to label for task {spec.task!r} (empty first stage or --limit 0).")

    if spec.teacher == JUDGMENTS_TEACHER:
        rows = _label_from_judgments(items, queries_text, judgments, progress)
    else:
        if not spec.base_url:
            raise HarnessError(f"Teacher {spec.teacher!r} needs --base-url (an OpenAI-compatible server); use "
                               f"--teacher {JUDGMENTS_TEACHER} to label windows from the task's judgments instead.")
        backend = _teacher_backend(spec)
        try:
            rows = asyncio.run(_label_all(items, queries_text, docs_text, backend, tokenizer, spec, progress))
        finally:
            backend.close()

    report = _report(rows)
    out = Path(spec.out_dir)
    write_ranking_examples(out, RankingExamples(rows=rows, queries=queries_text, docs=docs_text))
    (out / "synthesis_report.json").write_text(
        json.dumps({**asdict(report), "spec": asdict(spec) | {"api_key": None}}, indent=2) + "\n", encoding="utf-8")
    return report


async def _label_all(items, queries, docs, backend: Backend, tokenizer, spec: SynthesisSpec,
                     progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    from rerankers import reasonrank

    done = 0
    params = SamplingParams(temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_tokens)

    async def label(item: dict[str, Any]) -> dict[str, Any]:
        nonlocal done
        query = queries[item["qid"]]
        passages = [_process_passage(docs[d], tokenizer, spec.passage_length) for d in item["initial_list"]]
        where = f"query {item['qid']}, window {item['window'][0]}-{item['window'][1]}"
        rank_messages = reasonrank.build_messages(query, passages)
        relevance_messages = _relevance_messages(query, passages)
        ranking, relevance = await asyncio.gather(
            backend.agenerate(GenerationRequest(_encode(rank_messages, spec, tokenizer), params, f"{where}, ranking")),
            backend.agenerate(GenerationRequest(_encode(relevance_messages, spec, tokenizer), params,
                                                f"{where}, relevance")),
        )
        reasoning, answer = split_reasoning(ranking)
        order, parsed = parse_ranking(answer, len(passages))
        relevant_idx = parse_relevant(split_reasoning(relevance)[1], len(passages))
        initial = item["initial_list"]
        done += 1
        if progress is not None:
            progress(done, len(items))
        return {
            "dataset": item["dataset"],
            "qid": item["qid"],
            "initial_list": initial,
            "final_list": [initial[i] for i in order],
            "reasoning": reasoning,
            "relevant_docids": [initial[i] for i in relevant_idx],
            "window": item["window"],
            "teacher": {"model": spec.teacher, "api": spec.api, "ranking_parsed": parsed,
                        "ranking_answer": answer.strip(), "finish_reason": ranking.finish_reason},
            "usage": {
                "input_tokens": ranking.input_tokens + relevance.input_tokens,
                "output_tokens": ranking.output_tokens + relevance.output_tokens,
                "seconds": round(ranking.seconds + relevance.seconds, 6),
                "calls": 2,
                "cached_calls": int(ranking.cached) + int(relevance.cached),
            },
        }

    return list(await asyncio.gather(*(label(item) for item in items)))


def judgments_rationale(query: str, relevant_positions: list[int]) -> str:
    """The templated rationale of the judgments teacher (identifiers are 1-based prompt positions)."""
    words = query.split()
    topic = " ".join(words[:12]).rstrip(".") + (" …" if len(words) > 12 else "")
    if not relevant_positions:
        return f"The query asks: {topic}. No passage answers it, so the first-stage order is kept."
    named = ", ".join(f"[{i}]" for i in relevant_positions)
    verb = "answers" if len(relevant_positions) == 1 else "answer"
    return (f"The query asks: {topic}. Passage {named} {verb} it directly, so it comes first; the other passages "
            "describe other things and keep their order.")


def _label_from_judgments(items, queries, judgments: dict[str, dict[str, int]],
                          progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    rows = []
    for done, item in enumerate(items, 1):
        initial = item["initial_list"]
        grades = judgments.get(item["qid"], {})
        relevant = [d for d in initial if grades.get(d, 0) > 0]
        # judged-relevant first by grade (stable: first-stage order among equals), then the rest in first-stage order
        final = sorted(relevant, key=lambda d: -grades[d]) + [d for d in initial if d not in relevant]
        positions = [initial.index(d) + 1 for d in sorted(relevant, key=lambda d: -grades[d])]
        rows.append({
            "dataset": item["dataset"], "qid": item["qid"], "initial_list": initial, "final_list": final,
            "reasoning": judgments_rationale(queries[item["qid"]], positions),
            "relevant_docids": relevant, "window": item["window"],
            "teacher": {"model": JUDGMENTS_TEACHER, "kind": JUDGMENTS_KIND, "api": None, "ranking_parsed": True,
                        "ranking_answer": " > ".join(f"[{initial.index(d) + 1}]" for d in final),
                        "finish_reason": "stop"},
            "usage": {"input_tokens": 0, "output_tokens": 0, "seconds": 0.0, "calls": 0, "cached_calls": 0},
        })
        if progress is not None:
            progress(done, len(items))
    return rows


# -- parsing the teacher -------------------------------------------------------------------------------------

def split_reasoning(generation: Generation) -> tuple[str, str]:
    """(reasoning, answer text) of a teacher reply.

    Chat APIs that separate reasoning put it in ``extra["reasoning"]``; otherwise the reasoning is the text
    inside ``<think>…</think>`` (or before a lone ``</think>``, as R1-style templates open the tag in the prompt).
    The answer is the ``<answer>`` content when present, else the text after the reasoning.
    """
    text = generation.text or ""
    reasoning = (generation.extra or {}).get("reasoning") or ""
    rest = text
    match = _THINK.search(text)
    if match:
        reasoning = reasoning or match.group(1)
        rest = text[match.end():]
    elif "</think>" in text:
        head, _, rest = text.partition("</think>")
        reasoning = reasoning or head
    answer = _ANSWER.search(rest)
    return reasoning.strip(), (answer.group(1) if answer else rest)


def parse_ranking(answer: str, n: int) -> tuple[list[int], bool]:
    """0-based permutation from ``[3] > [1] > …`` as inference parses it; ``parsed`` is False when no id was valid."""
    order: list[int] = []
    for token in "".join(c if c.isdigit() else " " for c in answer).split():
        try:
            idx = int(token) - 1
        except ValueError:
            continue
        if 0 <= idx < n and idx not in order:
            order.append(idx)
    parsed = bool(order)
    order += [i for i in range(n) if i not in order]
    return order, parsed


def parse_relevant(answer: str, n: int) -> list[int]:
    """0-based indices of ``[2] [4]``-style identifiers (``None`` or no ids → empty), in the teacher's order."""
    found: list[int] = []
    for token in re.findall(r"\[(\d+)\]", answer) or re.findall(r"\b(\d+)\b", answer):
        idx = int(token) - 1
        if 0 <= idx < n and idx not in found:
            found.append(idx)
    return found


# -- prompts and backends ------------------------------------------------------------------------------------

def _relevance_messages(query: str, passages: list[str]) -> list[dict[str, str]]:
    from rerankers import reasonrank

    query = reasonrank.process_query(query)
    num = len(passages)
    user = RELEVANCE_PROMPT.format(num=num, query=query) + "\n"
    user += "".join(f"[{i}] {p}\n" for i, p in enumerate(passages, 1))
    user += RELEVANCE_POST.format(query=query)
    return [{"role": "system", "content": reasonrank.SYSTEM_PROMPT}, {"role": "user", "content": user}]


def _process_passage(text: str, tokenizer, length: int) -> str:
    from rerankers import reasonrank
    from rerankers._text import fix_text, replace_number

    if tokenizer is not None:
        return reasonrank.process_passage(tokenizer, text, length)
    return replace_number(" ".join(fix_text(text.strip()).split(" ")[:length]))  # no tokenizer: first N words


def _encode(messages: list[dict[str, str]], spec: SynthesisSpec, tokenizer) -> str:
    if spec.api == "chat":
        return json.dumps(messages, ensure_ascii=False)
    from rerankers._text import fix_text

    return fix_text(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def _load_tokenizer(spec: SynthesisSpec):
    name = spec.tokenizer or (spec.teacher if spec.api == "completions" else None)
    if name is None:
        return None
    from harness.models import load_tokenizer

    return load_tokenizer(name)


def _teacher_backend(spec: SynthesisSpec) -> Backend:
    """The teacher behind the harness's OpenAI-compatible backend (chat or completions endpoint), cached."""
    from harness.backends import build_backend
    from harness.spec import ExecutionSpec

    engine = {"api": spec.api, **({"api_key": spec.api_key} if spec.api_key else {})}
    execution = ExecutionSpec(backend="openai", base_url=spec.base_url, concurrency=spec.concurrency,
                              cache=spec.cache, cache_dir=spec.cache_dir, backend_args=engine)
    return build_backend(spec.teacher, execution)


def _report(rows: list[dict[str, Any]]) -> SynthesisReport:
    report = SynthesisReport(examples=len(rows), per_domain={})
    for row in rows:
        usage = row["usage"]
        report.calls += usage["calls"]
        report.cached_calls += usage["cached_calls"]
        report.input_tokens += usage["input_tokens"]
        report.output_tokens += usage["output_tokens"]
        report.teacher_seconds += usage["seconds"]
        report.unparsed_rankings += int(not row["teacher"]["ranking_parsed"])
        report.per_domain[row["dataset"]] = report.per_domain.get(row["dataset"], 0) + 1
    report.teacher_seconds = round(report.teacher_seconds, 3)
    return report
