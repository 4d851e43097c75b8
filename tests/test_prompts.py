"""Byte-exact prompts of ReasonRank, RankZephyr and Rank1; expected strings are written by hand from the spec."""

from __future__ import annotations

import hashlib
import json

import pytest

from rerankers import rank1, rankzephyr, reasonrank
from rerankers._text import replace_number, truncate_tokens, truncate_words

# reasonrank.md §2, typed from the spec (including "you first thinks").
RR_SYSTEM = (
    "You are RankLLM, an intelligent assistant that can rank passages based on their relevance to the query. Given a "
    "query and a passage list, you first thinks about the reasoning process in the mind and then provides the answer "
    "(i.e., the reranked passage list). The reasoning process and answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>."
)


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from harness.models import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


def test_rendered_example_of_the_spec():
    expected = json.loads(
        '"I will provide you with 2 passages, each indicated by a numerical identifier []. Rank the passages based on '
        'their relevance to the search query: Why do cats purr (1)?.\\n\\n[1] Cats purr when content.\\n[2] See note '
        '(3) for details.\\nSearch Query: Why do cats purr (1)?.\\nRank the 2 passages above based on their relevance '
        'to the search query. All the passages should be included and listed using identifiers, in descending order '
        'of relevance. The format of the answer should be [] > [], e.g., [2] > [1]."'
    )
    passages = [replace_number(p) for p in ("Cats purr when content.", "See note [3] for details.")]
    messages = reasonrank.build_messages("  Why do cats purr [1]? ", passages)
    assert messages == [{"role": "system", "content": RR_SYSTEM}, {"role": "user", "content": expected}]


def test_full_reasonrank_prompt_with_chat_template_and_processing(tok):
    prompt = reasonrank.build_prompt(
        tok, " cafés &amp; [2] ", ["  It’s “ﬁne” cafÃ© see [3]  ", "a &amp; b", "x<y\nc &amp; d"])
    expected = (
        "<|im_start|>system\n" + RR_SYSTEM + "<|im_end|>\n"
        "<|im_start|>user\n"
        "I will provide you with 3 passages, each indicated by a numerical identifier []. Rank the passages based on "
        "their relevance to the search query: cafés &amp; (2).\n"
        "\n"
        "[1] It's \"fine\" café see (3)\n"
        "[2] a & b\n"
        "[3] x<y\nc &amp; d\n"
        "Search Query: cafés &amp; (2).\n"
        "Rank the 3 passages above based on their relevance to the search query. All the passages should be included "
        "and listed using identifiers, in descending order of relevance. The format of the answer should be [] > [], "
        "e.g., [2] > [1].<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert prompt == expected


def test_qwen3_mode_messages():
    messages = reasonrank.build_messages("q", ["p1"], mode="rank_GPT_qwen3")
    assert messages[0] == {"role": "system", "content": "You are RankLLM, an intelligent assistant that can rank "
                                                        "passages based on their relevance to the query."}
    assert messages[1]["content"] == (
        "I will provide you with 1 passages, each indicated by a numerical identifier []. Rank the passages based on "
        "their relevance to the search query: q.\n\n[1] p1\nSearch Query: q.\nRank the 1 passages above based on "
        "their relevance to the search query. All the passages should be included and listed using identifiers, in "
        "descending order of relevance. The final ranked list should be enclosed within <answer> </answer> tags, i.e., "
        "<answer> ranked list here </answer>. The format of ranked list should be [] > [], e.g., [2] > [1]. Only "
        "respond with the ranking results, do not say any word or explain."
    )


def test_replace_number_and_query_processing():
    assert replace_number("see [3], [12] and [a] or [ 3] or [-1]") == "see (3), (12) and [a] or [ 3] or [-1]"
    assert reasonrank.process_query("  Why [1]? \n") == "Why (1)?"
    assert rankzephyr.process_query("  Why [1]? ") == "  Why (1)? "  # rank_llm does not strip


def test_passage_processing_ftfy_entities_and_numbers(tok):
    assert reasonrank.process_passage(tok, "  cafÃ© [3]\r\nline  ") == "café (3)\nline"
    assert reasonrank.process_passage(tok, "a &amp; b\nx<y") == "a & b\nx<y"
    assert reasonrank.process_passage(tok, "x<y\na &amp; b") == "x<y\na &amp; b"  # entities off after a '<' line
    assert reasonrank.process_passage(tok, "e\u0301 \ufb01 tab\tnb\u00a0sp") == "\u00e9 fi tab\tnb\u00a0sp"


def test_truncation_at_512_tokens_cuts_inside_a_multibyte_character(tok):
    # Byte-level BPE: the emoji is 4 byte tokens in the tiny vocabulary; 'a' is one token.
    assert len(tok.tokenize("\U0001F600")) == 4 and len(tok.tokenize("a")) == 1
    text = "a" + "\U0001F600" * 200
    # 512 tokens = 'a' + 127 emojis (508 tokens) + 3 bytes of the 128th, which decode to one U+FFFD.
    assert truncate_tokens(tok, text, 512) == "a" + "\U0001F600" * 127 + "\ufffd"
    assert reasonrank.process_passage(tok, text) == "a" + "\U0001F600" * 127 + "\ufffd"
    assert reasonrank.process_passage(tok, "\U0001F600" * 200) == "\U0001F600" * 128
    assert reasonrank.process_passage(tok, "short text") == "short text"
    assert reasonrank.process_passage(tok, text, max_length=5) == "a\U0001F600"


def test_truncation_happens_before_replace_number(tok):
    # '[3]' is 3 tokens; cutting at 2 leaves '[3' which replace_number must not touch.
    assert tok.tokenize("[3]") == ["[", "3", "]"]
    assert reasonrank.process_passage(tok, "[3]", max_length=2) == "[3"
    assert reasonrank.process_passage(tok, "[3]", max_length=3) == "(3)"


def test_template_hash_is_pinned():
    assert reasonrank.PROMPT_TEMPLATE_HASH == reasonrank.template_hash("rank_GPT_reasoning")
    assert reasonrank.template_hash("rank_GPT_qwen3") != reasonrank.PROMPT_TEMPLATE_HASH
    assert reasonrank.PROMPT_TEMPLATE_HASH.startswith("sha256:")
    templates = [RR_SYSTEM,
                 "I will provide you with {num} passages, each indicated by a numerical identifier []. Rank the "
                 "passages based on their relevance to the search query: {query}.\n",
                 "[{rank}] {content}\n",
                 "Search Query: {query}.\nRank the {num} passages above based on their relevance to the search "
                 "query. All the passages should be included and listed using identifiers, in descending order of "
                 "relevance. The format of the answer should be [] > [], e.g., [2] > [1]."]
    assert reasonrank.PROMPT_TEMPLATE_HASH == "sha256:" + hashlib.sha256(json.dumps(templates).encode()).hexdigest()


# -- RankZephyr ----------------------------------------------------------------------------------------------------

ZEPHYR_SYSTEM = ("You are RankLLM, an intelligent assistant that can rank passages based on their relevancy to the "
                 "query")


def test_rankzephyr_messages_exact():
    passages = [rankzephyr.process_passage(p) for p in ("  one\n two   [4] ", "cafÃ©")]
    messages = rankzephyr.build_messages(" Why [1]?", passages)
    assert messages == [
        {"role": "system", "content": ZEPHYR_SYSTEM},
        {"role": "user", "content":
            "I will provide you with 2 passages, each indicated by a numerical identifier []. Rank the passages based "
            "on their relevance to the search query:  Why (1)?.\n"
            "[1] one two (4)\n"
            "[2] café\n"
            "Search Query:  Why (1)?.\n"
            "Rank the 2 passages above based on their relevance to the search query. All the passages should be "
            "included and listed using identifiers, in descending order of relevance. The output format should be "
            "[] > [], e.g., [2] > [1], Answer concisely and directly and only respond with the ranking results, do "
            "not say any word or explain."},
    ]


def test_rankzephyr_word_truncation_and_full_prompt(tok):
    assert truncate_words(" a  b\n\nc d ", 3) == "a b c"
    assert rankzephyr.process_passage("w " * 400) == " ".join(["w"] * 300)
    prompt, n_tokens, words = rankzephyr.build_prompt(tok, "q", ["p [1]"], max_words=300, context_size=4096)
    assert prompt == (
        "<|im_start|>system\n" + ZEPHYR_SYSTEM + "<|im_end|>\n<|im_start|>user\n"
        "I will provide you with 1 passages, each indicated by a numerical identifier []. Rank the passages based on "
        "their relevance to the search query: q.\n[1] p (1)\nSearch Query: q.\nRank the 1 passages above based on "
        "their relevance to the search query. All the passages should be included and listed using identifiers, in "
        "descending order of relevance. The output format should be [] > [], e.g., [2] > [1], Answer concisely and "
        "directly and only respond with the ranking results, do not say any word or explain.<|im_end|>\n"
        "<|im_start|>assistant\n")
    assert n_tokens == len(tok.encode(prompt)) and words == 300


# -- Rank1 ---------------------------------------------------------------------------------------------------------

def test_rank1_prompt_without_task_prompt():
    assert rank1.build_prompt("Why [1]?", "Some  passage\n") == (
        "Determine if the following passage is relevant to the query. Answer only with 'true' or 'false'.\n"
        "Query: Why [1]?\nPassage: Some  passage\n\n<think>")


@pytest.mark.parametrize("task, expected_query", [
    ("bright/biology",
     "Can you find background information about the concepts used to answer the question:\n\nQ\n\nA passage is "
     "relevant if it contains background information about a **sub-concept** that someone might cite/link to when "
     "answering the above question."),
    ("bright/aops",
     "Find different but similar math problems to Q\n\nA document is relevant if it uses the same class of "
     "functions and shares **any** overlapping techniques."),
    ("bright/theoremqa_theorems", "Find a passage which uses the same mathematical process as this one: Q"),
    ("bright/theoremqa_questions", "Find a passage which uses the same mathematical process as this one: Q"),
    ("bright/leetcode",
     "I am looking to find different problems that share similar data structures (of any kind) or algorithms (e.g. "
     "DFS, DP, sorting, traversals, etc.). I am looking for problems that share one or both of these similarities to "
     "this:\n    \nQ\n\nDoes this passage share any similarities? e.g. if there was a textbook on leetcode problems, "
     "this would be in the same book even though it could be in a different chapter. \n\n\n"),
    ("bright/pony",
     "I will use the programming language pony. Problem: Q\n\nBut to solve the problem above, I need to know things "
     "about pony. A passage is relevant if it contains docs that match **any** part (even basic parts) of the code I "
     "will have to write for the above program."),
    ("r2med/Biology", "Q"),
    ("tiny/tiny", "Q"),
])
def test_rank1_task_prompts(task, expected_query):
    """The dataset prompt comes from the task's declared protocol (never from its name)."""
    from tasks import resolve_tasks

    protocol = resolve_tasks(task)[0].protocol
    reranker = rank1.Rank1Reranker(backend=object(), tokenizer=object())
    assert reranker.pair_prompt("Q", "P", protocol) == (
        "Determine if the following passage is relevant to the query. Answer only with 'true' or 'false'.\n"
        f"Query: {expected_query}\nPassage: P\n<think>")


def test_rank1_fix_prompt():
    assert rank1.clean_reasoning("  It is about cats. Then the dog wa  ") == "It is about cats."
    assert rank1.clean_reasoning("Done!  ") == "Done!"
    assert rank1.clean_reasoning("no sentence end") == "no sentence end"
    assert rank1.fix_prompt("P<think>", "A? b") == "P<think>\nA?\n</think>"


# -- `harness prompt` ----------------------------------------------------------------------------------------------

def _prompt_cli(*args):
    import typer
    from typer.testing import CliRunner

    from harness.commands import prompt as prompt_command

    app = typer.Typer()
    prompt_command.register(app)
    app.command("noop")(lambda: None)  # two commands, so typer keeps the "prompt" sub-command name
    return CliRunner().invoke(app, ["prompt", *args])


def test_prompt_command_prints_the_exact_prompt(tiny_model_dir, tok):
    from tasks import resolve_tasks

    task = resolve_tasks("tiny")[0]
    result = _prompt_cli("--reranker", "reasonrank", "--model", str(tiny_model_dir), "--task", "tiny",
                         "--query", "q1", "--window", "0")
    assert result.exit_code == 0, result.output
    # first-stage order of q1; the fixture's third line has a docid with a space ("misc/noise 4")
    first_lines = [line.split(" ") for line in (task.path / "first_stage.trec").read_text().splitlines()
                   if line.startswith("q1 ")]
    docids = [" ".join(parts[2:-3]) for parts in first_lines]
    assert len(docids) == 10 and docids[2] == "misc/noise 4"
    texts = task.docs(docids)
    expected = reasonrank.build_prompt(tok, task.queries()["q1"], [texts[d] for d in docids])
    assert result.stdout == expected

    pair = _prompt_cli("--reranker", "rank1", "--model", str(tiny_model_dir), "--task", "tiny", "--query", "q1",
                       "--window", "3")
    assert pair.exit_code == 0 and pair.stdout == rank1.build_prompt(task.queries()["q1"], texts[docids[3]])

    bad = _prompt_cli("--reranker", "reasonrank", "--model", str(tiny_model_dir), "--task", "tiny", "--query", "q1",
                      "--window", "1")
    assert bad.exit_code != 0 and "--window must be 0..0" in str(bad.exception)
