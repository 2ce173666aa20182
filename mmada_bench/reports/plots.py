"""Matplotlib figures of the reports (PNG, Agg backend: no display needed on CI or servers).

Each function takes a tidy pandas frame and writes one file; nothing here reads run folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _number(value: Any, default: float) -> float:
    """A plottable float (missing values and NaN become ``default``)."""
    return default if value is None or value != value else float(value)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def line_plot(frame: Any, x: str, y: str, err: str, series: str, path: Path, *, xlabel: str, ylabel: str,
              title: str, log_x: bool = False) -> Path:
    """One line per value of ``series`` (e.g. task), points sorted by ``x``, error bars from ``err``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    try:
        for name, part in frame.dropna(subset=[x, y]).groupby(series, sort=True):
            part = part.sort_values(x)
            ax.errorbar(part[x], part[y], yerr=part[err].fillna(0.0), marker="o", capsize=3, label=str(name))
        values = sorted(frame[x].dropna().unique())
        if log_x and values and values[0] > 0 and len(values) > 1:
            ax.set_xscale("log", base=2)
            ax.set_xticks(values, [f"{v:g}" for v in values])
            ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def grouped_bars(frame: Any, group: str, bar: str, y: str, err: str, path: Path, *, ylabel: str, title: str) -> Path:
    """Bars of ``y`` per ``group`` (x axis, e.g. task metric), one colour per ``bar`` (e.g. stage), in
    the order the frame lists them."""
    plt = _pyplot()
    groups = list(dict.fromkeys(frame[group]))
    bars = list(dict.fromkeys(frame[bar]))
    width = 0.8 / max(len(bars), 1)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * len(groups) * max(len(bars), 1) * 0.6), 4.2))
    try:
        for i, name in enumerate(bars):
            part = frame[frame[bar] == name].set_index(group)
            xs = [g + (i - (len(bars) - 1) / 2) * width for g in range(len(groups))]
            ys = [_number(part[y].get(g), float("nan")) for g in groups]
            es = [_number(part[err].get(g), 0.0) for g in groups]
            ax.bar(xs, ys, width=width, yerr=es, capsize=3, label=str(name))
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, rotation=20, ha="right", fontsize="small")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
