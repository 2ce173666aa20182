"""Serve model requests: keys, seeds, batches, resume from the request log, cost accounting.

Both task backends (lm-eval and native) hand their requests to :class:`RequestEngine` as
:class:`Job` objects, so resume, seeding, batching and cost work the same for every modality.

* **Key**: sha256 over (adapter method, request content, settings that decide the answer, model
  identity, run seed). Equal keys mean equal answers, so a logged answer is served instead of
  recomputed -- on a rerun, or when another task asks the same question.
* **Seed**: one rule, :func:`seed_for_key`; a request's random draws depend only on its own key,
  never on which requests shared its batch or on the order they arrived in.
* **Batches**: per (method, settings), requests sorted by size (longest first, so padding is small),
  then by ``group`` (requests sharing a context sit together and the adapter can serve them with one
  forward pass), then by key; cut into ``batch_size`` chunks the same way on every run, so a resumed
  run feeds the model exactly the batches an uninterrupted run would have. A batch's answers are
  logged in one flushed write: after a kill a batch is fully logged or not at all.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tqdm.auto import tqdm

from mmada_bench.adapters.base import Adapter, Cost, ImageResult, LoglikelihoodResult, TextResult
from mmada_bench.adapters.settings import Settings
from mmada_bench.engine.request_log import RequestLog
from mmada_bench.errors import ConfigError
from mmada_bench.hashing import text_sha256

#: The adapter methods a job can call (the adapter capabilities).
METHODS = ("loglikelihood", "loglikelihood_rolling", "generate_text", "answer_about_image", "generate_images")


def request_key(method: str, args: Any, settings: Mapping[str, Any], model: Mapping[str, Any], seed: int) -> str:
    """sha256 over everything that determines a request's answer (stable across runs and processes)."""
    payload = {"method": method, "args": args, "settings": dict(settings), "model": dict(model), "seed": seed}
    return text_sha256(json.dumps(payload, sort_keys=True, default=str))


def seed_for_key(key: str) -> int:
    """The request's own seed: 60 bits of its key (so it is as stable as the key itself)."""
    return int(key[:15], 16)


@dataclass(frozen=True)
class Job:
    """One model request.

    Attributes:
        method: the adapter method (one of :data:`METHODS`).
        request: the adapter request object; its ``seed`` is replaced by :func:`seed_for_key`.
        content: JSON-able description of everything in ``request`` that decides the answer (the
            prompt text, an image's content hash...): it goes into the key instead of the object.
        settings: the settings the adapter is called with.
        owner: what the request is for (``(task, doc_id)``), written into its log line.
        length: a size hint (prompt characters); batches are built from similar sizes.
        group: requests with equal ``group`` share a context and are batched next to each other.
        log: extra JSON fields for the log line (the prompt, for a person reading the log).
    """

    method: str
    request: Any
    content: Any
    settings: Settings
    owner: tuple = ()
    length: int = 0
    group: str = ""
    log: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Served:
    """A job's answer: the adapter's result object, whether it came from the log, and its cost."""

    result: Any
    cost: Cost
    from_log: bool
    key: str


def encode_result(method: str, result: Any, key: str, log: RequestLog) -> dict[str, Any]:
    """The log-line fields that let :func:`decode_result` rebuild ``result`` without the model."""
    if method in ("generate_text", "answer_about_image"):
        return {"answer": result.text, "raw": result.raw_text}
    if method == "loglikelihood":
        return {"answer": [result.logprob, result.is_greedy]}
    if method == "loglikelihood_rolling":
        return {"answer": result.logprob}
    if method == "generate_images":
        reference = log.write_artifact(key, png_bytes(result.image), ".png")
        result.artifact = artifact_path(log, reference)
        return {"artifact": reference}
    raise ValueError(f"unknown method {method!r}")


def decode_result(method: str, record: Mapping[str, Any], log: RequestLog) -> Any | None:
    """The result object of a logged answer, or None when it cannot be restored (a missing artifact, or a
    line whose fields have the wrong JSON types: an edited or foreign log), so the request is recomputed."""
    try:
        return _decode(method, record, log)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _decode(method: str, record: Mapping[str, Any], log: RequestLog) -> Any | None:
    cost = Cost(**record.get("cost", {}))
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in asdict(cost).values()):
        return None
    if method in ("generate_text", "answer_about_image"):
        answer, raw = record["answer"], record.get("raw", record["answer"])
        if not isinstance(answer, str) or not isinstance(raw, str):
            return None
        return TextResult(answer, raw, cost)
    if method == "loglikelihood":
        value = record["answer"]
        if not (isinstance(value, list) and len(value) == 2 and _number(value[0]) and isinstance(value[1], bool)):
            return None
        return LoglikelihoodResult(float(value[0]), value[1], cost)
    if method == "loglikelihood_rolling":
        value = record["answer"]
        return LoglikelihoodResult(float(value), False, cost) if _number(value) else None
    if method == "generate_images":
        data = log.read_artifact(record.get("artifact") or {})
        if data is None:
            return None
        from PIL import Image

        return ImageResult(Image.open(io.BytesIO(data)).convert("RGB"), cost, artifact_path(log, record["artifact"]))
    return None


def artifact_path(log: RequestLog, reference: Mapping[str, str]) -> str:
    """An artifact's path relative to the run folder (the request folder's parent), for records."""
    return os.path.relpath(log.artifacts / reference["path"], log.folder.parent).replace(os.sep, "/")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def png_bytes(image: Any) -> bytes:
    """PNG encoding of a PIL image or uint8 HxWx3 array (lossless: a resumed image equals the original)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class RequestEngine:
    """Answers jobs through an adapter, logging each batch and serving logged answers on reruns."""

    def __init__(
        self,
        adapter: Adapter,
        log: RequestLog | None,
        *,
        seed: int,
        batch_size: int | None = None,
        progress: bool = True,
        rank: int = 0,
    ) -> None:
        self.adapter = adapter
        self.log = log
        self.seed = int(seed)
        self.batch_size = batch_size or adapter.preferred_batch_size()
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        self.progress = progress
        self.rank = rank
        self.identity = adapter.identity()
        self.counts = {"from_log": 0, "computed": 0}
        self.on_computed: Callable[[Job, Any], None] | None = None

    def key(self, job: Job) -> str:
        return request_key(job.method, job.content, job.settings.key_dict(), self.identity, self.seed)

    def serve(self, jobs: Sequence[Job], label: str = "") -> list[Served]:
        """Answers in the order of ``jobs``: logged ones first, the rest in canonical batches."""
        keys = [self.key(job) for job in jobs]
        answers: list[Served | None] = [None] * len(jobs)
        groups: dict[tuple[str, Settings], list[int]] = defaultdict(list)
        for index, job in enumerate(jobs):
            if job.method not in METHODS:
                raise ValueError(f"unknown adapter method {job.method!r}")
            groups[(job.method, job.settings)].append(index)
        batches = []
        for (method, settings), indices in groups.items():
            indices.sort(key=lambda i: (-jobs[i].length, jobs[i].group, keys[i]))
            size = self.batch_size
            batches += [(method, settings, indices[i : i + size]) for i in range(0, len(indices), size)]
        logged = sum(1 for k in keys if self.log is not None and k in self.log)
        unreadable = 0
        bar = tqdm(
            total=len(jobs), desc=label or None, unit="req", dynamic_ncols=True,
            disable=not self.progress or self.rank != 0 or not jobs,
        )
        with bar:
            if logged:
                bar.set_postfix_str(f"{logged} from log")
            for method, settings, batch in batches:
                missing = []
                for i in batch:
                    record = self.log.get(keys[i]) if self.log is not None else None
                    result = decode_result(method, record, self.log) if record is not None else None
                    if result is None:
                        unreadable += record is not None
                        missing.append(i)
                        continue
                    answers[i] = Served(result, result.cost, True, keys[i])
                    self.counts["from_log"] += 1
                if missing:
                    self._compute(method, settings, [jobs[i] for i in missing], [keys[i] for i in missing], answers,
                                  missing)
                bar.update(len(batch))
        if unreadable and self.rank == 0:
            where = self.log.folder if self.log is not None else "the request log"
            sys.stderr.write(f"mmada-bench: warning: {unreadable} logged answer(s) in {where} could not be read back "
                             "(wrong JSON types or a missing artifact) and were recomputed\n")
        return [a for a in answers if a is not None]

    def _compute(
        self, method: str, settings: Settings, jobs: list[Job], keys: list[str], answers: list, where: list[int]
    ) -> None:
        requests = [replace(job.request, seed=seed_for_key(key)) for job, key in zip(jobs, keys, strict=True)]
        start = time.perf_counter()
        results = getattr(self.adapter, method)(requests, settings)
        if len(results) != len(requests):
            raise RuntimeError(f"{type(self.adapter).__name__}.{method} returned {len(results)} results for "
                               f"{len(requests)} requests")
        seconds = time.perf_counter() - start
        records = []
        for job, key, result, index in zip(jobs, keys, results, where, strict=True):
            if not result.cost.seconds:
                result.cost.seconds = seconds / len(jobs)
            answers[index] = Served(result, result.cost, False, key)
            if self.log is not None:
                record = {"key": key, "method": method, "owner": list(job.owner), "cost": result.cost.to_dict(),
                          "settings": settings.key_dict(), **dict(job.log)}
                record.update(encode_result(method, result, key, self.log))
                records.append(record)
            if self.on_computed is not None:
                self.on_computed(job, result)
        if self.log is not None:
            self.log.append(records)
        self.counts["computed"] += len(jobs)
