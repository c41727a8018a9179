"""``vpanoptic experiment``: spec validation, a tiny synthetic grid end to end, outputs."""

from __future__ import annotations

import json

import pytest

from vpanoptic.cli import main
from vpanoptic.errors import ConfigError
from vpanoptic.experiment import load_spec, markdown_report

TINY = """
name: tiny
metrics: [stq, pq, vpq]
data:
  synthetic:
    scenarios: [crossing]
    seeds: [3]
    frames: 6
    size: [128, 96]
model: {name: oracle, options: {}}
configurations:
  - name: no association
    tracker: {name: none}
  - name: hungarian
    tracker: {name: hungarian, iou_threshold: 0.3}
"""


def _write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_spec_defaults_and_validation(tmp_path):
    spec = load_spec(_write(tmp_path, TINY))
    assert spec.name == "tiny" and spec.metrics == ["stq", "pq", "vpq", "motsa"]  # motsa gives the id switches
    assert [c.name for c in spec.configurations] == ["no association", "hungarian"]
    assert spec.configurations[1].tracker == {"name": "hungarian", "iou_threshold": 0.3}
    assert spec.configurations[0].model == {"name": "oracle", "options": {}}


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("name: tiny", "name: tiny\ncolour: red", r"unknown keys \['colour'\]"),
        ("metrics: [stq, pq, vpq]", "metrics: [stq, hota]", "metrics is"),
        ("  - name: hungarian\n", "  - name: no association\n", "used twice"),
        ("    tracker: {name: none}", "    tracker: none", "tracker must be a mapping"),
        ("    seeds: [3]", "    seeds: [3]\n    colour: red", r"data.synthetic: unknown keys \['colour'\]"),
        ("model: {name: oracle, options: {}}", "model: {name: oracle, opts: {}}", r"unknown keys \['opts'\]"),
    ],
)
def test_spec_errors_are_one_line(tmp_path, old, new, message):
    assert old in TINY
    with pytest.raises(ConfigError, match=message) as info:
        load_spec(_write(tmp_path, TINY.replace(old, new)))
    assert "\n" not in str(info.value)


def test_tiny_grid_end_to_end(tmp_path, capsys):
    spec = _write(tmp_path, TINY)
    out = tmp_path / "out"
    assert main(["experiment", str(spec), "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| no association | none |" in printed
    for name in ("results.md", "results.json", "metrics.png", "per_sequence.png", "id_switches.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    data = json.loads((out / "results.json").read_text())
    assert data["clips"] == ["crossing-s3"]
    none, hungarian = data["configurations"]
    # Perfect detections: segmentation is identical, association is what differs.
    assert none["numbers"]["PQ"] == pytest.approx(1.0) and hungarian["numbers"]["PQ"] == pytest.approx(1.0)
    assert hungarian["numbers"]["AQ"] > none["numbers"]["AQ"]
    assert none["numbers"]["IDS"] >= hungarian["numbers"]["IDS"]
    assert len(none["id_switches_over_time"]["crossing-s3"]) == 6
    assert none["frames"] == 6
    # The rendered clip is cached: a second run reuses it.
    mtime = (out / "clips" / "crossing-s3" / "video.mp4").stat().st_mtime_ns
    assert main(["experiment", str(spec), "-o", str(out), "--no-progress"]) == 0
    assert (out / "clips" / "crossing-s3" / "video.mp4").stat().st_mtime_ns == mtime
    assert "STQ per clip" in markdown_report(data)
    # The same clip given as an existing video + ground truth gives the same numbers.
    clip = out / "clips" / "crossing-s3"
    clips_spec = TINY.split("data:")[0] + (
        f"data:\n  clips:\n    - {{name: c, video: {clip / 'video.mp4'}, gt: {clip / 'gt'}}}\n"
        + "model:" + TINY.split("model:", 1)[1]
    )
    assert main(["experiment", str(_write(tmp_path, clips_spec, "clips.yaml")), "-o", str(tmp_path / "o2"),
                 "--no-progress"]) == 0
    again = json.loads((tmp_path / "o2" / "results.json").read_text())
    assert again["clips"] == ["c"]
    assert again["configurations"][1]["numbers"]["STQ"] == pytest.approx(hungarian["numbers"]["STQ"])


def test_bad_tracker_arguments_are_user_errors(tmp_path, capsys):
    spec = _write(tmp_path, TINY.replace("iou_threshold: 0.3", "iou_thresh: 0.3"))
    assert main(["experiment", str(spec), "-o", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "configuration 'hungarian'" in err and "iou_thresh" in err and err.count("\n") == 1


def test_missing_spec(tmp_path, capsys):
    assert main(["experiment", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_plots_without_matplotlib_name_the_extra(monkeypatch, tmp_path):
    import sys

    from vpanoptic.errors import UserError
    from vpanoptic.eval.plots import plot_experiment

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(UserError, match=r"pip install 'vpanoptic\[plots\]'"):
        plot_experiment({"name": "x", "clips": [], "configurations": []}, tmp_path)


@pytest.mark.parametrize("name", ["trackers.yaml", "degradation.yaml"])
def test_shipped_specs_load_and_build_their_trackers(name):
    from pathlib import Path

    from vpanoptic.job import tracker_from_config
    from vpanoptic.models.registry import get_entry
    from vpanoptic.synth import SCENARIOS

    spec = load_spec(Path(__file__).resolve().parents[1] / "configs" / "experiments" / name)
    assert set(spec.data["synthetic"]["scenarios"]) <= set(SCENARIOS)
    for config in spec.configurations:
        assert config.tracker_config.name == config.tracker["name"]
        tracker_from_config(config.tracker_config)  # raises on a keyword the tracker lost
        entry = get_entry(config.model["name"])
        assert set(config.model["options"]) <= set(entry.option_names()), config.name


def test_configurations_sharing_a_model_do_not_share_tracker_state(tmp_path):
    """Configurations with the same model are run in lockstep on one prediction per frame;
    each tracker works on its own copy, so two identical configurations agree exactly and
    running them together equals running one alone."""
    from vpanoptic.experiment import run_experiment

    twin = TINY.replace(
        "  - name: hungarian\n", "  - name: hungarian twin\n    tracker: {name: hungarian, iou_threshold: 0.3}\n"
        "  - name: hungarian\n",
    )
    single = TINY.split("  - name: no association")[0] + (
        "  - name: hungarian\n    tracker: {name: hungarian, iou_threshold: 0.3}\n"
    )
    both = run_experiment(load_spec(_write(tmp_path, twin)), tmp_path / "a", progress=False, plots=False)
    alone = run_experiment(load_spec(_write(tmp_path, single, "alone.yaml")), tmp_path / "b", progress=False,
                           plots=False)
    twin_run, main_run = both["configurations"][1], both["configurations"][2]
    assert twin_run["numbers"] == main_run["numbers"] == alone["configurations"][0]["numbers"]
    assert twin_run["id_switches_over_time"] == alone["configurations"][0]["id_switches_over_time"]


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("iou_threshold: 0.3", "iou_threshold: 2", "tracker.iou_threshold is 2.0; expected 0 < x <= 1"),
        ("iou_threshold: 0.3", "min_hits: many", "tracker.min_hits is 'many'; expected an integer"),
        ("{name: hungarian,", "{name: kalmann,", "tracker.name is 'kalmann'"),
    ],
)
def test_tracker_settings_are_validated_like_a_run_config(tmp_path, capsys, old, new, message):
    spec = _write(tmp_path, TINY.replace(old, new))
    out = tmp_path / "o"
    assert main(["experiment", str(spec), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "configuration 'hungarian'" in err and message in err and err.count("\n") == 1
    assert not out.exists()  # rejected before any clip is rendered
