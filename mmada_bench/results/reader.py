"""Read run folders back: the one way reports, gates and tests see finished runs.

A bad folder (no results.json, another schema version, a truncated samples file) is a user error in one
line naming the file, never a traceback from deep inside a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmada_bench.errors import DataError
from mmada_bench.results.schema import SCHEMA_VERSION, TaskResult


def find_entry(results: dict[str, Any], task: str) -> dict[str, Any]:
    """The one entry of ``task`` in a results dict (by entry key ``task@hash`` or by task name)."""
    tasks = results.get("tasks", {})
    if task in tasks:
        return tasks[task]
    matches = [entry for entry in tasks.values() if entry.get("task") == task]
    if len(matches) != 1:
        keys = ", ".join(sorted(tasks)) or "none"
        raise DataError(f"{len(matches)} entries for task {task!r} in results (entries: {keys}); name one by its key")
    return matches[0]


@dataclass
class RunFolder:
    """A finished (or partly finished) run folder."""

    path: Path
    results: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        folder = Path(path)
        file = folder / "results.json"
        if not file.is_file():
            raise DataError(f"{folder}: no results.json (not a mmada-bench run folder, or no task finished yet)")
        try:
            results = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{file}: not valid JSON ({exc})") from None
        version = results.get("schema_version") if isinstance(results, dict) else None
        if version != SCHEMA_VERSION:
            raise DataError(f"{file}: schema_version {version!r}, this mmada-bench reads {SCHEMA_VERSION}")
        return cls(folder, results)

    def tasks(self) -> list[TaskResult]:
        return [TaskResult.from_dict(entry) for entry in self.results.get("tasks", {}).values()]

    def entry(self, task: str) -> dict[str, Any]:
        return find_entry(self.results, task)

    def samples(self, task: str) -> list[dict[str, Any]]:
        """Per-sample records of one entry; a cut or corrupt line is an error naming file and line."""
        key = self.entry(task)["key"]
        file = self.path / "samples" / f"{key}.jsonl"
        if not file.is_file():
            raise DataError(f"{file}: missing (results.json lists {key})")
        out = []
        text = file.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            raise DataError(f"{file}: truncated (the last line is incomplete)")
        for number, line in enumerate(text.splitlines(), 1):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise DataError(f"{file}:{number}: not valid JSON") from None
        return out

    def metrics_frame(self):
        """One row per (entry, metric): pandas, for tables and plots."""
        import pandas as pd

        label = self.results.get("model", {}).get("label") or self.results.get("model", {}).get("model")
        rows = []
        for task in self.tasks():
            for name, metric in task.metrics.items():
                rows.append({
                    "run": str(self.path), "model": label, "task": task.task, "key": task.key, "metric": name,
                    "primary": name == task.primary_metric, "value": metric.value, "stderr": metric.stderr,
                    "rule": metric.rule, "n": task.n_samples, "nfe": task.cost.get("nfe"),
                    "tokens": task.cost.get("tokens"), "seconds": task.seconds,
                })
        return pd.DataFrame(rows)
