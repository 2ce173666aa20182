"""The command line: help, task listing, and one-line errors with a non-zero exit for bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from mmada_bench.cli import main
from mmada_bench.tasks.text import SAMPLE_DATA_DIR


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for command in ("run", "tasks", "inspect", "lm-eval"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    run_help = capsys.readouterr().out
    for flag in ("--model", "--tasks", "--data-dir", "--limit", "--batch-size", "--device", "--dtype", "--seed",
                 "--output", "--sampler", "--sample-data"):
        assert flag in run_help


def test_tasks_lists_the_four_text_tasks(capsys):
    code, out, _ = _run(capsys, "tasks")
    assert code == 0
    for name in ("mmlu", "gsm8k", "math", "gpqa"):
        assert any(line.startswith(name + " ") for line in out.splitlines())
    code, out, _ = _run(capsys, "tasks", "--json")
    specs = {s["name"]: s for s in json.loads(out)}
    assert specs["gsm8k"]["splits"] == {"eval": "test", "fewshot": "train"} and specs["math"]["num_fewshot"] == 4


@pytest.fixture
def data(tmp_path):
    target = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA_DIR, target, ignore=shutil.ignore_patterns("README.md"))
    return target


def _one_line_error(code: int, err: str) -> str:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_bad_json_line_is_one_line_naming_file_and_line(capsys, data, tmp_path):
    path = data / "gsm8k" / "test.jsonl"
    path.write_text(path.read_text() + '{"question": "broken\n')
    code, _, err = _run(capsys, "run", "--model", str(tmp_path / "no-model"), "--tasks", "gsm8k",
                        "--data-dir", str(data), "--output", str(tmp_path / "out"))
    line = _one_line_error(code, err)
    assert f"{path}:7: invalid JSON" in line  # data is checked before the (missing) model is looked at


def test_missing_column_is_one_line_naming_file_line_and_field(capsys, data, tmp_path):
    path = data / "mmlu" / "test.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    del rows[2]["choices"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err = _run(capsys, "run", "--model", "tiny", "--tasks", "gsm8k,mmlu", "--data-dir", str(data),
                        "--output", str(tmp_path / "out"))
    assert f"{path}:3: missing field 'choices'" in _one_line_error(code, err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "gsm8k,nope"], "unknown task 'nope'"),
        (["--tasks", "gsm8k", "--sampler", "steps=abc"], "steps: cannot use 'abc'"),
        (["--tasks", "gsm8k", "--batch-size", "0"], "--batch-size must be >= 1"),
        (["--tasks", "gsm8k", "--data-dir", "/nonexistent/data"], "is not a folder"),
    ],
)
def test_bad_options_fail_with_one_line(capsys, tmp_path, args, message):
    code, _, err = _run(capsys, "run", "--model", "tiny", "--output", str(tmp_path / "o"), *args)
    assert message in _one_line_error(code, err)


def test_bad_flag_values_are_argparse_errors_on_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", "tiny", "--tasks", "gsm8k", "--output", str(tmp_path / "o"), "--limit", "-1"])
    assert "--limit must be a positive finite number" in _one_line_error(exit_info.value.code, capsys.readouterr().err)


def test_task_folder_without_its_data_is_a_data_error(capsys, data, tmp_path):
    shutil.rmtree(data / "gpqa")
    code, _, err = _run(capsys, "run", "--model", "tiny", "--tasks", "gpqa", "--data-dir", str(data),
                        "--output", str(tmp_path / "o"))
    assert f"{data / 'gpqa'} not found" in _one_line_error(code, err)


def test_lm_eval_commands_export_tasks_and_install_the_plugin(capsys, tmp_path):
    code, out, _ = _run(capsys, "lm-eval", "export-tasks", "--sample-data", "--tasks", "gsm8k,math",
                        "--out", str(tmp_path / "tasks"))
    assert code == 0 and "--tasks gsm8k,minerva_math" in out
    assert (tmp_path / "tasks" / "gsm8k" / "gsm8k.yaml").is_file()
    assert (tmp_path / "tasks" / "math" / "group_minerva_math.yaml").is_file()
    code, out, _ = _run(capsys, "lm-eval", "install-plugin", "--site-dir", str(tmp_path))
    assert code == 0 and (tmp_path / "mmada_bench_lm_eval.pth").read_text().startswith("import importlib.util")
    code, out, _ = _run(capsys, "lm-eval", "install-plugin", "--site-dir", str(tmp_path), "--uninstall")
    assert code == 0 and not (tmp_path / "mmada_bench_lm_eval.pth").exists()


def test_sampler_overrides_can_target_one_task():
    from mmada_bench.errors import ConfigError
    from mmada_bench.runner import check_sampler, sampler_overrides

    assignments = {"steps": "64", "gpqa.mc_num": "16", "gsm8k.steps": "32"}
    assert sampler_overrides(assignments, "gsm8k") == {"steps": "32"}
    assert sampler_overrides(assignments, "gpqa") == {"steps": "64", "mc_num": "16"}
    check_sampler(assignments, ["gsm8k", "gpqa"])
    with pytest.raises(ConfigError, match="'mmlu' is not one of the tasks"):
        check_sampler({"mmlu.mc_num": "1"}, ["gsm8k"])
    with pytest.raises(ConfigError, match="unknown sampler setting 'stepz'"):
        check_sampler({"gsm8k.stepz": "1"}, ["gsm8k"])
