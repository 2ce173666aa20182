"""Rule-based UniGRPO rewards for text reasoning (spec §5.5), as pluggable callables.

A reward function maps ``(completion, gold)`` to a float. The paper's text-reasoning reward is
2.0 × correctness + 0.5 × ``<think>…</think>`` format; :func:`text_reasoning_reward` builds exactly
that, and :class:`WeightedReward` lets a run swap, add (e.g. a CLIP term) or reweight parts.
dLLM-RL, by contrast, trains on 0/1 correctness alone: ``WeightedReward((("correct", 1.0,
correctness_reward),))``. Model-based rewards (CLIP, ImageReward) live with their scorers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

RewardFn = Callable[[str, "str | None"], float]

CORRECTNESS_WEIGHT = 2.0  # paper, text and multimodal reasoning
FORMAT_WEIGHT = 0.5

_THINK = re.compile(r"^\s*<think>(?P<thought>.*?)</think>(?P<answer>.*)$", re.DOTALL)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def _after_think(text: str) -> str:
    """The answer part: what follows the last ``</think>`` (the whole text if there is none)."""
    return text.rsplit("</think>", 1)[-1]


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, braces balanced (answers like ``\\frac{1}{2}`` nest)."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def extract_answer(completion: str) -> str | None:
    """Final answer of a completion: the last ``\\boxed{}`` after the reasoning, else its last number.

    Only the text after ``</think>`` is searched, so numbers in the reasoning cannot be mistaken
    for the answer when the model does state one.
    """
    tail = _after_think(completion)
    boxed = _last_boxed(tail)
    if boxed is not None:
        return boxed.strip()
    numbers = _NUMBER.findall(tail)
    return numbers[-1] if numbers else None


def normalize_answer(answer: str) -> str:
    """Canonical form for string comparison: no spaces, ``$``, thousands commas or trailing dot."""
    text = answer.strip().strip("$").replace(" ", "")
    text = re.sub(r"\\text\{(.*?)\}", r"\1", text)
    if re.fullmatch(r"-?[\d,]+(\.\d+)?", text):
        text = text.replace(",", "")
    return text.rstrip(".")


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def answers_match(predicted: str, gold: str) -> bool:
    """Equal after normalisation, or numerically equal (so "18.0" matches "18")."""
    a, b = normalize_answer(predicted), normalize_answer(gold)
    if a == b:
        return True
    x, y = _as_number(a), _as_number(b)
    return x is not None and y is not None and abs(x - y) <= 1e-6 * max(1.0, abs(y))


def correctness_reward(completion: str, gold: str | None) -> float:
    """1.0 when the extracted answer matches ``gold``, else 0.0 (also when nothing is extracted)."""
    if gold is None:
        raise ValueError("correctness_reward needs a gold answer")
    predicted = extract_answer(completion)
    return float(predicted is not None and answers_match(predicted, gold))


def think_format_reward(completion: str, gold: str | None = None) -> float:
    """1.0 for ``<think>reasoning</think> answer`` with both parts non-empty, else 0.0.

    This is the CoT format MMaDA is fine-tuned to produce (spec §5.4); rewarding it keeps RL from
    eroding the reasoning format while correctness is optimised.
    """
    match = _THINK.match(completion)
    if match is None or "<think>" in match["answer"]:
        return 0.0
    return float(bool(match["thought"].strip()) and bool(match["answer"].strip()))


@dataclass(frozen=True)
class WeightedReward:
    """Σ weight × component(completion, gold) over named components."""

    components: tuple[tuple[str, float, RewardFn], ...]

    def breakdown(self, completion: str, gold: str | None) -> dict[str, float]:
        """Each component's unweighted value, for logging."""
        return {name: fn(completion, gold) for name, _, fn in self.components}

    def __call__(self, completion: str, gold: str | None) -> float:
        return sum(weight * fn(completion, gold) for _, weight, fn in self.components)


def text_reasoning_reward(
    correctness_weight: float = CORRECTNESS_WEIGHT, format_weight: float = FORMAT_WEIGHT
) -> WeightedReward:
    """The paper's text-reasoning reward: 2.0 × correctness + 0.5 × think-format."""
    return WeightedReward(
        (
            ("correctness", correctness_weight, correctness_reward),
            ("format", format_weight, think_format_reward),
        )
    )
