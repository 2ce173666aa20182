"""The lm-eval backend's bridge LM: request keys, resume from the request log, canonical batches, registration,
and lm-eval's own CLI running ``--model mmada`` on the tiny preset with the bundled data, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

from mmada_bench.adapters.base import TextResult
from mmada_bench.adapters.fixed import FixedAnswerAdapter
from mmada_bench.adapters.settings import TextSettings
from mmada_bench.backends.lm_eval.bridge import MMaDALM
from mmada_bench.backends.lm_eval.plugin import PTH_NAME, export_tasks, install
from mmada_bench.engine.request_log import RequestLog
from mmada_bench.engine.serve import request_key
from mmada_bench.tasks.text import SAMPLE_DATA_DIR


def _gen(context: str, doc_id: int, task: str = "gsm8k") -> Instance:
    return Instance("generate_until", {}, (context, {"until": ["Q:"], "max_gen_toks": 8}), 0, (task, doc_id, 1))


def _ll(context: str, continuation: str, doc_id: int) -> Instance:
    return Instance("loglikelihood", {}, (context, continuation), 0, ("mmlu_x", doc_id, 1))


class SpyAdapter(FixedAnswerAdapter):
    """Records the prompts of every generate_text call (one call per batch)."""

    def __init__(self, answers):
        super().__init__(answers)
        self.batches: list[list[str]] = []

    def generate_text(self, requests, settings) -> list[TextResult]:
        self.batches.append([r.prompt for r in requests])
        return super().generate_text(requests, settings)


def test_request_key_covers_everything_that_changes_an_answer():
    base = request_key("generate_until", ("p", {"until": ["Q:"]}), {"steps": 8}, {"w": "1"}, 1)
    assert base == request_key("generate_until", ("p", {"until": ["Q:"]}), {"steps": 8}, {"w": "1"}, 1)
    assert len({
        base,
        request_key("generate_until", ("p2", {"until": ["Q:"]}), {"steps": 8}, {"w": "1"}, 1),
        request_key("generate_until", ("p", {"until": ["Q:"]}), {"steps": 16}, {"w": "1"}, 1),
        request_key("generate_until", ("p", {"until": ["Q:"]}), {"steps": 8}, {"w": "2"}, 1),
        request_key("generate_until", ("p", {"until": ["Q:"]}), {"steps": 8}, {"w": "1"}, 2),
        request_key("loglikelihood", ("p", {"until": ["Q:"]}), {"steps": 8}, {"w": "1"}, 1),
    }) == 6


def test_answers_are_logged_and_served_on_rerun(tmp_path):
    answers = {"q1": "one Q: cut", "q2": "two"}
    requests = [_gen("Q: q1\nA:", 0), _gen("Q: q2\nA:", 1), _ll("Q: q1\nA:", " A", 0), _ll("Q: q1\nA:", " B", 0)]
    first = FixedAnswerAdapter({**answers, "q1 ll": "A"})
    lm = MMaDALM(adapter=first, store=RequestLog(tmp_path), progress=False)
    assert lm.generate_until(requests[:2]) == ["one ", "two"]
    ll = lm.loglikelihood(requests[2:])
    assert lm.engine.counts == {"from_log": 0, "computed": 4}
    lm.engine.log.close()
    lines = (tmp_path / "rank0.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["prompt"].startswith("Q: q")
    again = FixedAnswerAdapter({**answers, "q1 ll": "A"})
    lm2 = MMaDALM(adapter=again, store=RequestLog(tmp_path), progress=False)
    assert lm2.generate_until(requests[:2]) == ["one ", "two"]
    assert lm2.loglikelihood(requests[2:]) == ll
    assert again.calls == [] and lm2.engine.counts == {"from_log": 4, "computed": 0}
    assert lm2.costs[("gsm8k", 0)].nfe == 1  # costs of logged answers are restored too


def test_other_settings_or_seed_do_not_hit_the_log(tmp_path):
    log = RequestLog(tmp_path)
    MMaDALM(adapter=FixedAnswerAdapter({"q": "a"}), store=log, progress=False).generate_until([_gen("q", 0)])
    spy = FixedAnswerAdapter({"q": "a"})
    MMaDALM(adapter=spy, store=log, progress=False, steps=128).generate_until([_gen("q", 0)])
    MMaDALM(adapter=spy, store=log, progress=False, seed=7).generate_until([_gen("q", 0)])
    assert spy.calls == ["generate_text", "generate_text"]


def test_batches_are_canonical_so_a_resumed_run_sees_the_same_batches(tmp_path):
    prompts = [f"prompt {'x' * n}" for n in (3, 9, 1, 7, 5)]
    full = SpyAdapter({})
    MMaDALM(adapter=full, store=RequestLog(tmp_path / "a"), batch_size=2, progress=False).generate_until(
        [_gen(p, i) for i, p in enumerate(prompts)])
    assert [len(b) for b in full.batches] == [2, 2, 1]
    assert full.batches[0] == [prompts[1], prompts[3]]  # longest first
    # "killed" after the first batch: only its answers are in the log
    partial_log = RequestLog(tmp_path / "b")
    MMaDALM(adapter=SpyAdapter({}), store=partial_log, batch_size=2, progress=False).generate_until(
        [_gen(p, i) for i, p in enumerate(prompts) if p in full.batches[0]])
    resumed = SpyAdapter({})
    order = [4, 0, 3, 2, 1]  # lm-eval may hand requests over in another order
    MMaDALM(adapter=resumed, store=RequestLog(tmp_path / "b"), batch_size=2, progress=False).generate_until(
        [_gen(prompts[i], i) for i in order])
    assert resumed.batches == full.batches[1:]


def test_per_task_settings_apply_by_lm_eval_task_name():
    lm = MMaDALM(adapter=FixedAnswerAdapter({}), progress=False,
                 task_settings={"mmlu_x": TextSettings(mc_num=1)}, mc_num=64, mc_batch=8)
    assert lm.settings_for("mmlu_x").mc_num == 1 and lm.settings_for("other").mc_num == 64


def test_model_is_registered_with_lm_eval():
    from lm_eval.api.registry import get_model

    assert get_model("mmada") is MMaDALM


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               HF_DATASETS_CACHE=str(tmp_path / "hf" / "datasets"), OMP_WAIT_POLICY="PASSIVE",
               TOKENIZERS_PARALLELISM="false")
    return env


def test_pth_hook_registers_lazily_in_a_fresh_interpreter(tmp_path):
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    assert install(site_dir) == site_dir / PTH_NAME
    code = (
        "import site, sys; site.addsitedir(sys.argv[1]);"
        "import lm_eval.api.registry as r;"
        "print('bridge loaded early:', 'mmada_bench.backends.lm_eval.bridge' in sys.modules);"
        "print(r.get_model('mmada').__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(site_dir)], capture_output=True, text=True, timeout=120,
                         env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["bridge loaded early: False", "MMaDALM"]


@pytest.mark.slow
def test_lm_eval_cli_runs_all_four_text_tasks_on_the_tiny_preset(tmp_path, tiny_path):
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    install(site_dir)
    names = export_tasks(tmp_path / "tasks", ["gsm8k", "mmlu", "math", "gpqa"], SAMPLE_DATA_DIR, num_fewshot=1)
    args = [
        "lm_eval", "--model", "mmada",
        "--model_args", f"pretrained={tiny_path},gen_length=16,steps=8,block_length=8,mc_num=4,mc_batch=4",
        "--tasks", ",".join(names), "--include_path", str(tmp_path / "tasks"), "--num_fewshot", "1",
        "--limit", "2", "--batch_size", "4", "--device", "cpu", "--output_path", str(tmp_path / "out"),
    ]
    code = "import site, sys; site.addsitedir(sys.argv[1]); sys.argv = sys.argv[2:];" \
           "from lm_eval.__main__ import cli_evaluate; cli_evaluate()"
    out = subprocess.run([sys.executable, "-c", code, str(site_dir), *args], capture_output=True, text=True,
                         timeout=300, env=_env(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [results_file] = list((tmp_path / "out").rglob("results_*.json"))
    results = json.loads(results_file.read_text())["results"]
    for name in ("gsm8k", "mmlu", "minerva_math", "gpqa_main_n_shot"):
        assert name in results, sorted(results)
    assert 0.0 <= results["mmlu"]["acc,none"] <= 1.0
    assert "exact_match,strict-match" in results["gsm8k"]


@pytest.mark.slow
def test_lm_eval_cli_reports_bad_model_args_in_one_line(tmp_path, tiny_path):
    """lm-eval's CLI would print a 40-60 line traceback; the mmada model makes it one line and exit 2."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    install(site_dir)
    export_tasks(tmp_path / "tasks", ["gsm8k"], SAMPLE_DATA_DIR, num_fewshot=1)
    args = ["lm_eval", "--model", "mmada", "--model_args", f"pretrained={tiny_path},gen_length=30,block_length=8",
            "--tasks", "gsm8k", "--include_path", str(tmp_path / "tasks"), "--device", "cpu"]
    code = "import site, sys; site.addsitedir(sys.argv[1]); sys.argv = sys.argv[2:];" \
           "from lm_eval.__main__ import cli_evaluate; cli_evaluate()"
    out = subprocess.run([sys.executable, "-c", code, str(site_dir), *args], capture_output=True, text=True,
                         timeout=300, env=_env(tmp_path), cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert errors == ["lm_eval --model mmada: error: gen_length=30 is not a multiple of block_length=8: nearest "
                      "valid block_length is 6 or 10 (divisors of 30), or keep block_length=8 with gen_length 24 or 32"]
    overrides = [line for line in out.stderr.splitlines() if "overrides existing task" in line]
    assert len(overrides) <= 1  # the exported folder's duplicates are one notice, not fifteen


def test_logged_members_of_a_batch_are_never_recomputed(tmp_path):
    prompts = ["aaaa", "bb", "c"]
    MMaDALM(adapter=SpyAdapter({}), store=RequestLog(tmp_path), batch_size=1, progress=False).generate_until(
        [_gen(prompts[1], 1)])
    spy = SpyAdapter({})
    lm = MMaDALM(adapter=spy, store=RequestLog(tmp_path), batch_size=3, progress=False)  # another batch size
    lm.generate_until([_gen(p, i) for i, p in enumerate(prompts)])
    assert spy.batches == [["aaaa", "c"]] and lm.engine.counts == {"from_log": 1, "computed": 2}
    assert len((tmp_path / "rank0.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow
def test_a_plain_wheel_install_ships_the_registration_hook(tmp_path):
    """`pip install mmada-bench` (a wheel) must be enough for `lm_eval --model mmada`: the .pth is in it."""
    import zipfile

    root = Path(__file__).resolve().parents[2]
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(root),
                            "-w", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = list(tmp_path.glob("mmada_bench-*.whl"))
    from mmada_bench.backends.lm_eval.plugin import PTH_LINE

    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(PTH_NAME).decode() == PTH_LINE
        assert "mmada_bench/backends/lm_eval/hook.py" in archive.namelist()
