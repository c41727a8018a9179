"""``vpanoptic eval GT PRED``: score predictions against benchmark ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "score predictions against benchmark ground truth (STQ, PQ, VPQ, MOTSA, PTQ)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gt", help="ground truth: a folder (or JSON / txt file) in the chosen format")
    parser.add_argument("pred", help="prediction in the same format")
    parser.add_argument("--format", default="kitti-step",
                        help="kitti-step | motchallenge-step | cityscapes-vps | vipseg | coco | mots")
    parser.add_argument("--metrics",
                        help="comma-separated: stq,pq,vpq,motsa,ptq (default stq,pq,vpq; coco: pq; mots: motsa)")
    parser.add_argument("--json", metavar="OUT.json", help="also write all numbers and details as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Prints the table, optionally writes ``--json``."""
    from ..eval.run import DEFAULT_METRICS, evaluate_paths, format_table, to_jsonable
    from ..outputs import staged_file

    text = args.metrics if args.metrics is not None else DEFAULT_METRICS.get(args.format, "stq,pq,vpq")
    metrics = [m.strip().lower() for m in str(text).split(",") if m.strip()]
    path = Path(args.json) if args.json else None
    if path is None:
        print(format_table(evaluate_paths(args.gt, args.pred, format=args.format, metrics=metrics,
                                          progress=not args.no_progress)))
        return 0
    with staged_file(path) as tmp:  # made now: an unwritable folder fails before the work
        result = evaluate_paths(args.gt, args.pred, format=args.format, metrics=metrics, progress=not args.no_progress)
        print(format_table(result))
        tmp.write_text(json.dumps(to_jsonable(result), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0
