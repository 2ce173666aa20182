"""VLMEvalKit bridge: our MMaDA adapter behind VLMEvalKit's model interface, for any VLMEvalKit dataset.

VLMEvalKit (``vlmeval``) drives a model through four methods of its ``BaseModel``: its inference
loop calls ``set_dump_image(dataset.dump_image)``, then per row ``use_custom_prompt(name)`` and, if
True, ``build_prompt(line, dataset=name)`` (else the dataset's own ``build_prompt(line)``), then
``generate(message=struct, dataset=name)``; a message is a list of ``{"type": "image"|"text",
"value": ...}`` dicts. :class:`MMaDAVLMEval` implements that contract without importing vlmeval
(VLMEvalKit is not on PyPI, and its repackagings import torchvision, which does not load with the
CPU torch this project pins), so a VLMEvalKit checkout can register it as is::

    from functools import partial
    from vlmeval.config import supported_VLM
    from mmada_bench.backends.vlmevalkit import MMaDAVLMEval
    supported_VLM["MMaDA-bench"] = partial(MMaDAVLMEval, model="Gen-Verse/MMaDA-8B-MixCoT")

What a prediction is made of is exactly what ``mmada-bench run`` uses, so the two agree answer for
answer on the same rows and settings (tested):

* prompts: for the datasets our MMU tasks know (POPE, MME, GQA, MMMU, VQAv2, easy-VQA) the MMaDA
  wrapper's rules of :mod:`mmada_bench.tasks.mmu.prompts`; any other dataset keeps VLMEvalKit's own
  prompt (``use_custom_prompt`` is False), where the reference wrapper would apply its per-type rules;
* the request goes through the same :class:`~mmada_bench.engine.serve.RequestEngine`, with the same
  key content (question text + image file sha256) and run seed, so even stochastic settings draw the
  same noise as a native run; an optional request log makes VLMEvalKit runs resumable and lets them
  reuse answers a native run already computed;
* settings: the reference defaults (2 tokens, 2 steps, block 2), the wrapper's per-dataset table for
  the sets it tunes, then ``sampler`` (``preset=cot`` or field overrides, as ``--sampler``);
* the answer is post-processed like the wrapper (Y/N, MCQ letter, MME cut); VLMEvalKit then scores it.

Only the first image of a message is shown (the wrapper does the same); a message without an image is
a :class:`~mmada_bench.errors.DataError`, as MMaDA's understanding mode needs one.
"""

from __future__ import annotations

import math
import mimetypes
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mmada_bench.adapters.base import Adapter, ImageQuestion
from mmada_bench.adapters.settings import UnderstandingSettings, parse_assignments
from mmada_bench.engine.request_log import RequestLog
from mmada_bench.engine.serve import Job, RequestEngine
from mmada_bench.errors import ConfigError, DataError
from mmada_bench.scorers.vlmeval import mmada_postprocess
from mmada_bench.tasks.mmu.benchmarks import PRESETS
from mmada_bench.tasks.mmu.prompts import build_prompt, dataset_family, postprocess
from mmada_bench.tasks.mmu.rows import ImageRef, MMURow, check_image_file
from mmada_bench.tasks.mmu.tsv import decode_image_cell

#: The run seed ``mmada-bench run`` uses without ``--seed`` (its adapter seed): equal keys, equal noise.
DEFAULT_SEED = 1234

#: The reference wrapper's ``dataset_configs.py`` (spec §6.2): datasets with a longer answer budget.
WRAPPER_DATASET_SETTINGS: dict[str, dict[str, int]] = {
    "MathVista_MINI": {"gen_length": 96, "steps": 96, "block_length": 48},
    "MathVerse_MINI_Vision_Only": {"gen_length": 256, "steps": 128, "block_length": 32},
    "MMVet": {"gen_length": 512, "steps": 256, "block_length": 128},
}

Message = list[dict[str, Any]]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """A pandas/numpy cell as a plain Python value (NaN -> None, numpy scalars -> int/float/str)."""
    if _missing(value):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, (str, bytes)) else value


def line_to_row(line: Mapping[str, Any], images: Sequence[str | Path]) -> MMURow:
    """A VLMEvalKit row (``pd.Series`` or dict) and its image files as the row type our prompts take."""
    cells = {str(k): _plain(v) for k, v in line.items() if k != "image"}
    index = cells.pop("index", None)
    if index is None:
        raise DataError("VLMEvalKit row without 'index'")
    question = cells.pop("question", None)
    if question is None:
        raise DataError(f"VLMEvalKit row {index}: field 'question' is empty")
    answer = cells.pop("answer", None)
    answer = [str(a) for a in answer] if isinstance(answer, list) else "" if answer is None else str(answer)
    return MMURow(str(index), str(question), answer, tuple(ImageRef(Path(p)) for p in images),
                  MappingProxyType(cells))


def _is_image_file(text: str) -> bool:
    kind, _ = mimetypes.guess_type(text)
    return bool(kind and kind.startswith("image/") and os.path.isfile(text))


class MMaDAVLMEval:
    """VLMEvalKit model interface over :class:`~mmada_bench.adapters.mmada.MMaDAAdapter` (see module doc).

    Args:
        model: checkpoint folder, hub id or preset (``tiny``), as ``mmada-bench run --model``.
        adapter: an adapter already built (then ``model``, ``device``, ``dtype``... are unused).
        sampler: ``"steps=4,gen_length=4"`` / a mapping, applied last; ``preset=cot`` picks a preset.
        seed: the run seed (``mmada-bench run --seed``; default the same as a run without it).
        request_log: a folder for the request log (e.g. a ``mmada-bench`` run's ``requests/``).
    """

    INTERLEAVE = False
    is_api = False
    allowed_types = ("text", "image")

    def __init__(
        self,
        model: str | None = None,
        *,
        adapter: Adapter | None = None,
        sampler: str | Mapping[str, Any] | None = None,
        seed: int = DEFAULT_SEED,
        batch_size: int = 8,
        device: str | None = "auto",
        dtype: str = "float32",
        vq_model: str | None = None,
        tokenizer: str | None = None,
        request_log: str | Path | None = None,
    ) -> None:
        if adapter is None:
            if model is None:
                raise ConfigError("MMaDAVLMEval needs model= (a checkpoint, hub id or preset) or adapter=")
            from mmada_bench.adapters.mmada import MMaDAAdapter

            adapter = MMaDAAdapter.from_checkpoint(model, dtype=dtype, device=device, batch_size=batch_size,
                                                   vq_model=vq_model, tokenizer=tokenizer)
        if "answer_about_image" not in adapter.capabilities():
            raise ConfigError(f"{type(adapter).__name__} cannot answer questions about images "
                              f"(no image tokenizer?); the VLMEvalKit bridge needs it")
        self.adapter = adapter
        self.sampler = dict(parse_assignments(sampler) if isinstance(sampler, str) else (sampler or {}))
        self.preset = self.sampler.pop("preset", None)
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(f"unknown sampler preset {self.preset!r} (presets: {', '.join(sorted(PRESETS))})")
        log = RequestLog(Path(request_log)) if request_log is not None else None
        self.engine = RequestEngine(adapter, log, seed=seed, batch_size=batch_size, progress=False)
        self.dump_image_func: Callable[[Any], Any] | None = None

    # -- VLMEvalKit's BaseModel interface --------------------------------------------------------
    def use_custom_prompt(self, dataset: str | None) -> bool:
        """True for the datasets whose MMaDA-wrapper prompt rule we reproduce; others keep VLMEvalKit's."""
        return dataset is not None and _family(dataset) is not None

    def set_dump_image(self, dump_image_func: Callable[[Any], Any]) -> None:
        """VLMEvalKit hands over its dataset's ``dump_image`` (base64 -> files) before inference."""
        self.dump_image_func = dump_image_func

    def dump_image(self, line: Mapping[str, Any], dataset: str | None = None) -> list[str]:
        """The row's image files: the dataset's own dump when VLMEvalKit set one, else decoded here
        (base64 ``image`` into our content-addressed cache, or ``image_path`` files as they are)."""
        if self.dump_image_func is not None:
            paths = self.dump_image_func(line)
            return [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        where = f"{dataset or 'VLMEvalKit'} row {_plain(line.get('index'))}"
        image = _plain(line.get("image"))
        if isinstance(image, list):
            image = str(image)
        if image:
            return [str(ref.path) for ref in decode_image_cell(where, str(image))]
        path = _plain(line.get("image_path"))
        if not path:
            raise DataError(f"{where}: no 'image' and no 'image_path'")
        paths = [str(p) for p in (path if isinstance(path, list) else [path])]
        for p in paths:
            try:
                check_image_file(Path(p))
            except (OSError, ValueError) as exc:
                raise DataError(f"{where}: field 'image_path' file {p} is not a readable image ({exc})") from None
        return paths

    def build_prompt(self, line: Mapping[str, Any], dataset: str | None = None) -> Message:
        """Every image of the row, then the wrapper's question text (only the first image is shown)."""
        if dataset is None or _family(dataset) is None:
            raise ConfigError(f"no MMaDA prompt rule for dataset {dataset!r}; use_custom_prompt is False for it")
        paths = self.dump_image(line, dataset)
        text, _ = build_prompt(dataset, line_to_row(line, paths))
        return [*({"type": "image", "value": p} for p in paths), {"type": "text", "value": text}]

    def generate(self, message: Any, dataset: str | None = None) -> str:
        """BaseModel.generate: normalise the message (str, dict, list of str or dicts), then answer."""
        return self.generate_inner(self.preproc_content(message), dataset)

    def generate_inner(self, message: Message, dataset: str | None = None) -> str:
        return self.generate_many([message], dataset)[0]

    # -- beyond VLMEvalKit: many messages in one batched call ---------------------------------------
    def generate_many(self, messages: Sequence[Message], dataset: str | None = None) -> list[str]:
        """Answers to many messages of one dataset, batched by the engine (VLMEvalKit asks one at a time)."""
        settings = self.settings_for(dataset)
        jobs = []
        for message in messages:
            image, text = self.message_to_promptimg(message)
            sha = ImageRef(Path(image)).sha256
            jobs.append(Job("answer_about_image", ImageQuestion(image=str(image), question=text),
                            {"question": text, "image_sha256": sha}, settings, owner=("vlmevalkit", dataset or ""),
                            length=len(text)))
        served = self.engine.serve(jobs)
        return [self.postprocess(s.result.text, dataset) for s in served]

    def settings_for(self, dataset: str | None) -> UnderstandingSettings:
        """Reference defaults, the wrapper's per-dataset budget, the preset, then ``sampler`` overrides."""
        settings = UnderstandingSettings().updated(WRAPPER_DATASET_SETTINGS.get(dataset or ""))
        if self.preset is not None:
            settings = settings.updated(PRESETS[self.preset])
        settings = settings.updated(self.sampler)
        settings.check()
        return settings

    @staticmethod
    def postprocess(raw: str, dataset: str | None) -> str:
        """The wrapper's answer rewriting: by our prompt family, else by VLMEvalKit's dataset type."""
        if dataset and _family(dataset) is not None:
            return postprocess(dataset, raw)
        return mmada_postprocess(raw, _vlmeval_type(dataset), dataset or "")

    # -- message handling (BaseModel's rules) ---------------------------------------------------
    def preproc_content(self, message: Any) -> Message:
        """str -> one text item; dict -> itself; list of str -> image items for image files, else text."""
        if isinstance(message, str):
            items: list[Any] = [{"type": "text", "value": message}]
        elif isinstance(message, dict):
            items = [message]
        elif isinstance(message, list) and all(isinstance(m, str) for m in message):
            items = [{"type": "image" if _is_image_file(m) else "text", "value": m} for m in message]
        elif isinstance(message, list) and all(isinstance(m, dict) for m in message):
            items = message
        else:
            raise DataError(f"VLMEvalKit message must be a str, a dict or a list of either, got {message!r:.80}")
        for item in items:
            if "type" not in item or "value" not in item:
                raise DataError(f"VLMEvalKit message item without 'type'/'value': {item!r:.80}")
            if item["type"] not in self.allowed_types:
                raise DataError(f"VLMEvalKit message item type {item['type']!r} (MMaDA takes text and images)")
        return items

    @staticmethod
    def message_to_promptimg(message: Message) -> tuple[str, str]:
        """BaseModel's rule for non-interleaved models: the first image, and all texts joined by newlines."""
        images = [str(item["value"]) for item in message if item["type"] == "image"]
        text = "\n".join(str(item["value"]) for item in message if item["type"] == "text")
        if not images:
            raise DataError(f"VLMEvalKit message without an image (MMaDA's understanding mode needs one): {text:.80}")
        return images[0], text


def _family(dataset: str) -> str | None:
    try:
        return dataset_family(dataset)
    except ConfigError:
        return None


def _vlmeval_type(dataset: str | None) -> str:
    """VLMEvalKit's ``DATASET_TYPE`` when vlmeval is importable (inside a VLMEvalKit run), else none."""
    if not dataset:
        return ""
    try:
        from vlmeval.dataset import DATASET_TYPE  # type: ignore[import-not-found]
    except Exception:  # not installed, or a repackaging that fails to import: no type-specific rewrite
        return ""
    try:
        return str(DATASET_TYPE(dataset))
    except Exception:
        return ""
