"""Streaming reader for VLMEvalKit benchmark TSVs (POPE, MME, GQA, MMMU, ... in ``$LMUData``).

The real files are hundreds of MB to over 1 GB of base64 images, so they are read one record at a
time with the ``csv`` module and each image is decoded once, checked and written to the
content-addressed cache (:func:`~mmada_bench.tasks.mmu.rows.cache_image_bytes`); rows keep only a
path. Every row is checked before anything is returned, so a bad file fails in seconds with one line
naming the file, line, row, index and field, not hours into a run.

Resolution rules follow VLMEvalKit's ``ImageBaseDataset`` so rows mean the same thing there and here:
an ``image`` cell of at most 64 characters is the index of another row holding the data; a cell
written as a Python list literal holds several images (MMMU); ``image_path`` may be a list too; a
file with ``image_path`` but no ``image`` column names image files on disk.

Deliberate differences from ``pd.read_csv``: cells are kept as the exact text in the file (pandas
turns ``None``/``NA``/``nan`` into NaN and numeric columns into numbers), and an empty ``image`` cell
is an error (VLMEvalKit silently drops such rows, which changes a benchmark's size unnoticed).
"""

from __future__ import annotations

import ast
import base64
import binascii
import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mmada_bench.errors import DataError
from mmada_bench.tasks.mmu.rows import ImageRef, MMURow, cache_image_bytes, check_image_file

#: Columns every benchmark row needs (test splits without answers pass their own list).
DEFAULT_REQUIRED_COLUMNS = ("index", "question", "answer")

#: VLMEvalKit treats an ``image`` cell this short as the index of the row holding the image.
MAX_REFERENCE_LENGTH = 64

#: Columns that become MMURow attributes rather than entries of ``fields``.
_OWN_COLUMNS = ("index", "question", "answer", "image")

# One base64 image cell can be many MB; the csv default limit is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class _Pending:
    """A checked row whose images may still be a reference to another row's index."""

    where: str
    index: str
    question: str
    answer: str
    fields: dict[str, Any]
    images: tuple[ImageRef, ...] | None
    image_ref: str | None


def read_tsv(
    path: str | Path,
    required_columns: Sequence[str] = DEFAULT_REQUIRED_COLUMNS,
    *,
    image_root: str | Path | None = None,
) -> list[MMURow]:
    """Read and check every row of a VLMEvalKit TSV; raise :class:`DataError` on the first problem.

    ``required_columns`` must exist in the header and be non-empty on every row. ``image_root`` is
    where relative ``image_path`` names are looked up when the file has no ``image`` column (default:
    the TSV's folder, then ``<folder>/images/<dataset>`` as VLMEvalKit lays out ``$LMUData``).
    A UTF-8 byte-order mark is accepted.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    pending: list[_Pending] = []
    with handle:
        try:
            pending = _read_records(path, handle, required_columns, image_root)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:
            raise DataError(f"{path}: not a readable TSV ({exc})") from None
    if not pending:
        raise DataError(f"{path}: no data rows")
    return _resolve_references(path, pending)


def _read_records(
    path: Path, handle: Any, required: Sequence[str], image_root: str | Path | None
) -> list[_Pending]:
    reader = csv.reader(handle, delimiter="\t")
    header = next(reader, None)
    if not header:
        raise DataError(f"{path}: empty file (expected a header row)")
    _check_header(path, header, required)
    roots = _image_roots(path, image_root)
    has_image = "image" in header
    seen: dict[str, int] = {}
    pending: list[_Pending] = []
    number = -1
    while True:
        line = reader.line_num + 1
        values = next(reader, None)
        if values is None:
            break
        if not values:
            continue  # a blank line, skipped as pandas does
        number += 1
        index = values[header.index("index")].strip() if len(values) > header.index("index") else ""
        where = f"{path}:{line}: row {number}" + (f" (index {index})" if index else "")
        cells = _cells(where, header, values)
        for name in required:
            if not cells[name].strip():
                raise DataError(f"{where}: field '{name}' is empty")
        if not index:
            raise DataError(f"{where}: field 'index' is empty")
        if index in seen:
            raise DataError(f"{where}: field 'index' repeats index '{index}' of row {seen[index]}")
        seen[index] = number
        fields: dict[str, Any] = {k: (v if v != "" else None) for k, v in cells.items() if k not in _OWN_COLUMNS}
        if "image_path" in cells and cells["image_path"]:
            names = _list_cell(where, "image_path", cells["image_path"])
            fields["image_path"] = names[0] if len(names) == 1 else names
        images: tuple[ImageRef, ...] | None = None
        image_ref = None
        if has_image:
            cell = cells["image"].strip()
            if not cell:
                raise DataError(f"{where}: field 'image' is empty")
            if len(cell) <= MAX_REFERENCE_LENGTH:
                image_ref = cell
            else:
                images = _decode_images(where, cell)
        else:
            images = _find_image_files(where, fields.get("image_path"), roots)
        pending.append(_Pending(where, index, cells.get("question", ""), cells.get("answer", ""), fields,
                                images, image_ref))
    return pending


def _check_header(path: Path, header: list[str], required: Sequence[str]) -> None:
    header[:] = [name.strip() for name in header]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DataError(f"{path}:1: header repeats column(s) {', '.join(map(repr, duplicated))}")
    for name in ("index", *required):
        if name not in header:
            raise DataError(f"{path}:1: missing column '{name}' (columns: {', '.join(header)})")
    if "image" not in header and "image_path" not in header:
        raise DataError(f"{path}:1: missing column 'image' (and no 'image_path' either)")


def _cells(where: str, header: list[str], values: list[str]) -> dict[str, str]:
    if len(values) < len(header):
        raise DataError(f"{where}: field '{header[len(values)]}' is missing "
                        f"(the line has {len(values)} fields, the header {len(header)})")
    if len(values) > len(header):
        raise DataError(f"{where}: the line has {len(values)} fields, the header {len(header)} "
                        f"(a tab inside an unquoted field?)")
    return dict(zip(header, values, strict=True))


def _list_cell(where: str, name: str, cell: str) -> list[str]:
    """VLMEvalKit's ``toliststr``: a ``[...]`` cell is a Python list literal, anything else one item.

    ``ast.literal_eval`` replaces VLMEvalKit's ``eval`` so a data file cannot run code.
    """
    cell = cell.strip()
    if not (cell.startswith("[") and cell.endswith("]")):
        return [cell]
    try:
        items = ast.literal_eval(cell)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise DataError(f"{where}: field '{name}' starts with '[' but is not a valid Python list") from None
    if not isinstance(items, list) or not items:
        raise DataError(f"{where}: field '{name}' must be a non-empty list, got {type(items).__name__}")
    return [str(item) for item in items]


def decode_image_cell(where: str, cell: str) -> tuple[ImageRef, ...]:
    """The images of one ``image`` cell (base64, or a list literal of base64 strings), cached and checked.

    For callers holding rows that did not come from :func:`read_tsv` (the VLMEvalKit bridge gets
    pandas rows); ``where`` names the row in error messages.
    """
    return _decode_images(where, cell)


def _decode_images(where: str, cell: str) -> tuple[ImageRef, ...]:
    items = _list_cell(where, "image", cell)
    refs = []
    for number, item in enumerate(items, start=1):
        which = "field 'image'" + (f" item {number}" if len(items) > 1 else "")
        try:
            data = base64.b64decode(item.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DataError(f"{where}: {which} is not valid base64 ({exc})") from None
        try:
            refs.append(cache_image_bytes(data))
        except ValueError as exc:
            raise DataError(f"{where}: {which} is base64 but not a readable image ({exc})") from None
    return tuple(refs)


def _image_roots(path: Path, image_root: str | Path | None) -> list[Path]:
    if image_root is not None:
        return [Path(image_root)]
    dataset = path.stem
    folder = "MMMU" if "MMMU" in dataset else dataset  # VLMEvalKit's img_root_map for the sets we read
    return [path.parent, path.parent / "images" / folder]


def _find_image_files(where: str, image_path: str | list[str] | None, roots: list[Path]) -> tuple[ImageRef, ...]:
    if not image_path:
        raise DataError(f"{where}: field 'image_path' is empty (and the file has no 'image' column)")
    refs = []
    for name in [image_path] if isinstance(image_path, str) else image_path:
        candidates = [Path(name)] if Path(name).is_absolute() else [root / name for root in roots]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            looked = ", ".join(str(c) for c in candidates)
            raise DataError(f"{where}: field 'image_path' names {name!r}, not found (looked at {looked})")
        try:
            check_image_file(found)
        except ValueError as exc:
            raise DataError(f"{where}: field 'image_path' file {found} is not a readable image ({exc})") from None
        refs.append(ImageRef(found))
    return tuple(refs)


def _resolve_references(path: Path, pending: list[_Pending]) -> list[MMURow]:
    by_index = {row.index: row for row in pending}
    rows = []
    for row in pending:
        images = row.images
        if row.image_ref is not None:
            target = by_index.get(row.image_ref)
            if target is None:
                raise DataError(f"{row.where}: field 'image' refers to index '{row.image_ref}', "
                                f"which is not in the file")
            if target.images is None:
                raise DataError(f"{row.where}: field 'image' refers to index '{row.image_ref}', whose "
                                f"'image' is itself a reference (only one level is allowed)")
            images = target.images
        assert images is not None
        rows.append(MMURow(row.index, row.question, row.answer, images, MappingProxyType(row.fields)))
    return rows
