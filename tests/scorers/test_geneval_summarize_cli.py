"""``mmada-bench geneval summarize``: the official evaluator's results.jsonl -> summary_scores.py's numbers."""

from __future__ import annotations

import json

from mmada_bench.cli import main


def _row(tag: str, correct: bool, prompt: str) -> str:
    meta = json.dumps({"tag": tag, "prompt": prompt})
    return json.dumps({"filename": "x.png", "tag": tag, "prompt": prompt, "correct": correct, "reason": "",
                       "metadata": meta, "details": "{}"})


def test_summarize_prints_per_tag_and_overall(tmp_path, capsys):
    rows = [_row("single_object", True, "a cup"), _row("single_object", False, "a cup"),
            _row("single_object", True, "a dog"), _row("counting", False, "two cups"),
            _row("counting", True, "three cats"), _row("colors", False, "a red car")]
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(rows) + "\n")
    assert main(["geneval", "summarize", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Total images: 6" in out and "Total prompts: 5" in out
    assert "% correct prompts: 60.00%" in out  # a cup, a dog, three cats
    assert "single_object    = 66.67% (2 / 3)" in out and "counting         = 50.00% (1 / 2)" in out
    overall = (2 / 3 + 1 / 2 + 0) / 3
    assert f"Overall score (avg. over tasks): {overall:.5f}" in out
    assert main(["geneval", "summarize", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert abs(record["overall"] - overall) < 1e-12 and record["per_tag"]["colors"]["images"] == 1


def test_bad_results_file_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    path.write_text(_row("colors", True, "p") + "\n" + '{"tag": "colors", "metadata": "{}"}\n')
    assert main(["geneval", "summarize", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "results.jsonl:2" in err and "correct" in err and "\n" not in err
    assert main(["geneval", "summarize", str(tmp_path / "missing.jsonl")]) == 2
