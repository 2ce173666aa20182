"""Rule-based UniGRPO rewards for text reasoning (spec §5.5), as pluggable callables.

A reward function maps ``(completion, gold)`` to a float. The paper's text-reasoning reward is
2.0 × correctness + 0.5 × ``<think>…</think>`` format; :func:`text_reasoning_reward` builds exactly
that, and :class:`WeightedReward` lets a run swap, add (e.g. a CLIP term) or reweight parts.
dLLM-RL, by contrast, trains on 0/1 correctness alone: ``WeightedReward((("correct", 1.0,
correctness_reward),))``.

For the UniGRPO stage, rewards are also registered by name in :data:`REWARDS` as batch functions over
:class:`RewardSample` (the model-based CLIP Score and ImageReward wrap the scorers in
:mod:`mmada_bench.scorers` and load their weights once), and :class:`TaskReward` combines a task's
named rewards with their weights; :data:`DEFAULT_REWARDS` holds the paper's choices.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmada_bench.errors import ConfigError, DataError

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


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def correctness_reward(completion: str, gold: str | None) -> float:
    """1.0 when the extracted answer matches ``gold``, else 0.0 (also when nothing is extracted).

    A math gold is compared with the extracted final answer; a plain-word gold (a VQA answer such as
    "red" or "yes") with the whole answer part after ``</think>``, lower-cased and stripped of
    punctuation, so "Red." counts and "red circle" does not.
    """
    if gold is None:
        raise ValueError("correctness_reward needs a gold answer")
    if re.fullmatch(r"[A-Za-z][A-Za-z ]*", gold.strip()):
        return float(_words(_after_think(completion)) == _words(gold) != "")
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


# -- pluggable batch rewards for the UniGRPO stage ---------------------------------------------------


@dataclass(frozen=True)
class RewardSample:
    """One rollout as a reward function sees it.

    ``completion`` is the decoded response ("" for text-to-image); ``image`` is the generated image
    for ``t2i`` rollouts and the input image for ``mmu`` ones (a PIL image, or None when the row had
    only image codes and no decoder was at hand).
    """

    task: str  # "lm" | "mmu" | "t2i"
    prompt: str
    completion: str
    gold: str | None = None
    image: Any = None


BatchReward = Callable[[Sequence[RewardSample]], list[float]]
RewardFactory = Callable[[Mapping[str, Any]], BatchReward]


@dataclass(frozen=True)
class RewardSpec:
    """A named reward: which tasks it applies to and how to build it from the stage's ``reward_models``."""

    tasks: tuple[str, ...]
    factory: RewardFactory
    doc: str


def _per_sample(fn: RewardFn) -> RewardFactory:
    def factory(options: Mapping[str, Any]) -> BatchReward:
        return lambda samples: [fn(s.completion, s.gold) for s in samples]

    return factory


def _correctness_batch(options: Mapping[str, Any]) -> BatchReward:
    def score(samples: Sequence[RewardSample]) -> list[float]:
        for s in samples:
            if s.gold is None:
                raise DataError(f"reward 'correctness' needs a gold answer; prompt {s.prompt[:40]!r} has none")
        return [correctness_reward(s.completion, s.gold) for s in samples]

    return score


def _model_option(options: Mapping[str, Any], key: str, reward: str) -> Any:
    if key not in options or options[key] in (None, ""):
        raise ConfigError(f"reward {reward!r} needs stage_options.reward_models.{key}")
    return options[key]


def _clip_batch(options: Mapping[str, Any]) -> BatchReward:
    """CLIP Score (100·cos, unclamped) of the image against the prompt (t2i) or the answer (mmu).

    Wraps :class:`~mmada_bench.scorers.clipscore.ClipScorer`, i.e. the torchmetrics number the
    paper reports; its weight (paper: 0.1) scales the ~0-40 range of 100·cos.
    """
    from mmada_bench.scorers.clipscore import ClipScorer

    scorer = ClipScorer(_model_option(options, "clip", "clip"), device=str(options.get("device", "cpu")))

    def score(samples: Sequence[RewardSample]) -> list[float]:
        for s in samples:
            if s.image is None:
                raise DataError(f"reward 'clip' needs an image; the {s.task} rollout of {s.prompt[:40]!r} has none")
        texts = [s.prompt if s.task == "t2i" else (s.completion or " ") for s in samples]
        return scorer.score([s.image for s in samples], texts)

    return score


def _image_reward_batch(options: Mapping[str, Any]) -> BatchReward:
    """ImageReward (standardised, higher is better) of each generated image for its prompt."""
    from mmada_bench.scorers.imagereward import ImageRewardScorer

    spec = _model_option(options, "imagereward", "imagereward")
    if not isinstance(spec, Mapping) or not {"weights", "med_config", "tokenizer"} <= set(spec):
        raise ConfigError("stage_options.reward_models.imagereward needs weights, med_config and tokenizer")
    scorer = ImageRewardScorer(
        spec["weights"],
        spec["med_config"],
        spec["tokenizer"],
        device=str(options.get("device", "cpu")),
        vit_num_heads=spec.get("vit_num_heads"),
    )

    def score(samples: Sequence[RewardSample]) -> list[float]:
        return [scorer.score(s.prompt, [s.image])[0] for s in samples]

    return score


def _toy_judge_batch(options: Mapping[str, Any]) -> BatchReward:
    """The toy judge's verdict on a generated toy-world image: half a point each for the colour and the
    shape the caption asks for (so a half-right image still ranks above a wrong one in its group).

    The caption's colour and shape words are read from the prompt ("a red circle"); a prompt naming
    neither is a data error, not a zero reward. ``reward_models.toy_judge`` may name another judge
    folder; the default is the committed one.
    """
    from mmada_bench.scorers.toy_judge import DEFAULT_JUDGE, ToyJudge

    judge = ToyJudge.from_pretrained(options.get("toy_judge") or DEFAULT_JUDGE)
    shapes, colors = set(judge.config.shapes), set(judge.config.colors)

    def wanted(prompt: str, names: set[str], kind: str) -> str:
        found = [word for word in re.findall(r"[a-z]+", prompt.lower()) if word in names]
        if len(set(found)) != 1:
            raise DataError(f"reward 'toy_judge': prompt {prompt!r} must name exactly one {kind}")
        return found[0]

    def score(samples: Sequence[RewardSample]) -> list[float]:
        for s in samples:
            if s.image is None:
                raise DataError(f"reward 'toy_judge' needs an image; the rollout of {s.prompt[:40]!r} has none")
        verdicts = judge.judge([s.image for s in samples])
        return [0.5 * (v.color == wanted(s.prompt, colors, "colour")) + 0.5 * (v.shape == wanted(s.prompt, shapes, "shape"))
                for s, v in zip(samples, verdicts, strict=True)]

    return score


REWARDS: dict[str, RewardSpec] = {
    "correctness": RewardSpec(("lm", "mmu"), _correctness_batch, "extracted answer equals the gold answer (0/1)"),
    "format": RewardSpec(("lm", "mmu"), _per_sample(think_format_reward), "<think>reasoning</think> answer (0/1)"),
    "clip": RewardSpec(("mmu", "t2i"), _clip_batch, "CLIP Score 100·cos(image, text)"),
    "imagereward": RewardSpec(("t2i",), _image_reward_batch, "ImageReward of the generated image"),
    "toy_judge": RewardSpec(("t2i",), _toy_judge_batch, "toy judge: 0.5 x colour right + 0.5 x shape right"),
}
"""Reward registry: a new reward is one entry here (or ``REWARDS[name] = RewardSpec(...)`` in user code)."""

#: The paper's rewards per task (spec §5.5). Multimodal caption-type tasks add ("clip", 0.1).
DEFAULT_REWARDS: dict[str, tuple[tuple[str, float], ...]] = {
    "lm": (("correctness", CORRECTNESS_WEIGHT), ("format", FORMAT_WEIGHT)),
    "mmu": (("correctness", CORRECTNESS_WEIGHT), ("format", FORMAT_WEIGHT)),
    "t2i": (("clip", 0.1), ("imagereward", 0.1)),
}


def check_rewards(task: str, names: Sequence[str], weights: Sequence[float], where: str) -> None:
    """One-line :class:`ConfigError` for unknown names, a weight list that does not pair up, or a
    reward that cannot score this task -- before any reward model is loaded."""
    if len(names) != len(weights):
        raise ConfigError(f"{where}: rewards.{task} names {len(names)} rewards but reward_weights.{task} has {len(weights)} weights")
    if not names:
        raise ConfigError(f"{where}: rewards.{task} is empty")
    for name in names:
        if name not in REWARDS:
            raise ConfigError(f"{where}: rewards.{task}: unknown reward {name!r}; known: {', '.join(sorted(REWARDS))}")
        if task not in REWARDS[name].tasks:
            raise ConfigError(f"{where}: rewards.{task}: reward {name!r} scores only {', '.join(REWARDS[name].tasks)} rollouts")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: rewards.{task} lists a reward twice")


@dataclass
class TaskReward:
    """Σ weight × reward over the named rewards of one task, evaluated on a batch of rollouts."""

    names: tuple[str, ...]
    weights: tuple[float, ...]
    functions: tuple[BatchReward, ...]

    @classmethod
    def build(
        cls, task: str, names: Sequence[str], weights: Sequence[float], options: Mapping[str, Any], where: str = "stage3"
    ) -> TaskReward:
        check_rewards(task, names, weights, where)
        return cls(tuple(names), tuple(float(w) for w in weights), tuple(REWARDS[n].factory(options) for n in names))

    def __call__(self, samples: Sequence[RewardSample]) -> tuple[list[float], dict[str, list[float]]]:
        """(weighted totals, each reward's unweighted values) for ``samples``."""
        parts = {name: [float(v) for v in fn(samples)] for name, fn in zip(self.names, self.functions, strict=True)}
        totals = [
            sum(w * parts[name][i] for name, w in zip(self.names, self.weights, strict=True)) for i in range(len(samples))
        ]
        return totals, parts
