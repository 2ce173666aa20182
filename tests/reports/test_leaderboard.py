"""Leaderboards: OpenCompass's summary shape with one column per run, exact cells, protocol differences
footnoted, and the paper's numbers only in separate marked columns."""

from __future__ import annotations

import io

import pytest
from jobs_helpers import TOY, fixed_adapter, make_run

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.reports.leaderboard import write_leaderboard
from mmada_bench.reports.reported import reported_models
from mmada_bench.runner import RunConfig, run_suite


def test_measured_runs_with_a_protocol_outlier(toy, tmp_path):
    runs = []
    for name, right, sampler in (("alpha", 2, {}), ("beta", 5, {}), ("gamma", 7, {"steps": "4"})):
        config = RunConfig(model=name, tasks=[TOY], output=tmp_path / name, progress=False, bootstrap_iters=50,
                           sampler=sampler)
        run_suite(config, adapter=fixed_adapter(right, name), out=io.StringIO())
        runs.append(tmp_path / name)
    report = write_leaderboard(runs, tmp_path / "board")
    frame = report["frame"]
    assert list(frame.columns) == ["dataset", "version", "metric", "mode", "alpha", "beta", "gamma", "notes"]
    row = frame.iloc[0]
    assert (row["dataset"], row["metric"], row["mode"]) == (TOY, "exact_match", "gen")
    assert (row["alpha"], row["beta"], row["gamma"]) == (25.0, 62.5, 87.5)
    assert report["footnotes"] == [f"gamma on {TOY} exact_match: sampler settings steps=4 (row: 8)"]
    md = report["paths"]["md"].read_text()
    assert "| 25.00 | 62.50 | 87.50 [1] |" in md and "[1] gamma on jobs_toy" in md
    assert "(paper)" not in md
    assert report["paths"]["csv"].read_text().splitlines()[1].endswith(",25.0,62.5,87.5,[1]")


def test_reported_columns_and_every_protocol_field(tmp_path):
    base = dict(task="gsm8k", settings={"steps": 256}, num_fewshot=5)
    a = make_run(tmp_path / "a", [1, 1, 1, 0], label="a", **base)
    b = make_run(tmp_path / "b", [1, 0, 0, 0], label="b", **base)
    c = make_run(tmp_path / "c", [1, 1, 0, 0], label="c", task="gsm8k", settings={"steps": 256}, num_fewshot=0,
                 data="other", rule="other rule")
    report = write_leaderboard([a, b, c], tmp_path / "board", reported_models("MMaDA-8B,LLaDA-8B"))
    frame = report["frame"]
    assert list(frame.columns)[4:] == ["a", "b", "c", "MMaDA-8B (paper)", "LLaDA-8B (paper)", "notes"]
    row = frame.iloc[0]
    assert (row["a"], row["b"], row["c"]) == (75.0, 25.0, 50.0)
    assert (row["MMaDA-8B (paper)"], row["LLaDA-8B (paper)"]) == (73.4, 70.7)
    (note,) = report["footnotes"]
    assert note.startswith("c on gsm8k acc: few-shot 0 (row: 5); data hash ") and "scorer rule other rule (row: lm-eval acc)" in note
    md = report["paths"]["md"].read_text()
    assert "| 75.00 | 25.00 | 50.00 [1] | 73.40 | 70.70 |" in md
    assert "not measured here" in md
    with pytest.raises(ConfigError, match="unknown model 'GPT'"):
        reported_models("GPT")


def test_paper_columns_without_any_matching_row_are_dropped(tmp_path):
    a = make_run(tmp_path / "a", [1, 0], task="toy_only")
    frame = write_leaderboard([a], tmp_path / "board", reported_models("all"))["frame"]
    assert not any(c.endswith("(paper)") for c in frame.columns)


def test_a_folder_with_two_entries_of_a_task_is_refused(tmp_path):
    a = make_run(tmp_path / "a", [1, 0], settings={"steps": 8})
    make_run(tmp_path / "a", [1, 1], settings={"steps": 16})
    with pytest.raises(DataError, match="more than one entry of gsm8k"):
        write_leaderboard([a], tmp_path / "board")


def test_understanding_accuracies_stored_in_points_are_not_scaled_twice(tmp_path):
    """VLMEvalKit's (and so our MMU tasks') accuracies are x100 already: the board shows them as stored,
    while lm-eval-style proportions in [0, 1] are shown x100 -- both land in points."""
    from pathlib import Path

    from mmada_bench.adapters.fixed import FixedAnswerAdapter

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "mmu_samples"
    config = RunConfig(model="fixed", tasks=["gqa"], output=tmp_path / "gqa", data_dir=fixtures, limit=4,
                       progress=False, bootstrap_iters=0)
    # the first four gold answers are green, yes, triangle, left: answering "yes" everywhere scores 1 of 4
    results = run_suite(config, adapter=FixedAnswerAdapter({}, default="yes"), out=io.StringIO())
    stored = next(iter(results["tasks"].values()))["metrics"]["Overall/acc"]
    assert stored["unit"] == "points" and stored["value"] == pytest.approx(25.0)
    frame = write_leaderboard([tmp_path / "gqa"], tmp_path / "board")["frame"]
    cell = frame[frame["metric"] == "Overall/acc"].iloc[0][frame.columns[4]]
    assert cell == pytest.approx(25.0)
