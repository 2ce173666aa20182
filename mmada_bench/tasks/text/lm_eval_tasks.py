"""Text tasks as lm-eval task folders built on lm-eval's *packaged* configs.

We never restate a prompt, filter or metric: every generated task YAML is an ``include:`` of the
packaged one (so ``doc_to_text``, ``filter_list``, ``metric_list``, ``process_results`` and few-shot
rules are lm-eval's), plus -- for offline data -- a ``dataset_path: json`` override pointing at files
we staged. Group configs (MMLU's stem/humanities/..., Minerva MATH's seven subjects) are the packaged
ones with their member list narrowed to the subtasks that actually have data, so lm-eval still does
the size-weighted aggregation itself.

Why stage instead of pointing lm-eval at the user's files: the rows are validated first (one-line
errors naming file, line and field, before a model is loaded), single-file datasets are split into
the per-subject configs lm-eval expects (MMLU by ``subject``, MATH by ``type``), and the run works on
a frozen copy whose hash goes into the results.

Task names are lm-eval's own (``gsm8k``, ``mmlu_anatomy``, ``minerva_math``...), so result files line
up with published lm-eval results; a folder written here also works with ``lm_eval --include_path``,
where it overrides the packaged tasks of the same names.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mmada_bench.errors import DataError
from mmada_bench.hashing import file_sha256
from mmada_bench.tasks.datafiles import Field, Row, find_split_file, read_validated, write_jsonl


@cache
def lm_eval_tasks_dir() -> Path:
    """``lm_eval/tasks`` of the installed lm-eval, found without importing lm-eval (slow)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("lm-eval is not installed; text tasks need it (pip install 'lm-eval[math]')")
    return Path(next(iter(spec.submodule_search_locations))) / "tasks"


class _TolerantLoader(yaml.SafeLoader):
    """Reads packaged YAMLs that contain ``!function`` tags (kept as strings; we only read names)."""


_TolerantLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def read_packaged_yaml(relative: str) -> dict[str, Any]:
    path = lm_eval_tasks_dir() / relative
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_TolerantLoader)


@dataclass(frozen=True)
class FunctionRef:
    """A ``!function module.name`` value in a generated YAML (lm-eval imports it)."""

    qualname: str


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(FunctionRef, lambda dumper, ref: dumper.represent_scalar("!function", ref.qualname))


@dataclass(frozen=True)
class Subtask:
    """One lm-eval task of ours: its name, the packaged YAML it includes and the group it sits in."""

    key: str | None
    name: str
    packaged: str
    group: str | None = None


@dataclass(frozen=True)
class GroupDef:
    """A packaged group config whose member list is rebuilt from the subtasks that have data."""

    name: str
    packaged: str
    parent: str | None = None


@dataclass
class PreparedTask:
    """An lm-eval task folder ready for ``TaskManager(include_path=folder, include_defaults=False)``."""

    include_dir: Path
    lm_eval_name: str
    subtasks: list[str]
    source: str
    data_files: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


@dataclass
class LoadedTextData:
    """Checked rows of a text task, per subtask key, before anything is written."""

    source: str  # "local" (staged files) or "hub" (lm-eval reads the Hugging Face dataset)
    eval_parts: dict[str | None, list[Row]] = field(default_factory=dict)
    shot_parts: dict[str | None, list[Row]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    #: ``--samples``: lm-eval subtask name -> sorted document indices (None: every document)
    selection: dict[str, list[int]] | None = None

    def info(self) -> dict[str, Any]:
        rows = {str(k): len(v) for k, v in self.eval_parts.items()}
        return {"source": self.source, "files_sha256": dict(self.files), "rows": rows}


@dataclass
class LmEvalTask:
    """How one registry text task maps onto lm-eval.

    Attributes:
        lm_eval_name: the task or group name asked of lm-eval.
        fields: required data columns (validated before staging).
        eval_split / fewshot_split: split file names under ``--data-dir/<task>/``; ``fewshot_split``
            None when the packaged config brings its own exemplars (Minerva MATH).
        fewshot_same_split: few-shot examples come from the evaluated split itself (GPQA has only
            ``train``); lm-eval then leaves the current question out, so one more row is needed.
        subtask_of: row -> subtask key, for datasets lm-eval splits into per-subject configs.
        subtasks: key (or None) -> :class:`Subtask`; ``all_keys`` lists every key (hub mode).
        groups: packaged groups to rebuild, innermost first.
        check_dependencies: raises a one-line error when a package the task's scorer needs is missing.
        overrides: extra keys for every subtask YAML (used only to fix packaged-config bugs; each
            one is documented where it is defined).
    """

    lm_eval_name: str
    fields: Sequence[Field]
    eval_split: str
    fewshot_split: str | None
    subtask: Callable[[str | None], Subtask]
    all_keys: Callable[[], list[str | None]] = lambda: [None]
    subtask_of: Callable[[dict[str, Any]], str] | None = None
    key_field: str | None = None
    groups: Sequence[GroupDef] = ()
    fewshot_same_split: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    check_dependencies: Callable[[], None] | None = None

    # -- staging ------------------------------------------------------------------------------
    def load(self, data_dir: Path | None, num_fewshot: int) -> LoadedTextData:
        """Read and check the split files (or note that lm-eval reads the hub); writes nothing."""
        if data_dir is None:
            return LoadedTextData("hub")
        eval_rows, eval_file = self._read_split(data_dir, self.eval_split, required=True)
        need_fewshot = num_fewshot > 0 and self.fewshot_split is not None and not self.fewshot_same_split
        shot_rows, shot_file = self._read_split(data_dir, self.fewshot_split, required=need_fewshot)
        files = {str(f): file_sha256(f) for f in (eval_file, shot_file) if f is not None}
        eval_parts = self._partition(eval_rows)
        shot_parts = self._partition(shot_rows) if shot_rows else {}
        self._check_fewshot(eval_parts, shot_parts, eval_file, shot_file, num_fewshot)
        return LoadedTextData("local", eval_parts, shot_parts, files)

    def write(self, out_dir: Path, loaded: LoadedTextData, only: Collection[str] | None = None) -> PreparedTask:
        """Write the task folder under ``out_dir``: staged local data and YAMLs, or hub YAMLs.

        ``only`` narrows the folder to those subtask names (``--samples``): lm-eval would otherwise run every
        document of a subtask it was given no sample list for."""
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("*.yaml"):  # only what we generated: a stale subtask must not linger
            old.unlink()
        if (out_dir / "data").is_dir():
            shutil.rmtree(out_dir / "data")
        if loaded.source == "hub":
            subtasks = [self.subtask(key) for key in self.all_keys()]
            subtasks = [sub for sub in subtasks if only is None or sub.name in only]
            prepared = PreparedTask(out_dir, self.lm_eval_name, [s.name for s in subtasks], source="hub")
            for sub in subtasks:
                self._write_subtask(out_dir, sub, None)
        else:
            prepared = self._stage_local(out_dir, loaded, only)
            subtasks = [self.subtask(key) for key in prepared.rows]
        self._write_groups(out_dir, subtasks)
        return prepared

    def hub_dataset(self) -> tuple[str | None, str | None]:
        """``(dataset_path, dataset_name)`` lm-eval reads from the hub for the first subtask (the packaged
        YAML, following its ``include:`` chain), so a missing dataset can be named before a model loads."""
        found: dict[str, Any] = {}
        relative: str | None = self.subtask(self.all_keys()[0]).packaged
        while relative:
            config = read_packaged_yaml(relative)
            for key in ("dataset_path", "dataset_name"):
                if key in config and key not in found:
                    found[key] = config[key]
            include = config.get("include")
            relative = str(Path(relative).parent / include) if include else None
        return found.get("dataset_path"), found.get("dataset_name")

    def prepare(self, out_dir: Path, data_dir: Path | None, num_fewshot: int) -> PreparedTask:
        """:meth:`load` then :meth:`write` (for ``lm-eval export-tasks``)."""
        return self.write(out_dir, self.load(data_dir, num_fewshot))

    def _stage_local(self, out_dir: Path, loaded: LoadedTextData, only: Collection[str] | None) -> PreparedTask:
        prepared = PreparedTask(out_dir, self.lm_eval_name, [], source="local", data_files=dict(loaded.files))
        for key, rows in loaded.eval_parts.items():
            sub = self.subtask(key)
            if only is not None and sub.name not in only:
                continue
            folder = out_dir / "data" / (key or "all")
            shots = loaded.shot_parts.get(key, []) if self.fewshot_split != self.eval_split else []
            columns = uniform_columns([r.data for r in [*rows, *shots]], [f.name for f in self.fields])
            split_files = {self.eval_split: folder / f"{self.eval_split}.jsonl"}
            write_jsonl(split_files[self.eval_split], [_project(r.data, columns) for r in rows])
            if shots:
                split_files[self.fewshot_split] = folder / f"{self.fewshot_split}.jsonl"
                write_jsonl(split_files[self.fewshot_split], [_project(r.data, columns) for r in shots])
            self._write_subtask(out_dir, sub, split_files)
            prepared.subtasks.append(sub.name)
            prepared.rows[key] = len(rows)
        return prepared

    def _read_split(self, data_dir: Path, split: str | None, required: bool) -> tuple[list[Row], Path | None]:
        if split is None:
            return [], None
        path = find_split_file(data_dir, split)
        if path is None:
            if required:
                raise DataError(f"{data_dir / split}.jsonl (or .parquet) not found: the {split!r} split is needed")
            return [], None
        return read_validated(path, self.fields), path

    def _partition(self, rows: list[Row]) -> dict[str | None, list[Row]]:
        parts: dict[str | None, list[Row]] = defaultdict(list)
        for row in rows:
            parts[self.subtask_of(row.data) if self.subtask_of else None].append(row)
        return dict(sorted(parts.items(), key=lambda kv: kv[0] or ""))

    def _check_fewshot(
        self,
        eval_parts: dict[str | None, list[Row]],
        shot_parts: dict[str | None, list[Row]],
        eval_file: Path,
        shot_file: Path | None,
        num_fewshot: int,
    ) -> None:
        """Refuse data that cannot give every question ``num_fewshot`` examples (lm-eval would crash late)."""
        if num_fewshot <= 0 or self.fewshot_split is None:
            return
        for key, rows in eval_parts.items():
            what = f" for {self.key_field} {key!r}" if key is not None else ""
            if self.fewshot_same_split:
                if len(rows) < num_fewshot + 1:
                    raise DataError(
                        f"{eval_file}: {len(rows)} rows{what}; {num_fewshot}-shot needs at least {num_fewshot + 1} "
                        "(examples come from the same split) -- add rows or lower --num-fewshot"
                    )
                continue
            have = len(shot_parts.get(key, []))
            if have < num_fewshot:
                raise DataError(
                    f"{shot_file}: {have} {self.fewshot_split!r} rows{what}; {num_fewshot}-shot needs {num_fewshot} "
                    "-- add rows or lower --num-fewshot"
                )

    # -- YAML ---------------------------------------------------------------------------------
    def _write_subtask(self, out_dir: Path, sub: Subtask, split_files: dict[str, Path] | None) -> None:
        config: dict[str, Any] = {"include": str(lm_eval_tasks_dir() / sub.packaged), "task": sub.name}
        config.update(self.overrides)
        if split_files is not None:
            config["dataset_path"] = "json"
            config["dataset_name"] = None
            config["dataset_kwargs"] = {"data_files": {k: str(v.resolve()) for k, v in split_files.items()}}
        _dump(out_dir / f"{sub.name}.yaml", config)

    def _write_groups(self, out_dir: Path, subtasks: list[Subtask]) -> None:
        members: dict[str, list[str]] = defaultdict(list)
        for sub in subtasks:
            if sub.group:
                members[sub.group].append(sub.name)
        for group in self.groups:  # innermost first, so a parent sees its non-empty children
            if not members.get(group.name):
                continue
            config = read_packaged_yaml(group.packaged)
            config["task"] = members[group.name]
            _dump(out_dir / f"group_{group.name}.yaml", config)
            if group.parent:
                members[group.parent].append(group.name)


def uniform_columns(rows: Sequence[dict[str, Any]], required: Sequence[str]) -> list[str]:
    """The columns lm-eval is given: the required ones, plus every extra scalar column that all rows (of
    both splits, which lm-eval loads as one dataset) have with one JSON type.

    Hugging Face ``datasets`` infers one schema per dataset; an extra column in some rows only, or an
    integer in one row and a string in another, makes its loader fail after the model loaded. Required
    columns were validated row by row; extras that could break the schema (nested values included) are
    left out of the staged copy -- lm-eval's prompts read only required columns, the user's files are
    untouched and their hashes recorded."""
    if not rows:
        return list(required)
    common = set(rows[0]).intersection(*rows[1:]) - set(required)
    extras = []
    for column in sorted(common):
        kinds = {_json_kind(r[column]) for r in rows} - {"null"}
        if len(kinds) <= 1 and "nested" not in kinds:
            extras.append(column)
    return [*required, *extras]


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "nested"  # lists and objects: Arrow would need their element types to agree as well


def _project(row: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    return {c: row[c] for c in columns}


def _dump(path: Path, config: dict[str, Any]) -> None:
    header = "# Generated by mmada_bench from lm-eval's packaged config; edits are overwritten.\n"
    text = yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    path.write_text(header + text, encoding="utf-8")
