"""Reading benchmark data files row by row, with errors that point at the file, line and field.

Every modality reads the same two formats (JSON Lines and Parquet, one row per example in the Hugging
Face schema of the original dataset), so the reading and the field checks live here once. A user who
hand-edits a file gets ``path:line: field 'answer' ...`` on one line instead of a traceback from deep
inside ``datasets``: that is why data is validated before anything is handed to lm-eval.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmada_bench.errors import ConfigError, DataError

#: File suffixes accepted for a split, in the order they are looked for.
DATA_SUFFIXES = (".jsonl", ".parquet")


@dataclass(frozen=True)
class Row:
    """One example and where it came from (``where`` is ``path:line`` or ``path:row N``)."""

    data: dict[str, Any]
    where: str


@dataclass(frozen=True)
class Field:
    """A required column: its name, expected type and an optional extra check.

    ``check`` returns an error phrase (e.g. ``"must contain '#### <answer>'"``) or None when the value
    is acceptable; it runs only after the type check passed.
    """

    name: str
    kind: type | tuple[type, ...]
    check: Callable[[Any], str | None] | None = None

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            expected = self.kind.__name__ if isinstance(self.kind, type) else "/".join(k.__name__ for k in self.kind)
            return f"must be {_article(expected)} {expected}, got {type(value).__name__} {_short(value)}"
        return self.check(value) if self.check else None


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def find_split_file(folder: Path, split: str) -> Path | None:
    """``folder/<split>.jsonl`` or ``folder/<split>.parquet``; None if neither; error if both."""
    found = [folder / f"{split}{suffix}" for suffix in DATA_SUFFIXES if (folder / f"{split}{suffix}").is_file()]
    if len(found) > 1:
        raise ConfigError(f"both {found[0]} and {found[1]} exist; keep one file per split")
    return found[0] if found else None


def iter_rows(path: Path) -> Iterator[Row]:
    """Yield the rows of a ``.jsonl`` or ``.parquet`` file; blank JSONL lines are skipped."""
    if path.suffix == ".jsonl":
        yield from _iter_jsonl(path)
    elif path.suffix == ".parquet":
        yield from _iter_parquet(path)
    else:
        raise ConfigError(f"{path}: unsupported data file type (use {' or '.join(DATA_SUFFIXES)})")


def _iter_jsonl(path: Path) -> Iterator[Row]:
    try:
        handle = path.open(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not part of the data
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(data, dict):
                    raise DataError(f"{path}:{number}: expected a JSON object, got {type(data).__name__}")
                yield Row(data, f"{path}:{number}")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _iter_parquet(path: Path) -> Iterator[Row]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    for number, record in enumerate(frame.to_dict(orient="records"), start=1):
        yield Row({key: _plain(value) for key, value in record.items()}, f"{path}:row {number}")


def _plain(value: Any) -> Any:
    """numpy scalars/arrays from Parquet -> Python values, so type checks and JSON output work."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def validate_row(row: Row, fields: Sequence[Field]) -> None:
    """Raise :class:`DataError` naming the first missing or malformed field of ``row``."""
    for field in fields:
        if field.name not in row.data:
            present = ", ".join(sorted(row.data)) or "none"
            raise DataError(f"{row.where}: missing field '{field.name}' (fields present: {present})")
        problem = field.problem(row.data[field.name])
        if problem:
            raise DataError(f"{row.where}: field '{field.name}' {problem}")


def read_validated(path: Path, fields: Sequence[Field]) -> list[Row]:
    """All rows of ``path``, each checked against ``fields``; an empty file is an error too."""
    rows = []
    for row in iter_rows(path):
        validate_row(row, fields)
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write rows as JSON Lines (UTF-8, one object per line) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    tmp.replace(path)
