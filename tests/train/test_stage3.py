"""Stage 3 (UniGRPO) on the tiny preset, CPU: rewards go up, rollouts batch exactly, resume is exact."""

from __future__ import annotations

import io
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch

from mmada_bench.errors import ConfigError
from mmada_bench.model.loading import load_bundle
from mmada_bench.train.config import config_from_dict
from mmada_bench.train.rewards import REWARDS, RewardSpec
from mmada_bench.train.rollout import ImageRolloutSettings, TextRolloutSettings, rollout_images, rollout_text
from mmada_bench.train.stage import StageContext
from mmada_bench.train.stage3 import Stage3, plan_stage3
from mmada_bench.train.trainer import train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROMPTS = FIXTURES / "train" / "grpo" / "prompts.jsonl"
GOLDEN = FIXTURES / "golden"


def vowel_share(samples) -> list[float]:
    """Share of vowels among the ASCII letters of the completion: a dense reward that a random tiny
    model scores ~0.37 on and can raise by putting probability on vowel-heavy tokens."""
    out = []
    for sample in samples:
        letters = [c for c in sample.completion.lower() if c.isascii() and c.isalpha()]
        out.append(sum(c in "aeiou" for c in letters) / len(letters) if letters else 0.0)
    return out


@pytest.fixture
def vowels(monkeypatch):
    monkeypatch.setitem(REWARDS, "vowels", RewardSpec(("lm",), lambda options: vowel_share, "test reward"))
    return "vowels"


def stage3_dict(output_dir: Path, **options: Any) -> dict[str, Any]:
    stage_options = {
        "group_size": 8,
        "inner_steps": 2,
        "cot": False,
        "recipe": "dllm_rl",
        "rewards": {"lm": ["vowels"]},
        "reward_weights": {"lm": [1.0]},
        "text": {"gen_length": 8, "steps": 8, "block_length": 8, "temperature": 1.0},
        **options,
    }
    return {
        "stage": "stage3",
        "model": "tiny",
        "output_dir": str(output_dir),
        "seed": 3,
        "data": {"lm": [{"path": str(PROMPTS), "format": "chat_jsonl"}]},
        "batch": {"lm": 2, "mmu": 0, "t2i": 0},
        "seq": {"max_text_len": 64},
        "optim": {"lr": 1e-2, "warmup_steps": 0, "min_lr_scale": 1.0, "weight_decay": 0.0, "max_steps": 24,
                  "grad_accum": 1},
        "runtime": {"save_every": 1000, "progress_bar": False},
        "stage_options": stage_options,
    }


def _stage(config_dict: dict[str, Any]) -> tuple[Stage3, torch.nn.Module]:
    bundle = load_bundle("tiny", dtype="float32", device="cpu")
    config = config_from_dict(config_dict)
    ctx = StageContext(config=config, model=bundle.model, tokenizer=bundle.tokenizer, vq_model=bundle.vq_model)
    return Stage3(ctx), bundle.model


def test_short_stage3_run_through_the_trainer_raises_mean_reward(tmp_path, vowels):
    config = config_from_dict(stage3_dict(tmp_path / "out"))
    result = train(config)
    # one reward per rollout batch (inner steps 0 and 1 log the same rollouts)
    rewards = [row["reward"] for row in result.history[::2]]
    before, after = statistics.mean(rewards[:3]), statistics.mean(rewards[-3:])
    assert after - before >= 0.15, f"mean reward {before:.3f} -> {after:.3f}"
    assert max(rewards[:3]) < min(rewards[-3:])
    assert all(row["reward_vowels"] == row["reward"] for row in result.history)  # weight 1.0, one reward
    assert result.history[0]["kl"] == 0.0 and result.history[1]["kl"] > 0.0  # dLLM-RL: KL vs rollout policy
    assert (result.final_checkpoint / "config.json").is_file()


def test_paper_recipe_spaces_mask_levels_over_inner_steps_and_keeps_a_frozen_reference(tmp_path, vowels):
    stage, model = _stage(stage3_dict(tmp_path, recipe="paper", inner_steps=3, group_size=2))
    assert stage.plan.grpo.masking == "uniform_spaced" and stage.plan.grpo.kl_reference == "ref"
    assert stage.plan.attention == "padding" and stage.reference is not None
    batches = stage.batches(0, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(3):
        loss, logs = stage.loss(model, next(batches), step)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    rows = stage.cache[0]["tasks"]["lm"]["rows"]
    # every response has its levels s/3, (s+1)/3, (s+2)/3 at inner steps 0, 1, 2
    for source in rows["source"].unique():
        mine = rows["source"] == source
        levels = dict(zip(rows["copy"][mine].tolist(), rows["mask_ratio"][mine].tolist(), strict=True))
        spaced = [levels[k + 1] - levels[k] for k in range(2) if k in levels and k + 1 in levels]
        assert spaced and all(gap == pytest.approx(1 / 3) for gap in spaced)
    # the reference is the initial model: at rollout time, before any update, it equals the policy
    part = stage.cache[0]["tasks"]["lm"]
    assert torch.equal(part["logp_ref"], part["logp_old"])
    assert logs["kl"] > 0.0  # two updates later the policy has moved away from it
    assert not any(p.requires_grad for p in stage.reference.parameters())


def test_batched_rollouts_equal_one_at_a_time():
    bundle = load_bundle("tiny", dtype="float32", device="cpu")
    model, tok = bundle.model, bundle.tokenizer
    texts = ("what is two plus two", "name a cat or a dog", "blue or red or green")
    prompts = [tok(t, add_special_tokens=False)["input_ids"][:4] for t in texts for _ in range(2)]
    assert len({len(p) for p in prompts}) == 1
    seeds = [11, 12, 13, 14, 15, 16]
    settings = TextRolloutSettings(gen_length=8, steps=4, block_length=4, temperature=1.0, batch_size=6)
    kwargs = {"mask_id": model.config.mask_token_id, "eos_id": model.config.eos_token_id}
    batched = rollout_text(model, prompts, seeds, settings, **kwargs)
    single = [rollout_text(model, [p], [s], settings, **kwargs)[0] for p, s in zip(prompts, seeds, strict=True)]
    assert batched == single
    assert len({tuple(r) for r in batched}) == len(batched)  # sampling really varies per seed
    # image rollouts: 3 captions, per-row seeds, one call vs one call per row
    from mmada_bench.model.prompting import MMaDAPrompting

    prompting = MMaDAPrompting.from_config(tok, model.config, 16)
    n = int(model.config.num_vq_tokens)
    cond = prompting.t2i_gen(["a red circle", "a blue square", "a green one"], n)
    uncond = prompting.t2i_gen([""] * 3, n)
    image = ImageRolloutSettings(timesteps=3, guidance_scale=2.0, batch_size=3)
    args = (cond.input_ids, cond.attention_mask, uncond.input_ids, uncond.attention_mask)
    codes = rollout_images(model, *args, [1, 2, 3], image, num_image_tokens=n, mask_id=model.config.mask_token_id)
    one = [
        rollout_images(model, *(a[i : i + 1] for a in args), [i + 1], image, num_image_tokens=n,
                       mask_id=model.config.mask_token_id)
        for i in range(3)
    ]
    assert torch.equal(codes, torch.cat(one))


def _train_steps(stage: Stage3, model, optimizer, batches, steps: range) -> None:
    for step in steps:
        loss, _ = stage.loss(model, next(batches), step)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test_stage_state_round_trips_for_exact_resume(tmp_path, vowels):
    config = stage3_dict(tmp_path, group_size=4, inner_steps=3)
    stage, model = _stage(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batches = stage.batches(0, 1)
    _train_steps(stage, model, optimizer, batches, range(4))  # stops inside the second rollout group
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optim": optimizer.state_dict(), "stage": stage.state_dict(),
                "data": batches.state_dict()}, buffer)
    _train_steps(stage, model, optimizer, batches, range(4, 7))
    uninterrupted = {k: v.clone() for k, v in model.state_dict().items()}

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    resumed, model2 = _stage(config)  # a fresh stage built from the initial weights, as the trainer does
    model2.load_state_dict(saved["model"])
    optimizer2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    optimizer2.load_state_dict(saved["optim"])
    resumed.load_state_dict(saved["stage"])
    batches2 = resumed.batches(0, 1)
    batches2.load_state_dict(saved["data"])
    assert 1 in resumed.cache  # the mid-group rollouts came back (they cannot be re-sampled)
    _train_steps(resumed, model2, optimizer2, batches2, range(4, 7))
    for name, tensor in model2.state_dict().items():
        assert torch.equal(tensor, uninterrupted[name]), name


def test_mmu_and_t2i_rollouts_with_the_model_based_rewards(tmp_path):
    clip = GOLDEN / "clip_tiny" / "model"
    ir = GOLDEN / "image_reward_tiny"
    config = stage3_dict(
        tmp_path,
        group_size=2,
        inner_steps=1,
        rewards={"mmu": ["format", "clip"], "t2i": ["clip", "imagereward"]},
        reward_weights={"mmu": [0.5, 0.1], "t2i": [0.1, 0.1]},
        reward_models={"clip": str(clip), "imagereward": {"weights": str(ir / "ImageReward.pt"), "med_config":
                       str(ir / "med_config.json"), "tokenizer": str(ir / "tokenizer"), "vit_num_heads": 3}},
        image={"timesteps": 2, "guidance_scale": 1.0},
    )
    config["data"] = {
        "mmu": [{"path": str(FIXTURES / "train" / "llava.json"), "format": "llava_json"}],
        "t2i": [{"path": str(FIXTURES / "train" / "captions.jsonl"), "format": "caption_jsonl"}],
    }
    config["batch"] = {"lm": 0, "mmu": 1, "t2i": 1}
    stage, model = _stage(config)
    loss, logs = stage.loss(model, next(stage.batches(0, 1)), 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.model.transformer.ff_out.weight.grad.abs().sum() > 0
    t2i = stage.cache[0]["tasks"]["t2i"]
    expected = 0.1 * t2i["logs"]["reward_clip"] + 0.1 * t2i["logs"]["reward_imagereward"]
    assert logs["t2i_reward"] == pytest.approx(expected)
    assert logs["t2i_reward_clip"] != 0.0 and "mmu_reward_format" in logs
    # t2i rows score image codes only: labels are codebook indices and <|eoi|> is never in the loss
    rows = t2i["rows"]
    assert not rows["loss_mask"][:, -1].any()
    assert int(rows["labels"][rows["loss_mask"]].max()) < int(model.config.codebook_size)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rewards": {"lm": ["vowelz"]}, "reward_weights": {"lm": [1.0]}}, "unknown reward 'vowelz'"),
        ({"rewards": {"lm": ["correctness", "format"]}, "reward_weights": {"lm": [2.0]}}, "2 rewards but"),
        ({"rewards": {"lm": ["correctness"]}, "reward_weights": {}}, "reward_weights.lm is not"),
        ({"rewards": {"lm": ["imagereward"]}, "reward_weights": {"lm": [1.0]}}, "scores only t2i"),
        ({"group_size": 1}, "group_size must be >= 2"),
        ({"grpo": {"clip_epsilon": 0.2}}, "grpo.clip_epsilon: unknown key"),
        ({"grpo": {"lower_p": 0.9, "upper_p": 0.1}}, "lower_p <= upper_p"),
        ({"recipe": "ppo"}, "stage_options.recipe"),
        ({"texts": {}}, "stage_options.texts: unknown key"),
    ],
)
def test_bad_stage3_config_is_one_line(tmp_path, options, message):
    config = stage3_dict(tmp_path)
    config["stage_options"] = {k: v for k, v in config["stage_options"].items() if k not in ("rewards", "reward_weights")}
    config["stage_options"].update(options)
    with pytest.raises(ConfigError) as err:
        plan_stage3(config_from_dict(config))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_paper_defaults(tmp_path):
    config = stage3_dict(tmp_path)
    config["stage_options"] = {}
    plan = plan_stage3(config_from_dict(config))
    assert plan.options.group_size == 16 and plan.masks_per_step == 1
    assert plan.rewards["lm"] == (["correctness", "format"], [2.0, 0.5])
    assert plan.grpo.masking == "uniform_spaced" and (plan.grpo.lower_p, plan.grpo.upper_p) == (0.0, 1.0)
    assert plan.grpo.mask_times_per_sample == plan.options.inner_steps


def test_trainer_resume_mid_rollout_group_gives_the_uninterrupted_weights(tmp_path, vowels):
    from safetensors.torch import load_file

    from mmada_bench.model.checkpoint import SINGLE_WEIGHTS

    def config(out: Path, steps: int):
        data = stage3_dict(out, group_size=4)
        data["optim"]["max_steps"] = steps
        return config_from_dict(data)

    full = train(config(tmp_path / "full", 6)).final_checkpoint
    train(config(tmp_path / "cut", 3))  # checkpoint after inner step 0 of the second rollout batch
    resumed = train(config(tmp_path / "cut", 6), resume="auto").final_checkpoint
    a, b = load_file(full / SINGLE_WEIGHTS), load_file(resumed / SINGLE_WEIGHTS)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_plain_lm_prompts_are_what_the_text_task_asks_and_gsm8k_gold_is_the_number(tmp_path, tiny_adapter, vowels):
    from mmada_bench.adapters.settings import TextSettings

    rows = tmp_path / "count.jsonl"
    prompt = "Question: A box holds 3 circles and 4 squares. How many shapes are in the box?\nAnswer:"
    rows.write_text(json.dumps({"prompt": prompt, "completion": " 3 + 4 = 7 shapes.\n#### 7"}) + "\n")
    config = stage3_dict(tmp_path, lm_template="plain", rewards={"lm": ["correctness"]},
                         reward_weights={"lm": [2.0]},
                         lm_text={"gen_length": 12, "steps": 6, "block_length": 4, "max_prompt_len": 64})
    config["data"] = {"lm": [{"path": str(rows), "format": "text_jsonl"}]}
    stage, model = _stage(config)
    row = stage.rows["lm"][0][0]
    assert row == {"prompt": prompt, "answer": "7"}  # the GSM8K final line is the gold
    # the rollout prompt is token for token what `mmada-bench run` sends for a 0-shot text task
    assert stage._text_prompt("lm", row) == tiny_adapter.render_prompt(prompt, TextSettings())
    chat, _ = _stage(stage3_dict(tmp_path, lm_text={"max_prompt_len": 64}))
    assert chat._text_prompt("lm", row) == tiny_adapter.render_prompt(prompt, TextSettings(chat=True))
    # lm_text applies to lm prompts only; mmu keeps `text`, and the prompt budgets follow
    assert stage.plan.text["lm"].gen_length == 12 and stage.plan.text["mmu"].gen_length == 8
    assert stage.plan.prompt_budget == {"lm": 64, "mmu": 64}
    short, _ = _stage({**config, "stage_options": {**config["stage_options"], "lm_text": {"max_prompt_len": 5}}})
    kept = short._text_prompt("lm", row)
    assert len(kept) == 5 and kept[0] == stage._text_prompt("lm", row)[0]  # BOS and the prompt's end
    assert kept[1:] == stage._text_prompt("lm", row)[-4:]
    loss, logs = stage.loss(model, next(stage.batches(0, 1)), 0)
    assert torch.isfinite(loss) and 0.0 <= logs["reward_correctness"] <= 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lm_text": {"gen_length": 0}}, "stage_options.lm_text: gen_length"),
        ({"text": {"max_prompt_len": 1}}, "stage_options.text: gen_length"),
        ({"lm_template": "raw"}, "stage_options.lm_template"),
    ],
)
def test_bad_lm_rollout_options_are_one_line(tmp_path, vowels, options, message):
    config = stage3_dict(tmp_path, **options)
    with pytest.raises(ConfigError) as err:
        plan_stage3(config_from_dict(config))
    assert message in str(err.value) and "\n" not in str(err.value)
