"""Typed results of a run (``schema``), the run folder they live in (``store``) and its reader."""

from mmada_bench.results.schema import (
    SCHEMA_VERSION,
    MetricValue,
    SampleRecord,
    TaskResult,
    entry_key,
    settings_hash,
)
from mmada_bench.results.store import ResultsStore

__all__ = ["SCHEMA_VERSION", "MetricValue", "ResultsStore", "SampleRecord", "TaskResult", "entry_key", "settings_hash"]
