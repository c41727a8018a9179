"""DETR's panoptic rule (`vpanoptic.fusion.detr_panoptic`) against the authors' ``PostProcessPanoptic``.

Reference: facebookresearch/detr ``models/segmentation.py`` ``PostProcessPanoptic.forward``
(threshold 0.85 from ``models/detr.py`` ``build``). The expected maps below are worked out
by hand from that code; the random cases compare with `detr_reference`, a plain loop
written from the same code, which resizes through PIL exactly as the authors do.
"""

from collections import defaultdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_helpers import segments
from PIL import Image

from vpanoptic.fusion import detr_panoptic, map_categories, pil_nearest_indices

H = W = 16


def logit_planes(k, fill=0.0):
    return torch.full((k, H, W), float(fill))


def run(logits, classes, things, **kwargs):
    k = logits.shape[0]
    return detr_panoptic(logits, torch.linspace(0.9, 0.99, k), torch.tensor(classes), torch.tensor(things), **kwargs)


# ---------------------------------------------------------------- hand-made 16×16 cases
def test_each_pixel_goes_to_the_softmax_argmax_and_none_is_void():
    lg = logit_planes(3)
    lg[0, :8, :8] = 5  # thing 1: top-left
    lg[1, 8:, :] = 3  # stuff 149: bottom half
    lg[2, :8, 8:] = 4  # thing 3: top-right
    seg = run(lg, [1, 149, 3], [True, False, True])
    expected = torch.zeros((H, W), dtype=torch.int32)
    expected[:8, :8], expected[8:, :], expected[:8, 8:] = 1, 2, 3  # segments in query order
    assert torch.equal(seg.id_map, expected)
    assert segments(seg) == [(1, True, 64), (149, False, 128), (3, True, 64)]


def test_ties_go_to_the_first_query():
    lg = logit_planes(2)  # equal logits everywhere → argmax takes query 0
    lg[1, :, 12:] = 1.0  # query 1 wins 64 px
    seg = run(lg, [1, 3], [True, True])
    assert segments(seg) == [(1, True, 192), (3, True, 64)]


def test_a_segment_of_four_pixels_is_removed_and_one_of_five_kept():
    lg = logit_planes(3, fill=-10)
    lg[0] = 1  # stuff 184 everywhere, weakly
    lg[1, 2:4, 2:4] = 3  # thing 1: exactly 4 px → area <= 4 → removed, recomputed
    lg[2, 10, 5:10] = 3  # thing 3: 5 px → kept
    seg = run(lg, [184, 1, 3], [False, True, True])
    expected = torch.ones((H, W), dtype=torch.int32)
    expected[10, 5:10] = 2  # the 2×2 block went back to query 0, the only other one there
    assert torch.equal(seg.id_map, expected)
    assert segments(seg) == [(184, False, 251), (3, True, 5)]
    assert seg.scores.tolist() == pytest.approx([0.9, 0.99])  # the remaining queries' own scores


def test_small_area_threshold_is_a_parameter():
    lg = logit_planes(2, fill=-10)
    lg[0] = 1
    lg[1, 2:4, 2:4] = 3  # 4 px
    seg = run(lg, [184, 1], [False, True], small_area_threshold=3)
    assert segments(seg) == [(184, False, 252), (1, True, 4)]
    with pytest.raises(ValueError, match="small_area_threshold"):
        run(lg, [184, 1], [False, True], small_area_threshold=-1)


def test_two_stuff_queries_of_one_class_merge_then_the_second_is_removed_and_the_map_recomputed():
    """The quirk the published numbers include: merging does not survive the first pass."""
    lg = logit_planes(3, fill=-5)
    lg[0, :, :8], lg[0, :, 8:] = 4, 1  # stuff 184, strong on the left, weak on the right
    lg[1, :, 8:] = 2  # thing 1 on the right
    lg[2, :, 12:] = 6  # stuff 184 again, wins cols 12-15 in the first pass
    seg = run(lg, [184, 1, 184], [False, True, False])
    # pass 1: cols 0-7 → q0, 8-11 → q1, 12-15 → q2, merged into q0; q2 owns 0 px → removed.
    # pass 2 (q0, q1, no merging): cols 12-15 → q1 (2 > 1), so stuff keeps only cols 0-7.
    expected = torch.ones((H, W), dtype=torch.int32)
    expected[:, 8:] = 2
    assert torch.equal(seg.id_map, expected)
    assert segments(seg) == [(184, False, 128), (1, True, 128)]


def test_all_pixels_to_one_stuff_class_from_two_queries():
    lg = logit_planes(2)
    lg[0, :, :8] = 2
    lg[1, :, 8:] = 2  # same class: merged, then the second is removed and q0 takes all
    seg = run(lg, [184, 184], [False, False])
    assert segments(seg) == [(184, False, 256)] and bool((seg.id_map == 1).all())


def test_no_query_kept_is_all_void():
    seg = detr_panoptic(torch.zeros((0, 4, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.int64),
                        torch.zeros(0, dtype=torch.bool), processed_size=(H, W), target_size=(20, 30))
    assert seg.id_map.shape == (20, 30) and len(seg) == 0 and int(seg.id_map.abs().sum()) == 0


def test_when_every_query_is_too_small_the_map_is_void():
    lg = logit_planes(1)  # one query owns the 2×2 target: 4 px <= 4 → removed, nothing left
    seg = run(lg, [1], [True], target_size=(2, 2))
    assert len(seg) == 0 and int(seg.id_map.abs().sum()) == 0 and seg.id_map.shape == (2, 2)


def test_areas_are_counted_after_the_nearest_resize():
    lg = logit_planes(2, fill=-10)
    lg[0] = 1
    lg[1, 0:2, 0:3] = 3  # 6 px at 16×16, 3 px at 8×8 → removed there
    assert segments(run(lg, [184, 1], [False, True])) == [(184, False, 250), (1, True, 6)]
    assert segments(run(lg, [184, 1], [False, True], target_size=(8, 8))) == [(184, False, 64)]


def test_the_id_map_is_resized_as_pil_nearest_does():
    lg = logit_planes(3)
    lg[0, :8, :8], lg[1, 8:, :], lg[2, :8, 8:] = 5, 3, 4
    lg[2, 3, 3] = 9  # a single pixel, to see where it lands
    base = run(lg, [1, 149, 3], [True, False, True]).id_map
    for size in [(24, 20), (8, 8), (7, 30), (16, 16)]:
        seg = run(lg, [1, 149, 3], [True, False, True], target_size=size)
        pil = np.asarray(Image.fromarray(base.numpy().astype(np.uint8)).resize(size[::-1], resample=Image.NEAREST))
        np.testing.assert_array_equal(seg.id_map.numpy(), pil.astype(np.int32), err_msg=str(size))


def test_logits_are_resized_bilinear_to_the_processed_size_first():
    small = torch.zeros((2, 4, 4))
    small[1, :, 2:] = 1.0  # query 1 wins the right half, after bilinear upsampling as well
    seg = detr_panoptic(small, torch.ones(2), torch.tensor([1, 3]), torch.tensor([True, True]), processed_size=(H, W))
    up = F.interpolate(small[None], size=(H, W), mode="bilinear", align_corners=False)[0]
    assert torch.equal(seg.id_map.long(), up.argmax(0) + 1)
    assert seg.id_map.shape == (H, W)


def test_a_class_with_no_dataset_category_takes_its_pixels_then_they_are_void():
    """Decided behaviour: the rule runs on the class index as the authors' code does; the
    segment of an index with no category (DETR index 12) is voided, others keep their pixels."""
    lg = logit_planes(2)
    lg[0, :, :] = 1  # stuff 184
    lg[1, :, 10:] = 3  # class index 12: no COCO category
    seg = run(lg, [184, 12], [False, True])
    lut = torch.full((250,), -1, dtype=torch.int64)
    lut[184] = 184
    out = map_categories(seg, lut)
    assert segments(out) == [(184, False, 160)]
    assert int((out.id_map[:, 10:] == 0).sum()) == 96  # void where index 12 won, not given to query 0


# ---------------------------------------------------------------- PIL's nearest positions
@pytest.mark.parametrize("size_in", [1, 2, 3, 7, 16, 25, 64, 100, 199])
def test_nearest_indices_equal_pillow(size_in):
    for size_out in [1, 2, 3, 5, 9, 16, 31, 64, 97, 200, 333]:
        row = np.arange(size_in, dtype=np.int32)[None, :].repeat(2, 0)
        pil = np.asarray(Image.fromarray(row, mode="I").resize((size_out, 2), resample=Image.NEAREST))[0]
        assert pil_nearest_indices(size_in, size_out).tolist() == pil.tolist(), (size_in, size_out)
    with pytest.raises(ValueError):
        pil_nearest_indices(0, 4)


# ---------------------------------------------------------------- random logits vs a plain loop
def id2rgb(m):
    return np.stack([m % 256, m // 256 % 256, m // 65536], -1).astype(np.uint8)


def rgb2id(a):
    a = a.astype(np.int64)
    return a[..., 0] + 256 * a[..., 1] + 65536 * a[..., 2]


def detr_reference(logits, classes, is_thing, processed_size, target_size):
    """``PostProcessPanoptic.forward`` for one image, written plainly. Returns (map of positions
    in the kept list, kept queries).

    The pixel owner is the authors' own float32 ``softmax(-1).argmax(-1)`` over the
    ``(pixels, queries)`` layout: on real network outputs near-ties in float32 decide pixels,
    so a float64 softmax would be another rule. Merging, the PIL resize of the id image
    through its RGB encoding, the areas and the removal loop are plain Python and PIL.
    """
    if processed_size is not None:  # the authors' util.misc.interpolate also takes an empty batch
        logits = (
            F.interpolate(logits[None], size=processed_size, mode="bilinear", align_corners=False)[0]
            if len(logits)
            else logits.new_zeros((0, *processed_size))
        )
    k, h, w = logits.shape
    flat = logits.float().flatten(1)  # [K, h*w]
    th, tw = target_size
    stuff_equiv = defaultdict(list)
    for q in range(k):
        if not is_thing[q]:
            stuff_equiv[classes[q]].append(q)

    def ids_area(kept, dedup):
        m = np.zeros((h, w), np.int64)
        if kept:
            m = flat[kept].transpose(0, 1).softmax(-1).argmax(-1).view(h, w).numpy().astype(np.int64)
        if dedup:
            for equiv in stuff_equiv.values():
                for q in equiv[1:]:
                    m[m == q] = equiv[0]
        m = rgb2id(np.asarray(Image.fromarray(id2rgb(m)).resize((tw, th), resample=Image.NEAREST)))
        return m, [int((m == i).sum()) for i in range(len(kept))]

    kept = list(range(k))
    m, area = ids_area(kept, True)
    if k:
        while True:
            small = [a <= 4 for a in area]
            if not any(small):
                break
            kept = [q for q, s in zip(kept, small) if not s]
            m, area = ids_area(kept, False)
    return m, kept


def test_the_owner_is_the_float32_softmax_argmax_as_the_authors_compute_it():
    """Logits 1e-8 apart: float32 softmax ties them and the first query wins, as in the authors' code."""
    lg = torch.zeros((2, H, W))
    lg[1] = 1e-8  # larger, but exp(-1e-8) rounds to 1 in float32
    p = lg.flatten(1).transpose(0, 1).softmax(-1)
    assert bool((p[:, 0] == p[:, 1]).all())  # tied after the softmax
    seg = run(lg, [1, 3], [True, True])
    assert segments(seg) == [(1, True, 256)]


CLASSES = [1, 3, 92, 149, 184]  # COCO ids: two thing classes, three stuff classes (authors: id <= 90 is a thing)
SIZES = [(16, 16), (16, 16), (24, 20), (11, 13), (7, 30), (3, 3)]


@pytest.mark.parametrize("seed", range(120))
def test_random_logits_match_the_authors_rule(seed):
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(0, 8, (1,), generator=g))
    low_res = seed % 3 == 0
    side = 8 if low_res else 16
    # multiples of 1/8: distinct values stay distinct through float32 exp, equal ones tie in both
    logits = (
        torch.randint(-8, 9, (k, 1, 1), generator=g) / 2 + torch.randint(-16, 17, (k, side, side), generator=g) / 8
    ).float()
    classes = [CLASSES[int(i)] for i in torch.randint(0, len(CLASSES), (k,), generator=g)]
    things = [c <= 90 for c in classes]
    target = SIZES[seed % len(SIZES)]
    processed = (16, 16) if low_res else None
    scores = torch.rand(k, generator=g)
    seg = detr_panoptic(
        logits,
        scores,
        torch.tensor(classes, dtype=torch.int64),
        torch.tensor(things, dtype=torch.bool),
        processed_size=processed,
        target_size=target,
    )
    ref, kept = detr_reference(logits, classes, things, processed, target)
    assert seg.id_map.shape == target and seg.id_map.dtype == torch.int32
    if kept:
        np.testing.assert_array_equal(seg.id_map.numpy(), ref + 1)  # every pixel assigned
    else:
        assert int(seg.id_map.abs().sum()) == 0
    assert seg.category_ids.tolist() == [classes[q] for q in kept]
    assert seg.is_thing.tolist() == [things[q] for q in kept]
    assert torch.equal(seg.scores, scores[kept].float())
