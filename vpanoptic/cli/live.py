"""``vpanoptic live SOURCE``: a camera, stream or file shown live with its overlay.

``-o OUT`` and ``--headless OUT.mp4`` are written through temporary siblings
(`vpanoptic.outputs`) that replace them when the run ends, by Ctrl-C too.
"""

from __future__ import annotations

import argparse

from ..errors import UserError
from .common import add_config_flags, add_overwrite_flag, config_from_args

HELP = "show a webcam, stream or file live with its overlay (window or --headless file)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input",
                        help="webcam:N, /dev/videoN, rtsp:// or http(s):// URL, or a video file (played in real time)")
    parser.add_argument("-o", "--output",
                        help="folder for summary.json, snapshots and --save outputs (default: none)")
    parser.add_argument("--headless", metavar="OUT.mp4",
                        help="write the overlay video to this file instead of a window")
    add_config_flags(parser, "model", "device", "save", "policy", "max_frames", "threads",
                     config_help="YAML config file (e.g. configs/live.yaml)",
                     save="also save (needs -o): video,png,coco,jsonl",
                     policy="frame policy (default latest): every | latest | staleness:SECONDS")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--no-realtime", action="store_true",
                        help="read a file as fast as possible instead of at its rate")
    add_overwrite_flag(parser, "-o folder")
    parser.set_defaults(config_defaults={"output.save": []})  # live: nothing saved unless asked


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.save and args.output is None:
        raise UserError("--save needs an output folder: add -o OUT")
    from contextlib import ExitStack

    from ..job import SUMMARY_NAME
    from ..live import run_live
    from ..outputs import staged_file, staged_output

    with ExitStack() as stack:
        out_dir = headless = None
        if args.output is not None:
            out_dir = stack.enter_context(staged_output(args.output, command="live", overwrite=args.overwrite,
                                                        inputs=[args.input], keep_partial_with=SUMMARY_NAME))
        if args.headless is not None:
            headless = stack.enter_context(staged_file(args.headless, keep_partial=True))
        summary = run_live(args.input, cfg, out_dir=out_dir, headless=headless,
                           realtime=not args.no_realtime, duration_s=args.duration)
    lat, shown = summary["latency_ms"], summary["display"]["display_latency_ms"]
    where = f" → {args.headless}" if args.headless else ""
    print(
        f"{summary['frames']} frames in {summary['wall_time_s']:.1f} s ({summary['fps']} FPS), "
        f"latency capture→display p50 {shown['p50']} / p95 {shown['p95']} ms (end of sinks p95 {lat['p95']} ms), "
        f"dropped {summary['dropped']}, reconnects {summary['reconnects']}{where}"
    )
    return 0
