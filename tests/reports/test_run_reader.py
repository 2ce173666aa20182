"""The run-folder reader the reports share: frames of entries and samples, and one-line errors."""

from __future__ import annotations

import json

import pytest
from jobs_helpers import make_run

from mmada_bench.errors import DataError
from mmada_bench.results.reader import RunFolder, data_fingerprint, sample_id


def test_entries_and_samples_frames(tmp_path):
    folder = RunFolder.open(make_run(tmp_path / "a", [1.0, 0.0, 1.0, 1.0], label="main"))
    assert folder.label == "main" and len(folder.keys()) == 1
    entries = folder.entries_frame()
    row = entries.iloc[0]
    assert (row["task"], row["n"], row["nfe"], row["nfe_per_sample"]) == ("gsm8k", 4, 16, 4.0)
    assert row["seconds_per_sample"] == 0.5 and row["tokens_per_second"] == 16.0 and row["setting.steps"] == 256
    samples = folder.samples_frame("gsm8k")
    assert list(samples["value"]) == [1.0, 0.0, 1.0, 1.0] and list(samples["sample"]) == ["0", "1", "2", "3"]
    assert set(samples["prompt_hash"]) == {f"h-prompt {i}" for i in range(4)}


def test_ids_and_fingerprints():
    assert sample_id({"task": "mmlu", "subtask": "mmlu_anatomy", "doc_id": 3}) == "mmlu_anatomy/3"
    assert sample_id({"task": "gsm8k", "subtask": "gsm8k", "doc_id": 3}) == "3"
    one = {"data": {"files_sha256": {"/a/x.jsonl": "abc"}}}
    moved = {"data": {"files_sha256": {"/elsewhere/x.jsonl": "abc"}}}
    assert data_fingerprint(one) == data_fingerprint(moved) != data_fingerprint({"data": {"files_sha256": {"p": "x"}}})
    assert data_fingerprint({}) is None


def test_bad_folders_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no results.json"):
        RunFolder.open(tmp_path)
    run = make_run(tmp_path / "a", [1.0, 0.0])
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "schema_version": 1}))
    with pytest.raises(DataError, match="schema_version 1, this mmada-bench reads 2"):
        RunFolder.open(run)
    broken = {**results, "tasks": {"gsm8k@x": {"task": "gsm8k"}}}
    (run / "results.json").write_text(json.dumps(broken))
    with pytest.raises(DataError, match="task entry 'gsm8k@x' lacks key, metrics"):
        RunFolder.open(run)
    (run / "results.json").write_text(json.dumps(results))
    samples = next((run / "samples").iterdir())
    samples.write_text(samples.read_text()[:-20])
    with pytest.raises(DataError, match="truncated"):
        RunFolder.open(run).sample_map("gsm8k")
    samples.write_text('{"task": "gsm8k", "doc_id": 0}\n{"task": "gsm8k", "doc_id": 0}\n')
    with pytest.raises(DataError, match="sample 0 appears twice"):
        RunFolder.open(run).sample_map("gsm8k")
