"""Leaderboards from run folders, in OpenCompass's summary shape: dataset, version, metric, mode, models.

One row per (task, metric), one column per run. A number is only comparable with its row if it was
made the same way, so every cell's *protocol* -- few-shot count, sampler settings, data-file hashes,
scorer rule, example limit -- is compared with the majority of its row; a cell that differs is marked
``[n]`` and footnote ``n`` says how. ``--reported`` adds the paper's numbers as separate columns
headed ``<model> (paper)``, never in a measured column.

``version`` is the short hash of the row's majority data files (OpenCompass hashes its dataset config
there); ``mode`` is ``ppl`` for log-likelihood tasks and ``gen`` for generated answers, as in OpenCompass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmada_bench.errors import DataError
from mmada_bench.reports.reported import REPORTED, SOURCE
from mmada_bench.reports.tables import fmt, markdown, points_scale, write_outputs
from mmada_bench.results.reader import RunFolder, data_fingerprint, settings_fingerprint

#: Protocol fields compared across a row, with how a footnote names them.
PROTOCOL_FIELDS = {"num_fewshot": "few-shot", "settings": "sampler settings", "data": "data hash",
                   "rule": "scorer rule", "limit": "limit"}
REPORTED_SUFFIX = " (paper)"


def _mode(entry: dict[str, Any]) -> str:
    requires = (entry.get("spec") or {}).get("requires") or []
    return "ppl" if requires and all(r.startswith("loglikelihood") for r in requires) else "gen"


def _protocol(entry: dict[str, Any], metric: str) -> dict[str, Any]:
    return {"num_fewshot": entry.get("num_fewshot"), "settings": settings_fingerprint(entry),
            "data": data_fingerprint(entry), "rule": entry["metrics"][metric].get("rule", ""),
            "limit": entry.get("limit")}


def column_names(runs: Sequence[RunFolder]) -> list[str]:
    """Run labels, made unique with the folder name where two runs share one."""
    labels = [run.label for run in runs]
    return [label if labels.count(label) == 1 else f"{label} ({run.path.name})" for label, run in zip(labels, runs, strict=True)]


def _settings_diff(mine: dict[str, Any], usual: dict[str, Any], label: str) -> str:
    keys = sorted(k for k in set(mine) | set(usual) if mine.get(k) != usual.get(k))
    return ", ".join(f"{k}={mine.get(k)} ({label}: {usual.get(k)})" for k in keys)


def build(runs: Sequence[RunFolder], reported: Sequence[str] = ()) -> tuple[Any, list[str], dict[tuple[int, str], int]]:
    """The leaderboard frame (cells in points for proportions, ``None`` where a run lacks the row), its
    footnotes, and which footnote marks which (row number, column); the frame's ``notes`` column lists
    the footnotes of each row for CSV readers."""
    import pandas as pd

    names = column_names(runs)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for name, run in zip(names, runs, strict=True):
        for entry in run.results["tasks"].values():
            for metric in sorted(entry["metrics"], key=lambda m: (m != entry["primary_metric"], m)):
                row = rows.setdefault((entry["task"], metric), {"cells": {}, "entry": entry})
                if name in row["cells"] and row["cells"][name] is not entry:
                    raise DataError(f"{run.path}: holds more than one entry of {entry['task']} "
                                    f"({row['cells'][name]['key']}, {entry['key']}); a leaderboard needs one per task")
                row["cells"][name] = entry
    footnotes: list[str] = []
    marks: dict[tuple[int, str], int] = {}
    table = []
    for (task, metric), row in rows.items():
        protocols = {name: _protocol(entry, metric) for name, entry in row["cells"].items()}
        counts = Counter(tuple(sorted(p.items(), key=lambda kv: kv[0])) for p in protocols.values())
        # the most common protocol of the row; with no repeated one, the first column's
        (top, top_count), = counts.most_common(1)
        first = next(n for n in names if n in row["cells"])
        majority = dict(top) if top_count > 1 else protocols[first]
        usual = "row" if top_count > 1 else "first column"
        usual_entry = next(row["cells"][n] for n in names if n in row["cells"] and protocols[n] == majority)
        out: dict[str, Any] = {"dataset": task, "version": (majority.get("data") or "-")[:6], "metric": metric,
                               "mode": _mode(row["entry"])}
        notes = []
        for name in names:
            entry = row["cells"].get(name)
            if entry is None:
                out[name] = None
                continue
            value = entry["metrics"][metric].get("value")
            out[name] = None if value is None else round(value * points_scale(metric, entry["metrics"][metric].get("unit", "")), 4)
            differs = [f for f in PROTOCOL_FIELDS if protocols[name][f] != majority.get(f)]
            if differs:
                parts = []
                for f in differs:
                    if f == "settings":
                        parts.append("sampler settings " + _settings_diff(entry["settings"], usual_entry["settings"], usual))
                    else:
                        parts.append(f"{PROTOCOL_FIELDS[f]} {protocols[name][f]} ({usual}: {majority.get(f)})")
                footnotes.append(f"{name} on {task} {metric}: " + "; ".join(parts))
                notes.append(f"[{len(footnotes)}]")
                marks[(len(table), name)] = len(footnotes)
        for model in reported:
            value = REPORTED.get(model, {}).get(task) if metric == row["entry"]["primary_metric"] else None
            out[model + REPORTED_SUFFIX] = value
        out["notes"] = ",".join(notes)
        table.append(out)
    columns = ["dataset", "version", "metric", "mode", *names, *(m + REPORTED_SUFFIX for m in reported), "notes"]
    frame = pd.DataFrame(table, columns=columns)
    empty = [m + REPORTED_SUFFIX for m in reported if frame[m + REPORTED_SUFFIX].isna().all()]
    return frame.drop(columns=empty), footnotes, marks


def leaderboard_markdown(frame: Any, footnotes: list[str], marks: dict[tuple[int, str], int]) -> str:
    """Pipe table; a marked cell reads ``12.3 [1]``; paper columns and footnotes explained below."""
    import pandas as pd

    shown = pd.DataFrame({c: frame[c] for c in ("dataset", "version", "metric", "mode")})
    for column in frame.columns[4:-1]:
        cells = []
        for i, value in enumerate(frame[column]):
            text = fmt(value, 2)
            if (i, column) in marks:
                text += f" [{marks[(i, column)]}]"
            cells.append(text)
        shown[column] = cells
    lines = ["# Leaderboard", "", "Points (x100) for proportions; other metrics as stored.", "", markdown(shown)]
    if any(c.endswith(REPORTED_SUFFIX) for c in frame.columns):
        lines += ["", f"Columns marked \"{REPORTED_SUFFIX.strip()}\" are numbers reported in the {SOURCE}, "
                  "not measured here; their protocols are the paper's and may differ from these runs."]
    if footnotes:
        lines += ["", "Cells whose protocol differs from the majority of their row:", ""]
        lines += [f"[{i}] {text}" for i, text in enumerate(footnotes, 1)]
    return "\n".join(lines)


def write_leaderboard(paths: Sequence[str | Path], output: Path, reported: Sequence[str] = ()) -> dict[str, Any]:
    """``leaderboard.csv`` and ``leaderboard.md`` in ``output`` from run folders (each checked on open)."""
    runs = [RunFolder.open(p) for p in paths]
    frame, footnotes, marks = build(runs, reported)
    md = leaderboard_markdown(frame, footnotes, marks)
    return {"frame": frame, "footnotes": footnotes, "paths": write_outputs(Path(output), "leaderboard", frame, md)}
