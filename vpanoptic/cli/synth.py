"""``vpanoptic synth OUTDIR``: a synthetic street clip with exact ground truth."""

from __future__ import annotations

import argparse

from .common import parse_size

HELP = "render a synthetic street clip with exact ground truth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="output folder (video.mp4, gt/, meta.json)")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=parse_size, default=(640, 360), help="WIDTHxHEIGHT (even numbers)")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate (default: the scenario's, 10 or 3 for low_fps)")
    parser.add_argument("--scenario", default="street",
                        help="street, crossing, crowd, fast, occlusion, pan_zoom, low_fps")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty folder that is not a vpanoptic output "
                             "(a previous vpanoptic output is always replaced)")
    parser.add_argument("--min-instance-height", type=float, default=None, metavar="PX",
                        help="things lower than this are crowd in the ground truth (default: KITTI's rule, "
                             "25/375 of the frame height; 0 = every object is an instance)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(keeps_partial_output=False)  # Ctrl-C: nothing of this run is published


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..synth import write_sequence

    width, height = args.size
    bar = None

    def progress(done: int) -> None:  # the bar starts with the first frame, after validation
        nonlocal bar
        if args.no_progress:
            return
        if bar is None:
            bar = tqdm(total=args.frames, unit="frame", desc="synth", dynamic_ncols=True)
        bar.update(done - bar.n)

    try:
        write_sequence(args.output, seed=args.seed, frames=args.frames, size=(width, height), fps=args.fps,
                       scenario=args.scenario, overwrite=args.overwrite, progress=progress,
                       min_instance_height=args.min_instance_height)
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {args.frames} frames ({width}x{height}, scenario {args.scenario}) to {args.output}")
    return 0
