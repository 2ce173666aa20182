"""Prompt sets of the text-to-image tasks: where they live under ``--data-dir`` and how they are read.

CLIPScore and ImageReward have no fixed official prompt list (papers use COCO captions, DrawBench,
their own sets), so a run names its own file: ``.txt`` (one prompt per line, the simplest thing to
write by hand) or ``.jsonl`` (``{"prompt": ..., "id": ...}``, for sets that carry stable ids). Every
bad line fails the run before a model loads, in one line naming ``file:line``, because a prompt set
with a silently skipped line gives a number over a different set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mmada_bench.errors import DataError

#: Prompt file names tried, in order, inside ``<data-dir>/<task>/``.
PROMPT_FILES = ("prompts.jsonl", "prompts.txt")
#: GenEval's own metadata file name (``<data-dir>/geneval/``).
GENEVAL_METADATA = "evaluation_metadata.jsonl"


@dataclass(frozen=True)
class PromptRow:
    """One prompt: ``id`` is the file's own id (jsonl) or the 0-based prompt index (txt)."""

    id: str
    prompt: str
    index: int


def task_folder(data_root: Path | None, task: str) -> Path:
    """``<data-dir>/<task>``; t2i tasks have no bundled sample data, so ``--data-dir`` is required."""
    if data_root is None:
        raise DataError(f"task {task}: needs --data-dir DIR with DIR/{task}/ (no bundled sample prompts)")
    return Path(data_root) / task


def find_prompt_file(data_root: Path | None, task: str) -> Path:
    """The task's prompt file (``prompts.jsonl`` preferred over ``prompts.txt``)."""
    folder = task_folder(data_root, task)
    for name in PROMPT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"task {task}: no prompt file: expected {folder}/prompts.jsonl or {folder}/prompts.txt")


def read_prompts(path: Path) -> list[PromptRow]:
    """All prompts of a ``.txt`` or ``.jsonl`` file, in file order (blank lines skipped).

    Surrounding whitespace of a txt line is dropped (an editor's trailing space would otherwise change
    the prompt, its request key and its image); jsonl prompts are taken exactly as written.
    """
    path = Path(path)
    if path.suffix not in (".txt", ".jsonl"):
        raise DataError(f"{path}: prompt files must be .txt or .jsonl")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read prompt file ({exc})") from None
    rows: list[PromptRow] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        if path.suffix == ".txt":
            row = PromptRow(str(len(rows)), line.strip(), len(rows))
        else:
            row = _jsonl_row(line, where, len(rows))
        if row.id in seen:
            raise DataError(f"{where}: id {row.id!r} repeats line {seen[row.id]}")
        seen[row.id] = lineno
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no prompts")
    return rows


def _jsonl_row(line: str, where: str, index: int) -> PromptRow:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    prompt = obj.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DataError(f"{where}: field 'prompt' missing or not a non-empty string")
    raw_id = obj.get("id", index)
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or str(raw_id) == "":
        raise DataError(f"{where}: field 'id' must be a non-empty string or an integer, got {raw_id!r}")
    return PromptRow(str(raw_id), prompt, index)
