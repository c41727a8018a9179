"""The `vpanoptic` command line.

    vpanoptic run INPUT -o OUTDIR [--model NAME] [--device auto|cpu|cuda] [--config FILE]
                  [--set key=value ...] [--save video,png,coco,jsonl] [--policy ...]
                  [--max-frames N] [--realtime]
    vpanoptic synth OUTDIR [--frames N] [--seed S] [--size WxH] [--fps F] [--scenario NAME]
    vpanoptic models

User errors (missing file, bad config key, unknown model, ...) print one line and exit 2.
Ctrl-C or SIGTERM stop cleanly (outputs so far stay valid) and exit 130.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path
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


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="vpanoptic", description="Video panoptic segmentation and tracking.")
    parser.add_argument("--version", action="version", version=f"vpanoptic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    run = sub.add_parser("run", help="segment and track a video, image folder, webcam or stream")
    run.add_argument("input", help="video file, image folder, webcam:N, /dev/videoN, rtsp:// or http(s):// URL")
    run.add_argument("-o", "--output", required=True, help="output folder")
    run.add_argument("--model", help="model name (see `vpanoptic models`)")
    run.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    run.add_argument("--config", help="YAML config file (see configs/)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. tracker.iou_threshold=0.4")
    run.add_argument("--save", help="comma-separated outputs: video,png,coco,jsonl")
    run.add_argument("--policy", help="frame policy: every | latest | staleness:SECONDS")
    run.add_argument("--max-frames", type=int, help="stop after N frames")
    run.add_argument("--realtime", action="store_true", help="play a file at its native rate, like a live camera")
    run.add_argument("--batch-size", type=int, help="frames per model call")
    run.add_argument("--threads", type=int, help="torch threads (0 = default)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    synth = sub.add_parser("synth", help="render a synthetic street clip with exact ground truth")
    synth.add_argument("output", help="output folder (video.mp4, gt/, meta.json)")
    synth.add_argument("--frames", type=int, default=60)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=_parse_size, default=(640, 360), help="WIDTHxHEIGHT (even numbers)")
    synth.add_argument("--fps", type=float, default=None, help="frame rate (default: the scenario's, 10 or 3 for low_fps)")
    synth.add_argument("--scenario", default="street", help="street, crossing, crowd, fast, occlusion, pan_zoom, low_fps")
    synth.add_argument("--overwrite", action="store_true", help="replace an existing output folder")

    sub.add_parser("models", help="list the registered models")
    return parser


def _cmd_run(args) -> int:
    from .config import load_config
    from .runner import run_video

    overrides = list(args.set)
    for key, value in (
        ("model.name", args.model),
        ("model.device", args.device),
        ("output.save", args.save),
        ("input.policy", args.policy),
        ("input.max_frames", args.max_frames),
        ("model.batch_size", args.batch_size),
        ("model.threads", args.threads),
    ):
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.realtime:
        overrides.append("input.realtime=true")
    cfg = load_config(args.config, overrides)
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
    for e in entries:
        print(f"{e.name:<{width}}  [{e.dataset}]  {e.description}")
    return 0


COMMANDS = {"run": _cmd_run, "synth": _cmd_synth, "models": _cmd_models}


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
