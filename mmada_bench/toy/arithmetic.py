"""The toy world's text task: shape-counting word problems in GSM8K's format.

GSM8K rows are ``{"question", "answer"}`` with the answer's worked steps ending in ``#### <number>``;
writing the toy task the same way lets the ``toy_count`` task (lm-eval's GSM8K prompt and its strict
and flexible extraction, 0-shot; rows shipped in ``tasks/text/toy_data``) score a tiny model on it,
so the text path of the embedded default earns a real number. Problems use the toy world's words (colours, shapes) and
small numbers (one- and two-digit results) so a few-million-parameter model can learn them; chance is
roughly one in the number of possible answers (about 1/20), far below what a trained model reaches.

Generation is deterministic: one :class:`random.Random` per split, seeded by the split's name, and
the test questions are disjoint from the train questions by construction (duplicates are redrawn).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from mmada_bench.errors import ConfigError
from mmada_bench.toy.world import COLORS, SHAPES

#: Default sizes: enough train rows for a stage-1 mix, a test split small enough to score on a CPU.
SPLIT_ROWS: dict[str, int] = {"train": 2000, "test": 200}
#: How far the train stream is drawn for text pretraining: about as far as it goes (the product
#: problems run out of distinct questions at 1,536, a quarter of the stream).
PRETRAIN_DRAWS = 6000
SEEDS: dict[str, int] = {"train": 1301, "test": 1302}

Problem = tuple[str, str, int]  # question, worked steps (without the final line), answer


def _plural(shape: str, n: int) -> str:
    return shape if n == 1 else f"{shape}s"


def _sum(rng: random.Random) -> Problem:
    c1, c2 = rng.sample(COLORS, 2)
    shape = rng.choice(SHAPES)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    question = (f"A picture has {a} {c1} {_plural(shape, a)} and {b} {c2} {_plural(shape, b)}. "
                f"How many {shape}s are in the picture?")
    return question, f"There are {a} + {b} = {a + b} {shape}s.", a + b


def _difference(rng: random.Random) -> Problem:
    colour, shape = rng.choice(COLORS), rng.choice(SHAPES)
    total = rng.randint(2, 19)
    removed = rng.randint(1, total - 1)
    question = (f"There are {total} {colour} {_plural(shape, total)} on a page. {removed} of them "
                f"{'is' if removed == 1 else 'are'} erased. How many {colour} {shape}s are left?")
    return question, f"{total} - {removed} = {total - removed} {shape}s are left.", total - removed


def _product(rng: random.Random) -> Problem:
    colour, shape = rng.choice(COLORS), rng.choice(SHAPES)
    pages, each = rng.randint(2, 9), rng.randint(2, 9)
    question = (f"Each page shows {each} {colour} {shape}s. How many {colour} {shape}s are on "
                f"{pages} pages?")
    return question, f"{pages} pages x {each} {shape}s = {pages * each} {shape}s.", pages * each


def _two_step(rng: random.Random) -> Problem:
    s1, s2 = rng.sample(SHAPES, 2)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    removed = rng.randint(1, a + b - 1)
    question = (f"A box holds {a} {_plural(s1, a)} and {b} {_plural(s2, b)}. {removed} "
                f"{'shape is' if removed == 1 else 'shapes are'} taken out. How many shapes are still in the box?")
    steps = f"The box holds {a} + {b} = {a + b} shapes. After taking {removed} out, {a + b} - {removed} = " \
            f"{a + b - removed} shapes are left."
    return question, steps, a + b - removed


GENERATORS: tuple[Callable[[random.Random], Problem], ...] = (_sum, _difference, _product, _two_step)


def gsm8k_answer(steps: str, answer: int) -> str:
    """GSM8K's answer field: the worked steps, then ``#### <number>`` on its own line."""
    return f"{steps}\n#### {answer}"


def shape_problems(split: str, rows: int | None = None) -> list[dict[str, str]]:
    """``rows`` GSM8K-format rows of ``split`` (default :data:`SPLIT_ROWS`), the same on every call.

    Test rows never repeat a train question (generation of the train split is replayed to know them).
    """
    if split not in SEEDS:
        raise ConfigError(f"toy text task split must be one of {sorted(SEEDS)}, got {split!r}")
    count = SPLIT_ROWS[split] if rows is None else rows
    if count < 1:
        raise ConfigError(f"toy text task needs at least one row, got {count}")
    banned = {row["question"] for row in shape_problems("train")} if split == "test" else set()
    rng = random.Random(SEEDS[split])
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > 50 * count:
            raise ConfigError(f"cannot draw {count} distinct toy problems for split {split!r}")
        question, steps, answer = GENERATORS[len(out) % len(GENERATORS)](rng)
        if question in seen or question in banned:
            continue
        seen.add(question)
        out.append({"question": question, "answer": gsm8k_answer(steps, answer)})
    return out


def pretraining_problems(draws: int = PRETRAIN_DRAWS) -> list[dict[str, str]]:
    """The text-pretraining rows: the train stream drawn ``draws`` deep, less any test question.

    The test split only avoids the first :data:`SPLIT_ROWS` train rows (which this list starts with), so
    the deeper draw meets some test questions (91 of 6,000) and drops them: the test split stays what
    it always was, and no test question is ever trained on.
    """
    test = {row["question"] for row in shape_problems("test")}
    return [row for row in shape_problems("train", draws) if row["question"] not in test]
