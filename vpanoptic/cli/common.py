"""What the commands share: the parser class, exit codes, and the one flag → config key table."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["CONFIG_FLAGS", "EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_USER_ERROR", "ArgumentParser",
           "add_config_flags", "add_overwrite_flag", "config_from_args", "parse_size"]

EXIT_USER_ERROR = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

#: Command-line flags that set a config key: argparse dest → (flag, config key, argparse
#: options). The one place flags map to keys; each command picks the flags it takes.
CONFIG_FLAGS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "model": ("--model", "model.name", {"help": "model name (see `vpanoptic models`)"}),
    "device": ("--device", "model.device", {"help": "auto | cpu | cuda | cuda:N"}),
    "save": ("--save", "output.save", {"help": "comma-separated outputs: video,png,coco,jsonl"}),
    "policy": ("--policy", "input.policy", {"help": "frame policy: every | latest | staleness:SECONDS"}),
    "max_frames": ("--max-frames", "input.max_frames", {"type": int, "help": "stop after N frames"}),
    "realtime": ("--realtime", "input.realtime", {"action": "store_const", "const": True,
                                                  "help": "play a file at its native rate, like a live camera"}),
    "batch_size": ("--batch-size", "model.batch_size", {"type": int, "help": "frames per model call"}),
    "threads": ("--threads", "model.threads", {"type": int, "help": "torch threads (0 = default)"}),
    "weights": ("--weights", "model.options.weights", {
        "metavar": "PATH", "help": "local weights file or folder for --model (instead of the download cache)"}),
    "tracker": ("--tracker", "tracker.name", {
        "help": "hungarian (default) | kalman | greedy | none | bytetrack | sort | ocsort"}),
}


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's own convention too)
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` → (width, height)."""
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size is {text!r}; expected WIDTHxHEIGHT, e.g. 640x360") from None


def add_config_flags(parser: argparse.ArgumentParser, *dests: str, config_help: str | None = None,
                     set_help: str = "override a config key, e.g. tracker.iou_threshold=0.4",
                     **help_overrides: str) -> None:
    """Add the `CONFIG_FLAGS` named by `dests`, then ``--config`` (if `config_help`) and ``--set``."""
    for dest in dests:
        flag, _, options = CONFIG_FLAGS[dest]
        options = {**options, "default": None, "dest": dest}
        if dest in help_overrides:
            options["help"] = help_overrides[dest]
        parser.add_argument(flag, **options)
    if config_help is not None:
        parser.add_argument("--config", help=config_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)


def config_from_args(args: argparse.Namespace):
    """The `RunConfig` of a command: defaults ← ``--config`` ← ``--set`` ← flags (see `load_config`).

    A command's parser may set (with ``set_defaults``) `set_prefix`, put before every
    ``--set`` key (``track`` takes tracker keys alone), and `config_defaults`, its own values
    for keys that neither a flag, ``--set`` nor a config file sets.
    """
    from ..config import load_config

    overrides = [f"{getattr(args, 'set_prefix', '')}{kv}" for kv in args.set]
    config_file = getattr(args, "config", None)
    values = {key: getattr(args, dest) for dest, (_, key, _) in CONFIG_FLAGS.items() if hasattr(args, dest)}
    for key, value in getattr(args, "config_defaults", {}).items():
        given = values.get(key) is not None or any(o.split("=", 1)[0].strip() == key for o in overrides)
        if not given and config_file is None:
            values[key] = value
    return load_config(config_file, overrides, values)


def add_overwrite_flag(parser: argparse.ArgumentParser, what: str = "output folder") -> None:
    """``--overwrite``: accept a non-empty `what` that vpanoptic did not write (see `vpanoptic.outputs`)."""
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace a non-empty {what} that is not a vpanoptic output "
                             "(a previous vpanoptic output is always replaced)")
