import numpy as np
import pytest
import torch

from vpanoptic.errors import ModelError
from vpanoptic.io.formats import write_kitti_step
from vpanoptic.models.registry import build_model, get_entry, list_models, register_model
from vpanoptic.types import Frame

H, W = 48, 64


@pytest.fixture()
def gt_dir(tmp_path):
    """Three frames: road, sky on top, two cars (ids 1, 2) and a person (id 3)."""
    d = tmp_path / "gt"
    d.mkdir()
    for i in range(3):
        sem = np.zeros((H, W), int)
        sem[:10] = 10
        inst = np.zeros((H, W), int)
        for label, cat, (y0, x0) in [(1, 13, (20, 2 + i)), (2, 13, (30, 40 - i)), (3, 11, (12, 25))]:
            sem[y0 : y0 + 10, x0 : x0 + 14] = cat
            inst[y0 : y0 + 10, x0 : x0 + 14] = label
        write_kitti_step(d / f"{i:06d}.png", sem, inst)
    return d


def frames(n=3):
    return [Frame(i, i, i / 10, 0.0, np.zeros((H, W, 3), np.uint8)) for i in range(n)]


def test_clean_oracle_reproduces_ground_truth(gt_dir):
    from vpanoptic.io.formats import read_kitti_step

    model = build_model("oracle", device="cpu", gt=str(gt_dir), scramble_ids=False, keep_ids=True)
    for pf in model.predict(frames()):
        assert isinstance(pf.id_map, torch.Tensor) and pf.id_map.device.type == "cpu"
        sem, inst = pf.to_labels()
        gsem, ginst = read_kitti_step(gt_dir / f"{pf.frame.index:06d}.png")
        np.testing.assert_array_equal(sem, gsem)
        np.testing.assert_array_equal(inst, ginst)
        assert (pf.scores == 1).all()


def test_crowd_in_ground_truth_stays_crowd_through_the_tracker(tmp_path):
    from vpanoptic.tracking import build_tracker

    d = tmp_path / "gt"
    d.mkdir()
    sem = np.zeros((H, W), int)
    inst = np.zeros((H, W), int)
    sem[20:30, 2:16], inst[20:30, 2:16] = 13, 1          # a car
    sem[5:8, 40:60] = 13                                  # distant cars: crowd (instance 0)
    write_kitti_step(d / "000000.png", sem, inst)
    write_kitti_step(d / "000001.png", sem, inst)
    model = build_model("oracle", device="cpu", gt=str(d))
    tracker = build_tracker("hungarian")
    for pf in model.predict(frames(2)):
        crowd = pf.category_ids[~pf.is_thing]
        assert 13 in crowd.tolist()                       # the crowd segment is there, not a thing
        out_sem, out_inst = tracker.update(pf).to_labels("track")
        np.testing.assert_array_equal(out_sem, sem)
        assert (out_inst[5:8, 40:60] == 0).all() and (out_inst[20:30, 2:16] > 0).all()


def test_default_oracle_hides_true_ids_and_scrambles_segments(gt_dir):
    model = build_model("oracle", device="cpu", gt=str(gt_dir))
    outs = model.predict(frames())
    assert all((pf.track_ids == -1).all() for pf in outs)
    # segment numbering differs between frames for the same object (no free ids for trackers)
    orders = [tuple(pf.category_ids.tolist()) for pf in outs]
    seg_of_person = [int(pf.segment_ids[pf.category_ids == 11][0]) for pf in outs]
    assert len(set(orders)) > 1 or len(set(seg_of_person)) > 1
    for pf in outs:
        pf.validate()


def test_input_path_locates_gt_next_to_video(gt_dir):
    model = build_model("oracle", device="cpu", input=str(gt_dir.parent / "video.mp4"))
    assert model.gt_dir == gt_dir


def test_degradations_are_reproducible_and_do_damage(gt_dir):
    opts = dict(gt=str(gt_dir), miss_rate=0.3, boundary_noise=2, false_positives=2.0, class_flip_rate=0.2, seed=3)
    a = build_model("oracle", device="cpu", **opts).predict(frames())
    b = build_model("oracle", device="cpu", **opts).predict(frames())
    clean = build_model("oracle", device="cpu", gt=str(gt_dir), scramble_ids=False).predict(frames())
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.id_map.numpy(), y.id_map.numpy())
        np.testing.assert_array_equal(x.scores, y.scores)
    changed = sum(int((x.to_labels()[0] != c.to_labels()[0]).sum()) for x, c in zip(a, clean))
    assert changed > 0
    assert all((x.scores < 1).all() for x in a)
    # batching does not change the result: frame 2 alone equals frame 2 in a batch
    alone = build_model("oracle", device="cpu", **opts).predict(frames()[2:])[0]
    np.testing.assert_array_equal(alone.id_map.numpy(), a[2].id_map.numpy())


def test_oracle_errors(tmp_path, gt_dir):
    with pytest.raises(ModelError, match="needs ground truth"):
        build_model("oracle", device="cpu")
    with pytest.raises(ModelError, match="no ground truth directory"):
        build_model("oracle", device="cpu", gt=str(tmp_path / "nope"))
    with pytest.raises(ModelError, match="miss_rate"):
        build_model("oracle", device="cpu", gt=str(gt_dir), miss_rate=2)
    model = build_model("oracle", device="cpu", gt=str(gt_dir))
    with pytest.raises(ModelError, match="no ground truth for frame 7"):
        model.predict([Frame(7, 7, 0.7, 0.0, np.zeros((H, W, 3), np.uint8))])
    with pytest.raises(ModelError, match="differs from the video frame"):
        model.predict([Frame(0, 0, 0.0, 0.0, np.zeros((H + 2, W, 3), np.uint8))])


def test_registry_errors():
    with pytest.raises(ModelError, match=r"unknown model 'orcale'; did you mean 'oracle'"):
        build_model("orcale")
    with pytest.raises(ModelError, match=r"has no option 'mis_rate'; did you mean 'miss_rate'"):
        build_model("oracle", device="cpu", mis_rate=0.1)
    with pytest.raises(ValueError, match="already registered"):
        register_model("oracle", description="x", dataset="y")(lambda **kw: None)
    assert "oracle" in [e.name for e in list_models()]
    assert "miss_rate" in get_entry("oracle").option_names()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_request_without_cuda_is_a_user_error():
    with pytest.raises(ModelError, match="CUDA is not available"):
        build_model("oracle", device="cuda")
