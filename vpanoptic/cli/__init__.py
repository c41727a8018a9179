"""The `vpanoptic` command line: one module per command, each calling a library.

    vpanoptic run INPUT -o OUTDIR [--model NAME] [--device auto|cpu|cuda] [--config FILE]
                  [--set key=value ...] [--save video,png,coco,jsonl] [--policy ...]
                  [--max-frames N] [--realtime] [--weights PATH]
    vpanoptic live SOURCE [-o OUT] [--headless OUT.mp4] [--duration S] [--policy ...]
    vpanoptic batch INPUT_DIR -o OUTPUT_DIR [--workers N] [--glob '*.mp4'] [--force]
    vpanoptic track PRED_DIR -o OUTDIR [--fps F] [--tracker NAME] [--set key=value ...]
    vpanoptic eval GT PRED [--format kitti-step|...] [--metrics stq,pq,vpq,motsa,ptq] [--json OUT.json]
    vpanoptic experiment SPEC.yaml [-o OUT]
    vpanoptic synth OUTDIR [--frames N] [--seed S] [--size WxH] [--fps F] [--scenario NAME]
    vpanoptic models
    vpanoptic train --out FILE [--recipe streetnet] ...

A command module has `HELP`, `add_arguments(parser)` and `run(args) -> int`; it imports its
library (and torch) only in `run`, so ``--help``, a bare ``vpanoptic`` and argument errors
start fast. Flags that set config keys are declared once, in `common.CONFIG_FLAGS`.
User errors (missing file, bad config key, unknown model, ...) print one line and exit 2.
Ctrl-C or SIGTERM stop cleanly (outputs so far stay valid) and exit 130. Warnings logged on
the ``vpanoptic`` logger print as ``vpanoptic: warning: MESSAGE`` on stderr (the one logging
handler, set here: the libraries only log). Output folders: see `vpanoptic.outputs`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from ..errors import StageError, UserError
from ..version import __version__
from .common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USER_ERROR, ArgumentParser

__all__ = ["COMMANDS", "build_parser", "configure_logging", "main"]

#: Command name → its module in this package, in the order `vpanoptic` lists them.
COMMANDS = {"run": "run", "live": "live", "batch": "batch", "track": "track", "eval": "eval",
            "experiment": "experiment", "synth": "synth", "models": "models", "train": "train"}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="vpanoptic", description="Video panoptic segmentation and tracking.",
                            epilog="`vpanoptic COMMAND --help` shows the options of a command.")
    parser.add_argument("--version", action="version", version=f"vpanoptic {__version__}")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", parser_class=ArgumentParser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


class _StderrHandler(logging.Handler):
    """``vpanoptic: warning: MESSAGE`` on the current `sys.stderr` (looked up per record)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"vpanoptic: {record.levelname.lower()}: {self.format(record)}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


_HANDLER = _StderrHandler(logging.WARNING)


def configure_logging() -> None:
    """Show records of the ``vpanoptic`` logger at WARNING or above on stderr (once per process)."""
    logger = logging.getLogger("vpanoptic")
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `vpanoptic`: what it can do
        parser.print_help()
        return EXIT_USER_ERROR
    configure_logging()
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    except ValueError:  # not the main thread (e.g. called from a worker): keep defaults
        pass
    try:
        return args.run(args)
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
    except BrokenPipeError:  # `vpanoptic models | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        out = getattr(args, "output", None)
        if out and getattr(args, "keeps_partial_output", True):
            print(f"vpanoptic: interrupted; outputs so far are in {out}", file=sys.stderr)
        else:  # synth, track: the temporary folder is gone, the target as it was
            print(f"vpanoptic: interrupted{f'; {out} was left as it was' if out else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
