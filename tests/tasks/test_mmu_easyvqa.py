"""easy-VQA loader: the full test split from the installed wheel, answers and question types."""

from __future__ import annotations

from collections import Counter

import pytest

from mmada_bench.tasks.mmu.easyvqa import easyvqa_answers, load_easyvqa_test, question_type

pytest.importorskip("easy_vqa")


@pytest.fixture(scope="module")
def rows():
    return load_easyvqa_test()


def test_answers():
    answers = easyvqa_answers()
    assert len(answers) == 13
    assert set(answers) == {"circle", "rectangle", "triangle", "yes", "no",
                            "red", "green", "blue", "black", "gray", "teal", "brown", "yellow"}


def test_all_test_questions(rows):
    assert len(rows) == 9673
    assert len({row.fields["image_id"] for row in rows}) == 1000
    assert [row.index for row in rows[:3]] == ["0", "1", "2"]
    assert rows[0].question == "what is the red shape?" and rows[0].answer == "triangle"
    assert Counter(row.fields["question_type"] for row in rows) == {"yes/no": 7136, "color": 1280, "shape": 1257}
    assert set(row.answer for row in rows) == set(easyvqa_answers())


def test_images(rows):
    image = rows[0].images[0].load()
    assert image.mode == "RGB" and image.size == (64, 64)
    assert rows[0].images[0].path.name == "0.png"
    assert len(rows[0].images[0].sha256) == 64


@pytest.mark.parametrize(("question", "kind"), [
    ("is there not a blue shape?", "yes/no"),
    ("does the image contain a circle?", "yes/no"),
    ("what is the color of the shape?", "color"),
    ("what color is the triangle?", "color"),
    ("what is the red shape?", "shape"),
    ("what shape is present?", "shape"),
])
def test_question_type(question, kind):
    assert question_type(question) == kind
