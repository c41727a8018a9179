"""The pure fusion functions on tiny hand-made arrays (vpanoptic/fusion.py)."""

import pytest
import torch

from vpanoptic.fusion import combine_query_masks, empty_segments, fuse_things_and_stuff


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
def test_things_pasted_by_score_higher_wins_overlap():
    a = box(4, 6, 0, 4, 0, 4)  # 16 px, score 0.6
    b = box(4, 6, 0, 4, 3, 6)  # 12 px, score 0.9, overlaps a in column 3
    seg = fuse_things_and_stuff(torch.stack([a, b]), torch.tensor([0.6, 0.9]), torch.tensor([1, 3]), overlap_threshold=0.5)
    assert seg.id_map.dtype == torch.int32 and seg.id_map.shape == (4, 6)
    # b (higher score) comes first and keeps all its pixels; a keeps only its free 12 px
    assert segments_of(seg) == {1: (3, True, 12), 2: (1, True, 12)}
    assert torch.equal(seg.id_map[:, 3:], torch.full((4, 3), 1, dtype=torch.int32))
    assert torch.allclose(seg.scores, torch.tensor([0.9, 0.6]))


@pytest.mark.parametrize("overlap_threshold, kept", [(0.0, False), (0.5, False), (0.79, False), (0.8, True), (1.0, True)])
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
        torch.stack([m, empty, box(3, 3, 2, 3, 0, 3)]), torch.tensor([0.4, 0.99, 0.7]), torch.tensor([1, 2, 3]), score_threshold=0.5
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
    seg = fuse_things_and_stuff(thing[None], torch.tensor([0.8]), torch.tensor([3]), sem, stuff_ids=[149], stuff_area_threshold=5)
    assert segments_of(seg) == {1: (3, True, 12)}
    seg = fuse_things_and_stuff(thing[None], torch.tensor([0.8]), torch.tensor([3]), sem, stuff_ids=[149], stuff_area_threshold=4)
    assert segments_of(seg) == {1: (3, True, 12), 2: (149, False, 4)}


def test_things_only_and_nothing_at_all():
    seg = fuse_things_and_stuff(
        torch.zeros((0, 5, 7), dtype=torch.bool), torch.zeros(0), torch.zeros(0, dtype=torch.int64), height=5, width=7
    )
    assert seg.id_map.shape == (5, 7) and len(seg) == 0 and int(seg.id_map.abs().sum()) == 0
    with pytest.raises(ValueError, match="height and width"):
        fuse_things_and_stuff(torch.zeros((0, 5, 7), dtype=torch.bool), torch.zeros(0), torch.zeros(0, dtype=torch.int64))


@pytest.mark.parametrize("kwargs", [{"overlap_threshold": 1.5}, {"stuff_area_threshold": -1}])
def test_fusion_rejects_bad_thresholds(kwargs):
    with pytest.raises(ValueError):
        fuse_things_and_stuff(box(2, 2, 0, 1, 0, 1)[None], torch.ones(1), torch.ones(1, dtype=torch.int64), **kwargs)


def test_fusion_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="masks are"):
        fuse_things_and_stuff(box(2, 2, 0, 1, 0, 1)[None], torch.ones(1), torch.ones(1, dtype=torch.int64), torch.zeros((3, 3)))
    with pytest.raises(ValueError, match="scores"):
        fuse_things_and_stuff(box(2, 2, 0, 1, 0, 1)[None], torch.ones(2), torch.ones(1, dtype=torch.int64))


def test_fusion_matches_a_reference_loop_on_random_inputs():
    """The tensorised paste loop equals the detectron2 rules written as plain Python."""
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        h, w, n = 9, 11, 6
        masks = torch.rand((n, h, w), generator=g) > 0.6
        scores = torch.rand(n, generator=g)
        cats = torch.randint(1, 5, (n,), generator=g)
        sem = torch.randint(90, 96, (h, w), generator=g)
        seg = fuse_things_and_stuff(masks, scores, cats, sem, stuff_ids=[92, 93, 95], score_threshold=0.3,
                                    overlap_threshold=0.4, stuff_area_threshold=3)
        ref = torch.zeros((h, w), dtype=torch.int64)
        info = []
        for k in torch.argsort(scores, descending=True).tolist():
            if scores[k] < 0.3:
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
    seg = combine_query_masks(p, torch.tensor([0.5, 0.9]), torch.tensor([1, 3]), torch.tensor([True, True]), overlap_threshold=0.5)
    assert seg.id_map.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
    assert seg.category_ids.tolist() == [1, 3]


def test_query_masks_overlap_threshold_and_mask_threshold():
    p = torch.zeros((2, 2, 4))
    p[0, :, :] = 0.9  # query 0 wants everything, score 0.5
    p[1, :, 1:] = 0.95  # query 1 wins 3 of 4 columns → query 0 keeps 2/8 < 0.8 of its mask
    seg = combine_query_masks(p, torch.tensor([0.5, 0.9]), torch.tensor([1, 3]), torch.tensor([True, True]), overlap_threshold=0.8)
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
    seg = combine_query_masks(torch.zeros((0, 3, 5)), torch.zeros(0), torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.bool))
    assert seg.id_map.shape == (3, 5) and len(seg) == 0
    with pytest.raises(ValueError):
        combine_query_masks(torch.ones((1, 2, 2)), torch.ones(1), torch.ones(1, dtype=torch.int64), torch.ones(1, dtype=torch.bool),
                            overlap_threshold=2)
    e = empty_segments(2, 3)
    assert e.id_map.dtype == torch.int32 and len(e) == 0
