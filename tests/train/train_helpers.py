"""Small training configs over tests/fixtures/train for the trainer tests (tiny preset, CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "train"


def stage1_dict(output_dir: Path, **sections: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "stage": "stage1",
        "model": "tiny",
        "output_dir": str(output_dir),
        "seed": 7,
        "data": {
            "t2i": [{"path": str(FIXTURES / "captions.jsonl"), "format": "caption_jsonl"}],
            "lm": [{"path": str(FIXTURES / "text.jsonl"), "format": "text_jsonl"}],
            "mmu": [
                {"path": str(FIXTURES / "captions.jsonl"), "format": "caption_jsonl", "ratio": 0.5},
                {"path": str(FIXTURES / "llava.json"), "format": "llava_json", "ratio": 0.5},
            ],
        },
        "batch": {"t2i": 2, "lm": 2, "mmu": 2},
        "seq": {"max_text_len": 24},
        "loss": {"coeff_t2i": 1.0, "coeff_lm": 0.5, "coeff_mmu": 0.5},
        "optim": {"lr": 1e-3, "warmup_steps": 2, "min_lr_scale": 0.1, "max_steps": 20, "grad_accum": 1},
        "runtime": {"save_every": 1000, "progress_bar": False},
    }
    for name, values in sections.items():
        if isinstance(values, dict) and isinstance(config.get(name), dict):
            config[name] = {**config[name], **values}
        else:
            config[name] = values
    return config


def stage2_dict(output_dir: Path, **sections: Any) -> dict[str, Any]:
    data = {
        "t2i": [{"path": str(FIXTURES / "captions.jsonl"), "format": "caption_jsonl"}],
        "lm": [{"path": str(FIXTURES / "text_cot.jsonl"), "format": "chat_jsonl", "cot": True}],
        "mmu": [
            {"path": str(FIXTURES / "mmu_cot.jsonl"), "format": "chat_jsonl", "cot": True, "ratio": 0.5},
            {"path": str(FIXTURES / "llava.json"), "format": "llava_json", "ratio": 0.5},
        ],
    }
    base = stage1_dict(output_dir, stage="stage2", data=data, seq={"max_text_len": 48}, batch={"t2i": 1, "lm": 2, "mmu": 1})
    return stage1_dict(output_dir, **{**{k: base[k] for k in ("stage", "data", "seq", "batch")}, **sections})


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
