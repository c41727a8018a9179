"""Helpers for the metric tests: tiny random label maps and slow, loop-based oracles.

(A uniquely named module rather than conftest.py, so that ``from eval_helpers import ...``
cannot pick up another directory's conftest.)

The oracles restate the metric definitions pixel by pixel with dicts, so that the
vectorised implementations can be compared with them on random inputs.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

DIV = 1000
VOID = 255


def random_frame(rng: np.random.Generator, *, shape=(6, 8), num_classes=4, things=(2, 3), void=True, max_inst=3):
    """A (semantic, instance) pair of random rectangles; thing instance 0 = crowd."""
    h, w = shape
    sem = np.full(shape, rng.integers(0, num_classes), np.int64)
    inst = np.zeros(shape, np.int64)
    for _ in range(rng.integers(2, 6)):
        y, x = rng.integers(0, h), rng.integers(0, w)
        dy, dx = rng.integers(1, h + 1), rng.integers(1, w + 1)
        c = rng.integers(0, num_classes)
        sem[y:y + dy, x:x + dx] = c
        inst[y:y + dy, x:x + dx] = rng.integers(0, max_inst + 1) if c in things else 0
    if void and rng.random() < 0.7:
        y, x = rng.integers(0, h), rng.integers(0, w)
        sem[y:y + 2, x:x + 2] = VOID
        inst[y:y + 2, x:x + 2] = 0
    return sem, inst


def perturb(rng: np.random.Generator, frame, *, num_classes=4, things=(2, 3), max_inst=3):
    """A prediction near `frame`: a shifted copy with a few random edits."""
    sem, inst = (np.roll(a, rng.integers(-1, 2), axis=1).copy() for a in frame)
    for _ in range(rng.integers(0, 3)):
        y, x = rng.integers(0, sem.shape[0]), rng.integers(0, sem.shape[1])
        c = rng.integers(0, num_classes)
        sem[y:y + 2, x:x + 3] = c
        inst[y:y + 2, x:x + 3] = rng.integers(0, max_inst + 1) if c in things else 0
    return sem, inst


def panoptic(frame, div=DIV):
    return frame[0].astype(np.int64) * div + frame[1]


def naive_deeplab2_pq(frames, *, num_classes, ignore, div):
    """deeplab2 PQ rules, pixel by pixel: per-class (iou, tp, fp, fn) over (gt, pred) frames."""
    iou, tp, fp, fn = (np.zeros(num_classes) for _ in range(4))
    for gt, pred in frames:
        g_area = Counter(gt.ravel().tolist())
        p_area = Counter(pred.ravel().tolist())
        inter = Counter(zip(gt.ravel().tolist(), pred.ravel().tolist()))
        void = ignore * div
        g_matched, p_matched = set(), set()
        for (g, p), n in inter.items():
            if g // div != p // div or p // div == ignore:
                continue
            value = n / (g_area[g] + p_area[p] - n - inter.get((void, p), 0))
            if value > 0.5:
                tp[g // div] += 1
                iou[g // div] += value
                g_matched.add(g)
                p_matched.add(p)
        for g in g_area:
            if g not in g_matched and g // div != ignore:
                fn[g // div] += 1
        for p in p_area:
            if p in p_matched or p // div == ignore:
                continue
            if inter.get((void, p), 0) / p_area[p] > 0.5:
                continue
            fp[p // div] += 1
    return iou, tp, fp, fn


def naive_stq(sequences, *, num_classes, things, ignore, div):
    """STQ from its definition (Weber et al. 2021), with deeplab2's IoU averaging."""
    aq_total, tubes_total = 0.0, 0
    size = num_classes + 1
    conf = np.zeros((size, size))
    for frames in sequences:
        g_size, p_size, tpa = Counter(), Counter(), Counter()
        for gt, pred in frames:
            for g, p in zip(gt.ravel().tolist(), pred.ravel().tolist()):
                gs, ps = g // div, p // div
                conf[min(gs, num_classes), min(ps, num_classes)] += 1
                g_thing = gs in things
                crowd = g_thing and g % div == 0
                if g_thing and not crowd:
                    g_size[g] += 1
                if ps in things and not crowd:
                    p_size[p] += 1
                if g_thing and not crowd and ps in things:
                    tpa[g, p] += 1
        for g, size_g in g_size.items():
            aq_total += sum(n * n / (size_g + p_size[p] - n) for (gg, p), n in tpa.items() if gg == g) / size_g
        tubes_total += len(g_size)
    aq = aq_total / max(tubes_total, 1e-15)
    conf[num_classes, :] = 0
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    iou = np.sum(inter[union > 0] / union[union > 0]) / np.count_nonzero(union)
    return np.sqrt(aq * iou), aq, iou



def step_to_coco(frame, things, div=DIV):
    """STEP (semantic, instance) → COCO-panoptic (ids, segments_info): id = label + 1, void → 0,
    thing instance 0 → iscrowd."""
    pan = panoptic(frame, div)
    ids = np.where(frame[0] == VOID, 0, pan + 1)
    segments = []
    for label in np.unique(ids).tolist():
        if label:
            cat, inst = divmod(label - 1, div)
            segments.append({"id": label, "category_id": cat, "iscrowd": int(cat in things and inst == 0)})
    return ids, segments


def naive_panopticapi_pq(images, num_categories):
    """panopticapi rules, pixel by pixel: per-category (iou, tp, fp, fn); categories 0..n-1."""
    iou, tp, fp, fn = (np.zeros(num_categories) for _ in range(4))
    for gt_ids, gt_segments, pred_ids, pred_segments in images:
        gt_segms = {s["id"]: s for s in gt_segments}
        pred_segms = {s["id"]: s for s in pred_segments}
        g_area = Counter(gt_ids.ravel().tolist())
        p_area = Counter(pred_ids.ravel().tolist())
        inter = Counter(zip(gt_ids.ravel().tolist(), pred_ids.ravel().tolist()))
        g_matched, p_matched = set(), set()
        for (g, p), n in inter.items():
            if g not in gt_segms or p not in pred_segms or gt_segms[g]["iscrowd"]:
                continue
            cat = gt_segms[g]["category_id"]
            if cat != pred_segms[p]["category_id"]:
                continue
            value = n / (p_area[p] + g_area[g] - n - inter.get((0, p), 0))
            if value > 0.5:
                tp[cat] += 1
                iou[cat] += value
                g_matched.add(g)
                p_matched.add(p)
        crowd = {}
        for g, info in gt_segms.items():
            if g in g_matched:
                continue
            if info["iscrowd"]:
                crowd[info["category_id"]] = g
                continue
            fn[info["category_id"]] += 1
        for p, info in pred_segms.items():
            if p in p_matched:
                continue
            ignored = inter.get((0, p), 0)
            if info["category_id"] in crowd:
                ignored += inter.get((crowd[info["category_id"]], p), 0)
            if ignored / p_area[p] > 0.5:
                continue
            fp[info["category_id"]] += 1
    return iou, tp, fp, fn
