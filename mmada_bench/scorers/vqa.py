"""VQA soft accuracy (VQAv2 / TextVQA style) with the EvalAI answer normalisation.

The VQA accuracy of one prediction against n human answers is the mean, over the n leave-one-out
subsets of n-1 answers, of ``min(#matches / 3, 1)``: an answer given by 3 of the *other* annotators is
fully right, so for 10 answers a prediction matching k of them scores ``min(1, k*0.3)`` for k < 4
(0.3, 0.6, 0.9) and 1.0 for k >= 4.

Matching is exact string equality *after* normalisation, and toolkits differ in what they normalise:

* ``vlmeval`` (default; VLMEvalKit ``vqa_eval.process_line(method='vqa_score')``): prediction and
  every answer always get the full normalisation (punctuation, number words, articles, contractions).
  This is what the golden cases in ``tests/fixtures/golden/mmu_scoring`` were computed with.
* ``lmms_eval`` (lmms-eval ``vqav2_process_results`` since Aug 2025): also always normalises both
  sides, but with EvalAI's own period rule (a period before a non-digit is dropped even after a digit,
  so ``"2."`` becomes ``"2"``; VLMEvalKit keeps a period that follows a digit). Not reproduced: lmms-eval's
  comma test also fires on runs of commas between digits ("1,,2").
* ``official`` (GT-Vision-Lab ``vqaEval.py``, what the EvalAI server runs): the prediction is fully
  normalised, the answers only get the punctuation step, and only when they are not all identical.
  Since VQAv2's human answers are stored already normalised this rarely matters, but e.g. ten answers
  ``"dont know"`` never match a prediction (normalised to ``"don't know"``) here, while they do in the
  other two.

Both normalisers keep two upstream quirks on purpose, because scores must equal the reference tools:
the period regex is applied with ``count=re.UNICODE`` (= 32, so at most 32 periods are removed) and a
punctuation mark is deleted rather than replaced by a space whenever the text has *any* ``digit,digit``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mmada_bench.errors import DataError

RULE_VQA = (
    "VQA soft accuracy (VLMEvalKit vqa_score: EvalAI normalisation of prediction and all answers, "
    "leave-one-out min(#match/3, 1), mean)"
)
RULE_VQA_LMMS_EVAL = (
    "VQA soft accuracy (lmms-eval vqav2: EvalAI normaliser on prediction and all answers, "
    "leave-one-out min(#match/3, 1), mean)"
)
RULE_VQA_OFFICIAL = (
    "VQA soft accuracy (GT-Vision-Lab vqaEval.py / EvalAI: prediction normalised, answers punctuation-"
    "normalised only when they differ, leave-one-out min(#match/3, 1), mean)"
)

FLAVOURS: dict[str, str] = {"vlmeval": RULE_VQA, "lmms_eval": RULE_VQA_LMMS_EVAL, "official": RULE_VQA_OFFICIAL}

# Grouping fields the VQAv2 aggregate understands (official tool reports per answer type).
VQAV2_GROUP_FIELDS: tuple[str, ...] = ("answer_type",)

_PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
# VLMEvalKit: a period is dropped unless a digit is on either side of it ("0.5" and "2." survive).
_PERIOD_VLMEVAL = re.compile(r"(?<!\d)\.(?!\d)")
# EvalAI / official: the intended look-behind is mistyped as "(?!<=\d)", so only "not before a digit" counts.
_PERIOD_EVALAI = re.compile(r"(?!<=\d)(\.)(?!\d)")
# Upstream passes re.UNICODE (32) as the positional *count* argument of sub(); kept for equal outputs.
_PERIOD_MAX_REMOVALS = int(re.UNICODE)

_NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})

# Contracted forms the VQA tools restore. Each is reached from every spelling that lacks exactly one of
# its apostrophes ("couldnt've" and "couldn'tve" -> "couldn't've"); spellings that are ordinary words
# ("well", "ill", "shed", "its") are deliberately absent, as upstream.
_CONTRACTED_FORMS: tuple[str, ...] = tuple(
    """
    ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't
    he'd he'd've he's how'd how'll how's I'd've I'm I've isn't it'd it'd've it'll ma'am mightn't
    mightn't've might've mustn't must've needn't not've o'clock oughtn't 'ow's'at shan't she'd've
    should've shouldn't shouldn't've somebody'd've somebody'll somebody's someone'd someone'd've
    someone'll someone's something'd something'd've something'll that's there'd there'd've there're
    there's they'd they'd've they'll they're they've 'twas wasn't we'd've we've weren't what'll what're
    what's what've when's where'd where's where've who'd who'd've who'll who's who've why'll why're
    why's won't would've wouldn't wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're
    you've
    """.split()
)


def _build_contractions() -> dict[str, str]:
    """Map each apostrophe-less spelling to its contraction (see ``_CONTRACTED_FORMS``)."""
    table: dict[str, str] = {}
    for form in _CONTRACTED_FORMS:
        for pos, char in enumerate(form):
            if char == "'":
                table[form[:pos] + form[pos + 1:]] = form
    # Upstream quirk: this one entry maps the other way round ("somebody'd" loses its apostrophe).
    table["somebody'd"] = "somebodyd"
    return table


_CONTRACTIONS: dict[str, str] = _build_contractions()


def process_punctuation(text: str, *, period_rule: str = "vlmeval") -> str:
    """Remove/space out punctuation the way the VQA tools do (also VLMEvalKit's Y/N extraction step).

    A mark is deleted (not spaced) when it already touches a space somewhere in the text, or when the
    text contains a ``digit,digit`` group, so that "2,500" becomes "2500" but "blue,white" becomes
    "blue white". The decision looks at the original text, not the partly cleaned one, as upstream.
    """
    has_digit_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in _PUNCTUATION:
        if has_digit_comma or (mark + " ") in text or (" " + mark) in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    period = _PERIOD_VLMEVAL if period_rule == "vlmeval" else _PERIOD_EVALAI
    return period.sub("", out, count=_PERIOD_MAX_REMOVALS)


def process_digit_article(text: str) -> str:
    """Lower-case, map number words to digits, drop articles, restore contractions, re-join on spaces."""
    words = [_NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    kept = [word for word in words if word not in _ARTICLES]
    return " ".join(_CONTRACTIONS.get(word, word) for word in kept)


def _clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def normalize_answer(text: str, *, period_rule: str = "vlmeval") -> str:
    """Full EvalAI normalisation of one answer string (``process_answer`` in VLMEvalKit)."""
    return process_digit_article(process_punctuation(_clean_whitespace(text), period_rule=period_rule))


def _check_flavour(flavour: str) -> None:
    if flavour not in FLAVOURS:
        raise DataError(f"unknown VQA accuracy flavour {flavour!r}; choose one of {sorted(FLAVOURS)}")


def _normalise_pair(prediction: str, answers: Sequence[str], flavour: str) -> tuple[str, list[str]]:
    """Apply the flavour's normalisation to the prediction and the human answers."""
    if flavour == "vlmeval":
        return normalize_answer(prediction), [normalize_answer(a) for a in answers]
    pred = normalize_answer(prediction, period_rule="evalai")
    if flavour == "lmms_eval":
        return pred, [normalize_answer(a, period_rule="evalai") for a in answers]
    if len(set(answers)) > 1:  # official: answers touched only when annotators disagree
        return pred, [process_punctuation(a, period_rule="evalai") for a in answers]
    return pred, list(answers)


def leave_one_out_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Mean over the n leave-one-out answer subsets of min(#equal / 3, 1); inputs already normalised."""
    if not answers:
        raise DataError("VQA accuracy needs at least one human answer")
    total_matches = sum(1 for answer in answers if answer == prediction)
    scores = []
    for answer in answers:
        others = total_matches - (1 if answer == prediction else 0)
        scores.append(min(1.0, others / 3))
    return sum(scores) / len(scores)


def vqa_accuracy(prediction: str, answers: Sequence[str], *, flavour: str = "vlmeval") -> float:
    """VQA soft accuracy of one prediction in [0, 1] (see the module docstring for ``flavour``)."""
    _check_flavour(flavour)
    pred, gts = _normalise_pair(prediction, answers, flavour)
    return leave_one_out_accuracy(pred, gts)


def _answers_of(row: Mapping[str, Any]) -> list[str]:
    """Human answers from a VQAv2 annotation (list of dicts), a plain list, or a list-literal string."""
    if "answers" in row:
        raw = row["answers"]
    elif "answer" in row:
        raw = row["answer"]
    else:
        raise DataError(f"VQA row {row.get('question_id', '?')}: missing field 'answers'")
    if isinstance(raw, str):
        raw = _parse_list_literal(raw)
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise DataError(f"VQA row {row.get('question_id', '?')}: field 'answers' must be a non-empty list")
    answers = []
    for item in raw:
        value = item.get("answer") if isinstance(item, Mapping) else item
        if not isinstance(value, str):
            raise DataError(f"VQA row {row.get('question_id', '?')}: every answer must be a string, got {value!r}")
        answers.append(value)
    return answers


def _parse_list_literal(text: str) -> Any:
    """VLMEvalKit TSVs store several answers as a Python list literal; anything else is one answer."""
    if text.lstrip().startswith("["):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return [text]
        if isinstance(value, list):
            return [str(v) for v in value]
    return [text]


def _check_prediction(prediction: Any, where: str) -> str:
    if not isinstance(prediction, str):
        raise DataError(f"{where}: prediction must be a string, got {type(prediction).__name__}")
    return prediction


def score_vqav2_sample(prediction: str, row: Mapping[str, Any], *, flavour: str = "vlmeval") -> dict[str, float]:
    """Per-sample VQAv2 metrics: ``{"acc": soft accuracy in [0, 1]}``.

    ``row`` is a VQAv2 annotation (``answers`` = 10 dicts with ``answer``) or any row whose ``answers``
    /``answer`` holds a list of strings.
    """
    where = f"VQA row {row.get('question_id', '?')}"
    return {"acc": vqa_accuracy(_check_prediction(prediction, where), _answers_of(row), flavour=flavour)}


def aggregate_vqav2(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean accuracy x100 over all records (``Overall/acc``) and per ``answer_type`` when present.

    Each record is the per-sample metrics dict, optionally merged with the row's ``answer_type``.
    Unlike the official tool, values are not rounded to 2 decimals (rounding is for display).
    """
    if not records:
        raise DataError("VQAv2: no samples to aggregate")
    out = {"Overall/acc": _mean_acc(records, "VQAv2") * 100}
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        kind = record.get("answer_type")
        if kind is not None:
            groups.setdefault(str(kind), []).append(record)
    for kind in sorted(groups):
        out[f"{kind}/acc"] = _mean_acc(groups[kind], "VQAv2") * 100
    return out


def _mean_acc(records: Sequence[Mapping[str, Any]], name: str) -> float:
    values = []
    for i, record in enumerate(records):
        value = record.get("acc")
        if not isinstance(value, int | float):
            raise DataError(f"{name} record {i}: field 'acc' must be a number, got {value!r}")
        values.append(float(value))
    return sum(values) / len(values)
