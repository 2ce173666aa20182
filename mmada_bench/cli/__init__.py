"""Command-line entry point: ``mmada-bench <command> ...``.

Each command is one thin module of this package (``run``, ``tasks``, ``inspect``, ``lm_eval``) that
contributes ``add_parser(subparsers)`` and ``run(args)``; this file only wires them and turns user errors (:class:`MMaDABenchError`) into one line on stderr
and a non-zero exit, so nothing a user mistypes ends in a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

# OpenMP threads that spin while waiting make small-model CPU inference 10-50x slower whenever the
# cores are shared (CI, a laptop running tests); passive waiting costs nothing measurable otherwise.
# Must be set before torch loads its OpenMP runtime, hence here, before any command module is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from mmada_bench import __version__
from mmada_bench.errors import MMaDABenchError


def _commands() -> list:
    from mmada_bench.cli import inspect, lm_eval, run, tasks

    return [run, tasks, inspect, lm_eval]


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints usage + message on bad flags; we keep the message to one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"mmada-bench: error: {message} (see --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(
        prog="mmada-bench",
        description="Evaluate and benchmark MMaDA checkpoints: text, multimodal understanding, text-to-image.",
    )
    parser.add_argument("--version", action="version", version=f"mmada-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineErrorParser)
    sub.required = True
    for module in _commands():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MMaDABenchError as exc:
        sys.stderr.write(f"mmada-bench: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("mmada-bench: interrupted; results written so far are kept\n")
        return 130
