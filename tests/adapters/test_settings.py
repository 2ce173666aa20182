"""Sampler settings: typed parsing from the command line, refusal of unknown or invalid values."""

from __future__ import annotations

import pytest

from mmada_bench.adapters.settings import ImageSettings, TextSettings, parse_assignments
from mmada_bench.errors import ConfigError


def test_string_overrides_are_converted_by_field_type():
    s = TextSettings().updated(parse_assignments("steps=128, gen_length=128,temperature=0.5,chat=true,threshold=0.9"))
    assert (s.steps, s.gen_length, s.temperature, s.chat, s.threshold) == (128, 128, 0.5, True, 0.9)
    assert TextSettings(threshold=0.9).updated({"threshold": "none"}).threshold is None
    assert TextSettings().updated({"cache": "dual"}).cache == "dual"
    assert not s.deterministic and TextSettings().deterministic


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stepz=3", "unknown sampler setting 'stepz'"),
        ("steps=abc", "steps: cannot use 'abc'"),
        ("steps=1.5", "steps: cannot use"),
        ("chat=maybe", "chat: cannot use 'maybe'"),
        ("steps=0", "steps must be a positive integer"),
        ("remasking=top", "remasking must be one of"),
        ("mc_num=10,mc_batch=4", "mc_num=10 must be a multiple of mc_batch=4"),
        ("cache=full", "cache must be one of"),
        ("threshold=1.5", "threshold must be in"),
        ("steps", "must look like name=value"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(text, message):
    with pytest.raises(ConfigError, match=message):
        TextSettings().updated(parse_assignments(text))


def test_resume_relevant_fields_per_method():
    s = TextSettings()
    assert "steps" in s.generation_dict() and "mc_num" not in s.generation_dict()
    assert set(s.loglikelihood_dict()) == {"mc_num", "mc_batch", "cfg", "max_length"}
    assert TextSettings(mc_num=1, mc_batch=32).effective_mc_batch == 1
    assert ImageSettings().updated({"timesteps": "12"}).timesteps == 12
