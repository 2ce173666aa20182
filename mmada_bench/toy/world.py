"""The toy world: easy-VQA's images with one caption, one shape and one colour each.

easy-VQA (PyPI ``easy-vqa``, MIT) ships 4,000 train + 1,000 test 64x64 PNGs, each one shape
(circle, rectangle, triangle) in one of eight flat colours on a pastel background, and template
questions about them -- but no per-image labels. A text-to-image task and a judge need labels, so
they are derived here:

1. **From the questions** (the dataset's own ground truth). "what color is the circle?" -> red fixes
   both; "is there not a blue shape?" -> yes rules blue out. An attribute is *fixed* when some question
   names it, or when the eliminations leave one candidate.
2. **From the pixels** where the questions leave an attribute open: the colour is the palette colour
   covering most pixels (shapes are drawn in exact palette RGB values), the shape is read from how much
   of its bounding box the shape fills (train split: rectangle 0.98-1, circle 0.75-0.92, triangle
   0.49-0.64). The rule is checked against every question-fixed label (:func:`world_stats`: 100 %
   agreement on both splits), so its error rate is measured, not assumed. The questions leave the
   shape open for 4 % of the images and the colour for 7-8 %.

A label the questions contradict (two different colours fixed) is a :class:`DataError`: a changed wheel
must fail loudly rather than mislabel images.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from mmada_bench.errors import ConfigError, DataError

SHAPES: tuple[str, ...] = ("circle", "rectangle", "triangle")
#: Alphabetical; the judge's colour head uses this order.
COLORS: tuple[str, ...] = ("black", "blue", "brown", "gray", "green", "red", "teal", "yellow")
#: The exact RGB values easy-VQA draws each colour with (checked against the questions in tests).
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "blue": (0, 0, 255),
    "brown": (165, 42, 42),
    "gray": (128, 128, 128),
    "green": (0, 255, 0),
    "red": (255, 0, 0),
    "teal": (0, 128, 128),
    "yellow": (255, 255, 0),
}
SPLITS: tuple[str, ...] = ("train", "test")
#: Sizes of easy-vqa 1.0, checked on load so a different wheel is noticed.
SPLIT_SIZES: dict[str, int] = {"train": 4000, "test": 1000}

#: Pixels within this max-channel distance of a palette colour count as that colour (edges are
#: anti-aliased, so only the shape's interior matches exactly).
PIXEL_TOLERANCE = 24
#: Bounding-box fill ratios separating triangle (~0.5) < circle (~0.785) < rectangle (~1.0).
TRIANGLE_BELOW, RECTANGLE_ABOVE = 0.69, 0.95

_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class ToyImage:
    """One easy-VQA image and its labels; ``*_source`` says where a label came from
    (``questions`` or ``pixels``)."""

    split: str
    image_id: int
    path: Path
    shape: str
    color: str
    shape_source: str
    color_source: str
    questions: tuple[tuple[str, str], ...]

    @property
    def caption(self) -> str:
        return caption_for(self.color, self.shape)


def caption_for(color: str, shape: str) -> str:
    """The toy world's caption: ``"a red circle"``."""
    return f"a {color} {shape}"


def cot_thought(shape: str, color: str) -> str:
    """The reasoning of the CoT form: ``"shape is circle , color is red ."`` (spaced punctuation, so a
    word-level tokenizer sees the same tokens every time)."""
    return f"shape is {shape} , color is {color} ."


def cot_text(shape: str, color: str, answer: str) -> str:
    """The plain CoT form of an answer: ``"shape is circle , color is red . answer : red"``."""
    return f"{cot_thought(shape, color)} answer : {answer}"


def cot_answer(shape: str, color: str, answer: str) -> str:
    """The CoT form as MMaDA is trained to write it (spec §3.3): ``<think>reasoning</think> answer``."""
    return f"<think>{cot_thought(shape, color)}</think> {answer}"


# --------------------------------------------------------------------------------------------------
# Labels from questions


@dataclass
class _Candidates:
    fixed: set[str]
    excluded: set[str]


def labels_from_questions(questions: Sequence[tuple[str, str]], where: str) -> tuple[str | None, str | None]:
    """(shape, colour) the questions determine (``None`` where they leave it open).

    Raises :class:`DataError` naming ``where`` when the questions contradict each other.
    """
    found = {"shape": _Candidates(set(), set()), "color": _Candidates(set(), set())}
    for text, answer in questions:
        words = _WORD.findall(text.lower())
        shapes = [w for w in words if w in SHAPES]
        colours = [w for w in words if w in PALETTE]
        if answer in SHAPES or answer in PALETTE:
            kind = "shape" if answer in SHAPES else "color"
            found[kind].fixed.add(answer)
            for word in shapes + colours:  # "what is the blue shape?" -> rectangle also fixes blue
                found["shape" if word in SHAPES else "color"].fixed.add(word)
        elif answer in ("yes", "no"):
            named = shapes + colours
            if len(named) != 1:
                raise DataError(f"{where}: question {text!r} names {len(named)} shapes/colours, expected 1")
            negated = "not" in words or "no" in words
            holds = (answer == "yes") != negated
            slot = found["shape" if named[0] in SHAPES else "color"]
            (slot.fixed if holds else slot.excluded).add(named[0])
        else:
            raise DataError(f"{where}: answer {answer!r} of {text!r} is not a shape, colour, yes or no")
    result: list[str | None] = []
    for kind, universe in (("shape", SHAPES), ("color", COLORS)):
        slot = found[kind]
        if len(slot.fixed) > 1 or slot.fixed & slot.excluded:
            raise DataError(f"{where}: questions contradict each other about the {kind} "
                            f"(fixed {sorted(slot.fixed)}, ruled out {sorted(slot.excluded)})")
        left = [v for v in universe if v not in slot.excluded]
        if not left:
            raise DataError(f"{where}: questions rule out every {kind}")
        result.append(next(iter(slot.fixed)) if slot.fixed else left[0] if len(left) == 1 else None)
    return result[0], result[1]


# --------------------------------------------------------------------------------------------------
# Labels from pixels


def pixel_labels(image: Image.Image | np.ndarray) -> tuple[str, str]:
    """(shape, colour) read from the pixels alone (see the module docstring for the rule)."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image).astype(np.int16)
    palette = np.asarray([PALETTE[c] for c in COLORS], dtype=np.int16)  # (8, 3)
    distance = np.abs(pixels[:, :, None, :] - palette[None, None]).max(axis=-1)  # (H, W, 8)
    counts = (distance <= PIXEL_TOLERANCE).sum(axis=(0, 1))
    best = int(counts.argmax())
    mask = distance[:, :, best] <= PIXEL_TOLERANCE
    return shape_from_mask(mask), COLORS[best]


def shape_from_mask(mask: np.ndarray) -> str:
    """Shape of a filled region from its bounding-box fill ratio."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return SHAPES[0]
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    fill = rows.size / box
    return "triangle" if fill < TRIANGLE_BELOW else "rectangle" if fill > RECTANGLE_ABOVE else "circle"


# --------------------------------------------------------------------------------------------------
# The world


def _package():
    try:
        import easy_vqa
    except ImportError:
        raise ConfigError("the toy world needs the 'easy-vqa' package: pip install 'easy-vqa>=1.0'") from None
    return easy_vqa


def questions_file(split: str) -> Path:
    return Path(_package().__file__).parent / "data" / split / "questions.json"


@cache
def load_world(split: str) -> tuple[ToyImage, ...]:
    """Every image of ``split`` with its labels, ordered by image id (cached per process)."""
    if split not in SPLITS:
        raise ConfigError(f"toy world split must be one of {SPLITS}, got {split!r}")
    package = _package()
    texts, answers, image_ids = getattr(package, f"get_{split}_questions")()
    paths = getattr(package, f"get_{split}_image_paths")()
    if len(paths) != SPLIT_SIZES[split]:
        raise DataError(f"{questions_file(split).parent}: {len(paths)} {split} images, expected "
                        f"{SPLIT_SIZES[split]} (easy-vqa 1.0)")
    by_image: dict[int, list[tuple[str, str]]] = {i: [] for i in paths}
    for number, (text, answer, image_id) in enumerate(zip(texts, answers, image_ids, strict=True)):
        if image_id not in by_image:
            raise DataError(f"{questions_file(split)}: question {number}: image_id {image_id} has no image file")
        by_image[image_id].append((text, answer))
    world = []
    for image_id in sorted(paths):
        where = f"{questions_file(split)}: image {image_id}"
        shape, colour = labels_from_questions(by_image[image_id], where)
        pixel_shape, pixel_colour = (None, None)
        if shape is None or colour is None:
            with Image.open(paths[image_id]) as image:
                pixel_shape, pixel_colour = pixel_labels(image)
        world.append(ToyImage(
            split=split, image_id=image_id, path=Path(paths[image_id]),
            shape=shape or pixel_shape, color=colour or pixel_colour,
            shape_source="questions" if shape else "pixels", color_source="questions" if colour else "pixels",
            questions=tuple(by_image[image_id]),
        ))  # fmt: skip
    return tuple(world)


def world_stats(split: str) -> dict[str, float | int]:
    """How often the questions fix each label, and how often the pixel rule agrees where they do."""
    world = load_world(split)
    agree_shape = agree_colour = checked_shape = checked_colour = 0
    for item in world:
        with Image.open(item.path) as image:
            shape, colour = pixel_labels(image)
        if item.shape_source == "questions":
            checked_shape += 1
            agree_shape += shape == item.shape
        if item.color_source == "questions":
            checked_colour += 1
            agree_colour += colour == item.color
    n = len(world)
    return {
        "images": n,
        "questions": sum(len(item.questions) for item in world),
        "shape_from_questions": checked_shape,
        "color_from_questions": checked_colour,
        "both_from_questions": sum(i.shape_source == i.color_source == "questions" for i in world),
        "pixel_rule_shape_agreement": agree_shape / max(checked_shape, 1),
        "pixel_rule_color_agreement": agree_colour / max(checked_colour, 1),
    }
