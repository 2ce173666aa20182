"""Write the toy world in the formats the trainer and the benchmarks read.

One folder, every file derived deterministically from the easy-vqa wheel (same bytes on every run):

```
OUT/
  images/{train,test}/<id>.png     the wheel's PNGs, copied byte for byte
  captions_{split}.jsonl           {"image", "caption", "image_id"}     (trainer format caption_jsonl)
  vqa_{split}.json                 LLaVA list: {"id", "image", "conversations"} (llava_json)
  vqa_shape_{split}.json           the same rows, shape questions only (stage 3's questions)
  vqa_cot_{split}.jsonl            {"image", "question", "answer": "<think>...</think> red"} (chat_jsonl)
  toy_count/{train,test}.jsonl     {"question", "answer": "... #### N"}  (the shipped ``toy_count`` rows)
  text_{split}.jsonl               {"prompt": "Question: ...\nAnswer:", "completion": " ..."} (text_jsonl:
                                   lm-eval's 0-shot GSM8K prompt, and its target after the " " delimiter)
  text_pretrain.jsonl              the same form, 5,909 train problems (the train stream drawn 6,000
                                   deep, test questions dropped): the toy's text pretraining
  easyvqa_t2i/prompts.jsonl        {"id", "prompt", "shape", "color"} of the test images (easyvqa_t2i)
  world.json                       counts, label sources, pixel-rule agreement, sha256 of every file
```

Image paths are relative to the file that names them (the trainer's default ``image_root``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mmada_bench.hashing import file_sha256
from mmada_bench.toy.arithmetic import pretraining_problems, shape_problems
from mmada_bench.toy.world import SHAPES, SPLITS, ToyImage, cot_answer, load_world, world_stats


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def _json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def image_name(item: ToyImage) -> str:
    return f"images/{item.split}/{item.image_id}.png"


def caption_rows(world: tuple[ToyImage, ...]) -> list[dict[str, Any]]:
    return [{"image": image_name(i), "caption": i.caption, "image_id": i.image_id} for i in world]


def llava_rows(world: tuple[ToyImage, ...]) -> list[dict[str, Any]]:
    """One LLaVA row per question, in the wheel's question order within each image."""
    rows = []
    for item in world:
        for k, (question, answer) in enumerate(item.questions):
            rows.append({
                "id": f"{item.split}-{item.image_id}-{k}", "image": image_name(item),
                "conversations": [{"from": "human", "value": f"<image>\n{question}"},
                                  {"from": "gpt", "value": answer}],
            })  # fmt: skip
    return rows


def shape_question_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The LLaVA rows whose answer is a shape: the only easy-VQA questions on which RL still has
    something to teach the toy model. Colour it reads off the image for every question (no reward
    spread, no update), and yes/no it answers from the template's wording alone, so a reward on one
    image's yes/no question only pushes that template's answer one way or the other: in stage 3 that
    flipped a template and cost 2 points of yes/no (README, "the toy world")."""
    return [row for row in rows if row["conversations"][1]["value"] in SHAPES]


def cot_rows(world: tuple[ToyImage, ...]) -> list[dict[str, Any]]:
    return [{"image": image_name(item), "question": question, "answer": cot_answer(item.shape, item.color, answer)}
            for item in world for question, answer in item.questions]


def text_rows(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counting problems as prompt + completion rows, exactly as lm-eval's 0-shot GSM8K prompt and target
    read. The prompt stays clean in training: as plain text (every position noised) the model spent its
    loss on re-writing the question and the end-of-text padding, and after stage 1 it answered 4 % of the
    test problems, from templates with the numbers garbled."""
    return [{"prompt": f"Question: {row['question']}\nAnswer:", "completion": f" {row['answer']}"}
            for row in problems]


def t2i_prompt_rows(world: tuple[ToyImage, ...]) -> list[dict[str, Any]]:
    """The ``easyvqa_t2i`` task's prompts: one per image, with the labels the judge is scored against."""
    return [{"id": str(i.image_id), "prompt": i.caption, "shape": i.shape, "color": i.color} for i in world]


def write_t2i_prompts(path: Path) -> Path:
    """``prompts.jsonl`` of the test split for ``easyvqa_t2i``."""
    _jsonl(path, t2i_prompt_rows(load_world("test")))
    return path


def export_world(out: Path, progress: bool = True, splits: tuple[str, ...] = SPLITS) -> dict[str, Any]:
    """Write every toy-world file of ``splits`` under ``out`` (see the module docstring); returns
    ``world.json``'s content."""
    out = Path(out)
    summary: dict[str, Any] = {"source": "easy-vqa 1.0 (PyPI, MIT)", "splits": {}}
    for split in splits:
        world = load_world(split)
        for item in tqdm(world, desc=f"copy {split} images", disable=not progress, leave=False):
            target = out / image_name(item)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.path, target)
        _jsonl(out / f"captions_{split}.jsonl", caption_rows(world))
        questions = llava_rows(world)
        _json(out / f"vqa_{split}.json", questions)
        _json(out / f"vqa_shape_{split}.json", shape_question_rows(questions))
        _jsonl(out / f"vqa_cot_{split}.jsonl", cot_rows(world))
        problems = shape_problems(split)
        _jsonl(out / "toy_count" / f"{split}.jsonl", problems)
        _jsonl(out / f"text_{split}.jsonl", text_rows(problems))
        if split == "train":
            _jsonl(out / "text_pretrain.jsonl", text_rows(pretraining_problems()))
        summary["splits"][split] = world_stats(split)
    write_t2i_prompts(out / "easyvqa_t2i" / "prompts.jsonl")
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "world.json"
                   and "images" not in p.relative_to(out).parts)
    summary["files_sha256"] = {str(p.relative_to(out)): file_sha256(p) for p in files}
    _json(out / "world.json", summary)
    return summary
