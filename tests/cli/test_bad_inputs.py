"""Bad input, tried as a user (or an adversary) would, against a folder that already holds finished results.

Every case is ``mmada-bench run ...`` in this process. A mistake must end in exactly one short line on
stderr, exit code 2 and no traceback, and leave every byte of the earlier results as it was; a legal
input (a byte-order mark, an extra column, a rewritten request log) must run. The last tests are the
issue's done-when checks: reruns of a subset, a rerun that fails on its second task and two runs into
one folder all keep every finished task, and two identical runs write byte-identical samples files.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmada_bench.cli import main
from mmada_bench.tasks.text import SAMPLE_DATA_DIR

FAST = ["--sample-data", "--num-fewshot", "1", "--batch-size", "4", "--no-progress", "--bootstrap-iters", "50",
        "--sampler", "gen_length=16,steps=8,block_length=16"]


@pytest.fixture(scope="module")
def hf_env(tmp_path_factory):
    """Hub off and every Hugging Face cache in an empty temporary folder (module attributes too: the
    libraries read the environment at import)."""
    import datasets
    import huggingface_hub

    cache = tmp_path_factory.mktemp("hf")
    patch = pytest.MonkeyPatch()
    for name, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("HF_HOME", str(cache)),
                        ("HF_DATASETS_CACHE", str(cache / "datasets"))):
        patch.setenv(name, value)
    patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "datasets")
    patch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    patch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache / "hub"))
    yield cache
    patch.undo()


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``mmada-bench argv`` in this process: (exit code, stdout, stderr); argparse's exits included."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return int(code or 0), out, err


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert len(lines[0]) < 400
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes (the lock file's pid aside)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory, tiny_path, hf_env):
    """A finished two-task run (gsm8k generation, mmlu log-likelihood) on the tiny preset."""
    folder = tmp_path_factory.mktemp("earlier") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["run", "--model", str(tiny_path), "--tasks", "gsm8k,mmlu", "--output", str(folder), *FAST]) == 0
    return folder


@pytest.fixture
def folder(earlier, tmp_path) -> Path:
    """A private copy of the earlier run, to point bad commands at."""
    target = tmp_path / "run"
    shutil.copytree(earlier, target)
    return target


def _entries(folder: Path) -> dict[str, dict]:
    return json.loads((folder / "results.json").read_text())["tasks"]


# -- flags and settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num-fewshot", "-1"], "--num-fewshot must be 0 or more"),
        (["--bootstrap-iters", "-1"], "--bootstrap-iters must be 0 (no standard errors) or at least 2"),
        (["--bootstrap-iters", "1"], "--bootstrap-iters must be 0"),
        (["--device", "bogus"], "--device 'bogus' is not a device"),
        (["--limit", "inf"], "--limit must be a positive finite number"),
        (["--limit", "nan"], "--limit must be a positive finite number"),
        (["--limit", "mmlu=2"], "--limit names mmlu, not in --tasks (gsm8k)"),
        (["--limit", "gsm8k=0"], "--limit must be a positive finite number"),
        (["--limit", "=3"], "--limit: expected task=N"),
        (["--sampler", "temperature=nan"], "temperature"),
        (["--sampler", "gen_length=30,block_length=8"], "not a multiple of block_length=8"),
        (["--tasks", "gsm8k,nope"], "unknown task 'nope'"),
    ],
)
def test_bad_flags_are_one_line_and_touch_nothing(capsys, folder, tiny_path, args, message):
    before = snapshot(folder)
    argv = ["run", "--model", str(tiny_path), "--tasks", "gsm8k", "--output", str(folder), *FAST, *args]
    code, _, err = run_cli(capsys, *argv)
    assert message in one_line_error(code, err)
    assert snapshot(folder) == before


def test_cuda_without_a_gpu_names_the_device_not_the_weights(capsys, folder, tiny_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    before = snapshot(folder)
    code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "gsm8k", "--output", str(folder),
                           *FAST, "--device", "cuda")
    line = one_line_error(code, err)
    assert "--device cuda: torch sees no CUDA GPU" in line and "safetensors" not in line
    assert snapshot(folder) == before


# -- --samples ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ('{"gsm8k": [0], "math": [1]}', [], "--samples names task 'math', which is not in --tasks"),
        ('{"gsm8k": [0, 99]}', [], "task gsm8k has no sample '99' (doc_id must be 0-5)"),
        ('{"gsm8k": ["x/1"]}', [], "task gsm8k has no subtask 'x'"),
        ('{"gsm8k": [0, 0]}', [], "lists id '0' of task 'gsm8k' more than once"),
        ('{"gsm8k": []}', [], "lists no ids for task 'gsm8k'"),
        ('["gsm8k"]', [], 'expected a JSON object {"task": [id, ...]}'),
        ('{"gsm8k": [0', [], "not valid JSON"),
        ('{"gsm8k": [0]}', ["--limit", "2"], "use either --limit or --samples"),
        (None, [], "cannot read"),
    ],
)
def test_bad_sample_lists_are_one_line(capsys, folder, tiny_path, tmp_path, content, extra, message):
    path = tmp_path / "samples.json"
    if content is not None:
        path.write_text(content)
    before = snapshot(folder)
    code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "gsm8k", "--output", str(folder),
                           *FAST, "--samples", str(path), *extra)
    assert message in one_line_error(code, err)
    assert snapshot(folder) == before


def test_a_task_with_subtasks_needs_subtask_ids(capsys, folder, tiny_path, tmp_path):
    path = tmp_path / "samples.json"
    path.write_text('{"mmlu": [1]}')
    code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "mmlu", "--output", str(folder),
                           *FAST, "--samples", str(path))
    assert "write id '1' as subtask/doc_id (e.g. mmlu_elementary_mathematics/1)" in one_line_error(code, err)


def test_samples_evaluate_exactly_the_listed_ids_and_record_them(capsys, folder, tiny_path, tmp_path):
    ids = {"gsm8k": ["4", "1"], "mmlu": ["mmlu_high_school_geography/3", "mmlu_elementary_mathematics/0"]}
    path = tmp_path / "samples.json"
    path.write_text(json.dumps(ids))
    before = _entries(folder)
    code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "gsm8k,mmlu", "--output",
                           str(folder), *FAST, "--samples", str(path))
    assert code == 0, err
    entries = _entries(folder)
    assert set(before) < set(entries)  # new entries beside the full runs, which are kept
    from mmada_bench.results.reader import sample_id

    for task, wanted in ids.items():
        (key,) = [k for k in entries if k not in before and entries[k]["task"] == task]
        assert entries[key]["sample_ids"] == wanted and entries[key]["n_samples"] == 2
        records = _samples(folder, key)
        assert sorted(sample_id(r) for r in records) == sorted(wanted)
        full = {sample_id(r): r for r in _samples(folder, _full_key(before, task))}
        for record in records:  # the same document as in the full run, and a cost of its own
            assert record["doc_hash"] == full[sample_id(record)]["doc_hash"]
            assert record["cost"]["nfe"] > 0
            if task == "mmlu":  # first-n few-shot: the same prompt too (gsm8k draws its examples at random,
                # in document order, so a selection gets other examples than the full run: see the README)
                assert record["prompt_hash"] == full[sample_id(record)]["prompt_hash"]


def _samples(folder: Path, key: str) -> list[dict]:
    return [json.loads(x) for x in (folder / "samples" / f"{key}.jsonl").read_text().splitlines()]


def _full_key(entries: dict[str, dict], task: str) -> str:
    (key,) = [k for k, e in entries.items() if e["task"] == task and e.get("sample_ids") is None]
    return key


# -- checkpoints -------------------------------------------------------------------------------------
def _broken_checkpoint(tiny_path: Path, tmp_path: Path, what: str) -> Path:
    target = tmp_path / "ckpt"
    shutil.copytree(tiny_path, target)
    if what == "no d_model":
        config = json.loads((target / "config.json").read_text())
        del config["d_model"]
        (target / "config.json").write_text(json.dumps(config))
    elif what == "tokenizer not JSON":
        (target / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    elif what == "tokenizer without model":
        (target / "tokenizer.json").write_text('{"version": "1.0"}')
    return target


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("no d_model", "config.json: missing d_model (the model's shape is not guessed)"),
        ("tokenizer not JSON", "tokenizer.json is not valid JSON"),
        ("tokenizer without model", "tokenizer.json is not a tokenizers file (no 'model' or 'added_tokens' key)"),
    ],
)
def test_broken_checkpoints_are_one_clear_line(capsys, folder, tiny_path, tmp_path, what, message):
    model = _broken_checkpoint(tiny_path, tmp_path, what)
    out = tmp_path / "new"
    code, _, err = run_cli(capsys, "run", "--model", str(model), "--tasks", "gsm8k", "--output", str(out), *FAST)
    assert message in one_line_error(code, err)
    assert not out.exists()


# -- output folders and request logs -----------------------------------------------------------------
def test_output_that_is_a_file_is_refused(capsys, tiny_path, tmp_path):
    file = tmp_path / "out.txt"
    file.write_text("keep me")
    for output, message in ((file, "exists and is not a folder"), (file / "sub", "is a file, not a folder")):
        code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "gsm8k", "--output", str(output),
                               *FAST)
        assert message in one_line_error(code, err)
    assert file.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_output_folder_is_refused(capsys, folder, tiny_path):
    before = snapshot(folder)
    folder.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "gsm8k", "--output", str(folder),
                               *FAST)
    finally:
        folder.chmod(0o755)
    assert "is not writable" in one_line_error(code, err)
    assert snapshot(folder) == before


@pytest.mark.parametrize("name", ["requests", "samples", "staging"])
def test_a_file_where_the_run_needs_a_folder_is_refused(capsys, folder, tiny_path, name):
    shutil.rmtree(folder / name)
    (folder / name).write_text("not a folder")
    before = snapshot(folder)
    code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "gsm8k", "--output", str(folder),
                           *FAST)
    assert f"{folder / name} is a file" in one_line_error(code, err)
    assert snapshot(folder) == before


def test_results_of_another_schema_are_refused(capsys, folder, tiny_path):
    results = json.loads((folder / "results.json").read_text())
    (folder / "results.json").write_text(json.dumps({**results, "schema_version": 1}))
    before = snapshot(folder)
    code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "gsm8k", "--output", str(folder),
                           *FAST)
    assert "schema_version 1" in one_line_error(code, err)
    assert snapshot(folder) == before


def test_logged_answers_of_the_wrong_json_type_are_recomputed(capsys, folder, tiny_path):
    """The request log is a cache: a line whose answer has the wrong type is recomputed (one warning line)."""
    log = folder / "requests" / "rank0.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    broken = 0
    for line in lines:
        if line["method"] == "generate_text" and broken < 2:
            line["answer"], broken = 12, broken + 1
        elif line["method"] == "loglikelihood" and broken < 4:
            line["answer"], broken = ["-1.5", "yes"], broken + 1
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    before = _entries(folder)
    code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "gsm8k,mmlu", "--output",
                           str(folder), *FAST)
    assert code == 0, err
    warnings = [x for x in err.splitlines() if "could not be read back" in x]
    assert len(warnings) == 2 and "Traceback" not in err  # one per task whose log lines were broken
    after = _entries(folder)
    for key, entry in before.items():
        assert after[key]["metrics"] == entry["metrics"]
        assert after[key]["cost"]["requests_computed"] == 2


# -- data files --------------------------------------------------------------------------------------
def test_offline_without_data_names_the_dataset_and_data_dir(capsys, tiny_path, tmp_path, hf_env):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", "--model", str(tmp_path / "no-model"), "--tasks", "gsm8k",
                           "--output", str(out), "--no-progress")
    line = one_line_error(code, err)
    assert "openai/gsm8k (main) is not in the local cache" in line and "--data-dir DIR" in line
    assert not out.exists()  # checked before the (missing) model was looked for


def test_real_world_data_files_load(capsys, tiny_path, tmp_path, caplog):
    """A byte-order mark, an extra column in some few-shot rows only, and a few-shot row far longer than
    the model's context: the run works, with one warning line for the prompt length."""
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA_DIR / "gsm8k", data / "gsm8k")
    test = data / "gsm8k" / "test.jsonl"
    test.write_bytes(b"\xef\xbb\xbf" + test.read_bytes().replace(b"\n", b"\r\n"))
    train = data / "gsm8k" / "train.jsonl"
    rows = [json.loads(x) for x in train.read_text().splitlines()]
    rows[0]["source"] = "hand-added"  # one row only: lm-eval's loader would fail on the schema
    for row in rows:
        row["answer"] = "word " * 3000 + row["answer"]  # 15,000+ characters against max_length=256
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    with caplog.at_level("WARNING"):
        code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "gsm8k", "--data-dir", str(data),
                               "--output", str(out), "--num-fewshot", "1", "--no-progress", "--limit", "2",
                               "--sampler", "gen_length=16,steps=8,block_length=16,max_length=256")
    assert code == 0, err
    long = [r.getMessage() for r in caplog.records if "far exceed the model's context" in r.getMessage()]
    assert len(long) == 1 and "max_length=256" in long[0]
    assert len(_entries(out)) == 1


# -- the lm-eval path --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"pretrained": "tiny", "stepz": 8}, "unknown model_args key 'stepz'"),
        ({"pretrained": "tiny", "steps": "abc"}, "sampler setting steps: cannot use 'abc'"),
        ({"pretrained": "tiny", "gen_length": 30, "block_length": 8}, "gen_length=30 is not a multiple"),
        ({"gen_length": 16, "block_length": 16}, "needs pretrained="),
        ({"pretrained": "tiny", "seed": "x"}, "seed must be an integer"),
    ],
)
def test_bad_model_args_are_one_line_under_lm_eval(capsys, monkeypatch, args, message):
    from mmada_bench.backends.lm_eval import bridge

    monkeypatch.setattr(bridge, "_under_lm_eval_cli", lambda: True)
    with pytest.raises(SystemExit) as exit_info:
        bridge.MMaDALM.create_from_arg_obj(args, {"batch_size": 1, "device": "cpu"})
    line = one_line_error(int(exit_info.value.code), capsys.readouterr().err)
    assert line.startswith("lm_eval --model mmada: error:") and message in line


def test_lm_eval_use_cache_warns_and_points_to_store(caplog):
    from lm_eval.api.model import CacheHook

    from mmada_bench.adapters.fixed import FixedAnswerAdapter
    from mmada_bench.backends.lm_eval.bridge import MMaDALM

    lm = MMaDALM(adapter=FixedAnswerAdapter({}))

    class Caching:
        dbdict: dict = {}

    with caplog.at_level("WARNING"):
        lm.set_cache_hook(CacheHook(None))
        assert not caplog.records
        lm.set_cache_hook(CacheHook(Caching()))
    (record,) = caplog.records
    assert "--use_cache keys answers by prompt only" in record.getMessage() and "store=DIR" in record.getMessage()


def test_lm_eval_task_override_notices_are_one_line(caplog):
    import logging

    from mmada_bench.backends.lm_eval import hook

    hook.quiet_override_warnings()
    hook.quiet_override_warnings()  # idempotent: one filter
    logger = logging.getLogger(hook.TASK_INDEX_LOGGER)
    notice = next(f for f in logger.filters if isinstance(f, hook._OneOverrideNotice))
    notice.seen = False
    with caplog.at_level("WARNING"):
        for name in ("gsm8k", "mmlu", "mmlu_stem"):
            logger.warning("Task '%s' from %s overrides existing task from %s", name, "a.yaml", "b.yaml")
        logger.warning("something else")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "Task 'gsm8k' from a.yaml" in messages[0] and "suppressed" in messages[0]
    assert sum(isinstance(f, hook._OneOverrideNotice) for f in logger.filters) == 1


# -- done when: finished results survive -------------------------------------------------------------
def test_rerun_of_a_subset_keeps_every_finished_task(capsys, folder, tiny_path):
    before = _entries(folder)
    gsm8k_samples = {p.name: p.read_bytes() for p in (folder / "samples").glob("gsm8k@*")}
    code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "mmlu", "--output", str(folder),
                           *FAST[:-1], "gen_length=16,steps=8,block_length=16,mc_num=2")
    assert code == 0, err
    after = _entries(folder)
    assert set(before) < set(after) and len(after) == 3
    for key, entry in before.items():
        assert after[key] == entry
    assert {p.name: p.read_bytes() for p in (folder / "samples").glob("gsm8k@*")} == gsm8k_samples


def test_rerun_failing_on_its_second_task_keeps_the_first_and_everything_earlier(capsys, folder, tiny_path,
                                                                                  monkeypatch):
    from mmada_bench.backends.lm_eval.backend import LmEvalBackend

    original = LmEvalBackend.run

    def crash_on_gsm8k(self, plan, context, engine):
        if plan.spec.name == "gsm8k":
            raise RuntimeError("simulated crash in the second task")
        return original(self, plan, context, engine)

    monkeypatch.setattr(LmEvalBackend, "run", crash_on_gsm8k)
    before = _entries(folder)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(["run", "--model", str(tiny_path), "--tasks", "mmlu,gsm8k", "--output", str(folder),
              *FAST[:-1], "gen_length=32,steps=8,block_length=16,mc_num=2"])
    after = _entries(folder)
    assert all(after[key] == entry for key, entry in before.items())
    assert [e["task"] for k, e in after.items() if k not in before] == ["mmlu"]
    assert _lock_is_free(folder)


def _lock_is_free(folder: Path) -> bool:
    from mmada_bench.results import ResultsStore

    store = ResultsStore(folder)
    store.lock()
    store.unlock()
    return True


def test_a_second_run_into_a_folder_in_use_is_refused_and_changes_nothing(capsys, folder, tiny_path):
    from mmada_bench.results import ResultsStore

    holder = ResultsStore(folder)
    holder.lock()  # another run holds the folder (flock conflicts between open files, in one process too)
    try:
        before = snapshot(folder)
        code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "mmlu", "--output", str(folder),
                               *FAST)
    finally:
        holder.unlock()
    assert "is in use by another mmada-bench run" in one_line_error(code, err)
    assert snapshot(folder) == before


@pytest.mark.slow
def test_two_concurrent_runs_into_one_folder_keep_every_finished_task(capsys, folder, tiny_path, hf_env):
    before = _entries(folder)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false"}
    first = subprocess.Popen(
        [sys.executable, "-m", "mmada_bench.cli", "run", "--model", str(tiny_path), "--tasks", "gsm8k",
         "--output", str(folder), *FAST[:-1], "gen_length=32,steps=16,block_length=16"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while "pid" not in _read(folder / ".lock") and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "mmlu", "--output", str(folder),
                           *FAST[:-1], "gen_length=16,steps=8,block_length=16,mc_num=2")
    assert first.wait(timeout=240) == 0, first.stderr.read()[-2000:]
    after = _entries(folder)
    assert all(after[key] == entry for key, entry in before.items())
    tasks = sorted(e["task"] for k, e in after.items() if k not in before)
    if code == 0:  # the second run got the folder after the first had finished: both entries are there
        assert tasks == ["gsm8k", "mmlu"]
    else:
        assert "is in use by another mmada-bench run" in one_line_error(code, err)
        assert tasks == ["gsm8k"]


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_identical_runs_write_byte_identical_samples(capsys, earlier, tiny_path, tmp_path):
    """Wall time is kept out of samples files (it lives in the results entry's cost), so two identical CPU
    runs give byte-identical samples files with nothing set aside."""
    again = tmp_path / "again"
    code, _, err = run_cli(capsys, "run", "--model", str(tiny_path), "--tasks", "gsm8k,mmlu", "--output", str(again),
                           *FAST)
    assert code == 0, err
    first = {p.name: p.read_bytes() for p in (earlier / "samples").iterdir()}
    second = {p.name: p.read_bytes() for p in (again / "samples").iterdir()}
    assert len(first) == 2 and first == second
    assert all(b'"seconds"' not in data for data in second.values())
    assert all(e["cost"]["seconds"] > 0 for e in _entries(again).values())
