"""``vpanoptic experiment SPEC.yaml``: a grid of tracker / model configurations, compared."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run a grid of tracker / model configurations and compare them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="experiment YAML (see configs/experiments/)")
    parser.add_argument("-o", "--output", help="output folder (default: the spec's `output`, else runs/<spec name>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..experiment import load_spec, markdown_report, run_experiment

    spec = load_spec(args.spec)
    out = Path(args.output or spec.output or Path("runs") / spec.name)
    summary = run_experiment(spec, out, progress=not args.no_progress)
    print(markdown_report(summary))
    print(f"wrote results.md, results.json and plots to {out}")
    return 0
