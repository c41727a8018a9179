"""Sequences for the tracker benchmark (`peers.py`): ground truth + per-frame predictions.

Three kinds of data, each split into a tuning part and a held-out part. The split is fixed
here, before any measurement; no tracker choice may be made on a held-out part.

- ``synth``: the synthetic world (`vpanoptic.synth`), 7 scenarios at 432x240 and the
  scenario's frame rate (10 fps; 3 for low_fps), predictions = ground truth degraded by the
  `oracle` model (`DEGRADE`) plus splits. Tuning: world seeds 0, 1 (the seeds the tracker
  was developed on). Held-out: seeds 7000, 7001.
- ``mot``: real pedestrian trajectories, the MOTChallenge ``gt.txt`` of TUD-Campus and
  TUD-Stadtmitte that the `motmetrics` wheel ships (read from the installed package),
  drawn as person ellipses in their boxes painted far to near (by box bottom) at 640x480,
  at the native 25 fps and subsampled to 5 fps; predictions degraded as for synth.
  Tuning: TUD-Campus. Held-out: TUD-Stadtmitte.
- ``net``: the bundled default network's (`vpanoptic-street`) own predictions on synthetic
  clips at 432x240. Tuning: seed 300. Held-out: seed 7100. (Training uses world seeds
  >= 1,000,000, so no clip here was trained on.)

Every prediction has its thing ids scrambled every frame. The oracle row gives each
predicted thing segment the ground-truth instance covering most of its pixels (perfect
association of these predictions; segments on no instance get a new id every frame).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.io.formats import write_kitti_step
from vpanoptic.models.oracle import OracleModel
from vpanoptic.synth import generate
from vpanoptic.types import Frame, PanopticFrame

# What a real model gets wrong (oracle options), as in tracking_quality.py.
DEGRADE = {"miss_rate": 0.05, "boundary_noise": 1, "false_positives": 1.0, "class_flip_rate": 0.02}
SPLIT_RATE = 0.03  # probability that a thing segment is cut in two (upper / lower half)
SYNTH_SIZE = (432, 240)
SYNTH_SCENARIOS = {  # name -> (scenario, frames)
    "street": ("street", 40),
    "crossing": ("crossing", 50),
    "crowd": ("crowd", 40),
    "fast": ("fast", 40),
    "occlusion": ("occlusion", 70),
    "pan_zoom": ("pan_zoom", 40),
    "low_fps": ("low_fps", 30),
}
SPLITS = {
    "synth": {"tune": [0, 1], "held-out": [7000, 7001]},
    "mot": {"tune": ["TUD-Campus"], "held-out": ["TUD-Stadtmitte"]},
    "net": {"tune": [300], "held-out": [7100]},
}
MOT_SIZE = (640, 480)
MOT_FPS = 25.0
PERSON = 11  # KITTI-STEP person


@dataclass
class Sequence:
    """One clip: ground truth, predictions with scrambled ids, and the oracle's predictions."""

    kind: str  # synth | mot | net
    group: str  # scenario or sequence name (a table row)
    split: str  # tune | held-out
    fps: float
    gts: list[tuple[np.ndarray, np.ndarray]]  # (semantic, instance), (H, W) int32 each
    preds: list[PanopticFrame]
    oracle: list[PanopticFrame]

    def fresh_preds(self) -> list[PanopticFrame]:
        """Copies of the predictions for one tracker (track ids reset, arrays shared)."""
        out = []
        for pf in self.preds:
            out.append(PanopticFrame(pf.frame, pf.id_map, pf.segment_ids, pf.category_ids, pf.meta,
                                     is_thing=pf.is_thing, scores=pf.scores))
        return out


def split_segments(pf: PanopticFrame, rate: float, seed: int) -> PanopticFrame:
    """Cut each thing segment in two at its middle row with probability `rate` (a model's split)."""
    rng = np.random.default_rng([seed, pf.frame.index, 77])
    id_map = pf.id_map_numpy().copy()
    seg, cat, thing, score = (list(a) for a in (pf.segment_ids, pf.category_ids, pf.is_thing, pf.scores))
    next_id = int(pf.segment_ids.max(initial=0)) + 1
    for i in np.flatnonzero(pf.is_thing):
        if rng.random() >= rate:
            continue
        rows = np.flatnonzero((id_map == pf.segment_ids[i]).any(1))
        if rows.size < 4:
            continue
        mid = (rows[0] + rows[-1] + 1) // 2
        lower = id_map[mid:] == pf.segment_ids[i]
        id_map[mid:][lower] = next_id
        seg.append(next_id)
        cat.append(pf.category_ids[i])
        thing.append(True)
        score.append(pf.scores[i])
        next_id += 1
    return PanopticFrame(pf.frame, id_map, np.array(seg, np.int32), np.array(cat, np.int32), pf.meta,
                         is_thing=np.array(thing, bool), scores=np.array(score, np.float32))


def oracle_ids(pf: PanopticFrame, gt_instance: np.ndarray) -> PanopticFrame:
    """`pf` with each thing segment's track id = the ground-truth instance under most of its pixels."""
    id_map = pf.id_map_numpy()
    track = np.full(len(pf), -1, np.int32)
    fresh = 1 << 20
    for i in np.flatnonzero(pf.is_thing):
        under = gt_instance[id_map == pf.segment_ids[i]]
        under = under[under > 0]
        if under.size:
            track[i] = int(np.bincount(under).argmax())
        else:
            track[i] = fresh + pf.frame.index * 1000 + i  # a track of one frame
    out = PanopticFrame(pf.frame, id_map, pf.segment_ids, pf.category_ids, pf.meta, is_thing=pf.is_thing,
                        scores=pf.scores, track_ids=track)
    return out


def degraded(gts, images, times, seed: int) -> tuple[list[PanopticFrame], list[PanopticFrame]]:
    """Oracle-degraded predictions with scrambled ids (+ splits) and their oracle copies."""
    with tempfile.TemporaryDirectory() as tmp:
        for k, (sem, inst) in enumerate(gts):
            write_kitti_step(Path(tmp) / f"{k:06d}.png", sem, inst)
        model = OracleModel(gt=tmp, seed=seed, scramble_ids=True, **DEGRADE)
        frames = [Frame(k, k, t, 0.0, img) for k, (t, img) in enumerate(zip(times, images))]
        preds = [split_segments(pf, SPLIT_RATE, seed) for pf in model.predict(frames)]
    return preds, [oracle_ids(pf, inst) for pf, (_, inst) in zip(preds, gts)]


def synth_sequences(split: str, frames_scale: float = 1.0, seeds: list[int] | None = None,
                    scenarios: list[str] | None = None) -> list[Sequence]:
    out = []
    for group, (scenario, frames) in SYNTH_SCENARIOS.items():
        if scenarios and group not in scenarios:
            continue
        for seed in seeds or SPLITS["synth"][split]:
            n = max(3, round(frames * frames_scale))
            clip = list(generate(seed, n, size=SYNTH_SIZE, scenario=scenario))
            gts = [(f.semantic, f.instance) for f in clip]
            preds, oracle = degraded(gts, [f.image for f in clip], [f.time for f in clip], seed)
            fps = 1.0 / max(clip[1].time - clip[0].time, 1e-6)
            out.append(Sequence("synth", group, split, fps, gts, preds, oracle))
    return out


def mot_gt_file(name: str) -> Path:
    """The ``gt.txt`` of a MOTChallenge sequence inside the installed `motmetrics` package."""
    try:
        import motmetrics
    except ImportError as e:
        raise SystemExit("the real-motion data needs motmetrics: pip install 'vpanoptic[bench]'") from e
    root = Path(motmetrics.__file__).parent
    hits = sorted(p for p in root.rglob("gt.txt") if name in p.parts)
    if not hits:
        raise SystemExit(f"motmetrics at {root} ships no {name}/gt/gt.txt")
    return hits[0]


def draw_mot(rows: np.ndarray, frame_ids: list[int], size=MOT_SIZE, seed: int = 0):
    """Ground truth and images of the MOT boxes `rows` (frame, id, x, y, w, h, ...) as person ellipses.

    Returns ``[(semantic, instance)]`` and ``[(H, W, 3) uint8]`` for `frame_ids`, in order.
    Persons are painted far to near (by box bottom); each keeps one clothing colour drawn
    from a narrow, dark palette (pedestrians are not colour-coded).
    """
    w, h = size
    rng = np.random.default_rng(seed)
    palette: dict[int, tuple[int, int, int]] = {}
    yy = np.linspace(90, 170, h, dtype=np.float32)[:, None, None]
    background = np.broadcast_to(yy, (h, w, 3)).astype(np.uint8)
    sem_bg = np.where(np.arange(h)[:, None] < h // 2, 2, 1).astype(np.int32) * np.ones((1, w), np.int32)
    gts, images = [], []
    for f in frame_ids:
        boxes = rows[rows[:, 0] == f]
        boxes = boxes[np.argsort(boxes[:, 3] + boxes[:, 5], kind="stable")]  # far (high bottom) first
        sem = sem_bg.copy()
        inst = np.zeros((h, w), np.int32)
        img = background.copy()
        for _, tid, x, y, bw, bh in boxes[:, :6]:
            tid = int(tid)
            if tid not in palette:
                palette[tid] = tuple(int(c) for c in rng.integers(30, 110, 3))
            mask = np.zeros((h, w), np.uint8)
            centre = (round(x + bw / 2), round(y + bh / 2))
            axes = (max(1, round(bw / 2)), max(1, round(bh / 2)))
            cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
            m = mask.astype(bool)
            sem[m] = PERSON
            inst[m] = tid
            img[m] = palette[tid]
        noise = rng.integers(-6, 7, img.shape)
        gts.append((sem, inst))
        images.append(np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    return gts, images


def mot_sequences(split: str, max_frames: int | None = None) -> list[Sequence]:
    out = []
    for name in SPLITS["mot"][split]:
        rows = np.loadtxt(mot_gt_file(name), delimiter=",")
        rows = rows[rows[:, 6] != 0] if rows.shape[1] > 6 else rows  # conf 0 = ignore
        frame_ids = sorted(int(f) for f in np.unique(rows[:, 0]))
        if max_frames:
            frame_ids = frame_ids[:max_frames]
        for step, fps in ((1, MOT_FPS), (5, MOT_FPS / 5)):
            ids = frame_ids[::step]
            gts, images = draw_mot(rows, ids, seed=len(name))
            times = [k / fps for k in range(len(ids))]
            preds, oracle = degraded(gts, images, times, seed=step)
            out.append(Sequence("mot", f"{name} {fps:g} fps", split, fps, gts, preds, oracle))
    return out


def net_sequences(split: str, frames_scale: float = 1.0, scenarios: list[str] | None = None) -> list[Sequence]:
    from vpanoptic.models.registry import build_model

    model = build_model("vpanoptic-street", device="cpu")
    out = []
    try:
        for group, (scenario, frames) in SYNTH_SCENARIOS.items():
            if scenarios and group not in scenarios:
                continue
            for seed in SPLITS["net"][split]:
                n = max(3, round(frames * frames_scale))
                clip = list(generate(seed, n, size=SYNTH_SIZE, scenario=scenario))
                gts = [(f.semantic, f.instance) for f in clip]
                frames_in = [Frame(k, k, f.time, 0.0, f.image) for k, f in enumerate(clip)]
                preds = []
                for k in range(0, len(frames_in), 8):
                    batch = model.predict(frames_in[k:k + 8])
                    preds.extend(p.to_numpy() if hasattr(p, "to_numpy") else p for p in batch)
                oracle = [oracle_ids(pf, inst) for pf, (_, inst) in zip(preds, gts)]
                fps = 1.0 / max(clip[1].time - clip[0].time, 1e-6)
                out.append(Sequence("net", group, split, fps, gts, preds, oracle))
    finally:
        model.close() if hasattr(model, "close") else None
    return out


def meta():
    return KITTI_STEP
