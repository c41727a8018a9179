"""The `vpanoptic` command line.

    vpanoptic run INPUT -o OUTDIR [--model NAME] [--device auto|cpu|cuda] [--config FILE]
                  [--set key=value ...] [--save video,png,coco,jsonl] [--policy ...]
                  [--max-frames N] [--realtime] [--weights PATH]
    vpanoptic synth OUTDIR [--frames N] [--seed S] [--size WxH] [--fps F] [--scenario NAME]
    vpanoptic models
    vpanoptic track PRED_DIR -o OUTDIR [--fps F] [--tracker NAME] [--set key=value ...]
    vpanoptic eval GT PRED [--format kitti-step|...] [--metrics stq,pq,vpq,motsa,ptq] [--json OUT.json]
    vpanoptic experiment SPEC.yaml [-o OUT]
    vpanoptic live SOURCE [-o OUT] [--headless OUT.mp4] [--duration S] [--policy ...]
    vpanoptic batch INPUT_DIR -o OUTPUT_DIR [--workers N] [--glob '*.mp4'] [--force]

User errors (missing file, bad config key, unknown model, ...) print one line and exit 2.
Ctrl-C or SIGTERM stop cleanly (outputs so far stay valid) and exit 130.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from typing import Sequence

from . import __version__
from .errors import StageError, UserError

EXIT_USER_ERROR = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's own convention too)
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size is {text!r}; expected WIDTHxHEIGHT, e.g. 640x360") from None


def _add_config_arguments(parser: argparse.ArgumentParser, *, config_help: str) -> None:
    """--model, --device, --config and --set: the options every command that runs a model takes."""
    parser.add_argument("--model", help="model name (see `vpanoptic models`)")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--config", help=config_help)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. tracker.iou_threshold=0.4"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="vpanoptic", description="Video panoptic segmentation and tracking.")
    parser.add_argument("--version", action="version", version=f"vpanoptic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    run = sub.add_parser("run", help="segment and track a video, image folder, webcam or stream")
    run.add_argument("input", help="video file, image folder, webcam:N, /dev/videoN, rtsp:// or http(s):// URL")
    run.add_argument("-o", "--output", required=True, help="output folder")
    _add_config_arguments(run, config_help="YAML config file (see configs/)")
    run.add_argument("--save", help="comma-separated outputs: video,png,coco,jsonl")
    run.add_argument("--policy", help="frame policy: every | latest | staleness:SECONDS")
    run.add_argument("--max-frames", type=int, help="stop after N frames")
    run.add_argument("--realtime", action="store_true", help="play a file at its native rate, like a live camera")
    run.add_argument("--batch-size", type=int, help="frames per model call")
    run.add_argument("--threads", type=int, help="torch threads (0 = default)")
    run.add_argument("--weights", metavar="PATH", help="local weights file or folder for --model (instead of the download cache)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    synth = sub.add_parser("synth", help="render a synthetic street clip with exact ground truth")
    synth.add_argument("output", help="output folder (video.mp4, gt/, meta.json)")
    synth.add_argument("--frames", type=int, default=60)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=_parse_size, default=(640, 360), help="WIDTHxHEIGHT (even numbers)")
    synth.add_argument("--fps", type=float, default=None, help="frame rate (default: the scenario's, 10 or 3 for low_fps)")
    synth.add_argument("--scenario", default="street", help="street, crossing, crowd, fast, occlusion, pan_zoom, low_fps")
    synth.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    synth.add_argument("--min-instance-height", type=float, default=None, metavar="PX",
                       help="things lower than this are crowd in the ground truth (default: KITTI's rule, "
                            "25/375 of the frame height; 0 = every object is an instance)")

    sub.add_parser("models", help="list the registered models")

    track = sub.add_parser("track", help="give per-frame KITTI-STEP predictions temporally consistent instance ids")
    track.add_argument("pred_dir", help="PRED_DIR/<sequence>/<frame>.png (or one folder of frames); R = class, G*256+B = instance")
    track.add_argument("-o", "--output", required=True, help="output folder (same layout)")
    track.add_argument("--fps", type=float, default=10.0, help="frame rate for timestamps (default 10, KITTI)")
    track.add_argument("--tracker", help="hungarian (default) | greedy | none")
    track.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="tracker option, e.g. max_lost_seconds=2")

    ev = sub.add_parser("eval", help="score predictions against benchmark ground truth (STQ, PQ, VPQ, MOTSA, PTQ)")
    ev.add_argument("gt", help="ground truth: a folder (or JSON / txt file) in the chosen format")
    ev.add_argument("pred", help="prediction in the same format")
    ev.add_argument("--format", default="kitti-step",
                    help="kitti-step | motchallenge-step | cityscapes-vps | vipseg | coco | mots")
    ev.add_argument("--metrics", help="comma-separated: stq,pq,vpq,motsa,ptq (default stq,pq,vpq; coco: pq; mots: motsa)")
    ev.add_argument("--json", metavar="OUT.json", help="also write all numbers and details as JSON")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")

    ex = sub.add_parser("experiment", help="run a grid of tracker / model configurations and compare them")
    ex.add_argument("spec", help="experiment YAML (see configs/experiments/)")
    ex.add_argument("-o", "--output", help="output folder (default: the spec's `output`, else runs/<spec name>)")
    ex.add_argument("--no-progress", action="store_true", help="no progress bar")

    live = sub.add_parser("live", help="show a webcam, stream or file live with its overlay (window or --headless file)")
    live.add_argument("input", help="webcam:N, /dev/videoN, rtsp:// or http(s):// URL, or a video file (played in real time)")
    live.add_argument("-o", "--output", help="folder for summary.json, snapshots and --save outputs (default: none)")
    live.add_argument("--headless", metavar="OUT.mp4", help="write the overlay video to this file instead of a window")
    _add_config_arguments(live, config_help="YAML config file (e.g. configs/live.yaml)")
    live.add_argument("--save", help="also save (needs -o): video,png,coco,jsonl")
    live.add_argument("--policy", help="frame policy (default latest): every | latest | staleness:SECONDS")
    live.add_argument("--duration", type=float, help="stop after this many seconds")
    live.add_argument("--max-frames", type=int, help="stop after N frames")
    live.add_argument("--no-realtime", action="store_true", help="read a file as fast as possible instead of at its rate")
    live.add_argument("--threads", type=int, help="torch threads (0 = default)")

    batch = sub.add_parser("batch", help="process every video of a folder, one output folder each, resumable")
    batch.add_argument("input", help="folder of videos")
    batch.add_argument("-o", "--output", required=True, help="output folder (one subfolder per video + batch_report.csv/json)")
    batch.add_argument("--workers", type=int, default=1, help="worker processes (default 1); torch threads are split among them")
    batch.add_argument("--glob", help="file pattern, e.g. '*.mp4' (default: common video extensions)")
    batch.add_argument("--force", action="store_true", help="redo videos that are already complete")
    _add_config_arguments(batch, config_help="YAML config file (see configs/)")
    batch.add_argument("--save", help="comma-separated outputs: video,png,coco,jsonl")
    batch.add_argument("--threads", type=int, help="torch threads per worker (0 = cores / workers)")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")

    from .train import add_arguments as add_train_arguments  # argparse only, no torch

    add_train_arguments(sub.add_parser("train", help="train the default model (StreetNet) on the synthetic world, on the CPU"))
    return parser


def _cmd_run(args) -> int:
    from .config import load_config
    from .runner import run_video

    cfg = load_config(
        args.config,
        args.set,
        {
            "model.name": args.model,
            "model.device": args.device,
            "output.save": args.save,
            "input.policy": args.policy,
            "input.max_frames": args.max_frames,
            "model.batch_size": args.batch_size,
            "model.threads": args.threads,
            "input.realtime": True if args.realtime else None,
            "model.options.weights": args.weights,
        },
    )
    summary = run_video(args.input, args.output, cfg, progress=not args.no_progress)
    lat = summary["latency_ms"]
    print(
        f"{summary['frames']} frames in {summary['wall_time_s']:.2f} s ({summary['fps']} FPS), "
        f"latency p50 {lat['p50']} ms / p95 {lat['p95']} ms, dropped {summary['dropped']}, "
        f"damaged packets {summary['damaged_packets']} → {args.output}"
    )
    return 0


def _cmd_synth(args) -> int:
    from tqdm import tqdm

    from .synth import write_sequence

    width, height = args.size
    bar = None

    def progress(done: int) -> None:  # the bar starts with the first frame, after validation
        nonlocal bar
        if bar is None:
            bar = tqdm(total=args.frames, unit="frame", desc="synth", dynamic_ncols=True)
        bar.update(done - bar.n)

    try:
        write_sequence(
            args.output,
            seed=args.seed,
            frames=args.frames,
            size=(width, height),
            fps=args.fps,
            scenario=args.scenario,
            overwrite=args.overwrite,
            progress=progress,
            min_instance_height=args.min_instance_height,
        )
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {args.frames} frames ({width}x{height}, scenario {args.scenario}) to {args.output}")
    return 0


def _cmd_models(args) -> int:
    from .models.registry import list_models

    entries = list_models()
    width = max(len(e.name) for e in entries)
    dwidth = max(len(e.dataset) for e in entries)
    print(f"{'name':<{width}}  {'dataset':<{dwidth}}  {'PQ':>5}  {'weights':<10}  description")
    for e in entries:
        pq = f"{e.pq:.1f}" if e.pq is not None else "-"
        if e.weights_cached is None:
            cached = "--weights" if e.spec is not None else "-"  # bring your own / needs none
        else:
            cached = "cached" if e.weights_cached() else "not cached"
        print(f"{e.name:<{width}}  {e.dataset:<{dwidth}}  {pq:>5}  {cached:<10}  {e.description}")
    return 0


def _cmd_eval(args) -> int:
    from .eval.run import run_eval

    return run_eval(args)


def _cmd_experiment(args) -> int:
    from .eval.experiment import run_experiment_cli

    return run_experiment_cli(args)


def _cmd_train(args) -> int:
    from .train import run_from_args

    return run_from_args(args)


def _cmd_live(args) -> int:
    from .live import main_from_args

    return main_from_args(args)


def _cmd_batch(args) -> int:
    from .batch import main_from_args

    return main_from_args(args)


def _cmd_track(args) -> int:
    from .tracking.offline import run_track_command

    return run_track_command(args.pred_dir, args.output, fps=args.fps, tracker=args.tracker, overrides=args.set)


COMMANDS = {"run": _cmd_run, "synth": _cmd_synth, "models": _cmd_models, "eval": _cmd_eval,
            "experiment": _cmd_experiment, "train": _cmd_train, "live": _cmd_live, "batch": _cmd_batch,
            "track": _cmd_track}


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    except ValueError:  # not the main thread (e.g. called from a worker): keep defaults
        pass
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"vpanoptic: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except StageError as exc:
        if isinstance(exc.error, UserError):
            print(f"vpanoptic: error: {exc.error} (in stage '{exc.stage}')", file=sys.stderr)
            return EXIT_USER_ERROR
        traceback.print_exception(exc.error)
        print(f"vpanoptic: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        out = getattr(args, "output", None)
        print(f"vpanoptic: interrupted{f'; outputs so far are in {out}' if out else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
