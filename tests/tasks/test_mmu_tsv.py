"""VLMEvalKit TSV reader: sample row counts, image resolution, cache behaviour and one-line errors."""

from __future__ import annotations

import io
import multiprocessing
import shutil
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from mmada_bench.errors import DataError
from mmada_bench.tasks.mmu.rows import ImageRef, cache_image_bytes
from mmada_bench.tasks.mmu.tsv import read_tsv

SAMPLES = Path(__file__).parents[1] / "fixtures" / "mmu_samples"
MALFORMED = SAMPLES / "malformed"


@pytest.fixture(autouse=True)
def image_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MMADA_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "images"


def test_pope_counts_and_splits():
    rows = read_tsv(SAMPLES / "POPE.tsv")
    assert len(rows) == 25
    assert Counter(row.answer for row in rows) == {"No": 18, "Yes": 7}
    splits = Counter(split for row in rows for split in row.fields["category"].split(","))
    assert splits == {"adversarial": 14, "popular": 14, "random": 14}
    assert [row.index for row in rows] == [str(i) for i in range(25)]


def test_mme_counts_and_shared_images():
    rows = read_tsv(SAMPLES / "MME.tsv")
    assert len(rows) == 24
    assert Counter(row.fields["category"] for row in rows) == {
        "existence": 6, "count": 6, "color": 4, "position": 4, "commonsense_reasoning": 4}
    assert len({row.images for row in rows}) == 12
    # the second row of each pair holds only the first row's index; both resolve to one cached file
    for first, second in zip(rows[::2], rows[1::2], strict=True):
        assert second.images == first.images
        assert second.fields["image_path"] == first.fields["image_path"]
    assert rows[1].fields["image_path"] == "existence/000000100272.jpg"


def test_gqa_counts_and_shared_images():
    rows = read_tsv(SAMPLES / "GQA_TestDev_Balanced.tsv")
    assert len(rows) == 24
    assert len({row.images[0].sha256 for row in rows}) == 12
    assert rows[1].images == rows[0].images
    assert rows[1].answer == "yes"
    assert dict(rows[1].fields) == {}


def test_mmmu_counts_lists_and_quoted_newline():
    rows = read_tsv(SAMPLES / "MMMU_DEV_VAL.tsv")
    assert len(rows) == 24
    assert Counter(row.fields["split"] for row in rows) == {"dev": 3, "validation": 21}
    assert Counter(row.fields["category"] for row in rows) == {"Math": 8, "Design": 8, "Computer_Science": 8}
    assert Counter(row.fields["question_type"] for row in rows) == {"multiple-choice": 21, "open": 3}
    two = [row for row in rows if len(row.images) == 2]
    assert [row.index for row in two] == ["10", "15"]
    assert two[0].fields["image_path"] == ["validation_Design_1_1.png", "validation_Design_1_2.png"]
    assert two[0].images[0].sha256 != two[0].images[1].sha256
    assert [row.index for row in rows if row.fields["E"] is not None] == ["6"]
    assert rows[3].question == ("Consider the figure in <image 1>.\n"
                                "What is the sum of the interior angles of this figure?")
    assert rows[4].answer == "0" and rows[4].fields["A"] is None  # open question: text kept, not a number


@pytest.mark.parametrize("name", ["POPE.tsv", "MME.tsv", "GQA_TestDev_Balanced.tsv", "MMMU_DEV_VAL.tsv"])
def test_images_load_as_rgb_64(name, image_cache):
    rows = read_tsv(SAMPLES / name)
    for ref in {ref for row in rows for ref in row.images}:
        image = ref.load()
        assert image.mode == "RGB" and image.size == (64, 64)
        assert ref.path.parent == image_cache and ref.path.stem == ref.sha256


def test_cache_is_content_addressed_and_idempotent(image_cache):
    first = read_tsv(SAMPLES / "MME.tsv")
    files = sorted(image_cache.iterdir())
    assert len(files) == 12 and all(not f.name.startswith(".") for f in files)
    second = read_tsv(SAMPLES / "MME.tsv")
    assert sorted(image_cache.iterdir()) == files
    assert [row.images for row in first] == [row.images for row in second]


def _store(data: bytes) -> str:
    return str(cache_image_bytes(data).path)


def test_concurrent_cache_writes(tmp_path, image_cache):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, format="PNG")
    with multiprocessing.get_context("fork").Pool(2) as pool:
        paths = pool.map(_store, [buffer.getvalue()] * 8)
    assert len(set(paths)) == 1
    assert [p.name for p in image_cache.iterdir()] == [Path(paths[0]).name]
    assert ImageRef(Path(paths[0])).load().getpixel((0, 0)) == (1, 2, 3)


def test_bom_is_accepted(tmp_path):
    target = tmp_path / "GQA_TestDev_Balanced.tsv"
    target.write_bytes(b"\xef\xbb\xbf" + (SAMPLES / "GQA_TestDev_Balanced.tsv").read_bytes())
    rows = read_tsv(target)
    assert len(rows) == 24 and rows[0].index == "0"


def test_image_path_without_image_column(tmp_path):
    folder = tmp_path / "images" / "Mine"
    folder.mkdir(parents=True)
    shutil.copy(SAMPLES / "val2014" / "COCO_val2014_000000100547.jpg", folder / "a.jpg")
    shutil.copy(SAMPLES / "val2014" / "COCO_val2014_000000100698.jpg", folder / "b.jpg")
    target = tmp_path / "Mine.tsv"
    target.write_text("index\tquestion\tanswer\timage_path\n0\tQ?\tyes\ta.jpg\n1\tQ2?\tno\t['a.jpg', 'b.jpg']\n")
    rows = read_tsv(target)
    assert rows[0].images[0].path == folder / "a.jpg"
    assert [ref.path.name for ref in rows[1].images] == ["a.jpg", "b.jpg"]
    target.write_text("index\tquestion\tanswer\timage_path\n0\tQ?\tyes\tmissing.jpg\n")
    with pytest.raises(DataError, match=r"Mine\.tsv:2: row 0 \(index 0\): field 'image_path' names 'missing.jpg'"):
        read_tsv(target)


# (file, expected message pattern): file, line, row, index and field in one line
MALFORMED_CASES = [
    ("POPE_bad_encoding.tsv", r"POPE_bad_encoding\.tsv:3: row 1 \(index 1\): field 'image' is not valid base64"),
    ("GQA_TestDev_Balanced_missing_answer.tsv",
     r"GQA_TestDev_Balanced_missing_answer\.tsv:4: row 2 \(index 2\): field 'answer' is missing"),
    ("MME_dup_index.tsv", r"MME_dup_index\.tsv:5: row 3 \(index 1\): field 'index' repeats index '1' of row 1"),
    ("MMMU_DEV_VAL_bad_image_bytes.tsv",
     r"MMMU_DEV_VAL_bad_image_bytes\.tsv:3: row 1 \(index 1\): field 'image' is base64 but not a readable image"),
]


@pytest.mark.parametrize(("name", "pattern"), MALFORMED_CASES)
def test_malformed_files_give_one_line(name, pattern):
    with pytest.raises(DataError, match=pattern) as info:
        read_tsv(MALFORMED / name)
    assert "\n" not in str(info.value)
    assert str(MALFORMED / name) in str(info.value)


def _edited(tmp_path: Path, name: str, edit) -> Path:
    lines = (SAMPLES / name).read_text(encoding="utf-8").split("\n")
    edit(lines)
    target = tmp_path / name
    target.write_text("\n".join(lines), encoding="utf-8")
    return target


def test_reference_to_missing_index(tmp_path):
    def edit(lines):
        fields = lines[2].split("\t")
        fields[1] = "77"
        lines[2] = "\t".join(fields)

    with pytest.raises(DataError, match=r":3: row 1 \(index 1\): field 'image' refers to index '77', which is not"):
        read_tsv(_edited(tmp_path, "GQA_TestDev_Balanced.tsv", edit))


def test_empty_required_cell_and_missing_column(tmp_path):
    def blank_question(lines):
        fields = lines[1].split("\t")
        fields[2] = ""
        lines[1] = "\t".join(fields)

    with pytest.raises(DataError, match=r":2: row 0 \(index 0\): field 'question' is empty"):
        read_tsv(_edited(tmp_path, "POPE.tsv", blank_question))
    with pytest.raises(DataError, match=r"POPE\.tsv:1: missing column 'hint'"):
        read_tsv(SAMPLES / "POPE.tsv", ("index", "question", "answer", "hint"))
