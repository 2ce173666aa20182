"""WISE (PKU-YuanGroup/WISE): prompts, judge prompts, judge-reply parsing, WiScore aggregation.

WISE scores text-to-image models on world knowledge: a multimodal judge reads the prompt, a reference
explanation of what a correct image must show, and the image. Two protocols exist and their numbers
are NOT comparable, so every function here takes the protocol explicitly:

* ``legacy`` (the paper, ``WISE_legacy/``): the judge (GPT-4o-2024-05-13) gives Consistency, Realism
  and Aesthetic Quality, each 0-2; WiScore = (0.7 C + 0.2 R + 0.1 A) / 2.
* ``verified`` (WISE_Verified, the repository default since 2026): the judge (Qwen3.5-35B-A3B behind
  vLLM) gives one binary score.

Parsing and aggregation follow ``PKU-YuanGroup/WISE@eb51174`` (:data:`WISE_SOURCE`) exactly, including
its quirks (regexes, last/first match, the bare-digit fallbacks, categories taken from the prompt_id
range rather than the file, duplicates counted twice, the all-or-nothing rule for ``--category all``),
because these decide the reported number; the golden cases in ``tests/fixtures/golden/wise`` pin them.

The judge *prompt wording* is this project's own (see :data:`LEGACY_TEMPLATE`,
:data:`VERIFIED_TEMPLATE`): same inputs, criteria and answer format as the official protocol, but not
its text. A judge may score our wording slightly differently; to reproduce published numbers load the
official wording into a :class:`JudgeTemplate` (``JudgeTemplate.from_file``). The template's name and
hash are recorded with every outcome so the two are never mixed silently.

:class:`JudgeClient` is a small stateless OpenAI-compatible chat client (httpx); resumability belongs
to the harness's request log, not to the client.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # httpx2 is the drop-in successor that huggingface_hub 2 installs; either works.
    import httpx
except ImportError:  # pragma: no cover - depends on the environment
    import httpx2 as httpx  # type: ignore[no-redef]

from mmada_bench.adapters.base import Adapter, Cost, TextResult
from mmada_bench.adapters.settings import Settings
from mmada_bench.errors import ConfigError, DataError, MMaDABenchError

WISE_SOURCE = "PKU-YuanGroup/WISE@eb51174483a5de2e34e8614cf9dfb3319ee7fcd0"

#: Category names in the official report order.
CATEGORIES: tuple[str, ...] = ("CULTURE", "TIME", "SPACE", "BIOLOGY", "PHYSICS", "CHEMISTRY")

#: ``--category`` values of the official calculators (``all`` requires every prompt id 1..1000).
CATEGORY_ARGS: tuple[str, ...] = ("culture", "space-time", "science", "all")

OUTCOME_OVERALL = "overall"
OUTCOME_ABORTED_MISSING = "aborted_missing_prompt_ids"
OUTCOME_NO_VALID_DATA = "no_valid_data"
OUTCOME_NOT_COMPUTABLE = "overall_not_computable"
OUTCOME_SKIPPED = "overall_skipped"

STATUS_OK = "ok"
STATUS_EXTRACT_FAIL = "extract_fail"
STATUS_JUDGE_ERROR = "judge_error"

RULE_LEGACY_PARSE = (
    "wise.legacy.parse/eb51174: findall label regex, last wins, else >=3 bare 0-2 lines; 3 attempts"
)
RULE_VERIFIED_PARSE = "wise.verified.parse/eb51174: strip <think>, first 'Score' [01]\\b match, else exactly one bare 0/1 line; 3 attempts"
RULE_AGGREGATE = (
    "wise.aggregate/eb51174: category by prompt_id range; sum/count over files; 'all' needs ids 1..1000"
)


class JudgeError(MMaDABenchError):
    """The judge endpoint could not be reached or answered with an error / malformed body."""


# --------------------------------------------------------------------------------------------------
# Judge prompt templates (our wording)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeTemplate:
    """System and user text of a judge request; ``{prompt}`` and ``{explanation}`` in ``user`` are
    replaced (plain replacement, so braces in WISE prompts are safe)."""

    name: str
    system: str
    user: str

    @property
    def sha256(self) -> str:
        """Identity of the wording, recorded with every judged image."""
        blob = json.dumps({"system": self.system, "user": self.user}, sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def render_user(self, prompt: str, explanation: str) -> str:
        return self.user.replace("{prompt}", prompt).replace("{explanation}", explanation)

    @classmethod
    def from_file(cls, path: str | Path) -> JudgeTemplate:
        """Load ``{"name", "system", "user"}`` from JSON (e.g. the official wording, kept locally)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read judge template ({exc})") from None
        for key in ("name", "system", "user"):
            if not isinstance(data.get(key), str):
                raise ConfigError(f"{path}: judge template field {key!r} missing or not a string")
        if "{prompt}" not in data["user"] or "{explanation}" not in data["user"]:
            raise ConfigError(f"{path}: judge template 'user' must contain {{prompt}} and {{explanation}}")
        return cls(name=data["name"], system=data["system"], user=data["user"])


LEGACY_TEMPLATE = JudgeTemplate(
    name="mmada_bench/wise-legacy-v1",
    system="You grade images made by text-to-image models. Grade strictly and follow the answer format exactly.",
    user="""You will see an image generated from a text prompt, plus an explanation of what a correct image must show.

Give three integer scores, each 0, 1 or 2:

Consistency - does the image show what the prompt, read with the help of the explanation, asks for?
  0: key content is missing or contradicted. 1: partly right, or right with clear deviations.
  2: every element of the prompt is present and correct.
Realism - is the image physically and visually believable?
  0: clearly artificial or physically impossible. 1: believable overall but with visible flaws.
  2: could pass for a real photograph: lighting, materials, physics and spatial layout all right.
Aesthetic Quality - composition, colour and overall artistic quality.
  0: unappealing or badly composed. 1: acceptable but unremarkable. 2: outstanding.

Be severe: give 2 only when there is no doubt; when unsure, choose the lower score.

Answer with exactly these three lines and nothing else:
Consistency: <0, 1 or 2>
Realism: <0, 1 or 2>
Aesthetic Quality: <0, 1 or 2>

PROMPT: "{prompt}"
EXPLANATION: "{explanation}"
""",
)

VERIFIED_TEMPLATE = JudgeTemplate(
    name="mmada_bench/wise-verified-v1",
    system="You check whether images made by text-to-image models are correct. Follow the answer format exactly.",
    user="""You will see an image generated from a WISE prompt. WISE prompts often describe their subject indirectly,
so the model has to use cultural, scientific, spatial or temporal knowledge to work out what to draw.
The EXPLANATION below says what the intended answer is and what a correct image must show; treat it as
the ground truth.

Score 1 only if both hold:
- the image shows the intended answer from the EXPLANATION, with the required objects, states,
  behaviours and relations right (not merely the literal words of the PROMPT);
- the image is clear enough to judge: no collapsed, badly deformed or unreadable main subject.
Style, plain composition or modest beauty are not reasons to reject a correct, clear image.

Otherwise score 0, including when a careful human could not confidently confirm correctness.
If in serious doubt, score 0.

Answer with exactly one line and nothing else: "Score: 0" or "Score: 1".

PROMPT: "{prompt}"
EXPLANATION: "{explanation}"
""",
)


# --------------------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WiseProtocol:
    """Everything that differs between the two WISE protocols, as data recorded with results."""

    name: str
    score_keys: tuple[str, ...]
    ranges: Mapping[str, tuple[int, int]]
    weights: Mapping[str, float]
    group_ranges: Mapping[str, tuple[int, int]]
    reference_judge: str
    template: JudgeTemplate
    max_tokens: int
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    strip_think: bool = False
    max_extract_retries: int = 3
    temperature: float = 0.0
    parse_rule: str = ""

    def category_of(self, prompt_id: int) -> str | None:
        """Category from the id range (the file a line sits in does not matter), or None outside 1..1000."""
        for category in CATEGORIES:
            low, high = self.ranges[category]
            if low <= prompt_id <= high:
                return category
        return None

    def as_record(self) -> dict[str, Any]:
        """What a results file should store to make a WISE number traceable."""
        return {
            "protocol": self.name,
            "source": WISE_SOURCE,
            "reference_judge": self.reference_judge,
            "template": self.template.name,
            "template_sha256": self.template.sha256,
            "weights": dict(self.weights),
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            "max_extract_retries": self.max_extract_retries,
            "parse_rule": self.parse_rule,
            "aggregate_rule": RULE_AGGREGATE,
        }


LEGACY = WiseProtocol(
    name="legacy",
    score_keys=("consistency", "realism", "aesthetic_quality"),
    ranges={"CULTURE": (1, 400), "TIME": (401, 567), "SPACE": (568, 700), "BIOLOGY": (701, 800),
            "PHYSICS": (801, 900), "CHEMISTRY": (901, 1000)},
    weights={"CULTURE": 0.4, "TIME": 0.167, "SPACE": 0.133, "BIOLOGY": 0.1, "PHYSICS": 0.1, "CHEMISTRY": 0.1},
    group_ranges={"culture": (1, 400), "space-time": (401, 700), "science": (701, 1000), "all": (1, 1000)},
    reference_judge="gpt-4o-2024-05-13",
    template=LEGACY_TEMPLATE,
    max_tokens=2000,
    parse_rule=RULE_LEGACY_PARSE,
)  # fmt: skip

VERIFIED = WiseProtocol(
    name="verified",
    score_keys=("score",),
    ranges={"CULTURE": (1, 400), "TIME": (401, 520), "SPACE": (521, 640), "BIOLOGY": (641, 760),
            "PHYSICS": (761, 880), "CHEMISTRY": (881, 1000)},
    weights={"CULTURE": 0.4, "TIME": 0.12, "SPACE": 0.12, "BIOLOGY": 0.12, "PHYSICS": 0.12, "CHEMISTRY": 0.12},
    group_ranges={"culture": (1, 400), "space-time": (401, 640), "science": (641, 1000), "all": (1, 1000)},
    reference_judge="Qwen3.5-35B-A3B",
    template=VERIFIED_TEMPLATE,
    max_tokens=500,
    extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    strip_think=True,
    parse_rule=RULE_VERIFIED_PARSE,
)  # fmt: skip

PROTOCOLS: dict[str, WiseProtocol] = {"legacy": LEGACY, "verified": VERIFIED}


def get_protocol(name: str | WiseProtocol) -> WiseProtocol:
    """Protocol by name (``legacy`` / ``verified``); a clear error for anything else."""
    if isinstance(name, WiseProtocol):
        return name
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"unknown WISE protocol {name!r}; choose one of {sorted(PROTOCOLS)}") from None


# --------------------------------------------------------------------------------------------------
# Prompt files
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WisePrompt:
    """One entry of a WISE prompt file (``Prompt``, ``Explanation``, ``Category``, ``Subcategory``,
    ``prompt_id``); images are expected as ``<prompt_id>.png``."""

    prompt_id: int
    prompt: str
    explanation: str
    category: str
    subcategory: str

    @property
    def image_name(self) -> str:
        return f"{self.prompt_id}.png"


_PROMPT_FIELDS = {"prompt_id": int, "Prompt": str, "Explanation": str, "Category": str, "Subcategory": str}


def _parse_prompt(item: Any, where: str) -> WisePrompt:
    if not isinstance(item, dict):
        raise DataError(f"{where}: <entry>: expected an object, got {type(item).__name__}")
    for key, kind in _PROMPT_FIELDS.items():
        value = item.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise DataError(f"{where}: {key}: missing or not a {kind.__name__} (got {value!r})")
    if item["prompt_id"] < 1:
        raise DataError(f"{where}: prompt_id: must be >= 1, got {item['prompt_id']}")
    return WisePrompt(
        prompt_id=item["prompt_id"],
        prompt=item["Prompt"],
        explanation=item["Explanation"],
        category=item["Category"],
        subcategory=item["Subcategory"],
    )


def read_wise_prompts(path: str | Path) -> list[WisePrompt]:
    """Entries of one WISE prompt file (a JSON array), in file order; duplicate ids are refused
    because the official tools key everything by prompt_id."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: WISE prompt file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: <file>: not valid JSON ({exc})") from None
    if not isinstance(data, list) or not data:
        raise DataError(f"{path}: <file>: expected a non-empty JSON array of prompts")
    prompts = [_parse_prompt(item, f"{path}:[{i}]") for i, item in enumerate(data)]
    _refuse_duplicates(prompts, str(path))
    return prompts


def read_wise_prompt_files(paths: Iterable[str | Path]) -> dict[int, WisePrompt]:
    """Several prompt files merged into ``{prompt_id: prompt}`` (ids must not repeat across files)."""
    prompts = [p for path in paths for p in read_wise_prompts(path)]
    _refuse_duplicates(prompts, "the WISE prompt files")
    return {p.prompt_id: p for p in sorted(prompts, key=lambda p: p.prompt_id)}


def _refuse_duplicates(prompts: Sequence[WisePrompt], where: str) -> None:
    seen: set[int] = set()
    for p in prompts:
        if p.prompt_id in seen:
            raise DataError(f"{where}: prompt_id: {p.prompt_id} appears more than once")
        seen.add(p.prompt_id)


_CATEGORY_NAMES = {
    "cultural knowledge": "CULTURE",
    "time": "TIME",
    "space": "SPACE",
    "biology": "BIOLOGY",
    "physical knowledge": "PHYSICS",
    "chemistry": "CHEMISTRY",
}


def category_mismatches(protocol: WiseProtocol | str, prompts: Iterable[WisePrompt]) -> list[int]:
    """Ids whose file ``Category`` disagrees with the protocol's id range: catches scoring a
    WISE_Verified prompt set with legacy ranges (or the reverse), which the calculators cannot see."""
    protocol = get_protocol(protocol)
    bad = []
    for p in prompts:
        named = _CATEGORY_NAMES.get(p.category.strip().lower())
        if named is not None and protocol.category_of(p.prompt_id) != named:
            bad.append(p.prompt_id)
    return bad


# --------------------------------------------------------------------------------------------------
# Judge messages and reply parsing
# --------------------------------------------------------------------------------------------------


def build_judge_messages(
    protocol: WiseProtocol | str, prompt: WisePrompt, template: JudgeTemplate | None = None
) -> list[dict[str, Any]]:
    """Text-only chat messages (system + user) for one prompt; :meth:`JudgeClient.judge` appends the
    image to the last user message, after the text, as the official requests do."""
    protocol = get_protocol(protocol)
    template = template or protocol.template
    return [
        {"role": "system", "content": [{"type": "text", "text": template.system}]},
        {
            "role": "user",
            "content": [{"type": "text", "text": template.render_user(prompt.prompt, prompt.explanation)}],
        },
    ]


_LEGACY_LABELS = re.compile(
    r"\*{0,2}(Consistency|Realism|Aesthetic Quality)\*{0,2}\s*[::]?\s*(\d)", re.IGNORECASE
)
_LEGACY_BARE = re.compile(r"(?m)^\s*([0-2])\s*$")
_VERIFIED_LABEL = re.compile(r"\*{0,2}Score\*{0,2}\s*[::]?\s*([01])\b", re.IGNORECASE)
_VERIFIED_BARE = re.compile(r"(?m)^\s*([01])\s*$")
_THINK_BLOCK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)
_THINK_CLOSE = re.compile(r"</think>\s*")


def extract_legacy_scores(text: str) -> dict[str, float]:
    """Legacy parse at HEAD: every labelled digit (last one per label wins, no range check, ``\\d``
    includes non-ASCII digits); if no label matched, the first three lines that are a bare 0-2 digit.
    May return a partial dict; completeness is checked by the caller."""
    scores = {label.lower().replace(" ", "_"): float(digit) for label, digit in _LEGACY_LABELS.findall(text)}
    if scores:
        return scores
    bare = _LEGACY_BARE.findall(text)
    if len(bare) >= 3:
        return {"consistency": float(bare[0]), "realism": float(bare[1]), "aesthetic_quality": float(bare[2])}
    return {}


def clean_verified_reply(text: str) -> str:
    """Drop ``<think>...</think>`` blocks (and a stray closing tag) from a reasoning model's reply."""
    return _THINK_CLOSE.sub("", _THINK_BLOCK.sub("", text)).strip()


def extract_verified_scores(text: str) -> dict[str, float]:
    """Verified parse: the first ``Score`` followed by 0/1 at a word boundary; else exactly one bare
    0/1 line. Expects already-cleaned text (see :func:`parse_reply`)."""
    match = _VERIFIED_LABEL.search(text)
    if match:
        return {"score": float(match.group(1))}
    bare = _VERIFIED_BARE.findall(text)
    if len(bare) == 1:
        return {"score": float(bare[0])}
    return {}


@dataclass(frozen=True)
class ParsedReply:
    """A judge reply after clean-up and parsing; ``complete`` is False when a score is missing."""

    cleaned: str
    scores: dict[str, float]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing


def parse_reply(protocol: WiseProtocol | str, reply: str | None) -> ParsedReply:
    """Parse a reply for a protocol. Never raises: an unusable reply comes back incomplete."""
    protocol = get_protocol(protocol)
    text = reply if isinstance(reply, str) else ""
    if protocol.strip_think:
        text = clean_verified_reply(text)
        scores = extract_verified_scores(text)
    else:
        scores = extract_legacy_scores(text)
    missing = tuple(k for k in protocol.score_keys if k not in scores)
    return ParsedReply(cleaned=text, scores=scores, missing=missing)


def score_record(
    protocol: WiseProtocol | str, prompt: WisePrompt, scores: Mapping[str, float]
) -> dict[str, Any]:
    """The scores-file line in the official layout (``prompt_id``, ``Subcategory``, then the scores)."""
    protocol = get_protocol(protocol)
    record: dict[str, Any] = {"prompt_id": prompt.prompt_id, "Subcategory": prompt.subcategory}
    record.update({k: scores[k] for k in protocol.score_keys})
    return record


JudgeFn = Callable[[list[dict[str, Any]], bytes | None], str]


@dataclass
class JudgeOutcome:
    """Result of judging one image, with up to ``max_extract_retries`` attempts.

    ``status`` is ``ok``, ``extract_fail`` (replies came back but never parsed: the official status) or
    ``judge_error`` (every attempt failed to reach the judge; the official code reports this as
    ``extract_fail`` too, but for a harness an unreachable judge must not look like a bad reply).
    Either failure leaves ``score_record`` None, as officially: no line is written.
    """

    prompt_id: int
    status: str
    judge_calls: int
    replies: list[str]
    parsed: dict[str, float]
    cleaned: str | None
    score_record: dict[str, Any] | None
    errors: list[str]
    template: str
    template_sha256: str

    def as_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


def judge_prompt(
    protocol: WiseProtocol | str,
    prompt: WisePrompt,
    image_png: bytes | None,
    judge: JudgeFn,
    template: JudgeTemplate | None = None,
    max_attempts: int | None = None,
) -> JudgeOutcome:
    """Ask the judge until a complete score parses, as the official loop does (3 attempts; a judge
    error also uses up an attempt). ``judge`` is e.g. :meth:`JudgeClient.judge` or a cached lookup."""
    protocol = get_protocol(protocol)
    template = template or protocol.template
    messages = build_judge_messages(protocol, prompt, template)
    attempts = protocol.max_extract_retries if max_attempts is None else max_attempts
    replies: list[str] = []
    errors: list[str] = []
    first: ParsedReply | None = None
    record = None
    calls = 0
    for _ in range(attempts):
        calls += 1
        try:
            reply = judge(messages, image_png)
        except JudgeError as exc:  # a bad key or image is a configuration error: raised, not retried
            errors.append(str(exc))
            continue
        replies.append(reply)
        parsed = parse_reply(protocol, reply)
        first = first or parsed
        if parsed.complete:
            record = score_record(protocol, prompt, parsed.scores)
            break
        errors.append(f"reply missing {list(parsed.missing)}")
    if record is not None:
        status = STATUS_OK
    else:
        status = STATUS_EXTRACT_FAIL if replies else STATUS_JUDGE_ERROR
    return JudgeOutcome(
        prompt_id=prompt.prompt_id,
        status=status,
        judge_calls=calls,
        replies=replies,
        parsed=dict(first.scores) if first else {},
        cleaned=first.cleaned if first else None,
        score_record=record,
        errors=errors,
        template=template.name,
        template_sha256=template.sha256,
    )


# --------------------------------------------------------------------------------------------------
# Aggregation (Calculate.py / calculate_verified.py)
# --------------------------------------------------------------------------------------------------


def legacy_wiscore(consistency: float, realism: float, aesthetic_quality: float) -> float:
    """Per-image legacy WiScore in [0, 1] for in-range inputs (no range check, as officially)."""
    return (0.7 * consistency + 0.2 * realism + 0.1 * aesthetic_quality) / 2


def _is_number(value: Any) -> bool:
    # JSON true/false pass, as Python booleans are ints in the official isinstance check.
    return isinstance(value, (int, float))


def image_wiscore(protocol: WiseProtocol | str, record: Mapping[str, Any]) -> tuple[float | None, str]:
    """Score of one scores-file line, or ``(None, why)`` when the official calculator skips it."""
    protocol = get_protocol(protocol)
    values = [record.get(k) for k in protocol.score_keys]
    if protocol.name == "legacy":
        if not all(_is_number(v) for v in values):
            return None, "one or more score values are not numeric"
        return legacy_wiscore(*values), ""
    score = values[0]
    if not _is_number(score):
        return None, "missing or non-numeric 'score'"
    if score not in (0, 1):
        return None, f"score={score} is outside the binary range {{0, 1}}"
    return float(score), ""


@dataclass(frozen=True)
class LineIssue:
    """A line the calculator skipped (still one line, for logs and results)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class _FileScores:
    name: str
    scores: dict[str, list[float]]
    present: set[int]
    issues: list[LineIssue]


def _score_lines(protocol: WiseProtocol, name: str, lines: Sequence[str]) -> _FileScores | str:
    """Scores of one file, or a reason string when the official calculator rejects the whole file."""
    result = _FileScores(name, {}, set(), [])
    for lineno, line in enumerate(lines, 1):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            result.issues.append(LineIssue(name, lineno, "invalid JSON; skipped"))
            continue
        if not isinstance(data, dict):
            # Officially data.get raises outside the per-line handler, which drops the whole file.
            return f"line {lineno} is JSON but not an object"
        pid = data.get("prompt_id")
        if pid is None or not isinstance(pid, int):
            result.issues.append(LineIssue(name, lineno, "prompt_id missing or not an integer; skipped"))
            continue
        result.present.add(pid)
        value, why = image_wiscore(protocol, data)
        if value is None:
            result.issues.append(LineIssue(name, lineno, f"{why}; skipped (id still counts as present)"))
            continue
        category = protocol.category_of(pid)
        if category is None:
            result.issues.append(LineIssue(name, lineno, f"prompt_id {pid} outside 1..1000; skipped"))
            continue
        result.scores.setdefault(category, []).append(value)
    return result


def _split_lines(text: str) -> list[str]:
    # As iterating a text-mode file: universal newlines, split on "\n" only (str.splitlines would also
    # split inside a JSON string holding a raw U+2028), and no extra line after a trailing newline.
    return list(io.StringIO(text, newline=None))


@dataclass
class WiseAggregate:
    """Category averages, per-file reports and the overall WiScore, with the official outcome.

    ``overall`` is set only when the outcome is ``overall``. ``category_average`` is empty when the
    run aborted or had no valid data (the official calculator then reports nothing).
    """

    protocol: str
    category: str
    outcome: str
    category_average: dict[str, float] = field(default_factory=dict)
    category_samples: dict[str, int] = field(default_factory=dict)
    file_reports: dict[str, dict[str, dict[str, float | int]]] = field(default_factory=dict)
    overall: float | None = None
    missing_prompt_ids: list[int] = field(default_factory=list)
    single_file_missing_prompt_ids: dict[str, list[int]] = field(default_factory=dict)
    rejected_files: dict[str, str] = field(default_factory=dict)
    issues: list[LineIssue] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        record = dict(self.__dict__)
        record["issues"] = [str(i) for i in self.issues]
        record["rule"] = RULE_AGGREGATE
        return record


def _report(scores: Mapping[str, list[float]]) -> dict[str, dict[str, float | int]]:
    return {
        c: {"average": sum(scores[c]) / len(scores[c]), "samples": len(scores[c])}
        for c in CATEGORIES
        if scores.get(c)
    }


def aggregate_score_lines(
    protocol: WiseProtocol | str,
    files: Sequence[tuple[str, str | Sequence[str] | None]],
    category: str = "all",
) -> WiseAggregate:
    """Aggregate named score files given as text (or lines), as the official calculator run on them
    with ``--category category`` would. ``None`` content stands for a file that could not be read
    (rejected, like a missing file officially; it still counts as a given file)."""
    protocol = get_protocol(protocol)
    if category not in CATEGORY_ARGS:
        raise ConfigError(f"unknown WISE category {category!r}; choose one of {list(CATEGORY_ARGS)}")
    out = WiseAggregate(protocol=protocol.name, category=category, outcome=OUTCOME_NO_VALID_DATA)
    processed: list[_FileScores] = []
    for name, content in files:
        if content is None:
            out.rejected_files[name] = "cannot read the file"
            continue
        lines = _split_lines(content) if isinstance(content, str) else list(content)
        scored = _score_lines(protocol, name, lines)
        if isinstance(scored, str):
            out.rejected_files[name] = scored
            continue
        out.issues.extend(scored.issues)
        if len(files) == 1 and category != "all":
            low, high = protocol.group_ranges[category]
            missing = sorted(set(range(low, high + 1)) - scored.present)
            if missing:
                out.single_file_missing_prompt_ids[name] = missing
                out.rejected_files[name] = f"missing {len(missing)} prompt_ids of --category {category}"
                continue
        processed.append(scored)
    if not processed:
        return out
    present = set().union(*(f.present for f in processed))
    if category == "all":
        out.missing_prompt_ids = sorted(set(range(1, 1001)) - present)
        if out.missing_prompt_ids:
            out.outcome = OUTCOME_ABORTED_MISSING
            return out
    merged: dict[str, list[float]] = {}
    for f in processed:
        out.file_reports[f.name] = _report(f.scores)
        for cat, values in f.scores.items():
            merged.setdefault(cat, []).extend(values)
    report = _report(merged)
    out.category_average = {c: r["average"] for c, r in report.items()}
    out.category_samples = {c: r["samples"] for c, r in report.items()}
    if category != "all":
        out.outcome = OUTCOME_SKIPPED
    elif all(c in report for c in CATEGORIES):
        out.outcome = OUTCOME_OVERALL
        out.overall = sum(protocol.weights[c] * out.category_average[c] for c in CATEGORIES)
    else:
        out.outcome = OUTCOME_NOT_COMPUTABLE
    return out


def aggregate_score_files(
    protocol: WiseProtocol | str, paths: Sequence[str | Path], category: str = "all"
) -> WiseAggregate:
    """Aggregate scores JSONL files on disk; a missing or undecodable file is rejected, not fatal."""
    files: list[tuple[str, str | None]] = []
    for path in paths:
        try:
            files.append((str(path), Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            files.append((str(path), None))
    return aggregate_score_lines(protocol, files, category)


def aggregate_score_records(
    protocol: WiseProtocol | str,
    records: Iterable[Mapping[str, Any]],
    category: str = "all",
    name: str = "scores",
) -> WiseAggregate:
    """Aggregate in-memory score records (e.g. :attr:`JudgeOutcome.score_record` values) as one file."""
    return aggregate_score_lines(protocol, [(name, [json.dumps(dict(r)) for r in records])], category)


# --------------------------------------------------------------------------------------------------
# OpenAI-compatible judge client
# --------------------------------------------------------------------------------------------------


def _image_data_url(image: bytes) -> str:
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        mime = "image/png"
    elif image.startswith(b"\xff\xd8\xff"):
        mime = "image/jpeg"
    else:
        raise DataError("judge image: expected PNG (or JPEG) bytes")
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _reply_text(body: Any) -> str:
    content = body["choices"][0]["message"]["content"]
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers return content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise TypeError(f"content is {type(content).__name__}")


class JudgeClient:
    """Stateless client for an OpenAI-compatible ``/chat/completions`` endpoint (vLLM, OpenAI, ...).

    ``api_key_env`` names the environment variable holding the key (read per call, never stored or
    logged); None sends no Authorization header, as a local vLLM server needs none.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        *,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 10.0,
        temperature: float = 0.0,
        max_tokens: int = 500,
        extra_body: Mapping[str, Any] | None = None,
        trust_env: bool = True,
    ) -> None:
        if not re.match(r"^https?://", base_url or ""):
            raise ConfigError(f"judge base_url must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ConfigError("judge model name is empty")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self.trust_env = trust_env

    @classmethod
    def for_protocol(
        cls,
        protocol: WiseProtocol | str,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        **kwargs: Any,
    ) -> JudgeClient:
        """A client with the protocol's request settings (temperature 0, max_tokens, vLLM thinking off)."""
        protocol = get_protocol(protocol)
        kwargs.setdefault("temperature", protocol.temperature)
        kwargs.setdefault("max_tokens", protocol.max_tokens)
        kwargs.setdefault("extra_body", protocol.extra_body)
        return cls(base_url, model, api_key_env, **kwargs)

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    def describe(self) -> dict[str, Any]:
        """Judge identity for results (no secrets)."""
        return {"endpoint": self.endpoint, "model": self.model, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "extra_body": self.extra_body}  # fmt: skip

    def request_payload(
        self, messages: Sequence[Mapping[str, Any]], image_png_bytes: bytes | None
    ) -> dict[str, Any]:
        """The JSON body sent for these messages (image appended to the last user message)."""
        msgs = [copy.deepcopy(dict(m)) for m in messages]
        if image_png_bytes is not None:
            users = [m for m in msgs if m.get("role") == "user"]
            if not users:
                raise DataError("judge messages: no user message to attach the image to")
            target = users[-1]
            content = target.get("content")
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
            parts.append({"type": "image_url", "image_url": {"url": _image_data_url(image_png_bytes)}})
            target["content"] = parts
        payload = {
            "model": self.model,
            "messages": msgs,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        payload.update(self.extra_body)
        return payload

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ConfigError(f"judge API key: environment variable {self.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def judge(self, messages: Sequence[Mapping[str, Any]], image_png_bytes: bytes | None) -> str:
        """Send one chat request and return the reply text; any failure is a one-line JudgeError."""
        payload = self.request_payload(messages, image_png_bytes)
        headers = self._headers()
        try:
            with httpx.Client(timeout=self.timeout, trust_env=self.trust_env) as client:
                response = client.post(self.endpoint, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise JudgeError(f"judge {self.endpoint} timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise JudgeError(
                f"judge {self.endpoint} unreachable: {type(exc).__name__}: {_one_line(str(exc))}"
            ) from None
        if response.status_code >= 400:
            raise JudgeError(
                f"judge {self.endpoint} returned HTTP {response.status_code}: {_one_line(response.text)}"
            )
        try:
            return _reply_text(response.json())
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise JudgeError(
                f"judge {self.endpoint} sent a malformed reply ({type(exc).__name__}): {_one_line(response.text)}"
            ) from None


# --------------------------------------------------------------------------------------------------
# The judge as an adapter: its calls go through the request engine like the model's
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeRequest:
    """One judge call: chat messages (JSON text) and the image's PNG bytes; ``attempt`` makes each
    retry a request of its own, so a rerun serves every attempt from the log and repeats none."""

    messages: str
    image_png: bytes
    attempt: int = 0
    seed: int = 0


@dataclass(frozen=True)
class JudgeSettings(Settings):
    """What decides a judge's reply besides the messages and image (part of every judge request key)."""

    MODALITY = "judge"

    protocol: str = "legacy"
    template_sha256: str = ""
    temperature: float = 0.0
    max_tokens: int = 500
    extra_body: str = "{}"  # JSON text (a dict is not hashable)


class JudgeAdapter(Adapter):
    """A :class:`JudgeClient` seen as an adapter that answers questions about images.

    The request engine keys, logs and serves its replies exactly as it does the model's answers; a
    batch is sent as concurrent HTTP requests. An unreachable judge raises :class:`JudgeError` (one
    line): the run stops, and every image and reply logged so far stays.
    """

    def __init__(self, client: JudgeClient, concurrency: int = 8) -> None:
        self.client = client
        self.concurrency = max(1, concurrency)

    def identity(self) -> dict[str, Any]:
        return {"adapter": "openai-chat-judge", "model": self.client.model}

    def describe(self) -> dict[str, Any]:
        return {**self.identity(), **self.client.describe()}

    def preferred_batch_size(self) -> int:
        return self.concurrency

    def settings(self, protocol: WiseProtocol, template: JudgeTemplate) -> JudgeSettings:
        return JudgeSettings(protocol.name, template.sha256, self.client.temperature, self.client.max_tokens,
                             json.dumps(self.client.extra_body, sort_keys=True))

    def answer_about_image(self, requests: Sequence[JudgeRequest], settings: Any) -> list[TextResult]:  # type: ignore[override]
        from concurrent.futures import ThreadPoolExecutor

        def one(request: JudgeRequest) -> TextResult:
            start = time.perf_counter()
            reply = self.client.judge(json.loads(request.messages), request.image_png)
            return TextResult(reply, reply, Cost(0, 0, time.perf_counter() - start))

        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(requests)))) as pool:
            return list(pool.map(one, requests))
