"""Which judge a targets measurement uses: a rebuilt assets folder is judged by its own judge (trained
on its own tokenizer's reconstructions), unless the environment names one."""

from __future__ import annotations

from mmada_bench.tasks.t2i.easyvqa_t2i import JUDGE_ENV
from mmada_bench.toy.targets import judge_folder


def test_rebuilt_assets_are_judged_by_their_own_judge(tmp_path, monkeypatch):
    monkeypatch.delenv(JUDGE_ENV, raising=False)
    (tmp_path / "judge").mkdir()
    (tmp_path / "judge" / "config.json").write_text("{}")
    assert judge_folder(tmp_path) == tmp_path / "judge"


def test_the_environment_and_the_committed_default_win_where_they_should(tmp_path, monkeypatch):
    monkeypatch.delenv(JUDGE_ENV, raising=False)
    assert judge_folder(None) is None  # committed presets: the task's default judge
    assert judge_folder(tmp_path) is None  # a folder without a judge: the task's default judge
    (tmp_path / "judge").mkdir()
    (tmp_path / "judge" / "config.json").write_text("{}")
    monkeypatch.setenv(JUDGE_ENV, "/elsewhere")
    assert judge_folder(tmp_path) is None  # the user's choice is kept
