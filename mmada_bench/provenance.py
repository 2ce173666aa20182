"""Where a result came from: package versions, git revision, machine -- recorded in every results file.

A score is only reproducible if the code, libraries and hardware that produced it are known; these
helpers collect that cheaply and never fail a run (a missing git or package becomes ``None``).
"""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

#: Packages whose versions change results or their interpretation.
TRACKED_PACKAGES = (
    "mmada-bench", "torch", "transformers", "lm-eval", "datasets", "accelerate", "numpy", "tokenizers",
    "safetensors", "sympy", "math-verify", "antlr4-python3-runtime",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_revision(path: Path | None = None) -> dict[str, Any]:
    """``{"revision": sha, "dirty": bool}`` of the checkout holding ``path`` (this package by default)."""
    folder = path or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}
    return {"revision": sha or None, "dirty": bool(status.strip())}


def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "gpu": None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info
