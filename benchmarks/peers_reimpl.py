"""Two mask trackers that do not install cleanly, written again from their source for `peers.py`.

- `DeepLab2IoU`: DeepLab2's ``IoUTracker`` (google-research/deeplab2, ``tracker/iou_tracker.py``
  at commit 0b0c99217fa605b074c442739fa54335c537d780), without optical flow: per class,
  Hungarian matching of the current instance masks to every track's last mask on mask IoU,
  a match only above ``iou_threshold`` (0.3); unmatched instances start tracks; a track
  unmatched for more than ``sigma`` (10) frames is removed.
- `Detectron2Video`: the colour matching of Detectron2's ``VideoVisualizer`` for panoptic
  predictions (facebookresearch/detectron2, ``detectron2/utils/video_visualizer.py``,
  ``_assign_colors``, at commit 0255999a0aa67890f0ff9b312d7fa33d724704ec): mask IoU of the
  previous instances (those of the last frame, then the ones kept) with the new ones, zero
  across classes; each previous instance in turn passes its colour (here: its id) to its
  best new instance if that IoU is above 0.5 and the new one has none yet; otherwise its
  time-to-live (8 frames) drops by one and it is kept while above 0.

Both see the predicted segments as masks, as vpanoptic does; ids are per segment.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from vpanoptic.tracking import Tracker, thing_label_map
from vpanoptic.types import PanopticFrame


def _things(pf: PanopticFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thing indices ``(M,)``, their classes ``(M,)`` and the flat label map ``(H*W,)`` (1..M, 0 else)."""
    idx = np.flatnonzero(pf.is_thing)
    id_map = pf.id_map if isinstance(pf.id_map, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(pf.id_map))
    labels = thing_label_map(id_map, pf.segment_ids[idx]).numpy()
    return idx, pf.category_ids[idx].astype(np.int64), labels


def _pixels(labels: np.ndarray, areas: np.ndarray) -> list[np.ndarray]:
    """Flat pixel indices of each label 1..M."""
    order = np.argsort(labels, kind="stable")
    return np.split(order[labels.size - int(areas.sum()):], np.cumsum(areas)[:-1]) if areas.size else []


def _iou(masks: list[np.ndarray], labels: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """``(T, M)`` IoU of flat pixel-index masks with the labels 1..M of `labels`."""
    m = areas.size
    out = np.zeros((len(masks), m))
    for t, pix in enumerate(masks):
        inter = np.bincount(labels[pix], minlength=m + 1)[1:]
        union = pix.size + areas - inter
        out[t] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return out


class DeepLab2IoU(Tracker):
    def __init__(self, sigma: int = 10, iou_threshold: float = 0.3):
        self.sigma, self.iou_threshold = sigma, iou_threshold
        self.reset()

    def reset(self) -> None:
        self._tracks: dict[int, list] = {}  # class -> [[id, mask pixels, frames since update]]
        self._next = 1

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        idx, cats, labels = _things(pf)
        areas = np.bincount(labels, minlength=idx.size + 1)[1:]
        pix_of = _pixels(labels, areas)
        ids = np.zeros(idx.size, np.int64)
        for c in np.unique(np.concatenate([cats, np.array(list(self._tracks), np.int64)])):
            tracks = self._tracks.setdefault(int(c), [])
            mine = np.flatnonzero(cats == c)
            unmatched_tracks = set(range(len(tracks)))
            unmatched = set(mine.tolist())
            if mine.size and tracks:
                iou = _iou([t[1] for t in tracks], labels, areas)[:, mine]  # [T, m]
                rows, cols = linear_sum_assignment(-iou)
                for r, k in zip(rows, cols):
                    if iou[r, k] > self.iou_threshold:
                        j = mine[k]
                        tracks[r][1], tracks[r][2] = pix_of[j], 0
                        ids[j] = tracks[r][0]
                        unmatched_tracks.discard(r)
                        unmatched.discard(int(j))
            kept = []
            for r, t in enumerate(tracks):
                if r in unmatched_tracks:
                    t[2] += 1
                    if t[2] > self.sigma:
                        continue
                kept.append(t)
            for j in sorted(unmatched):
                kept.append([self._next, pix_of[j], 0])
                ids[j] = self._next
                self._next += 1
            self._tracks[int(c)] = kept
        track_ids = np.full(len(pf), -1, np.int32)
        track_ids[idx] = ids
        pf.track_ids = track_ids
        return pf


class Detectron2Video(Tracker):
    def __init__(self, ttl: int = 8, threshold: float = 0.5):
        self.ttl, self.threshold = ttl, threshold
        self.reset()

    def reset(self) -> None:
        self._old: list[list] = []  # [id, class, mask pixels, ttl]
        self._next = 1

    def update(self, pf: PanopticFrame) -> PanopticFrame:
        idx, cats, labels = _things(pf)
        areas = np.bincount(labels, minlength=idx.size + 1)[1:]
        pix_of = _pixels(labels, areas)
        ids = np.zeros(idx.size, np.int64)
        extra = []
        if idx.size:
            iou = _iou([o[2] for o in self._old], labels, areas)  # [T, M]
            for r, old in enumerate(self._old):
                iou[r, cats != old[1]] = 0.0
            for r, old in enumerate(self._old):
                best = int(iou[r].argmax())
                if iou[r, best] > self.threshold and ids[best] == 0:
                    ids[best] = old[0]
                    continue
                old[3] -= 1
                if old[3] > 0:
                    extra.append(old)
        else:  # no instance: the visualizer returns before matching, nothing changes
            extra = self._old
        for j in np.flatnonzero(ids == 0):
            ids[j] = self._next
            self._next += 1
        self._old = [[int(ids[j]), int(cats[j]), pix_of[j], self.ttl] for j in range(idx.size)] + extra
        track_ids = np.full(len(pf), -1, np.int32)
        track_ids[idx] = ids
        pf.track_ids = track_ids
        return pf
