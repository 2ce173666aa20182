"""The results store: the request log survives kills, output folders refuse another model's run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmada_bench.engine.request_log import RequestLog
from mmada_bench.errors import ConfigError
from mmada_bench.jsonio import to_jsonable
from mmada_bench.results import ResultsStore
from mmada_bench.scorers.bootstrap import bootstrap_stderr


def _rec(key: str, answer="x") -> dict:
    return {"key": key, "answer": answer}


def test_appended_records_are_on_disk_immediately(tmp_path):
    log = RequestLog(tmp_path)
    log.append([_rec("a"), _rec("b")])
    text = (tmp_path / "rank0.jsonl").read_text()  # read while the log is still open
    assert [json.loads(line)["key"] for line in text.splitlines()] == ["a", "b"]
    assert "a" in log and log.get("b")["answer"] == "x"


def test_line_cut_short_by_a_kill_is_ignored_and_not_glued_to_the_next(tmp_path):
    path = tmp_path / "rank0.jsonl"
    path.write_text(json.dumps(_rec("a")) + "\n" + '{"key": "b", "ans')
    log = RequestLog(tmp_path)
    assert set(log.index) == {"a"} and log.skipped_lines == 1
    log.append([_rec("c")])
    log.close()
    lines = path.read_text().splitlines()
    assert lines[0] == json.dumps(_rec("a")) and lines[1] == '{"key": "b", "ans' and json.loads(lines[2])["key"] == "c"
    assert set(RequestLog(tmp_path).index) == {"a", "c"}


def test_index_spans_every_process_log(tmp_path):
    RequestLog(tmp_path, rank=0).append([_rec("a")])
    RequestLog(tmp_path, rank=1).append([_rec("b")])
    assert set(RequestLog(tmp_path, rank=0).index) == {"a", "b"}


def test_output_folder_is_claimed_for_one_model_and_seed(tmp_path):
    store = ResultsStore(tmp_path / "run")
    assert store.claim({"model": {"w": "1"}, "seed": 1}) is False
    assert store.claim({"model": {"w": "1"}, "seed": 1}) is True
    with pytest.raises(ConfigError, match="holds a run with a different model"):
        store.claim({"model": {"w": "2"}, "seed": 1})
    with pytest.raises(ConfigError, match="different seed"):
        store.claim({"model": {"w": "1"}, "seed": 2})


def test_results_and_samples_are_written_atomically_as_plain_json(tmp_path):
    store = ResultsStore(tmp_path)
    store.merge_results({"v": np.float64(0.5), "n": np.int64(3), "bad": float("nan")})
    assert json.loads(store.results_path.read_text()) == {"schema_version": 2, "v": 0.5, "n": 3, "bad": None,
                                                          "tasks": {}}
    store.write_samples("t", [{"a": 1}, {"a": 2}])
    assert store.read_samples("t") == [{"a": 1}, {"a": 2}]
    assert not list(tmp_path.rglob("*.tmp"))


def test_bootstrap_stderr_matches_the_analytic_value():
    values = [1.0] * 30 + [0.0] * 70
    analytic = (0.3 * 0.7 / 100) ** 0.5
    assert bootstrap_stderr(values, iters=2000, seed=0) == pytest.approx(analytic, rel=0.1)
    assert bootstrap_stderr(values, iters=500, seed=3) == bootstrap_stderr(values, iters=500, seed=3)
    assert bootstrap_stderr([1.0], iters=100) is None and bootstrap_stderr(values, iters=0) is None
    assert to_jsonable((np.bool_(True), {"x": np.arange(2)})) == [True, {"x": [0, 1]}]
