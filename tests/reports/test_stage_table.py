"""Stage tables: rows stages in order, each cell the stage's score, deltas to the row above; stages may be
models to run or existing run folders; a bar plot is written."""

from __future__ import annotations

import io

import pytest
from jobs_helpers import TOY, fixed_adapter

from mmada_bench.errors import ConfigError
from mmada_bench.reports.stages import parse_stages, run_stages, write_stage_report
from mmada_bench.results.reader import RunFolder
from mmada_bench.runner import RunConfig, run_suite

PNG = b"\x89PNG\r\n\x1a\n"
RIGHT = {"stage1": 2, "stage2": 5, "stage3": 7}  # of 8 toy questions


def _config(name: str, out) -> RunConfig:
    return RunConfig(model=name, tasks=[TOY], output=out, progress=False, bootstrap_iters=50)


def test_parse_stages():
    assert parse_stages("a=x, b=y/z") == [("a", "x"), ("b", "y/z")]
    for bad in ("a", "a=", "a=x,a=y", ""):
        with pytest.raises(ConfigError):
            parse_stages(bad)


def test_stage_table_from_models_and_run_folders(toy, tmp_path):
    # stage1 is an existing run folder; stages 2 and 3 are "checkpoints" the table runs itself
    run_suite(_config("stage1", tmp_path / "earlier"), adapter=fixed_adapter(RIGHT["stage1"], "stage1"), out=io.StringIO())
    stages = [("stage1", str(tmp_path / "earlier")), ("stage2", "ckpt2"), ("stage3", "ckpt3")]
    made = []

    def config_for(name, model):
        made.append((name, model))
        return _config(model, tmp_path / "table" / name)

    runs = run_stages(stages, config_for, adapter_for=lambda c: fixed_adapter(RIGHT[f"stage{c.model[-1]}"], c.model),
                      out=io.StringIO())
    assert made == [("stage2", "ckpt2"), ("stage3", "ckpt3")]
    assert isinstance(runs[2][1], RunFolder) and runs[2][1].path == tmp_path / "table" / "stage3"
    report = write_stage_report(runs, tmp_path / "table")
    frame = report["frame"]
    assert list(frame["stage"]) == ["stage1", "stage2", "stage3"]
    assert list(frame["points"]) == [25.0, 62.5, 87.5]
    assert frame["delta"].tolist()[1:] == [37.5, 25.0] and frame["delta"].isna().tolist()[0]
    md = report["paths"]["md"].read_text()
    assert "| stage2 | 62.5 ± " in md and "(+37.5) |" in md and "(+25.0) |" in md
    assert report["paths"]["csv"].read_text().count("\n") == 4
    data = report["paths"]["plot"].read_bytes()
    assert data.startswith(PNG) and len(data) > 5000


def test_missing_task_in_a_stage_is_a_dash(tmp_path):
    from jobs_helpers import make_run

    a = make_run(tmp_path / "a", [1, 0, 0, 0], task="gsm8k")
    b = make_run(tmp_path / "b", [1, 1, 0, 0], task="mmlu")
    report = write_stage_report([("a", RunFolder.open(a)), ("b", RunFolder.open(b))], tmp_path / "out")
    md = report["paths"]["md"].read_text()
    assert "| a | 25.0 ± 25.0 | - |" in md and "| b | - | 50.0 ± 28.9 |" in md
    assert "Not made the same way" not in md


def test_protocol_changes_between_stages_are_noted(tmp_path):
    from jobs_helpers import make_run

    a = make_run(tmp_path / "a", [1, 0, 0, 0], settings={"steps": 256})
    b = make_run(tmp_path / "b", [1, 1, 0, 0], settings={"steps": 64}, num_fewshot=0)
    md = write_stage_report([("a", RunFolder.open(a)), ("b", RunFolder.open(b))], tmp_path / "out")["paths"]["md"]
    assert "- b / gsm8k: few-shot, sampler settings differ from a" in md.read_text()
