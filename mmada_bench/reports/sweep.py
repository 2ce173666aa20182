"""Step (and other sampler-setting) sweeps: a grid of settings, one resumable run per point, one table.

``--grid steps=16,32,64 block_length=8,16`` is the cartesian product of the values; each point is a
normal run (``runner.run_suite``) into ``DIR/<point>/`` -- so an interrupted sweep resumes point by
point and any point can be read like any run -- all sharing one loaded model. Every point is checked
with the runner's own setting validation *before any work*: points the sampler cannot run (steps not
divisible per block, gen_length not a multiple of block_length) are listed with the nearest valid
values and skipped. The table reads the point folders back, so it can be rebuilt at any time.

Grid keys are sampler settings, scoped like ``--sampler`` (``gsm8k.steps``, ``t2i.timesteps``); two
keys span modalities: ``steps`` also sets text-to-image ``timesteps``, and ``guidance`` sets
``cfg_scale`` (text, understanding) and ``guidance_scale`` (text-to-image).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.reports import plots
from mmada_bench.reports.tables import fmt, fmt_pm, markdown, points_scale, write_outputs
from mmada_bench.results.reader import RunFolder
from mmada_bench.runner import RunConfig, build_adapter, check_sampler, run_suite
from mmada_bench.tasks import resolve_tasks

#: Grid keys that stand for one setting per modality.
ALIASES: dict[str, dict[str, str]] = {
    "steps": {"": "steps", "t2i": "timesteps"},
    "guidance": {"text": "cfg_scale", "mmu": "cfg_scale", "t2i": "guidance_scale"},
}
#: Settings that count denoising steps (the x axis of the steps plot), per modality.
STEP_SETTINGS = ("steps", "timesteps")


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["steps=16,32", "block_length=8"]`` -> ``{"steps": ["16", "32"], "block_length": ["8"]}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not parts:
            raise ConfigError(f"--grid {item!r}: expected name=value1,value2,...")
        if key in grid:
            raise ConfigError(f"--grid {key} given twice; list all its values once ({key}=a,b,c)")
        if len(set(parts)) != len(parts):
            raise ConfigError(f"--grid {key}: a value is repeated in {values!r}")
        grid[key] = parts
    if not grid:
        raise ConfigError("--grid needs at least one name=values")
    return grid


@dataclass(frozen=True)
class GridPoint:
    """One combination of grid values (grid key -> value, in grid order)."""

    values: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        """Folder name and table label; the same ``key=value,...`` syntax ``--sampler`` takes."""
        return ",".join(f"{k}={v}" for k, v in self.values)

    def assignments(self, base: dict[str, str]) -> dict[str, str]:
        """``--sampler`` assignments of this point: the base ones, then the grid's (aliases expanded)."""
        out = dict(base)
        for key, value in self.values:
            if key in ALIASES:
                for scope, field_name in ALIASES[key].items():
                    out[f"{scope}.{field_name}" if scope else field_name] = value
            else:
                out[key] = value
        return out


@dataclass(frozen=True)
class Skipped:
    point: GridPoint
    reason: str


def expand(grid: dict[str, list[str]]) -> list[GridPoint]:
    keys = list(grid)
    return [GridPoint(tuple(zip(keys, combo, strict=True))) for combo in itertools.product(*(grid[k] for k in keys))]


def _check_keys(grid: dict[str, list[str]], tasks: list[str]) -> None:
    """A grid key no task of the run has is a typo, not a skippable point: refuse the whole sweep."""
    specs = resolve_tasks(tasks)
    known = {f for s in specs for f in s.settings_type.field_names()}
    scopes = {s.name for s in specs} | {s.modality for s in specs}
    for key in grid:
        if key in ALIASES:
            continue
        scope, _, name = key.rpartition(".")
        if scope and scope not in scopes:
            raise ConfigError(f"--grid {key}: {scope!r} is none of this sweep's tasks or their modalities")
        if name not in known:
            raise ConfigError(f"--grid {key}: unknown sampler setting {name!r}; known: {', '.join(sorted(known))}")


def check_points(grid: dict[str, list[str]], base: dict[str, str], tasks: list[str]) -> tuple[list[GridPoint], list[Skipped]]:
    """Runnable points and skipped ones (with the validator's reason, which names the nearest valid values)."""
    check_sampler(base, tasks)
    _check_keys(grid, tasks)
    ok, skipped = [], []
    for point in expand(grid):
        try:
            check_sampler(point.assignments(base), tasks)
        except ConfigError as exc:
            skipped.append(Skipped(point, str(exc)))
        else:
            ok.append(point)
    return ok, skipped


def run_sweep(config: RunConfig, grid: dict[str, list[str]], adapter: Any = None,
              out: TextIO | None = None) -> dict[str, Any]:
    """Check every point, then run the runnable ones into ``config.output/<point>/`` with one model.

    Returns the written report (see :func:`write_report`). ``config.output`` is the sweep folder.
    """
    points, skipped = check_points(grid, dict(config.sampler), config.tasks)
    for item in skipped:
        _say(out, f"skipping {item.point.name}: {item.reason}")
    if not points:
        raise ConfigError("no grid point can run (see the reasons above); change the grid")
    root = Path(config.output)
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"grid": grid, "tasks": config.tasks, "sampler": dict(config.sampler),
                "points": [{"name": p.name, "values": dict(p.values)} for p in points],
                "skipped": [{"name": s.point.name, "values": dict(s.point.values), "reason": s.reason} for s in skipped]}
    (root / "sweep.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    adapter = adapter or build_adapter(config)
    for i, point in enumerate(points, 1):
        _say(out, f"[{i}/{len(points)}] {point.name}")
        run_suite(replace(config, output=root / point.name, sampler=point.assignments(config.sampler)),
                  adapter=adapter, out=out)
    return write_report(root)


def _say(out: TextIO | None, line: str) -> None:
    if out is not None:
        out.write(line + "\n")


def _matching_entries(folder: RunFolder, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of the folder run with this point's settings (a reused folder may hold others)."""
    entries = []
    for task, resolved in settings.items():
        found = [e for e in folder.results["tasks"].values() if e["task"] == task and e["settings"] == resolved]
        if found:
            entries.append(found[-1])
    return entries


def sweep_frame(root: Path, manifest: dict[str, Any]):
    """One row per (point, task, metric): stored value and stderr, points (x100 for proportions), cost."""
    import pandas as pd

    rows = []
    grid_keys = list(manifest["grid"])
    for point in manifest["points"]:
        folder = RunFolder.open(root / point["name"])
        assignments = GridPoint(tuple(point["values"].items())).assignments(manifest["sampler"])
        resolved = {name: s.to_dict() for name, s in check_sampler(assignments, manifest["tasks"]).items()}
        costs = folder.entries_frame().set_index("key")
        for entry in _matching_entries(folder, resolved):
            cost = costs.loc[entry["key"]]
            steps = next((entry["settings"][k] for k in STEP_SETTINGS if k in entry["settings"]), None)
            for metric, value in entry["metrics"].items():
                scale = points_scale(metric, value.get("unit", ""))
                v, se = value.get("value"), value.get("stderr")
                rows.append({
                    "point": point["name"], **{k: point["values"][k] for k in grid_keys}, "task": entry["task"],
                    "metric": metric, "primary": metric == entry["primary_metric"], "value": v, "stderr": se,
                    "points": None if v is None else v * scale, "points_stderr": None if se is None else se * scale,
                    "n": entry["n_samples"], "steps": steps, "nfe": cost["nfe"], "nfe_per_sample": cost["nfe_per_sample"],
                    "tokens_per_forward": cost["tokens_per_forward"], "tokens_per_second": cost["tokens_per_second"],
                    "seconds_per_sample": cost["seconds_per_sample"], "key": entry["key"],
                })
    return pd.DataFrame(rows)


def sweep_markdown(frame: Any, manifest: dict[str, Any]) -> str:
    """Primary metric per point and task; skipped points listed with their reasons below the table."""
    import pandas as pd

    primary = frame[frame["primary"]] if len(frame) else frame
    table = pd.DataFrame({
        "point": primary["point"], "task": primary["task"], "metric": primary["metric"],
        "value ± stderr": [fmt_pm(v, s) for v, s in zip(primary["points"], primary["points_stderr"], strict=True)],
        "n": primary["n"], "NFE/sample": [fmt(v) for v in primary["nfe_per_sample"]],
        "TPF": [fmt(v, 2) for v in primary["tokens_per_forward"]],
        "tokens/s": [fmt(v) for v in primary["tokens_per_second"]],
        "s/sample": [fmt(v, 3) for v in primary["seconds_per_sample"]],
    })
    lines = [f"# Sweep over {', '.join(manifest['grid'])} ({', '.join(manifest['tasks'])})", "",
             "Values in points (x100) for proportions; ± is the bootstrap standard error; TPF = decoded tokens "
             "per forward pass.", "", markdown(table)]
    if manifest["skipped"]:
        lines += ["", "Skipped points (the sampler cannot run them):", ""]
        lines += [f"- `{s['name']}`: {s['reason']}" for s in manifest["skipped"]]
    return "\n".join(lines)


def write_report(root: Path) -> dict[str, Any]:
    """(Re)build ``sweep.csv``, ``sweep.md`` and the two plots from ``root/sweep.json`` and the point folders."""
    manifest = json.loads((Path(root) / "sweep.json").read_text(encoding="utf-8"))
    frame = sweep_frame(Path(root), manifest)
    if frame.empty:
        raise DataError(f"{root}: no point folder holds an entry of this sweep's settings yet")
    paths = write_outputs(Path(root), "sweep", frame, sweep_markdown(frame, manifest))
    primary = frame[frame["primary"]].copy()
    others = [k for k in manifest["grid"] if k not in ("steps", "timesteps") and not k.endswith((".steps", ".timesteps"))]
    primary["series"] = [
        row["task"] + "".join(f", {k}={row[k]}" for k in others) for _, row in primary.iterrows()
    ] if len(primary) else []
    paths["plot_steps"] = plots.line_plot(
        primary, "steps", "points", "points_stderr", "series", Path(root) / "sweep_steps.png", xlabel="denoising steps",
        ylabel="primary metric (points)", title="metric vs steps", log_x=True)
    paths["plot_seconds"] = plots.line_plot(
        primary, "seconds_per_sample", "points", "points_stderr", "series", Path(root) / "sweep_seconds.png",
        xlabel="seconds per sample", ylabel="primary metric (points)", title="metric vs time")
    return {"frame": frame, "paths": paths, "manifest": manifest}
