"""VQAv2 official-layout reader: sample counts, fields, official sub-folders and one-line errors."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from mmada_bench.errors import DataError
from mmada_bench.tasks.mmu.vqav2 import read_vqav2

SAMPLES = Path(__file__).parents[1] / "fixtures" / "mmu_samples"
MALFORMED = SAMPLES / "malformed"


@pytest.fixture(autouse=True)
def image_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMADA_BENCH_CACHE", str(tmp_path / "cache"))


def test_sample_counts_and_fields():
    rows = read_vqav2(SAMPLES)
    assert len(rows) == 24
    assert len({row.images[0].path for row in rows}) == 8
    first = rows[0]
    assert first.index == "100698000" and first.question == "Is this a triangle?"
    assert first.answer == ["no", "no", "no", "no", "yes", "no", "no", "no", "yes", "no"]
    assert dict(first.fields) == {
        "question_id": 100698000, "image_id": 100698, "question_type": "is this a", "answer_type": "yes/no",
        "multiple_choice_answer": "no", "image_path": "val2014/COCO_val2014_000000100698.jpg"}
    assert all(len(row.answer) == 10 for row in rows)
    assert all(int(row.index) // 1000 == row.fields["image_id"] for row in rows)
    assert set(Counter(row.fields["answer_type"] for row in rows)) <= {"yes/no", "number", "other"}
    image = first.images[0].load()
    assert image.mode == "RGB" and image.size == (64, 64)
    assert len(first.images[0].sha256) == 64


def test_official_subfolders(tmp_path):
    shutil.copy(SAMPLES / "v2_OpenEnded_mscoco_val2014_questions.json", _mkdir(tmp_path / "Questions"))
    shutil.copy(SAMPLES / "v2_mscoco_val2014_annotations.json", _mkdir(tmp_path / "Annotations"))
    shutil.copytree(SAMPLES / "val2014", tmp_path / "Images" / "mscoco" / "val2014")
    assert len(read_vqav2(tmp_path)) == 24


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def test_nine_answers():
    with pytest.raises(DataError, match=r"vqav2_nine_answers/v2_mscoco_val2014_annotations\.json: annotations\[1\] "
                                        r"\(question_id 101671001\): field 'answers' has 9 answers, expected 10"):
        read_vqav2(MALFORMED / "vqav2_nine_answers")


def test_orphan_question():
    with pytest.raises(DataError, match=r"vqav2_orphan_question/v2_OpenEnded_mscoco_val2014_questions\.json: "
                                        r"questions\[1\] \(question_id 101671009\): no annotation"):
        read_vqav2(MALFORMED / "vqav2_orphan_question")


@pytest.fixture
def copy(tmp_path) -> Path:
    target = tmp_path / "vqa"
    shutil.copytree(SAMPLES, target, ignore=shutil.ignore_patterns("*.tsv", "malformed", "README.md"))
    return target


def test_missing_image(copy):
    (copy / "val2014" / "COCO_val2014_000000100698.jpg").unlink()
    with pytest.raises(DataError, match=r"questions\[0\] \(question_id 100698000\): image file .*"
                                        r"COCO_val2014_000000100698\.jpg not found \(field 'image_id'"):
        read_vqav2(copy)


def test_bad_json(copy):
    path = copy / "v2_mscoco_val2014_annotations.json"
    path.write_text(path.read_text()[:-20])
    with pytest.raises(DataError, match=r"v2_mscoco_val2014_annotations\.json:\d+: invalid JSON") as info:
        read_vqav2(copy)
    assert "\n" not in str(info.value)


def test_missing_file(copy):
    (copy / "v2_OpenEnded_mscoco_val2014_questions.json").unlink()
    with pytest.raises(DataError, match=r"no VQAv2 file v2_OpenEnded_mscoco_val2014_questions\.json"):
        read_vqav2(copy)
