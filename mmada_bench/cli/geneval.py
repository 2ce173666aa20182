"""``mmada-bench geneval summarize results.jsonl``: GenEval's summary of the official evaluator's output.

The official ``evaluate_images.py`` (run on the ``<output>/geneval/`` folder a ``geneval`` task
writes) produces ``results.jsonl``; this prints what GenEval's ``summary_scores.py`` reports from it:
per-tag accuracy over images, the fraction of correct images and of prompts with a correct image, and
the overall score (unweighted mean over tags). ``--json`` prints the same numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("geneval", help="GenEval helpers (summarize the official evaluator's results.jsonl)",
                       description="GenEval helpers. The geneval task writes GenEval's folder layout to "
                       "<output>/geneval/ for the official evaluator; summarize reads its results.jsonl.")
    actions = p.add_subparsers(dest="geneval_command", required=True)
    summarize = actions.add_parser("summarize", help="per-tag and overall scores, as summary_scores.py prints them")
    summarize.add_argument("results", type=Path, help="results.jsonl written by GenEval's evaluate_images.py")
    summarize.add_argument("--json", action="store_true", help="print the numbers as JSON")
    summarize.set_defaults(func=_summarize)


def _summarize(args: argparse.Namespace) -> int:
    from mmada_bench.scorers.geneval import summarize_results_file

    summary = summarize_results_file(args.results)
    text = json.dumps(summary.as_record(), indent=2) if args.json else summary.render()
    sys.stdout.write(text + "\n")
    return 0
