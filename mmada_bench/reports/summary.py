"""The fixed-width table printed at the end of a run: one row per task entry and metric."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _tokens(cost: dict[str, Any]) -> str:
    """Decoded tokens; "-" when the task decoded none (log-likelihood tasks score given text, so 0 would
    read as a failed generation)."""
    return str(cost["tokens"]) if cost.get("tokens") else "-"


def format_summary(results: dict[str, Any], only: Sequence[str] | None = None) -> str:
    """Primary metric first; a task shown twice (two settings) is labelled ``task@hash``."""
    model = results.get("model", {})
    title = f"{model.get('model', '?')}" + (f" [{model['label']}]" if model.get("label") else "")
    header = ("task", "metric", "value", "stderr", "n", "shots", "NFE", "tokens", "seconds")
    entries = [(k, t) for k, t in results.get("tasks", {}).items() if t and (only is None or k in only)]
    names = [t["task"] for _, t in entries]
    rows = []
    for key, task in entries:
        label = task["task"] if names.count(task["task"]) == 1 else key
        metrics = sorted(task["metrics"], key=lambda m: (m != task["primary_metric"], m))
        cost = task["cost"]
        for i, name in enumerate(metrics):
            entry = task["metrics"][name]
            first = i == 0
            shots = task.get("num_fewshot")
            rows.append((
                label if first else "", name, _fmt(entry["value"]), _fmt(entry["stderr"]),
                str(task["n_samples"]) if first else "", ("-" if shots is None else str(shots)) if first else "",
                str(cost["nfe"]) if first else "", _tokens(cost) if first else "",
                f"{task['seconds']:.1f}" if first else "",
            ))
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    lines = [f"results for {title} (wall {results.get('wall_seconds') or 0:.1f}s)"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
