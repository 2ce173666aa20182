"""A scripted adapter whose answers are known in advance: the yardstick for the scoring pipeline.

Give it ``question text -> answer``; it answers the question that appears *last* in each prompt (after
any few-shot examples). Generation returns the answer; log-likelihood prefers the continuation equal
to the answer (0.0 vs -1.0). Running a task with it must score exactly the fraction of questions whose
scripted answer is right -- which tests the data loading, lm-eval prompt construction, filters,
metrics, aggregation and our records without a model in the loop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mmada_bench.adapters.base import (
    Adapter,
    Cost,
    ImageQuestion,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    TextRequest,
    TextResult,
    apply_until,
)
from mmada_bench.adapters.settings import TextSettings, UnderstandingSettings

Answer = str | Callable[[str], str]


class FixedAnswerAdapter(Adapter):
    """Answers from a table keyed by question text (values may be callables of the full prompt)."""

    def __init__(self, answers: Mapping[str, Answer], default: str = "", label: str | None = None) -> None:
        self.answers = dict(answers)
        self.default = default
        self.label = label
        self.calls: list[str] = []

    def identity(self) -> dict[str, Any]:
        table = {k: (v if isinstance(v, str) else f"<callable {getattr(v, '__name__', 'fn')}>") for k, v in self.answers.items()}
        digest = hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()
        return {"adapter": "fixed", "answers_sha256": digest}

    def answer_for(self, prompt: str) -> str:
        """The scripted answer to the question asked last in ``prompt`` (or ``default``)."""
        best, best_at = None, -1
        for question in self.answers:
            at = prompt.rfind(question)
            if at > best_at:
                best, best_at = question, at
        if best is None:
            return self.default
        value = self.answers[best]
        return value(prompt) if callable(value) else value

    def generate_text(self, requests: Sequence[TextRequest], settings: TextSettings) -> list[TextResult]:
        out = []
        for request in requests:
            self.calls.append("generate_text")
            raw = self.answer_for(request.prompt)
            out.append(TextResult(apply_until(raw, request.until), raw, Cost(nfe=1, tokens=len(raw), seconds=0.0)))
        return out

    def answer_about_image(
        self, requests: Sequence[ImageQuestion], settings: UnderstandingSettings
    ) -> list[TextResult]:
        """Answer by the question text alone (the image is never opened), so MMU scoring can be checked
        against answers known in advance exactly as :meth:`generate_text` does for text tasks."""
        out = []
        for request in requests:
            self.calls.append("answer_about_image")
            raw = self.answer_for(request.question)
            out.append(TextResult(apply_until(raw, request.until), raw, Cost(nfe=1, tokens=len(raw), seconds=0.0)))
        return out

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], settings: TextSettings
    ) -> list[LoglikelihoodResult]:
        out = []
        for request in requests:
            self.calls.append("loglikelihood")
            right = request.continuation.strip() == self.answer_for(request.context).strip()
            out.append(LoglikelihoodResult(0.0 if right else -1.0, right, Cost(nfe=1)))
        return out

    def preferred_batch_size(self) -> int:
        return 4
