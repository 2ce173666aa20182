"""Reader for VQAv2 in its official layout (questions JSON + annotations JSON + COCO image folder).

VQAv2 is not a VLMEvalKit TSV: the official release (and lmms-eval's ``vqav2_val``) keeps questions,
the 10 human answers per question and the COCO images in separate files, and VQA accuracy needs all
10 answers. Files are found by their official names, either side by side in one folder or in the
official API's ``Questions/``, ``Annotations/`` and ``Images/mscoco/<split>/`` sub-folders, so a user
can point the harness at an unpacked download without renaming anything.

Every question is checked against its annotation and image file before rows are returned; image
files are only checked to exist (decoding 40k COCO images would take minutes) and hashed lazily.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mmada_bench.errors import DataError
from mmada_bench.tasks.mmu.rows import ImageRef, MMURow

#: Answers per question in the official annotations; the accuracy formula assumes exactly 10.
ANSWERS_PER_QUESTION = 10


def questions_name(split: str) -> str:
    return f"v2_OpenEnded_mscoco_{split}_questions.json"


def annotations_name(split: str) -> str:
    return f"v2_mscoco_{split}_annotations.json"


def image_name(split: str, image_id: int) -> str:
    """COCO file name, e.g. ``COCO_val2014_000000100547.jpg`` (image id zero-padded to 12 digits)."""
    return f"COCO_{split}_{image_id:012d}.jpg"


def read_vqav2(folder: str | Path, split: str = "val2014") -> list[MMURow]:
    """All questions of ``split`` as rows with ``answer`` = the 10 human answers, in file order.

    ``fields`` carries ``question_id``, ``image_id``, ``question_type``, ``answer_type`` (yes/no,
    number, other) and ``multiple_choice_answer``, which VQA scorers report by. Raises
    :class:`DataError` for a missing file, bad JSON, a question without an annotation, an
    annotation without 10 answers, or a missing image file.
    """
    folder = Path(folder)
    questions_file = _find(folder, questions_name(split), ("", "Questions"))
    annotations_file = _find(folder, annotations_name(split), ("", "Annotations"))
    images_dir = _find(folder, split, ("", os.path.join("Images", "mscoco")), directory=True)
    questions = _load_list(questions_file, "questions")
    annotations = _annotations_by_question(annotations_file, _load_list(annotations_file, "annotations"))
    present = set(os.listdir(images_dir))
    rows = []
    seen: set[int] = set()
    for number, question in enumerate(questions):
        where = f"{questions_file}: questions[{number}]"
        qid = _int_field(where, question, "question_id")
        where += f" (question_id {qid})"
        image_id = _int_field(where, question, "image_id")
        text = question.get("question")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: field 'question' must be a non-empty string, got {text!r}")
        if qid in seen:
            raise DataError(f"{where}: field 'question_id' repeats an earlier question")
        seen.add(qid)
        if qid not in annotations:
            raise DataError(f"{where}: no annotation with this question_id in {annotations_file.name}")
        annotation_where, annotation = annotations[qid]
        if annotation.get("image_id") != image_id:
            raise DataError(f"{annotation_where}: field 'image_id' is {annotation.get('image_id')!r}, "
                            f"but the question has image_id {image_id}")
        answers = _answers(annotation_where, annotation)
        name = image_name(split, image_id)
        if name not in present:
            raise DataError(f"{where}: image file {images_dir / name} not found (field 'image_id' {image_id})")
        fields = {
            "question_id": qid,
            "image_id": image_id,
            "question_type": annotation.get("question_type"),
            "answer_type": annotation.get("answer_type"),
            "multiple_choice_answer": annotation.get("multiple_choice_answer"),
            "image_path": f"{split}/{name}",
        }
        rows.append(MMURow(str(qid), text, answers, (ImageRef(images_dir / name),), MappingProxyType(fields)))
    if not rows:
        raise DataError(f"{questions_file}: no questions")
    return rows


def _find(folder: Path, name: str, subfolders: tuple[str, ...], directory: bool = False) -> Path:
    candidates = [folder / sub / name for sub in subfolders]
    for candidate in candidates:
        if candidate.is_dir() if directory else candidate.is_file():
            return candidate
    kind = "folder" if directory else "file"
    raise DataError(f"{folder}: no VQAv2 {kind} {name} (looked at {', '.join(map(str, candidates))})")


def _load_list(file: Path, key: str) -> list[dict[str, Any]]:
    try:
        with file.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"{file}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise DataError(f"{file}: cannot read ({exc.strerror})") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise DataError(f"{file}: expected a JSON object with a '{key}' list")
    for number, item in enumerate(data[key]):
        if not isinstance(item, dict):
            raise DataError(f"{file}: {key}[{number}] must be a JSON object, got {type(item).__name__}")
    return data[key]


def _annotations_by_question(file: Path, annotations: list[dict[str, Any]]) -> dict[int, tuple[str, dict]]:
    by_question: dict[int, tuple[str, dict]] = {}
    for number, annotation in enumerate(annotations):
        where = f"{file}: annotations[{number}]"
        qid = _int_field(where, annotation, "question_id")
        where += f" (question_id {qid})"
        if qid in by_question:
            raise DataError(f"{where}: field 'question_id' repeats an earlier annotation")
        by_question[qid] = (where, annotation)
    return by_question


def _answers(where: str, annotation: dict[str, Any]) -> list[str]:
    answers = annotation.get("answers")
    if not isinstance(answers, list):
        raise DataError(f"{where}: field 'answers' must be a list, got {type(answers).__name__}")
    if len(answers) != ANSWERS_PER_QUESTION:
        raise DataError(f"{where}: field 'answers' has {len(answers)} answers, expected {ANSWERS_PER_QUESTION}")
    texts = []
    for number, answer in enumerate(answers):
        text = answer.get("answer") if isinstance(answer, dict) else None
        if not isinstance(text, str):
            raise DataError(f"{where}: field 'answers[{number}].answer' must be a string, got {text!r}")
        texts.append(text)
    return texts


def _int_field(where: str, item: dict[str, Any], name: str) -> int:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{where}: field '{name}' must be an integer, got {value!r}")
    return value
