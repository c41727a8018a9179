from pathlib import Path

import pytest

from vpanoptic.config import RunConfig, config_to_dict, load_config, parse_policy
from vpanoptic.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_and_overrides():
    cfg = load_config(None, ["tracker.iou_threshold=0.5", "output.save=video,jsonl", "model.options.miss_rate=0.1"])
    assert cfg.tracker.iou_threshold == 0.5
    assert cfg.output.save == ("video", "jsonl")
    assert cfg.model.options == {"miss_rate": 0.1}
    assert load_config().model == RunConfig().model


def test_default_yaml_mirrors_dataclasses():
    assert config_to_dict(load_config(CONFIGS / "default.yaml")) == config_to_dict(RunConfig())


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    load_config(path)


@pytest.mark.parametrize(
    "override,message",
    [
        ("tracker.iou_thresh=0.3", "unknown config key 'tracker.iou_thresh'; did you mean 'tracker.iou_threshold'"),
        ("trackr.name=none", "unknown config key 'trackr'"),
        ("tracker.iou_threshold=abc", "tracker.iou_threshold is 'abc'; expected a number"),
        ("tracker.iou_threshold=1.5", "expected 0 < x <= 1"),
        ("tracker.full_area_seconds=-1", "tracker.full_area_seconds is -1.0; expected >= 0"),
        ("tracker.center_size_weight=-0.3", "tracker.center_size_weight is -0.3; expected >= 0"),
        ("input.realtime=3", "expected true or false"),
        ("input.queue_size=0", "input.queue_size is 0"),
        ("input.policy=sometimes", "frame policy is 'sometimes'"),
        ("output.save=video,gif", "unknown output 'gif'"),
        ("model.device=gpu", "model.device is 'gpu'"),
        ("novalue", "expects key=value"),
        ("model.name.x=1", "model.name is {'x': 1}; expected a string"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_yaml_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("tracker:\n  max_lost: 2\n")
    with pytest.raises(ConfigError, match="tracker.max_lost"):
        load_config(unknown)
    top = tmp_path / "list.yaml"
    top.write_text("- a\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(top)


def test_parse_policy():
    assert parse_policy("every").kind == "every"
    p = parse_policy("staleness:0.5")
    assert (p.kind, p.max_age, str(p)) == ("staleness", 0.5, "staleness:0.5")
    for bad in ("staleness:", "staleness:-1", "newest"):
        with pytest.raises(ConfigError):
            parse_policy(bad)


def test_typed_values_win_over_overrides_and_none_is_skipped(tmp_path):
    cfg = load_config(
        None,
        ["model.batch_size=2", "input.max_frames=5"],
        {"model.batch_size": 4, "input.max_frames": None, "model.options.weights": "a b=c.pt", "output.save": "jsonl"},
    )
    assert cfg.model.batch_size == 4 and cfg.input.max_frames == 5
    assert cfg.model.options == {"weights": "a b=c.pt"}  # a path stays a string, whatever its characters
    assert cfg.output.save == ("jsonl",)
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(None, (), {"model.batch_size": "four"})
