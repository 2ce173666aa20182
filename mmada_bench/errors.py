"""User-facing error types.

Every failure a user can cause (bad checkpoint folder, malformed data row, unknown task, bad flag)
is raised as a subclass of :class:`MMaDABenchError`. The CLI turns these into a single line on stderr
and a non-zero exit, so messages must name the file, row or field at fault and stand on their own.
"""

from __future__ import annotations


class MMaDABenchError(Exception):
    """Base class for errors that are the user's input, not a bug in mmada_bench."""

    exit_code = 2


class CheckpointError(MMaDABenchError):
    """A checkpoint folder is missing files, truncated, or does not match the expected layout."""


class DataError(MMaDABenchError):
    """A data file or row cannot be read in the expected schema."""


class ConfigError(MMaDABenchError):
    """An option or combination of options is invalid (unknown task, bad sampler settings, ...)."""
