"""Mask2Former's panoptic rule (`vpanoptic.fusion.combine_query_masks`) against the authors' code.

Reference: facebookresearch/Mask2Former ``mask2former/maskformer_model.py``
``MaskFormer.panoptic_inference`` (OBJECT_MASK_THRESHOLD and OVERLAP_THRESHOLD 0.8 in the
panoptic configs). The expected maps below are worked out by hand from that code; the
random cases compare with `m2f_reference`, a plain loop written from the same code.
"""

import numpy as np
import pytest
import torch
from model_helpers import segments

from vpanoptic.fusion import combine_query_masks, map_categories

H = W = 16


def run(probs, scores, classes, things, **kwargs):
    return combine_query_masks(
        probs, torch.as_tensor(scores), torch.as_tensor(classes), torch.as_tensor(things), **kwargs
    )


# ---------------------------------------------------------------- hand-made 16×16 cases
def test_owner_is_the_best_score_times_probability_and_weak_pixels_are_void():
    p = torch.zeros((3, H, W))
    p[0, :, :8] = 0.9  # thing 1 (score 0.9): left half
    p[1, :, 6:] = 0.8  # stuff 149 (score 0.95): cols 6-15; cols 6-7: 0.81 vs 0.76 → query 0
    p[2, :4, :] = 0.3  # thing 3: never >= 0.5 → own area 0 → dropped
    seg = run(p, [0.9, 0.95, 0.99], [1, 149, 3], [True, False, True])
    # query 2 wins nowhere (0.99 × 0.3 = 0.297 < 0.76 and < 0.81); query 1 keeps 128 of its
    # 160 px = 0.8, not below the overlap threshold
    expected = torch.zeros((H, W), dtype=torch.int32)
    expected[:, :8], expected[:, 8:] = 1, 2
    assert torch.equal(seg.id_map, expected)
    assert segments(seg) == [(1, True, 128), (149, False, 128)]


def test_a_query_winning_less_than_the_overlap_threshold_of_its_mask_is_dropped_and_its_pixels_void():
    p = torch.zeros((2, H, W))
    p[0] = 0.9  # thing 1 (score 0.5) wants everything
    p[1, :, 4:] = 0.95  # thing 3 (score 0.9) takes cols 4-15 → query 0 keeps 64/256 = 0.25 < 0.8
    seg = run(p, [0.5, 0.9], [1, 3], [True, True])
    expected = torch.zeros((H, W), dtype=torch.int32)
    expected[:, 4:] = 1
    assert torch.equal(seg.id_map, expected)  # cols 0-3 void: the dropped query's pixels go to nobody
    assert segments(seg) == [(3, True, 192)]


def test_overlap_ratio_exactly_at_the_threshold_is_kept():
    p = torch.zeros((2, H, W))
    p[0, :, :10] = 0.9  # thing 1: own 160 px
    p[1, :, 8:] = 0.95  # thing 3 (higher score) takes cols 8-9 → query 0 keeps 128/160 = 0.8
    seg = run(p, [0.6, 0.9], [1, 3], [True, True])
    assert segments(seg) == [(1, True, 128), (3, True, 128)]


def test_two_stuff_queries_of_one_class_share_the_first_ones_segment():
    p = torch.zeros((3, H, W))
    p[0, :, :5] = 0.9  # stuff 184
    p[1, :, 5:10] = 0.9  # thing 1
    p[2, :, 10:] = 0.9  # stuff 184 again → written with segment id 1
    seg = run(p, [0.85, 0.9, 0.95], [184, 1, 184], [False, True, False])
    expected = torch.ones((H, W), dtype=torch.int32)
    expected[:, 5:10] = 2
    assert torch.equal(seg.id_map, expected)
    assert segments(seg) == [(184, False, 176), (1, True, 80)]
    assert float(seg.scores[0]) == pytest.approx(0.95)  # the best of its queries


def test_all_pixels_to_one_stuff_class():
    p = torch.zeros((2, H, W))
    p[0, :, :8] = 0.7
    p[1, :, 8:] = 0.9  # each wins its own half: both valid, one segment
    seg = run(p, [0.9, 0.9], [184, 184], [False, False])
    assert segments(seg) == [(184, False, 256)]


def test_no_query_kept():
    seg = combine_query_masks(
        torch.zeros((0, H, W)), torch.zeros(0), torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.bool)
    )
    assert seg.id_map.shape == (H, W) and len(seg) == 0


def test_a_class_with_no_dataset_category_is_voided_after_the_rule():
    p = torch.zeros((2, H, W))
    p[0] = 0.9
    p[1, :, 12:] = 0.95  # class index 7 has no category here; it wins cols 12-15
    seg = run(p, [0.9, 0.9], [2, 7], [True, True], overlap_threshold=0.5)
    out = map_categories(seg, torch.tensor([-1, -1, 5, -1, -1, -1, -1, -1]))
    assert segments(out) == [(5, True, 192)] and int((out.id_map[:, 12:] != 0).sum()) == 0


# ---------------------------------------------------------------- random vs a plain loop
def m2f_reference(probs, scores, classes, things, overlap_threshold=0.8):
    """``panoptic_inference`` written plainly from the authors' loop."""
    k = probs.shape[0]
    panoptic = np.zeros(probs.shape[1:], np.int64)
    info = []
    if k == 0:
        return panoptic, info
    ids = (scores.view(-1, 1, 1) * probs).argmax(0).numpy()
    probs = probs.numpy()
    memory = {}
    current = 0
    for q in range(k):
        mask_area = int((ids == q).sum())
        original_area = int((probs[q] >= 0.5).sum())
        mask = (ids == q) & (probs[q] >= 0.5)
        if mask_area > 0 and original_area > 0 and mask.sum() > 0:
            if mask_area / original_area < overlap_threshold:
                continue
            if not things[q]:
                if classes[q] in memory:
                    panoptic[mask] = memory[classes[q]]
                    continue
                memory[classes[q]] = current + 1
            current += 1
            panoptic[mask] = current
            info.append((classes[q], things[q]))
    return panoptic, info


@pytest.mark.parametrize("seed", range(150))
def test_random_masks_match_the_authors_rule(seed):
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(0, 9, (1,), generator=g))
    # multiples of 1/16 times multiples of 1/16: every product is exact in float32
    base = torch.randint(0, 17, (k, 1, 1), generator=g) / 16
    probs = (base * 0.5 + torch.randint(0, 9, (k, H, W), generator=g) / 16).clamp(0, 1)
    scores = torch.randint(9, 17, (k,), generator=g) / 16
    classes = [int(c) for c in torch.tensor([1, 3, 92, 149, 184])[torch.randint(0, 5, (k,), generator=g)]]
    things = [c <= 90 for c in classes]
    overlap = [0.8, 0.5, 0.3][seed % 3]
    seg = run(probs, scores, classes, things, overlap_threshold=overlap)
    ref, info = m2f_reference(probs, scores, classes, things, overlap)
    np.testing.assert_array_equal(seg.id_map.numpy(), ref)
    assert list(zip(seg.category_ids.tolist(), seg.is_thing.tolist())) == info
