from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.trec import format_run, read_run, write_run


def test_docids_with_spaces_duplicates_and_malformed_lines_are_counted():
    lines = [
        "4 Q0 pytorch_torch_tensor_functions/Memory Management_2_0.txt 2 0.5 reasonir",
        "4 Q0 a 1 0.9 reasonir",
        "4 Q0 a 3 0.4 reasonir",
        "garbage",
        "5 Q0 b 1 notanumber x",
    ]
    run, report = read_run(lines)
    assert run == {"4": [("a", 0.9), ("pytorch_torch_tensor_functions/Memory Management_2_0.txt", 0.5)]}
    assert report == {"docids_with_spaces": 1, "duplicate_docids": 1, "malformed_lines": 2}
    ref, ref_report = read_run(lines, mode="reference")
    assert ref == {"4": [("a", 0.9)]}
    assert ref_report["dropped_lines"] == 1


def test_round_trip_is_deterministic_and_in_evaluation_order(tmp_path):
    run = {"q": [("b", 1.0), ("a", 1.0), ("c", 2.0), ("with space", 0.5)]}
    path = write_run(tmp_path / "r.trec", run, "t")
    text = path.read_text()
    assert text.splitlines()[:3] == ["q Q0 c 1 2.0 t", "q Q0 b 2 1.0 t", "q Q0 a 3 1.0 t"]
    again, report = read_run(path)
    assert again["q"] == [("c", 2.0), ("b", 1.0), ("a", 1.0), ("with space", 0.5)]
    assert format_run(again, "t") == text


def test_missing_file_and_bad_mode():
    with pytest.raises(HarnessError, match="does not exist"):
        read_run("/nonexistent/run.trec")
    with pytest.raises(HarnessError, match="mode"):
        read_run([], mode="strict")
