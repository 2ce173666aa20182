"""One ``--output`` folder: ownership, lock, request log, per-sample records and the results file.

Layout::

    run.json                      who/what the folder belongs to (model identity, seed); checked on reuse
    .lock                         held by the run writing to the folder (one at a time)
    requests/rank<R>.jsonl        one line per finished model request (the resume mechanism)
    artifacts/                    request outputs that are files (generated images), named by request key
    samples/<task>@<hash>.jsonl   one line per scored example (prompt, prediction, target, metrics, cost)
    results.json                  every task entry with metrics and stderr, resolved config, provenance
    staging/                      task files prepared for a backend (lm-eval task folders, staged data)

``results.json`` is merged, never rebuilt: a run adds or replaces only the entries it finished, so a
rerun of a subset of tasks, or one that fails on its second task, keeps everything finished before.
Derived files are written atomically (temporary file + rename) while the folder lock is held.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmada_bench.errors import ConfigError
from mmada_bench.jsonio import atomic_write_json, atomic_write_jsonl, read_jsonl, to_jsonable
from mmada_bench.results.schema import SCHEMA_VERSION, SampleRecord, TaskResult


class ResultsStore:
    """One run folder (see the module docstring for the layout)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.manifest_path = self.root / "run.json"
        self.results_path = self.root / "results.json"
        self.requests_dir = self.root / "requests"
        self.artifacts_dir = self.root / "artifacts"
        self.samples_dir = self.root / "samples"
        self.staging_dir = self.root / "staging"
        self._lock_handle = None

    # -- ownership and locking -----------------------------------------------------------------
    def check_writable(self) -> None:
        """Refuse an output path that is a file or cannot be written, before anything else happens."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--output {self.root} exists and is not a folder")
        probe = self.root if self.root.exists() else next((p for p in self.root.parents if p.exists()), None)
        if probe is not None and not probe.is_dir():
            raise ConfigError(f"--output {self.root}: {probe} is a file, not a folder")
        if probe is not None and not os.access(probe, os.W_OK | os.X_OK):
            raise ConfigError(f"--output {self.root}: {probe} is not writable")
        for folder in (self.requests_dir, self.samples_dir, self.artifacts_dir, self.staging_dir):
            if folder.exists() and not folder.is_dir():
                raise ConfigError(f"{folder} is a file; this run folder needs a folder there (move it away)")
            if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"{folder} is not writable")
        for file in (self.results_path, self.manifest_path):
            if file.exists() and not file.is_file():
                raise ConfigError(f"{file} is not a file; move it away or use a new --output")

    def lock(self) -> None:
        """Take the folder's lock for this process; a second run into the same folder is refused."""
        self.check_writable()
        self.root.mkdir(parents=True, exist_ok=True)
        handle = (self.root / ".lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(f"{self.root} is in use by another mmada-bench run ({holder}); wait for it or use "
                              "another --output") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock_handle = handle

    def unlock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def check_identity(self, identity: dict[str, Any]) -> bool:
        """Check what this folder evaluates without writing; returns True when it holds an earlier run.

        Reusing a folder for a different model, dtype or seed would mix answers of two systems in one
        request log, so that is refused; changing tasks, limits, settings or batch size is fine.
        """
        identity = to_jsonable(identity)
        self.check_writable()
        self.check_schema()
        if not self.manifest_path.is_file():
            return False
        try:
            existing = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{self.manifest_path} is not valid JSON; use a new --output folder") from None
        if not isinstance(existing, dict):
            raise ConfigError(f"{self.manifest_path} is not a run manifest; use a new --output folder")
        for key in sorted(set(existing) | set(identity)):
            if existing.get(key) != identity.get(key):
                raise ConfigError(
                    f"{self.root} holds a run with a different {key} ({existing.get(key)!r} vs "
                    f"{identity.get(key)!r}); use a new --output folder"
                )
        return True

    def check_schema(self) -> None:
        """Refuse to add to a results.json of another schema version (it would be rewritten unreadably)."""
        try:
            existing = self.read_results()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{self.results_path} is not valid JSON; move it away or use a new --output") from None
        if existing is not None and existing.get("schema_version") != SCHEMA_VERSION:
            raise ConfigError(f"{self.results_path} has schema_version {existing.get('schema_version')!r}, this "
                              f"mmada-bench writes {SCHEMA_VERSION}; use a new --output folder")

    def claim(self, identity: dict[str, Any]) -> bool:
        """:meth:`check_identity`, then record the identity; returns True when resuming."""
        resumed = self.check_identity(identity)
        if not resumed:
            atomic_write_json(self.manifest_path, identity)
        return resumed

    # -- samples and results -------------------------------------------------------------------
    def samples_path(self, key: str) -> Path:
        return self.samples_dir / f"{key}.jsonl"

    def write_samples(self, key: str, records: Sequence[SampleRecord | dict[str, Any]]) -> Path:
        path = self.samples_path(key)
        atomic_write_jsonl(path, (r.to_dict() if isinstance(r, SampleRecord) else r for r in records))
        return path

    def read_samples(self, key: str) -> list[dict[str, Any]]:
        return read_jsonl(self.samples_path(key))

    def read_results(self) -> dict[str, Any] | None:
        if not self.results_path.is_file():
            return None
        return json.loads(self.results_path.read_text(encoding="utf-8"))

    def merge_results(self, header: dict[str, Any], task: TaskResult | None = None) -> dict[str, Any]:
        """Add (or replace) ``task`` in results.json, keeping every other entry; the header is this run's."""
        existing = self.read_results() or {}
        tasks = dict(existing.get("tasks", {}))
        if task is not None:
            tasks[task.key] = task.to_dict()
        merged = {"schema_version": SCHEMA_VERSION, **header, "tasks": tasks}
        atomic_write_json(self.results_path, merged)
        return merged

    def record_task(self, header: dict[str, Any], task: TaskResult, records: Sequence[SampleRecord]) -> dict[str, Any]:
        """Samples first, then the results entry: a results entry never points at missing samples."""
        self.write_samples(task.key, records)
        return self.merge_results(header, task)
