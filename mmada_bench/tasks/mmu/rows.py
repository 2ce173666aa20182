"""The row type every multimodal-understanding reader returns, and the content-addressed image cache.

A POPE or MMMU TSV is hundreds of MB of base64; holding decoded pixels for every row would cost GBs,
so a row keeps only an :class:`ImageRef` (a file path plus a lazily computed hash) and the pixels are
decoded when the model needs them. Images embedded in TSVs are written once, under their own sha256,
to ``$MMADA_BENCH_CACHE/images``: the same bytes always land on the same name, so re-reading a file,
or two processes reading it at once, neither duplicates nor corrupts anything.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from mmada_bench.hashing import cache_root

#: PIL format name -> file suffix used in the cache (anything else keeps ``.<format lower>``).
_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif"}


@dataclass(frozen=True)
class ImageRef:
    """A lazily loaded image file: cheap to keep for every row of a large benchmark.

    ``sha256`` is the hash of the encoded file bytes (not of the pixels), so it identifies exactly
    what was read and can go into request logs. It is computed on first use when the reader did not
    already know it (VQAv2 and easy-VQA reference tens of thousands of files; hashing them all up
    front would make reading slow for no benefit).
    """

    path: Path
    known_sha256: str | None = field(default=None, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        if self.known_sha256 is None:
            with open(self.path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            object.__setattr__(self, "known_sha256", digest)
        return self.known_sha256  # type: ignore[return-value]

    def load(self) -> Image.Image:
        """Decode to RGB, as VLMEvalKit and the MMaDA wrapper do (RGBA/P/L/LA all become RGB)."""
        with Image.open(self.path) as image:
            return image.convert("RGB")


@dataclass(frozen=True)
class MMURow:
    """One benchmark question. ``answer`` is a list only for VQAv2 (the 10 human answers).

    ``fields`` holds every other column (category, split, image_path, options ``A``..``I``,
    question_type, hint, ...) under its file's own name, with empty cells as None, so scorers can
    group by the same columns VLMEvalKit groups by without this type knowing each benchmark.
    """

    index: str
    question: str
    answer: str | list[str]
    images: tuple[ImageRef, ...]
    fields: Mapping[str, Any]


def image_cache_dir() -> Path:
    """Where images decoded out of TSVs are kept (``$MMADA_BENCH_CACHE/images``)."""
    return cache_root() / "images"


def check_image_bytes(data: bytes, *, decode: bool = True) -> str:
    """Return the cache suffix of encoded image ``data``; raise ``ValueError`` if it is not an image.

    ``Image.open`` alone only reads the header; with ``decode`` the pixels are decoded too, so a
    truncated file fails here, at read time, rather than in the middle of a model run.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            if decode:
                image.load()
            image_format = image.format or ""
    except UnidentifiedImageError:
        raise ValueError(f"not a known image format (starts with {data[:8]!r})") from None
    except Exception as exc:  # PIL raises several unrelated types for bad data
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return _SUFFIXES.get(image_format, f".{image_format.lower() or 'img'}")


def check_image_file(path: Path) -> None:
    """Fully decode the image at ``path``; raise ``ValueError`` if it cannot be decoded."""
    try:
        with Image.open(path) as image:
            image.load()
    except UnidentifiedImageError:
        raise ValueError("not a known image format") from None
    except Exception as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None


def cache_image_bytes(data: bytes) -> ImageRef:
    """Store encoded image bytes under their sha256 and return a reference to the stored file.

    The bytes are fully decoded once, when first stored; a later read of the same bytes finds the
    file already there (only checked bytes are ever stored) and skips the decode. Writes go to a
    temporary file in the same folder and are renamed into place, which is atomic, so concurrent
    readers never see a half-written image. Raises ``ValueError`` for bytes that are not an image.
    """
    digest = hashlib.sha256(data).hexdigest()
    folder = image_cache_dir()
    target = folder / f"{digest}{check_image_bytes(data, decode=False)}"
    try:
        if target.stat().st_size == len(data):
            return ImageRef(target, digest)
    except FileNotFoundError:
        pass
    check_image_bytes(data)
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{digest}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(data)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return ImageRef(target, digest)
