"""``easyvqa_t2i``: draw "a red circle", judged by the toy judge with GenEval's colour + object rule.

Prompts are the toy world's captions of the 1,000 easy-VQA test images (one row per image, in image-id
order, so ``--limit N`` takes a fixed, roughly balanced subset); ``--sample-data`` takes one row per
distinct caption (24 = 8 colours x 3 shapes). They are committed beside the judge
(``mmada_bench/model/assets/toy/easyvqa_t2i/prompts.jsonl``, derived by :mod:`mmada_bench.toy.world`,
which sits above the task layer), so no ``--data-dir`` is needed; ``<data-dir>/easyvqa_t2i/prompts.jsonl``
replaces them when present.

Each generated image is judged by :class:`~mmada_bench.scorers.toy_judge.ToyJudge` (the committed one,
or the folder in ``$MMADA_BENCH_TOY_JUDGE``): ``shape`` and ``color`` say whether each head names the
prompted value, and ``both`` is GenEval's verdict (:func:`~mmada_bench.scorers.geneval.evaluate_image`
with the judge as detector and colour classifier) on the prompt ``include: [{class: shape, count: 1,
color: colour}]``. Chance is 1/3 (shape), 1/8 (colour), 1/24 (both). Breakdowns per prompted colour and
per prompted shape come with every run. The judge's own accuracy on real test images is in its folder
(``judge.json``) and bounds how far these numbers can be trusted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.hashing import file_sha256
from mmada_bench.results.schema import MetricValue, SampleRecord
from mmada_bench.scorers.geneval import GenEvalPrompt, IncludeClause, evaluate_image
from mmada_bench.scorers.toy_judge import CONFIG_NAME, DEFAULT_JUDGE, WEIGHTS_NAME, ToyJudge, ToyJudgeConfig
from mmada_bench.tasks.native import LoadedRows, ScoredRow, group_mean, mean_metrics
from mmada_bench.tasks.spec import TaskSpec
from mmada_bench.tasks.t2i.benchmarks import T2ITask, _image_info

#: Environment variable naming another judge folder (``config.json`` + ``model.safetensors``).
JUDGE_ENV = "MMADA_BENCH_TOY_JUDGE"
METRICS = ("both", "color", "shape")
PROMPTS_NAME = "prompts.jsonl"
#: The test captions, written by ``python -m mmada_bench.toy.build --stage judge`` next to the judge.
DEFAULT_PROMPTS = DEFAULT_JUDGE.parent / "easyvqa_t2i" / PROMPTS_NAME


@dataclass(frozen=True)
class CaptionRow:
    """One test image's caption; ``id`` is the easy-VQA image id."""

    id: str
    prompt: str
    shape: str
    color: str

    def geneval_prompt(self) -> GenEvalPrompt:
        """GenEval's "colors" prompt for this caption (easy-VQA colours, so not via the COCO name checks)."""
        raw = {"tag": "colors", "prompt": self.prompt,
               "include": [{"class": self.shape, "count": 1, "color": self.color}]}
        return GenEvalPrompt("colors", self.prompt, (IncludeClause(self.shape, 1, self.color),), (), raw)


def read_caption_rows(path: Path, sample_data: bool) -> list[CaptionRow]:
    """Rows of ``prompts.jsonl`` (``{"id", "prompt", "shape", "color"}`` per line); for ``sample_data``
    only the first row of each distinct prompt. Errors name the file, line and field."""
    rows, seen = [], set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise DataError(f"{where}: expected a JSON object")
        for field in ("id", "prompt", "shape", "color"):
            if not isinstance(raw.get(field), str) or not raw[field]:
                raise DataError(f"{where}: field {field!r} missing or not a non-empty string")
        if raw["prompt"] != f"a {raw['color']} {raw['shape']}":
            raise DataError(f"{where}: field 'prompt' {raw['prompt']!r} does not say 'a {raw['color']} {raw['shape']}'")
        if sample_data and raw["prompt"] in seen:
            continue
        seen.add(raw["prompt"])
        rows.append(CaptionRow(raw["id"], raw["prompt"], raw["shape"], raw["color"]))
    if not rows:
        raise DataError(f"{path}: no prompts")
    return rows


def prompt_file(data_root: Path | None) -> Path:
    """``<data-dir>/easyvqa_t2i/prompts.jsonl`` when present, else the committed test captions."""
    if data_root is not None and (Path(data_root) / "easyvqa_t2i" / PROMPTS_NAME).is_file():
        return Path(data_root) / "easyvqa_t2i" / PROMPTS_NAME
    return DEFAULT_PROMPTS


class EasyVQAT2ITask(T2ITask):
    """Toy-world text-to-image, judged by the toy judge."""

    name = "easyvqa_t2i"
    metric = "both"
    rule = ("toy judge (mmada_bench.scorers.toy_judge) as GenEval detector + colour classifier; "
            "both = GenEval colour+object verdict, color/shape = each head vs the prompt; mean over images")

    def load(self, data_root: Path | None, sample_data: bool) -> LoadedRows:
        env = os.environ.get(JUDGE_ENV)
        folder = Path(env) if env else DEFAULT_JUDGE
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (folder / name).is_file():
                hint = f"(set {JUDGE_ENV}=FOLDER or rebuild: python -m mmada_bench.toy.build --stage judge)"
                raise ConfigError(f"task {self.name}: toy judge file {folder / name} not found {hint}")
        self.set_scorer_source(folder)
        path = prompt_file(data_root)
        if not path.is_file():
            raise ConfigError(f"task {self.name}: prompt file {path} not found "
                              "(rebuild: python -m mmada_bench.toy.build --stage judge)")
        rows = read_caption_rows(path, sample_data)
        config = ToyJudgeConfig.from_dict(json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8")),
                                          str(folder / CONFIG_NAME))
        for row in rows:  # a colour the judge cannot name would score 0 without saying why
            if row.shape not in config.shapes or row.color not in config.colors:
                raise DataError(f"{path}: row id {row.id}: {row.prompt!r} names a shape or colour the judge does "
                                f"not know (shapes {list(config.shapes)}, colours {list(config.colors)})")
        return LoadedRows(rows, str(path),
                          {path.name: file_sha256(path), "judge:" + str(folder): file_sha256(folder / WEIGHTS_NAME)})

    def request_content(self, row: CaptionRow, image_index: int) -> dict[str, Any]:
        """Captions repeat (24 distinct ones over 1,000 test images), so each row is its own request:
        keyed by prompt alone, the test set would be 24 images, each counted once per repeat."""
        return {**super().request_content(row, image_index), "image_id": row.id}

    def build_scorer(self, source: Path) -> ToyJudge:
        return ToyJudge.from_pretrained(source)

    def score(self, row: CaptionRow, results: list[Any]) -> ScoredRow:
        judge = self.scorer()
        images = [r.image.convert("RGB") for r in results]
        prompt = row.geneval_prompt()
        per_image = []
        for k, (image, verdict) in enumerate(zip(images, judge.judge(images), strict=True)):
            decided = evaluate_image(image, prompt, judge, judge, filename=f"{row.id}/samples/{k:04d}.png")
            per_image.append({"shape": verdict.shape, "color": verdict.color,
                              "shape_ok": verdict.shape == row.shape, "color_ok": verdict.color == row.color,
                              "both_ok": bool(decided["correct"]), "reason": decided["reason"]})
        n = len(per_image)
        metrics = {"both": sum(p["both_ok"] for p in per_image) / n, "color": sum(p["color_ok"] for p in per_image) / n,
                   "shape": sum(p["shape_ok"] for p in per_image) / n}
        return ScoredRow(prompt=row.prompt, target={"shape": row.shape, "color": row.color},
                         predictions={"images": [_image_info(r) for r in results]}, metrics=metrics,
                         doc={"id": row.id, "prompt": row.prompt, "shape": row.shape, "color": row.color},
                         extra={"judged": per_image})

    def metrics_from(self, records: Sequence[SampleRecord], iters: int) -> dict[str, MetricValue]:
        """Means over rows (every row has the same number of images), then ``both`` per prompted colour
        and per prompted shape, ``color`` per colour and ``shape`` per shape."""
        out = dict(mean_metrics(records, iters, self.rule))
        for metric, by in (("both", "color"), ("both", "shape"), ("color", "color"), ("shape", "shape")):
            out.update(group_mean(records, metric, by, iters, self.rule))
        return out


SPEC = TaskSpec(
    name="easyvqa_t2i", modality="t2i",
    description="toy-world text-to-image ('a red circle'), colour/shape/both judged by the toy judge",
    source="easy-vqa 1.0 test images (PyPI, MIT): captions derived by mmada_bench.toy.world",
    splits={"eval": "test"}, columns=("prompt", "shape", "color"), metrics=METRICS, num_fewshot=0,
    sampler={"timesteps": 16}, backend="native", variant="toy world + toy judge (GenEval colour rule)",
    why=("the one t2i benchmark that installs offline and that a tiny trained model can pass: judged by a "
         "classifier whose own accuracy is measured (judge.json); 16 steps as the toy targets state"),
    impl=EasyVQAT2ITask(), requires=("generate_images",),
)
