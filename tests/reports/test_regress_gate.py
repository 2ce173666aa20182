"""The regression gate: identical runs pass; an injected drop that only the paired test can see fails the
gate while lm-eval's unpaired z-test calls it noise; drift is reported apart; sample sets must match."""

from __future__ import annotations

import json
import math

import pytest
from jobs_helpers import make_run

from mmada_bench.cli import main
from mmada_bench.errors import ConfigError
from mmada_bench.reports.regress import compare, mcnemar_exact, paired_bootstrap, unpaired_z
from mmada_bench.results.reader import RunFolder

BASE = [1.0] * 80 + [0.0] * 20


def _gate(capsys, *argv) -> tuple[int, str, str]:
    code = main(["regress", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_statistics_against_hand_computed_values():
    assert mcnemar_exact(8, 0) == pytest.approx(2 / 2**8)  # both tails of Binomial(8, 1/2) at 0 and 8
    assert mcnemar_exact(3, 1) == pytest.approx(2 * (1 + 4) / 16)
    assert mcnemar_exact(0, 0) == 1.0
    z, p = unpaired_z(0.8, 0.04, 0.72, 0.03)
    assert z == pytest.approx(-0.08 / 0.05) and p == pytest.approx(math.erfc(1.6 / math.sqrt(2)))
    assert paired_bootstrap([0.0] * 10) == 1.0
    assert paired_bootstrap([-1.0] * 10, iters=999) == pytest.approx(1 / 1000)
    assert paired_bootstrap([1.0, -1.0] * 10, iters=999) == 1.0


def test_identical_runs_pass(tmp_path, capsys):
    a, b = make_run(tmp_path / "a", BASE), make_run(tmp_path / "b", BASE, label="cand")
    code, out, err = _gate(capsys, a, b, "--report", tmp_path / "report.md")
    assert code == 0, err
    assert "regression gate: PASS" in out and "- none: same prompts" in out
    assert (tmp_path / "report.md").read_text() == out


def test_injected_drop_fails_paired_but_not_unpaired(tmp_path, capsys):
    """8 of 100 examples flip from right to wrong and nothing else changes: 80 -> 72 points."""
    cand_values = [0.0] * 8 + BASE[8:]
    a, b = make_run(tmp_path / "a", BASE), make_run(tmp_path / "b", cand_values, label="cand")
    report = compare(RunFolder.open(a), RunFolder.open(b))
    (row,) = report.comparisons
    assert (row.base_only, row.cand_only, row.n_shared) == (8, 0, 100)
    assert row.delta_points == pytest.approx(-8.0)
    assert row.test == "exact McNemar" and row.p_paired == pytest.approx(2 / 256) and row.p_paired < 0.05
    assert 0.15 < row.p_unpaired < 0.25  # lm-eval's z-test: |z| = 0.08 / 0.060, not significant
    assert row.failed and report.failed
    code, out, _ = _gate(capsys, a, b, "--csv", tmp_path / "gate.csv")
    assert code == 1
    assert "regression gate: FAIL" in out and "exact McNemar (8 lost / 0 gained)" in out and "**FAIL**" in out
    assert "0.007812" in out  # paired p, beside the unpaired one
    assert "| 0.1" in out or "| 0.2" in out
    assert (tmp_path / "gate.csv").read_text().splitlines()[1].startswith("gsm8k,acc,True,100,100,100,0.8,0.72")
    # a tolerance of 10 points lets the same drop through
    assert _gate(capsys, a, b, "--max-drop", "10")[0] == 0
    # a smaller alpha than the paired p does too
    assert _gate(capsys, a, b, "--alpha", "0.005")[0] == 0


def test_small_drop_within_tolerance_passes(tmp_path, capsys):
    a, b = make_run(tmp_path / "a", BASE), make_run(tmp_path / "b", [0.0] + BASE[1:])
    assert _gate(capsys, a, b)[0] == 0


def test_prompt_and_protocol_drift_is_reported_not_gated(tmp_path, capsys):
    prompts = [f"prompt {i}" for i in range(100)]
    changed = [p + " (edited)" if i < 3 else p for i, p in enumerate(prompts)]
    a = make_run(tmp_path / "a", BASE, prompts=prompts)
    b = make_run(tmp_path / "b", BASE, prompts=changed, settings={"steps": 128})
    code, out, _ = _gate(capsys, a, b)
    assert code == 0
    assert "- gsm8k: 3 prompt(s) changed; sampler steps 256 -> 128" in out


def test_different_sample_sets_are_refused_unless_allowed(tmp_path, capsys):
    a = make_run(tmp_path / "a", BASE)
    b = make_run(tmp_path / "b", [0.0] * 8 + BASE[8:90] + [1.0] * 10, doc_ids=list(range(90)) + list(range(200, 210)))
    code, _, err = _gate(capsys, a, b)
    assert code == 2 and "10 only in the baseline, 10 only in the candidate" in err and len(err.splitlines()) == 1
    code, out, _ = _gate(capsys, a, b, "--allow-different-samples", "--write-samples", tmp_path / "ids.json")
    assert code == 1 and "90 shared samples paired" in out
    assert json.loads((tmp_path / "ids.json").read_text()) == {"gsm8k": [str(i) for i in range(90)]}


def test_non_binary_metric_uses_the_paired_bootstrap(tmp_path):
    base = [50.0 + (i % 7) for i in range(40)]
    cand = [v - 2.0 + (0.5 if i % 2 else -0.5) for i, v in enumerate(base)]
    a = make_run(tmp_path / "a", base, metric="score")
    b = make_run(tmp_path / "b", cand, metric="score")
    (row,) = compare(RunFolder.open(a), RunFolder.open(b)).comparisons
    assert row.test == "paired bootstrap" and row.delta_points == pytest.approx(-2.0)
    assert row.p_paired < 0.001 and row.failed


def test_bad_arguments(tmp_path):
    a = RunFolder.open(make_run(tmp_path / "a", BASE))
    with pytest.raises(ConfigError, match="--alpha"):
        compare(a, a, alpha=1.5)
    other = RunFolder.open(make_run(tmp_path / "b", BASE, task="mmlu"))
    with pytest.raises(ConfigError, match="no entry of task gsm8k"):
        compare(a, other)
