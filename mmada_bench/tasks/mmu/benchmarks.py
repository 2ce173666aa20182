"""The multimodal-understanding benchmarks as native tasks: POPE, MME, GQA, MMMU, VQAv2 and easy-VQA.

Each row becomes one ``answer_about_image`` request with the reference MMaDA wrapper's prompt
(:func:`~mmada_bench.tasks.mmu.prompts.build_prompt`); the answer is rewritten by the wrapper's
post-processing and then scored by the benchmark's VLMEvalKit rule (:mod:`mmada_bench.scorers.vlmeval`,
:mod:`mmada_bench.scorers.vqa`), because the published MMaDA numbers come from exactly that chain.

Per-sample records keep the scorer's per-sample dict as ``metrics`` and the row's grouping columns
(plus ``index``) as ``doc``, so ``aggregate`` can rebuild the scorer's own records from the results
file alone: a re-score never needs the (GB-sized) data files again. Aggregate keys are the scorer's
``"<group>/<metric>"`` names, x100 as VLMEvalKit prints them; numbers that are a mean of per-sample
values get a bootstrap stderr over the same values (F1, MME sums and similar do not).

Data: the VLMEvalKit TSVs (``POPE.tsv``, ``MME.tsv``, ``GQA_TestDev_Balanced.tsv``,
``MMMU_DEV_VAL.tsv``) and the official VQAv2 val2014 files lie directly in ``--data-dir`` (VLMEvalKit's
``$LMUData`` layout, so an existing download is used as is); without ``--data-dir`` the folder is
``$LMUData`` (default ``~/LMUData``). easy-VQA comes from its pip package and needs no folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmada_bench.adapters.base import ImageQuestion
from mmada_bench.adapters.settings import Settings
from mmada_bench.errors import DataError
from mmada_bench.hashing import file_sha256
from mmada_bench.results.schema import MetricValue, SampleRecord
from mmada_bench.scorers import vlmeval
from mmada_bench.scorers.bootstrap import bootstrap_method, bootstrap_stderr
from mmada_bench.scorers.vqa import (
    RULE_VQA,
    VQAV2_GROUP_FIELDS,
    aggregate_vqav2,
    normalize_answer,
    score_vqav2_sample,
)
from mmada_bench.tasks.mmu.prompts import build_prompt, postprocess
from mmada_bench.tasks.mmu.rows import MMURow
from mmada_bench.tasks.native import LoadedRows, NativeRequest, NativeTask, ScoredRow
from mmada_bench.tasks.spec import TaskSpec

#: Environment variable VLMEvalKit reads for its data folder; used here when no --data-dir is given.
LMUDATA_ENV = "LMUData"

#: Sampler presets every MMU task offers: MMaDA's thinking mode needs room to reason.
PRESETS: dict[str, dict[str, Any]] = {"cot": {"gen_length": 256, "steps": 128, "block_length": 32, "cot": True}}

RULE_EASYVQA = "easy-VQA exact match (EvalAI answer normalisation of prediction and answer, then equality)"

Values = dict[str, list[float]]


def data_folder(data_root: Path | None) -> Path:
    """``--data-dir``, else ``$LMUData``, else ``~/LMUData`` (VLMEvalKit's own default)."""
    if data_root is not None:
        return Path(data_root)
    return Path(os.environ.get(LMUDATA_ENV) or Path.home() / "LMUData").expanduser()


def _missing_file(task: str, name: str, folder: Path) -> DataError:
    return DataError(f"{task}: data file {name} not found in {folder} "
                     f"(pass --data-dir DIR holding it, or set ${LMUDATA_ENV}; VLMEvalKit LMUData layout)")


def _doc_id(index: str) -> int | str:
    """Integer indices stay integers (VLMEvalKit turns an all-integer index column back to int)."""
    return int(index) if index.isdecimal() else index


def _scaled_stderr(values: Sequence[float], iters: int) -> float | None:
    stderr = bootstrap_stderr(values, iters)
    return None if stderr is None else stderr * 100


class MMUBenchmark(NativeTask):
    """One image, one question, one short answer per row; subclasses say how to read and score.

    ``dataset`` is the name the prompt rules know (``POPE``, ``MMMU_DEV_VAL``...), ``group_fields`` the
    row columns the aggregate groups by (kept in every record's ``doc``).
    """

    name: str = ""
    dataset: str = ""
    group_fields: tuple[str, ...] = ()

    def doc_id(self, row: MMURow) -> int | str:
        return _doc_id(row.index)

    def requests(self, row: MMURow, settings: Settings) -> list[NativeRequest]:
        text, image = build_prompt(self.dataset, row)
        # The image goes to the adapter as a path: rows of a whole benchmark are turned into requests
        # before serving, and decoded pixels for thousands of rows would not fit in memory. The key
        # content is the file hash, so a changed image file can never be served a logged answer.
        request = ImageQuestion(image=str(image.path), question=text)
        return [NativeRequest("answer_about_image", request, {"question": text, "image_sha256": image.sha256},
                              length=len(text))]

    def score(self, row: MMURow, results: list[Any]) -> ScoredRow:
        raw = results[0].text
        answer = postprocess(self.dataset, raw)
        text, _ = build_prompt(self.dataset, row)
        doc = {"index": row.index, **{name: row.fields.get(name) for name in self.group_fields}}
        return ScoredRow(prompt=text, target=row.answer if isinstance(row.answer, str) else list(row.answer),
                         predictions={"raw": raw, "answer": answer}, metrics=self.score_answer(answer, row), doc=doc)

    def score_answer(self, answer: str, row: MMURow) -> dict[str, float]:
        raise NotImplementedError

    def aggregate(self, records: Sequence[SampleRecord], bootstrap_iters: int) -> dict[str, MetricValue]:
        rebuilt = [{**(record.doc or {}), **record.metrics} for record in records]
        values = self.aggregate_values(rebuilt)
        lists = self.value_lists(rebuilt)
        out = {}
        for key, value in values.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            samples = lists.get(key)
            stderr = _scaled_stderr(samples, bootstrap_iters) if samples else None
            # VLMEvalKit's accuracies are x100 already; MME's summed scores are not proportions at all
            unit = "" if key.rsplit("/", 1)[-1] == "score" else "points"
            out[key] = MetricValue(float(value), stderr, bootstrap_method(bootstrap_iters) if stderr is not None else "",
                                   self.rule, {"n": len(samples)} if samples else {}, unit)
        self.add_flags(values, out)
        return out

    def aggregate_values(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    def value_lists(self, records: list[dict[str, Any]]) -> Values:
        """The per-sample values (0..1) each aggregate key is the mean of (x100), for its stderr."""
        return {}

    def add_flags(self, values: Mapping[str, Any], out: dict[str, MetricValue]) -> None:
        """Non-numeric aggregate outputs, attached to the metrics they qualify."""


def _grouped(records: Sequence[Mapping[str, Any]], key_of: Callable[[Mapping[str, Any]], list[str]],
             metric: str = "acc") -> Values:
    lists: Values = {}
    for record in records:
        for key in key_of(record):
            lists.setdefault(key, []).append(float(record[metric]))
    return lists


def _present(value: Any) -> bool:
    return value is not None and value != ""


class TsvBenchmark(MMUBenchmark):
    """A benchmark read from one VLMEvalKit TSV in the data folder."""

    file_name: str = ""

    def load(self, data_root: Path | None, sample_data: bool) -> LoadedRows:
        if sample_data:
            raise DataError(f"{self.name}: no bundled sample data; pass --data-dir DIR holding {self.file_name}")
        folder = data_folder(data_root)
        path = folder / self.file_name
        if not path.is_file():
            raise _missing_file(self.name, self.file_name, folder)
        from mmada_bench.tasks.mmu.tsv import read_tsv

        rows = read_tsv(path)
        return LoadedRows(rows, source=str(path), files_sha256={self.file_name: file_sha256(path)})

    @staticmethod
    def row_mapping(row: MMURow) -> dict[str, Any]:
        """The row as the VLMEvalKit scorers take it (a flat dict of its TSV columns)."""
        return {**row.fields, "index": row.index, "question": row.question, "answer": row.answer}


class PopeTask(TsvBenchmark):
    name, dataset, file_name = "pope", "POPE", "POPE.tsv"
    group_fields = vlmeval.POPE_GROUP_FIELDS
    rule = vlmeval.RULE_POPE

    def score_answer(self, answer: str, row: MMURow) -> dict[str, float]:
        return vlmeval.score_pope_sample(answer, self.row_mapping(row))

    def aggregate_values(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return vlmeval.aggregate_pope(records)

    def value_lists(self, records: list[dict[str, Any]]) -> Values:
        def splits(record: Mapping[str, Any]) -> list[str]:
            category = record.get("category")
            named = str(category).split(",") if _present(category) else []
            return ["Overall/acc"] * max(1, len(named)) + [f"{s}/acc" for s in named]

        return _grouped(records, splits)


class MmeTask(TsvBenchmark):
    name, dataset, file_name = "mme", "MME", "MME.tsv"
    group_fields = vlmeval.MME_GROUP_FIELDS
    rule = vlmeval.RULE_MME

    def score_answer(self, answer: str, row: MMURow) -> dict[str, float]:
        return vlmeval.score_mme_sample(answer, self.row_mapping(row))

    def aggregate_values(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return vlmeval.aggregate_mme(records)

    def value_lists(self, records: list[dict[str, Any]]) -> Values:
        lists = _grouped(records, lambda r: [f"{r['category']}/acc"])
        pairs: dict[tuple[str, str], list[float]] = {}
        for record in records:
            pairs.setdefault((str(record["category"]), str(record["image_path"])), []).append(float(record["acc"]))
        for (category, _), scores in pairs.items():
            if len(scores) == 2:
                lists.setdefault(f"{category}/acc_plus", []).append(scores[0] * scores[1])
        return lists

    def add_flags(self, values: Mapping[str, Any], out: dict[str, MetricValue]) -> None:
        flags = {"partial": bool(values.get("partial")), "missing_subtasks": list(values.get("missing_subtasks", []))}
        for key in ("perception/score", "reasoning/score"):
            if key in out:
                out[key].extra.update(flags)


class GqaTask(TsvBenchmark):
    name, dataset, file_name = "gqa", "GQA_TestDev_Balanced", "GQA_TestDev_Balanced.tsv"
    group_fields = vlmeval.GQA_GROUP_FIELDS
    rule = vlmeval.RULE_GQA

    def score_answer(self, answer: str, row: MMURow) -> dict[str, float]:
        return vlmeval.score_gqa_sample(answer, self.row_mapping(row))

    def aggregate_values(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return vlmeval.aggregate_gqa(records)

    def value_lists(self, records: list[dict[str, Any]]) -> Values:
        by = "split" if any(_present(r.get("split")) for r in records) else "category"
        return _grouped(records, lambda r: ["Overall/acc"] + ([f"{r[by]}/acc"] if _present(r.get(by)) else []))


class MmmuTask(TsvBenchmark):
    """MMMU from ``MMMU_DEV_VAL.tsv``; ``splits`` picks the rows evaluated (None: every row).

    VLMEvalKit infers every row of MMMU_DEV_VAL and reports accuracy per ``split``; the number papers
    (MMaDA's included) quote is the ``validation`` row, and ``dev`` is MMMU's 5-per-subject few-shot
    pool. The file lists the 150 dev rows first, so ``mmmu`` evaluates the validation rows only:
    ``--limit N`` then takes N validation questions and always yields the primary metric, and a full
    run costs 900 rows instead of 1,050. ``mmmu_dev_val`` keeps VLMEvalKit's whole-file inference.
    """

    name, dataset, file_name = "mmmu", "MMMU_DEV_VAL", "MMMU_DEV_VAL.tsv"
    group_fields = vlmeval.MMMU_GROUP_FIELDS
    rule = vlmeval.RULE_MMMU

    def __init__(self, name: str = "mmmu", splits: tuple[str, ...] | None = ("validation",)) -> None:
        self.name, self.splits = name, splits

    def load(self, data_root: Path | None, sample_data: bool) -> LoadedRows:
        loaded = super().load(data_root, sample_data)
        if self.splits is None:
            return loaded
        rows = [row for row in loaded.rows if row.fields.get("split") in self.splits]
        if not rows:
            raise DataError(f"{loaded.source}: no row has field 'split' in {list(self.splits)} "
                            f"(task {self.name}; mmmu_dev_val evaluates every row)")
        return LoadedRows(rows, loaded.source, loaded.files_sha256)

    def score_answer(self, answer: str, row: MMURow) -> dict[str, float]:
        return vlmeval.score_mmmu_sample(answer, self.row_mapping(row))

    def aggregate_values(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return vlmeval.aggregate_mmmu(records)

    def value_lists(self, records: list[dict[str, Any]]) -> Values:
        def keys(record: Mapping[str, Any]) -> list[str]:
            split = str(record["split"]) if _present(record.get("split")) else "none"
            # a category equal to a discipline name overwrites it upstream; a set keeps one entry
            groups = {str(record[f]) for f in ("l2-category", "category") if _present(record.get(f))}
            return [f"{split}/Overall/acc", *(f"{split}/{g}/acc" for g in sorted(groups))]

        return _grouped(records, keys)


class Vqav2Task(MMUBenchmark):
    """VQAv2 val2014 in the official file layout (10 human answers per question, soft accuracy)."""

    name, dataset = "vqav2", "VQAv2"
    group_fields = (*VQAV2_GROUP_FIELDS, "question_type")
    rule = RULE_VQA
    split = "val2014"

    def load(self, data_root: Path | None, sample_data: bool) -> LoadedRows:
        from mmada_bench.tasks.mmu.vqav2 import annotations_name, questions_name, read_vqav2

        if sample_data:
            raise DataError(f"{self.name}: no bundled sample data; pass --data-dir DIR holding the VQAv2 files")
        folder = data_folder(data_root)
        files = []
        for name, sub in ((questions_name(self.split), "Questions"), (annotations_name(self.split), "Annotations")):
            found = next((p for p in (folder / name, folder / sub / name) if p.is_file()), None)
            if found is None:
                raise _missing_file(self.name, name, folder)
            files.append(found)
        rows = read_vqav2(folder, self.split)
        return LoadedRows(rows, source=str(folder), files_sha256={f.name: file_sha256(f) for f in files})

    def score_answer(self, answer: str, row: MMURow) -> dict[str, float]:
        return score_vqav2_sample(answer, {"question_id": row.index, "answer": list(row.answer)})

    def aggregate_values(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return aggregate_vqav2(records)

    def value_lists(self, records: list[dict[str, Any]]) -> Values:
        return _grouped(records, lambda r: ["Overall/acc"] + ([f"{r['answer_type']}/acc"]
                                                             if r.get("answer_type") is not None else []))


def easyvqa_correct(answer: str, gold: str) -> bool:
    """Equality after EvalAI normalisation (case, punctuation, articles), so "Red." matches "red"."""
    return normalize_answer(answer.lower()) == normalize_answer(gold.lower())


class EasyVqaTask(MMUBenchmark):
    """easy-VQA test questions from the pip package: the one MMU set that runs fully offline."""

    name, dataset = "easyvqa", "easy-VQA"
    group_fields = ("question_type", "image_id")
    rule = RULE_EASYVQA

    def load(self, data_root: Path | None, sample_data: bool) -> LoadedRows:
        from mmada_bench.tasks.mmu.easyvqa import load_easyvqa_test

        rows = load_easyvqa_test()
        source = rows[0].images[0].path.parent.parent / "questions.json"
        hashes = {"questions.json": file_sha256(source)} if source.is_file() else {}
        return LoadedRows(rows, source=f"easy-vqa package ({source.parent.parent.parent})", files_sha256=hashes)

    def score_answer(self, answer: str, row: MMURow) -> dict[str, float]:
        return {"acc": float(easyvqa_correct(answer, str(row.answer)))}

    def aggregate_values(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        if not records:
            raise DataError("easy-VQA: no samples to aggregate")
        return {key: sum(vs) / len(vs) * 100 for key, vs in self.value_lists(records).items()}

    def value_lists(self, records: list[dict[str, Any]]) -> Values:
        return _grouped(records, lambda r: ["Overall/acc", f"{r['question_type']}/acc"])


_VARIANT = "VLMEvalKit rule (exact matching, no judge) on the Gen-Verse/MMaDA wrapper's prompts and post-processing"
_WHY = ("MMaDA's published MMU numbers come from its VLMEvalKit wrapper, whose prompts and answer rewriting "
        "change scores; both are reproduced, then scored by VLMEvalKit's own rule")


def _spec(task: MMUBenchmark, description: str, source: str, split: str, columns: tuple[str, ...],
          metrics: tuple[str, ...], variant: str = _VARIANT, why: str = _WHY) -> TaskSpec:
    return TaskSpec(
        name=task.name, modality="mmu", description=description, source=source, splits={"eval": split},
        columns=columns, metrics=metrics, num_fewshot=0, sampler={}, backend="native", variant=variant, why=why,
        impl=task, requires=("answer_about_image",), presets=PRESETS,
    )


class MmmuOfficialTask(MmmuTask):
    """MMMU validation scored by the MMMU authors' rule instead of VLMEvalKit's.

    The two rules disagree on unparseable answers: VLMEvalKit counts them wrong, the official parser
    guesses an option (seeded), so the official number is higher for weak models. Both are published
    in the wild; naming the rule per task keeps them from being compared as one.
    """

    rule = vlmeval.RULE_MMMU_OFFICIAL

    def score_answer(self, answer: str, row: MMURow) -> dict[str, float]:
        return vlmeval.score_mmmu_official_sample(answer, self.row_mapping(row))


SPECS: list[TaskSpec] = [
    _spec(PopeTask(), "POPE object hallucination (yes/no), F1 with 'Yes' positive", "VLMEvalKit LMUData POPE.tsv",
          "POPE", ("index", "image", "question", "answer", "category"),
          ("Overall/f1", "Overall/acc", "Overall/precision", "Overall/recall")),
    _spec(MmeTask(), "MME perception + cognition (yes/no pairs, acc + acc+ per subtask)",
          "VLMEvalKit LMUData MME.tsv", "MME", ("index", "image", "question", "answer", "category", "image_path"),
          ("perception/score", "reasoning/score")),
    _spec(GqaTask(), "GQA test-dev balanced (short answers, exact match)",
          "VLMEvalKit LMUData GQA_TestDev_Balanced.tsv", "GQA_TestDev_Balanced",
          ("index", "image", "question", "answer"), ("Overall/acc",)),
    _spec(MmmuTask(), "MMMU validation multiple choice (the split papers report)",
          "VLMEvalKit LMUData MMMU_DEV_VAL.tsv (rows with split 'validation')", "validation",
          ("index", "image", "question", "answer", "split", "category", "l2-category"),
          ("validation/Overall/acc",)),
    _spec(MmmuOfficialTask("mmmu_official"), "MMMU validation scored by MMMU's official rule (unparsed answers: "
          "seeded guess among the options, as the MMMU authors' script)",
          "VLMEvalKit LMUData MMMU_DEV_VAL.tsv (rows with split 'validation')", "validation",
          ("index", "image", "question", "answer", "split", "category", "l2-category"),
          ("validation/Overall/acc",)),
    _spec(MmmuTask("mmmu_dev_val", None), "MMMU dev+val multiple choice, every row as VLMEvalKit infers it "
          "(primary: validation accuracy; dev rows come first, so a small --limit sees only dev)",
          "VLMEvalKit LMUData MMMU_DEV_VAL.tsv", "MMMU_DEV_VAL",
          ("index", "image", "question", "answer", "split", "category", "l2-category"),
          ("validation/Overall/acc", "dev/Overall/acc")),
    _spec(Vqav2Task(), "VQAv2 val2014 open-ended (VQA soft accuracy over 10 human answers)",
          "official VQAv2 val2014 (v2_OpenEnded_mscoco_val2014_questions.json + annotations + images)", "val2014",
          ("question_id", "image_id", "question", "answers"), ("Overall/acc",),
          variant="VQA soft accuracy (VLMEvalKit vqa_score) on the MMaDA wrapper's short-answer prompt",
          why="VQAv2 needs all 10 human answers, which only the official files carry; the prompt is the wrapper's "
              "VQA default (= lmms-eval's vqav2 post_prompt)"),
    _spec(EasyVqaTask(), "easy-VQA test (pip easy-vqa, offline; exact match, per question type)",
          "PyPI easy-vqa 1.0 data/test", "test", ("question", "answer", "image_id"),
          ("Overall/acc", "yes/no/acc", "color/acc", "shape/acc"),
          variant="exact match after EvalAI answer normalisation, question asked as is",
          why="the only MMU set installable from a package registry, so a model run works without network"),
]
