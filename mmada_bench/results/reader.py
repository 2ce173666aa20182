"""Read run folders back: the one way reports, gates and tests see finished runs.

A bad folder (no results.json, another schema version, a truncated samples file) is a user error in one
line naming the file, never a traceback from deep inside a report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmada_bench.errors import DataError
from mmada_bench.hashing import json_sha256
from mmada_bench.results.schema import SCHEMA_VERSION, TaskResult

#: Fields every results.json task entry must have for reports to read it.
ENTRY_FIELDS = ("task", "key", "metrics", "primary_metric", "n_samples", "settings")


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
        tasks = results.get("tasks")
        if not isinstance(tasks, dict):
            raise DataError(f"{file}: 'tasks' is missing or not an object")
        for key, entry in tasks.items():
            missing = [f for f in ENTRY_FIELDS if not isinstance(entry, dict) or f not in entry]
            if missing:
                raise DataError(f"{file}: task entry {key!r} lacks {', '.join(missing)}")
        return cls(folder, results)

    # -- run-level facts ---------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """How reports name this run: the ``--label``, else the model name, else the folder name."""
        model = self.results.get("model") or {}
        return str(model.get("label") or model.get("model") or self.path.name)

    @property
    def config(self) -> dict[str, Any]:
        """The run config as written by the runner (``RunConfig`` as a dict)."""
        return dict(self.results.get("config") or {})

    def keys(self) -> list[str]:
        """Entry keys (``task@hash``) in file order."""
        return list(self.results["tasks"])

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

    def sample_map(self, task: str) -> dict[str, dict[str, Any]]:
        """Per-sample records of one entry by :func:`sample_id` (``subtask/doc_id``); a repeated id is an
        error, since pairing two runs' samples needs each id once."""
        out: dict[str, dict[str, Any]] = {}
        for record in self.samples(task):
            ident = sample_id(record)
            if ident in out:
                key = self.entry(task)["key"]
                raise DataError(f"{self.path / 'samples' / (key + '.jsonl')}: sample {ident} appears twice")
            out[ident] = record
        return out

    def entries_frame(self):
        """One row per task entry: protocol (few-shot, settings, data) and cost, for sweeps and gates."""
        import pandas as pd

        rows = []
        for key, entry in self.results["tasks"].items():
            cost = entry.get("cost") or {}
            n = entry.get("n_samples") or 0
            seconds = cost.get("seconds")
            tokens = cost.get("tokens")
            rows.append({
                "run": str(self.path), "model": self.label, "task": entry["task"], "key": key,
                "modality": entry.get("modality"), "primary_metric": entry["primary_metric"], "n": n,
                "num_fewshot": entry.get("num_fewshot"), "limit": entry.get("limit"),
                "settings_hash": settings_fingerprint(entry), "data_hash": data_fingerprint(entry),
                "nfe": cost.get("nfe"), "tokens": tokens, "sampler_seconds": seconds,
                "tokens_per_forward": cost.get("tokens_per_forward"),
                "nfe_per_sample": cost["nfe"] / n if n and cost.get("nfe") is not None else None,
                "seconds_per_sample": seconds / n if n and seconds is not None else None,
                "tokens_per_second": tokens / seconds if tokens is not None and seconds else None,
                "seconds": entry.get("seconds"), **{f"setting.{k}": v for k, v in entry["settings"].items()},
            })
        return pd.DataFrame(rows)

    def samples_frame(self, task: str):
        """One row per (sample, metric) of one entry: id, hashes, value, cost -- for paired tests."""
        import pandas as pd

        rows = []
        for ident, record in self.sample_map(task).items():
            cost = record.get("cost") or {}
            for name, value in (record.get("metrics") or {}).items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                rows.append({"sample": ident, "doc_id": record.get("doc_id"), "subtask": record.get("subtask", ""),
                             "metric": name, "value": float(value), "prompt_hash": record.get("prompt_hash"),
                             "doc_hash": record.get("doc_hash"), "nfe": cost.get("nfe"), "tokens": cost.get("tokens"),
                             "seconds": cost.get("seconds")})
        return pd.DataFrame(rows, columns=["sample", "doc_id", "subtask", "metric", "value", "prompt_hash", "doc_hash",
                                           "nfe", "tokens", "seconds"])

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


def sample_id(record: dict[str, Any]) -> str:
    """A sample's identity across runs: ``subtask/doc_id`` (lm-eval numbers docs per subtask, e.g. MMLU)."""
    subtask, task = record.get("subtask") or "", record.get("task") or ""
    doc = str(record.get("doc_id"))
    return doc if not subtask or subtask == task else f"{subtask}/{doc}"


def data_fingerprint(entry: dict[str, Any]) -> str | None:
    """Short hash of the data files' contents (not their paths, which differ between machines)."""
    files = ((entry.get("data") or {}).get("files_sha256")) or {}
    if not files:
        return None
    return json_sha256(sorted(files.values()))[:10]


def settings_fingerprint(entry: dict[str, Any]) -> str:
    """Short hash of an entry's sampler settings alone (the entry key also covers few-shot and limit)."""
    return json_sha256(entry.get("settings") or {})[:10]


def open_runs(paths: Iterable[str | Path]) -> list[RunFolder]:
    """Open every folder (each checked as :meth:`RunFolder.open` does), in the order given."""
    return [RunFolder.open(p) for p in paths]
