"""Content hashes: every identity the harness records (data files, checkpoints, prompts, requests).

One module so that a hash written into a results file by one part of the package always means the
same thing when another part reads it back.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """The user cache (``MMADA_BENCH_CACHE``, default ``~/.cache/mmada_bench``): presets, hashes, images."""
    return Path(os.environ.get("MMADA_BENCH_CACHE", Path.home() / ".cache" / "mmada_bench"))


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_sha256(value: Any) -> str:
    """Hash of a JSON-able value with sorted keys: equal values give equal hashes across runs."""
    return text_sha256(json.dumps(value, sort_keys=True, default=str, ensure_ascii=False))


def file_sha256(file: Path) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime) so reruns do not re-read GBs."""
    file = Path(file)
    stat = file.stat()
    cache_file = cache_root() / "sha256.json"
    key = f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        known = json.loads(cache_file.read_text())
    except (OSError, json.JSONDecodeError):
        known = {}
    if key in known:
        return known[key]
    with open(file, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    known[key] = digest
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        tmp.replace(cache_file)
    except OSError:
        pass  # a read-only home only costs a re-hash next time
    return digest
