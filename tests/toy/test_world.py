"""The toy world: labels agree with every easy-VQA question, files are byte-identical run to run,
and each exported format is read by the code that consumes it (gsm8k data checks, trainer readers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mmada_bench.errors import DataError
from mmada_bench.tasks.mmu.easyvqa import question_type
from mmada_bench.toy.arithmetic import shape_problems
from mmada_bench.toy.export import export_world
from mmada_bench.toy.world import (
    COLORS,
    SHAPES,
    cot_answer,
    cot_text,
    labels_from_questions,
    load_world,
    world_stats,
)


def _answer(question: str, shape: str, colour: str) -> str:
    """Answer an easy-VQA template question from the labels alone (independent of world.py's parser)."""
    text = question.lower()
    if text.startswith(("what color", "what is the color")):
        return colour
    if text.startswith("what"):
        return shape
    named = next(w for w in re.findall(r"[a-z]+", text) if w in SHAPES or w in COLORS)
    present = named in (shape, colour)
    negated = " not " in f" {text} " or text.startswith("is no ")
    return "yes" if present != negated else "no"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    first, second = tmp_path_factory.mktemp("w1"), tmp_path_factory.mktemp("w2")
    export_world(first, progress=False, splits=("test",))
    export_world(second, progress=False, splits=("test",))
    return first, second


def test_captions_answer_every_test_question_correctly():
    world = load_world("test")
    assert len(world) == 1000 and sum(len(i.questions) for i in world) == 9673
    wrong = [(i.image_id, q, a) for i in world for q, a in i.questions if _answer(q, i.shape, i.color) != a]
    assert wrong == []
    assert world[0].caption == f"a {world[0].color} {world[0].shape}"


def test_labels_from_questions_fix_eliminate_and_refuse_contradictions():
    assert labels_from_questions([("what color is the circle?", "red")], "x") == ("circle", "red")
    assert labels_from_questions([("what is the blue shape?", "triangle")], "x") == ("triangle", "blue")
    eliminated = [("is there not a circle?", "yes"), ("is no rectangle present?", "yes")]
    assert labels_from_questions(eliminated, "x") == ("triangle", None)
    with pytest.raises(DataError, match="img 7: questions contradict each other about the color"):
        labels_from_questions([("what color is the shape?", "red"), ("is there a blue shape?", "yes")], "img 7")


def test_pixel_rule_agrees_with_every_question_fixed_label():
    stats = world_stats("test")
    assert stats["pixel_rule_shape_agreement"] == 1.0 and stats["pixel_rule_color_agreement"] == 1.0
    assert stats["both_from_questions"] == 888  # the other 112 images need the pixel rule for a label
    sources = {(i.shape_source, i.color_source) for i in load_world("test")}
    assert ("pixels", "questions") in sources and ("questions", "pixels") in sources


def test_cot_forms():
    assert cot_text("circle", "red", "red") == "shape is circle , color is red . answer : red"
    assert cot_answer("circle", "red", "yes") == "<think>shape is circle , color is red .</think> yes"


def test_export_is_byte_identical_twice(exported):
    first, second = exported
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(second)) for p in second.rglob("*") if p.is_file())
    assert len([n for n in names if n.startswith("images/")]) == 1000
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    summary = json.loads((first / "world.json").read_text())
    assert summary["splits"]["test"]["images"] == 1000


def test_gsm8k_rows_pass_the_gsm8k_task_checks(exported, tmp_path):
    from mmada_bench.tasks.text import gsm8k

    folder, _ = exported
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_bytes((folder / "toy_count" / "test.jsonl").read_bytes())
    with (tmp_path / "gsm8k" / "train.jsonl").open("w") as handle:
        for row in shape_problems("train"):
            handle.write(json.dumps(row) + "\n")
    bad = tmp_path / "bad" / "gsm8k"
    bad.mkdir(parents=True)
    (bad / "test.jsonl").write_text(json.dumps({"question": "q", "answer": "no final line"}) + "\n")
    with pytest.raises(DataError, match="test.jsonl:1"):
        gsm8k.IMPL.load(bad, 0)
    loaded = gsm8k.IMPL.load(tmp_path / "gsm8k", 5)
    assert loaded.source == "local" and loaded.info()["rows"] == {"None": 200}
    assert sum(len(v) for v in loaded.shot_parts.values()) == 2000
    test_rows = shape_problems("test")
    assert len(test_rows) == 200 and not {r["question"] for r in test_rows} & {r["question"] for r in shape_problems("train")}
    for row in test_rows:  # the final number is the result of the last computation in the steps
        steps, final = row["answer"].split("\n#### ")
        assert steps.rsplit("= ", 1)[1].split()[0] == final


def test_text_rows_are_the_toy_count_prompt_and_its_target(exported):
    """The trainer's counting rows are what lm-eval shows the model (the packaged GSM8K YAML's
    ``doc_to_text``) and what it should write after it (the default " " delimiter + ``doc_to_target``)."""
    import jinja2

    from mmada_bench.tasks.text.lm_eval_tasks import read_packaged_yaml

    folder, _ = exported
    spec = read_packaged_yaml("gsm8k/gsm8k.yaml")
    env = jinja2.Environment()
    rows = [json.loads(line) for line in (folder / "text_test.jsonl").read_text().splitlines()]
    docs = [json.loads(line) for line in (folder / "toy_count" / "test.jsonl").read_text().splitlines()]
    assert len(rows) == len(docs) == 200
    for row, doc in zip(rows, docs, strict=True):
        assert row["prompt"] == env.from_string(spec["doc_to_text"]).render(**doc)
        assert row["completion"] == " " + env.from_string(spec["doc_to_target"]).render(**doc)


def test_trainer_readers_accept_every_exported_format(exported):
    from mmada_bench.train.config import DataSource
    from mmada_bench.train.data import read_source

    folder, _ = exported
    captions = read_source("t2i", DataSource(path=str(folder / "captions_test.jsonl"), format="caption_jsonl"))
    assert len(captions) == 1000 and captions[0]["caption"].startswith("a ")
    assert Path(captions[0]["image"]).is_file()
    llava = read_source("mmu", DataSource(path=str(folder / "vqa_test.json"), format="llava_json"))
    assert len(llava) == 9673
    shape = read_source("mmu", DataSource(path=str(folder / "vqa_shape_test.json"), format="llava_json"))
    # exactly the benchmark's shape questions: easyvqa's own question typing agrees row for row
    assert len(shape) == 1257
    assert all(question_type(row["conversations"][0]["value"].split("\n", 1)[1]) == "shape"
               for row in json.loads((folder / "vqa_shape_test.json").read_text()))
    cot = read_source("mmu", DataSource(path=str(folder / "vqa_cot_test.jsonl"), format="chat_jsonl", cot=True))
    assert len(cot) == 9673 and "<think>shape is" in cot[0]["chat"]


def test_pretraining_problems_are_the_train_stream_without_test_questions():
    """Text pretraining sees the train split's problems and more of the same stream, never a test
    question, and every row fits the text phase's 75-token rows (truncation would cut the answer)."""
    from transformers import AutoTokenizer

    from mmada_bench.model.presets import ASSETS
    from mmada_bench.toy.arithmetic import pretraining_problems
    from mmada_bench.toy.export import text_rows
    from mmada_bench.toy.mmada_training import TEXT_ONLY

    problems = pretraining_problems()
    assert len(problems) == 5909 and problems[:2000] == shape_problems("train")
    assert len({r["question"] for r in problems}) == len(problems)
    assert not {r["question"] for r in problems} & {r["question"] for r in shape_problems("test")}
    tokenizer = AutoTokenizer.from_pretrained(ASSETS / "toy" / "tokenizer")
    longest = max(len(tokenizer(r["prompt"] + r["completion"])["input_ids"]) for r in text_rows(problems))
    assert longest + 2 <= TEXT_ONLY + 1 + 64 + 2  # BOS and one EOS within M + 1 + image positions + 2
