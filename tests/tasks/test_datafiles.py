"""Reading and validating data files: every malformed input names its file, line and field."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.tasks.datafiles import Field, find_split_file, iter_rows, read_validated

FIELDS = (Field("question", str), Field("answer", int, lambda v: None if v >= 0 else "must be >= 0"))


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_jsonl_rows_carry_their_line_numbers(tmp_path):
    path = _write(tmp_path / "test.jsonl", ['{"question": "a", "answer": 1}', "", '{"question": "b", "answer": 2}'])
    rows = read_validated(path, FIELDS)
    assert [r.data["question"] for r in rows] == ["a", "b"]
    assert [r.where for r in rows] == [f"{path}:1", f"{path}:3"]


def test_bad_json_line_names_file_and_line(tmp_path):
    path = _write(tmp_path / "test.jsonl", ['{"question": "a", "answer": 1}', '{"question": "b", "answer": '])
    with pytest.raises(DataError) as err:
        read_validated(path, FIELDS)
    message = str(err.value)
    assert message.startswith(f"{path}:2: invalid JSON")
    assert "\n" not in message


def test_missing_field_names_file_line_and_field(tmp_path):
    path = _write(tmp_path / "test.jsonl", ['{"question": "a", "answer": 1}', '{"question": "b"}'])
    with pytest.raises(DataError, match=r":2: missing field 'answer' \(fields present: question\)"):
        read_validated(path, FIELDS)


def test_wrong_type_and_failed_check_are_reported(tmp_path):
    path = _write(tmp_path / "a.jsonl", ['{"question": "a", "answer": "1"}'])
    with pytest.raises(DataError, match=r"a.jsonl:1: field 'answer' must be an int, got str '1'"):
        read_validated(path, FIELDS)
    path = _write(tmp_path / "b.jsonl", ['{"question": "a", "answer": -3}'])
    with pytest.raises(DataError, match=r"b.jsonl:1: field 'answer' must be >= 0"):
        read_validated(path, FIELDS)
    path = _write(tmp_path / "c.jsonl", ['{"question": "a", "answer": true}'])
    with pytest.raises(DataError, match="must be an int, got bool"):
        read_validated(path, FIELDS)


def test_non_object_line_and_empty_file(tmp_path):
    with pytest.raises(DataError, match=r"x.jsonl:1: expected a JSON object, got list"):
        read_validated(_write(tmp_path / "x.jsonl", ["[1, 2]"]), FIELDS)
    with pytest.raises(DataError, match="no rows"):
        read_validated(_write(tmp_path / "y.jsonl", [""]), FIELDS)


def test_parquet_rows_are_plain_python_and_errors_name_the_row(tmp_path):
    path = tmp_path / "test.parquet"
    pd.DataFrame({"question": ["a", "b"], "answer": [1, -1], "choices": [["x", "y"], ["z", "w"]]}).to_parquet(path)
    rows = list(iter_rows(path))
    assert rows[0].data == {"question": "a", "answer": 1, "choices": ["x", "y"]}
    assert isinstance(rows[0].data["answer"], int)
    with pytest.raises(DataError, match=r"test.parquet:row 2: field 'answer' must be >= 0"):
        read_validated(path, FIELDS)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        list(iter_rows(bad))


def test_split_lookup(tmp_path):
    assert find_split_file(tmp_path, "test") is None
    (tmp_path / "test.jsonl").write_text(json.dumps({"q": 1}) + "\n")
    assert find_split_file(tmp_path, "test") == tmp_path / "test.jsonl"
    (tmp_path / "test.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match="keep one file per split"):
        find_split_file(tmp_path, "test")
