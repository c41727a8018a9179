"""``vpanoptic run INPUT -o OUTDIR``: segment and track one input into a folder of outputs.

The folder is written through a temporary sibling (`vpanoptic.outputs.staged_output`): it
holds this run's files only; an interrupted or failed run still replaces it, its
summary.json saying so.
"""

from __future__ import annotations

import argparse

from .common import add_config_flags, add_overwrite_flag, config_from_args

HELP = "segment and track a video, image folder, webcam or stream"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="video file, image folder, webcam:N, /dev/videoN, rtsp:// or http(s):// URL")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    add_config_flags(parser, "model", "device", "save", "policy", "max_frames", "realtime", "batch_size",
                     "threads", "weights", config_help="YAML config file (see configs/)")
    add_overwrite_flag(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from ..job import SUMMARY_NAME, run_video
    from ..outputs import staged_output

    with staged_output(args.output, command="run", overwrite=args.overwrite, inputs=[args.input],
                       keep_partial_with=SUMMARY_NAME) as tmp:
        summary = run_video(args.input, tmp, cfg, progress=not args.no_progress)
    lat = summary["latency_ms"]
    print(
        f"{summary['frames']} frames in {summary['wall_time_s']:.2f} s ({summary['fps']} FPS), "
        f"latency p50 {lat['p50']} ms / p95 {lat['p95']} ms, dropped {summary['dropped']}, "
        f"damaged packets {summary['damaged_packets']} → {args.output}"
    )
    return 0
