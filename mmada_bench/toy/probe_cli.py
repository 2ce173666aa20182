"""The shared command-line shell of the toy probes: the same flags, errors and JSON for each."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from mmada_bench.errors import MMaDABenchError


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``--no-progress``, which every probe takes."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-progress", action="store_true")


def report(compute: Callable[[], Sequence[Any]], as_json: bool, print_table: Callable[[Sequence[Any]], None]) -> int:
    """Run ``compute``; a project error becomes one ``error:`` line and its exit code, a result the
    dataclasses as JSON or ``print_table``'s table."""
    try:
        results = compute()
    except MMaDABenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if as_json:
        print(json.dumps([asdict(r) for r in results], indent=1))
    else:
        print_table(results)
    return 0
