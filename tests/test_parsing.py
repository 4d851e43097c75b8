"""Parsing of listwise answers: every case of reasonrank.md §7 / rankzephyr.md §6, plus random fuzzing."""

from __future__ import annotations

import random

import pytest

from rerankers.rankzephyr import parse_permutation
from rerankers.reasonrank import parse_answer


def identity(n):
    return list(range(n))


def test_answer_regex_clean():
    out = parse_answer("<think>2 beats 1, 3 is off</think>\n <answer> [2] > [1] > [3] </answer>", 3)
    assert (out.order, out.parsed, out.source, out.fallback) == ([1, 0, 2], True, "answer_regex", None)


def test_answer_regex_is_case_insensitive_and_non_greedy():
    out = parse_answer("<THINK>a</Think><Answer>[3] > [1]</ANSWER> later <answer>[2]</answer>", 3)
    assert out.source == "answer_regex" and out.order == [2, 0, 1] and out.missing_appended == 1
    assert out.fallback == "permutation_repaired" and out.parsed


def test_worked_example_of_the_spec():
    out = parse_answer("<think>x</think><answer>[3] > [1] > [3] > [25]</answer>", 20)
    assert out.order == [2, 0, 1] + list(range(3, 20))
    assert (out.duplicates, out.out_of_range, out.missing_appended) == (1, 1, 18)


def test_last_answer_tag_includes_trailing_text():
    # No </think>: the regex fails; everything after the LAST <answer> is parsed, '</answer>' and trailing digits too.
    out = parse_answer("<think>reasoning with [1] <answer>[4] <answer>[2] > [1]</answer> and 3", 4)
    assert (out.source, out.parsed, out.fallback) == ("last_answer_tag", False, "last_answer_tag")
    assert out.order == [1, 0, 2, 3]


def test_last_answer_tag_is_case_sensitive():
    out = parse_answer("no think <ANSWER>[2] > [1]", 3)
    assert out.source == "whole_response" and out.order == [1, 0, 2]


def test_whole_response_when_reasoning_is_truncated():
    out = parse_answer("<think>Passage [3] mentions it, [1] does not, and 2024 is a year", 3)
    assert (out.source, out.parsed) == ("whole_response", False)
    assert out.order == [2, 0, 1] and out.out_of_range == 1


def test_empty_and_digitless_responses_keep_the_window():
    for text in ("", "\n" * 50, "no digits at all"):
        out = parse_answer(text, 5)
        assert out.order == identity(5) and out.source == "whole_response" and out.missing_appended == 5


def test_superscript_digit_leaves_window_unchanged():
    out = parse_answer("<think>x</think><answer>[2] > [1]² > [3]</answer>", 3)
    assert (out.order, out.parsed, out.source) == ([0, 1, 2], False, "int_error_window_unchanged")
    assert out.fallback == "int_error_window_unchanged"


def test_other_unicode_decimal_digits_are_read():
    assert parse_answer("<think></think><answer>[\u0662] > [1]</answer>", 3).order == [1, 0, 2]  # Arabic-Indic 2


def test_zero_and_huge_ids_are_out_of_range():
    out = parse_answer("<think></think><answer>[0] > [2] > [99999999999999999999]</answer>", 2)
    assert out.order == [1, 0] and out.out_of_range == 2


def test_rankzephyr_parsing():
    assert parse_permutation("[2] > [1] > [3]", 3) == ([1, 0, 2], True, None)
    assert parse_permutation("<think>[3] first</think>[2] > [1]", 3) == ([1, 0, 2], True, "permutation_repaired")
    assert parse_permutation("[\uff12] > [\u2460] > [\u2462]", 3)[0] == [1, 0, 2]  # fullwidth 2, circled 1, 3
    assert parse_permutation("[\u00b2] > [\u00b9]", 2)[0] == [1, 0]  # superscripts map to ASCII here
    assert parse_permutation("[\u2082] > [\u2776]", 2)[0] == [1, 0]  # subscript 2, negative circled 1
    assert parse_permutation("[\U0001F102] > [\U0001F101]", 2)[0] == [1, 0]  # digit-comma 2 and 1
    assert parse_permutation("", 4) == (identity(4), False, "no_ids_window_unchanged")
    assert parse_permutation("[2] > [2] > [9]", 3) == ([1, 0, 2], True, "permutation_repaired")


def test_rankzephyr_exception_keeps_window():
    assert parse_permutation("[2] > [1\u2079\u00b3\u2075\u2074]", 2)[0] == [1, 0]  # mapped to 19354: out of range
    # int() refuses digit strings over Python's 4300-digit limit: any exception keeps the window.
    assert parse_permutation("[2]" + "9" * 5000, 3) == (identity(3), False, "exception_window_unchanged")


_ALPHABET = list("0123456789 []>-,.\n\tab<>/") + ["<think>", "</think>", "<answer>", "</answer>", "<ANSWER>",
                                                  "\u00b2", "\u2460", "\uff13", "\u0663", "\u2082", "\U0001F101",
                                                  "\u2079", "\u00bd", "\u0130", "10", "20", "[1]", "[19]"]


@pytest.mark.parametrize("seed", range(5))
def test_fuzzed_outputs_never_crash_and_always_give_a_permutation(seed):
    rng = random.Random(seed)
    for _ in range(400):
        n = rng.randint(0, 25)
        text = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 80)))
        for order in (parse_answer(text, n).order, parse_permutation(text, n)[0]):
            assert sorted(order) == identity(n), (text, n, order)
