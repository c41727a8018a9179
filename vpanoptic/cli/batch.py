"""``vpanoptic batch INPUT_DIR -o OUTPUT_DIR``: every video of a folder, one output folder each."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_config_flags, config_from_args

HELP = "process every video of a folder, one output folder each, resumable"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="folder of videos")
    parser.add_argument("-o", "--output", required=True,
                        help="output folder (one subfolder per video + batch_report.csv/json)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (default 1); torch threads are split among them")
    parser.add_argument("--glob", help="file pattern, e.g. '*.mp4' (default: common video extensions)")
    parser.add_argument("--force", action="store_true", help="redo videos that are already complete")
    parser.add_argument("--overwrite", action="store_true",
                        help="use a non-empty output folder that is not a batch's (its other files are left alone)")
    add_config_flags(parser, "model", "device", "save", "threads", config_help="YAML config file (see configs/)",
                     threads="torch threads per worker (0 = cores / workers)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Returns 0 if every video completed (ok or damaged), 1 if any failed."""
    cfg = config_from_args(args)
    from ..batch import REPORT_CSV, report_line, run_batch

    report = run_batch(args.input, args.output, cfg, workers=args.workers, glob=args.glob,
                       force=args.force, overwrite=args.overwrite, progress=not args.no_progress)
    if args.no_progress:
        for row in report["items"]:
            print(report_line(row))
    print(f"{totals_line(report)} → {Path(args.output) / REPORT_CSV}")
    return 1 if report["failed"] else 0


def totals_line(report: dict) -> str:
    """The last line of `vpanoptic batch`: counts, and the rate of the videos processed now."""
    line = (f"{report['videos']} videos: {report['ok']} ok, {report['damaged']} damaged, {report['failed']} failed, "
            f"{report['skipped']} already done; ")
    if report["skipped"] == report["videos"]:
        return line + "nothing left to do"
    rate = report["videos_per_hour"]  # None when no video was completed now
    return line + (f"{report['frames']} frames in {report['wall_time_s']:.1f} s ("
                   + (f"{rate} videos/hour, " if rate is not None else "")
                   + f"{report['workers']} workers x {report['torch_threads_per_worker']} threads)")
