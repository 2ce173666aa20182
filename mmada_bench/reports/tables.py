"""Shared by every report: metric units (points), number formatting, and writing CSV + markdown.

Reports show proportions (accuracy, exact match, F1, GenEval) as *points* (x100), as the paper's tables
and leaderboards do, and everything else (MME's summed score, CLIP score, ImageReward) as stored. The
CSV files keep the stored values too, so a number can be traced back to ``results.json`` unchanged.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: Metric base names whose values are proportions in [0, 1] (shown x100 as points).
PROPORTIONS = frozenset({
    "acc", "acc_norm", "exact_match", "math_verify", "f1", "precision", "recall", "geneval_overall", "accuracy",
    "both", "color", "shape",  # easyvqa_t2i: fractions of images judged right, as GenEval stores them
})


def metric_base(metric: str) -> str:
    """``exact_match,strict-match`` -> ``exact_match``; ``validation/Overall/acc`` -> ``acc``;
    ``acc[type=yes]`` -> ``acc``."""
    name = metric.split(",", 1)[0].split("[", 1)[0]
    return name.rsplit("/", 1)[-1]


def points_scale(metric: str, unit: str = "") -> float:
    """Factor from a stored value to the unit reports show: 100 for proportions stored in [0, 1], 1 for
    numbers their producer stored in points already (``MetricValue.unit == "points"``) and for the rest."""
    if unit == "points":
        return 1.0
    return 100.0 if metric_base(metric) in PROPORTIONS else 1.0


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any, digits: int = 1, signed: bool = False) -> str:
    """A number for a markdown cell; ``-`` for missing or non-finite values."""
    if not is_number(value):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_pm(value: Any, stderr: Any, digits: int = 1) -> str:
    """``value ± stderr`` (or the value alone when no stderr was recorded)."""
    if not is_number(value):
        return "-"
    return f"{value:.{digits}f} ± {stderr:.{digits}f}" if is_number(stderr) else f"{value:.{digits}f}"


def markdown(frame: Any) -> str:
    """A pipe table (GitHub markdown) of a pandas frame whose cells are already formatted."""
    columns = [str(c) for c in frame.columns]
    rows = [[str(v).replace("|", "\\|") for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_outputs(folder: Path, stem: str, frame: Any, md: str) -> dict[str, Path]:
    """``<stem>.csv`` (the frame, stored units) and ``<stem>.md`` in ``folder``; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / f"{stem}.csv", folder / f"{stem}.md"
    frame.to_csv(csv_path, index=False)
    md_path.write_text(md.rstrip("\n") + "\n", encoding="utf-8")
    return {"csv": csv_path, "md": md_path}
