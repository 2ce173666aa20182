"""Rule-based UniGRPO rewards (spec §5.5: 2.0 × correctness + 0.5 × think format)."""

from __future__ import annotations

import pytest

from mmada_bench.errors import DataError
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


def test_registry_combines_named_rewards_with_their_weights():
    from mmada_bench.train.rewards import DEFAULT_REWARDS, RewardSample, TaskReward

    names = [n for n, _ in DEFAULT_REWARDS["lm"]]
    weights = [w for _, w in DEFAULT_REWARDS["lm"]]
    reward = TaskReward.build("lm", names, weights, {})
    samples = [
        RewardSample("lm", "q", "<think>6 * 3</think> \\boxed{18}", "18"),
        RewardSample("lm", "q", "<think>6 * 3</think> \\boxed{17}", "18"),
        RewardSample("lm", "q", "18", "18"),
    ]
    totals, parts = reward(samples)
    assert totals == [2.5, 0.5, 2.0]
    assert parts == {"correctness": [1.0, 0.0, 1.0], "format": [1.0, 1.0, 0.0]}


@pytest.mark.parametrize(
    ("task", "names", "weights", "message"),
    [
        ("lm", ["correct"], [1.0], "unknown reward 'correct'"),
        ("lm", ["correctness", "format"], [2.0], "names 2 rewards but reward_weights.lm has 1"),
        ("t2i", ["correctness"], [1.0], "scores only lm, mmu"),
        ("lm", [], [], "is empty"),
    ],
)
def test_bad_reward_lists_are_one_line_config_errors(task, names, weights, message):
    from mmada_bench.errors import ConfigError
    from mmada_bench.train.rewards import check_rewards

    with pytest.raises(ConfigError, match=message):
        check_rewards(task, names, weights, "cfg")


def test_model_rewards_name_their_missing_weights():
    from mmada_bench.errors import ConfigError
    from mmada_bench.train.rewards import TaskReward

    with pytest.raises(ConfigError, match="reward_models.clip"):
        TaskReward.build("t2i", ["clip"], [0.1], {})


def test_word_answers_compare_the_whole_answer_part():
    assert correctness_reward("<think>shape is circle , color is red .</think> Red.", "red") == 1.0
    assert correctness_reward("red", "red") == 1.0
    assert correctness_reward("<think>red</think> red circle", "red") == 0.0
    assert correctness_reward("<think>color is red</think> blue", "red") == 0.0  # reasoning never counts
    assert correctness_reward("<think>x</think>", "red") == 0.0
    assert correctness_reward("<think>x</think> \\boxed{\\frac{1}{2}}", "\\frac{1}{2}") == 1.0  # math unchanged


def test_toy_judge_reward_scores_colour_and_shape_halves():
    from PIL import Image

    from mmada_bench.toy.world import load_world
    from mmada_bench.train.rewards import RewardSample, TaskReward

    item = next(i for i in load_world("test") if i.shape == "circle" and i.color == "red")
    image = Image.open(item.path).convert("RGB")
    reward = TaskReward.build("t2i", ["toy_judge"], [1.0], {})
    prompts = ["a red circle", "a blue circle", "a red triangle", "a blue triangle"]
    totals, parts = reward([RewardSample("t2i", p, "", None, image) for p in prompts])
    assert totals == [1.0, 0.5, 0.5, 0.0] and parts["toy_judge"] == totals
    with pytest.raises(DataError, match="exactly one colour"):
        reward([RewardSample("t2i", "a circle", "", None, image)])
