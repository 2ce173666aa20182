"""One PNG per text-to-image task: every generated image as a thumbnail with its prompt underneath.

Why: a number like CLIPScore 31.2 says little on its own; a glance at the images tells a broken run
(noise, grey squares, one repeated picture) from a working one at once. PIL only, with its built-in
bitmap font, so it works on any machine without fonts or plotting packages.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

THUMB = 128
COLUMNS = 6
CAPTION_LINES = 3
LINE_HEIGHT = 12
PAD = 6


def _open(item: Any) -> Image.Image:
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    with Image.open(item) as image:
        return image.convert("RGB")


def _caption(text: str, width_chars: int) -> list[str]:
    lines = textwrap.wrap(" ".join(text.split()), width=width_chars) or [""]
    if len(lines) > CAPTION_LINES:
        lines = lines[:CAPTION_LINES]
        lines[-1] = lines[-1][: max(0, width_chars - 3)] + "..."
    return lines


def write_contact_sheet(path: Path, items: Sequence[tuple[Any, str]], thumb: int = THUMB,
                        columns: int = COLUMNS) -> Path:
    """Write ``(image or image path, caption)`` pairs as a grid to ``path`` (PNG); returns ``path``.

    Thumbnails keep their aspect ratio inside a ``thumb`` square; captions are cut to a few lines so a
    long prompt cannot stretch the sheet.
    """
    if not items:
        raise ValueError("a contact sheet needs at least one image")
    font = ImageFont.load_default()
    columns = max(1, min(columns, len(items)))
    rows = -(-len(items) // columns)
    cell_w, cell_h = thumb + 2 * PAD, thumb + 2 * PAD + CAPTION_LINES * LINE_HEIGHT
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    width_chars = max(8, thumb // 6)
    for n, (item, caption) in enumerate(items):
        x, y = (n % columns) * cell_w + PAD, (n // columns) * cell_h + PAD
        image = _open(item)
        image.thumbnail((thumb, thumb))
        sheet.paste(image, (x + (thumb - image.width) // 2, y + (thumb - image.height) // 2))
        for k, line in enumerate(_caption(caption, width_chars)):
            draw.text((x, y + thumb + 2 + k * LINE_HEIGHT), line, fill="black", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG")
    return path
