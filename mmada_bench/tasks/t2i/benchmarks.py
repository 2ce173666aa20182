"""Text-to-image tasks: CLIPScore, ImageReward and GenEval, as native tasks.

Flow per task: ``load`` reads the prompts and checks that the scorer's files exist (so a missing
scorer fails in one line before the model under test loads); ``requests`` asks for one image per
(prompt, image index), so every image has its own seed, its own log line and its own PNG artifact,
and an interrupted run resumes image by image; ``score`` scores one prompt's images with a scorer
model that is loaded once per task object, on first use (a resumed run whose images are all logged
still scores them, but never loads the model under test).

The model under test and the scorers never meet: scorers only see PIL images and prompt strings.

Where the images are: the request engine stores each image and hands back its path relative to the
run folder (``ImageResult.artifact``); ``score`` records it as ``predictions["images"][k]["path"]``,
so the engine's naming rule is the only one. Writing files outside the record (contact sheet, GenEval's folder layout) needs the run
folder, which a native task is not told: they are written by :func:`write_task_outputs`, called by
``write_outputs`` when the run finishes the task, and callable on any finished run folder.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmada_bench.adapters.base import ImageRequest
from mmada_bench.adapters.settings import ImageSettings, Settings
from mmada_bench.errors import ConfigError, DataError
from mmada_bench.hashing import bytes_sha256, file_sha256
from mmada_bench.results.schema import MetricValue, SampleRecord
from mmada_bench.scorers.bootstrap import bootstrap_method, bootstrap_stderr
from mmada_bench.scorers.geneval import (
    ColorClassifier,
    Detector,
    GenEvalOptions,
    GenEvalPrompt,
    read_metadata_jsonl,
)
from mmada_bench.tasks.native import LoadedRows, NativeRequest, NativeTask, ScoredRow
from mmada_bench.tasks.spec import TaskSpec
from mmada_bench.tasks.t2i.contact_sheet import write_contact_sheet
from mmada_bench.tasks.t2i.prompts import (
    GENEVAL_METADATA,
    find_prompt_file,
    read_prompts,
    task_folder,
)

#: Environment variables naming scorer model folders (they win over ``<data-dir>/<task>/...``).
CLIP_ENV = "MMADA_BENCH_CLIP"
IMAGEREWARD_ENV = "MMADA_BENCH_IMAGEREWARD"
#: Optional JSON file in the ImageReward folder with constructor options (``{"vit_num_heads": 3}``),
#: for checkpoints whose ViT does not have the standard width // 64 heads.
IMAGEREWARD_OPTIONS = "scorer.json"
#: Files the ImageReward folder must hold (the official release's names).
IMAGEREWARD_FILES = ("ImageReward.pt", "med_config.json")

#: GenEval's in-project evaluator: detector and colour-CLIP folders, evaluator options (``k=v,...``).
GENEVAL_DETECTOR_ENV = "MMADA_BENCH_GENEVAL_DETECTOR"
GENEVAL_CLIP_ENV = "MMADA_BENCH_GENEVAL_CLIP"
GENEVAL_OPTIONS_ENV = "MMADA_BENCH_GENEVAL_OPTIONS"

CONTACT_SHEET = "contact_sheet_{task}.png"
GENEVAL_EXPORT = "geneval"


def _scorer_device() -> str:
    import torch

    return os.environ.get("MMADA_BENCH_SCORER_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def _image_info(result: Any) -> dict[str, Any]:
    """What a record keeps of an image: the sha256 of its PNG encoding, its size, and where the request
    engine stored it (relative to the run folder; absent when the task runs without a request log).

    Encoded the way the request engine stores artifacts (PIL's default PNG settings), so the hash
    equals the artifact's.
    """
    buffer = io.BytesIO()
    result.image.save(buffer, format="PNG")
    info = {"sha256": bytes_sha256(buffer.getvalue()), "size": list(result.image.size)}
    if getattr(result, "artifact", None):
        info["path"] = result.artifact
    return info


def _as_dict(record: SampleRecord | Mapping[str, Any]) -> dict[str, Any]:
    return record.to_dict() if isinstance(record, SampleRecord) else dict(record)


class T2ITask(NativeTask):
    """Shared shape: prompts in, ``images_per_prompt`` images per prompt out, one scorer per task."""

    name = ""
    metric = ""

    def __init__(self) -> None:
        #: The run folder, when whoever runs the task knows it: enables the contact sheet and exports.
        self._scorer: Any = None
        self._scorer_source: Any = None

    # -- NativeTask --------------------------------------------------------------------------------
    def doc_id(self, row: Any) -> str:
        return row.id

    def requests(self, row: Any, settings: Settings) -> list[NativeRequest]:
        count = settings.images_per_prompt if isinstance(settings, ImageSettings) else 1
        return [NativeRequest(method="generate_images", request=ImageRequest(row.prompt),
                              content=self.request_content(row, k), length=len(row.prompt))
                for k in range(count)]

    def request_content(self, row: Any, image_index: int) -> dict[str, Any]:
        """What identifies an image request (its key, hence its seed and its log line). GenEval-style
        prompt files hold each prompt once, so the prompt and the image index are enough; a task whose
        rows repeat prompts must add the row, or its repeats would all be one image."""
        return {"prompt": row.prompt, "image_index": image_index}

    def aggregate(self, records: Sequence[SampleRecord], bootstrap_iters: int) -> dict[str, MetricValue]:
        return self.metrics_from(records, bootstrap_iters)

    def write_outputs(self, records: Sequence[SampleRecord], folder: Path) -> None:
        """The contact sheet (and GenEval's folder export) beside the run's results."""
        write_task_outputs(self, folder, records)

    # -- per task ------------------------------------------------------------------------------------
    def metrics_from(self, records: Sequence[SampleRecord], iters: int) -> dict[str, MetricValue]:
        """Mean over every image's score (not over prompts), with a bootstrap stderr over images."""
        values = [float(v) for r in records for v in r.extra.get("per_image", [])]
        if not values:
            return {self.metric: MetricValue(None, rule=self.rule, extra={"reason": "no scored images"})}
        return {self.metric: MetricValue(self.corpus_value(values), bootstrap_stderr(values, iters),
                                         bootstrap_method(iters), self.rule, {"n_images": len(values)})}

    def corpus_value(self, values: list[float]) -> float:
        return sum(values) / len(values)

    def scorer(self) -> Any:
        """The scorer model, loaded on first use and kept for the life of the task object."""
        if self._scorer is None:
            self._scorer = self.build_scorer(self._scorer_source)
        return self._scorer

    def build_scorer(self, source: Any) -> Any:
        raise NotImplementedError

    def export(self, output_dir: Path, per_record: Sequence[tuple[Mapping[str, Any], list[Path]]]) -> dict[str, str]:
        """The benchmark's own folder layout beside the run (GenEval's, WISE's); default none."""
        return {}

    def score_images(self, prompt: str, images: list[Any]) -> list[float]:
        raise NotImplementedError

    def set_scorer_source(self, source: Any) -> None:
        """Remember the checked scorer location; a different one drops the cached model."""
        if source != self._scorer_source:
            self._scorer, self._scorer_source = None, source

    def score(self, row: Any, results: list[Any]) -> ScoredRow:
        images = [r.image for r in results]
        values = self.score_images(row.prompt, images)
        return ScoredRow(
            prompt=row.prompt, target=None, predictions={"images": [_image_info(r) for r in results]},
            metrics={self.metric: sum(values) / len(values)}, doc={"id": row.id, "prompt": row.prompt},
            extra={"per_image": values},
        )


def _prompt_rows(task: str, data_root: Path | None) -> LoadedRows:
    path = find_prompt_file(data_root, task)
    return LoadedRows(read_prompts(path), str(path), {path.name: file_sha256(path)})


class ClipScoreTask(T2ITask):
    """CLIP Score (torchmetrics): ``100 * cos(image, prompt)`` per image, corpus value max(mean, 0)."""

    name = "clipscore"
    metric = "clip_score"
    rule = "torchmetrics CLIPScore: max(mean over images of 100*cos(image, prompt), 0)"

    def load(self, data_root: Path | None, sample_data: bool) -> LoadedRows:
        from mmada_bench.scorers.clipscore import _check_folder

        loaded = _prompt_rows(self.name, data_root)
        env = os.environ.get(CLIP_ENV)
        folder = Path(env) if env else task_folder(data_root, self.name) / "clip"
        if not env and not folder.is_dir():
            raise ConfigError(f"task clipscore: no CLIP scorer model: set {CLIP_ENV}=FOLDER or put it in {folder}")
        _check_folder(folder)
        self.set_scorer_source(folder)
        loaded.files_sha256["scorer:" + str(folder)] = _folder_weights_sha(folder, ("model.safetensors",
                                                                                    "pytorch_model.bin"))
        return loaded

    def build_scorer(self, source: Path) -> Any:
        from mmada_bench.scorers.clipscore import ClipScorer

        return ClipScorer(source, device=_scorer_device())

    def score_images(self, prompt: str, images: list[Any]) -> list[float]:
        return self.scorer().score(images, [prompt] * len(images))

    def corpus_value(self, values: list[float]) -> float:
        from mmada_bench.scorers.clipscore import corpus_clip_score

        return corpus_clip_score(values)


class ImageRewardTask(T2ITask):
    """ImageReward (THUDM): standardised reward per image, mean over images."""

    name = "imagereward"
    metric = "image_reward"
    rule = "ImageReward v1.0 score(prompt, image), mean over images"

    def load(self, data_root: Path | None, sample_data: bool) -> LoadedRows:
        loaded = _prompt_rows(self.name, data_root)
        env = os.environ.get(IMAGEREWARD_ENV)
        folder = Path(env) if env else task_folder(data_root, self.name) / "model"
        where = f"set {IMAGEREWARD_ENV}=FOLDER or put it in {task_folder(data_root, self.name) / 'model'}"
        if not folder.is_dir():
            raise ConfigError(f"task imagereward: ImageReward folder {folder} does not exist ({where})")
        for name in IMAGEREWARD_FILES:
            if not (folder / name).is_file():
                raise ConfigError(f"task imagereward: ImageReward folder {folder} is missing {name}")
        if not (folder / "tokenizer").is_dir():
            raise ConfigError(f"task imagereward: ImageReward folder {folder} is missing tokenizer/ "
                              "(a bert-base-uncased tokenizer folder)")
        options: dict[str, Any] = {}
        if (folder / IMAGEREWARD_OPTIONS).is_file():
            try:
                options = json.loads((folder / IMAGEREWARD_OPTIONS).read_text())
            except ValueError as exc:
                raise ConfigError(f"task imagereward: {folder / IMAGEREWARD_OPTIONS} is not valid JSON: {exc}") from None
            if not isinstance(options, dict) or set(options) - {"vit_num_heads"}:
                raise ConfigError(f"task imagereward: {folder / IMAGEREWARD_OPTIONS} may only set vit_num_heads")
        self.set_scorer_source((folder, options.get("vit_num_heads")))
        loaded.files_sha256["scorer:" + str(folder)] = _folder_weights_sha(folder, ("ImageReward.pt",))
        return loaded

    def build_scorer(self, source: tuple[Path, int | None]) -> Any:
        from mmada_bench.scorers.imagereward import ImageRewardScorer

        folder, heads = source
        return ImageRewardScorer(folder / "ImageReward.pt", folder / "med_config.json", folder / "tokenizer",
                                 device=_scorer_device(), vit_num_heads=heads)

    def score_images(self, prompt: str, images: list[Any]) -> list[float]:
        return self.scorer().score(prompt, images)


def _folder_weights_sha(folder: Path, names: tuple[str, ...]) -> str:
    """sha256 of the scorer's weights file: the scorer decides the number as much as the model does."""
    for name in names:
        if (folder / name).is_file():
            return file_sha256(folder / name)
    return ""


@dataclass(frozen=True)
class GenEvalRow:
    """One metadata line; ``id`` is its 5-digit index, the folder name GenEval's layout gives it."""

    index: int
    meta: GenEvalPrompt

    @property
    def id(self) -> str:
        return f"{self.index:05d}"

    @property
    def prompt(self) -> str:
        return self.meta.prompt


class GenEvalTask(T2ITask):
    """GenEval: object detection + fixed rules per image; overall = mean of the per-tag accuracies.

    The in-project evaluator is a transformers Mask2Former (the official detector's model family) plus
    CLIP colour, from local folders: ``$MMADA_BENCH_GENEVAL_DETECTOR`` or ``<data-dir>/geneval/detector/``,
    and ``$MMADA_BENCH_GENEVAL_CLIP`` (else ``$MMADA_BENCH_CLIP``) or ``<data-dir>/geneval/clip/``;
    ``$MMADA_BENCH_GENEVAL_OPTIONS`` (``threshold=0.3,counting_threshold=0.9``) overrides GenEval's
    evaluator options. Any other :class:`~mmada_bench.scorers.geneval.Detector` can be set as
    ``task.detector``. Without a detector the images are still made and exported in GenEval's layout
    (``<output>/geneval/``, where the official evaluator runs unchanged) and the metrics are reported
    as unavailable.
    """

    name = "geneval"
    metric = "geneval_overall"
    rule = "GenEval (evaluate_images.py + summary_scores.py rules), overall = mean over tags"

    def __init__(self) -> None:
        super().__init__()
        self.detector: Detector | None = None
        self.color_classifier: ColorClassifier | None = None
        self.options = GenEvalOptions()
        self._folders: tuple[Path, Path] | None = None

    def load(self, data_root: Path | None, sample_data: bool) -> LoadedRows:
        from mmada_bench.scorers.clipscore import _check_folder
        from mmada_bench.scorers.geneval_detector import check_detector_folder

        path = task_folder(data_root, self.name) / GENEVAL_METADATA
        rows = [GenEvalRow(i, meta) for i, meta in enumerate(read_metadata_jsonl(path))]
        loaded = LoadedRows(rows, str(path), {path.name: file_sha256(path)})
        self.options = _geneval_options(os.environ.get(GENEVAL_OPTIONS_ENV, ""))
        env = os.environ.get(GENEVAL_DETECTOR_ENV)
        detector = Path(env) if env else task_folder(data_root, self.name) / "detector"
        if not env and not detector.is_dir():
            return loaded  # no in-project evaluator: images and GenEval's export only
        check_detector_folder(detector)
        clip_env = os.environ.get(GENEVAL_CLIP_ENV) or os.environ.get(CLIP_ENV)
        clip = Path(clip_env) if clip_env else task_folder(data_root, self.name) / "clip"
        if not clip.is_dir():
            raise ConfigError(f"task geneval: the detector {detector} needs a CLIP colour model: set "
                              f"{GENEVAL_CLIP_ENV}=FOLDER or put it in {clip}")
        _check_folder(clip)
        if (detector, clip) != self._folders:
            self.detector, self.color_classifier, self._folders = None, None, (detector, clip)
        loaded.files_sha256["detector:" + str(detector)] = _folder_weights_sha(detector, ("model.safetensors",
                                                                                          "pytorch_model.bin"))
        loaded.files_sha256["scorer:" + str(clip)] = _folder_weights_sha(clip, ("model.safetensors",
                                                                                "pytorch_model.bin"))
        return loaded

    def _ensure_detector(self) -> None:
        """Load the configured Mask2Former + CLIP on first use (never when every image is already scored)."""
        if self.detector is None and self._folders is not None:
            from mmada_bench.scorers.geneval_detector import load_geneval_scorers

            self.detector, self.color_classifier = load_geneval_scorers(*self._folders, device=_scorer_device())

    def export(self, output_dir: Path, per_record: Sequence[tuple[Mapping[str, Any], list[Path]]]) -> dict[str, str]:
        return {"geneval": str(export_geneval(output_dir / GENEVAL_EXPORT, per_record))}

    def score(self, row: GenEvalRow, results: list[Any]) -> ScoredRow:
        from mmada_bench.scorers.geneval import evaluate_image

        images = [r.image for r in results]
        doc = {"id": row.id, "tag": row.meta.tag, "metadata": row.meta.raw}
        scored = ScoredRow(prompt=row.prompt, target=row.meta.raw,
                           predictions={"images": [_image_info(r) for r in results]}, metrics={}, doc=doc)
        self._ensure_detector()
        if self.detector is None:
            return scored
        rows = [evaluate_image(im, row.meta, self.detector, self.color_classifier, self.options,
                               filename=f"{row.id}/samples/{k:04d}.png") for k, im in enumerate(images)]
        scored.metrics = {"correct": sum(r["correct"] for r in rows) / len(rows)}
        scored.extra = {"geneval_rows": rows}
        return scored

    def metrics_from(self, records: Sequence[SampleRecord], iters: int) -> dict[str, MetricValue]:
        from mmada_bench.scorers.geneval import summarize

        rows = [r for record in records for r in record.extra.get("geneval_rows", [])]
        if not rows:
            reason = ("no GenEval detector configured: images were generated and exported in GenEval's "
                      "layout; run the official evaluator on <output>/geneval")
            return {self.metric: MetricValue(None, rule=self.rule, extra={"reason": reason})}
        summary = summarize(rows)
        detector = (f"transformers Mask2Former {self._folders[0]} + CLIP colour {self._folders[1]}"
                    if self._folders is not None else type(self.detector).__name__)
        extra = {**summary.as_record(), "options": self.options.as_record(), "detector": detector}
        out = {self.metric: MetricValue(summary.overall, None, "", self.rule, extra)}
        for tag, score in summary.per_tag.items():
            out[f"geneval[{tag}]"] = MetricValue(score.score, None, "", self.rule,
                                                 {"correct": score.correct, "images": score.images})
        return out


# -- outputs that need the run folder ------------------------------------------------------------
def write_task_outputs(task: T2ITask, output_dir: Path,
                       records: Sequence[SampleRecord | Mapping[str, Any]]) -> dict[str, str]:
    """Write the task's contact sheet (and, for GenEval, its export layout) from finished records.

    Images are read from the run folder's artifacts (the paths the request engine gave the records).
    Returns ``{what: path}`` of the files written.
    """
    output_dir = Path(output_dir)
    items: list[tuple[Path, str]] = []
    per_record: list[tuple[dict[str, Any], list[Path]]] = []
    for record in map(_as_dict, records):
        infos = record.get("predictions", {}).get("images", [])
        paths = [output_dir / info["path"] for info in infos if info.get("path")]
        per_record.append((record, paths))
        items += [(p, record.get("prompt", "")) for p in paths]
    written: dict[str, str] = {}
    if items:
        sheet = write_contact_sheet(output_dir / CONTACT_SHEET.format(task=task.name), items)
        written["contact_sheet"] = str(sheet)
    written.update(task.export(output_dir, per_record))
    return written


def export_geneval(root: Path, per_record: Sequence[tuple[Mapping[str, Any], list[Path]]]) -> Path:
    """GenEval's own layout: ``<root>/<00000>/metadata.jsonl`` (the prompt's metadata line) and
    ``samples/0000.png`` ..., so the official ``evaluate_images.py`` runs on it unchanged."""
    for record, paths in per_record:
        folder = root / str(record["doc"]["id"])
        (folder / "samples").mkdir(parents=True, exist_ok=True)
        (folder / "metadata.jsonl").write_text(json.dumps(record["doc"]["metadata"]) + "\n")
        for k, path in enumerate(paths):
            shutil.copyfile(path, folder / "samples" / f"{k:04d}.png")
    return root


def _geneval_options(text: str) -> GenEvalOptions:
    """``threshold=0.3,max_objects=16`` -> options (numbers only); a bad entry is a one-line error."""
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or number is None:
            raise ConfigError(f"{GENEVAL_OPTIONS_ENV}: {item!r} must look like name=number")
        values[key.strip()] = int(number) if key.strip() == "max_objects" else number
    try:
        return GenEvalOptions.from_mapping(values)
    except DataError as exc:
        raise ConfigError(f"{GENEVAL_OPTIONS_ENV}: {exc}") from None


def write_run_outputs(output_dir: Path, task_name: str) -> dict[str, str]:
    """:func:`write_task_outputs` for a finished run folder (after the run, or for an older run)."""
    from mmada_bench.results.reader import RunFolder

    task = next(spec.impl for spec in SPECS if spec.name == task_name)
    return write_task_outputs(task, output_dir, RunFolder.open(output_dir).samples(task_name))


# -- specs ---------------------------------------------------------------------------------------
_WHY = ("one image per (prompt, index) request: own seed, own artifact, per-image resume; scorer models "
        "from local folders, loaded once per task and never next to the model under test")


def _spec(task: T2ITask, description: str, source: str, columns: tuple[str, ...], metrics: tuple[str, ...],
          variant: str, sampler: Mapping[str, Any] | None = None) -> TaskSpec:
    return TaskSpec(
        name=task.name, modality="t2i", description=description, source=source, splits={"eval": "prompts"},
        columns=columns, metrics=metrics, num_fewshot=0, sampler=dict(sampler or {}), backend="native",
        variant=variant, why=_WHY, impl=task, requires=("generate_images",),
    )


SPECS: list[TaskSpec] = [
    _spec(ClipScoreTask(), "CLIP Score of generated images vs their prompts (torchmetrics, CLIP ViT-L/14)",
          "<data-dir>/clipscore/prompts.(txt|jsonl)", ("prompt",), ("clip_score",), "torchmetrics CLIPScore"),
    _spec(ImageRewardTask(), "ImageReward human-preference reward of generated images",
          "<data-dir>/imagereward/prompts.(txt|jsonl)", ("prompt",), ("image_reward",), "THUDM ImageReward v1.0"),
    _spec(GenEvalTask(), "GenEval compositional object-detection checks (needs a detector to score)",
          "<data-dir>/geneval/evaluation_metadata.jsonl (djghosh13/geneval)", ("tag", "prompt", "include"),
          ("geneval_overall",), "djghosh13/geneval", sampler={"images_per_prompt": 4}),
]
