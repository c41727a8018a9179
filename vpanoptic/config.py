"""Run configuration: frozen dataclasses, loaded from YAML plus ``--set key=value`` overrides.

The YAML files in ``configs/`` mirror these dataclasses section by section. Unknown keys and
values of the wrong type are errors (`ConfigError`, one line, with a suggestion), never
silently ignored. This module is the one place where configuration is translated; the
components themselves take typed keyword arguments.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .errors import ConfigError

__all__ = [
    "InputConfig",
    "ModelConfig",
    "TrackerConfig",
    "OutputConfig",
    "RunConfig",
    "FramePolicy",
    "parse_policy",
    "load_config",
    "config_to_dict",
]

SAVE_KINDS = ("video", "png", "coco", "jsonl")


@dataclass(frozen=True)
class FramePolicy:
    """What happens when frames arrive faster than they are processed.

    kind: "every" (never drop; decoding waits), "latest" (keep only the newest waiting frame),
    or "staleness" (drop frames older than `max_age` seconds when they are picked up).
    """

    kind: str
    max_age: float | None = None

    def __str__(self) -> str:
        return f"staleness:{self.max_age:g}" if self.kind == "staleness" else self.kind


def parse_policy(text: str) -> FramePolicy:
    """Parse ``every`` | ``latest`` | ``staleness:S`` (S seconds > 0)."""
    text = str(text).strip()
    if text in ("every", "latest"):
        return FramePolicy(text)
    if text.startswith("staleness:"):
        try:
            age = float(text.split(":", 1)[1])
        except ValueError:
            age = -1.0
        if age > 0:
            return FramePolicy("staleness", age)
    raise ConfigError(f"frame policy is {text!r}; expected every, latest or staleness:SECONDS (e.g. staleness:0.5)")


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class InputConfig:
    """How frames are read.

    policy: frame policy (see `parse_policy`); None = the source's default (files: every,
        webcams and --realtime: latest, network streams: staleness:1).
    queue_size: bound of the decoded-frame queue (frames).
    realtime: play a file at its native rate, as if it were a live camera.
    max_frames: stop after this many decoded frames (None = all).
    fps: frame rate assumed for image directories (their files have no timestamps).
    """

    policy: str | None = None
    queue_size: int = 4
    realtime: bool = False
    max_frames: int | None = None
    fps: float = 10.0

    def __post_init__(self):
        if self.policy is not None:
            parse_policy(self.policy)
        _check(self.queue_size >= 1, f"input.queue_size is {self.queue_size}; expected >= 1")
        _check(
            self.max_frames is None or self.max_frames >= 1,
            f"input.max_frames is {self.max_frames}; expected >= 1 or null",
        )
        _check(self.fps > 0, f"input.fps is {self.fps}; expected > 0")


@dataclass(frozen=True)
class ModelConfig:
    """Which model runs and where.

    name: registry name (`vpanoptic models` lists them).
    device: "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
    batch_size: frames per forward pass (1 for lowest latency).
    threads: torch intra-op threads; 0 = vpanoptic's measured default (see README).
    options: model-specific keyword arguments (checked against the model's signature).
    """

    name: str = "oracle"
    device: str = "auto"
    batch_size: int = 1
    threads: int = 0
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        _check(self.batch_size >= 1, f"model.batch_size is {self.batch_size}; expected >= 1")
        _check(self.threads >= 0, f"model.threads is {self.threads}; expected >= 0 (0 = default)")
        dev = self.device
        _check(
            dev in ("auto", "cpu", "cuda", "mps") or dev.startswith("cuda:"),
            f"model.device is {dev!r}; expected auto, cpu, cuda or cuda:N",
        )


@dataclass(frozen=True)
class TrackerConfig:
    """Association of thing instances across frames (mask IoU + Hungarian matching).

    name: "hungarian" or "none" (per-frame ids only).
    iou_threshold: minimum mask IoU for a match, in (0, 1].
    max_lost_seconds: a track unseen for longer than this is removed.
    """

    name: str = "hungarian"
    iou_threshold: float = 0.3
    max_lost_seconds: float = 1.0

    def __post_init__(self):
        _check(self.name in ("hungarian", "none"), f"tracker.name is {self.name!r}; expected hungarian or none")
        _check(
            0 < self.iou_threshold <= 1,
            f"tracker.iou_threshold is {self.iou_threshold}; expected 0 < x <= 1",
        )
        _check(self.max_lost_seconds >= 0, f"tracker.max_lost_seconds is {self.max_lost_seconds}; expected >= 0")


@dataclass(frozen=True)
class OutputConfig:
    """What is written to the output folder.

    save: any of video (annotated H.264 MP4), png (KITTI-STEP PNGs), coco (COCO panoptic PNG +
        JSON), jsonl (one line of segments per frame). summary.json is always written.
    video_crf: H.264 quality (0 = lossless, 23 = default, 51 = worst).
    """

    save: tuple[str, ...] = SAVE_KINDS
    video_crf: int = 23

    def __post_init__(self):
        for kind in self.save:
            _check(kind in SAVE_KINDS, f"unknown output {kind!r}; choose from {', '.join(SAVE_KINDS)}")
        _check(0 <= self.video_crf <= 51, f"output.video_crf is {self.video_crf}; expected 0..51")


@dataclass(frozen=True)
class RunConfig:
    input: InputConfig = field(default_factory=InputConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# --------------------------------------------------------------------------- loading
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one YAML value against a dataclass field type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else ConfigError(
            f"{key} is {value!r}; expected {' or '.join(_type_name(a) for a in args)}"
        )
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} is {value!r}; expected a list")
        (item_tp, _) = typing.get_args(tp)
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} is {value!r}; expected a mapping")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} is {value!r}; expected true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} is {value!r}; expected an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key} is {value!r}; expected a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} is {value!r}; expected a string")
    raise TypeError(f"unsupported config field type {tp} for {key}")


def _unknown_key(key: str, known: Sequence[str]) -> ConfigError:
    prefix, _, last = key.rpartition(".")
    close = difflib.get_close_matches(last, known, n=1)
    hint = f"; did you mean {(prefix + '.' if prefix else '') + close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r}{hint} (known: {', '.join(known)})")


def _build(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section {prefix.rstrip('.') or '<root>'} must be a mapping; got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in fields:
            raise _unknown_key(full, list(fields))
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, f"{full}.")
        else:
            kwargs[key] = _coerce(value, tp, full)
    return cls(**kwargs)


def config_to_dict(cfg: Any) -> dict:
    """A plain dict (tuples as lists) suitable for YAML/JSON."""

    def convert(v):
        if isinstance(v, tuple):
            return [convert(x) for x in v]
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        return v

    return convert(dataclasses.asdict(cfg))


def _set_override(tree: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value; got {assignment!r}")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"--set expects key=value; got {assignment!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = tree
    for p in parts[:-1]:
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {p!r} is not a section")
        node = child
    node[parts[-1]] = value


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Defaults ← YAML file ← ``key=value`` overrides, validated into a `RunConfig`."""
    tree: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(f"{path}: invalid YAML{where}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
        tree = loaded or {}
    for assignment in overrides:
        _set_override(tree, assignment)
    return _build(RunConfig, tree)


def replace_config(cfg: RunConfig, **sections: Mapping[str, Any]) -> RunConfig:
    """A copy of `cfg` with some fields of some sections replaced (validated again)."""
    tree = config_to_dict(cfg)
    for name, values in sections.items():
        for k, v in values.items():
            if v is not None:
                tree[name][k] = v
    return _build(RunConfig, tree)
