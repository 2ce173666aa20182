"""MMaDA as an lm-eval model (``--model mmada``), with per-request resume and progress.

lm-eval owns prompts, few-shot, filters and metrics; this class only answers its three request
types through an :class:`~mmada_bench.adapters.base.Adapter`:

* ``loglikelihood``: LLaDA's Monte Carlo estimator (``mc_num``, ``mc_batch``, ``cfg``), one exact pass
  for one-token continuations -- the reference script crashes here (``self.cfg`` is never set);
* ``loglikelihood_rolling``: the same estimator over windows of the text;
* ``generate_until``: the adapter's batched ``generate_text`` (the reference generates one prompt at a
  time), output cut at the task's ``until`` strings. Sampler settings (``gen_length``, ``steps``...)
  govern; the task's ``max_gen_toks`` / ``temperature`` are kept in the record but not used.

Resume: with a :class:`~mmada_bench.results.RequestLog`, each request's answer is looked up by a key
hashing (method, arguments, sampler settings, model identity, seed) and appended as soon as its
batch finishes. Batches are formed the same way on every run (requests sorted by prompt length and
key, then cut into ``batch_size`` chunks); logged answers are served and never recomputed, and a batch
is run with its unlogged members only. A batch's answers are written in one flushed write, so after
a kill a batch is either fully logged or not at all, and a resumed run feeds the model exactly the
batches an uninterrupted run would have.

Model args (``--model_args k=v,...``): ``pretrained`` (folder or preset), ``dtype``, ``label``,
``seed``, ``store`` (folder for the request log), ``vq_model``, ``tokenizer``, and any
:class:`~mmada_bench.adapters.settings.TextSettings` field.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm.auto import tqdm

from mmada_bench.adapters.base import Adapter, Cost, LoglikelihoodRequest, TextRequest
from mmada_bench.adapters.settings import TextSettings, coerce
from mmada_bench.errors import ConfigError

#: Arguments lm-eval may pass that mean nothing here (accepted so its CLI flags do not break us).
_IGNORED_ARGS = ("max_batch_size", "trust_remote_code", "parallelize", "max_length_override")


def request_key(method: str, args: tuple, settings: Mapping[str, Any], model: Mapping[str, Any], seed: int) -> str:
    """sha256 over everything that determines a request's answer (stable across runs and processes)."""
    payload = {"method": method, "args": list(args), "settings": dict(settings), "model": dict(model), "seed": seed}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Distributed:
    """Rank/world size and collectives under ``accelerate launch``; a no-op single process otherwise."""

    def __init__(self) -> None:
        import os

        self.rank, self.world_size, self.device = 0, 1, None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch
            from accelerate import PartialState

            # Without CUDA, accelerate only sets up a process group (gloo) when told it runs on CPU.
            state = PartialState(cpu=not torch.cuda.is_available())
            self.rank, self.world_size, self.device = state.process_index, state.num_processes, state.device

    def all_gather(self, tensor):
        import torch
        import torch.distributed as dist

        if self.world_size == 1:
            return tensor.reshape(1, *tensor.shape)
        parts = [torch.zeros_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor)
        return torch.stack(parts)

    def gather_object(self, obj: Any) -> list[Any]:
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, obj)
        return parts

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()


@register_model("mmada")
class MMaDALM(LM):
    """lm-eval ``LM`` backed by an :class:`Adapter` (built from ``pretrained`` when none is given)."""

    def __init__(
        self,
        pretrained: str | None = None,
        adapter: Adapter | None = None,
        *,
        dtype: str = "float32",
        device: str | None = None,
        batch_size: int | str | None = None,
        label: str | None = None,
        seed: int = 1234,
        store: Any = None,
        task_settings: Mapping[str, TextSettings] | None = None,
        progress: bool = True,
        progress_label: str | None = None,
        vq_model: str | None = None,
        tokenizer: str | None = None,
        distributed: Distributed | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        sampler_args = {k: v for k, v in kwargs.items() if k not in _IGNORED_ARGS}
        self.settings = TextSettings().updated(coerce(TextSettings, sampler_args))
        self.dist = distributed or Distributed()
        self._rank, self._world_size = self.dist.rank, self.dist.world_size
        size = _batch_size(batch_size)
        if adapter is None:
            if not pretrained:
                raise ConfigError("lm-eval model mmada needs pretrained=<checkpoint folder or preset name>")
            from mmada_bench.adapters.mmada import MMaDAAdapter

            adapter = MMaDAAdapter.from_checkpoint(
                str(pretrained), dtype=dtype, device=_usable_device(self.dist.device or device),
                batch_size=size or 8, label=label, vq_model=vq_model, tokenizer=tokenizer,
            )
        self.adapter = adapter
        self.seed = int(seed)
        self.batch_size = size or adapter.preferred_batch_size()
        if isinstance(store, (str, Path)):
            from mmada_bench.results import RequestLog

            store = RequestLog(Path(store), self._rank)
        self.store = store
        self.task_settings = dict(task_settings or {})
        self.progress = progress
        self.progress_label = progress_label
        self.costs: dict[tuple[str, int], Cost] = defaultdict(Cost)
        self.counts = {"cached": 0, "computed": 0}
        self._identity = adapter.identity()

    # -- lm-eval plumbing --------------------------------------------------------------------------
    @property
    def device(self):
        return getattr(getattr(self.adapter, "loaded", None), "device", "cpu")

    def all_gather(self, tensor):
        return self.dist.all_gather(tensor)

    def gather_object(self, obj, dst=0):
        return self.dist.gather_object(obj)

    def barrier(self) -> None:
        self.dist.barrier()

    @property
    def tokenizer_name(self) -> str:
        return f"mmada:{self._identity.get('checkpoint_fingerprint', type(self.adapter).__name__)}"

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """lm-eval's ``--apply_chat_template``: MMaDA's single-newline text template (spec §3.3)."""
        from mmada_bench.adapters.loading import chat_messages

        tokenizer = getattr(self.adapter, "tokenizer", None)
        return chat_messages(chat_history, getattr(tokenizer, "bos_token", "") or "")

    def chat_template(self, chat_template: bool | str = False) -> str:
        return "mmada-text-chat" if chat_template else ""

    def get_model_info(self) -> dict[str, Any]:
        return {"mmada": self.adapter.describe(), "sampler": self.settings.to_dict()}

    # -- requests ----------------------------------------------------------------------------------
    def settings_for(self, task_name: str | None) -> TextSettings:
        return self.task_settings.get(task_name or "", self.settings)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self._serve("loglikelihood", requests, self._run_loglikelihood)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self._serve("loglikelihood_rolling", requests, self._run_rolling)

    def generate_until(self, requests, disable_tqdm: bool = False):
        return self._serve("generate_until", requests, self._run_generate)

    def _settings_dict(self, method: str, settings: TextSettings) -> dict[str, Any]:
        return settings.generation_dict() if method == "generate_until" else settings.loglikelihood_dict()

    def _serve(self, method: str, instances: list, run: Callable) -> list[Any]:
        """Answer ``instances`` in order: logged answers first, the rest in canonical batches."""
        keys, settings_of = [], []
        for inst in instances:
            settings = self.settings_for(inst.task_name)
            settings_of.append(settings)
            keys.append(request_key(method, inst.args, self._settings_dict(method, settings), self._identity, self.seed))
        answers: list[Any] = [None] * len(instances)
        groups: dict[TextSettings, list[int]] = defaultdict(list)
        for index, settings in enumerate(settings_of):
            groups[settings].append(index)
        batches = []
        for settings, indices in groups.items():
            indices.sort(key=lambda i: (-len(str(instances[i].args[0])), keys[i]))
            batches += [(settings, indices[i : i + self.batch_size]) for i in range(0, len(indices), self.batch_size)]
        cached = sum(1 for k in keys if self.store is not None and k in self.store)
        label = self.progress_label or (instances[0].task_name if instances else "")
        bar = tqdm(
            total=len(instances), initial=0, desc=f"{label} {method}".strip(), unit="req",
            disable=not self.progress or self._rank != 0 or not instances, dynamic_ncols=True,
        )
        with bar:
            if cached:
                bar.set_postfix_str(f"{cached} from log")
            for settings, batch in batches:
                missing = []
                for i in batch:
                    record = self.store.get(keys[i]) if self.store is not None else None
                    if record is None:
                        missing.append(i)
                        continue
                    answers[i] = self._restore(method, record)
                    self._account(instances[i], Cost(**record.get("cost", {})))
                    self.counts["cached"] += 1
                if not missing:
                    bar.update(len(batch))
                    continue
                outputs = run([instances[i] for i in missing], [int(keys[i][:15], 16) for i in missing], settings)
                records = []
                for i, (answer, record_extra, cost) in zip(missing, outputs, strict=True):
                    answers[i] = answer
                    self._account(instances[i], cost)
                    records.append(self._record(method, keys[i], instances[i], answer, record_extra, cost, settings))
                    if getattr(self, "cache_hook", None) is not None:
                        self.cache_hook.add_partial(method, instances[i].args, answer)
                if self.store is not None:
                    self.store.append(records)
                self.counts["computed"] += len(missing)
                bar.update(len(batch))
        return answers

    def _account(self, inst, cost: Cost) -> None:
        self.costs[(inst.task_name, inst.doc_id)].add(cost)

    def _record(self, method, key, inst, answer, extra, cost: Cost, settings: TextSettings) -> dict[str, Any]:
        context = str(inst.args[0])
        record = {
            "key": key,
            "method": method,
            "task": inst.task_name,
            "doc_id": inst.doc_id,
            "prompt_sha256": _sha(context),
            "answer": list(answer) if isinstance(answer, tuple) else answer,
            "cost": cost.to_dict(),
            "settings": self._settings_dict(method, settings),
        }
        if method == "generate_until":
            record["prompt"] = context
            record["gen_kwargs"] = inst.args[1]
        elif method == "loglikelihood":
            record["continuation"] = inst.args[1]
        record.update(extra)
        return record

    @staticmethod
    def _restore(method: str, record: dict[str, Any]) -> Any:
        answer = record["answer"]
        return (float(answer[0]), bool(answer[1])) if method == "loglikelihood" else answer

    # -- adapter calls -----------------------------------------------------------------------------
    def _run_loglikelihood(self, batch: list, seeds: list[int], settings: TextSettings) -> list:
        requests = [LoglikelihoodRequest(str(i.args[0]), str(i.args[1]), seed) for i, seed in zip(batch, seeds, strict=True)]
        out = self.adapter.loglikelihood(requests, settings)
        return [((r.logprob, r.is_greedy), {}, r.cost) for r in out]

    def _run_rolling(self, batch: list, seeds: list[int], settings: TextSettings) -> list:
        requests = [LoglikelihoodRequest("", str(i.args[0]), seed) for i, seed in zip(batch, seeds, strict=True)]
        out = self.adapter.loglikelihood_rolling(requests, settings)
        return [(r.logprob, {}, r.cost) for r in out]

    def _run_generate(self, batch: list, seeds: list[int], settings: TextSettings) -> list:
        requests = []
        for inst, seed in zip(batch, seeds, strict=True):
            context, gen_kwargs = inst.args[0], (inst.args[1] if len(inst.args) > 1 else {}) or {}
            until = gen_kwargs.get("until") or ()
            requests.append(TextRequest(str(context), (until,) if isinstance(until, str) else tuple(until), seed))
        out = self.adapter.generate_text(requests, settings)
        return [(r.text, {"raw": r.raw_text}, r.cost) for r in out]


def _usable_device(device: Any) -> str | None:
    """lm-eval's CLI defaults to ``cuda:0``; on a machine without CUDA fall back to the CPU (and say so)."""
    if device is None:
        return None
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        logging.getLogger(__name__).warning("device %s is not available; running mmada on cpu", device)
        return "cpu"
    return str(device)


def _batch_size(value: int | str | None) -> int | None:
    """lm-eval passes ints, numeric strings, or ``auto``/``auto:N`` (treated as 'adapter default')."""
    if value is None or (isinstance(value, str) and value.startswith("auto")):
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"batch size must be a positive integer or auto, got {value!r}") from None
    if size < 1:
        raise ConfigError(f"batch size must be a positive integer, got {size}")
    return size
