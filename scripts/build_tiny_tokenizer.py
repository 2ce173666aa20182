"""Build the tiny tokenizer shipped in ``mmada_bench/model/assets/tiny_tokenizer``.

Run once when the tiny layout or corpus changes; the result is committed, so users never train it.
The corpus is text packaged with the installed ``lm_eval`` (see
:func:`mmada_bench.model.tokenizer.default_tiny_corpus`); its sha256 is stored in ``build_info.json``
so the test suite can check that the shipped files are exactly what this script produces.

    .venv/bin/python scripts/build_tiny_tokenizer.py [--text-vocab-size 2048] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmada_bench.model.tokenizer import (
    TINY_TEXT_VOCAB_SIZE,
    TINY_TOKENIZER_DIR,
    build_tiny_tokenizer,
    corpus_digest,
    default_tiny_corpus,
    save_tiny_tokenizer,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-vocab-size", type=int, default=TINY_TEXT_VOCAB_SIZE,
                        help="ids of the text range (llm_vocab_size), specials included")
    parser.add_argument("--out", type=Path, default=TINY_TOKENIZER_DIR, help="output folder")
    args = parser.parse_args(argv)
    corpus = default_tiny_corpus()
    tokenizer = build_tiny_tokenizer(args.text_vocab_size, corpus)
    save_tiny_tokenizer(tokenizer, args.out, corpus_digest(corpus))
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {len(tokenizer)}-id tiny tokenizer to {args.out} ({total / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
