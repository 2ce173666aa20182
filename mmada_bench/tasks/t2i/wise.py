"""WISE (PKU-YuanGroup/WISE) as native tasks: ``wise`` (the paper's WiScore) and ``wise_verified``.

Prompts come from the user's WISE JSON files (``<data-dir>/wise/*.json``, ``<data-dir>/wise_verified/*.json``
for the WISE_Verified prompt set; never shipped here). Images are generated like every t2i task; a
multimodal judge then scores each image. The judge is any OpenAI-compatible chat endpoint (vLLM,
OpenAI), named by environment variables so no key is ever written to a command line or results file:

* ``MMADA_BENCH_WISE_JUDGE_URL``: base URL (``http://127.0.0.1:8000/v1``);
* ``MMADA_BENCH_WISE_JUDGE_MODEL``: the model name the endpoint serves;
* ``MMADA_BENCH_WISE_JUDGE_API_KEY``: the key, when the endpoint needs one (sent as a bearer token);
* ``MMADA_BENCH_WISE_JUDGE_TEMPLATE``: optional JSON file with the judge wording (e.g. the official one).

Every judge call is a request of the run's request engine (a :class:`~mmada_bench.scorers.wise.JudgeAdapter`
bound by the native backend): keyed by judge model, protocol, wording, image hash and attempt, logged
as soon as answered, and served from the log on a rerun, so no image is judged twice. Parsing, the
three-attempt rule and aggregation are the official ones (:mod:`mmada_bench.scorers.wise`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmada_bench.errors import ConfigError, DataError
from mmada_bench.hashing import bytes_sha256, file_sha256
from mmada_bench.results.schema import MetricValue, SampleRecord
from mmada_bench.scorers.bootstrap import bootstrap_method, bootstrap_stderr
from mmada_bench.scorers.wise import (
    CATEGORIES,
    OUTCOME_OVERALL,
    STATUS_EXTRACT_FAIL,
    STATUS_OK,
    JudgeAdapter,
    JudgeClient,
    JudgeRequest,
    JudgeTemplate,
    WisePrompt,
    WiseProtocol,
    aggregate_score_records,
    build_judge_messages,
    category_mismatches,
    get_protocol,
    image_wiscore,
    parse_reply,
    read_wise_prompt_files,
    score_record,
)
from mmada_bench.tasks.native import LoadedRows, NativeRequest, ScoredRow
from mmada_bench.tasks.t2i.benchmarks import T2ITask, _image_info, _spec
from mmada_bench.tasks.t2i.prompts import task_folder

JUDGE_URL_ENV = "MMADA_BENCH_WISE_JUDGE_URL"
JUDGE_MODEL_ENV = "MMADA_BENCH_WISE_JUDGE_MODEL"
JUDGE_KEY_ENV = "MMADA_BENCH_WISE_JUDGE_API_KEY"
JUDGE_TEMPLATE_ENV = "MMADA_BENCH_WISE_JUDGE_TEMPLATE"
#: Folder of the run where images are copied in WISE's own layout (``<prompt_id>.png``).
EXPORT = "{task}_images"

#: ``serve(adapter, settings, requests, owner) -> results``, given by the native backend.
ServeFn = Callable[[Any, Any, list[NativeRequest], tuple], list[Any]]


class WiseTask(T2ITask):
    """One WISE protocol: generate ``<prompt_id>.png``, ask the judge, WiScore per image and category."""

    metric = "wiscore"

    def __init__(self, name: str, protocol: str) -> None:
        super().__init__()
        self.name = name
        self.protocol: WiseProtocol = get_protocol(protocol)
        self.rule = (f"WISE {self.protocol.name} protocol: {self.protocol.parse_rule}; per image "
                     f"{'(0.7 C + 0.2 R + 0.1 A) / 2' if self.protocol.name == 'legacy' else 'binary score'}; "
                     "category means, overall = category-weighted sum")
        self.judge: JudgeAdapter | None = None
        self.template: JudgeTemplate = self.protocol.template
        self._serve: ServeFn | None = None

    # -- NativeTask ---------------------------------------------------------------------------------
    def load(self, data_root: Path | None, sample_data: bool) -> LoadedRows:
        folder = task_folder(data_root, self.name)
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if not files:
            raise DataError(f"task {self.name}: no WISE prompt files: expected {folder}/*.json (WISE's data/*.json)")
        prompts = read_wise_prompt_files(files)
        wrong = category_mismatches(self.protocol, prompts.values())
        if wrong:
            raise DataError(f"task {self.name}: prompt_id {wrong[0]} ({len(wrong)} in all) has a Category outside "
                            f"the {self.protocol.name} protocol's id range: is this the other WISE prompt set?")
        self.judge, self.template = _judge_from_env(self.name, self.protocol), _template_from_env(self.protocol)
        hashes = {path.name: file_sha256(path) for path in files}
        return LoadedRows(list(prompts.values()), str(folder), hashes)

    def doc_id(self, row: WisePrompt) -> str:
        return str(row.prompt_id)

    def requests(self, row: WisePrompt, settings: Any) -> list[NativeRequest]:
        from mmada_bench.adapters.base import ImageRequest

        count = getattr(settings, "images_per_prompt", 1)
        return [NativeRequest(method="generate_images", request=ImageRequest(row.prompt),
                              content={"prompt": row.prompt, "image_index": k}, length=len(row.prompt))
                for k in range(count)]

    def bind_scoring(self, serve: ServeFn) -> None:
        """The native backend's way to the request engine for the judge's calls."""
        self._serve = serve

    def score(self, row: WisePrompt, results: list[Any]) -> ScoredRow:
        pngs = [_png(r.image) for r in results]
        outcomes = self._judge_images(row, pngs)
        values = []
        for outcome in outcomes:
            value = image_wiscore(self.protocol, outcome["score_record"])[0] if outcome["score_record"] else None
            outcome["wiscore"] = value
            values.append(value)
        scored = [v for v in values if v is not None]
        return ScoredRow(
            prompt=row.prompt, target=row.explanation, predictions={"images": [_image_info(r) for r in results]},
            metrics={self.metric: sum(scored) / len(scored) if scored else None},
            doc={"prompt_id": row.prompt_id, "category": self.protocol.category_of(row.prompt_id),
                 "Category": row.category, "Subcategory": row.subcategory},
            extra={"judge": outcomes, "per_image": scored},
        )

    def aggregate(self, records: Sequence[SampleRecord], bootstrap_iters: int) -> dict[str, MetricValue]:
        lines = [o["score_record"] for r in records for o in r.extra.get("judge", []) if o["score_record"]]
        failed = sorted({str(r.doc_id) for r in records for o in r.extra.get("judge", [])
                         if o["status"] == STATUS_EXTRACT_FAIL})
        if failed:
            sys.stderr.write(f"mmada-bench: warning: {self.name}: the judge's replies for prompt_id "
                             f"{', '.join(failed[:10])}{' ...' if len(failed) > 10 else ''} could not be parsed after "
                             f"{self.protocol.max_extract_retries} attempts; those images have no score (replies "
                             "are in the samples file)\n")
        official = aggregate_score_records(self.protocol, lines) if lines else None
        judge = self.judge.describe() if self.judge is not None else {}
        identity = {**self.protocol.as_record(), "judge": judge, "template": self.template.name,
                    "template_sha256": self.template.sha256, "unparsed_prompt_ids": failed,
                    "outcome": official.outcome if official else "no_valid_data",
                    "missing_prompt_ids": len(official.missing_prompt_ids) if official else None}
        per_category: dict[str, list[float]] = {}
        for line in lines:
            value = image_wiscore(self.protocol, line)[0]
            category = self.protocol.category_of(line["prompt_id"])
            if value is not None and category is not None:
                per_category.setdefault(category, []).append(value)
        overall = official.overall if official is not None and official.outcome == OUTCOME_OVERALL else None
        if overall is None:
            identity["reason"] = ("the official overall WiScore needs a score for every prompt_id 1..1000 "
                                  "(see wiscore[<CATEGORY>] for the categories scored)")
        out = {self.metric: MetricValue(overall, None, "", self.rule, identity)}
        for category in CATEGORIES:
            values = per_category.get(category)
            if values:
                out[f"{self.metric}[{category}]"] = MetricValue(
                    sum(values) / len(values), bootstrap_stderr(values, bootstrap_iters),
                    bootstrap_method(bootstrap_iters), self.rule, {"n_images": len(values)})
        return out

    def export(self, output_dir: Path, per_record: Sequence[tuple[Mapping[str, Any], list[Path]]]) -> dict[str, str]:
        """WISE's layout: the first image of each prompt as ``<prompt_id>.png`` in one folder."""
        folder = output_dir / EXPORT.format(task=self.name)
        folder.mkdir(parents=True, exist_ok=True)
        for record, paths in per_record:
            if paths:
                shutil.copyfile(paths[0], folder / f"{record['doc']['prompt_id']}.png")
        return {"wise": str(folder)}

    # -- judging ------------------------------------------------------------------------------------
    def _judge_images(self, row: WisePrompt, pngs: list[bytes]) -> list[dict[str, Any]]:
        """Up to ``max_extract_retries`` attempts per image (official rule); attempt k of every image
        still unparsed goes to the judge as one batch of requests."""
        if self.judge is None:
            raise ConfigError(f"task {self.name}: no judge configured (load the task first)")
        messages = json.dumps(build_judge_messages(self.protocol, row, self.template), sort_keys=True)
        settings = self.judge.settings(self.protocol, self.template)
        outcomes = [{"status": STATUS_EXTRACT_FAIL, "judge_calls": 0, "replies": [], "parsed": None,
                     "score_record": None, "image_sha256": bytes_sha256(png)} for png in pngs]
        pending = list(range(len(pngs)))
        for attempt in range(self.protocol.max_extract_retries):
            if not pending:
                break
            requests = [NativeRequest("answer_about_image", JudgeRequest(messages, pngs[i], attempt),
                                      {"judge": self.protocol.name, "messages": messages, "attempt": attempt,
                                       "image_sha256": outcomes[i]["image_sha256"]})
                        for i in pending]
            replies = self._call(settings, requests, (str(row.prompt_id), "judge"))
            still = []
            for i, reply in zip(pending, replies, strict=True):
                parsed = parse_reply(self.protocol, reply.text)
                outcome = outcomes[i]
                outcome["judge_calls"] += 1
                outcome["replies"].append(reply.text)
                if outcome["parsed"] is None:
                    outcome["parsed"] = parsed.scores
                if parsed.complete:
                    outcome["status"] = STATUS_OK
                    outcome["score_record"] = score_record(self.protocol, row, parsed.scores)
                else:
                    still.append(i)
            pending = still
        return outcomes

    def _call(self, settings: Any, requests: list[NativeRequest], owner: tuple) -> list[Any]:
        if self._serve is not None:
            return self._serve(self.judge, settings, requests, owner)
        return self.judge.answer_about_image([r.request for r in requests], settings)  # no log: direct use


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _judge_from_env(task: str, protocol: WiseProtocol) -> JudgeAdapter:
    url, model = os.environ.get(JUDGE_URL_ENV, ""), os.environ.get(JUDGE_MODEL_ENV, "")
    if not url or not model:
        raise ConfigError(f"task {task}: no judge: set {JUDGE_URL_ENV} (an OpenAI-compatible base URL, e.g. "
                          f"http://127.0.0.1:8000/v1) and {JUDGE_MODEL_ENV} (reference judge: "
                          f"{protocol.reference_judge})")
    key_env = JUDGE_KEY_ENV if os.environ.get(JUDGE_KEY_ENV) else None
    return JudgeAdapter(JudgeClient.for_protocol(protocol, url, model, key_env))


def _template_from_env(protocol: WiseProtocol) -> JudgeTemplate:
    path = os.environ.get(JUDGE_TEMPLATE_ENV)
    return JudgeTemplate.from_file(path) if path else protocol.template


SPECS = [
    _spec(WiseTask("wise", "legacy"), "WISE world-knowledge T2I, the paper's WiScore protocol (an LLM judge scores "
          "consistency/realism/aesthetics)", "<data-dir>/wise/*.json (PKU-YuanGroup/WISE data/)",
          ("prompt_id", "Prompt", "Explanation", "Category", "Subcategory"), ("wiscore",), "WISE_legacy (paper)"),
    _spec(WiseTask("wise_verified", "verified"), "WISE world-knowledge T2I, WISE_Verified protocol (binary judge)",
          "<data-dir>/wise_verified/*.json (PKU-YuanGroup/WISE WISE_Verified)",
          ("prompt_id", "Prompt", "Explanation", "Category", "Subcategory"), ("wiscore",), "WISE_Verified"),
]
