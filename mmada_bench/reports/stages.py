"""Training-stage tables (the paper's Table 5 shape): rows stages, columns task metrics, deltas.

Each stage is a checkpoint to evaluate (run into ``OUTPUT/<stage>/``) or an existing run folder (a
folder holding ``results.json`` is read as is), so a table can mix fresh runs with runs made earlier.
Each delta is against the row above, in the same units as the cell (points for proportions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from mmada_bench.errors import ConfigError
from mmada_bench.reports import plots
from mmada_bench.reports.tables import fmt, fmt_pm, markdown, points_scale, write_outputs
from mmada_bench.results.reader import RunFolder, data_fingerprint, find_entry, settings_fingerprint
from mmada_bench.runner import RunConfig, run_suite


def parse_stages(text: str) -> list[tuple[str, str]]:
    """``"stage1=DIR,stage2=DIR"`` -> ``[("stage1", "DIR"), ("stage2", "DIR")]`` (order kept)."""
    out: list[tuple[str, str]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--model {item!r}: expected stage=FOLDER (a checkpoint, preset or run folder)")
        if any(name.strip() == n for n, _ in out):
            raise ConfigError(f"--model: stage {name.strip()!r} is named twice")
        out.append((name.strip(), path.strip()))
    if not out:
        raise ConfigError("--model needs at least one stage=FOLDER")
    return out


def is_run_folder(path: str | Path) -> bool:
    return (Path(path) / "results.json").is_file()


def run_stages(stages: Sequence[tuple[str, str]], config_for: Callable[[str, str], RunConfig],
               adapter_for: Callable[[RunConfig], Any] | None = None, out: TextIO | None = None) -> list[tuple[str, RunFolder]]:
    """Open run folders; evaluate the other stages (one model at a time) with ``config_for(stage, model)``."""
    opened = []
    for name, path in stages:
        if not is_run_folder(path):
            config = config_for(name, path)
            run_suite(config, adapter=adapter_for(config) if adapter_for else None, out=out)
            path = str(config.output)
        opened.append((name, RunFolder.open(path)))
    return opened


def _tasks(runs: Sequence[tuple[str, RunFolder]], tasks: Sequence[str] | None) -> list[str]:
    if tasks:
        return list(tasks)
    names: dict[str, None] = {}
    for _, folder in runs:
        for entry in folder.results["tasks"].values():
            names.setdefault(entry["task"], None)
    return list(names)


def stage_frame(runs: Sequence[tuple[str, RunFolder]], tasks: Sequence[str] | None = None, all_metrics: bool = False):
    """One row per (stage, task, metric): stored value, points, and the delta to the previous stage."""
    import pandas as pd

    rows = []
    previous: dict[tuple[str, str], float] = {}
    for stage, folder in runs:
        current: dict[tuple[str, str], float] = {}
        for task in _tasks(runs, tasks):
            present = [e for e in folder.results["tasks"].values() if e["task"] == task]
            if not present:
                continue
            entry = find_entry(folder.results, task)
            metrics = (sorted(entry["metrics"], key=lambda m: (m != entry["primary_metric"], m)) if all_metrics
                       else [entry["primary_metric"]])
            for metric in metrics:
                value = entry["metrics"].get(metric, {})
                v, se = value.get("value"), value.get("stderr")
                scale = points_scale(metric, value.get("unit", ""))
                pts = None if v is None else v * scale
                before = previous.get((task, metric))
                rows.append({
                    "stage": stage, "task": task, "metric": metric, "column": f"{task} ({metric})", "value": v,
                    "stderr": se, "points": pts, "points_stderr": None if se is None else se * scale,
                    "delta": None if pts is None or before is None else pts - before, "n": entry["n_samples"],
                    "key": entry["key"], "run": str(folder.path),
                })
                if pts is not None:
                    current[(task, metric)] = pts
        previous = current
    return pd.DataFrame(rows, columns=["stage", "task", "metric", "column", "value", "stderr", "points",
                                       "points_stderr", "delta", "n", "key", "run"])


def protocol_notes(runs: Sequence[tuple[str, RunFolder]], frame: Any) -> list[str]:
    """Stages whose entry of a task was made differently from the first stage's (few-shot, sampler
    settings, limit, data files): a delta across such rows mixes a protocol change into the model change."""
    first: dict[str, dict[str, Any]] = {}
    notes = []
    folders = dict(runs)
    for (stage, task), part in frame.groupby(["stage", "task"], sort=False):
        entry = folders[stage].entry(part["key"].iloc[0])
        protocol = {"few-shot": entry.get("num_fewshot"), "sampler settings": settings_fingerprint(entry),
                    "limit": entry.get("limit"), "data hash": data_fingerprint(entry)}
        if task not in first:
            first[task] = {"stage": stage, **protocol}
            continue
        differs = [name for name, value in protocol.items() if value != first[task][name]]
        if differs:
            notes.append(f"{stage} / {task}: {', '.join(differs)} differ from {first[task]['stage']}")
    return notes


def stage_markdown(frame: Any, stages: Sequence[str], notes: Sequence[str] = ()) -> str:
    """Rows stages, columns ``task (metric)``; each cell ``value ± stderr (delta)``; protocol notes below."""
    import pandas as pd

    columns = list(dict.fromkeys(frame["column"]))
    table = []
    for stage in stages:
        part = frame[frame["stage"] == stage].set_index("column")
        row = {"stage": stage}
        for column in columns:
            if column not in part.index:
                row[column] = "-"
                continue
            cell = part.loc[column]
            text = fmt_pm(cell["points"], cell["points_stderr"])
            if cell["delta"] is not None and cell["delta"] == cell["delta"]:
                text += f" ({fmt(cell['delta'], signed=True)})"
            row[column] = text
        table.append(row)
    return "\n".join(["# Stage table", "",
                      "Points (x100) for proportions, ± bootstrap standard error, (change from the row above).", "",
                      markdown(pd.DataFrame(table, columns=["stage", *columns]))]
                     + (["", "Not made the same way (deltas mix in a protocol change):", ""]
                        + [f"- {n}" for n in notes] if notes else []))


def write_stage_report(runs: Sequence[tuple[str, RunFolder]], output: Path, tasks: Sequence[str] | None = None,
                       all_metrics: bool = False) -> dict[str, Any]:
    """``stages.csv``, ``stages.md`` and ``stages.png`` (grouped bars) in ``output``."""
    frame = stage_frame(runs, tasks, all_metrics)
    if frame.empty:
        raise ConfigError("no stage has any of the requested tasks; nothing to tabulate")
    stages = [name for name, _ in runs]
    paths = write_outputs(Path(output), "stages", frame, stage_markdown(frame, stages, protocol_notes(runs, frame)))
    paths["plot"] = plots.grouped_bars(frame, "column", "stage", "points", "points_stderr", Path(output) / "stages.png",
                                       ylabel="points", title="metrics by training stage")
    return {"frame": frame, "paths": paths}
