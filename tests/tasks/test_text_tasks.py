"""The four text tasks end to end with a scripted adapter: data loading, lm-eval's prompts, scoring.

One suite run with :class:`FixedAnswerAdapter` (known answers) feeds most tests: each task must
score exactly the fraction of scripted answers that are right, with lm-eval's own prompts, filters,
metrics and group aggregation.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from mmada_bench.adapters.fixed import FixedAnswerAdapter
from mmada_bench.errors import DataError
from mmada_bench.results.reader import RunFolder, find_entry
from mmada_bench.runner import RunConfig, run_suite
from mmada_bench.tasks import get_task
from mmada_bench.tasks.text import SAMPLE_DATA_DIR
from mmada_bench.tasks.text.lm_eval_tasks import lm_eval_tasks_dir


def _rows(task: str, split: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLE_DATA_DIR / task / f"{split}.jsonl").read_text().splitlines()]


def _gsm8k_answers() -> dict[str, str]:
    rows = _rows("gsm8k", "test")
    finals = [int(r["answer"].split("#### ")[-1]) for r in rows]
    answers = {r["question"]: f"Some reasoning.\n#### {n}\n\nQuestion: ignored" for r, n in zip(rows[:4], finals[:4], strict=True)}
    answers[rows[4]["question"]] = f"She has {finals[4]} dollars left."  # no '####': strict fails, flexible passes
    answers[rows[5]["question"]] = f"#### {finals[5] + 1}"  # wrong
    return answers


def _mmlu_answers() -> dict[str, str]:
    rows = _rows("mmlu", "test")
    letters = "ABCD"
    out = {}
    for i, row in enumerate(rows):
        right = letters[row["answer"]]
        wrong = letters[(row["answer"] + 1) % 4]
        # elementary_mathematics rows 0-3: 3 right; high_school_geography rows 4-7: 2 right
        out[row["question"]] = right if i in (0, 1, 2, 4, 5) else wrong
    return out


def _math_answers() -> dict[str, str]:
    finals = ["22", "10", "9", "\\frac{1}{2}", "2", "13"]  # right, right, wrong, right, right, wrong
    return {r["problem"]: f"Final Answer: The final answer is ${f}$. I hope it is correct."
            for r, f in zip(_rows("math", "test"), finals, strict=True)}


def _gpqa_answers() -> dict:
    def chooser(pick: str):
        def answer(prompt: str) -> str:
            last_block = prompt[prompt.rfind("Question:"):]
            match = re.search(r"\(([A-D])\) " + re.escape(pick) + r"\n", last_block)
            return f"({match.group(1)})"
        return answer

    rows = _rows("gpqa", "train")
    return {r["Question"]: chooser(r["Correct Answer"] if i < 5 else r["Incorrect Answer 1"]) for i, r in enumerate(rows)}


@pytest.fixture(scope="session")
def scored(tmp_path_factory, offline_hf):
    """One run of all four tasks on the bundled data with known answers."""
    answers = {**_gsm8k_answers(), **_mmlu_answers(), **_math_answers(), **_gpqa_answers()}
    adapter = FixedAnswerAdapter(answers, default="no idea")
    out = tmp_path_factory.mktemp("scored")
    config = RunConfig(model="fixed", tasks=["mmlu", "gsm8k", "math", "gpqa"], output=out, sample_data=True,
                       progress=False, bootstrap_iters=200)
    results = run_suite(config, adapter=adapter, out=open(out / "stdout.txt", "w"))  # noqa: SIM115
    return results, out, adapter


def _metric(results, task, key):
    return find_entry(results, task)["metrics"][key]["value"]


def test_gsm8k_scores_strict_and_flexible_filters_exactly(scored):
    results, _, _ = scored
    assert _metric(results, "gsm8k", "exact_match,strict-match") == pytest.approx(4 / 6)
    assert _metric(results, "gsm8k", "exact_match,flexible-extract") == pytest.approx(5 / 6)
    assert find_entry(results, "gsm8k")["n_samples"] == 6


def test_mmlu_scores_and_aggregates_by_size_through_lm_eval_groups(scored):
    results, _, _ = scored
    assert _metric(results, "mmlu", "acc,none") == pytest.approx(5 / 8)
    subtasks = find_entry(results, "mmlu")["details"]["lm_eval"]["results"]
    assert subtasks["mmlu_elementary_mathematics"]["acc,none"] == pytest.approx(3 / 4)
    assert subtasks["mmlu_high_school_geography"]["acc,none"] == pytest.approx(2 / 4)
    assert subtasks["mmlu_stem"]["acc,none"] == pytest.approx(3 / 4)
    assert subtasks["mmlu_social_sciences"]["acc,none"] == pytest.approx(2 / 4)


def test_math_uses_minerva_extraction_and_equivalence(scored):
    results, _, _ = scored
    assert _metric(results, "math", "exact_match,none") == pytest.approx(4 / 6)
    assert _metric(results, "math", "math_verify,none") == pytest.approx(4 / 6)
    per_subject = find_entry(results, "math")["details"]["lm_eval"]["results"]
    assert per_subject["minerva_math_algebra"]["exact_match,none"] == 1.0
    assert per_subject["minerva_math_num_theory"]["exact_match,none"] == 0.5


def test_gpqa_scores_shuffled_choices(scored):
    results, _, _ = scored
    assert _metric(results, "gpqa", "acc,none") == pytest.approx(5 / 7)
    assert _metric(results, "gpqa", "acc_norm,none") == pytest.approx(5 / 7)


def test_prompts_are_lm_evals_packaged_templates(scored):
    _, out, _ = scored
    records = {t: RunFolder.open(out).samples(t)
               for t in ("mmlu", "gsm8k", "math", "gpqa")}
    # MMLU: subject description, first five dev rows of that subject (first_n), then the question.
    dev = [r for r in _rows("mmlu", "dev") if r["subject"] == "elementary_mathematics"]
    test = [r for r in _rows("mmlu", "test") if r["subject"] == "elementary_mathematics"]

    def block(row):
        return f"{row['question'].strip()}\n" + "".join(f"{'ABCD'[i]}. {c}\n" for i, c in enumerate(row["choices"])) + "Answer:"

    expected = "The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
    expected += "".join(block(r) + " " + "ABCD"[r["answer"]] + "\n\n" for r in dev) + block(test[0])
    first = next(r for r in records["mmlu"] if r["subtask"] == "mmlu_elementary_mathematics" and r["doc_id"] == 0)
    assert first["prompt"] == expected
    # GSM8K: 5 random train exemplars then "Question: ...\nAnswer:".
    gsm = records["gsm8k"][0]
    assert gsm["prompt"].endswith(f"Question: {_rows('gsm8k', 'test')[0]['question']}\nAnswer:")
    assert gsm["prompt"].count("Question:") == 6
    train_questions = {r["question"] for r in _rows("gsm8k", "train")}
    shots = re.findall(r"Question: (.*)\nAnswer:", gsm["prompt"])[:-1]
    assert len(shots) == 5 and set(shots) <= train_questions
    # MATH: the four built-in Minerva exemplars, then "Problem:\n...\n\nSolution:".
    math_prompt = records["math"][0]["prompt"]
    assert math_prompt.startswith("Problem:\nFind the domain of the expression")
    assert math_prompt.count("Final Answer: The final answer is") == 4
    assert math_prompt.endswith("\n\nSolution:")
    # GPQA n-shot: the packaged description first.
    assert records["gpqa"][0]["prompt"].startswith("Here are some example questions from experts.")


def test_sample_records_hold_prediction_target_metrics_and_cost(scored):
    _, out, _ = scored
    gsm = RunFolder.open(out).samples("gsm8k")
    first = gsm[0]
    assert first["predictions"]["strict-match"] == first["target"].split("#### ")[-1]
    assert first["metrics"] == {"exact_match,strict-match": 1.0, "exact_match,flexible-extract": 1.0}
    assert first["extra"]["responses"][0][0].endswith("\n\n")  # cut at the task's until string "Question:"
    assert first["cost"]["nfe"] == 1 and len(first["prompt_hash"]) == 64
    mmlu = RunFolder.open(out).samples("mmlu")
    assert {r["predictions"]["none"] for r in mmlu} <= {" A", " B", " C", " D"}
    assert all(r["cost"]["nfe"] == 4 for r in mmlu)  # four choices, one request each


def test_results_record_data_hashes_versions_and_bootstrap_stderr(scored):
    results, _, _ = scored
    gsm = find_entry(results, "gsm8k")
    assert gsm["data"]["source"] == "local"
    assert all(len(h) == 64 for h in gsm["data"]["files_sha256"].values())
    assert gsm["details"]["lm_eval"]["versions"]["gsm8k"] == 3.0
    stderr = gsm["metrics"]["exact_match,strict-match"]["stderr"]
    assert 0.1 < stderr < 0.3  # sqrt(p(1-p)/n) = 0.19 for 4/6
    assert results["seeds"] == {"random": 0, "numpy": 1234, "torch": 1234, "fewshot": 1234, "adapter": 1234}


def test_staged_yaml_includes_the_packaged_config(tmp_path):
    spec = get_task("gsm8k")
    prepared = spec.impl.prepare(tmp_path / "gsm8k", SAMPLE_DATA_DIR / "gsm8k", 5)
    config = yaml.safe_load((tmp_path / "gsm8k" / "gsm8k.yaml").read_text())
    assert config["include"] == str(lm_eval_tasks_dir() / "gsm8k" / "gsm8k.yaml")
    assert config["dataset_path"] == "json" and config["dataset_name"] is None
    assert set(config["dataset_kwargs"]["data_files"]) == {"test", "train"}
    assert "doc_to_text" not in config and "metric_list" not in config  # nothing restated
    assert prepared.rows == {None: 6}


def test_hub_mode_writes_every_subject_without_data_override(tmp_path):
    prepared = get_task("mmlu").impl.prepare(tmp_path / "mmlu", None, 5)
    assert prepared.source == "hub" and len(prepared.subtasks) == 57
    anatomy = yaml.safe_load((tmp_path / "mmlu" / "mmlu_anatomy.yaml").read_text())
    assert set(anatomy) == {"include", "task"}
    top = yaml.safe_load((tmp_path / "mmlu" / "group_mmlu.yaml").read_text())
    assert sorted(top["task"]) == ["mmlu_humanities", "mmlu_other", "mmlu_social_sciences", "mmlu_stem"]


def test_mmlu_zero_shot_needs_no_dev_split(data_copy, tmp_path):
    (data_copy / "mmlu" / "dev.jsonl").unlink()
    prepared = get_task("mmlu").impl.prepare(tmp_path / "m", data_copy / "mmlu", 0)
    assert prepared.subtasks == ["mmlu_elementary_mathematics", "mmlu_high_school_geography"]
    with pytest.raises(DataError, match=r"dev\.jsonl \(or \.parquet\) not found"):
        get_task("mmlu").impl.prepare(tmp_path / "m", data_copy / "mmlu", 5)


@pytest.mark.parametrize(
    ("task", "split", "edit", "message"),
    [
        ("gsm8k", "test", lambda r: r.pop("answer"), r"test.jsonl:1: missing field 'answer'"),
        ("gsm8k", "train", lambda r: r.update(answer="12"), r"train.jsonl:1: field 'answer' must end with '#### <final answer>'"),
        ("mmlu", "test", lambda r: r.update(answer=4), r"test.jsonl:1: field 'answer' must be 0-3"),
        ("mmlu", "test", lambda r: r.update(subject="cooking"), r"field 'subject' is not an MMLU subject"),
        ("mmlu", "dev", lambda r: r.update(choices=["a", "b"]), r"dev.jsonl:1: field 'choices' must be a list of 4 strings"),
        ("math", "test", lambda r: r.update(type="Algebra II"), r"test.jsonl:1: field 'type' must be one of Algebra"),
        ("math", "test", lambda r: r.update(solution="It is 3."), r"field 'solution' has no \\boxed"),
        ("gpqa", "train", lambda r: r.pop("Incorrect Answer 3"), r"train.jsonl:1: missing field 'Incorrect Answer 3'"),
    ],
)
def test_malformed_rows_fail_with_file_line_and_field(data_copy, tmp_path, task, split, edit, message):
    path = data_copy / task / f"{split}.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    edit(rows[0])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = get_task(task)
    with pytest.raises(DataError, match=message):
        spec.impl.prepare(tmp_path / task, data_copy / task, spec.num_fewshot)


def test_too_few_fewshot_rows_is_a_data_error(data_copy, tmp_path):
    with pytest.raises(DataError, match=r"7 rows; 8-shot needs at least 9"):
        get_task("gpqa").impl.prepare(tmp_path / "g", data_copy / "gpqa", 8)
    with pytest.raises(DataError, match=r"5 'dev' rows for subject 'elementary_mathematics'; 6-shot needs 6"):
        get_task("mmlu").impl.prepare(tmp_path / "m", data_copy / "mmlu", 6)


def test_gpqa_target_letter_matches_the_prompted_choices_and_no_self_shot(scored):
    """Regression for lm-eval's re-advancing GPQA shuffle (see ``mmada_bench.tasks.text.gpqa``)."""
    _, out, _ = scored
    correct = {r["Question"]: r["Correct Answer"] for r in _rows("gpqa", "train")}
    for record in RunFolder.open(out).samples("gpqa"):
        block = record["prompt"][record["prompt"].rfind("Question:"):]
        question = block[len("Question: "): block.index("\nChoices:")]
        target = record["target"]
        letter = target if isinstance(target, str) else ["(A)", "(B)", "(C)", "(D)"][target]
        assert f"{letter} {correct[question]}\n" in block
        assert record["prompt"].count(f"Question: {question}\n") == 1


def test_two_settings_of_one_task_live_side_by_side_in_one_folder(tmp_path, offline_hf):
    """A sweep's points share a folder: each (task, settings) is its own entry and samples file, and a
    later run of another task or setting keeps every entry already finished."""
    out = tmp_path / "both"
    adapter = FixedAnswerAdapter({**_gsm8k_answers(), **_mmlu_answers()}, default="no idea")
    for steps in ("16", "32"):
        run_suite(RunConfig(model="fixed", tasks=["gsm8k"], output=out, sample_data=True, num_fewshot=1,
                            bootstrap_iters=10, progress=False,
                            sampler={"gen_length": "32", "steps": steps, "block_length": "16"}), adapter=adapter)
    results = json.loads((out / "results.json").read_text())
    entries = sorted(results["tasks"].values(), key=lambda e: e["settings"]["steps"])
    assert [e["settings"]["steps"] for e in entries] == [16, 32]
    assert len({e["key"] for e in entries}) == 2 and all(e["task"] == "gsm8k" for e in entries)
    for entry in entries:
        assert (out / "samples" / f"{entry['key']}.jsonl").read_text().count("\n") == 6
        assert entry["metrics"]["exact_match,strict-match"]["value"] == pytest.approx(4 / 6)
    run_suite(RunConfig(model="fixed", tasks=["mmlu"], output=out, sample_data=True, num_fewshot=1,
                        bootstrap_iters=10, progress=False), adapter=adapter)
    after = json.loads((out / "results.json").read_text())["tasks"]
    assert {e["key"] for e in entries} <= set(after) and len(after) == 3
