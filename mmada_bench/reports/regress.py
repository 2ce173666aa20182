"""Regression gate: is a candidate run worse than a baseline run, beyond noise?

lm-eval's ``scripts/regression.py`` compares two scores with an *unpaired* z-test on their standard
errors. When both runs scored the same examples that throws information away: most examples are
answered the same by both, and only the ones that changed carry evidence. So the gate pairs the
samples both runs share and tests the change there -- exact McNemar (a two-sided binomial test on the
discordant pairs) for 0/1 metrics, a paired bootstrap of the mean difference otherwise -- and shows
lm-eval's z-test beside it for reference. A task *fails* when its primary metric dropped by more than
``max_drop`` points on the shared samples *and* the paired test gives p < ``alpha``.

Changed prompts or documents (``prompt_hash`` / ``doc_hash``), sampler settings, few-shot counts and
data files are reported separately as drift: they explain a score change, they are not one. Runs
over different sample sets are refused unless ``allow_different_samples`` (then only the shared
samples are paired).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmada_bench.errors import ConfigError
from mmada_bench.reports.tables import fmt, markdown, points_scale
from mmada_bench.results.reader import RunFolder, data_fingerprint, settings_fingerprint

BOOTSTRAP_ITERS = 10_000


def mcnemar_exact(base_only: int, cand_only: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of ``cand_only`` among the discordant pairs at 1/2."""
    from scipy.stats import binomtest

    n = base_only + cand_only
    return 1.0 if n == 0 else float(binomtest(cand_only, n, 0.5).pvalue)


def paired_bootstrap(diffs: list[float], iters: int = BOOTSTRAP_ITERS, seed: int = 0) -> float:
    """Two-sided p-value of mean(diffs) = 0: bootstrap means re-centred on zero, as extreme as observed."""
    import numpy as np

    values = np.asarray(diffs, dtype=float)
    if len(values) == 0 or np.allclose(values, values[0]) and values[0] == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(iters, len(values)))].mean(axis=1)
    observed = values.mean()
    extreme = np.abs(means - observed) >= abs(observed) - 1e-12
    return float((extreme.sum() + 1) / (iters + 1))


def unpaired_z(base: float, base_se: float | None, cand: float, cand_se: float | None) -> tuple[float | None, float]:
    """lm-eval's regression z-test: ``(a - b) / sqrt(se_a^2 + se_b^2)``, two-sided normal p-value."""
    from scipy.stats import norm

    se = math.sqrt((base_se or 0.0) ** 2 + (cand_se or 0.0) ** 2)
    if se == 0:
        return None, 1.0 if base == cand else 0.0
    z = (cand - base) / se
    return z, float(2 * norm.sf(abs(z)))


@dataclass
class Comparison:
    """One (task, metric) of the gate."""

    task: str
    metric: str
    primary: bool
    n_base: int
    n_cand: int
    n_shared: int
    base: float | None
    cand: float | None
    delta_points: float | None
    test: str
    p_paired: float
    base_only: int | None
    cand_only: int | None
    z: float | None
    p_unpaired: float
    failed: bool


@dataclass
class Drift:
    task: str
    prompts_changed: int
    docs_changed: int
    protocol: list[str] = field(default_factory=list)


@dataclass
class GateReport:
    baseline: str
    candidate: str
    alpha: float
    max_drop: float
    comparisons: list[Comparison]
    drift: list[Drift]
    shared: dict[str, list[str]]
    notes: list[str]

    @property
    def failed(self) -> bool:
        return any(c.failed for c in self.comparisons)

    def frame(self):
        import pandas as pd

        return pd.DataFrame([c.__dict__ for c in self.comparisons])


def _pairs(base: RunFolder, cand: RunFolder, allow_different: bool, notes: list[str]) -> list[tuple[dict, dict]]:
    """Baseline entries matched to candidate entries: same key, else the same task's only entry."""
    pairs = []
    cand_entries = list(cand.results["tasks"].values())
    for key, entry in base.results["tasks"].items():
        match = cand.results["tasks"].get(key)
        if match is None:
            same = [e for e in cand_entries if e["task"] == entry["task"]]
            match = same[0] if len(same) == 1 else None
        if match is None:
            if not allow_different:
                raise ConfigError(f"{cand.path}: no entry of task {entry['task']} to compare with {base.path} "
                                  f"({key}); pass --allow-different-samples to compare only what both have")
            notes.append(f"{entry['task']}: only in the baseline, not compared")
            continue
        pairs.append((entry, match))
    matched = {m["key"] for _, m in pairs}
    notes += [f"{e['task']}: only in the candidate, not compared" for e in cand_entries if e["key"] not in matched]
    return pairs


def _protocol_drift(b: dict[str, Any], c: dict[str, Any]) -> list[str]:
    out = []
    if settings_fingerprint(b) != settings_fingerprint(c):
        keys = sorted(k for k in set(b["settings"]) | set(c["settings"]) if b["settings"].get(k) != c["settings"].get(k))
        out.append("sampler " + ", ".join(f"{k} {b['settings'].get(k)} -> {c['settings'].get(k)}" for k in keys))
    for name, label in (("num_fewshot", "few-shot"), ("limit", "limit")):
        if b.get(name) != c.get(name):
            out.append(f"{label} {b.get(name)} -> {c.get(name)}")
    if data_fingerprint(b) != data_fingerprint(c):
        out.append(f"data files {data_fingerprint(b)} -> {data_fingerprint(c)}")
    for metric in sorted(set(b["metrics"]) & set(c["metrics"])):
        if b["metrics"][metric].get("rule") != c["metrics"][metric].get("rule"):
            out.append(f"{metric} rule {b['metrics'][metric].get('rule')!r} -> {c['metrics'][metric].get('rule')!r}")
    return out


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def compare(baseline: RunFolder, candidate: RunFolder, alpha: float = 0.05, max_drop: float = 1.0,
            allow_different_samples: bool = False) -> GateReport:
    """Every shared task and per-sample metric, tested both ways; drift listed apart."""
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha must be in (0, 1), got {alpha}")
    if max_drop < 0:
        raise ConfigError(f"--max-drop must be >= 0 points, got {max_drop}")
    notes: list[str] = []
    comparisons, drift, shared_ids = [], [], {}
    for b_entry, c_entry in _pairs(baseline, candidate, allow_different_samples, notes):
        task = b_entry["task"]
        b_samples, c_samples = baseline.sample_map(b_entry["key"]), candidate.sample_map(c_entry["key"])
        shared = [i for i in b_samples if i in c_samples]
        if set(b_samples) != set(c_samples):
            only_b, only_c = len(set(b_samples) - set(c_samples)), len(set(c_samples) - set(b_samples))
            if not allow_different_samples:
                raise ConfigError(f"{task}: the runs scored different samples ({only_b} only in the baseline, "
                                  f"{only_c} only in the candidate); rerun on one sample list (run --samples) or "
                                  "pass --allow-different-samples to pair the shared ones")
            notes.append(f"{task}: {len(shared)} shared samples paired ({only_b} only in baseline, {only_c} only in candidate)")
        shared_ids[task] = shared
        drift.append(Drift(
            task, sum(b_samples[i].get("prompt_hash") != c_samples[i].get("prompt_hash") for i in shared),
            sum(b_samples[i].get("doc_hash") != c_samples[i].get("doc_hash") for i in shared),
            _protocol_drift(b_entry, c_entry)))
        metrics = sorted({m for i in shared for m, v in (b_samples[i].get("metrics") or {}).items() if _numeric(v)},
                         key=lambda m: (m != b_entry["primary_metric"], m))
        for metric in metrics:
            ids = [i for i in shared if _numeric((b_samples[i].get("metrics") or {}).get(metric))
                   and _numeric((c_samples[i].get("metrics") or {}).get(metric))]
            bv = [float(b_samples[i]["metrics"][metric]) for i in ids]
            cv = [float(c_samples[i]["metrics"][metric]) for i in ids]
            comparisons.append(_compare_metric(task, metric, metric == b_entry["primary_metric"], b_entry, c_entry,
                                               bv, cv, len(b_samples), len(c_samples), alpha, max_drop))
    if not comparisons:
        raise ConfigError(f"{baseline.path} and {candidate.path} share no scored samples to compare")
    return GateReport(baseline.label, candidate.label, alpha, max_drop, comparisons, drift, shared_ids, notes)


def _compare_metric(task: str, metric: str, primary: bool, b_entry: dict, c_entry: dict, bv: list[float],
                    cv: list[float], n_base: int, n_cand: int, alpha: float, max_drop: float) -> Comparison:
    scale = points_scale(metric)
    base = sum(bv) / len(bv) if bv else None
    cand = sum(cv) / len(cv) if cv else None
    delta = None if base is None or cand is None else (cand - base) * scale
    if set(bv) | set(cv) <= {0.0, 1.0}:
        base_only = sum(1 for x, y in zip(bv, cv, strict=True) if x == 1 and y == 0)
        cand_only = sum(1 for x, y in zip(bv, cv, strict=True) if x == 0 and y == 1)
        test, p = "exact McNemar", mcnemar_exact(base_only, cand_only)
    else:
        base_only = cand_only = None
        test, p = "paired bootstrap", paired_bootstrap([y - x for x, y in zip(bv, cv, strict=True)])
    b_metric, c_metric = b_entry["metrics"].get(metric, {}), c_entry["metrics"].get(metric, {})
    if _numeric(b_metric.get("value")) and _numeric(c_metric.get("value")):
        z, p_z = unpaired_z(b_metric["value"], b_metric.get("stderr"), c_metric["value"], c_metric.get("stderr"))
    else:
        z, p_z = None, float("nan")
    failed = primary and delta is not None and -delta > max_drop and p < alpha
    return Comparison(task, metric, primary, n_base, n_cand, len(bv), base, cand, delta, test, p, base_only,
                      cand_only, z, p_z, failed)


def gate_markdown(report: GateReport) -> str:
    """A report for a CI comment: verdict, per-metric table (both tests), drift, notes."""
    import pandas as pd

    verdict = "FAIL" if report.failed else "PASS"
    rows = []
    for c in report.comparisons:
        scale = points_scale(c.metric)
        rows.append({
            "task": c.task, "metric": c.metric + (" (primary)" if c.primary else ""), "n": c.n_shared,
            "baseline": fmt(None if c.base is None else c.base * scale, 2),
            "candidate": fmt(None if c.cand is None else c.cand * scale, 2), "Δ points": fmt(c.delta_points, 2, True),
            "paired test": c.test + ("" if c.base_only is None else f" ({c.base_only} lost / {c.cand_only} gained)"),
            "paired p": f"{c.p_paired:.4g}", "unpaired z-test p": "-" if c.p_unpaired != c.p_unpaired else f"{c.p_unpaired:.4g}",
            "gate": "**FAIL**" if c.failed else ("ok" if c.primary else ""),
        })
    lines = [f"## mmada-bench regression gate: {verdict}", "",
             f"Baseline `{report.baseline}` vs candidate `{report.candidate}`. A task fails when its primary metric "
             f"drops by more than {report.max_drop:g} points on the shared samples with paired p < {report.alpha:g}. "
             "The unpaired z-test (lm-eval's `scripts/regression.py`) is shown for reference; it ignores the pairing, "
             "so it can miss drops the paired test detects.", "", markdown(pd.DataFrame(rows))]
    drifted = [d for d in report.drift if d.prompts_changed or d.docs_changed or d.protocol]
    lines += ["", "### Drift (reported, not gated)", ""]
    if drifted:
        for d in drifted:
            parts = []
            if d.prompts_changed:
                parts.append(f"{d.prompts_changed} prompt(s) changed")
            if d.docs_changed:
                parts.append(f"{d.docs_changed} document(s) changed")
            parts += d.protocol
            lines.append(f"- {d.task}: " + "; ".join(parts))
    else:
        lines.append("- none: same prompts, documents, settings, few-shot counts, data files and scorer rules")
    if report.notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines)


def write_samples_file(report: GateReport, path: Path) -> Path:
    """``{"task": [sample id, ...]}`` of the samples both runs share (for ``mmada-bench run --samples``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.shared, indent=1) + "\n", encoding="utf-8")
    return path
