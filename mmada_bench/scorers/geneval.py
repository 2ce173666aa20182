"""GenEval's decision rules, applied to the output of any object detector.

GenEval (djghosh13/geneval) scores an image by running Mask2Former (mmdet 2.x) and a CLIP colour
classifier, then applying fixed rules: per-class filtering, counts, colours, relative positions and
``exclude`` clauses. The detector stack is hard to install (mmcv-full 1.7, torch 1.12), but the rules
are small and deterministic. This module re-implements the rules only, so that

* any detector that returns per-class boxes/scores/masks (the :class:`Detector` protocol) and any
  colour classifier (the :class:`ColorClassifier` protocol) can be plugged in, and
* the verdict for a given detector output is exactly the official one (pinned by the golden cases in
  ``tests/fixtures/golden/geneval``, produced by the official ``evaluate_image`` on the same input).

It also reads the official ``results.jsonl`` and computes the official summary (per-tag accuracy over
images, overall = unweighted mean over tags), so numbers from the official evaluator and from this
module are reported the same way.

Behaviour follows ``djghosh13/geneval@af4902f`` (:data:`GENEVAL_SOURCE`). Where the official code is
non-deterministic (the order of relation names in a position reason comes from a ``set``), this
module picks a fixed order (:data:`RELATIONS`); the verdict is unaffected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from mmada_bench.errors import DataError

GENEVAL_SOURCE = "djghosh13/geneval@af4902f24d3ca90ebbb446dd9891a59e0f82725f"

#: The ten colour names the official CLIP classifier chooses from, in the official order (the order
#: also fixes how colours are listed in a failure reason).
COLORS: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
)

#: Relations a ``position`` clause may ask for; also the fixed order used when a reason lists several.
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")

#: The six prompt tags of ``evaluation_metadata.jsonl``.
TAGS: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")

#: GenEval's 80 class names (COCO, with GenEval's spellings), in detector class-index order.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "computer mouse", "tv remote",
    "computer keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# Rule identifiers, recorded in results so a number can be traced to the exact rule set that made it.
RULE_FILTER = "geneval.filter/v1: score>thr in float32 (counting prompts: counting_threshold); top max_objects; greedy IoU<max_overlap unless max_overlap==1"
RULE_COUNT = "geneval.count/v1: first `count` kept objects of the class must exist"
RULE_COLOR = (
    "geneval.color/v1: colour classifier on the first `count` objects; >=count of the requested colour"
)
RULE_POSITION = "geneval.position/v1: centre offset shrunk by position_threshold*(size sum); component/|offset| beyond 0.5; every (object,target) pair"
RULE_EXCLUDE = "geneval.exclude/v1: fails when kept objects of the class >= count"
RULE_SUMMARY = (
    "geneval.summary/v1: per-tag mean of correct over images; overall = unweighted mean over tags present"
)
RULES: dict[str, str] = {
    "filter": RULE_FILTER,
    "count": RULE_COUNT,
    "color": RULE_COLOR,
    "position": RULE_POSITION,
    "exclude": RULE_EXCLUDE,
    "summary": RULE_SUMMARY,
}

_IMAGE_NAME = re.compile(r"\d+\.png")


# --------------------------------------------------------------------------------------------------
# Options, detections and the pluggable interfaces
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenEvalOptions:
    """The evaluator settings that change verdicts (official ``--options`` with their defaults).

    Kept as one frozen record so a result can store exactly which settings produced it.
    """

    threshold: float = 0.3
    counting_threshold: float = 0.9
    max_objects: int = 16
    max_overlap: float = 1.0
    position_threshold: float = 0.1

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> GenEvalOptions:
        """Build from a partial mapping (e.g. a golden case's ``options``); unknown keys are refused
        because a misspelt option would otherwise silently score with the default."""
        options = dict(options or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise DataError(f"unknown GenEval option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)

    def as_record(self) -> dict[str, Any]:
        """Plain dict for results files."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Detection:
    """One detected object: ``box`` is ``(x1, y1, x2, y2)`` in pixels (y grows downward).

    ``mask`` (H x W bool) is optional; it is only used to blank the background before colour
    classification, as the official evaluator does.
    """

    box: tuple[float, float, float, float]
    score: float
    mask: np.ndarray | None = None


@runtime_checkable
class Detector(Protocol):
    """An instance detector: image -> {class name: detections}. Classes with none may be omitted.

    The order of detections does not matter (the rules sort by score).
    """

    def detect(self, image: Image.Image) -> Mapping[str, Sequence[Detection]]: ...


@runtime_checkable
class ColorClassifier(Protocol):
    """Names the colour (one of :data:`COLORS`) of each object of one class in an image.

    Batched per class, like the official classifier, whose text prompts depend on the class name.
    Use :func:`crop_object` to prepare each object the way the official evaluator does.
    """

    def classify(self, image: Image.Image, objects: Sequence[Detection], classname: str) -> list[str]: ...


def crop_object(
    image: Image.Image, obj: Detection, *, bgcolor: str = "#999", crop: bool = True
) -> Image.Image:
    """The object as the official colour classifier sees it: mask composited on a flat grey
    background (``bgcolor="original"`` keeps the image), then cropped to the box."""
    rgb = image.convert("RGB")
    if obj.mask is not None:
        mask = np.asarray(obj.mask, dtype=bool)
        if mask.shape != (rgb.height, rgb.width):
            raise DataError(f"mask shape {mask.shape} does not match image size {(rgb.height, rgb.width)}")
        blank = rgb.copy() if bgcolor == "original" else Image.new("RGB", rgb.size, color=bgcolor)
        rgb = Image.composite(rgb, blank, Image.fromarray(mask))
    if crop:
        rgb = rgb.crop(tuple(float(v) for v in obj.box))
    return rgb


# --------------------------------------------------------------------------------------------------
# Prompt metadata (evaluation_metadata.jsonl)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncludeClause:
    """``{class, count[, color][, position: [relation, index of an earlier include]]}``."""

    cls: str
    count: int
    color: str | None = None
    position: tuple[str, int] | None = None


@dataclass(frozen=True)
class ExcludeClause:
    """``{class, count}``: the image fails when ``count`` or more such objects are kept."""

    cls: str
    count: int


@dataclass(frozen=True)
class GenEvalPrompt:
    """One validated line of ``evaluation_metadata.jsonl``; ``raw`` is the line as parsed, kept so the
    results row can carry ``json.dumps(raw)`` exactly as the official evaluator writes it (the summary
    groups prompts by that string)."""

    tag: str
    prompt: str
    include: tuple[IncludeClause, ...]
    exclude: tuple[ExcludeClause, ...]
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def metadata_json(self) -> str:
        return json.dumps(self.raw)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fail(where: str, fieldname: str, message: str) -> DataError:
    return DataError(f"{where}: {fieldname}: {message}")


def _parse_clause_common(item: Any, where: str, name: str, allowed: set[str], classes: frozenset[str] | None):
    if not isinstance(item, dict):
        raise _fail(where, name, f"expected an object, got {type(item).__name__}")
    unknown = sorted(set(item) - allowed)
    if unknown:
        # Clause keys change the verdict; a typo ("colour") would otherwise be ignored silently.
        raise _fail(where, name, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    cls = item.get("class")
    if not isinstance(cls, str) or not cls:
        raise _fail(where, f"{name}.class", "missing or not a non-empty string")
    if classes is not None and cls not in classes:
        raise _fail(where, f"{name}.class", f"{cls!r} is not a detector class name")
    count = item.get("count")
    if not _is_int(count) or count < 1:
        raise _fail(where, f"{name}.count", f"expected a positive integer, got {count!r}")
    return cls, count


def _parse_include(item: Any, index: int, where: str, classes: frozenset[str] | None) -> IncludeClause:
    name = f"include[{index}]"
    cls, count = _parse_clause_common(item, where, name, {"class", "count", "color", "position"}, classes)
    color = item.get("color")
    if "color" in item and color not in COLORS:
        raise _fail(where, f"{name}.color", f"{color!r} is not one of {list(COLORS)}")
    position = None
    if "position" in item:
        pos = item["position"]
        if not (isinstance(pos, list) and len(pos) == 2):
            raise _fail(where, f"{name}.position", f"expected [relation, include index], got {pos!r}")
        relation, target = pos
        if relation not in RELATIONS:
            raise _fail(where, f"{name}.position", f"relation {relation!r} is not one of {list(RELATIONS)}")
        if not _is_int(target) or not 0 <= target < index:
            # The official code looks the target up among the includes already checked.
            raise _fail(
                where, f"{name}.position", f"target {target!r} must index an earlier include (< {index})"
            )
        position = (relation, target)
    return IncludeClause(cls=cls, count=count, color=color, position=position)


def parse_metadata(
    obj: Any,
    *,
    where: str = "<metadata>",
    classes: Iterable[str] | None = COCO_CLASSES,
    tags: Iterable[str] | None = TAGS,
) -> GenEvalPrompt:
    """Validate one metadata object; errors are one line naming ``where`` (``file:line``) and the field.

    ``classes``/``tags`` restrict names to GenEval's; pass ``None`` for custom detectors or prompt sets.
    Extra top-level keys are kept (forks add fields) but clause keys are checked strictly.
    """
    if not isinstance(obj, dict):
        raise _fail(where, "<line>", f"expected a JSON object, got {type(obj).__name__}")
    class_set = frozenset(classes) if classes is not None else None
    tag = obj.get("tag")
    if not isinstance(tag, str) or (tags is not None and tag not in set(tags)):
        raise _fail(where, "tag", f"{tag!r} is not one of {list(tags) if tags is not None else 'strings'}")
    prompt = obj.get("prompt")
    if not isinstance(prompt, str):
        raise _fail(where, "prompt", "missing or not a string")
    include_raw = obj.get("include")
    if not isinstance(include_raw, list) or not include_raw:
        raise _fail(where, "include", "missing or not a non-empty list")
    include = tuple(_parse_include(item, i, where, class_set) for i, item in enumerate(include_raw))
    exclude_raw = obj.get("exclude", [])
    if not isinstance(exclude_raw, list):
        raise _fail(where, "exclude", "not a list")
    exclude = tuple(
        ExcludeClause(*_parse_clause_common(item, where, f"exclude[{i}]", {"class", "count"}, class_set))
        for i, item in enumerate(exclude_raw)
    )
    return GenEvalPrompt(tag=tag, prompt=prompt, include=include, exclude=exclude, raw=obj)


def parse_metadata_line(
    line: str, *, path: str | Path = "<metadata>", lineno: int = 1, **kwargs: Any
) -> GenEvalPrompt:
    """Parse and validate one JSON line of ``evaluation_metadata.jsonl``."""
    where = f"{path}:{lineno}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _fail(where, "<line>", f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    return parse_metadata(obj, where=where, **kwargs)


def read_metadata_jsonl(path: str | Path, **kwargs: Any) -> list[GenEvalPrompt]:
    """All prompts of an ``evaluation_metadata.jsonl`` (blank lines skipped), in file order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: GenEval metadata file not found")
    prompts = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            prompts.append(parse_metadata_line(line, path=path, lineno=lineno, **kwargs))
    if not prompts:
        raise DataError(f"{path}: no prompts")
    return prompts


# --------------------------------------------------------------------------------------------------
# Decision rules
# --------------------------------------------------------------------------------------------------


def compute_iou(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """IoU with the official ``+1`` pixel convention (areas are ``(x2-x1+1)*(y2-y1+1)``)."""

    def area(b: Sequence[float]) -> float:
        return max(b[2] - b[0] + 1, 0) * max(b[3] - b[1] + 1, 0)

    inter = area(
        (max(box_a[0], box_b[0]), max(box_a[1], box_b[1]), min(box_a[2], box_b[2]), min(box_a[3], box_b[3]))
    )
    union = area(box_a) + area(box_b) - inter
    return float(inter / union) if union else 0.0


def relative_position(box_a: Sequence[float], box_b: Sequence[float], position_threshold: float) -> set[str]:
    """Relations of A relative to B: the centre offset, shrunk toward zero by
    ``position_threshold * (size_A + size_B)`` per axis, divided by the unshrunk offset's norm; a
    component beyond +-0.5 (strictly) gives the relation. Computed in float32 like the detector output."""
    boxes = np.asarray([box_a[:4], box_b[:4]], dtype=np.float32).reshape(2, 2, 2)
    centre_a, centre_b = boxes.mean(axis=-2)
    size_a, size_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = centre_a - centre_b
    revised = np.maximum(np.abs(offset) - position_threshold * (size_a + size_b), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def _as_float32_box(det: Detection) -> np.ndarray:
    box = np.asarray(det.box, dtype=np.float32)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise DataError(f"detection box must be 4 finite numbers, got {det.box!r}")
    return box


def filter_class(detections: Sequence[Detection], threshold: float, options: GenEvalOptions) -> list[int]:
    """Indices (into ``detections``) of the objects the rules see, highest score first.

    Scores are compared in float32 against the float32 threshold, as numpy does on the detector's
    float32 arrays (so a score of exactly 0.3 is dropped). ``max_objects`` is applied before the
    optional greedy overlap suppression. Ties keep numpy's reversed-argsort order (higher index first).
    """
    if not detections:
        return []
    scores = np.asarray([d.score for d in detections], dtype=np.float32)
    order = np.argsort(scores, kind="stable")[::-1]
    order = order[scores[order] > np.float32(threshold)]
    pending = [int(i) for i in order[: options.max_objects]]
    boxes = {i: _as_float32_box(detections[i]) for i in pending}
    kept: list[int] = []
    while pending:
        best = pending.pop(0)
        kept.append(best)
        if options.max_overlap != 1:
            pending = [i for i in pending if compute_iou(boxes[best], boxes[i]) < options.max_overlap]
    return kept


def filter_detections(
    detections: Mapping[str, Sequence[Detection]], tag: str, options: GenEvalOptions
) -> dict[str, list[int]]:
    """Per class, the kept indices (classes with none kept are absent). Counting prompts use the
    stricter ``counting_threshold`` for every class; suppression never crosses classes."""
    threshold = options.counting_threshold if tag == "counting" else options.threshold
    kept = {}
    for classname, dets in detections.items():
        indices = filter_class(list(dets), threshold, options)
        if indices:
            kept[classname] = indices
    return kept


@dataclass
class ImageVerdict:
    """The decision for one image, with what the rules looked at (for audits and golden tests)."""

    correct: bool
    reason: str
    kept: dict[str, list[int]]
    color_calls: list[tuple[str, list[int]]]
    details: dict[str, list[list[float]]]


def _colour_reason(clause: IncludeClause, colours: list[str]) -> str:
    found = ", ".join(f"{colours.count(c)} {c}" for c in COLORS if c in colours)
    return (
        f"expected {clause.color} {clause.cls}>={clause.count}, found "
        f"{colours.count(clause.color)} {clause.color}; and {found}"
    )


def _position_failure(
    clause: IncludeClause, objects: list[Detection], targets: list[Detection], options: GenEvalOptions
) -> str | None:
    relation = clause.position[0]
    for obj in objects:
        for target in targets:
            found = relative_position(
                _as_float32_box(obj), _as_float32_box(target), options.position_threshold
            )
            if relation not in found:
                names = " and ".join(r for r in RELATIONS if r in found)
                return f"expected {clause.cls} {relation} target, found {names} target"
    return None


def evaluate_detections(
    image: Image.Image | None,
    detections: Mapping[str, Sequence[Detection]],
    prompt: GenEvalPrompt,
    color_classifier: ColorClassifier | None = None,
    options: GenEvalOptions | None = None,
) -> ImageVerdict:
    """Apply GenEval's rules to one image's detections.

    Includes are ANDed and checked in order; exclude clauses are ORed. Colour and position are checked
    only on the first ``count`` (most confident) objects of a class; a position clause is checked only
    when that include's colour check passed, against the objects of an earlier include that passed.
    """
    options = options or GenEvalOptions()
    kept = filter_detections(detections, prompt.tag, options)
    objects = {cls: [detections[cls][i] for i in idx] for cls, idx in kept.items()}
    reasons: list[str] = []
    color_calls: list[tuple[str, list[int]]] = []
    matched_groups: list[list[Detection] | None] = []
    for clause in prompt.include:
        found = objects.get(clause.cls, [])[: clause.count]
        matched = True
        if len(found) < clause.count:
            matched = False
            reasons.append(f"expected {clause.cls}>={clause.count}, found {len(found)}")
        else:
            if clause.color is not None:
                if color_classifier is None:
                    raise DataError(
                        f"prompt {prompt.prompt!r} asks for a colour but no colour classifier was given"
                    )
                colours = list(color_classifier.classify(image, found, clause.cls))
                if len(colours) != len(found):
                    raise DataError(
                        f"colour classifier returned {len(colours)} colours for {len(found)} objects"
                    )
                color_calls.append((clause.cls, kept[clause.cls][: clause.count]))
                if colours.count(clause.color) < clause.count:
                    matched = False
                    reasons.append(_colour_reason(clause, colours))
            if clause.position is not None and matched:
                targets = matched_groups[clause.position[1]]
                if targets is None:
                    matched = False
                    reasons.append(f"no target for {clause.cls} to be {clause.position[0]}")
                else:
                    failure = _position_failure(clause, found, targets, options)
                    if failure is not None:
                        matched = False
                        reasons.append(failure)
        matched_groups.append(found if matched else None)
    for clause in prompt.exclude:
        n = len(objects.get(clause.cls, []))
        if n >= clause.count:
            reasons.append(f"expected {clause.cls}<{clause.count}, found {n}")
    details = {
        cls: [[float(v) for v in _as_float32_box(d)] + [float(np.float32(d.score))] for d in dets]
        for cls, dets in objects.items()
    }
    return ImageVerdict(not reasons, "\n".join(reasons), kept, color_calls, details)


def result_row(filename: str, prompt: GenEvalPrompt, verdict: ImageVerdict) -> dict[str, Any]:
    """One row in the official ``results.jsonl`` format (metadata and details are JSON strings)."""
    return {
        "filename": filename,
        "tag": prompt.tag,
        "prompt": prompt.prompt,
        "correct": verdict.correct,
        "reason": verdict.reason,
        "metadata": prompt.metadata_json,
        "details": json.dumps(verdict.details),
    }


def evaluate_image(
    image: Image.Image,
    prompt: GenEvalPrompt,
    detector: Detector,
    color_classifier: ColorClassifier | None = None,
    options: GenEvalOptions | None = None,
    filename: str = "",
) -> dict[str, Any]:
    """Detect, decide, and return the official results row for one image."""
    image = image.convert("RGB")
    verdict = evaluate_detections(image, detector.detect(image), prompt, color_classifier, options)
    return result_row(filename, prompt, verdict)


def iter_image_folder(folder: str | Path, **metadata_kwargs: Any) -> list[tuple[Path, GenEvalPrompt]]:
    """``(image path, prompt)`` pairs of GenEval's output layout ``<folder>/<digits>/metadata.jsonl`` +
    ``samples/<digits>.png``, sorted (the official walk uses ``os.listdir`` order; the summary does not
    depend on it). Each ``metadata.jsonl`` holds one JSON object."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: GenEval image folder not found")
    pairs = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()):
        meta_path = sub / "metadata.jsonl"
        if not meta_path.is_file():
            raise DataError(f"{meta_path}: missing (every prompt folder needs its metadata line)")
        text = meta_path.read_text(encoding="utf-8").strip()
        prompt = parse_metadata_line(text, path=meta_path, lineno=1, **metadata_kwargs)
        samples = sub / "samples"
        images = (
            sorted(p for p in samples.iterdir() if p.is_file() and _IMAGE_NAME.match(p.name))
            if samples.is_dir()
            else []
        )
        pairs.extend((image, prompt) for image in images)
    return pairs


# --------------------------------------------------------------------------------------------------
# Summary (summary_scores.py)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagScore:
    """Accuracy of one tag over its images (not its prompts)."""

    score: float
    correct: int
    images: int


@dataclass(frozen=True)
class GenEvalSummary:
    """The official summary numbers; ``overall`` is the unweighted mean of the tag scores present."""

    total_images: int
    total_prompts: int
    fraction_correct_images: float
    fraction_correct_prompts: float
    tag_order: tuple[str, ...]
    per_tag: dict[str, TagScore]
    overall: float
    rule: str = RULE_SUMMARY

    def as_record(self) -> dict[str, Any]:
        """Plain dict for results files."""
        return {
            "total_images": self.total_images,
            "total_prompts": self.total_prompts,
            "fraction_correct_images": self.fraction_correct_images,
            "fraction_correct_prompts": self.fraction_correct_prompts,
            "tag_order": list(self.tag_order),
            "per_tag": {
                t: {"score": s.score, "correct": s.correct, "images": s.images}
                for t, s in self.per_tag.items()
            },
            "overall": self.overall,
            "rule": self.rule,
        }

    def render(self) -> str:
        """The summary in the layout of GenEval's ``summary_scores.py`` (percentages to 2 decimals,
        tags in first-seen order, overall to 5 decimals)."""
        lines = [
            "Summary",
            "=======",
            f"Total images: {self.total_images}",
            f"Total prompts: {self.total_prompts}",
            f"% correct images: {self.fraction_correct_images:.2%}",
            f"% correct prompts: {self.fraction_correct_prompts:.2%}",
            "",
            "Task breakdown",
            "==============",
        ]
        lines += [f"{t:<16} = {s.score:.2%} ({s.correct} / {s.images})" for t, s in self.per_tag.items()]
        lines += ["", f"Overall score (avg. over tasks): {self.overall:.5f}"]
        return "\n".join(lines)


def _metadata_key(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value)
    raise _fail(where, "metadata", f"expected a JSON string or object, got {type(value).__name__}")


def summarize(rows: Iterable[Mapping[str, Any]]) -> GenEvalSummary:
    """Summary of result rows (each needs ``tag``, ``correct`` and ``metadata``); prompts are told apart
    by their ``metadata`` string, as the official script groups them."""
    tag_counts: dict[str, list[int]] = {}
    prompt_any: dict[str, bool] = {}
    n_images = n_correct = 0
    for i, row in enumerate(rows):
        where = f"<row {i}>"
        tag, correct = row.get("tag"), row.get("correct")
        if not isinstance(tag, str):
            raise _fail(where, "tag", "missing or not a string")
        if not isinstance(correct, bool):
            raise _fail(where, "correct", f"expected true/false, got {correct!r}")
        key = _metadata_key(row.get("metadata"), where)
        counts = tag_counts.setdefault(tag, [0, 0])
        counts[0] += int(correct)
        counts[1] += 1
        prompt_any[key] = prompt_any.get(key, False) or correct
        n_images += 1
        n_correct += int(correct)
    if not n_images:
        raise DataError("GenEval summary: no result rows")
    per_tag = {tag: TagScore(c / n, c, n) for tag, (c, n) in tag_counts.items()}
    return GenEvalSummary(
        total_images=n_images,
        total_prompts=len(prompt_any),
        fraction_correct_images=n_correct / n_images,
        fraction_correct_prompts=sum(prompt_any.values()) / len(prompt_any),
        tag_order=tuple(per_tag),
        per_tag=per_tag,
        overall=float(np.mean([s.score for s in per_tag.values()])),
    )


def read_results_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of an official (or our) ``results.jsonl``; a bad line is a one-line ``file:line: field`` error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: GenEval results file not found")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(where, "<line>", f"invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(row, dict):
            raise _fail(where, "<line>", "expected a JSON object")
        for name in ("tag", "correct", "metadata"):
            if name not in row:
                raise _fail(where, name, "missing")
        if not isinstance(row["correct"], bool):
            raise _fail(where, "correct", f"expected true/false, got {row['correct']!r}")
        _metadata_key(row["metadata"], where)
        rows.append(row)
    return rows


def summarize_results_file(path: str | Path) -> GenEvalSummary:
    """Official summary of a ``results.jsonl`` written by GenEval's evaluator or by :func:`result_row`."""
    return summarize(read_results_jsonl(path))


# --------------------------------------------------------------------------------------------------
# Optional: CLIP zero-shot colour classifier on transformers (local folders only)
# --------------------------------------------------------------------------------------------------

#: GenEval's three colour prompt templates; ``{c}`` is the colour, ``{obj}`` the class name.
COLOR_TEMPLATES: tuple[str, ...] = (
    "a photo of a {c} {obj}",
    "a photo of a {c}-colored {obj}",
    "a photo of a {c} object",
)


class ClipColorClassifier:
    """GenEval's colour step with a transformers CLIP model: each colour's text embedding is the
    normalised mean of its normalised template embeddings; each object (masked on grey, cropped) gets
    the colour of highest cosine similarity. The official model is open_clip ViT-L-14 (OpenAI
    weights), i.e. ``openai/clip-vit-large-patch14`` in transformers; load it from a local folder.
    """

    def __init__(self, model: Any, processor: Any, *, device: str = "cpu", bgcolor: str = "#999") -> None:
        self.model = model.eval().to(device)
        self.processor = processor
        self.device = device
        self.bgcolor = bgcolor
        self._text_weights: dict[str, Any] = {}

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, *, device: str = "cpu", **kwargs: Any
    ) -> ClipColorClassifier:
        """Load model and processor from a local folder; never downloads."""
        from transformers import CLIPModel, CLIPProcessor

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise DataError(f"{folder}: not a local CLIP model folder (no config.json)")
        model = CLIPModel.from_pretrained(folder, local_files_only=True)
        processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
        return cls(model, processor, device=device, **kwargs)

    @staticmethod
    def _features(output: Any) -> Any:
        # transformers 5 may return a model output instead of a tensor from get_*_features.
        return output if hasattr(output, "norm") else output.pooler_output

    def _colour_weights(self, classname: str) -> Any:
        import torch

        if classname not in self._text_weights:
            rows = []
            with torch.no_grad():
                for colour in COLORS:
                    texts = [t.format(c=colour, obj=classname) for t in COLOR_TEMPLATES]
                    tokens = self.processor(text=texts, return_tensors="pt", padding=True).to(self.device)
                    emb = self._features(self.model.get_text_features(**tokens))
                    emb = torch.nn.functional.normalize(emb, dim=-1).mean(dim=0)
                    rows.append(torch.nn.functional.normalize(emb, dim=-1))
            self._text_weights[classname] = torch.stack(rows, dim=1)
        return self._text_weights[classname]

    def classify(self, image: Image.Image, objects: Sequence[Detection], classname: str) -> list[str]:
        import torch

        if not objects:
            return []
        crops = [crop_object(image, obj, bgcolor=self.bgcolor) for obj in objects]
        pixels = self.processor(images=crops, return_tensors="pt").to(self.device)
        with torch.no_grad():
            emb = self._features(self.model.get_image_features(**pixels))
            emb = torch.nn.functional.normalize(emb, dim=-1)
            logits = emb @ self._colour_weights(classname)
        return [COLORS[int(i)] for i in logits.argmax(dim=1)]
