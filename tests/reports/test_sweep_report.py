"""Sweeps: invalid points refused with the nearest valid values before any work; the table holds exactly
the numbers the settings-dependent adapter makes; plots are written; the table can be rebuilt."""

from __future__ import annotations

import io

import pytest
from jobs_helpers import TOY, StepsAdapter

from mmada_bench.errors import ConfigError
from mmada_bench.reports.sweep import check_points, parse_grid, run_sweep, write_report
from mmada_bench.runner import RunConfig

PNG = b"\x89PNG\r\n\x1a\n"


def _config(out, **sampler) -> RunConfig:
    return RunConfig(model="steps", tasks=[TOY], output=out, progress=False, bootstrap_iters=50,
                     sampler={k: str(v) for k, v in sampler.items()})


def test_grid_parsing_and_refusals():
    assert parse_grid(["steps=2,4", "block_length=8"]) == {"steps": ["2", "4"], "block_length": ["8"]}
    for bad in (["steps"], ["steps="], ["steps=2,2"], ["steps=2", "steps=4"], []):
        with pytest.raises(ConfigError):
            parse_grid(bad)


def test_invalid_points_are_listed_with_the_nearest_valid_values(toy):
    ok, skipped = check_points(parse_grid(["steps=2,3,4,5"]), {}, [TOY])  # gen 8 / block 4: 2 blocks
    assert [p.name for p in ok] == ["steps=2", "steps=4"]
    assert [s.point.name for s in skipped] == ["steps=3", "steps=5"]
    assert "nearest valid steps is 2 or 4" in skipped[0].reason
    assert "nearest valid steps is 4 or 6" in skipped[1].reason
    ok, skipped = check_points(parse_grid(["block_length=3,4"]), {}, [TOY])
    assert [p.name for p in ok] == ["block_length=4"]
    assert "nearest valid block_length is 2 or 4" in skipped[0].reason
    with pytest.raises(ConfigError, match="unknown sampler setting 'stepz'"):
        check_points(parse_grid(["stepz=2"]), {}, [TOY])
    with pytest.raises(ConfigError, match="block_length"):  # the base settings must be valid themselves
        check_points(parse_grid(["steps=2"]), {"block_length": "3"}, [TOY])


def test_sweep_table_holds_the_expected_numbers_and_plots(toy, tmp_path):
    adapter = StepsAdapter()
    log = io.StringIO()
    report = run_sweep(_config(tmp_path / "sweep"), parse_grid(["steps=2,3,4,8"]), adapter=adapter, out=log)
    assert "skipping steps=3" in log.getvalue() and "nearest valid steps is 2 or 4" in log.getvalue()
    frame = report["frame"].set_index("point")
    assert list(frame.index) == ["steps=2", "steps=4", "steps=8"]
    assert not (tmp_path / "sweep" / "steps=3").exists()
    for steps in (2, 4, 8):
        row = frame.loc[f"steps={steps}"]
        assert row["task"] == TOY and row["metric"] == "exact_match" and row["n"] == 8
        assert row["value"] == steps / 8 and row["points"] == pytest.approx(100 * steps / 8)
        assert row["steps"] == steps and row["nfe"] == 8 * steps and row["nfe_per_sample"] == steps
        assert row["tokens_per_forward"] == pytest.approx(8 / steps)
        assert row["seconds_per_sample"] == pytest.approx(steps / 1000)
        assert row["tokens_per_second"] == pytest.approx(8 / (steps / 1000))
        assert row["stderr"] is not None and (row["stderr"] > 0) == (steps < 8)
    md = report["paths"]["md"].read_text()
    assert "| steps=4 | jobs_toy | exact_match | 50.0 ± " in md and "`steps=3`" in md
    csv = report["paths"]["csv"].read_text().splitlines()
    assert csv[0].startswith("point,steps,task,metric") and len(csv) == 4
    for name in ("plot_steps", "plot_seconds"):
        data = report["paths"][name].read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    # rebuilt from the folders alone: same numbers
    again = write_report(tmp_path / "sweep")["frame"]
    assert again[["point", "value", "nfe"]].equals(report["frame"][["point", "value", "nfe"]])


def test_two_key_grid_and_resume(toy, tmp_path):
    adapter = StepsAdapter()
    config = _config(tmp_path / "sweep", gen_length=8)
    grid = parse_grid(["steps=2,4", "block_length=4,8"])
    report = run_sweep(config, grid, adapter=adapter, out=io.StringIO())
    frame = report["frame"]
    assert list(frame["point"]) == ["steps=2,block_length=4", "steps=2,block_length=8", "steps=4,block_length=4",
                                    "steps=4,block_length=8"]
    assert list(frame["value"]) == [0.25, 0.25, 0.5, 0.5]
    calls = len(adapter.calls)
    assert calls == 4 * 8
    run_sweep(config, grid, adapter=adapter, out=io.StringIO())  # a rerun resumes: nothing recomputed
    assert len(adapter.calls) == calls
