"""Append-only log of finished model requests, plus an artifacts folder for outputs that are files.

The log is the resume mechanism: a request's key hashes everything that decides its answer, so a
rerun serves finished requests from the log and computes only the rest. Lines are written whole,
then flushed and fsynced per batch; a line cut short by a kill is ignored on reading and the file is
re-terminated before the next append, so nothing written completely is ever lost.

Outputs that are not JSON (generated images) are written to ``artifacts/`` *before* their log line,
under a name derived from the request key, and the line records the file's sha256: on resume an
artifact whose bytes no longer match is treated as missing and regenerated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmada_bench.errors import ConfigError
from mmada_bench.hashing import bytes_sha256
from mmada_bench.jsonio import to_jsonable


class RequestLog:
    """Append-only JSONL of finished requests for one process, plus an index over all processes' logs."""

    def __init__(self, folder: Path, rank: int = 0, artifacts: Path | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / f"rank{rank}.jsonl"
        self.artifacts = Path(artifacts) if artifacts is not None else self.folder.parent / "artifacts"
        self.index: dict[str, dict[str, Any]] = {}
        self.skipped_lines = 0
        self._handle = None
        if self.folder.exists() and not self.folder.is_dir():
            raise ConfigError(f"{self.folder} is a file; the request log needs a folder there")
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

    # -- artifacts -----------------------------------------------------------------------------
    def write_artifact(self, key: str, data: bytes, suffix: str) -> dict[str, str]:
        """Store ``data`` for request ``key`` (atomically); returns the reference its log line keeps."""
        relative = Path(key[:2]) / f"{key}{suffix}"
        path = self.artifacts / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
        return {"path": relative.as_posix(), "sha256": bytes_sha256(data)}

    def read_artifact(self, reference: dict[str, str]) -> bytes | None:
        """The artifact's bytes, or None when it is missing or no longer matches its recorded hash."""
        path = self.artifacts / reference["path"]
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return data if bytes_sha256(data) == reference.get("sha256") else None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
