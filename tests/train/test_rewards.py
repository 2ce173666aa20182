"""Rule-based UniGRPO rewards (spec §5.5: 2.0 × correctness + 0.5 × think format)."""

from __future__ import annotations

import pytest

from mmada_bench.train.rewards import (
    WeightedReward,
    answers_match,
    correctness_reward,
    extract_answer,
    text_reasoning_reward,
    think_format_reward,
)


@pytest.mark.parametrize(
    ("completion", "answer"),
    [
        ("<think>2+2 is 4, maybe 5</think> The answer is \\boxed{4}.", "4"),
        ("<think>so 3</think> \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("<think>7 apples then 9</think> She has 1,250 dollars.", "1,250"),
        ("no reasoning, just 12 and then 18", "18"),
        ("<think>it is 42</think> I cannot tell.", None),
    ],
)
def test_extract_answer_reads_only_after_the_reasoning(completion, answer):
    assert extract_answer(completion) == answer


def test_answers_match_normalises():
    assert answers_match("1,250", "1250")
    assert answers_match("18.0", "18")
    assert answers_match("$5$", "5.")
    assert not answers_match("17", "18")


def test_correctness_and_format():
    good = "<think>6 * 3 = 18</think> \\boxed{18}"
    assert correctness_reward(good, "18") == 1.0
    assert correctness_reward(good, "19") == 0.0
    assert think_format_reward(good) == 1.0
    assert think_format_reward("\\boxed{18}") == 0.0
    assert think_format_reward("<think></think> 18") == 0.0  # empty reasoning
    assert think_format_reward("<think>reasoning</think>") == 0.0  # no answer
    assert think_format_reward("<think>a</think> b <think>c</think> d") == 0.0


def test_paper_weights_are_default_and_pluggable():
    reward = text_reasoning_reward()
    assert reward("<think>6 * 3</think> \\boxed{18}", "18") == 2.5
    assert reward("<think>6 * 3</think> \\boxed{17}", "18") == 0.5
    assert reward("18", "18") == 2.0
    assert reward.breakdown("18", "18") == {"correctness": 1.0, "format": 0.0}
    dllm_rl = WeightedReward((("correctness", 1.0, correctness_reward),))
    assert dllm_rl("<think>x</think> 18", "18") == 1.0
