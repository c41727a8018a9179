"""The shipped `vpanoptic-street` model on a small fixed synthetic clip: a real accuracy check."""

import numpy as np
import pytest
import torch

from vpanoptic.errors import ModelError
from vpanoptic.models.registry import build_model
from vpanoptic.synth import generate
from vpanoptic.types import Frame

# World seed 4242 is below the training seed range: never seen in training.
SEED, SCENARIO, FRAMES = 4242, "street", 3
MIN_PIXEL_ACCURACY = 0.9     # fraction of pixels with the right class
MIN_CLASS_IOU = 0.5          # for every class covering >= 3 % of the frames
MIN_CAR_RECALL = 0.5         # cars of >= 400 px matched by a predicted car segment with IoU > 0.5


@pytest.fixture(scope="module")
def clip():
    return list(generate(SEED, FRAMES, (640, 360), scenario=SCENARIO))


@pytest.fixture(scope="module")
def predictions(clip):
    model = build_model("vpanoptic-street", device="cpu")
    frames = [Frame(f.index, f.index, f.time, 0.0, f.image) for f in clip]
    return [model.predict([fr])[0] for fr in frames]


def test_output_is_a_complete_panoptic_frame_on_the_device(predictions):
    for pf in predictions:
        assert isinstance(pf.id_map, torch.Tensor) and pf.id_map.dtype == torch.int32
        pf.validate()
        assert (pf.id_map > 0).all()  # no void: every pixel gets a class
        assert (pf.track_ids == -1).all() and ((pf.scores > 0) & (pf.scores <= 1)).all()
        assert set(pf.category_ids[pf.is_thing].tolist()) <= {11, 13}


def test_expected_classes_over_most_pixels(clip, predictions):
    sem_gt = np.stack([f.semantic for f in clip])
    sem_pred = np.stack([pf.to_labels()[0] for pf in predictions])
    accuracy = (sem_gt == sem_pred).mean()
    assert accuracy >= MIN_PIXEL_ACCURACY, accuracy
    for c in np.unique(sem_gt):
        gt, pr = sem_gt == c, sem_pred == c
        if gt.mean() >= 0.03:
            iou = (gt & pr).sum() / (gt | pr).sum()
            assert iou >= MIN_CLASS_IOU, (int(c), iou)


def test_cars_are_found_as_separate_instances(clip, predictions):
    found = total = 0
    for f, pf in zip(clip, predictions):
        _, seg = pf.to_labels(instances="segment")
        cars = [i for i in np.unique(f.instance[f.semantic == 13]) if i and (f.instance == i).sum() >= 400]
        for i in cars:
            gt = f.instance == i
            ids, counts = np.unique(seg[gt], return_counts=True)
            best = ids[counts.argmax()]
            pred = seg == best
            iou = (gt & pred).sum() / (gt | pred).sum()
            total += 1
            found += bool(best and iou > 0.5)
    assert total >= 2
    assert found >= MIN_CAR_RECALL * total, (found, total)


def test_reduced_resolution_options_still_segment(clip):
    model = build_model("vpanoptic-street", device="cpu", input_size="320x180", output_scale=0.25)
    f = clip[0]
    pf = model.predict([Frame(0, 0, 0.0, 0.0, f.image)])[0]
    assert pf.id_map.shape == (360, 640)
    assert (pf.to_labels()[0] == f.semantic).mean() >= 0.8


@pytest.mark.parametrize("options, message", [
    ({"backend": "tensorrt"}, "backend is 'tensorrt'"),
    ({"output_scale": 0.0}, "output_scale is 0.0"),
    ({"input_size": "big"}, "input_size is 'big'"),
    ({"center_threshold": 2.0}, "center_threshold is 2.0"),
    ({"center_treshold": 0.2}, "did you mean 'center_threshold'"),
])
def test_bad_options_are_one_line_model_errors(options, message):
    with pytest.raises(ModelError, match=message):
        build_model("vpanoptic-street", device="cpu", **options)


def test_onnx_backend_matches_eager(clip):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    image = clip[1].image
    frame = Frame(0, 0, 0.0, 0.0, image)
    eager = build_model("vpanoptic-street", device="cpu").predict([frame])[0].to_labels()[0]
    onnx = build_model("vpanoptic-street", device="cpu", backend="onnx").predict([frame])[0].to_labels()[0]
    assert (eager == onnx).mean() >= 0.999
