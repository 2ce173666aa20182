"""The results store of one run folder: request log (resume), per-sample records, results file.

Layout of ``--output DIR``::

    run.json                    who/what the folder belongs to (model identity, seed); checked on reuse
    requests/rank<R>.jsonl      one line per finished model request, appended and flushed as produced
    samples/<task>.jsonl        one line per scored example (prompt, prediction, target, metrics, cost)
    results.json                metrics with stderr, resolved config, provenance (rewritten per task)
    lm_eval_tasks/              the generated lm-eval task folders and staged data

The request log is the resume mechanism: a request's key hashes everything that determines its
answer (method, arguments, sampler settings, model identity, seed), so a rerun serves finished
requests from the log and computes only the rest. Lines are written whole and flushed (and fsynced)
per batch; a line cut short by a kill is ignored on reading and the file is re-terminated before the
next append, so nothing written completely is ever lost. Derived files (samples, results) are
written atomically (temporary file + rename).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmada_bench.errors import ConfigError


def to_jsonable(value: Any) -> Any:
    """numpy scalars/arrays, paths and tuples -> plain JSON values (NaN/inf -> None)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def atomic_write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(to_jsonable(row), ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class RequestLog:
    """Append-only JSONL of finished requests for one process, plus an index over all processes' logs."""

    def __init__(self, folder: Path, rank: int = 0) -> None:
        self.folder = folder
        self.path = folder / f"rank{rank}.jsonl"
        self.index: dict[str, dict[str, Any]] = {}
        self.skipped_lines = 0
        self._handle = None
        self.reload()

    def reload(self) -> None:
        """(Re)read every ``rank*.jsonl`` in the folder; incomplete or corrupt lines are skipped."""
        self.index.clear()
        self.skipped_lines = 0
        for file in sorted(self.folder.glob("rank*.jsonl")):
            with file.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if not line.endswith("\n"):
                        self.skipped_lines += 1  # cut short by a kill: never acknowledged as written
                        continue
                    try:
                        record = json.loads(line)
                        self.index[record["key"]] = record
                    except (json.JSONDecodeError, KeyError, TypeError):
                        self.skipped_lines += 1

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def get(self, key: str) -> dict[str, Any] | None:
        return self.index.get(key)

    def __len__(self) -> int:
        return len(self.index)

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Write ``records`` as whole lines, then flush and fsync: after return they survive a kill."""
        if not records:
            return
        if self._handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            needs_newline = self.path.is_file() and self.path.stat().st_size > 0 and not _ends_with_newline(self.path)
            self._handle = self.path.open("a", encoding="utf-8")
            if needs_newline:  # terminate a line cut short by a kill; it stays (ignored) rather than glued
                self._handle.write("\n")
        text = "".join(json.dumps(to_jsonable(r), ensure_ascii=False) + "\n" for r in records)
        self._handle.write(text)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        for record in records:
            self.index[record["key"]] = record

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


class ResultsStore:
    """One ``--output`` folder (see module docstring for the layout)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.manifest_path = self.root / "run.json"
        self.results_path = self.root / "results.json"
        self.requests_dir = self.root / "requests"
        self.samples_dir = self.root / "samples"
        self.tasks_dir = self.root / "lm_eval_tasks"

    def claim(self, identity: dict[str, Any]) -> bool:
        """Record (or check) what this folder evaluates; returns True when resuming an earlier run.

        Reusing a folder for a different model, dtype or seed would mix answers of two systems in one
        request log, so that is refused; changing tasks, limits or batch size is fine.
        """
        identity = to_jsonable(identity)
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--output {self.root} exists and is not a folder")
        if self.manifest_path.is_file():
            try:
                existing = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                raise ConfigError(f"{self.manifest_path} is not valid JSON; use a new --output folder") from None
            for key in sorted(set(existing) | set(identity)):
                if existing.get(key) != identity.get(key):
                    raise ConfigError(
                        f"{self.root} holds a run with a different {key} ({existing.get(key)!r} vs "
                        f"{identity.get(key)!r}); use a new --output folder"
                    )
            return True
        atomic_write_json(self.manifest_path, identity)
        return False

    def request_log(self, rank: int = 0) -> RequestLog:
        return RequestLog(self.requests_dir, rank)

    def write_samples(self, task: str, records: Sequence[dict[str, Any]]) -> Path:
        path = self.samples_dir / f"{task}.jsonl"
        atomic_write_jsonl(path, records)
        return path

    def read_samples(self, task: str) -> list[dict[str, Any]]:
        return read_jsonl(self.samples_dir / f"{task}.jsonl")

    def write_results(self, results: dict[str, Any]) -> Path:
        atomic_write_json(self.results_path, results)
        return self.results_path

    def read_results(self) -> dict[str, Any] | None:
        if not self.results_path.is_file():
            return None
        return json.loads(self.results_path.read_text(encoding="utf-8"))


def bootstrap_stderr(values: Sequence[float], iters: int = 1000, seed: int = 1234) -> float | None:
    """Bootstrap standard error of the mean (resampling examples with replacement, seeded).

    None with fewer than two values or ``iters == 0``.
    """
    data = np.asarray([float(v) for v in values], dtype=np.float64)
    if data.size < 2 or iters <= 0:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(iters, dtype=np.float64)
    for start in range(0, iters, 100):  # chunks keep memory flat on large test sets
        count = min(100, iters - start)
        means[start : start + count] = data[rng.integers(0, data.size, size=(count, data.size))].mean(axis=1)
    return float(means.std(ddof=1))
