"""The fusion functions on tiny hand-made arrays; detectron2's Panoptic FPN rule in full.

Reference for `fuse_things_and_stuff`: facebookresearch/detectron2
``detectron2/modeling/meta_arch/panoptic_fpn.py`` ``combine_semantic_and_instance_outputs``
(defaults in ``detectron2/config/defaults.py`` ``MODEL.PANOPTIC_FPN.COMBINE``).
"""

import pytest
import torch

from vpanoptic.fusion import (
    RULES,
    combine_query_masks,
    empty_segments,
    fuse_things_and_stuff,
    map_categories,
)


def box(h, w, y0, y1, x0, x1):
    m = torch.zeros((h, w), dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def segments_of(seg):
    """{segment id: (category, is_thing, area)} from a PanopticSegments."""
    out = {}
    for i in range(len(seg)):
        sid = i + 1
        out[sid] = (int(seg.category_ids[i]), bool(seg.is_thing[i]), int((seg.id_map == sid).sum()))
    return out


# ---------------------------------------------------------------- fuse_things_and_stuff
def test_detectron2_rule_on_a_hand_made_16x16_frame():
    """Worked out from combine_semantic_and_instance_outputs with overlap 0.5 and a stuff limit of 50."""
    a = box(16, 16, 0, 8, 0, 8)  # 0.9, person: 64 px
    b = box(16, 16, 4, 12, 4, 12)  # 0.8, car: 64 px, 16 under a → 0.25 <= 0.5 → keeps its 48 free px
    c = box(16, 16, 0, 8, 2, 10)  # 0.7, person: 48 under a + 8 under b = 56/64 > 0.5 → skipped
    d = box(16, 16, 12, 16, 0, 4)  # 0.4 < 0.5: the pass ends here
    sem = torch.full((16, 16), -1)  # -1: the semantic head's "things" class, never stuff
    sem[12:, :] = 184  # 64 free px >= 50 → a stuff segment
    sem[:12, 12:] = 149  # 48 free px < 50 → left void
    seg = fuse_things_and_stuff(
        torch.stack([c, a, d, b]),
        torch.tensor([0.7, 0.9, 0.4, 0.8]),
        torch.tensor([1, 1, 1, 3]),
        sem,
        stuff_ids=[149, 184],
        stuff_area_threshold=50,
    )
    expected = torch.zeros((16, 16), dtype=torch.int32)
    expected[4:12, 4:12] = 2
    expected[:8, :8] = 1
    expected[12:, :] = 3
    assert torch.equal(seg.id_map, expected)
    assert segments_of(seg) == {1: (1, True, 64), 2: (3, True, 48), 3: (184, False, 64)}
    assert seg.scores.tolist() == pytest.approx([0.9, 0.8, 1.0])


def test_detectron2_defaults_are_the_rules_defaults():
    rule = RULES["panoptic-fpn"]
    assert rule.thresholds == {
        "score_threshold": 0.5,
        "mask_threshold": 0.5,
        "overlap_threshold": 0.5,
        "stuff_area_threshold": 4096,
    }
    m = box(64, 64, 0, 64, 0, 64)
    sem = torch.full((64, 64), 184)
    seg = fuse_things_and_stuff(
        torch.zeros((0, 64, 64), dtype=torch.bool),
        torch.zeros(0),
        torch.zeros(0, dtype=torch.int64),
        sem,
        stuff_ids=[184],
    )
    assert segments_of(seg) == {1: (184, False, 4096)}  # exactly STUFF_AREA_LIMIT: kept (area < limit is skipped)
    sem[0, 0] = -1
    seg = fuse_things_and_stuff(m[None] & False, torch.ones(1), torch.ones(1, dtype=torch.int64), sem, stuff_ids=[184])
    assert len(seg) == 0  # 4095 px


def test_scores_are_compared_in_float64_as_python_does():
    """detectron2 reads ``score.item()``: float32(0.7) = 0.69999998... is below a 0.7 threshold."""
    m = box(4, 4, 0, 2, 0, 2)
    score = torch.tensor([0.7], dtype=torch.float32)
    assert len(fuse_things_and_stuff(m[None], score, torch.tensor([1]), score_threshold=0.7)) == 0
    assert len(fuse_things_and_stuff(m[None], score, torch.tensor([1]), score_threshold=0.6999999)) == 1


def test_equal_scores_keep_the_detector_order():
    a, b = box(4, 4, 0, 4, 0, 3), box(4, 4, 0, 4, 1, 4)
    seg = fuse_things_and_stuff(
        torch.stack([a, b]), torch.tensor([0.9, 0.9]), torch.tensor([1, 3]), overlap_threshold=0.7
    )
    assert segments_of(seg) == {1: (1, True, 12), 2: (3, True, 4)}
    seg = fuse_things_and_stuff(
        torch.stack([b, a]), torch.tensor([0.9, 0.9]), torch.tensor([3, 1]), overlap_threshold=0.7
    )
    assert segments_of(seg) == {1: (3, True, 12), 2: (1, True, 4)}


def test_things_of_a_class_with_no_category_block_pixels_then_are_voided():
    """Decided behaviour: an "N/A" detection is pasted as the rule has it (it takes pixels from
    lower-scoring things and from stuff), then its segment becomes void."""
    a = box(8, 8, 0, 8, 0, 4)  # category -1 (no dataset category), score 0.9
    b = box(8, 8, 0, 8, 2, 6)  # car, 0.8: 16 of its 32 px are under a → kept with 16 px
    sem = torch.full((8, 8), 184)
    seg = map_categories(
        fuse_things_and_stuff(
            torch.stack([a, b]),
            torch.tensor([0.9, 0.8]),
            torch.tensor([-1, 3]),
            sem,
            stuff_ids=[184],
            stuff_area_threshold=1,
        )
    )
    assert segments_of(seg) == {1: (3, True, 16), 2: (184, False, 16)}
    assert int((seg.id_map[:, :4] == 0).sum()) == 32


def test_things_pasted_by_score_higher_wins_overlap():
    a = box(4, 6, 0, 4, 0, 4)  # 16 px, score 0.6
    b = box(4, 6, 0, 4, 3, 6)  # 12 px, score 0.9, overlaps a in column 3
    seg = fuse_things_and_stuff(
        torch.stack([a, b]), torch.tensor([0.6, 0.9]), torch.tensor([1, 3]), overlap_threshold=0.5
    )
    assert seg.id_map.dtype == torch.int32 and seg.id_map.shape == (4, 6)
    # b (higher score) comes first and keeps all its pixels; a keeps only its free 12 px
    assert segments_of(seg) == {1: (3, True, 12), 2: (1, True, 12)}
    assert torch.equal(seg.id_map[:, 3:], torch.full((4, 3), 1, dtype=torch.int32))
    assert torch.allclose(seg.scores, torch.tensor([0.9, 0.6]))


@pytest.mark.parametrize(
    "overlap_threshold, kept", [(0.0, False), (0.5, False), (0.79, False), (0.8, True), (1.0, True)]
)
def test_overlap_threshold_drops_mostly_hidden_things(overlap_threshold, kept):
    big = box(4, 5, 0, 4, 0, 4)  # 16 px, score 0.9
    small = box(4, 5, 0, 4, 0, 5)  # 20 px, 16 of them under `big`: overlap fraction 0.8
    seg = fuse_things_and_stuff(
        torch.stack([big, small]), torch.tensor([0.9, 0.8]), torch.tensor([1, 2]), overlap_threshold=overlap_threshold
    )
    segs = segments_of(seg)
    assert segs[1] == (1, True, 16)
    assert (len(segs) == 2) == kept
    if kept:
        assert segs[2] == (2, True, 4)  # only its free pixels


def test_score_threshold_and_empty_masks():
    m = box(3, 3, 0, 2, 0, 2)
    empty = torch.zeros((3, 3), dtype=torch.bool)
    seg = fuse_things_and_stuff(
        torch.stack([m, empty, box(3, 3, 2, 3, 0, 3)]),
        torch.tensor([0.4, 0.99, 0.7]),
        torch.tensor([1, 2, 3]),
        score_threshold=0.5,
    )
    assert segments_of(seg) == {1: (3, True, 3)}  # 0.4 below threshold, the empty mask skipped


def test_stuff_fills_free_pixels_above_min_area():
    sem = torch.tensor(
        [
            [92, 92, 92, 149],
            [92, 92, 92, 149],
            [1, 1, 200, 149],
            [1, 1, 255, 0],
        ]
    )
    thing = box(4, 4, 0, 2, 0, 2)
    seg = fuse_things_and_stuff(
        thing[None], torch.tensor([0.9]), torch.tensor([1]), sem, stuff_ids=[92, 149, 200], stuff_area_threshold=2
    )
    segs = segments_of(seg)
    # thing 4 px; banner(92) keeps its 2 free px; road(149) 3 px; rug(200) only 1 px < 2 → void;
    # semantic "1" (a thing class), 255 and 0 are not stuff ids → void
    assert segs == {1: (1, True, 4), 2: (92, False, 2), 3: (149, False, 3)}
    assert int((seg.id_map == 0).sum()) == 16 - 9
    assert seg.is_thing.tolist() == [True, False, False]
    assert seg.scores[1:].tolist() == [1.0, 1.0]


def test_stuff_never_overwrites_things_and_threshold_counts_free_pixels_only():
    sem = torch.full((4, 4), 149)
    thing = box(4, 4, 0, 4, 0, 3)  # leaves 4 px of road
    seg = fuse_things_and_stuff(
        thing[None], torch.tensor([0.8]), torch.tensor([3]), sem, stuff_ids=[149], stuff_area_threshold=5
    )
    assert segments_of(seg) == {1: (3, True, 12)}
    seg = fuse_things_and_stuff(
        thing[None], torch.tensor([0.8]), torch.tensor([3]), sem, stuff_ids=[149], stuff_area_threshold=4
    )
    assert segments_of(seg) == {1: (3, True, 12), 2: (149, False, 4)}


def test_things_only_and_nothing_at_all():
    seg = fuse_things_and_stuff(
        torch.zeros((0, 5, 7), dtype=torch.bool), torch.zeros(0), torch.zeros(0, dtype=torch.int64), height=5, width=7
    )
    assert seg.id_map.shape == (5, 7) and len(seg) == 0 and int(seg.id_map.abs().sum()) == 0
    with pytest.raises(ValueError, match="height and width"):
        fuse_things_and_stuff(
            torch.zeros((0, 5, 7), dtype=torch.bool), torch.zeros(0), torch.zeros(0, dtype=torch.int64)
        )


@pytest.mark.parametrize("kwargs", [{"overlap_threshold": 1.5}, {"stuff_area_threshold": -1}])
def test_fusion_rejects_bad_thresholds(kwargs):
    with pytest.raises(ValueError):
        fuse_things_and_stuff(box(2, 2, 0, 1, 0, 1)[None], torch.ones(1), torch.ones(1, dtype=torch.int64), **kwargs)


def test_fusion_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="masks are"):
        fuse_things_and_stuff(
            box(2, 2, 0, 1, 0, 1)[None], torch.ones(1), torch.ones(1, dtype=torch.int64), torch.zeros((3, 3))
        )
    with pytest.raises(ValueError, match="scores"):
        fuse_things_and_stuff(box(2, 2, 0, 1, 0, 1)[None], torch.ones(2), torch.ones(1, dtype=torch.int64))


def test_fusion_matches_a_reference_loop_on_random_inputs():
    """The tensorised paste loop equals the detectron2 rules written as plain Python."""
    g = torch.Generator().manual_seed(0)
    for trial in range(200):
        h, w, n = 9, 11, int(torch.randint(0, 8, (1,), generator=g))
        masks = torch.rand((n, h, w), generator=g) > 0.6
        scores = torch.randint(0, 9, (n,), generator=g) / 8  # ties on purpose
        cats = torch.randint(1, 5, (n,), generator=g)
        sem = torch.randint(90, 96, (h, w), generator=g)
        seg = fuse_things_and_stuff(masks, scores, cats, sem, stuff_ids=[92, 93, 95], score_threshold=0.3,
                                    overlap_threshold=0.4, stuff_area_threshold=3)
        if n == 0:
            masks = masks.reshape(0, h, w)
        ref = torch.zeros((h, w), dtype=torch.int64)
        info = []
        for k in sorted(range(n), key=lambda i: -float(scores[i])):  # stable: ties in detector order
            if float(scores[k]) < 0.3:
                break
            m = masks[k]
            area = int(m.sum())
            if area == 0:
                continue
            inter = int((m & (ref > 0)).sum())
            if inter / area > 0.4:
                continue
            m = m & (ref == 0)
            info.append((int(cats[k]), True))
            ref[m] = len(info)
        for s in (92, 93, 95):
            m = (sem == s) & (ref == 0)
            if int(m.sum()) >= 3:
                info.append((s, False))
                ref[m] = len(info)
        assert torch.equal(seg.id_map.long(), ref), trial
        assert list(zip(seg.category_ids.tolist(), seg.is_thing.tolist())) == info


# ---------------------------------------------------------------- combine_query_masks
def test_query_masks_pixels_go_to_best_score_times_probability():
    p = torch.zeros((2, 2, 4))
    p[0, :, :3] = 0.9  # query 0 (score 0.5): left 3 columns
    p[1, :, 2:] = 0.8  # query 1 (score 0.9): right 2 columns; column 2: 0.45 vs 0.72 → query 1
    seg = combine_query_masks(
        p, torch.tensor([0.5, 0.9]), torch.tensor([1, 3]), torch.tensor([True, True]), overlap_threshold=0.5
    )
    assert seg.id_map.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
    assert seg.category_ids.tolist() == [1, 3]


def test_query_masks_overlap_threshold_and_mask_threshold():
    p = torch.zeros((2, 2, 4))
    p[0, :, :] = 0.9  # query 0 wants everything, score 0.5
    p[1, :, 1:] = 0.95  # query 1 wins 3 of 4 columns → query 0 keeps 2/8 < 0.8 of its mask
    seg = combine_query_masks(
        p, torch.tensor([0.5, 0.9]), torch.tensor([1, 3]), torch.tensor([True, True]), overlap_threshold=0.8
    )
    assert segments_of(seg) == {1: (3, True, 6)}
    assert int((seg.id_map == 0).sum()) == 2  # the dropped query's pixels are void
    weak = torch.full((1, 2, 2), 0.4)
    seg = combine_query_masks(weak, torch.tensor([0.9]), torch.tensor([7]), torch.tensor([False]), mask_threshold=0.5)
    assert len(seg) == 0 and int(seg.id_map.abs().sum()) == 0


def test_query_masks_merge_stuff_of_one_class_keep_things_apart():
    p = torch.zeros((4, 2, 4))
    p[0, :, 0] = 1.0  # stuff 149
    p[1, :, 1] = 1.0  # stuff 149 again → merged with query 0
    p[2, :, 2] = 1.0  # thing 1
    p[3, :, 3] = 1.0  # thing 1, another instance
    seg = combine_query_masks(
        p, torch.tensor([0.9, 0.95, 0.9, 0.9]), torch.tensor([149, 149, 1, 1]), torch.tensor([False, False, True, True])
    )
    segs = segments_of(seg)
    assert sorted(segs.values()) == [(1, True, 2), (1, True, 2), (149, False, 4)]
    stuff_index = seg.category_ids.tolist().index(149)
    assert float(seg.scores[stuff_index]) == pytest.approx(0.95)  # the best of its queries
    assert torch.unique(seg.id_map).tolist() == [1, 2, 3]


def test_query_masks_empty_and_bad_threshold():
    seg = combine_query_masks(
        torch.zeros((0, 3, 5)), torch.zeros(0), torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.bool)
    )
    assert seg.id_map.shape == (3, 5) and len(seg) == 0
    with pytest.raises(ValueError):
        combine_query_masks(
            torch.ones((1, 2, 2)),
            torch.ones(1),
            torch.ones(1, dtype=torch.int64),
            torch.ones(1, dtype=torch.bool),
            overlap_threshold=2,
        )
    e = empty_segments(2, 3)
    assert e.id_map.dtype == torch.int32 and len(e) == 0
