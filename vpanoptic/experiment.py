"""``vpanoptic experiment SPEC.yaml``: a grid of tracker / model configurations, scored alike.

Spec (YAML; unknown keys are errors)::

    name: trackers                       # names the default output folder runs/<name>
    metrics: [stq, pq, vpq, motsa]       # any of stq, pq, vpq, motsa, ptq (motsa is always
                                         # computed: it gives the id switches)
    device: cpu                          # model device (default cpu)
    data:                                # one of:
      synthetic:                         #   clips rendered by vpanoptic.synth (cached in OUT/clips)
        scenarios: [street, crossing]    #   street, crossing, crowd, fast, occlusion, pan_zoom, low_fps
        seeds: [0]
        frames: 40
        size: [432, 240]
      # clips:                           #   or existing clips: a video and its KITTI-STEP gt folder
      #   - {name: a, video: a/video.mp4, gt: a/gt}
    model: {name: oracle, options: {miss_rate: 0.05}}      # default model of every configuration
    configurations:
      - name: no association
        tracker: {name: none}
      - name: hungarian
        tracker: {name: hungarian, iou_threshold: 0.3}     # keys of the config's tracker section
        model: {name: oracle, options: {...}}              # optional, replaces the default model

Every configuration runs over every clip. The clip is the job of `vpanoptic.job.build_job`
(decode, predict; frame policy every) with no tracker in the loop and one sink that scores
each predicted frame for every configuration sharing the model: each tracker (built from
its `TrackerConfig`, validated like a run's ``tracker:`` section) assigns ids to a private
copy, scored against the ground truth with `Evaluator` (KITTI-STEP rules). With tracker "none",
things keep the model's track ids when it gives any (the oracle's
``keep_ids``: perfect association), else its per-frame segment ids. Outputs in the folder:
``results.md`` (tables), ``results.json`` (all numbers), ``metrics.png`` (metric per
configuration), ``per_sequence.png`` (STQ and AQ per clip), ``id_switches.png`` (cumulative
identity switches over time).
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .config import InputConfig, ModelConfig, OutputConfig, RunConfig, TrackerConfig, from_mapping
from .errors import ConfigError, StageError, UserError
from .eval.evaluator import Evaluator, InstanceRelabeler
from .eval.run import CLI_METRICS, to_jsonable
from .sinks.base import Sink

__all__ = ["Clip", "Configuration", "ExperimentSpec", "load_spec", "run_experiment"]

_SPEC_KEYS = {"name", "description", "metrics", "device", "data", "model", "configurations", "output"}
_SYNTH_KEYS = {"scenarios", "seeds", "frames", "size", "fps"}
_METRIC_NAMES = {"stq": "stq", "pq": "pq", "vpq": "vpq", "motsa": "mots", "ptq": "ptq"}
RNG_SEED = 0
TOP_KEYS = ("STQ", "AQ", "SQ", "PQ", "VPQ", "PTQ", "MOTSA", "sMOTSA", "IDS")


@dataclass(frozen=True)
class Configuration:
    """One point of the grid: a tracker (its settings as given, and validated) and a model."""

    name: str
    tracker: dict
    model: dict
    tracker_config: TrackerConfig = field(default_factory=TrackerConfig)


@dataclass(frozen=True)
class Clip:
    """A video with KITTI-STEP ground truth ``gt/<index:06d>.png``."""

    name: str
    video: Path
    gt: Path


@dataclass
class ExperimentSpec:
    name: str
    metrics: list[str]
    configurations: list[Configuration]
    data: dict
    device: str = "cpu"
    model: dict = field(default_factory=lambda: {"name": "oracle", "options": {}})
    description: str = ""
    output: str | None = None
    base_dir: Path = field(default_factory=Path.cwd)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _model_entry(entry: Any, where: str) -> dict:
    _require(isinstance(entry, dict) and isinstance(entry.get("name"), str), f"{where}: expected {{name, options}}")
    unknown = set(entry) - {"name", "options"}
    _require(not unknown, f"{where}: unknown keys {sorted(unknown)}; expected name, options")
    options = entry.get("options") or {}
    _require(isinstance(options, dict), f"{where}.options must be a mapping")
    return {"name": entry["name"], "options": dict(options)}


def load_spec(path: str | os.PathLike) -> ExperimentSpec:
    """Read and validate an experiment YAML; raises `ConfigError` (one line) on any mistake."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment spec {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    _require(isinstance(raw, dict), f"{path}: expected a mapping at the top level")
    unknown = set(raw) - _SPEC_KEYS
    _require(not unknown, f"{path}: unknown keys {sorted(unknown)}; expected {sorted(_SPEC_KEYS)}")
    metrics = raw.get("metrics", ["stq", "pq", "vpq", "motsa"])
    _require(isinstance(metrics, list) and all(m in CLI_METRICS for m in metrics),
             f"{path}: metrics is {metrics!r}; expected a list of {', '.join(CLI_METRICS)}")
    if "motsa" not in metrics:
        metrics = list(metrics) + ["motsa"]
    data = raw.get("data")
    _require(isinstance(data, dict) and len(data) == 1 and next(iter(data)) in ("synthetic", "clips"),
             f"{path}: data must hold exactly one of 'synthetic' or 'clips'")
    if "synthetic" in data:
        syn = data["synthetic"] or {}
        _require(isinstance(syn, dict), f"{path}: data.synthetic must be a mapping")
        bad = set(syn) - _SYNTH_KEYS
        _require(not bad, f"{path}: data.synthetic: unknown keys {sorted(bad)}; expected {sorted(_SYNTH_KEYS)}")
    else:
        clips = data["clips"]
        _require(isinstance(clips, list) and bool(clips), f"{path}: data.clips must be a non-empty list")
    default_model = _model_entry(raw["model"], "model") if "model" in raw else {"name": "oracle", "options": {}}
    configs = raw.get("configurations")
    _require(isinstance(configs, list) and bool(configs), f"{path}: configurations must be a non-empty list")
    out, names = [], set()
    for i, c in enumerate(configs):
        where = f"configurations[{i}]"
        _require(isinstance(c, dict), f"{path}: {where} must be a mapping")
        bad = set(c) - {"name", "tracker", "model"}
        _require(not bad, f"{path}: {where}: unknown keys {sorted(bad)}; expected name, tracker, model")
        tracker = c.get("tracker")
        _require(isinstance(tracker, dict) and isinstance(tracker.get("name"), str),
                 f"{path}: {where}.tracker must be a mapping with a name")
        name = str(c.get("name") or tracker["name"])
        _require(name not in names, f"{path}: configuration name {name!r} is used twice")
        names.add(name)
        try:
            tracker_config = from_mapping(TrackerConfig, tracker, "tracker.")
        except ConfigError as err:
            raise ConfigError(f"{path}: configuration {name!r}: {err}") from None
        model = _model_entry(c["model"], f"{where}.model") if "model" in c else copy.deepcopy(default_model)
        out.append(Configuration(name=name, tracker=dict(tracker), model=model, tracker_config=tracker_config))
    return ExperimentSpec(
        name=str(raw.get("name") or path.stem), metrics=list(metrics), configurations=out, data=data,
        device=str(raw.get("device", "cpu")), model=default_model, description=str(raw.get("description", "")),
        output=raw.get("output"), base_dir=path.parent,
    )


def prepare_clips(spec: ExperimentSpec, out_dir: Path, progress: bool = True) -> list[Clip]:
    """Synthetic clips are rendered once into ``out_dir/clips`` (kept while the parameters and the
    generator version match)."""
    if "clips" in spec.data:
        clips = []
        for i, c in enumerate(spec.data["clips"]):
            _require(isinstance(c, dict) and {"video", "gt"} <= set(c), f"data.clips[{i}] needs video and gt")
            video, gt = (spec.base_dir / str(c["video"])), (spec.base_dir / str(c["gt"]))
            for p in (video, gt):
                if not p.exists():
                    raise UserError(f"data.clips[{i}]: {p} does not exist")
            clips.append(Clip(str(c.get("name", video.parent.name)), video, gt))
        return clips
    from .synth import GENERATOR_VERSION, write_sequence

    syn = spec.data["synthetic"] or {}
    scenarios = syn.get("scenarios", ["street"])
    seeds = syn.get("seeds", [0])
    frames = int(syn.get("frames", 40))
    size = tuple(syn.get("size", (432, 240)))
    fps = syn.get("fps")
    clips = []
    for scenario in scenarios:
        for seed in seeds:
            name = f"{scenario}-s{seed}"
            root = out_dir / "clips" / name
            want = dict(seed=int(seed), frames=frames, width=int(size[0]), height=int(size[1]), scenario=scenario,
                        generator_version=GENERATOR_VERSION)
            meta_path = root / "meta.json"
            cached = False
            if meta_path.is_file():
                meta = json.loads(meta_path.read_text())
                cached = all(meta.get(k) == v for k, v in want.items()) and (fps is None or meta.get("fps") == fps)
            if not cached:
                if progress:
                    print(f"rendering clip {name} ({frames} frames, {size[0]}x{size[1]})", flush=True)
                write_sequence(root, seed=int(seed), frames=frames, size=size, fps=fps, scenario=scenario,
                               overwrite=True)
            clips.append(Clip(name, root / "video.mp4", root / "gt"))
    return clips


class _Run:
    """The state of one configuration: its evaluator over all clips, its tracker on the current clip."""

    def __init__(self, config: Configuration, metrics: list[str]):
        from .datasets import KITTI_STEP

        self.config = config
        self.evaluator = Evaluator(KITTI_STEP, [_METRIC_NAMES[m] for m in metrics])
        self.mots = self.evaluator.metric("mots")
        self.pass_through = config.tracker_config.name == "none"
        self.ids_over_time: dict[str, list[int]] = {}
        self.tracker_seconds = 0.0
        self.frames = 0

    def start_clip(self, clip: Clip, device) -> None:
        from .datasets import KITTI_STEP
        from .job import tracker_from_config

        try:
            self.tracker = tracker_from_config(self.config.tracker_config, device)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"configuration {self.config.name!r}: tracker {self.config.tracker}: {err}") from None
        self.relabel = InstanceRelabeler(KITTI_STEP.label_divisor)  # track ids may pass the divisor
        self.before = self.mots.result()["all"]["IDS"]
        self.series: list[int] = []

    def step(self, pf, gt: tuple[np.ndarray, np.ndarray], clip: Clip, index: int) -> None:
        """Track one predicted frame (a private copy) and score it against `gt`."""
        pf = copy.copy(pf)  # the model's frame is shared by the configurations of this model
        for name in ("segment_ids", "category_ids", "is_thing", "scores", "track_ids"):
            value = getattr(pf, name)
            if isinstance(value, np.ndarray):
                setattr(pf, name, value.copy())
        pf.timings = dict(pf.timings)
        started = time.perf_counter()
        if self.tracker is not None:  # None: things keep the model's ids
            pf = self.tracker.update(pf)
        self.tracker_seconds += time.perf_counter() - started
        pf = pf.to_numpy()
        # No tracker: things keep the model's ids if it gives any, else per-frame segment ids.
        model_ids = pf.track_ids is not None and bool((pf.track_ids[pf.is_thing] > 0).any())
        sem, inst = pf.to_labels("segment" if self.pass_through and not model_ids else "track")
        try:
            self.evaluator.update(gt, (sem, self.relabel(sem, inst)), clip.name)
        except ValueError as err:
            raise UserError(f"configuration {self.config.name!r}, clip {clip.name} frame {index}: {err}") from None
        self.series.append(self.mots.result()["all"]["IDS"] - self.before)
        self.frames += 1

    def end_clip(self, clip: Clip) -> None:
        self.ids_over_time[clip.name] = self.series

    def summary(self, clips: list[Clip]) -> dict:
        result = self.evaluator.result()
        stq = result.get("stq")
        per_seq = {}
        for i, clip in enumerate(clips):
            series = self.ids_over_time[clip.name]
            row: dict[str, float] = {"IDS": series[-1] if series else 0}
            if stq is not None:
                row.update(STQ=float(stq["STQ_per_seq"][i]), AQ=float(stq["AQ_per_seq"][i]),
                           SQ=float(stq["IoU_per_seq"][i]))
            per_seq[clip.name] = row
        return {
            "name": self.config.name,
            "tracker": self.config.tracker,
            "model": self.config.model,
            "numbers": {k: result[k] for k in TOP_KEYS if k in result},
            "per_sequence": per_seq,
            "id_switches_over_time": self.ids_over_time,
            "tracker_ms_per_frame": 1000.0 * self.tracker_seconds / max(self.frames, 1),
            "frames": self.frames,
            "detail": result,
        }


class _Scorer(Sink):
    """The sink of one clip's job: each predicted frame, tracked and scored by every run of one model."""

    name = "experiment"

    def __init__(self, clip: Clip, runs: list[_Run], bar):
        self.clip, self.runs, self.bar = clip, runs, bar
        self.frames = 0

    def write(self, pf) -> None:
        from .io.formats import read_kitti_step

        index = pf.frame.index
        gt_path = self.clip.gt / f"{index:06d}.png"
        if not gt_path.is_file():
            raise UserError(f"clip {self.clip.name}: no ground truth {gt_path} for frame {index}")
        gt = read_kitti_step(gt_path)
        for run in self.runs:
            run.step(pf, gt, self.clip, index)
        self.frames += 1
        if self.bar is not None:
            self.bar.update(len(self.runs))

    def close(self) -> None:
        pass


def _run_all(spec: ExperimentSpec, clips: list[Clip], bar) -> list[dict]:
    """Every configuration over every clip. Configurations with the same model run in lockstep:
    each frame is decoded and predicted once (one job per clip and model), then tracked and
    scored by each of them."""
    from .job import build_job

    runs = [_Run(config, spec.metrics) for config in spec.configurations]
    groups: dict[str, list[_Run]] = {}
    for run in runs:
        groups.setdefault(json.dumps(run.config.model, sort_keys=True), []).append(run)
    for clip in clips:
        expected = _frame_count(clip)
        for members in groups.values():
            model = members[0].config.model
            cfg = RunConfig(input=InputConfig(policy="every"), tracker=TrackerConfig(name="none"),
                            model=ModelConfig(name=model["name"], device=spec.device, options=model["options"]),
                            output=OutputConfig(save=()))
            scorer = _Scorer(clip, members, bar)
            with build_job(str(clip.video), cfg, sinks=[scorer]) as job:
                # OpenCV's RANSAC (camera motion) draws from its RNG on the thread of the sinks
                # (this one): runs independent of their order
                cv2.setRNGSeed(RNG_SEED)
                for run in members:
                    run.start_clip(clip, job.model.device)
                try:
                    job.run()
                except StageError as err:
                    if isinstance(err.error, UserError):  # a mistake in the clip or a configuration: one line
                        raise err.error from None
                    raise
            if scorer.frames != expected:
                raise UserError(
                    f"clip {clip.name}: the video gave {scorer.frames} frames but {clip.gt} holds {expected}")
            for run in members:
                run.end_clip(clip)
    return [run.summary(clips) for run in runs]


def run_experiment(spec: ExperimentSpec, out_dir: str | os.PathLike, *, progress: bool = True,
                   plots: bool = True) -> dict:
    """Run every configuration over every clip, then write results.md / .json and the plots."""
    from .job import set_thread_defaults

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    set_thread_defaults(0)  # the jobs set the same; the clips are rendered with them too
    clips = prepare_clips(spec, out_dir, progress)
    total = len(spec.configurations) * sum(_frame_count(c) for c in clips)
    from tqdm import tqdm

    with tqdm(total=total or None, unit="frame", desc="experiment", disable=not progress, dynamic_ncols=True) as bar:
        runs = _run_all(spec, clips, bar)
    summary = {"name": spec.name, "description": spec.description, "metrics": spec.metrics, "model": spec.model,
               "clips": [c.name for c in clips], "configurations": runs}
    (out_dir / "results.json").write_text(json.dumps(to_jsonable(summary), indent=1) + "\n", encoding="utf-8")
    (out_dir / "results.md").write_text(markdown_report(summary), encoding="utf-8")
    if plots:
        from .eval.plots import plot_experiment

        plot_experiment(summary, out_dir)
    return summary


def _frame_count(clip: Clip) -> int:
    return sum(1 for p in clip.gt.glob("*.png")) if clip.gt.is_dir() else 0


def _pct(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return str(int(v)) if isinstance(v, (int, np.integer)) else f"{100 * float(v):.1f}"


def markdown_report(summary: dict) -> str:
    """Markdown tables: one row per configuration, then STQ per clip."""
    runs = summary["configurations"]
    keys = [k for k in TOP_KEYS if any(k in r["numbers"] for r in runs)]
    lines = [f"# Experiment: {summary['name']}", ""]
    if summary.get("description"):
        lines += [summary["description"].strip(), ""]
    lines += [f"{len(summary['clips'])} clips: {', '.join(summary['clips'])}. Metrics in %, IDS = identity switches "
              "(MOTS rules), tracker time per frame in ms.", ""]
    models = [json.dumps(r["model"], sort_keys=True) for r in runs]
    default = summary.get("model")
    common = json.dumps(default, sort_keys=True) if default else max(set(models), key=models.count)
    show_model = len(set(models)) > 1
    lines.append("| configuration | tracker | " + ("model | " if show_model else "") + " | ".join(keys)
                 + " | tracker ms |")
    lines.append("|---|---|" + ("---|" if show_model else "") + "---:|" * (len(keys) + 1))
    for r, model in zip(runs, models):
        args = ", ".join(f"{k}={v}" for k, v in r["tracker"].items() if k != "name")
        tracker = r["tracker"]["name"] + (f" ({args})" if args else "")
        cells = [r["name"], tracker]
        if show_model:
            cells.append("default" if model == common else _model_diff(json.loads(common), r["model"]))
        lines.append("| " + " | ".join(cells) + " | " + " | ".join(_pct(r["numbers"].get(k)) for k in keys)
                     + f" | {r['tracker_ms_per_frame']:.2f} |")
    lines += ["", "STQ per clip (%):", ""]
    clips = summary["clips"]
    lines.append("| configuration | " + " | ".join(clips) + " |")
    lines.append("|---|" + "---:|" * len(clips))
    for r in runs:
        lines.append(f"| {r['name']} | " + " | ".join(_pct(r["per_sequence"][c].get("STQ")) for c in clips) + " |")
    lines += ["", "Default model: " + common, ""]
    return "\n".join(lines)


def _model_diff(base: dict, model: dict) -> str:
    """``model`` as the options that differ from `base` (or its full form for another model)."""
    if model["name"] != base["name"]:
        return f"{model['name']} {json.dumps(model['options'], sort_keys=True)}"
    opts, old = model["options"], base["options"]
    diff = [f"{k}={opts[k]}" for k in sorted(opts) if old.get(k, None) != opts[k]]
    diff += [f"{k} default" for k in sorted(old) if k not in opts]
    return ", ".join(diff) or "default"
