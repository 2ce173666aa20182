"""``train_log.jsonl``: one JSON object per logged step (losses per task, lr, tokens/s).

On resume the rows written after the checkpoint being resumed (steps a crash made the run redo) are
dropped first, so the log of a crashed-and-resumed run reads like the log of an uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class TrainLog:
    def __init__(self, path: Path, enabled: bool = True, resume_step: int = 0) -> None:
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines() if _step(line) <= resume_step]
            path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")


def _step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 0


def read_log(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
