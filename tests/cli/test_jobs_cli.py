"""The four jobs from the command line, in process: a real (tiny) sweep on the CPU, then stage table,
leaderboard and gate over its folders, and bad folders giving one line and exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmada_bench.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory, tiny_path):
    """``mmada-bench sweep`` of gsm8k on the tiny preset: steps 2 and 4 run, steps 3 is skipped."""
    cache = tmp_path_factory.mktemp("hf")
    patch = pytest.MonkeyPatch()
    for name, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("HF_HOME", str(cache)),
                        ("HF_DATASETS_CACHE", str(cache / "datasets"))):
        patch.setenv(name, value)
    import datasets

    patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "datasets")
    out = tmp_path_factory.mktemp("jobs") / "sweep"
    try:
        code = main(["sweep", "--model", str(tiny_path), "--tasks", "gsm8k", "--sample-data", "--limit", "2",
                     "--num-fewshot", "1", "--sampler", "gen_length=16,block_length=8", "--grid", "steps=2,3,4",
                     "--batch-size", "2", "--bootstrap-iters", "20", "--no-progress", "--output", str(out)])
    finally:
        patch.undo()
    assert code == 0
    return out


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_four_jobs(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("sweep", "stages", "leaderboard", "regress"):
        assert command in out


def test_tiny_sweep_writes_table_and_plots(sweep_dir):
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert [p["name"] for p in manifest["points"]] == ["steps=2", "steps=4"]
    (skipped,) = manifest["skipped"]
    assert skipped["name"] == "steps=3" and "nearest valid steps is 2 or 4" in skipped["reason"]
    import pandas as pd

    table = pd.read_csv(sweep_dir / "sweep.csv")
    primary = table[table["primary"]].set_index("point")
    assert list(primary.index) == ["steps=2", "steps=4"]
    assert list(primary["n"]) == [2, 2] and list(primary["nfe_per_sample"]) == [2.0, 4.0]
    assert list(primary["tokens_per_forward"]) == [8.0, 4.0]  # 16 tokens over 2 or 4 forward passes
    assert (primary["seconds_per_sample"] > 0).all() and (primary["tokens_per_second"] > 0).all()
    assert "| steps=4 | gsm8k | exact_match,flexible-extract |" in (sweep_dir / "sweep.md").read_text()
    for name in ("sweep_steps.png", "sweep_seconds.png"):
        data = (sweep_dir / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000


def test_all_points_invalid_is_refused_before_any_work(tmp_path, capsys):
    code, out, err = _run(capsys, "sweep", "--model", "no-such-model", "--tasks", "gsm8k", "--sample-data",
                          "--sampler", "gen_length=16,block_length=8", "--grid", "steps=3,5", "--output", tmp_path / "s")
    assert code == 2
    assert "skipping steps=3: task gsm8k: steps=3 is not a multiple" in out and "nearest valid steps is 4 or 6" in out
    assert err.count("\n") == 1 and "no grid point can run" in err
    assert not (tmp_path / "s" / "steps=3").exists()


def test_stages_leaderboard_and_regress_over_the_sweep(sweep_dir, tmp_path, capsys):
    two, four = sweep_dir / "steps=2", sweep_dir / "steps=4"
    code, out, _ = _run(capsys, "stages", "--model", f"early={two},late={four}", "--output", tmp_path / "st")
    assert code == 0 and "| early | 0.0 ± 0.0 |" in out and (tmp_path / "st" / "stages.png").read_bytes().startswith(PNG)
    code, out, _ = _run(capsys, "leaderboard", two, four, "--output", tmp_path / "lb", "--reported")
    assert code == 0 and "MMaDA-8B (paper)" in out and "73.40" in out
    assert "sampler settings steps=4 (first column: 2)" in out
    code, out, _ = _run(capsys, "regress", two, four, "--report", tmp_path / "gate.md")
    assert code == 0 and "sampler steps 2 -> 4" in out and (tmp_path / "gate.md").is_file()
    code, out, _ = _run(capsys, "sweep", "--output", sweep_dir, "--report-only")
    assert code == 0 and "steps=4" in out


@pytest.mark.parametrize("defect", ["missing results.json", "schema version", "truncated samples"])
def test_bad_run_folders_give_one_line_and_exit_2(sweep_dir, tmp_path, capsys, defect):
    good = sweep_dir / "steps=2"
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    if defect == "missing results.json":
        (bad / "results.json").unlink()
    elif defect == "schema version":
        results = json.loads((bad / "results.json").read_text())
        (bad / "results.json").write_text(json.dumps({**results, "schema_version": 1}))
    else:
        samples = next((bad / "samples").iterdir())
        samples.write_bytes(samples.read_bytes()[:-30])
    for argv in (("regress", good, bad), ("leaderboard", good, bad, "--output", tmp_path / "lb")):
        code, _, err = _run(capsys, *argv)
        if defect == "truncated samples" and argv[0] == "leaderboard":
            assert code == 0  # a leaderboard reads results only
            continue
        assert code == 2 and err.count("\n") == 1 and str(bad) in err, (argv, err)


def test_missing_folder_for_stages_is_one_line(tmp_path, capsys):
    code, _, err = _run(capsys, "stages", "--model", f"a={Path(tmp_path / 'nowhere')}", "--output", tmp_path / "o")
    assert code == 2 and err.count("\n") == 1 and "--tasks" in err
