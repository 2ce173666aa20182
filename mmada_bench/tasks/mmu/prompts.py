"""Per-benchmark question text and answer clean-up, as the reference MMaDA VLMEvalKit wrapper does it.

MMaDA's published MMU numbers come from its own VLMEvalKit wrapper (``Gen-Verse/MMaDA:
evaluation/VLMEvalKit/vlmeval/vlm/mmada/mmada.py``), which overrides every dataset's prompt
(``use_custom_prompt`` is True for all image sets) and post-processes the raw generation before
VLMEvalKit scores it. Both steps change scores, so both are reproduced here:

* Prompts (``build_prompt``): POPE the raw question; MME the question + " Answer the question using a
  single word or phrase."; GQA the question + "\\nAnswer the question using a single word or phrase."
  (VQAv2 gets the same suffix: the wrapper's default for VQA sets, and lmms-eval's ``vqav2``
  ``post_prompt`` is the identical string); MMMU the wrapper's multiple-choice block (optional hint
  line, question, "\\nA. ..." option lines, then the letter instruction, or "\\nAnswer the question
  directly." for open questions, which have no options at inference time); easy-VQA the raw question.
  MMMU's ``<image k>`` placeholders stay in the text verbatim and only the first image is shown:
  the wrapper bypasses VLMEvalKit's ``split_MMMU`` and ``generate_mmada`` keeps the first image.
  The optional chain-of-thought instruction is added later, by the adapter.
* Post-processing (``postprocess``): VLMEvalKit's scorers do their own extraction (``YOrN_Extraction``
  and ``can_infer``), but they see the wrapper's already rewritten text, and the rewrites differ from
  the scorers' rules (e.g. substring "no" in "not"/"know" maps to "No"; an MCQ answer becomes its last
  standalone A-E letter, so "A triangle, B" gives "B"; MME answers over 10 characters are cut to three
  words). Scoring raw generations with VLMEvalKit's rules alone would therefore not reproduce the
  reference numbers.
"""

from __future__ import annotations

import re
import string
from typing import Any

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.scorers.vlmeval import mmada_postprocess
from mmada_bench.tasks.mmu.rows import ImageRef, MMURow

SHORT_ANSWER = "Answer the question using a single word or phrase."
MCQ_INSTRUCTION = "Answer with the option's letter from the given choices directly."
MCQ_INSTRUCTION_CN = "请直接回答选项字母。"
OPEN_INSTRUCTION = "Answer the question directly."
OPEN_INSTRUCTION_CN = "请直接回答问题。"

#: Cell texts that ``pd.read_csv`` reads as NaN. VLMEvalKit loads TSVs with pandas and drops NaN
#: options and hints, so an option spelled exactly like one of these never reaches the prompt there.
PANDAS_NA_STRINGS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})

# dataset family -> VLMEvalKit dataset type as the wrapper sees it
_KINDS = {"POPE": "Y/N", "MME": "Y/N", "GQA": "VQA", "VQAv2": "VQA", "MMMU": "MCQ", "easyVQA": "VQA"}

_CJK = re.compile("[\u4e00-\u9fff]")


def dataset_family(dataset: str) -> str:
    """Map a dataset name (``POPE``, ``MME``, ``GQA_TestDev_Balanced``, ``MMMU_DEV_VAL``, ``VQAv2``,
    ``easy-VQA``, ...) to the family whose prompt rule applies; unknown names are a ConfigError.

    Families are matched like the wrapper's ``listinstr`` (prefix of the VLMEvalKit name), so the
    splits of one benchmark (``MMMU_DEV_VAL``/``MMMU_TEST``) share a rule.
    """
    folded = dataset.lower().replace("-", "").replace("_", "")
    if folded.startswith("easyvqa"):
        return "easyVQA"
    if folded.startswith("vqav2"):
        return "VQAv2"
    for family in ("POPE", "MMMU", "MME", "GQA"):
        if dataset.upper().startswith(family) and not dataset.upper().startswith("MME-REALWORLD"):
            return family
    raise ConfigError(f"no MMU prompt rule for dataset {dataset!r} (known: {', '.join(_KINDS)})")


def build_prompt(dataset: str, row: MMURow) -> tuple[str, ImageRef]:
    """The question text the model gets and the one image shown with it (the row's first)."""
    family = dataset_family(dataset)
    if not row.images:
        raise DataError(f"{dataset} index {row.index}: the row has no image")
    if family == "MME":
        text = row.question + " " + SHORT_ANSWER
    elif family in ("GQA", "VQAv2"):
        text = row.question + "\n" + SHORT_ANSWER
    elif family == "MMMU":
        text = multiple_choice_prompt(row)
    else:  # POPE, easy-VQA
        text = row.question
    return text, row.images[0]


def options(row: MMURow) -> dict[str, str]:
    """Option letter -> text for every single-letter column A..Z that holds a value, in letter order."""
    return {letter: str(row.fields[letter]) for letter in string.ascii_uppercase
            if letter in row.fields and not _missing(row.fields[letter])}


def multiple_choice_prompt(row: MMURow) -> str:
    """The wrapper's ``build_multi_choice_prompt``: ``[hint\\n]question`` + ``\\nX. option`` lines +
    instruction (Chinese instruction when the text contains CJK characters, as the wrapper does)."""
    hint = row.fields.get("hint")
    text = row.question if _missing(hint) else f"{hint}\n{row.question}"
    choices = options(row)
    for letter, option in choices.items():
        text += f"\n{letter}. {option}"
    chinese = bool(_CJK.search(text))
    if choices:
        return text + "\n" + (MCQ_INSTRUCTION_CN if chinese else MCQ_INSTRUCTION)
    return text + "\n" + (OPEN_INSTRUCTION_CN if chinese else OPEN_INSTRUCTION)


def postprocess(dataset: str, text: str) -> str:
    """The wrapper's ``post_process_response`` followed by its final ``strip()``.

    Y/N sets: "Yes"/"No" when exactly one of the substrings appears (case-insensitive), else by the
    leading word. MCQ: the last standalone capital A-E. Any text not rewritten by those rules is,
    for MME only, cut to its first three words when longer than 10 characters.
    """
    family = dataset_family(dataset)
    return mmada_postprocess(text, _KINDS[family], family)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN from a pandas-built row
        return True
    return isinstance(value, str) and value in PANDAS_NA_STRINGS
