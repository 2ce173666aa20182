"""VLMEvalKit scoring rules: every golden case (computed by VLMEvalKit itself) plus hand-made edge cases.

Tolerances: extracted/inferred labels exactly equal; POPE and MME numbers within 1e-9 absolute (x100
scale), as the golden README asks.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mmada_bench.errors import DataError
from mmada_bench.scorers import vlmeval as V

GOLDEN_DIR = Path(__file__).parents[1] / "fixtures" / "golden" / "mmu_scoring"
CASES = json.loads((GOLDEN_DIR / "cases.json").read_text())
TOL = 1e-9


# ------------------------------------------------------------------ golden cases


@pytest.mark.parametrize("case", CASES["yorn"], ids=lambda c: repr(c["prediction"]))
def test_golden_yorn(case: dict) -> None:
    assert V.yorn_extraction(case["prediction"]) == case["extracted"]


@pytest.mark.parametrize("case", CASES["mcq"], ids=lambda c: repr(c["prediction"]))
def test_golden_can_infer(case: dict) -> None:
    expected = case["inferred"] if case["inferred"] is not False else None
    assert V.can_infer(case["prediction"], case["choices"]) == expected


def _golden_pope_expected() -> dict[str, float]:
    rating = CASES["pope"]["rating"]
    out = {}
    for i, split in enumerate(rating["split"]):
        out[f"{split}/f1"] = rating["Overall"][i]
        for metric in ("acc", "precision", "recall"):
            out[f"{split}/{metric}"] = rating[metric][i]
    return out


def test_golden_pope_rating_from_scored_rows() -> None:
    expected = _golden_pope_expected()
    got = V.pope_rating(CASES["pope"]["rows"])
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=TOL), key


def test_golden_pope_through_per_sample_records() -> None:
    """The harness path: score each row (extracted label used as the prediction), then aggregate."""
    records = []
    for row in CASES["pope"]["rows"]:
        metrics = V.score_pope_sample(row["extracted"], row)
        assert metrics["acc"] == row["score"]
        records.append({**{k: row[k] for k in V.POPE_GROUP_FIELDS}, **metrics})
    got = V.aggregate_pope(records)
    for key, value in _golden_pope_expected().items():
        assert got[key] == pytest.approx(value, abs=TOL), key


def test_golden_mme_rating() -> None:
    got = V.aggregate_mme(CASES["mme"]["rows"], score_key="score")
    for key, value in CASES["mme"]["rating"].items():
        assert got[f"{key}/score"] == pytest.approx(value, abs=TOL), key
    assert got["partial"] is False and got["missing_subtasks"] == []


def test_golden_fixture_is_the_shared_copy_shape() -> None:
    assert (GOLDEN_DIR / "README.md").exists()
    assert {k: len(CASES[k]) for k in ("yorn", "mcq", "vqa")} == {"yorn": 20, "mcq": 20, "vqa": 20}
    assert len(CASES["pope"]["rows"]) == 48 and len(CASES["mme"]["rows"]) == 112


# ------------------------------------------------------------------ yes/no and the MMaDA wrapper


def test_yorn_whole_words_only() -> None:
    assert V.yorn_extraction("not sure") == "Unknown"
    assert V.yorn_extraction("yes-no") == "Unknown"  # '-' spaced out: both words present
    assert V.yorn_extraction("Yes/") == "Yes"


@pytest.mark.parametrize(
    ("response", "kind", "dataset", "expected"),
    [
        ("Yes", "Y/N", "POPE", "Yes"),
        ("It is not there", "Y/N", "POPE", "No"),  # substring rule: "not" contains "no"
        ("yes, no", "Y/N", "POPE", "Yes"),  # both present: falls back to the first word
        ("Maybe", "Y/N", "POPE", "Maybe"),
        ("The answer is B, not A", "MCQ", "MMMU_DEV_VAL", "A"),  # last standalone letter
        ("I think the large red one", "Y/N", "MME", "I think the"),
        ("  short  ", "VQA", "GQA", "short"),
    ],
)
def test_mmada_postprocess(response: str, kind: str, dataset: str, expected: str) -> None:
    assert V.mmada_postprocess(response, kind, dataset) == expected


# ------------------------------------------------------------------ POPE


def test_pope_row_in_several_splits_counts_once_per_split() -> None:
    records = [
        {"acc": 1.0, "gold_yes": 1.0, "pred_yes": 1.0, "category": "adversarial,popular,random"},
        {"acc": 0.0, "gold_yes": 0.0, "pred_yes": 1.0, "category": "random"},
    ]
    out = V.aggregate_pope(records)
    # Overall sees 4 exploded rows: 3 correct yes, 1 false positive
    assert out["Overall/acc"] == pytest.approx(75.0, abs=TOL)
    assert out["Overall/precision"] == pytest.approx(75.0, abs=TOL)
    assert out["adversarial/acc"] == 100.0
    assert out["random/precision"] == pytest.approx(50.0, abs=TOL)


def test_pope_zero_denominators_give_zero() -> None:
    out = V.aggregate_pope([{"acc": 1.0, "gold_yes": 0.0, "pred_yes": 0.0, "category": "random"}])
    assert out["random/precision"] == 0.0 and out["random/recall"] == 0.0 and out["random/f1"] == 0.0
    assert out["random/acc"] == 100.0


def test_pope_missing_category_counts_in_overall_only() -> None:
    out = V.aggregate_pope([
        {"acc": 1.0, "gold_yes": 1.0, "pred_yes": 1.0, "category": None},
        {"acc": 0.0, "gold_yes": 1.0, "pred_yes": 0.0, "category": "popular"},
    ])
    assert out["Overall/acc"] == 50.0
    assert {k.split("/")[0] for k in out} == {"Overall", "popular"}


def test_pope_gold_must_be_yes_or_no() -> None:
    with pytest.raises(DataError, match="row 9.*answer"):
        V.score_pope_sample("yes", {"index": 9, "answer": "yes", "category": "random"})
    with pytest.raises(DataError, match="prediction"):
        V.score_pope_sample(None, {"index": 9, "answer": "Yes"})  # type: ignore[arg-type]


def test_pope_unknown_is_neither_yes_nor_correct() -> None:
    metrics = V.score_pope_sample("I cannot tell", {"answer": "No"})
    assert metrics == {"acc": 0.0, "gold_yes": 0.0, "pred_yes": 0.0, "pred_unknown": 1.0}


# ------------------------------------------------------------------ MME


def _mme_pair(category: str, image: str, first: float, second: float) -> list[dict]:
    return [{"category": category, "image_path": image, "acc": s} for s in (first, second)]


def test_mme_partial_subtasks_are_flagged_not_fatal() -> None:
    records = _mme_pair("existence", "e/1.jpg", 1, 1) + _mme_pair("existence", "e/2.jpg", 1, 0)
    records += _mme_pair("commonsense_reasoning", "c/1.jpg", 0, 1)
    out = V.aggregate_mme(records)
    assert out["existence/acc"] == pytest.approx(75.0) and out["existence/acc_plus"] == pytest.approx(50.0)
    assert out["perception/score"] == pytest.approx(125.0)
    assert out["reasoning/score"] == pytest.approx(50.0)
    assert out["partial"] is True
    assert "OCR" in out["missing_subtasks"] and "existence" not in out["missing_subtasks"]
    assert len(out["missing_subtasks"]) == 12


def test_mme_sum_left_out_when_no_member_present() -> None:
    out = V.aggregate_mme(_mme_pair("count", "c/1.jpg", 1, 1))
    assert "reasoning/score" not in out and out["perception/score"] == 200.0


def test_mme_image_needs_two_questions() -> None:
    records = [{"category": "count", "image_path": "c/1.jpg", "acc": 1.0}]
    with pytest.raises(DataError, match="expected 2 questions"):
        V.aggregate_mme(records)
    with pytest.raises(DataError, match="image_path"):
        V.aggregate_mme([{"category": "count", "acc": 1.0}])


def test_mme_sample_scoring() -> None:
    assert V.score_mme_sample("Yes, it is.", {"answer": "Yes"}) == {"acc": 1.0}
    assert V.score_mme_sample("Yes or no", {"answer": "Yes"}) == {"acc": 0.0}


# ------------------------------------------------------------------ GQA


def test_gqa_exact_match_strip_and_case() -> None:
    assert V.score_gqa_sample("  Red ", {"answer": "red"}) == {"acc": 1.0}
    assert V.score_gqa_sample("red.", {"answer": "red"}) == {"acc": 0.0}  # no punctuation normalisation
    assert V.score_gqa_sample("no", {"answer": "['no', 'yes']"}) == {"acc": 0.5}


def test_gqa_aggregate_prefers_split_over_category() -> None:
    out = V.aggregate_gqa([
        {"acc": 1.0, "split": "a", "category": "x"},
        {"acc": 0.0, "split": "b", "category": "x"},
    ])
    assert out == {"Overall/acc": 50.0, "a/acc": 100.0, "b/acc": 0.0}
    assert V.aggregate_gqa([{"acc": 1.0, "category": "x"}]) == {"Overall/acc": 100.0, "x/acc": 100.0}


def test_gqa_missing_answer() -> None:
    with pytest.raises(DataError, match="row 4: missing field 'answer'"):
        V.score_gqa_sample("x", {"index": 4})


# ------------------------------------------------------------------ can_infer details


def test_can_infer_letter_must_be_near_the_end() -> None:
    choices = {"A": "cat", "B": "dog"}
    assert V.can_infer("B is what I would pick here today", choices) is None
    assert V.can_infer("I would pick B here", choices) == "B"


def test_can_infer_text_too_long_answer() -> None:
    assert V.can_infer("dog " * 10, {"A": "cat", "B": "dog"}) is None
    assert V.can_infer("a dog", {"A": "cat", "B": "dog"}) == "B"


def test_can_infer_api_failure_and_bad_labels() -> None:
    assert V.can_infer("Failed to obtain answer via API. B", {"A": "x", "B": "y"}) is None
    with pytest.raises(DataError, match="option label"):
        V.can_infer("A", {"AA": "x"})


# ------------------------------------------------------------------ MMMU (VLMEvalKit rule)


MC_ROW = {"index": 1, "A": "circle", "B": "square", "C": "triangle", "D": None, "answer": "B",
          "split": "validation", "category": "Math", "l2-category": "Science"}
OPEN_ROW = {"index": 2, "A": float("nan"), "B": "", "answer": "42", "split": "validation",
            "category": "Math", "l2-category": "Science", "question_type": "open"}


def test_mmmu_preproc_turns_open_into_two_options() -> None:
    choices, gold = V.mmmu_preproc(OPEN_ROW)
    assert choices == {"A": "42", "B": "Other Answers"} and gold == "A"
    choices, gold = V.mmmu_preproc(MC_ROW)
    assert set(choices) == {"A", "B", "C"} and gold == "B"


def test_mmmu_sample_scores() -> None:
    assert V.score_mmmu_sample("B", MC_ROW) == {"acc": 1.0, "matched": 1.0}
    assert V.score_mmmu_sample("square", MC_ROW) == {"acc": 1.0, "matched": 1.0}
    assert V.score_mmmu_sample("no idea", MC_ROW) == {"acc": 0.0, "matched": 0.0}
    assert V.mmmu_vlmeval_choice("no idea", MC_ROW) == "Z"
    assert V.score_mmmu_sample("The value is 42", OPEN_ROW)["acc"] == 1.0
    assert V.score_mmmu_sample("41", OPEN_ROW)["acc"] == 0.0


def test_mmmu_aggregate_per_split_and_group() -> None:
    records = [
        {"acc": 1.0, "split": "validation", "category": "Math", "l2-category": "Science"},
        {"acc": 0.0, "split": "validation", "category": "Design", "l2-category": "Art"},
        {"acc": 0.0, "split": "dev", "category": "Math", "l2-category": "Science"},
    ]
    out = V.aggregate_mmmu(records)
    assert out["validation/Overall/acc"] == 50.0
    assert out["validation/Math/acc"] == 100.0 and out["validation/Art/acc"] == 0.0
    assert out["dev/Overall/acc"] == 0.0
    assert "dev/Design/acc" not in out  # empty group left out instead of NaN


# ------------------------------------------------------------------ MMMU (official rule)


def test_mmmu_official_multi_choice_parsing() -> None:
    choices, index2ans = ["A", "B", "C"], {"A": "circle", "B": "square", "C": "triangle"}
    rng = random.Random(42)
    assert V.parse_mmmu_multi_choice("(B)", choices, index2ans, rng) == ("B", False)
    assert V.parse_mmmu_multi_choice("A or maybe C.", choices, index2ans, rng) == ("C", False)  # last one
    long = "I am fairly sure that the shape is a triangle"
    assert V.parse_mmmu_multi_choice(long, choices, index2ans, rng) == ("C", False)
    assert V.parse_mmmu_multi_choice("a square", choices, index2ans, rng)[1] is True  # <= 5 words: guess


def test_mmmu_official_random_fallback_is_seeded_and_sequential() -> None:
    choices, index2ans = ["A", "B", "C", "D"], {c: c.lower() * 3 for c in "ABCD"}
    ref = random.Random(42)
    expected = [ref.choice(choices) for _ in range(5)]
    rng = random.Random(42)
    got = [V.parse_mmmu_multi_choice("?", choices, index2ans, rng)[0] for _ in range(5)]
    assert got == expected
    row = {"A": "aaa", "B": "bbb", "C": "ccc", "D": "ddd", "answer": expected[0],
           "question_type": "multiple-choice"}
    assert V.score_mmmu_official_sample("?", row) == {"acc": 1.0, "random_fallback": 1.0}


def test_mmmu_official_open_questions() -> None:
    assert 1000.0 in V.parse_mmmu_open("So the answer is 1,000.")
    assert V.eval_mmmu_open("1000", V.parse_mmmu_open("Therefore x = 1,000"))
    assert V.eval_mmmu_open(["24/7", "3.429"], V.parse_mmmu_open("the result is 3.43"))
    assert not V.eval_mmmu_open("3.4", V.parse_mmmu_open("the result is 3.43"))
    row = {"answer": "['MgS', '$MgS$']", "question_type": "open"}
    assert V.score_mmmu_official_sample("It forms MgS", row)["acc"] == 1.0
    assert V.score_mmmu_official_sample("It forms MgO", row)["acc"] == 0.0


def test_mmmu_official_mc_without_options_is_a_data_error() -> None:
    with pytest.raises(DataError, match="row 5"):
        V.score_mmmu_official_sample("A", {"index": 5, "answer": "A", "question_type": "multiple-choice"})
