"""Command-line entry point: ``mmada-bench <command> ...``.

Each command is one thin module of this package that contributes ``add_parser(subparsers)``; this
file finds them (a new command is a new module, no list to edit), and turns user errors
(:class:`MMaDABenchError`) into one line on stderr and a non-zero exit, so nothing a user mistypes
ends in a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

# OpenMP threads that spin while waiting make small-model CPU inference 10-50x slower whenever the
# cores are shared (CI, a laptop running tests); passive waiting costs nothing measurable otherwise.
# Must be set before torch loads its OpenMP runtime, hence here, before any command module is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from mmada_bench import __version__
from mmada_bench.errors import MMaDABenchError

#: Commands listed first in ``--help``, in this order; any other command module follows alphabetically.
_FIRST = ("run", "tasks", "inspect", "sweep", "stages", "leaderboard", "regress", "train")


def _commands() -> list:
    package = importlib.import_module(__name__)
    names = [m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda name: (_FIRST.index(name) if name in _FIRST else len(_FIRST), name))
    modules = [importlib.import_module(f"{__name__}.{name}") for name in names]
    return [module for module in modules if hasattr(module, "add_parser")]


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
