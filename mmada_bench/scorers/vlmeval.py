"""Multimodal-understanding scoring rules equal to VLMEvalKit's (exact-matching mode, no judge model).

Why re-implemented rather than imported: VLMEvalKit is not on PyPI and pulls in torch, pandas and API
clients; these are a few pure functions. Equality with VLMEvalKit (open-compass/VLMEvalKit, Aug 2026) is
checked against cases computed by VLMEvalKit itself (``tests/fixtures/golden/mmu_scoring``).

Every benchmark has a per-sample function ``score_<bench>_sample(prediction, row) -> dict[str, float]``
(what the harness stores per example) and ``aggregate_<bench>(records) -> dict``, where a record is that
per-sample dict merged with the row fields named in ``<BENCH>_GROUP_FIELDS`` (e.g.
``{**{k: row[k] for k in POPE_GROUP_FIELDS}, **score_pope_sample(pred, row)}``). Aggregate keys are
``"<group>/<metric>"`` and percentages are x100, as VLMEvalKit prints them. Each rule has a ``RULE_*``
string so a results file can say which rule produced a number.

Deliberate differences from VLMEvalKit (all on inputs VLMEvalKit would crash on or silently mis-score):
* answers of POPE/MME rows must be exactly ``Yes``/``No`` (VLMEvalKit scores any other gold as wrong);
* MME returns the subtasks present and flags the perception/reasoning sums as partial when some of the
  14 subtasks are absent (VLMEvalKit raises KeyError), and an image without exactly two questions is a
  DataError (VLMEvalKit raises IndexError for one, silently uses the first two of three);
* a group with no samples in a split is left out instead of reported as NaN;
* an empty-string option counts as absent, like the NaN pandas reads for an empty TSV cell;
* ``can_infer`` returns ``None`` where VLMEvalKit returns ``False`` (nothing inferred), and behaves as
  with the environment variable ``VERBOSE`` unset.
"""

from __future__ import annotations

import ast
import math
import random
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from mmada_bench.errors import DataError
from mmada_bench.scorers.vqa import process_punctuation

RULE_YORN = "VLMEvalKit YOrN_Extraction (exact matching, no judge)"
RULE_POPE = "VLMEvalKit POPE_rating (YOrN_Extraction exact matching, no judge; 'Yes' positive)"
RULE_MME = "VLMEvalKit MME_rating (YOrN_Extraction exact matching, no judge; acc + acc+ per subtask)"
RULE_GQA = "VLMEvalKit vqa_eval process_line(method='accuracy') (stripped, case-insensitive exact match)"
RULE_MMMU = "VLMEvalKit MMMU_preproc + can_infer (exact matching, no judge; unmatched -> 'Z', wrong)"
RULE_MMMU_OFFICIAL = (
    "MMMU-Benchmark eval_utils (parse_multi_choice_response with seed-42 random fallback; "
    "parse_open_response + eval_open)"
)
RULE_MMADA_POSTPROCESS = "Gen-Verse/MMaDA VLMEvalKit wrapper post_process_response"

POPE_GROUP_FIELDS: tuple[str, ...] = ("category",)
MME_GROUP_FIELDS: tuple[str, ...] = ("category", "image_path")
GQA_GROUP_FIELDS: tuple[str, ...] = ("split", "category")
MMMU_GROUP_FIELDS: tuple[str, ...] = ("split", "l2-category", "category")

MME_PERCEPTION: tuple[str, ...] = (
    "OCR", "artwork", "celebrity", "color", "count", "existence", "landmark", "position", "posters", "scene",
)
MME_REASONING: tuple[str, ...] = (
    "code_reasoning", "commonsense_reasoning", "numerical_calculation", "text_translation",
)

# ----------------------------------------------------------------------------------------------------
# Shared helpers


def _is_missing(value: Any) -> bool:
    """None, NaN (pandas' empty cell) or an empty string."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value == ""


def _row_id(row: Mapping[str, Any]) -> str:
    for key in ("index", "id", "question_id"):
        if key in row and not _is_missing(row[key]):
            return str(row[key])
    return "?"


def _prediction(prediction: Any, bench: str, row: Mapping[str, Any]) -> str:
    if not isinstance(prediction, str):
        raise DataError(f"{bench} row {_row_id(row)}: prediction must be a string, got {type(prediction).__name__}")
    return prediction


def _field(row: Mapping[str, Any], name: str, bench: str) -> Any:
    if name not in row or _is_missing(row[name]):
        raise DataError(f"{bench} row {_row_id(row)}: missing field {name!r}")
    return row[name]


def _number(record: Mapping[str, Any], name: str, bench: str, i: int) -> float:
    value = record.get(name)
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        raise DataError(f"{bench} record {i}: field {name!r} must be a number, got {value!r}")
    return float(value)


def _yes_no_gold(row: Mapping[str, Any], bench: str) -> str:
    answer = _field(row, "answer", bench)
    if answer not in ("Yes", "No"):
        raise DataError(f"{bench} row {_row_id(row)}: field 'answer' must be 'Yes' or 'No', got {answer!r}")
    return answer


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


# ----------------------------------------------------------------------------------------------------
# Yes/No extraction and the MMaDA wrapper's own post-processing


def yorn_extraction(prediction: str) -> str:
    """'Yes'/'No' when exactly one of the words occurs (after VQA punctuation cleaning), else 'Unknown'.

    Whole words only, so "not" or "nah" do not count as "no" and "No. Yes." is Unknown.
    """
    words = process_punctuation(prediction.lower()).split()
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes and not has_no:
        return "Yes"
    if has_no and not has_yes:
        return "No"
    return "Unknown"


_STANDALONE_OPTION = re.compile(r"\b([A-E])\b")


def mmada_postprocess(response: str, kind: str, dataset: str = "") -> str:
    """What MMaDA's VLMEvalKit wrapper does to a raw generation before VLMEvalKit scores it.

    Apply it only to reproduce the MMaDA authors' numbers: it is part of their model wrapper, not of
    VLMEvalKit's rules. ``kind`` is VLMEvalKit's dataset type (``"Y/N"``, ``"MCQ"`` or anything else);
    ``dataset`` the dataset name (MME answers longer than 10 characters are cut to 3 words).
    Y/N uses *substring* tests ("not" counts as "no"); MCQ keeps the last standalone letter A-E.
    """
    text = response
    if kind == "Y/N":
        low = text.lower()
        if "yes" in low and "no" not in low:
            return "Yes"
        if "no" in low and "yes" not in low:
            return "No"
        if low.strip().startswith("yes"):
            return "Yes"
        if low.strip().startswith("no"):
            return "No"
    elif kind == "MCQ":
        letters = _STANDALONE_OPTION.findall(text)
        if letters:
            return letters[-1]
    if "MME" in dataset and len(text) > 10:
        words = text.split()
        if len(words) > 3:
            text = " ".join(words[:3])
    return text.strip()


# ----------------------------------------------------------------------------------------------------
# POPE


def score_pope_sample(prediction: str, row: Mapping[str, Any]) -> dict[str, float]:
    """acc (gold == extracted) plus the two indicators POPE's precision/recall/F1 need."""
    extracted = yorn_extraction(_prediction(prediction, "POPE", row))
    gold = _yes_no_gold(row, "POPE")
    return {
        "acc": float(gold == extracted),
        "gold_yes": float(gold == "Yes"),
        "pred_yes": float(extracted == "Yes"),
        "pred_unknown": float(extracted == "Unknown"),
    }


def _pope_splits(category: Any) -> list[Any]:
    """Split names a row belongs to; a missing category counts in Overall only (pandas NaN behaviour)."""
    if _is_missing(category) and category != "":
        return [None]
    return str(category).split(",")


def _pope_block(items: Sequence[tuple[bool, bool, float]]) -> dict[str, float]:
    """acc, precision, recall, F1 (x100) with 'Yes' as positive; 0 where a denominator is 0."""
    tp = sum(1 for g, p, _ in items if g and p)
    fp = sum(1 for g, p, _ in items if not g and p)
    fn = sum(1 for g, p, _ in items if g and not p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    acc = _mean([c for _, _, c in items])
    return {"acc": acc * 100, "precision": precision * 100, "recall": recall * 100, "f1": f1 * 100}


def _pope_rate(exploded: Sequence[tuple[Any, bool, bool, float]]) -> dict[str, float]:
    """Overall over all exploded rows (a row listed in 3 splits counts 3 times), then each split."""
    if not exploded:
        raise DataError("POPE: no samples to aggregate")
    out = {f"Overall/{k}": v for k, v in _pope_block([e[1:] for e in exploded]).items()}
    splits = sorted({e[0] for e in exploded if e[0] is not None})
    for split in splits:
        block = _pope_block([e[1:] for e in exploded if e[0] == split])
        out.update({f"{split}/{k}": v for k, v in block.items()})
    return out


def aggregate_pope(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """VLMEvalKit POPE_rating from per-sample records (``score_pope_sample`` + ``category``).

    ``<split>/f1`` is what VLMEvalKit prints in its "Overall" column; papers quote either that or acc.
    """
    exploded = []
    for i, record in enumerate(records):
        item = (
            _number(record, "gold_yes", "POPE", i) == 1.0,
            _number(record, "pred_yes", "POPE", i) == 1.0,
            _number(record, "acc", "POPE", i),
        )
        exploded.extend((split, *item) for split in _pope_splits(record.get("category")))
    return _pope_rate(exploded)


def pope_rating(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """POPE_rating on VLMEvalKit's scored rows (``answer``, ``extracted``, ``category``, ``score``)."""
    exploded = []
    for row in rows:
        item = (row.get("answer") == "Yes", row.get("extracted") == "Yes", float(row.get("score", 0)))
        exploded.extend((split, *item) for split in _pope_splits(row.get("category")))
    return _pope_rate(exploded)


# ----------------------------------------------------------------------------------------------------
# MME


def score_mme_sample(prediction: str, row: Mapping[str, Any]) -> dict[str, float]:
    """acc = 1 when the extracted Yes/No equals the gold answer."""
    extracted = yorn_extraction(_prediction(prediction, "MME", row))
    return {"acc": float(_yes_no_gold(row, "MME") == extracted)}


def _mme_images(records: Sequence[Mapping[str, Any]], score_key: str) -> dict[str, dict[str, list[float]]]:
    """subtask -> image_path -> scores of that image's questions, in first-seen order."""
    stats: dict[str, dict[str, list[float]]] = {}
    for i, record in enumerate(records):
        category = record.get("category")
        image = record.get("image_path")
        if _is_missing(category) or _is_missing(image):
            raise DataError(f"MME record {i}: needs 'category' and 'image_path' (acc+ pairs questions by image)")
        stats.setdefault(str(category), {}).setdefault(str(image), []).append(_number(record, score_key, "MME", i))
    return stats


def _mme_subtask(name: str, images: Mapping[str, list[float]]) -> dict[str, float]:
    """acc over questions and acc+ over images (both answers right), x100; score = acc + acc+ (max 200)."""
    for image, scores in images.items():
        if len(scores) != 2:
            raise DataError(f"MME subtask {name!r}, image {image!r}: expected 2 questions, found {len(scores)}")
    acc = _mean([s for scores in images.values() for s in scores]) * 100
    acc_plus = _mean([scores[0] * scores[1] for scores in images.values()]) * 100
    return {f"{name}/acc": acc, f"{name}/acc_plus": acc_plus, f"{name}/score": acc + acc_plus}


def aggregate_mme(records: Sequence[Mapping[str, Any]], *, score_key: str = "acc") -> dict[str, Any]:
    """VLMEvalKit MME_rating: per-subtask scores, ``perception/score`` and ``reasoning/score`` sums.

    Records: per-sample dicts (``score_key`` 0/1) with ``category`` and ``image_path``. When any of the
    14 MME subtasks is absent the sums cover the present ones only, ``partial`` is True and
    ``missing_subtasks`` names the absent ones; a sum with no subtask present is left out.
    """
    if not records:
        raise DataError("MME: no samples to aggregate")
    stats = _mme_images(records, score_key)
    out: dict[str, Any] = {}
    for name, images in stats.items():
        out.update(_mme_subtask(name, images))
    for group, members in (("perception", MME_PERCEPTION), ("reasoning", MME_REASONING)):
        present = [m for m in members if m in stats]
        if present:
            out[f"{group}/score"] = sum(out[f"{m}/score"] for m in present)
    missing = [m for m in MME_PERCEPTION + MME_REASONING if m not in stats]
    out["partial"] = bool(missing)
    out["missing_subtasks"] = missing
    return out


# ----------------------------------------------------------------------------------------------------
# GQA (and any single-answer VQA scored with method='accuracy')


def _gold_answers(row: Mapping[str, Any], bench: str) -> list[str]:
    """One answer, or several stored as a Python list literal (VLMEvalKit evaluates such strings)."""
    answer = _field(row, "answer", bench)
    if isinstance(answer, list | tuple):
        return [str(a) for a in answer]
    text = str(answer)
    if text.lstrip().startswith("["):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list):
            return [str(a) for a in parsed]
    return [text]


def score_gqa_sample(prediction: str, row: Mapping[str, Any]) -> dict[str, float]:
    """acc = mean over gold answers of (stripped, lower-cased) equality; 0/1 for GQA's single answer."""
    pred = _prediction(prediction, "GQA", row).strip().lower()
    golds = _gold_answers(row, "GQA")
    return {"acc": _mean([1.0 if g.strip().lower() == pred else 0.0 for g in golds])}


def aggregate_gqa(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``Overall/acc`` x100; plus per ``split`` when records have one, else per ``category`` if present."""
    if not records:
        raise DataError("GQA: no samples to aggregate")
    values = [_number(r, "acc", "GQA", i) for i, r in enumerate(records)]
    out = {"Overall/acc": _mean(values) * 100}
    key = "split" if any(not _is_missing(r.get("split")) for r in records) else "category"
    groups: dict[str, list[float]] = {}
    for record, value in zip(records, values, strict=True):
        if not _is_missing(record.get(key)):
            groups.setdefault(str(record[key]), []).append(value)
    for name in sorted(groups):
        out[f"{name}/acc"] = _mean(groups[name]) * 100
    return out


# ----------------------------------------------------------------------------------------------------
# Multiple choice: can_infer


_API_FAILURE = "Failed to obtain answer via API"
_REFUSALS: tuple[str, ...] = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_OPTION_SEPARATORS = str.maketrans({c: " " for c in ".()[],:;!*#{}"})
_ANSWER_IS = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")


def _check_choices(choices: Mapping[str, Any]) -> None:
    for key in choices:
        if not (isinstance(key, str) and len(key) == 1 and key in string.ascii_uppercase):
            raise DataError(f"option label {key!r} is not a single upper-case letter")


def can_infer_option(answer: str, choices: Mapping[str, Any]) -> str | None:
    """Option letter named in the answer, 'Z' for refusals / a bare 'Z', None if not found.

    A letter counts when it is the only option letter standing as a token (after splitting on spaces
    and ``.()[],:;!*#{}``) and sits among the last 4 tokens; else "answer is X" phrasing for A-D.
    """
    if _API_FAILURE in answer:
        return None
    if any(msg in answer for msg in _REFUSALS):
        return "Z"
    tokens = answer.translate(_OPTION_SEPARATORS).split()
    named = [letter for letter in choices if letter in tokens]
    if len(named) == 1 and tokens.index(named[0]) > len(tokens) - 5:
        return named[0]
    if not named and "Z" in tokens:
        return "Z"
    match = _ANSWER_IS.search(answer)
    if match and match.group(1).upper() in choices:
        return match.group(1).upper()
    return None


def can_infer_text(answer: str, choices: Mapping[str, Any]) -> str | None:
    """The single option whose text occurs (case-insensitively) in a not-too-long answer, else None."""
    lowered = answer.lower()
    if len(lowered) > 2 * sum(len(str(v)) for v in choices.values()):
        return None
    found = [letter for letter, text in choices.items() if str(text).lower() in lowered]
    return found[0] if len(found) == 1 else None


def can_infer(answer: Any, choices: Mapping[str, Any]) -> str | None:
    """VLMEvalKit ``can_infer``: option letter first, option text second; None when neither works."""
    _check_choices(choices)
    text = str(answer)
    return can_infer_option(text, choices) or can_infer_text(text, choices)


# ----------------------------------------------------------------------------------------------------
# MMMU, VLMEvalKit rule


def _options(row: Mapping[str, Any]) -> dict[str, Any]:
    return {c: row[c] for c in string.ascii_uppercase if c in row and not _is_missing(row[c])}


def mmmu_preproc(row: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """(choices, gold letter) after VLMEvalKit's MMMU_preproc.

    An open question (no option A) becomes A = its gold answer, B = "Other Answers"; the gold letter
    is the answer when it is a single upper-case letter, else A.
    """
    answer = _field(row, "answer", "MMMU")
    choices = _options(row)
    if "A" not in choices:
        choices["A"] = answer
        choices["B"] = "Other Answers"
    gold = answer if isinstance(answer, str) and len(answer) == 1 and answer in string.ascii_uppercase else "A"
    return choices, gold


def mmmu_vlmeval_choice(prediction: str, row: Mapping[str, Any]) -> str:
    """Letter VLMEvalKit attributes to the prediction ('Z' when nothing matched and no judge is used)."""
    choices, _ = mmmu_preproc(row)
    return can_infer(_prediction(prediction, "MMMU", row), choices) or "Z"


def score_mmmu_sample(prediction: str, row: Mapping[str, Any]) -> dict[str, float]:
    """acc (inferred letter == gold letter) and matched (can_infer found a letter or 'Z')."""
    choices, gold = mmmu_preproc(row)
    inferred = can_infer(_prediction(prediction, "MMMU", row), choices)
    return {"acc": float((inferred or "Z") == gold), "matched": float(inferred is not None)}


def aggregate_mmmu(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """VLMEvalKit report_acc layout, x100: ``<split>/Overall/acc`` and ``<split>/<group>/acc``.

    Groups are the values of ``l2-category`` then ``category`` (a category overwrites an equal-named
    discipline, as upstream). Records without ``split`` go to split ``none``. The MMMU headline number
    is ``validation/Overall/acc``. Used for both MMMU rules (only the per-sample scoring differs).
    """
    if not records:
        raise DataError("MMMU: no samples to aggregate")
    values = [_number(r, "acc", "MMMU", i) for i, r in enumerate(records)]
    splits = [str(r["split"]) if not _is_missing(r.get("split")) else "none" for r in records]
    out: dict[str, float] = {}
    for split in sorted(set(splits)):
        in_split = [(r, v) for r, v, s in zip(records, values, splits, strict=True) if s == split]
        out[f"{split}/Overall/acc"] = _mean([v for _, v in in_split]) * 100
        for field in ("l2-category", "category"):
            groups: dict[str, list[float]] = {}
            for record, value in in_split:
                if not _is_missing(record.get(field)):
                    groups.setdefault(str(record[field]), []).append(value)
            for name in sorted(groups):
                out[f"{split}/{name}/acc"] = _mean(groups[name]) * 100
    return out


# ----------------------------------------------------------------------------------------------------
# MMMU, official rule (MMMU-Benchmark/MMMU mmmu/utils/eval_utils.py)

MMMU_OFFICIAL_SEED = 42
_EDGE_PUNCTUATION = (",", ".", "!", "?", ";", ":", "'")


def _candidates_in_order(response: str, all_choices: Sequence[str], index2ans: Mapping[str, str]
                         ) -> tuple[list[str], str]:
    """Candidate letters and how they were found: 'bracket' "(A)", 'letter' " A ", or 'text'."""
    found = [c for c in all_choices if f"({c})" in response]
    if found:
        return found, "bracket"
    found = [c for c in all_choices if f" {c} " in response]
    if found:
        return found, "letter"
    if len(response.split()) > 5:
        return [c for c, text in index2ans.items() if text.lower() in response.lower()], "text"
    return [], "letter"


def _last_mentioned(response: str, candidates: Sequence[str], how: str, index2ans: Mapping[str, str]) -> str:
    """Of several candidates, the one whose mention starts last (first one on a tie)."""
    if how == "bracket":
        starts = [response.rfind(f"({c})") for c in candidates]
    elif how == "letter":
        starts = [response.rfind(f" {c} ") for c in candidates]
    else:
        starts = [response.lower().rfind(index2ans[c].lower()) for c in candidates]
    return candidates[starts.index(max(starts))]


def parse_mmmu_multi_choice(response: str, all_choices: Sequence[str], index2ans: Mapping[str, str],
                            rng: random.Random) -> tuple[str, bool]:
    """(letter, used_random_fallback) by MMMU's official parser.

    When nothing is found MMMU picks a random option; the official script seeds Python's global RNG
    with 42 once, so results depend on the order samples are parsed. Pass one shared
    ``random.Random(42)`` in dataset order to reproduce it.
    """
    for char in _EDGE_PUNCTUATION:
        response = response.strip(char)
    response = f" {response} "
    candidates, how = _candidates_in_order(response, all_choices, index2ans)
    if not candidates:
        return rng.choice(list(all_choices)), True
    if len(candidates) == 1:
        return candidates[0], False
    return _last_mentioned(response, candidates, how, index2ans), False


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def mmmu_normalize_str(text: str) -> list[str | float]:
    """Numbers become floats rounded to 2 decimals; other text is lower-cased (1 char padded by a space)."""
    text = text.strip()
    if _is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    if len(text) == 1:
        return [" " + text, text + " "]
    return [text]


_NUM_WITH_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUM_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUM_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def mmmu_extract_numbers(text: str) -> list[str]:
    """Numbers with thousands commas, in scientific notation, then plain ones (MMMU's three patterns)."""
    return _NUM_WITH_COMMAS.findall(text) + _NUM_SCIENTIFIC.findall(text) + _NUM_SIMPLE.findall(text)


_KEY_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_TRIVIAL_TAILS = frozenset({":", ",", ".", "!", "?", ";", "'"})


def _key_subresponses(response: str) -> list[str]:
    """Tails after answer indicators ("is", "therefore", ...; "=" in the last sentence), shortest per sentence.

    Sentences are split on ". " before a capital letter, but only after lower-casing (as upstream), so in
    practice only newlines split.
    """
    response = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys = []
    for pos, sentence in enumerate(sentences):
        indicators = _KEY_INDICATORS + (("=",) if pos == len(sentences) - 1 else ())
        shortest: str | None = None
        for indicator in indicators:
            if indicator in sentence:
                tail = sentence.split(indicator)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL_TAILS:
            keys.append(shortest)
    return keys or [response]


def parse_mmmu_open(response: str) -> list[str | float]:
    """Normalised candidate answers of an open response (key tails plus every number found in them)."""
    keys = _key_subresponses(response)
    candidates: list[str] = list(keys)
    for key in keys:
        candidates.extend(mmmu_extract_numbers(key))
    normalised: list[str | float] = []
    for candidate in candidates:
        normalised.extend(mmmu_normalize_str(candidate))
    return list(dict.fromkeys(normalised))


def eval_mmmu_open(gold: str | Sequence[str], parsed: Sequence[str | float]) -> bool:
    """Correct when a parsed number equals a gold number, or a gold string occurs in a parsed string."""
    golds = [gold] if isinstance(gold, str) else list(gold)
    norm_golds: list[str | float] = []
    for answer in golds:
        norm_golds.extend(mmmu_normalize_str(str(answer)))
    for pred in parsed:
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in norm_golds):
                return True
        elif pred in norm_golds:
            return True
    return False


def _is_multiple_choice(row: Mapping[str, Any]) -> bool:
    kind = row.get("question_type")
    if _is_missing(kind):
        return "A" in _options(row)
    return kind == "multiple-choice"


def score_mmmu_official_sample(prediction: str, row: Mapping[str, Any],
                               rng: random.Random | None = None) -> dict[str, float]:
    """acc by MMMU's official rule, and random_fallback (1 when the MC parser had to guess).

    Without ``rng`` each call uses a fresh ``random.Random(42)``, which makes a sample's score
    independent of order; pass a shared one to reproduce the official script's sequence exactly.
    """
    pred = _prediction(prediction, "MMMU", row)
    gold = _field(row, "answer", "MMMU")
    if not _is_multiple_choice(row):
        golds = _gold_answers(row, "MMMU")
        return {"acc": float(eval_mmmu_open(golds, parse_mmmu_open(pred))), "random_fallback": 0.0}
    options = _options(row)
    if not options:
        raise DataError(f"MMMU row {_row_id(row)}: multiple-choice question without options A, B, ...")
    index2ans = {letter: str(text) for letter, text in options.items()}
    letter, guessed = parse_mmmu_multi_choice(pred, list(options), index2ans, rng or random.Random(MMMU_OFFICIAL_SEED))
    return {"acc": float(letter == str(gold)), "random_fallback": float(guessed)}
