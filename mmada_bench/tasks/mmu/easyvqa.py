"""easy-VQA test set (PyPI ``easy-vqa``, MIT): a real, installable VQA set for offline runs.

No public MMU benchmark (POPE, MME, GQA, MMMU, VQAv2) can be installed from a package registry;
easy-VQA can, with its images inside the wheel. Its 1,000 test images (64x64 PNG, one coloured
shape each) carry 9,673 template questions whose answers come from a closed list of 13 words, so
exact-match scoring is unambiguous and a model run is fully reproducible without network access.

The package stores ``data/test/questions.json`` as ``[question, answer, image_id]`` triples and
``data/test/images/<image_id>.png``; it is read through the package's own public functions so a
future layout change in the wheel does not break this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.tasks.mmu.rows import ImageRef, MMURow

#: Size of the test split in easy-vqa 1.0, checked on load so a different wheel is noticed.
TEST_QUESTIONS = 9673

#: Question kinds derived from the question templates (the package has no such field).
QUESTION_TYPES = ("yes/no", "color", "shape")

_YES_NO_OPENERS = ("is ", "does ", "are ", "do ")


def _package():
    try:
        import easy_vqa
    except ImportError:
        raise ConfigError("easy-VQA needs the 'easy-vqa' package: pip install 'easy-vqa>=1.0'") from None
    return easy_vqa


def easyvqa_answers() -> list[str]:
    """The 13 possible answers, in the package's order (shapes, colours, yes, no)."""
    return list(_package().get_answers())


def question_type(question: str) -> str:
    """``yes/no``, ``color`` or ``shape`` from the question's wording (all 24 templates covered).

    Yes/no questions open with a verb ("is there ...", "does the image contain ..."); the others ask
    "what color ..." / "what is the color of ..." or "what shape ..." / "what is the <colour> shape?".
    """
    text = question.strip().lower()
    if text.startswith(_YES_NO_OPENERS):
        return "yes/no"
    if "color" in text:
        return "color"
    if "shape" in text:
        return "shape"
    raise ValueError(f"cannot tell the question type of {question!r}")


def load_easyvqa_test() -> list[MMURow]:
    """All 9,673 test questions as rows (index = position in the package's test question list).

    ``fields`` holds ``image_id`` and ``question_type``. Each question's type is checked against its
    answer (a yes/no question must be answered yes or no, a colour question with a colour ...), so a
    template this module does not know fails loudly instead of being mis-grouped in the report.
    """
    package = _package()
    texts, answers, image_ids = package.get_test_questions()
    image_paths = package.get_test_image_paths()
    known = set(package.get_answers())
    source = Path(package.__file__).parent / "data" / "test" / "questions.json"
    colours = known - {"yes", "no", "circle", "rectangle", "triangle"}
    rows = []
    for number, (text, answer, image_id) in enumerate(zip(texts, answers, image_ids, strict=True)):
        where = f"{source}: question {number}"
        if answer not in known:
            raise DataError(f"{where}: field 'answer' {answer!r} is not one of the {len(known)} answers")
        try:
            kind = question_type(text)
        except ValueError as exc:
            raise DataError(f"{where}: field 'question' {exc}") from None
        expected = "yes/no" if answer in ("yes", "no") else "color" if answer in colours else "shape"
        if kind != expected:
            raise DataError(f"{where}: field 'question' reads as a {kind} question but the answer is {answer!r}")
        if image_id not in image_paths or not os.path.isfile(image_paths[image_id]):
            raise DataError(f"{where}: field 'image_id' {image_id}: no image file {image_id}.png")
        fields = {"image_id": image_id, "question_type": kind}
        rows.append(MMURow(str(number), text, answer, (ImageRef(Path(image_paths[image_id])),),
                           MappingProxyType(fields)))
    if len(rows) != TEST_QUESTIONS:
        raise DataError(f"{source}: {len(rows)} test questions, expected {TEST_QUESTIONS} (easy-vqa 1.0)")
    return rows
