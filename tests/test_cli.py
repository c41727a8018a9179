"""The command line: the list of commands, the one flag → config key table, fast start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vpanoptic.cli import COMMANDS, build_parser, main
from vpanoptic.cli.common import CONFIG_FLAGS, config_from_args
from vpanoptic.config import RunConfig, config_to_dict

ROOT = Path(__file__).resolve().parents[1]

# Runs the CLI in a fresh interpreter and says whether torch was imported.
PROBE = """
import sys
from vpanoptic.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("torch imported:", "torch" in sys.modules, "exit:", code)
"""


def _probe(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env,
                          timeout=60, cwd=ROOT)


def test_bare_vpanoptic_lists_the_commands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "required" not in out
    for name in COMMANDS:
        assert f"    {name}" in out, name


def test_python_m_vpanoptic_is_the_command():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "vpanoptic", "--version"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("vpanoptic ")


@pytest.mark.parametrize(
    "argv, code",
    [
        (["--help"], 0),
        ([], 2),
        (["run", "--help"], 0),
        (["run", "clip.mp4", "-o", "out", "--set", "tracker.iou_thresh=0.3"], 2),  # a config error
        (["track", "preds", "-o", "out", "--set", "iou_threshold=2"], 2),
        (["batch"], 2),  # an argument error
    ],
)
def test_help_and_user_errors_do_not_import_torch(argv, code):
    done = _probe(*argv)
    assert f"torch imported: False exit: {code}" in done.stdout, done.stdout + done.stderr
    if code == 2 and argv:
        assert done.stderr.count("\n") == 1, done.stderr


def test_every_flag_sets_a_known_config_key():
    keys = config_to_dict(RunConfig())
    for flag, key, _ in CONFIG_FLAGS.values():
        section, name, *rest = key.split(".")
        assert name in keys[section], (flag, key)
        assert not rest or isinstance(keys[section][name], dict), (flag, key)  # inside an options mapping


def test_flags_override_the_file_and_set(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("input: {max_frames: 5}\nmodel: {batch_size: 3}\n")
    args = build_parser().parse_args(["run", "x.mp4", "-o", "o", "--config", str(config), "--set",
                                      "input.max_frames=7", "--max-frames", "9", "--realtime", "--weights", "w.pt"])
    cfg = config_from_args(args)
    assert cfg.input.max_frames == 9 and cfg.input.realtime and cfg.model.batch_size == 3
    assert cfg.model.options == {"weights": "w.pt"}
    args = build_parser().parse_args(["run", "x.mp4", "-o", "o", "--set", "input.max_frames=7"])
    assert config_from_args(args).input.max_frames == 7 and not config_from_args(args).input.realtime


@pytest.mark.parametrize(
    "argv, save",
    [
        (["live", "webcam:0"], ()),  # live saves nothing unless asked
        (["live", "webcam:0", "--save", "jsonl"], ("jsonl",)),
        (["live", "webcam:0", "--set", "output.save=png"], ("png",)),
        (["run", "x.mp4", "-o", "o"], ("video", "png", "coco", "jsonl")),
    ],
)
def test_command_defaults_yield_to_what_the_user_sets(argv, save):
    assert config_from_args(build_parser().parse_args(argv)).output.save == save


def test_track_set_takes_tracker_keys():
    args = build_parser().parse_args(["track", "p", "-o", "o", "--tracker", "greedy", "--set", "iou_threshold=0.6"])
    cfg = config_from_args(args)
    assert cfg.tracker.name == "greedy" and cfg.tracker.iou_threshold == 0.6
