"""What every model under test offers the tasks: requests, results and the :class:`Adapter` interface.

Tasks speak only in these terms -- never in tensors or token ids -- so a benchmark works unchanged for
any checkpoint, sampler setting or (in tests) a scripted stand-in. Every request carries its own
``seed``: the adapter seeds its random draws per request, so a result does not depend on which other
requests shared its batch or on the order requests arrive in, and a resumed run reproduces an
uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mmada_bench.adapters.settings import ImageSettings, TextSettings, UnderstandingSettings
from mmada_bench.errors import ConfigError

#: Capability names, as used by tasks to say what they need.
CAPABILITIES = ("loglikelihood", "loglikelihood_rolling", "generate_text", "answer_about_image", "generate_images")


@dataclass
class Cost:
    """What a request cost the sampler: forward passes it took part in, tokens produced, wall seconds.

    For a batched call, ``nfe`` is the number of forward passes of the batch (each request went
    through all of them) and ``seconds`` is the batch's wall time divided evenly among its requests.
    ``tokens`` counts the tokens the sampler actually decoded for the request (an early stop that
    fills the tail with EOS decodes fewer than ``gen_length``); requests that share one forward pass
    (choices of one question) charge it once, to the first of them.
    """

    nfe: int = 0
    tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_forward(self) -> float:
        """TPF = decoded tokens / forward passes, as the diffusion-LLM leaderboards report it."""
        return self.tokens / self.nfe if self.nfe else 0.0

    def add(self, other: Cost) -> Cost:
        """Accumulate in place (returns self, so totals can be folded)."""
        self.nfe += other.nfe
        self.tokens += other.tokens
        self.seconds += other.seconds
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score ``continuation`` given ``context`` (lm-eval convention: leading space in the continuation)."""

    context: str
    continuation: str
    seed: int = 0


@dataclass
class LoglikelihoodResult:
    logprob: float
    is_greedy: bool
    cost: Cost = field(default_factory=Cost)


@dataclass(frozen=True)
class TextRequest:
    """Generate text after ``prompt``; the text is cut at the first of ``until`` (not included)."""

    prompt: str
    until: tuple[str, ...] = ()
    seed: int = 0


@dataclass
class TextResult:
    text: str
    raw_text: str
    cost: Cost = field(default_factory=Cost)


@dataclass(frozen=True)
class ImageQuestion:
    """A question about one image (a PIL image, a path, or a uint8 HxWx3 array)."""

    image: Any
    question: str
    until: tuple[str, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class ImageRequest:
    """Generate one image for ``prompt``."""

    prompt: str
    seed: int = 0


@dataclass
class ImageResult:
    image: Any
    cost: Cost = field(default_factory=Cost)
    artifact: str | None = None  # where the request engine stored the PNG, relative to the run folder


class CapabilityError(ConfigError):
    """The adapter cannot do what a task asks (e.g. a text-only model asked for images).

    A user error, found before the run starts: the runner checks each task's needs against the
    adapter's capabilities and refuses the run in one line.
    """


class Adapter:
    """The model under test, as the tasks see it.

    Subclasses implement the capabilities they have; the others raise :class:`CapabilityError`.
    ``identity()`` must change whenever results could (weights, dtype, tokenizer); it is part of every
    resume key. ``describe()`` is written into results files.
    """

    #: Free-form label of the system under test (e.g. a training stage), recorded in results.
    label: str | None = None

    def identity(self) -> dict[str, Any]:
        """What determines results apart from settings and requests (hashed into resume keys)."""
        return {"adapter": type(self).__name__}

    def describe(self) -> dict[str, Any]:
        """Everything worth recording about the model under test (checkpoint, hashes, dtype...)."""
        return {**self.identity(), "label": self.label}

    def capabilities(self) -> tuple[str, ...]:
        return tuple(
            name for name in CAPABILITIES if getattr(type(self), name) is not getattr(Adapter, name)
        )

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], settings: TextSettings
    ) -> list[LoglikelihoodResult]:
        raise CapabilityError(f"{type(self).__name__} cannot score log-likelihoods")

    def loglikelihood_rolling(
        self, requests: Sequence[LoglikelihoodRequest], settings: TextSettings
    ) -> list[LoglikelihoodResult]:
        """Log-likelihood of each whole ``continuation`` (``context`` is ignored); for perplexity tasks."""
        raise CapabilityError(f"{type(self).__name__} cannot score whole texts")

    def generate_text(self, requests: Sequence[TextRequest], settings: TextSettings) -> list[TextResult]:
        raise CapabilityError(f"{type(self).__name__} cannot generate text")

    def answer_about_image(self, requests: Sequence[ImageQuestion], settings: UnderstandingSettings) -> list[TextResult]:
        raise CapabilityError(f"{type(self).__name__} cannot answer questions about images")

    def generate_images(self, requests: Sequence[ImageRequest], settings: ImageSettings) -> list[ImageResult]:
        raise CapabilityError(f"{type(self).__name__} cannot generate images")

    def preferred_batch_size(self) -> int:
        """How many requests the caller should hand over per call (and per resume checkpoint)."""
        return 1


def apply_until(text: str, until: Sequence[str]) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string (lm-eval's ``until`` contract)."""
    cut = len(text)
    for stop in until:
        if stop:
            index = text.find(stop)
            if index != -1:
                cut = min(cut, index)
    return text[:cut]
