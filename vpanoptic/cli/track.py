"""``vpanoptic track PRED_DIR -o OUTDIR``: temporally consistent ids for per-frame predictions.

OUTDIR is written through a temporary sibling (`vpanoptic.outputs.staged_output`) that
replaces it once every sequence is done; an interrupted run leaves OUTDIR as it was.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_config_flags, add_overwrite_flag, config_from_args

HELP = "give per-frame KITTI-STEP predictions temporally consistent instance ids"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pred_dir",
                        help="PRED_DIR/<sequence>/<frame>.png (or one folder of frames); R = class, G*256+B = instance")
    parser.add_argument("-o", "--output", required=True, help="output folder (same layout)")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate for timestamps (default 10, KITTI)")
    add_config_flags(parser, "tracker", "threads", set_help="tracker option, e.g. max_lost_seconds=2")
    add_overwrite_flag(parser)
    parser.set_defaults(keeps_partial_output=False)  # Ctrl-C: nothing of this run is published
    parser.set_defaults(set_prefix="tracker.")  # --set takes the tracker's keys alone


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from ..job import set_thread_defaults, tracker_kwargs
    from ..outputs import staged_output
    from ..tracking.offline import find_sequences, retrack_directory

    set_thread_defaults(cfg.model.threads)
    find_sequences(args.pred_dir)  # input errors first: the output folder is not touched
    with staged_output(args.output, command="track", overwrite=args.overwrite, inputs=[args.pred_dir]) as tmp:
        done = retrack_directory(args.pred_dir, tmp, fps=args.fps, tracker=cfg.tracker.name,
                                 **tracker_kwargs(cfg.tracker))
    for name, frames, ids in done:
        print(f"{name or Path(args.pred_dir).name}: {frames} frames, {ids} track ids")
    print(f"wrote {sum(f for _, f, _ in done)} frames of {len(done)} sequence(s) to {args.output}")
    return 0
