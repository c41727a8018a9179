"""Throughput of the video panoptic metrics (STQ, PQ, VPQ) on synthetic KITTI-STEP-like labels.

Generates 6 sequences x 60 frames at 432x240: stuff bands (sky, building, vegetation,
sidewalk, road), moving cars and pedestrians with track ids, a void strip and crowd blobs;
the prediction shifts boundaries, swaps some ids, confuses some classes and drops objects.
Prints frames per second for each metric alone and for STQ + PQ + VPQ together, then the
same data written as KITTI-STEP PNG folders and scored the way ``vpanoptic eval`` does
(PNG decoding included).

    python benchmarks/eval_speed.py [--sequences 6] [--frames 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vpanoptic.datasets import KITTI_STEP
from vpanoptic.eval import evaluate_sequences
from vpanoptic.eval.formats import write_step
from vpanoptic.eval.run import evaluate_paths

H, W = 240, 432


def make_sequence(rng: np.random.Generator, frames: int) -> tuple[list, list]:
    """One sequence of ground-truth and predicted (semantic, instance) pairs, int32."""
    rows, cols = np.indices((H, W))
    horizon = int(rng.integers(60, 100))
    objects: list[tuple[int, ...]] = []  # (class, track id, x, y, w, h, vx)
    for track in range(1, int(rng.integers(6, 12))):
        cls = 13 if rng.random() < 0.6 else 11
        if cls == 13:
            w, h = int(rng.integers(40, 90)), int(rng.integers(25, 50))
        else:
            w, h = int(rng.integers(10, 20)), int(rng.integers(30, 60))
        x, y, vx = int(rng.integers(0, W)), int(rng.integers(horizon, H - h)), int(rng.integers(-4, 5))
        objects.append((cls, track, x, y, w, h, vx))
    gts, preds = [], []
    for t in range(frames):
        sem = np.full((H, W), 10, np.int32)  # sky
        sem[rows >= horizon - 40] = 2  # building
        sem[(rows >= horizon - 20) & (cols < W // 3)] = 8  # vegetation
        sem[rows >= horizon] = 1  # sidewalk
        sem[rows >= horizon + 20] = 0  # road
        inst = np.zeros((H, W), np.int32)
        for obj in objects:
            cls, track, x, y, w, h, vx = obj
            x0 = int(x + vx * t) % W
            sl = (slice(y, y + h), slice(x0, min(W, x0 + w)))
            sem[sl] = cls
            inst[sl] = track
        sem[:8, :] = 255  # void strip
        sem[H - 30:H - 10, 10:40] = 13  # crowd (thing, instance 0)
        inst[H - 30:H - 10, 10:40] = 0
        gts.append((sem, inst))

        psem, pinst = np.roll(sem, 2, axis=1), np.roll(inst, 2, axis=1)
        psem = psem.copy()
        pinst = pinst.copy()
        psem[:8, :] = 10  # predicts sky on void
        if t >= frames // 2:  # one id switch per sequence
            pinst[pinst == 1] = 99
        y0, x0 = int(rng.integers(0, H - 20)), int(rng.integers(0, W - 20))
        psem[y0:y0 + 20, x0:x0 + 20] = 9  # terrain blob
        pinst[y0:y0 + 20, x0:x0 + 20] = 0
        drop = pinst == 2
        psem[drop] = 0
        pinst[drop] = 0
        preds.append((psem, pinst))
    return gts, preds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = [make_sequence(rng, args.frames) for _ in range(args.sequences)]
    gt = [g for g, _ in data]
    pred = [p for _, p in data]
    n = args.sequences * args.frames
    print(f"{args.sequences} sequences x {args.frames} frames at {W}x{H}")
    for metrics in (("stq",), ("pq",), ("vpq",), ("stq", "pq", "vpq")):
        start = time.perf_counter()
        res = evaluate_sequences(gt, pred, KITTI_STEP, metrics=metrics)
        dt = time.perf_counter() - start
        values = ", ".join(f"{k}={v:.4f}" for k, v in res.items() if isinstance(v, float))
        print(f"{'+'.join(m.upper() for m in metrics):12s} {n / dt:8.1f} frames/s  ({values})")
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"{s:04d}" for s in range(args.sequences)]
        write_step(Path(tmp) / "gt", dict(zip(names, gt)))
        write_step(Path(tmp) / "pred", dict(zip(names, pred)))
        start = time.perf_counter()
        res = evaluate_paths(Path(tmp) / "gt", Path(tmp) / "pred", metrics=("stq", "pq", "vpq"), progress=False)
        dt = time.perf_counter() - start
        print(f"{'eval PNGs':12s} {n / dt:8.1f} frames/s  ({n} frames in {dt:.2f} s; "
              f"STQ={res['STQ']:.4f}, PQ={res['PQ']:.4f}, VPQ={res['VPQ']:.4f})")


if __name__ == "__main__":
    main()
