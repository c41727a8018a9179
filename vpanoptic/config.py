"""Run configuration: frozen dataclasses, loaded from YAML plus ``--set key=value`` overrides.

The YAML files in ``configs/`` mirror these dataclasses section by section. Unknown keys and
values of the wrong type are errors (`ConfigError`, one line, with a suggestion), never
silently ignored (`vpanoptic.settings.from_mapping`). The components take typed keyword
arguments; `vpanoptic.job.build_job` is the one place a `RunConfig` becomes components.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .settings import from_mapping

__all__ = [
    "InputConfig",
    "ModelConfig",
    "TrackerConfig",
    "OutputConfig",
    "RunConfig",
    "FramePolicy",
    "parse_policy",
    "SAVE_KINDS",
    "load_config",
    "config_to_dict",
    "from_mapping",
]

#: The outputs `output.save` may name: the one list (`vpanoptic.sinks.build_sinks` makes them).
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
    reconnect: network streams reconnect with back-off after a drop or a stall.
    stall_timeout_s: a stream that delivers no data or no frame for this long has stalled
        (the watchdog): reconnect (or fail, without `reconnect`).
    reconnect_give_up_s: a stream that cannot be reconnected for this long is lost (error).
    options: FFmpeg options for files, webcams and streams, e.g. a webcam's
        ``{video_size: 1280x720, framerate: 30, input_format: mjpeg}``.
    """

    policy: str | None = None
    queue_size: int = 4
    realtime: bool = False
    max_frames: int | None = None
    fps: float = 10.0
    reconnect: bool = True
    stall_timeout_s: float = 5.0
    reconnect_give_up_s: float = 30.0
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.policy is not None:
            parse_policy(self.policy)
        _check(self.queue_size >= 1, f"input.queue_size is {self.queue_size}; expected >= 1")
        _check(
            self.max_frames is None or self.max_frames >= 1,
            f"input.max_frames is {self.max_frames}; expected >= 1 or null",
        )
        _check(self.fps > 0, f"input.fps is {self.fps}; expected > 0")
        _check(self.stall_timeout_s > 0, f"input.stall_timeout_s is {self.stall_timeout_s}; expected seconds > 0")
        _check(
            self.reconnect_give_up_s > 0,
            f"input.reconnect_give_up_s is {self.reconnect_give_up_s}; expected seconds > 0",
        )


@dataclass(frozen=True)
class ModelConfig:
    """Which model runs and where.

    name: registry name (`vpanoptic models` lists them); the default, "vpanoptic-street", is the
        network whose weights ship inside the package (runs offline, real time on a CPU).
    device: "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
    batch_size: frames per forward pass (1 for lowest latency).
    threads: torch intra-op threads; 0 = vpanoptic's measured default (`vpanoptic.runtime`),
        the same for every entry point.
    options: model-specific keyword arguments (checked against the model's signature).
    """

    name: str = "vpanoptic-street"
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


_TRACKER_NAMES = ("hungarian", "kalman", "greedy", "none", "bytetrack", "sort", "ocsort")  # = tracking.TRACKERS


@dataclass(frozen=True)
class TrackerConfig:
    """Association of thing instances across frames (mask IoU + Hungarian matching).

    Every field but `name` is a keyword argument of the hungarian tracker (see
    `vpanoptic.tracking.HungarianTracker` for the full meaning); the greedy baseline uses
    `iou_threshold` only.

    name: "hungarian" (default), "kalman" (per-track Kalman state + predicted-mask IoU, a
        candidate; uses iou_threshold, high_score_threshold, max_lost_seconds, min_hits,
        camera_motion), "greedy" (previous-frame greedy IoU baseline), "none", or a
        box tracker of roboflow `trackers` fed one box per thing segment: "bytetrack",
        "sort", "ocsort" (``pip install 'vpanoptic[trackers]'``; the other fields do not apply).
    iou_threshold: minimum mask IoU for a match, in (0, 1].
    min_containment, max_containment_ratio: a pair below the IoU threshold still matches when
        the intersection covers this fraction of the smaller mask and the areas differ by at
        most this factor (small objects whose masks grow and shrink); exit_any_area: after
        re-identification, also at any areas for a segment touching the frame border inside
        the prediction of a track that runs out of the frame (an object driving out shows
        less of itself each frame).
    max_lost_seconds: a confirmed track unseen for longer than this is removed.
    min_hits: matches needed to confirm a track; tentative_max_lost_seconds: how long an
        unconfirmed track survives unseen.
    tentative_min_lost_frames: whatever the frame rate, a tentative track survives this many
        missed frames in a row (its limit is at least this + 0.5 frame intervals).
    velocity_smoothing: weight of the newest step in the velocity average if it lasted 0.1 s,
        in (0, 1]; a step of dt weighs 1 - (1 - x)^(dt / 0.1 s), so the average spans the same
        time at any frame rate.
    velocity_area_change: a match whose area changed by more than this factor keeps the old velocity.
    motion_prediction: move remembered masks by their velocity before matching (a lost track
        for at most max_predict_seconds); static_hypothesis: also try them unmoved, keep the better IoU.
    camera_motion: compensate the camera's motion (background homography); cmc_max_side:
        image size (longer side, px) it is estimated at; cmc_parallel: fit it on a second
        thread while the frame's things are labelled (same result; off for one core).
    lost_last: tracks seen in the previous frame choose before lost tracks (strictly); False:
        one joint assignment where matching a lost track costs lost_penalty more (IoU units).
    low_score_pass: match segments scoring below high_score_threshold after the others.
    max_center_distance: centre-distance pass radius in object sizes (0 = off);
        max_area_ratio: largest area ratio it pairs; center_weight: > 0 merges it into the IoU
        pass with cost 1 - IoU + center_weight x distance; center_size_weight: otherwise its cost
        is lowered by this x ln(segment area / small_object_area), preferring larger segments.
    max_growth_ratio: last pass: a left-over track and segment that are each other's only
        candidate (one mostly inside the other, or centres within growth_center_distance object
        sizes) are paired with areas up to this factor apart (0 = off).
    small_object_area: masks count as at least this many pixels in area ratios and sizes.
    scale_prediction: also track each object's growth rate and scale its predicted mask
        (approaching objects grow and speed up); scale_min_area: smallest mask (grid px) whose
        area updates the rate; max_scale_rate: rate limit, d log(size) / dt per second;
        growth_model: "contact" (1 / size linear in time: an approaching object's growth
        accelerates) or "exponential"; max_predicted_growth: largest predicted growth of
        linear size under "contact".
    max_outside_fraction: a lost or unmatched track predicted more than this fraction outside
        the frame has left the view (1 = never): it may only be matched to a segment its
        prediction overlaps by at least outside_min_iou, or, departed, to one coming back in
        at the border within reentry_distance object sizes of where it was last seen (0 =
        departed tracks are removed).
    mask_samples: masks above 4x this many grid pixels are remembered on a sub-grid of about
        this many pixels (IoU estimated from samples; 0 = every pixel).
    max_pixels: larger frames are subsampled on a grid for association (0 = never).
    appearance_weight: colour cue: the cost gains this x min(colour distance /
        appearance_scale, 1), the colour distance being 1 - the Bhattacharyya overlap of two
        colour histograms, in [0, 1] (0 = off; off by itself without images);
        appearance_gate: pairs farther apart in colour are never matched (0 = no gate);
        appearance_smoothing: weight of the newest histogram in a track's average, in (0, 1];
        histogram_bits: histogram levels per RGB channel, 2^bits (1..4);
        colour_boundary_weight: a thing's boundary pixels (noisy in a model's masks) count
        this much of an interior pixel in its histogram, 0..1 (1 = every pixel alike).
    reid_distance: re-identification pass for what is left: same class, colour distance at
        most reid_colour, centres within this many object sizes, an area within a factor
        reid_area_ratio of anything from the predicted to the full area (0 = off; needs
        images). takeover_hits: a track matched at most this many times, first seen after a
        lost track was last seen, hands its segment to that track when they pass the same
        gates (0 = off). full_area_seconds: a track's full area is the largest it was seen
        with, fading with this time constant (s): an object that shrank behind an occluder
        comes back whole (0 = the predicted area only).
    """

    name: str = "hungarian"
    iou_threshold: float = 0.3
    min_containment: float = 0.8
    max_containment_ratio: float = 5.0
    exit_any_area: bool = True
    max_lost_seconds: float = 1.5
    min_hits: int = 2
    tentative_max_lost_seconds: float = 0.3
    tentative_min_lost_frames: int = 1
    velocity_smoothing: float = 0.1
    velocity_area_change: float = 5.0
    motion_prediction: bool = True
    max_predict_seconds: float = 0.5
    static_hypothesis: bool = False
    camera_motion: bool = True
    cmc_max_side: int = 320
    cmc_parallel: bool = True
    lost_last: bool = False
    lost_penalty: float = 0.2
    low_score_pass: bool = True
    high_score_threshold: float = 0.5
    max_center_distance: float = 1.0
    max_area_ratio: float = 4.0
    max_growth_ratio: float = 16.0
    growth_center_distance: float = 0.5
    center_weight: float = 0.0
    center_size_weight: float = 0.3
    small_object_area: float = 16.0
    scale_prediction: bool = True
    scale_min_area: float = 400.0
    max_scale_rate: float = 3.0
    growth_model: str = "contact"
    max_predicted_growth: float = 1.7
    max_outside_fraction: float = 0.5
    outside_min_iou: float = 0.5
    reentry_distance: float = 2.0
    mask_samples: int = 1024
    max_pixels: int = 250_000
    appearance_weight: float = 0.5
    appearance_scale: float = 1.0
    appearance_gate: float = 0.5
    appearance_smoothing: float = 0.3
    histogram_bits: int = 3
    colour_boundary_weight: float = 0.25
    reid_distance: float = 6.0
    reid_colour: float = 0.35
    reid_area_ratio: float = 8.0
    takeover_hits: int = 3
    full_area_seconds: float = 2.0

    def __post_init__(self):
        _check(
            self.name in _TRACKER_NAMES,
            f"tracker.name is {self.name!r}; expected one of {', '.join(_TRACKER_NAMES)}",
        )
        _check(
            0 < self.iou_threshold <= 1,
            f"tracker.iou_threshold is {self.iou_threshold}; expected 0 < x <= 1",
        )
        _check(0 < self.min_containment <= 1, f"tracker.min_containment is {self.min_containment}; expected 0 < x <= 1")
        for key in ("max_containment_ratio", "velocity_area_change", "max_area_ratio", "min_hits", "reid_area_ratio"):
            _check(getattr(self, key) >= 1, f"tracker.{key} is {getattr(self, key)}; expected >= 1")
        for key in ("max_lost_seconds", "tentative_max_lost_seconds", "max_center_distance", "max_pixels",
                    "max_predict_seconds", "center_weight", "center_size_weight", "appearance_weight",
                    "reid_distance", "growth_center_distance", "full_area_seconds", "reentry_distance"):
            _check(getattr(self, key) >= 0, f"tracker.{key} is {getattr(self, key)}; expected >= 0")
        _check(
            0 < self.velocity_smoothing <= 1,
            f"tracker.velocity_smoothing is {self.velocity_smoothing}; expected 0 < x <= 1",
        )
        _check(
            0 <= self.high_score_threshold <= 1,
            f"tracker.high_score_threshold is {self.high_score_threshold}; expected 0 <= x <= 1",
        )
        _check(
            self.max_growth_ratio == 0 or self.max_growth_ratio >= 1,
            f"tracker.max_growth_ratio is {self.max_growth_ratio}; expected 0 (off) or >= 1",
        )
        _check(self.small_object_area >= 1, f"tracker.small_object_area is {self.small_object_area}; expected >= 1")
        _check(self.cmc_max_side >= 32, f"tracker.cmc_max_side is {self.cmc_max_side}; expected >= 32")
        _check(self.lost_penalty >= 0, f"tracker.lost_penalty is {self.lost_penalty}; expected >= 0")
        _check(
            isinstance(self.tentative_min_lost_frames, int) and self.tentative_min_lost_frames >= 0,
            f"tracker.tentative_min_lost_frames is {self.tentative_min_lost_frames}; expected an integer >= 0",
        )
        _check(self.mask_samples >= 0, f"tracker.mask_samples is {self.mask_samples}; expected >= 0")
        _check(self.scale_min_area >= 1, f"tracker.scale_min_area is {self.scale_min_area}; expected >= 1")
        _check(self.max_scale_rate >= 0, f"tracker.max_scale_rate is {self.max_scale_rate}; expected >= 0")
        _check(self.appearance_scale > 0, f"tracker.appearance_scale is {self.appearance_scale}; expected > 0")
        for key in ("appearance_gate", "reid_colour"):
            _check(
                0 <= getattr(self, key) <= 1,
                f"tracker.{key} is {getattr(self, key)}; "
                "expected a colour distance 0 <= x <= 1 (1 - histogram overlap)",
            )
        _check(
            isinstance(self.takeover_hits, int) and self.takeover_hits >= 0,
            f"tracker.takeover_hits is {self.takeover_hits}; expected an integer >= 0 (0 = off)",
        )
        _check(
            isinstance(self.histogram_bits, int) and 1 <= self.histogram_bits <= 4,
            f"tracker.histogram_bits is {self.histogram_bits}; expected an integer 1..4",
        )
        _check(
            0 <= self.colour_boundary_weight <= 1,
            f"tracker.colour_boundary_weight is {self.colour_boundary_weight}; expected 0 <= x <= 1",
        )
        _check(
            0 < self.appearance_smoothing <= 1,
            f"tracker.appearance_smoothing is {self.appearance_smoothing}; expected 0 < x <= 1",
        )
        for key in ("max_outside_fraction", "outside_min_iou"):
            _check(0 < getattr(self, key) <= 1, f"tracker.{key} is {getattr(self, key)}; expected 0 < x <= 1")
        _check(
            self.growth_model in ("contact", "exponential"),
            f"tracker.growth_model is {self.growth_model!r}; expected contact or exponential",
        )
        _check(
            self.max_predicted_growth > 1,
            f"tracker.max_predicted_growth is {self.max_predicted_growth}; expected > 1",
        )


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
def config_to_dict(cfg: Any) -> dict:
    """A plain dict (tuples as lists) suitable for YAML/JSON."""

    def convert(v):
        if isinstance(v, tuple):
            return [convert(x) for x in v]
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        return v

    return convert(dataclasses.asdict(cfg))


def _set_value(tree: dict, key: str, value: Any) -> None:
    """Put `value` at the dotted `key` of a nested dict (sections created as needed)."""
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"config key {key!r} is empty or has an empty part")
    node = tree
    for p in parts[:-1]:
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {p!r} is not a section")
        node = child
    node[parts[-1]] = value


def _set_override(tree: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value; got {assignment!r}")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"--set expects key=value; got {assignment!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    _set_value(tree, key, value)


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Defaults ← YAML file ← ``key=value`` overrides ← `values`, validated into a `RunConfig`.

    `values` maps dotted keys to already-typed values (command-line flags); None entries are
    skipped, so unset flags leave the file and the overrides alone.
    """
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
    for key, value in (values or {}).items():
        if value is not None:
            _set_value(tree, key, value)
    return from_mapping(RunConfig, tree)
