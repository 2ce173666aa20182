"""The MMU benchmarks end to end: fixture data -> prompts -> adapter -> post-processing -> VLMEvalKit scores.

A scripted adapter (answers keyed by the exact prompt each row sends) must score exactly what the
metric definitions give when computed here from first principles, with no scorer code involved; the
tiny preset then runs every benchmark through the CLI, and each malformed fixture must stop a run
with one line before anything is written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmada_bench.adapters.fixed import FixedAnswerAdapter
from mmada_bench.cli import main
from mmada_bench.errors import DataError
from mmada_bench.results.reader import RunFolder, find_entry
from mmada_bench.runner import RunConfig, run_suite
from mmada_bench.tasks import get_task
from mmada_bench.tasks.mmu.prompts import build_prompt

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mmu_samples"
MALFORMED = FIXTURES / "malformed"
TSV_TASKS = ("pope", "mme", "gqa", "mmmu")
ALL_DATA_TASKS = (*TSV_TASKS, "vqav2")


@pytest.fixture(scope="module", autouse=True)
def image_cache(tmp_path_factory):
    """Images decoded out of the TSVs go to a temporary cache, not the user's."""
    patch = pytest.MonkeyPatch()
    patch.setenv("MMADA_BENCH_CACHE", str(tmp_path_factory.mktemp("mmu_cache")))
    yield
    patch.undo()


def _rows(task: str) -> list:
    return list(get_task(task).impl.load(FIXTURES, False).rows)


def _prompt(task: str, row) -> str:
    return build_prompt(get_task(task).impl.dataset, row)[0]


def _script(task: str, answer_of, wrong: int = 0) -> tuple[dict[str, str], list[str]]:
    """Prompt -> scripted answer (gold, or wrong for the first ``wrong`` distinct prompts), and the answer
    every row gets. Prompts repeat across images, so a row's answer is its prompt's first row's answer."""
    table: dict[str, str] = {}
    for row in _rows(task):
        prompt = _prompt(task, row)
        if prompt not in table:
            table[prompt] = answer_of(row, len(table) < wrong)
    return table, [table[_prompt(task, row)] for row in _rows(task)]


def _yes_no(row, flip: bool) -> str:
    return {"Yes": "No", "No": "Yes"}[row.answer] if flip else row.answer


def _gqa(row, flip: bool) -> str:
    return "xyzzy" if flip else row.answer


def _mmmu(row, flip: bool) -> str:
    if row.fields.get("A") is None:  # open question: the gold text itself
        return "no idea" if flip else row.answer
    return ("B" if row.answer == "A" else "A") if flip else row.answer


def _vqa(row, flip: bool) -> str:
    return "xyzzy" if flip else row.fields["multiple_choice_answer"]


SCRIPTS = {"pope": (_yes_no, 3), "mme": (_yes_no, 2), "gqa": (_gqa, 3), "mmmu": (_mmmu, 4),
           "mmmu_dev_val": (_mmmu, 4), "vqav2": (_vqa, 2)}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """One run per benchmark, each with its own script (prompts of two benchmarks may coincide)."""
    results: dict = {"tasks": {}}
    given = {}
    out = tmp_path_factory.mktemp("mmu_scored")
    for task, (answer_of, wrong) in SCRIPTS.items():
        table, given[task] = _script(task, answer_of, wrong)
        adapter = FixedAnswerAdapter(table, default="")
        # keys are whole prompts: no prompt may contain another one further on
        assert [adapter.answer_for(_prompt(task, r)) for r in _rows(task)] == given[task]
        config = RunConfig(model="fixed", tasks=[task], output=out / task, data_dir=FIXTURES, bootstrap_iters=50,
                           progress=False)
        with open(tmp_path_factory.mktemp("stdout") / "stdout.txt", "w") as stdout:
            results["tasks"].update(run_suite(config, adapter=adapter, out=stdout)["tasks"])
    return results, out, given


def _value(results, task: str, key: str) -> float:
    return find_entry(results, task)["metrics"][key]["value"]


def test_pope_accuracy_and_f1_over_exploded_splits(scored):
    results, _, given = scored
    items = []  # (split, gold yes, predicted yes); a row counts once per split it lists, as POPE_rating
    for row, answer in zip(_rows("pope"), given["pope"], strict=True):
        items += [(split, row.answer == "Yes", answer == "Yes") for split in row.fields["category"].split(",")]

    def block(chosen):
        tp = sum(g and p for _, g, p in chosen)
        fp = sum(p and not g for _, g, p in chosen)
        fn = sum(g and not p for _, g, p in chosen)
        precision, recall = tp / (tp + fp), tp / (tp + fn)
        return (100 * sum(g == p for _, g, p in chosen) / len(chosen),
                100 * 2 * precision * recall / (precision + recall))

    acc, f1 = block(items)
    assert sum(a != r.answer for a, r in zip(given["pope"], _rows("pope"), strict=True)) >= 3
    assert acc < 100
    assert _value(results, "pope", "Overall/acc") == pytest.approx(acc)
    assert _value(results, "pope", "Overall/f1") == pytest.approx(f1)
    for split in ("adversarial", "popular", "random"):
        split_acc, split_f1 = block([i for i in items if i[0] == split])
        assert _value(results, "pope", f"{split}/acc") == pytest.approx(split_acc)
        assert _value(results, "pope", f"{split}/f1") == pytest.approx(split_f1)
    entry = find_entry(results, "pope")
    assert entry["n_samples"] == 25 and entry["backend"] == "native"
    assert entry["metrics"]["Overall/acc"]["stderr"] > 0
    assert entry["metrics"]["Overall/f1"]["rule"].startswith("VLMEvalKit POPE_rating")


def test_mme_subtask_scores_and_partial_flag(scored):
    results, _, given = scored
    per: dict[str, dict[str, list[bool]]] = {}
    for row, answer in zip(_rows("mme"), given["mme"], strict=True):
        per.setdefault(row.fields["category"], {}).setdefault(row.fields["image_path"], []).append(answer == row.answer)
    scores = {}
    for category, images in per.items():
        flat = [c for pair in images.values() for c in pair]
        acc = 100 * sum(flat) / len(flat)
        acc_plus = 100 * sum(all(pair) for pair in images.values()) / len(images)
        assert _value(results, "mme", f"{category}/acc") == pytest.approx(acc)
        assert _value(results, "mme", f"{category}/acc_plus") == pytest.approx(acc_plus)
        scores[category] = acc + acc_plus
    perception = sum(scores[c] for c in ("existence", "count", "color", "position"))
    assert perception < 800
    metric = find_entry(results, "mme")["metrics"]["perception/score"]
    assert metric["value"] == pytest.approx(perception)
    assert metric["extra"]["partial"] is True and "OCR" in metric["extra"]["missing_subtasks"]
    assert _value(results, "mme", "reasoning/score") == pytest.approx(scores["commonsense_reasoning"])


def test_gqa_exact_match(scored):
    results, out, given = scored
    right = [a.strip().lower() == r.answer.strip().lower() for a, r in zip(given["gqa"], _rows("gqa"), strict=True)]
    assert 0 < sum(right) < len(right)
    assert _value(results, "gqa", "Overall/acc") == pytest.approx(100 * sum(right) / len(right))
    samples = RunFolder.open(out / "gqa").samples("gqa")
    assert [s["metrics"]["acc"] for s in samples] == [float(r) for r in right]
    assert samples[0]["prompt"].endswith("\nAnswer the question using a single word or phrase.")
    assert samples[0]["predictions"]["answer"] == given["gqa"][0]


def test_mmmu_accuracy_per_split(scored):
    results, _, given = scored
    right: dict[str, list[bool]] = {}
    for row, answer in zip(_rows("mmmu_dev_val"), given["mmmu_dev_val"], strict=True):
        right.setdefault(row.fields["split"], []).append(answer == row.answer)
    for split, marks in right.items():
        assert _value(results, "mmmu_dev_val", f"{split}/Overall/acc") == pytest.approx(
            100 * sum(marks) / len(marks))
    assert not all(right["validation"]) and set(right) == {"dev", "validation"}
    assert find_entry(results, "mmmu_dev_val")["n_samples"] == 24
    # mmmu: the validation rows only, so no dev metric and 3 fewer samples
    marks = [a == r.answer for a, r in zip(given["mmmu"], _rows("mmmu"), strict=True)]
    assert [r.fields["split"] for r in _rows("mmmu")] == ["validation"] * 21
    assert _value(results, "mmmu", "validation/Overall/acc") == pytest.approx(100 * sum(marks) / len(marks))
    assert find_entry(results, "mmmu")["n_samples"] == 21
    assert not any(key.startswith("dev/") for key in find_entry(results, "mmmu")["metrics"])


def test_mmmu_small_limit_yields_the_primary_metric(tmp_path):
    """The dev rows come first in MMMU_DEV_VAL.tsv: --limit 2 must still give validation accuracy."""
    rows = _rows("mmmu")[:2]
    adapter = FixedAnswerAdapter({_prompt("mmmu", r): r.answer for r in rows}, default="")
    config = RunConfig(model="fixed", tasks=["mmmu", "mmmu_dev_val"], output=tmp_path / "o", data_dir=FIXTURES,
                       limit=2, bootstrap_iters=0, progress=False)
    with open(tmp_path / "stdout.txt", "w") as stdout:
        results = run_suite(config, adapter=adapter, out=stdout)
    entry = find_entry(results, "mmmu")
    assert entry["primary_metric"] == "validation/Overall/acc"
    assert entry["metrics"]["validation/Overall/acc"]["value"] == pytest.approx(100.0)
    assert [s["doc_id"] for s in RunFolder.open(tmp_path / "o").samples("mmmu")] == [3, 4]
    # the whole-file variant keeps VLMEvalKit's order: two dev rows, no validation metric
    assert set(find_entry(results, "mmmu_dev_val")["metrics"]) >= {"dev/Overall/acc"}
    assert "validation/Overall/acc" not in find_entry(results, "mmmu_dev_val")["metrics"]


def test_mmmu_official_rule_guesses_where_vlmevalkit_counts_wrong(tmp_path):
    """Same answers, two named rules: an unparseable multiple-choice answer is wrong under VLMEvalKit's
    rule and a seeded guess among the options under MMMU's official one (flagged random_fallback)."""
    rows = [r for r in _rows("mmmu") if r.fields.get("A") is not None]
    adapter = FixedAnswerAdapter({_prompt("mmmu", r): "no idea at all" for r in rows}, default="no idea at all")
    config = RunConfig(model="fixed", tasks=["mmmu", "mmmu_official"], output=tmp_path / "o", data_dir=FIXTURES,
                       bootstrap_iters=0, progress=False)
    with open(tmp_path / "stdout.txt", "w") as stdout:
        results = run_suite(config, adapter=adapter, out=stdout)
    vlmeval_entry, official_entry = find_entry(results, "mmmu"), find_entry(results, "mmmu_official")
    assert vlmeval_entry["metrics"]["validation/Overall/acc"]["rule"] != official_entry["metrics"][
        "validation/Overall/acc"]["rule"]
    folder = RunFolder.open(tmp_path / "o")
    by_id = {s["doc_id"]: s for s in folder.samples("mmmu_official")}
    mc_ids = {str(r.index) for r in rows}
    mc_official = [s for i, s in by_id.items() if str(i) in mc_ids]
    assert mc_official and all(s["metrics"]["random_fallback"] == 1.0 for s in mc_official)
    assert all(s["metrics"]["acc"] == 0.0 for s in folder.samples("mmmu") if str(s["doc_id"]) in mc_ids)
    # a guess among 4-ish options is right for some of ~20 questions, never all
    guessed_right = sum(s["metrics"]["acc"] for s in mc_official)
    assert 0 < guessed_right < len(mc_official)

def test_mmmu_file_without_validation_rows_is_one_line(tmp_path):
    lines = (FIXTURES / "MMMU_DEV_VAL.tsv").read_text().splitlines()
    (tmp_path / "MMMU_DEV_VAL.tsv").write_text("\n".join(lines[:4]) + "\n")  # header + the 3 dev rows
    with pytest.raises(DataError, match="no row has field 'split' in \\['validation'\\]"):
        get_task("mmmu").impl.load(tmp_path, False)


def test_vqav2_soft_accuracy(scored):
    results, _, given = scored

    def soft(prediction: str, answers: list[str]) -> float:
        matches = sum(a == prediction for a in answers)
        # leave-one-out over the 10 annotators, min(#matches/3, 1) each
        return sum(min(1.0, (matches - (a == prediction)) / 3) for a in answers) / len(answers)

    values = [soft(a, r.answer) for a, r in zip(given["vqav2"], _rows("vqav2"), strict=True)]
    assert min(values) == 0
    assert _value(results, "vqav2", "Overall/acc") == pytest.approx(100 * sum(values) / len(values))
    by_type: dict[str, list[float]] = {}
    for row, value in zip(_rows("vqav2"), values, strict=True):
        by_type.setdefault(row.fields["answer_type"], []).append(value)
    for kind, vs in by_type.items():
        assert _value(results, "vqav2", f"{kind}/acc") == pytest.approx(100 * sum(vs) / len(vs))


def test_specs_list_primary_metrics_and_cot_preset():
    assert get_task("pope").primary_metric == "Overall/f1"
    assert get_task("mme").primary_metric == "perception/score"
    assert get_task("mmmu").primary_metric == "validation/Overall/acc"
    for name in (*ALL_DATA_TASKS, "easyvqa"):
        spec = get_task(name)
        assert spec.modality == "mmu" and spec.requires == ("answer_about_image",)
        assert spec.settings_type().updated(spec.presets["cot"]).cot is True


def test_missing_data_file_is_one_line_naming_it_and_the_flag(tmp_path, capsys):
    code = main(["run", "--model", "tiny", "--tasks", "mme", "--data-dir", str(tmp_path), "--output",
                 str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "MME.tsv" in err and "--data-dir" in err


def _cli(model: Path, out: Path, data: Path, tasks: str, *extra: str) -> int:
    return main(["run", "--model", str(model), "--tasks", tasks, "--data-dir", str(data), "--output", str(out),
                 "--no-progress", "--bootstrap-iters", "20", *extra])


@pytest.mark.slow
def test_tiny_preset_runs_every_benchmark_through_the_cli(tiny_path, tmp_path):
    assert _cli(tiny_path, tmp_path / "run", FIXTURES, ",".join(ALL_DATA_TASKS), "--limit", "4",
                "--batch-size", "4") == 0
    run = RunFolder.open(tmp_path / "run")
    for task in ALL_DATA_TASKS:
        entry = run.entry(task)
        assert entry["n_samples"] == 4 and entry["cost"]["requests_computed"] == 4 and entry["cost"]["nfe"] > 0
        assert entry["metrics"][get_task(task).primary_metric]["value"] is not None
        samples = run.samples(task)
        assert len(samples) == 4 and all(isinstance(s["predictions"]["raw"], str) for s in samples)


@pytest.mark.slow
def test_tiny_preset_runs_easyvqa(tiny_path, tmp_path):
    assert _cli(tiny_path, tmp_path / "run", tmp_path, "easyvqa", "--limit", "8", "--batch-size", "8") == 0
    entry = RunFolder.open(tmp_path / "run").entry("easyvqa")
    assert entry["n_samples"] == 8
    assert 0 <= entry["metrics"]["Overall/acc"]["value"] <= 100


@pytest.mark.slow
def test_batch_size_does_not_change_predictions(tiny_path, tmp_path):
    outputs = []
    for size in (1, 8):
        assert _cli(tiny_path, tmp_path / f"b{size}", FIXTURES, "pope,mmmu", "--limit", "8",
                    "--batch-size", str(size)) == 0
        run = RunFolder.open(tmp_path / f"b{size}")
        outputs.append({t: [s["predictions"] for s in run.samples(t)] for t in ("pope", "mmmu")})
    assert outputs[0] == outputs[1]


MALFORMED_CASES = [
    ("pope", "POPE_bad_encoding.tsv", "POPE.tsv", "base64"),
    ("gqa", "GQA_TestDev_Balanced_missing_answer.tsv", "GQA_TestDev_Balanced.tsv", "answer"),
    ("mme", "MME_dup_index.tsv", "MME.tsv", "index"),
    ("mmmu", "MMMU_DEV_VAL_bad_image_bytes.tsv", "MMMU_DEV_VAL.tsv", "image"),
    ("vqav2", "vqav2_nine_answers", None, "answers"),
    ("vqav2", "vqav2_orphan_question", None, "101671009"),
]


@pytest.fixture(scope="module")
def earlier_run(tiny_path, tmp_path_factory):
    """A finished run whose results.json a failing rerun must leave untouched."""
    out = tmp_path_factory.mktemp("mmu_earlier") / "run"
    assert _cli(tiny_path, out, FIXTURES, "pope", "--limit", "2", "--batch-size", "2") == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("task", "source", "name", "needle"), MALFORMED_CASES)
def test_malformed_data_stops_the_run_with_one_line(earlier_run, tiny_path, tmp_path, capsys, task, source, name,
                                                    needle):
    data = tmp_path / "data"
    if name is None:
        shutil.copytree(MALFORMED / source, data)
    else:
        data.mkdir()
        shutil.copy(MALFORMED / source, data / name)
    before = (earlier_run / "results.json").read_bytes()
    capsys.readouterr()
    assert _cli(tiny_path, earlier_run, data, task) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err, err
    assert (earlier_run / "results.json").read_bytes() == before
    assert json.loads(before)  # still a whole results file
