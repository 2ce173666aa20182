"""VQA soft accuracy: every golden VLMEvalKit case, plus hand-made edge cases of the three flavours.

Tolerance: scores within 1e-9 absolute (as the golden README asks); normalised strings exactly equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmada_bench.errors import DataError
from mmada_bench.scorers.vqa import (
    FLAVOURS,
    aggregate_vqav2,
    leave_one_out_accuracy,
    normalize_answer,
    process_punctuation,
    score_vqav2_sample,
    vqa_accuracy,
)

CASES = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "golden" / "mmu_scoring" / "cases.json").read_text()
)
TOL = 1e-9


@pytest.mark.parametrize("case", CASES["vqa"], ids=lambda c: repr(c["prediction"]))
def test_golden_vqa_score_and_normalisation(case: dict) -> None:
    assert vqa_accuracy(case["prediction"], case["answers"]) == pytest.approx(case["score"], abs=TOL)
    assert normalize_answer(case["prediction"]) == case["normalized_prediction"]


def test_golden_vqa_has_all_twenty_cases() -> None:
    assert len(CASES["vqa"]) == 20


@pytest.mark.parametrize(
    ("matches", "expected"), [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)]
)
def test_leave_one_out_steps(matches: int, expected: float) -> None:
    answers = ["cat"] * matches + ["dog"] * (10 - matches)
    assert leave_one_out_accuracy("cat", answers) == pytest.approx(expected, abs=TOL)


def test_number_words_articles_and_contractions() -> None:
    assert normalize_answer("The Two dogs") == "2 dogs"
    assert normalize_answer("None") == "0"
    assert normalize_answer("it isnt") == "it isn't"
    assert normalize_answer("couldnt've") == "couldn't've"
    # ordinary words that look like contractions are left alone
    assert normalize_answer("well ill shed its") == "well ill shed its"
    # upstream's one reversed entry
    assert normalize_answer("somebody'd") == "somebodyd"


def test_punctuation_space_or_delete() -> None:
    assert process_punctuation("black/white") == "black white"
    assert process_punctuation("black / white") == "black  white"
    # a digit,digit anywhere deletes every mark instead of spacing it
    assert process_punctuation("1,000 black/white") == "1000 blackwhite"


def test_period_rules_differ_after_a_digit() -> None:
    assert normalize_answer("2.") == "2."
    assert normalize_answer("2.", period_rule="evalai") == "2"
    assert normalize_answer("3.5") == normalize_answer("3.5", period_rule="evalai") == "3.5"
    assert vqa_accuracy("2.", ["2"] * 10) == 0.0
    assert vqa_accuracy("2.", ["2"] * 10, flavour="lmms_eval") == 1.0


def test_period_removal_cap_is_kept() -> None:
    # upstream passes re.UNICODE (32) as sub()'s count: the 33rd period survives
    assert normalize_answer("a" + " x." * 33).count(".") == 1


def test_official_flavour_leaves_identical_answers_untouched() -> None:
    answers = ["dont know"] * 10
    assert vqa_accuracy("don't know", answers, flavour="vlmeval") == 1.0
    assert vqa_accuracy("don't know", answers, flavour="lmms_eval") == 1.0
    assert vqa_accuracy("don't know", answers, flavour="official") == 0.0
    # once annotators disagree the official tool cleans punctuation (but not contractions) of answers
    mixed = ["black/white"] * 5 + ["blue"] * 5
    assert vqa_accuracy("black white", mixed, flavour="official") == 1.0
    assert vqa_accuracy("black white", ["black/white"] * 10, flavour="official") == 0.0
    assert vqa_accuracy("black white", ["black/white"] * 10, flavour="vlmeval") == 1.0


def test_unknown_flavour_is_a_data_error() -> None:
    assert set(FLAVOURS) == {"vlmeval", "lmms_eval", "official"}
    with pytest.raises(DataError, match="flavour"):
        vqa_accuracy("x", ["x"], flavour="nope")


def test_sample_from_vqav2_annotation_dicts() -> None:
    row = {"question_id": 7, "answers": [{"answer": "2", "answer_id": i + 1} for i in range(10)]}
    assert score_vqav2_sample("two", row) == {"acc": 1.0}
    assert score_vqav2_sample("3", row) == {"acc": 0.0}


def test_sample_accepts_list_literal_string() -> None:
    assert score_vqav2_sample("yes", {"answer": "['yes', 'yes', 'no']"})["acc"] == pytest.approx(4 / 9)


@pytest.mark.parametrize(
    ("row", "prediction", "message"),
    [
        ({"question_id": 3}, "x", "question_id.*3|3.*answers"),
        ({"question_id": 4, "answers": []}, "x", "non-empty"),
        ({"question_id": 5, "answers": [{"answer": 2}]}, "x", "string"),
        ({"question_id": 6, "answers": ["x"]}, None, "prediction"),
    ],
)
def test_bad_rows_raise_data_error(row: dict, prediction: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        score_vqav2_sample(prediction, row)  # type: ignore[arg-type]


def test_aggregate_overall_and_answer_types() -> None:
    records = [
        {"acc": 1.0, "answer_type": "yes/no"},
        {"acc": 0.0, "answer_type": "yes/no"},
        {"acc": 0.6, "answer_type": "number"},
    ]
    out = aggregate_vqav2(records)
    assert out["Overall/acc"] == pytest.approx(160 / 3, abs=TOL)
    assert out["yes/no/acc"] == pytest.approx(50.0, abs=TOL)
    assert out["number/acc"] == pytest.approx(60.0, abs=TOL)


def test_aggregate_rejects_empty_and_non_numeric() -> None:
    with pytest.raises(DataError):
        aggregate_vqav2([])
    with pytest.raises(DataError, match="record 0"):
        aggregate_vqav2([{"acc": "1"}])
