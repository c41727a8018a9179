"""Grouping and fusion of StreetNet outputs (`vpanoptic.models.street.grouping`) on hand-made tensors."""

import pytest
import torch

from vpanoptic.models.street.grouping import (
    BilinearLogits,
    GroupingParams,
    find_centers,
    group_panoptic,
    labels_to_segments,
    resize_labels,
)

# Three classes: 0 road (stuff), 1 sky (stuff), 2 car (thing).
THING = torch.tensor([False, False, True])
H, W = 8, 12


def logits_for(classes: torch.Tensor, k: int = 3) -> torch.Tensor:
    """``(H, W)`` class map → ``(K, H, W)`` logits whose arg-max is that map."""
    return torch.nn.functional.one_hot(classes, k).permute(2, 0, 1).float() * 10


def two_cars():
    """Road below, sky on top, two cars (columns 1-4 and 7-10) of rows 4-6; their centers."""
    cls = torch.zeros(H, W, dtype=torch.long)
    cls[:3] = 1
    cls[4:7, 1:5] = 2
    cls[4:7, 7:11] = 2
    center = torch.zeros(1, H, W)
    center[0, 5, 2] = 0.9
    center[0, 5, 8] = 0.8
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    target_x = torch.where(xs < 6, torch.tensor(2.0), torch.tensor(8.0))
    offsets = torch.stack([5.0 - ys, target_x - xs])
    return cls, center, offsets


def test_find_centers_keeps_local_maxima_above_threshold_best_first():
    heat = torch.zeros(1, H, W)
    heat[0, 1, 1], heat[0, 1, 2] = 0.5, 0.4  # 0.4 is suppressed by its neighbour
    heat[0, 6, 9] = 0.9
    heat[0, 3, 6] = 0.1  # below threshold
    coords, scores = find_centers(heat, GroupingParams(center_threshold=0.2, nms_kernel=3))
    assert coords.tolist() == [[6.0, 9.0], [1.0, 1.0]]
    assert scores.tolist() == pytest.approx([0.9, 0.5])


def test_two_cars_become_two_instances_and_stuff_one_segment_per_class():
    cls, center, offsets = two_cars()
    labels, scores, m1 = group_panoptic(logits_for(cls), center, offsets, (H, W), THING,
                                        GroupingParams(min_instance_area=0))
    sem, inst = labels // m1, labels % m1
    assert torch.equal(sem, cls)
    assert (inst[cls != 2] == 0).all()
    left, right = inst[4:7, 1:5], inst[4:7, 7:11]
    assert left.unique().numel() == 1 and right.unique().numel() == 1 and left[0, 0] != right[0, 0]
    assert scores[int(left[0, 0])] == pytest.approx(0.9) and scores[int(right[0, 0])] == pytest.approx(0.8)


def test_grouping_at_a_fraction_of_the_network_resolution_and_back():
    cls, center, offsets = two_cars()
    labels, _, m1 = group_panoptic(logits_for(cls), center, offsets, (2 * H, 2 * W), THING,
                                   GroupingParams(min_instance_area=0))
    assert labels.shape == (2 * H, 2 * W)
    small = resize_labels(labels, (H, W))
    assert torch.equal(small // m1, cls)


def test_small_instances_go_back_to_the_best_stuff_class():
    cls, center, offsets = two_cars()
    cls[4:7] = 0
    cls[5, 8] = 2  # a one-pixel car on the road, the only thing pixel
    labels, _, m1 = group_panoptic(logits_for(cls), center, offsets, (H, W), THING,
                                   GroupingParams(min_instance_area=2))
    assert labels[5, 8] == 0 * m1  # road, instance 0
    assert ((labels % m1) == 0).all()


def test_thing_pixels_without_any_center_form_one_instance_per_class():
    cls, center, offsets = two_cars()
    labels, scores, m1 = group_panoptic(logits_for(cls), torch.zeros(1, H, W), offsets, (H, W), THING,
                                        GroupingParams(min_instance_area=0))
    inst = labels % m1
    assert inst[cls == 2].unique().tolist() == [1]
    assert (inst[cls != 2] == 0).all()


def test_labels_to_segments_gives_compact_ids_without_void():
    labels = torch.tensor([[0, 0, 65 * 2 + 1], [65, 65 * 2 + 3, 65 * 2 + 1]])
    id_map, seg = labels_to_segments(labels, 65, 3)
    assert seg.tolist() == [0, 65, 131, 133]
    assert id_map.tolist() == [[1, 1, 3], [2, 4, 3]] and id_map.dtype == torch.int32


@pytest.mark.parametrize("bad", [dict(center_threshold=0), dict(nms_kernel=4), dict(max_instances=0),
                                 dict(min_instance_area=-1)])
def test_bad_grouping_params_are_refused(bad):
    with pytest.raises(ValueError):
        GroupingParams(**bad)


@pytest.mark.parametrize("size", [(16, 24), (45, 80), (7, 5), (8, 12)])
def test_bilinear_argmax_equals_interpolate_then_argmax(size):
    torch.manual_seed(0)
    low = torch.randn(5, 8, 12)
    low[:, 2:5, 3:7] += torch.tensor([0, 0, 4.0, 0, 0])[:, None, None]  # a uniform region
    ref_logits = torch.nn.functional.interpolate(low[None], size=size, mode="bilinear", align_corners=False)[0]
    up = BilinearLogits(low, size)
    assert torch.equal(up.argmax(), ref_logits.argmax(0))
    pix = torch.arange(size[0] * size[1])
    torch.testing.assert_close(up.at(pix), ref_logits.flatten(1).t(), rtol=1e-5, atol=1e-5)


def test_folding_batchnorm_keeps_the_outputs():
    from vpanoptic.models.street.network import (
        StreetNet,
        StreetNetConfig,
        fold_batchnorm,
    )

    torch.manual_seed(0)
    net = StreetNet(StreetNetConfig(widths=(4, 4, 8, 8, 8), blocks=(1, 1, 1), decoder=(8, 4)))
    for m in net.modules():  # non-trivial statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
    net.eval()
    fused = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(1, 3, 40, 72)
    with torch.no_grad():
        for a, b in zip(net(x), fused(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert net.training is False and any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
